-- expect: not a shared object (ET_DYN)
-- run: sh -c 'mkdir {tmp}/p && head -c 100000000 {build}/lib/lmcore/plugins/lm_optimizer_sgd.so > {tmp}/p/lm_optimizer_mine.so && printf "\002\000" | dd of={tmp}/p/lm_optimizer_mine.so bs=1 seek=16 count=2 conv=notrunc 2>/dev/null && exec {exe} --plugin-path {tmp}/p run {case}'
-- An ELF file of another type (ET_EXEC) named like a plugin.
lm.optimizer("mine", {})
