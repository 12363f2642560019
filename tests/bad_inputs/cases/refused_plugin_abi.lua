-- expect: major versions differ
-- run: {exe} --plugin-path {build}/tests/plugins/bad_major run {case}
lm.logger("bad_major", {})
