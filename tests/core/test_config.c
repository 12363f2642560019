/* Config: typed getters, defaults, type errors and unknown keys. */
#include <check.h>
#include <math.h>
#include <string.h>

#include "lmcore/lmcore.h"
#include "names.h"
#include "test_main.h"

static lm_config *make(void) {
    lm_config *cfg;
    ck_assert_int_eq(lm_config_create(&cfg, "architecture 'gpt2'"), LM_OK);
    return cfg;
}

START_TEST(defaults_and_values) {
    lm_config *cfg = make();
    ck_assert_int_eq(lm_config_set_int(cfg, "n_layer", 4), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "dropout", 0.25), LM_OK);
    ck_assert_int_eq(lm_config_set_string(cfg, "device", "cpu"), LM_OK);
    ck_assert_int_eq(lm_config_set_bool(cfg, "tied", 1), LM_OK);
    ck_assert_int_eq(lm_config_int(cfg, "n_layer", 12), 4);
    ck_assert_int_eq(lm_config_int(cfg, "n_head", 12), 12); /* absent: default */
    ck_assert(fabs(lm_config_number(cfg, "dropout", 0.1) - 0.25) < 1e-12);
    ck_assert_str_eq(lm_config_string(cfg, "device", "auto"), "cpu");
    ck_assert_int_eq(lm_config_bool(cfg, "tied", 0), 1);
    ck_assert_int_eq(lm_config_validate(cfg), LM_OK);
    lm_config_destroy(cfg);
}
END_TEST

/* has() counts as reading: a flag tested only for presence is not unknown,
 * and a typo next to it lists it once among the known keys. */
START_TEST(has_marks_the_key_read) {
    lm_config *cfg;
    ck_assert_int_eq(lm_config_create(&cfg, "architecture 'toy'"), LM_OK);
    ck_assert_int_eq(lm_config_set_parsed(cfg, "fast=true"), LM_OK);
    ck_assert_int_eq(lm_config_set_parsed(cfg, "devic=cpu"), LM_OK);
    ck_assert(lm_config_has(cfg, "fast"));
    ck_assert(!lm_config_has(cfg, "slow"));
    (void)lm_config_string(cfg, "device", "cpu");
    ck_assert_int_eq(lm_config_validate(cfg), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(), "unknown key 'devic' for architecture 'toy' (known: fast, slow, device): did you mean 'device'?");
    lm_config_destroy(cfg);
}
END_TEST

START_TEST(integral_numbers_are_integers_and_integers_are_numbers) {
    lm_config *cfg = make();
    lm_config_set_number(cfg, "steps", 1e4);
    lm_config_set_int(cfg, "lr", 1);
    ck_assert_int_eq(lm_config_int(cfg, "steps", 0), 10000);
    ck_assert(lm_config_number(cfg, "lr", 0.5) == 1.0);
    ck_assert_int_eq(lm_config_validate(cfg), LM_OK);
    lm_config_destroy(cfg);
}
END_TEST

START_TEST(wrong_type_is_reported_with_key_and_owner) {
    lm_config *cfg = make();
    lm_config_set_string(cfg, "n_layer", "four");
    ck_assert_int_eq(lm_config_int(cfg, "n_layer", 12), 12);
    ck_assert_int_eq(lm_config_validate(cfg), LM_ERR_INVALID);
    const char *m = lm_error_message();
    ck_assert_ptr_nonnull(strstr(m, "'n_layer'"));
    ck_assert_ptr_nonnull(strstr(m, "architecture 'gpt2'"));
    ck_assert_ptr_nonnull(strstr(m, "must be an integer"));
    ck_assert_ptr_nonnull(strstr(m, "'four'"));
    lm_config_destroy(cfg);
}
END_TEST

START_TEST(fractional_number_is_not_an_integer) {
    lm_config *cfg = make();
    lm_config_set_number(cfg, "n_layer", 2.5);
    lm_config_int(cfg, "n_layer", 12);
    ck_assert_int_eq(lm_config_validate(cfg), LM_ERR_INVALID);
    lm_config_destroy(cfg);
}
END_TEST

