/* A valid shared object without lm_plugin_describe: refused as "not a plugin". */
int lm_test_something_else(void);
__attribute__((visibility("default"))) int lm_test_something_else(void) { return 42; }
