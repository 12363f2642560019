/* Plugin registry: a good plugin loads; every refusal has its reason. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "test_main.h"

#define TP LM_TEST_BINARY_DIR "/tests/plugins/"

static lm_registry *registry(void) {
    lm_registry *r;
    ck_assert_int_eq(lm_registry_create(&r), LM_OK);
    return r;
}

START_TEST(good_plugin_loads_and_instantiates) {
    lm_registry *r = registry();
    ck_assert_int_eq(lm_registry_load_file(r, TP "good_logger/lm_test_good_logger.so"), LM_OK);
    const lm_plugin *p;
    ck_assert_int_eq(lm_registry_find(r, LM_KIND_LOGGER, "test_logger", &p), LM_OK);
    ck_assert_str_eq(p->descriptor->version, "0.0.1");
    lm_config *cfg;
    lm_config_create(&cfg, "logger 'test_logger'");
    void *self;
    ck_assert_int_eq(lm_plugin_instantiate(p, cfg, &self), LM_OK);
    lm_event ev = {0};
    ev.kind = LM_EVENT_MESSAGE;
    ck_assert_int_eq(p->vtable.logger.log(self, &ev), LM_OK);
    lm_plugin_release(p, self);
    lm_config_destroy(cfg);
    lm_registry_destroy(r);
}
END_TEST

static void expect_refusal(const char *path, lm_status code, const char *needle) {
    lm_registry *r = registry();
    ck_assert_int_eq(lm_registry_load_file(r, path), code);
    const char *m = lm_error_message();
    ck_assert_msg(strstr(m, needle) != NULL, "message '%s' lacks '%s'", m, needle);
    ck_assert_ptr_null(strchr(m, '\n')); /* one line */
    ck_assert_uint_eq(lm_registry_count(r), 0);
    ck_assert_uint_eq(lm_registry_rejected_count(r), 1);
    lm_registry_destroy(r);
}

START_TEST(refusals) {
    expect_refusal(TP "bad_major/lm_test_bad_major.so", LM_ERR_ABI, "major versions differ");
    expect_refusal(TP "newer_minor/lm_test_newer_minor.so", LM_ERR_ABI, "newer than this lmcore");
    expect_refusal(TP "missing_slot/lm_test_missing_slot.so", LM_ERR_ABI, "lacks the required function 'log'");
    expect_refusal(TP "missing_optimizer_slot/lm_test_missing_optimizer_slot.so", LM_ERR_ABI,
                   "optimizer plugin 'no_step' lacks the required function 'step' in its vtable");
    expect_refusal(TP "not_a_plugin/lm_test_not_a_plugin.so", LM_ERR_FORMAT, "not an lmcore plugin");
    expect_refusal(TP "garbage/lm_garbage.so", LM_ERR_FORMAT, "not a loadable shared object");
    expect_refusal(TP "bad_kind/lm_test_bad_kind.so", LM_ERR_FORMAT, "unknown plugin kind 42");
    expect_refusal(TP "nonexistent/lm_nothing.so", LM_ERR_FORMAT, "not a loadable shared object");
}
END_TEST

/* The versions in a refusal are the plugin's and this core's. */
START_TEST(major_refusal_names_both_versions) {
    char needle[128];
    snprintf(needle, sizeof needle, "built for plugin ABI %d.0 but this lmcore speaks ABI %d.%d", LM_ABI_MAJOR + 1,
             LM_ABI_MAJOR, LM_ABI_MINOR);
    expect_refusal(TP "bad_major/lm_test_bad_major.so", LM_ERR_ABI, needle);
    snprintf(needle, sizeof needle, "built for plugin ABI %d.%d, newer than this lmcore's ABI %d.%d", LM_ABI_MAJOR,
             LM_ABI_MINOR + 1, LM_ABI_MAJOR, LM_ABI_MINOR);
    expect_refusal(TP "newer_minor/lm_test_newer_minor.so", LM_ERR_ABI, needle);
}
END_TEST

/* ABI 2 added the optimizer kind: named in messages and listings. */
START_TEST(optimizer_kind_is_known) {
    ck_assert_str_eq(lm_plugin_kind_name(LM_KIND_OPTIMIZER), "optimizer");
    lm_plugin_kind kind = LM_KIND_TOKENIZER;
    ck_assert(lm_plugin_kind_parse("optimizer", &kind));
    ck_assert_int_eq(kind, LM_KIND_OPTIMIZER);
    ck_assert(!lm_plugin_kind_parse("optimiser", &kind));
    ck_assert_str_eq(lm_plugin_kind_name((lm_plugin_kind)(LM_KIND_COUNT + 1)), "unknown");
    lm_registry *r = registry();
    lm_registry_scan_dir(r, LM_TEST_PLUGIN_DIR);
    const lm_plugin *p;
    ck_assert_int_eq(lm_registry_find(r, LM_KIND_OPTIMIZER, "adamv", &p), LM_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "unknown optimizer plugin 'adamv'"));
    lm_registry_destroy(r);
}
END_TEST

