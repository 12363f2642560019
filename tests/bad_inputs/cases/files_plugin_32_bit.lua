-- expect: a 32-bit ELF file; lmcore loads 64-bit plugins
-- run: sh -c 'mkdir {tmp}/p && head -c 100000000 {build}/lib/lmcore/plugins/lm_optimizer_sgd.so > {tmp}/p/lm_optimizer_mine.so && printf "\001" | dd of={tmp}/p/lm_optimizer_mine.so bs=1 seek=4 count=1 conv=notrunc 2>/dev/null && exec {exe} --plugin-path {tmp}/p run {case}'
-- A plugin whose ELF class is 32-bit.
lm.optimizer("mine", {})
