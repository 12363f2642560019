/* The plugin ABI's memory layout, pinned.  A change here breaks every
 * plugin built against an earlier header: if this test fails, either undo
 * the change or bump LM_ABI_MAJOR and update the numbers on purpose.
 * (Expected values are for LP64 targets: x86-64 and aarch64 Linux.) */
#include <check.h>
#include <stddef.h>

#include "lmcore/lmcore.h"
#include "test_main.h"

START_TEST(descriptor_layout) {
    ck_assert_uint_eq(offsetof(lm_plugin_descriptor, abi_major), 0);
    ck_assert_uint_eq(offsetof(lm_plugin_descriptor, abi_minor), 2);
    ck_assert_uint_eq(offsetof(lm_plugin_descriptor, struct_size), 4);
    ck_assert_uint_eq(offsetof(lm_plugin_descriptor, kind), 8);
    ck_assert_uint_eq(offsetof(lm_plugin_descriptor, vtable_size), 12);
    ck_assert_uint_eq(offsetof(lm_plugin_descriptor, name), 16);
    ck_assert_uint_eq(offsetof(lm_plugin_descriptor, version), 24);
    ck_assert_uint_eq(offsetof(lm_plugin_descriptor, description), 32);
    ck_assert_uint_eq(offsetof(lm_plugin_descriptor, vtable), 40);
    ck_assert_uint_eq(sizeof(lm_plugin_descriptor), 48);
    ck_assert_int_eq(LM_KIND_TOKENIZER, 1);
    ck_assert_int_eq(LM_KIND_LOGGER, 5);
}
END_TEST

START_TEST(vtable_layouts) {
    ck_assert_uint_eq(sizeof(lm_tokenizer_vtable), 10 * sizeof(void *));
    ck_assert_uint_eq(offsetof(lm_tokenizer_vtable, encode), 16);
    ck_assert_uint_eq(offsetof(lm_tokenizer_vtable, fingerprint), 48);
    ck_assert_uint_eq(offsetof(lm_tokenizer_vtable, train), 56);
    ck_assert_uint_eq(sizeof(lm_dataset_vtable), 7 * sizeof(void *));
    ck_assert_uint_eq(offsetof(lm_dataset_vtable, row), 40);
    ck_assert_uint_eq(sizeof(lm_architecture_vtable), 17 * sizeof(void *));
    ck_assert_uint_eq(offsetof(lm_architecture_vtable, generate_reset), 120);
    ck_assert_uint_eq(offsetof(lm_architecture_vtable, generate_step), 128);
    ck_assert_uint_eq(offsetof(lm_architecture_vtable, forward), 48);
    ck_assert_uint_eq(offsetof(lm_architecture_vtable, optimizer_step), 80);
    ck_assert_uint_eq(offsetof(lm_architecture_vtable, hf_config), 112);
    ck_assert_uint_eq(sizeof(lm_objective_vtable), 4 * sizeof(void *));
    ck_assert_uint_eq(offsetof(lm_objective_vtable, make_batch), 24);
    ck_assert_uint_eq(sizeof(lm_logger_vtable), 4 * sizeof(void *));
    ck_assert_uint_eq(offsetof(lm_logger_vtable, flush), 24);
}
END_TEST

START_TEST(data_struct_layouts) {
    ck_assert_uint_eq(sizeof(lm_batch), 64);
    ck_assert_uint_eq(offsetof(lm_batch, input_ids), 8);
    ck_assert_uint_eq(offsetof(lm_batch, n_targets), 40);
    ck_assert_uint_eq(offsetof(lm_batch, step), 56);
    ck_assert_uint_eq(sizeof(lm_arch_info), 48);
    ck_assert_uint_eq(offsetof(lm_arch_info, n_params), 24);
    ck_assert_uint_eq(sizeof(lm_vocab_info), 48);
    ck_assert_uint_eq(offsetof(lm_vocab_info, special_ids), 32);
    ck_assert_uint_eq(sizeof(lm_optim_params), 32);
    ck_assert_uint_eq(offsetof(lm_optim_params, t), 24);
    ck_assert_uint_eq(sizeof(lm_param_desc), 64);
    ck_assert_uint_eq(offsetof(lm_param_desc, offset), 48);
    ck_assert_uint_eq(sizeof(lm_event), 72);
    ck_assert_uint_eq(offsetof(lm_event, scalars), 56);
    ck_assert_uint_eq(sizeof(lm_scalar), 16);
    ck_assert_uint_eq(sizeof(lm_text_source), 24);
    ck_assert_uint_eq(sizeof(lm_tensor), 80);
    ck_assert_uint_eq(offsetof(lm_tensor, data), 72);
    ck_assert_uint_eq(sizeof(lm_buffer), 24);
    ck_assert_uint_eq(sizeof(lm_ids), 24);
}
END_TEST

int main(void) {
    Suite *s = suite_create("abi");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, descriptor_layout);
    tcase_add_test(tc, vtable_layouts);
    tcase_add_test(tc, data_struct_layouts);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}