START_TEST(duplicate_name_is_refused) {
    lm_registry *r = registry();
    ck_assert_int_eq(lm_registry_load_file(r, LM_TEST_PLUGIN_DIR "/lm_logger_console.so"), LM_OK);
    ck_assert_int_eq(lm_registry_load_file(r, TP "duplicate_console/lm_test_duplicate_console.so"), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "duplicate logger plugin 'console'"));
    /* The same file twice is not a conflict. */
    ck_assert_int_eq(lm_registry_load_file(r, LM_TEST_PLUGIN_DIR "/lm_logger_console.so"), LM_OK);
    ck_assert_uint_eq(lm_registry_count(r), 1);
    lm_registry_destroy(r);
}
END_TEST

START_TEST(short_vtable_reads_missing_slots_as_null) {
    lm_registry *r = registry();
    ck_assert_int_eq(lm_registry_load_file(r, TP "small_vtable/lm_test_small_vtable.so"), LM_OK);
    const lm_plugin *p = lm_registry_at(r, 0);
    ck_assert_ptr_nonnull(p->vtable.logger.log);
    ck_assert_ptr_null(p->vtable.logger.flush);
    lm_registry_destroy(r);
}
END_TEST

START_TEST(unknown_plugin_names_available_ones) {
    lm_registry *r = registry();
    lm_registry_scan_dir(r, LM_TEST_PLUGIN_DIR);
    const lm_plugin *p;
    ck_assert_int_eq(lm_registry_find(r, LM_KIND_LOGGER, "consol", &p), LM_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "unknown logger plugin 'consol'"));
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "console"));
    lm_registry_destroy(r);
}
END_TEST

START_TEST(create_failure_and_unknown_key_are_prefixed) {
    lm_registry *r = registry();
    ck_assert_int_eq(lm_registry_load_file(r, TP "good_logger/lm_test_good_logger.so"), LM_OK);
    const lm_plugin *p = lm_registry_at(r, 0);
    lm_config *cfg;
    lm_config_create(&cfg, "logger 'test_logger'");
    lm_config_set_int(cfg, "fail", 1);
    void *self;
    ck_assert_int_eq(lm_plugin_instantiate(p, cfg, &self), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(), "logger 'test_logger': test_logger was asked to fail");
    ck_assert_ptr_null(self);
    lm_config_destroy(cfg);
    lm_config_create(&cfg, "logger 'test_logger'");
    lm_config_set_string(cfg, "pth", "/tmp/x");
    ck_assert_int_eq(lm_plugin_instantiate(p, cfg, &self), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(), "unknown key 'pth' for logger 'test_logger' (known: path, fail): did you mean 'path'?");
    ck_assert_ptr_null(self);
    lm_config_destroy(cfg);
    lm_registry_destroy(r);
}
END_TEST

START_TEST(default_scan_uses_env_path_first) {
    lm_registry *r = registry();
    setenv("LMCORE_PLUGIN_PATH", TP "good_logger:" TP "small_vtable", 1);
    /* this test runs from <build>/bin, like the lmcore executable */
    lm_registry_scan_default(r, NULL, "/proc/self/exe");
    unsetenv("LMCORE_PLUGIN_PATH");
    const lm_plugin *p;
    ck_assert_int_eq(lm_registry_find(r, LM_KIND_LOGGER, "test_logger", &p), LM_OK);
    ck_assert_int_eq(lm_registry_find(r, LM_KIND_LOGGER, "small_vtable", &p), LM_OK);
    /* and the shipped plugins next to the executable */
    ck_assert_int_eq(lm_registry_find(r, LM_KIND_LOGGER, "console", &p), LM_OK);
    lm_registry_destroy(r);
}
END_TEST

int main(void) {
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, good_plugin_loads_and_instantiates);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, major_refusal_names_both_versions);
    tcase_add_test(tc, optimizer_kind_is_known);
    tcase_add_test(tc, duplicate_name_is_refused);
    tcase_add_test(tc, short_vtable_reads_missing_slots_as_null);
    tcase_add_test(tc, unknown_plugin_names_available_ones);
    tcase_add_test(tc, create_failure_and_unknown_key_are_prefixed);
    tcase_add_test(tc, default_scan_uses_env_path_first);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}
