-- expect: built for ELF machine 40
-- run: sh -c 'mkdir {tmp}/p && head -c 100000000 {build}/lib/lmcore/plugins/lm_optimizer_sgd.so > {tmp}/p/lm_optimizer_mine.so && printf "\050\000" | dd of={tmp}/p/lm_optimizer_mine.so bs=1 seek=18 count=2 conv=notrunc 2>/dev/null && exec {exe} --plugin-path {tmp}/p run {case}'
-- A plugin built for another processor (ARM, ELF machine 40).
lm.optimizer("mine", {})
