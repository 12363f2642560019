-- expect: shorter than an ELF header
-- run: sh -c 'mkdir {tmp}/p && head -c 40 {build}/lib/lmcore/plugins/lm_optimizer_sgd.so > {tmp}/p/lm_optimizer_mine.so && exec {exe} --plugin-path {tmp}/p run {case}'
-- Only the first 40 bytes of a plugin.
lm.optimizer("mine", {})
