-- expect: truncated: the section headers end past the file's 30000 bytes
-- run: sh -c 'mkdir {tmp}/p && head -c 30000 {build}/lib/lmcore/plugins/lm_optimizer_sgd.so > {tmp}/p/lm_optimizer_mine.so && exec {exe} --plugin-path {tmp}/p run {case}'
-- A plugin cut short (an interrupted copy) is refused before dlopen, which would die of SIGBUS.
lm.optimizer("mine", {})