START_TEST(unknown_key_lists_known_keys) {
    lm_config *cfg = make();
    lm_config_set_int(cfg, "n_layers", 4); /* typo */
    lm_config_int(cfg, "n_layer", 12);
    lm_config_int(cfg, "n_head", 12);
    ck_assert_int_eq(lm_config_validate(cfg), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(),
                     "unknown key 'n_layers' for architecture 'gpt2' (known: n_layer, n_head): did you mean 'n_layer'?");
    lm_config_destroy(cfg);
}
END_TEST

START_TEST(parsed_values_have_types) {
    lm_config *cfg = make();
    ck_assert_int_eq(lm_config_set_parsed(cfg, "a=12"), LM_OK);
    ck_assert_int_eq(lm_config_set_parsed(cfg, "b=-2.5e-3"), LM_OK);
    ck_assert_int_eq(lm_config_set_parsed(cfg, "c=true"), LM_OK);
    ck_assert_int_eq(lm_config_set_parsed(cfg, "d=false"), LM_OK);
    ck_assert_int_eq(lm_config_set_parsed(cfg, "e=../shared/data"), LM_OK);
    ck_assert_int_eq(lm_config_set_parsed(cfg, "f="), LM_OK);
    ck_assert_int_eq(lm_config_set_parsed(cfg, "g=nan"), LM_OK);
    ck_assert_int_eq(lm_config_set_parsed(cfg, "novalue"), LM_ERR_INVALID);
    ck_assert_int_eq(lm_config_set_parsed(cfg, "=3"), LM_ERR_INVALID);
    ck_assert_int_eq(lm_config_type_at(cfg, 0), LM_CONFIG_INT);
    ck_assert_int_eq(lm_config_type_at(cfg, 1), LM_CONFIG_NUMBER);
    ck_assert_int_eq(lm_config_type_at(cfg, 2), LM_CONFIG_BOOL);
    ck_assert_int_eq(lm_config_type_at(cfg, 3), LM_CONFIG_BOOL);
    ck_assert_int_eq(lm_config_type_at(cfg, 4), LM_CONFIG_STRING);
    ck_assert_int_eq(lm_config_type_at(cfg, 5), LM_CONFIG_STRING);
    ck_assert_int_eq(lm_config_type_at(cfg, 6), LM_CONFIG_STRING); /* not a finite number */
    ck_assert(fabs(lm_config_number(cfg, "b", 0) + 2.5e-3) < 1e-15);
    lm_config_destroy(cfg);
}
END_TEST

START_TEST(lists_and_replacement) {
    lm_config *cfg = make();
    const char *items[] = {"[PAD]", "[UNK]"};
    lm_config_set_list(cfg, "special_tokens", items, 2);
    lm_config_set_int(cfg, "x", 1);
    lm_config_set_int(cfg, "x", 2); /* replaces */
    const char *const *got;
    ck_assert_uint_eq(lm_config_list(cfg, "special_tokens", &got), 2);
    ck_assert_str_eq(got[1], "[UNK]");
    ck_assert_int_eq(lm_config_int(cfg, "x", 0), 2);
    ck_assert_uint_eq(lm_config_count(cfg), 2);
    lm_config *copy;
    ck_assert_int_eq(lm_config_clone(cfg, NULL, &copy), LM_OK);
    ck_assert_uint_eq(lm_config_list(copy, "special_tokens", &got), 2);
    ck_assert_str_eq(got[0], "[PAD]");
    ck_assert_int_eq(lm_config_validate(copy), LM_ERR_INVALID); /* x never read in the copy */
    lm_config_destroy(copy);
    lm_config_destroy(cfg);
}
END_TEST

/* Integers are range-checked in 64 bits before a caller narrows them: the
 * value as given is named, never a wrapped one (2^32 + 2 is not 2). */
