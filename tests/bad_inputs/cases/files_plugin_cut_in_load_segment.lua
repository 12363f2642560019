-- expect: truncated: segment
-- run: sh -c 'mkdir {tmp}/p && head -c 12000 {build}/lib/lmcore/plugins/lm_optimizer_sgd.so > {tmp}/p/lm_optimizer_mine.so && printf "\000\000\000\000\000\000\000\000" | dd of={tmp}/p/lm_optimizer_mine.so bs=1 seek=40 count=8 conv=notrunc 2>/dev/null && exec {exe} --plugin-path {tmp}/p run {case}'
-- Cut short and without section headers (e_shoff 0): a segment's file range is past the end.
lm.optimizer("mine", {})