START_TEST(int_range_names_the_value_as_given) {
    lm_config *cfg = make();
    lm_config_set_int(cfg, "n_head", 8);
    ck_assert_int_eq(lm_config_int_range(cfg, "n_head", 12, 1, 4096), 8);
    ck_assert_int_eq(lm_config_int_range(cfg, "absent", 12, 1, 4096), 12); /* the default needs no range */
    ck_assert_int_eq(lm_config_validate(cfg), LM_OK);
    lm_config_set_int(cfg, "n_layer", ((int64_t)1 << 32) + 2);
    ck_assert_int_eq(lm_config_int_range(cfg, "n_layer", 12, 1, 4096), 12);
    ck_assert_int_eq(lm_config_validate(cfg), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(),
                     "config key 'n_layer' for architecture 'gpt2' must be an integer between 1 and 4096, got 4294967298");
    lm_config_destroy(cfg);

    cfg = make();
    lm_config_set_int(cfg, "seed", -1);
    ck_assert_int_eq(lm_config_int_range(cfg, "seed", 42, 0, INT64_MAX), 42);
    ck_assert_int_eq(lm_config_validate(cfg), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(), "config key 'seed' for architecture 'gpt2' must be an integer at least 0, got -1");
    lm_config_destroy(cfg);

    cfg = make();
    lm_config_set_int(cfg, "batch", (int64_t)1 << 40);
    ck_assert_int_eq(lm_config_int_range(cfg, "batch", 8, INT64_MIN, 1 << 20), 8);
    ck_assert_int_eq(lm_config_validate(cfg), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(),
                     "config key 'batch' for architecture 'gpt2' must be an integer at most 1048576, got 1099511627776");
    lm_config_destroy(cfg);

    /* A wrong type is reported as such, not as a range. */
    cfg = make();
    lm_config_set_number(cfg, "seed", 1.5);
    ck_assert_int_eq(lm_config_int_range(cfg, "seed", 42, 0, INT64_MAX), 42);
    ck_assert_int_eq(lm_config_validate(cfg), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(), "config key 'seed' for architecture 'gpt2' must be an integer, got 1.5");
    lm_config_destroy(cfg);
}
END_TEST

START_TEST(near_misses_are_suggested) {
    static const char *const known[] = {"max_new_tokens", "temperature", "top_k", "top_p", "seed", NULL};
    ck_assert_str_eq(lm_nearest_name("max_new_token", known, (size_t)-1), "max_new_tokens");
    ck_assert_str_eq(lm_nearest_name("temprature", known, (size_t)-1), "temperature");
    ck_assert_str_eq(lm_nearest_name("top-k", known, (size_t)-1), "top_k");
    ck_assert_ptr_null(lm_nearest_name("colour", known, (size_t)-1)); /* another word, not a typo */
    ck_assert_ptr_null(lm_nearest_name("seed", known, 0));
    ck_assert_ptr_null(lm_nearest_name("", known, (size_t)-1));
}
END_TEST

START_TEST(reject_and_range) {
    lm_config *cfg = make();
    lm_config_set_number(cfg, "dropout", 1.5);
    double p = lm_config_number(cfg, "dropout", 0.1);
    ck_assert_int_eq(lm_config_require_range(cfg, "dropout", p, 0, 1), LM_ERR_INVALID);
    ck_assert_int_eq(lm_config_validate(cfg), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "between 0 and 1"));
    lm_config_destroy(cfg);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, defaults_and_values);
    tcase_add_test(tc, has_marks_the_key_read);
    tcase_add_test(tc, integral_numbers_are_integers_and_integers_are_numbers);
    tcase_add_test(tc, wrong_type_is_reported_with_key_and_owner);
    tcase_add_test(tc, fractional_number_is_not_an_integer);
    tcase_add_test(tc, unknown_key_lists_known_keys);
    tcase_add_test(tc, parsed_values_have_types);
    tcase_add_test(tc, lists_and_replacement);
    tcase_add_test(tc, reject_and_range);
    tcase_add_test(tc, int_range_names_the_value_as_given);
    tcase_add_test(tc, near_misses_are_suggested);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(suite(), NULL);
}
