/* The plugin ABI's memory layout, pinned (GStreamer's tests/check/gst/gstabi.c).
 *
 * Every structure that crosses the boundary between the core and a plugin
 * is listed here field by field: its offset and its size, and the size of
 * the whole.  A change here breaks every plugin built against an earlier
 * header: if this test fails, either undo the change or, on purpose, bump
 * LM_ABI_MAJOR (a reordered or resized field, a removed slot) or
 * LM_ABI_MINOR (a slot appended to the end of a vtable, which must then be
 * optional) and update the numbers, docs/plugin-abi.md ("ABI history") and
 * tests/abi.  Expected values are for LP64 targets: x86-64 and aarch64
 * Linux. */
#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "lmcore/lmcore.h"
#include "test_main.h"

#define P 8 /* sizeof(void *), sizeof(size_t) on LP64 */

/* One field: where it starts and how many bytes it takes.  The message
 * names the field, so a failure says what moved. */
#define FIELD(type, field, offset, size)                                                                       \
    do {                                                                                                       \
        ck_assert_msg(offsetof(type, field) == (offset), #type "." #field " moved: offset %zu, pinned %zu",   \
                      (size_t)offsetof(type, field), (size_t)(offset));                                        \
        ck_assert_msg(sizeof(((type *)0)->field) == (size), #type "." #field " changed size: %zu, pinned %zu", \
                      sizeof(((type *)0)->field), (size_t)(size));                                             \
    } while (0)
/* A vtable slot: a function pointer at slot index `index`. */
#define SLOT(type, field, index) FIELD(type, field, (index) * P, P)
#define SIZE(type, size)                                                                                       \
    ck_assert_msg(sizeof(type) == (size), "sizeof(" #type ") changed: %zu, pinned %zu", sizeof(type), (size_t)(size))

START_TEST(lp64_target) {
    /* The numbers below assume LP64; elsewhere this test means nothing. */
    ck_assert_uint_eq(sizeof(void *), P);
    ck_assert_uint_eq(sizeof(size_t), P);
    ck_assert_uint_eq(sizeof(double), 8);
    ck_assert_uint_eq(_Alignof(int64_t), 8);
    ck_assert_uint_eq(_Alignof(double), 8);
}
END_TEST

START_TEST(descriptor_layout) {
    /* Never changes, whatever the major: every core reads any descriptor. */
    FIELD(lm_plugin_descriptor, abi_major, 0, 2);
    FIELD(lm_plugin_descriptor, abi_minor, 2, 2);
    FIELD(lm_plugin_descriptor, struct_size, 4, 4);
    FIELD(lm_plugin_descriptor, kind, 8, 4);
    FIELD(lm_plugin_descriptor, vtable_size, 12, 4);
    FIELD(lm_plugin_descriptor, name, 16, P);
    FIELD(lm_plugin_descriptor, version, 24, P);
    FIELD(lm_plugin_descriptor, description, 32, P);
    FIELD(lm_plugin_descriptor, vtable, 40, P);
    SIZE(lm_plugin_descriptor, 48);
}
END_TEST

START_TEST(version_and_enums) {
    ck_assert_int_eq(LM_ABI_MAJOR, 2);
    ck_assert_int_eq(LM_ABI_MINOR, 1); /* 2.1: set_grads_ready, all_reduce_start/wait/test, forward_train, upload_batch, graph_* */
    ck_assert_int_eq(LM_KIND_TOKENIZER, 1);
    ck_assert_int_eq(LM_KIND_DATASET, 2);
    ck_assert_int_eq(LM_KIND_ARCHITECTURE, 3);
    ck_assert_int_eq(LM_KIND_OBJECTIVE, 4);
    ck_assert_int_eq(LM_KIND_LOGGER, 5);
    ck_assert_int_eq(LM_KIND_OPTIMIZER, 6);
    ck_assert_int_eq(LM_KIND_COMMUNICATOR, 7);
    ck_assert_int_eq(LM_KIND_COUNT, 7);
    /* Values stored in ABI structs or passed through vtables. */
    ck_assert_int_eq(LM_IGNORE_INDEX, -100);
    ck_assert_int_eq(LM_F32, 0);
    ck_assert_int_eq(LM_F16, 1);
    ck_assert_int_eq(LM_BF16, 2);
    ck_assert_int_eq(LM_I32, 3);
    ck_assert_int_eq(LM_I64, 4);
    ck_assert_int_eq(LM_U16, 5);
    ck_assert_int_eq(LM_U8, 6);
    ck_assert_int_eq(LM_F64, 7);
    ck_assert_int_eq(LM_DEVICE_CPU, 0);
    ck_assert_int_eq(LM_DEVICE_CUDA, 1);
    ck_assert_int_eq(LM_SCHEDULE_LINEAR, 0);
    ck_assert_int_eq(LM_SCHEDULE_COSINE, 1);
    ck_assert_int_eq(LM_SCHEDULE_COSINE_WITH_RESTARTS, 2);
    ck_assert_int_eq(LM_SCHEDULE_POLYNOMIAL, 3);
    ck_assert_int_eq(LM_SCHEDULE_CONSTANT, 4);
    ck_assert_int_eq(LM_SCHEDULE_CONSTANT_WITH_WARMUP, 5);
    ck_assert_int_eq(LM_SCHEDULE_INVERSE_SQRT, 6);
    ck_assert_int_eq(LM_SCHEDULE_HOST, 7);
    ck_assert_int_eq(LM_SCHEDULE_KIND_COUNT, 8);
    ck_assert_int_eq(LM_BAD_NONE, 0);
    ck_assert_int_eq(LM_BAD_LOSS, 1);
    ck_assert_int_eq(LM_BAD_GRAD_NORM, 2);
    ck_assert_int_eq(LM_LOSS_SUM_RUN, 0);
    ck_assert_int_eq(LM_LOSS_SUM_EPOCH, 1);
    ck_assert_int_eq(LM_LOSS_SUM_LOG, 2);
    ck_assert_int_eq(LM_LOSS_SUM_EVAL, 3);
    ck_assert_int_eq(LM_LOSS_SUMS, 4);
    ck_assert_int_eq(LM_EVENT_RUN_BEGIN, 1);
    ck_assert_int_eq(LM_EVENT_STEP, 2);
    ck_assert_int_eq(LM_EVENT_EVAL, 3);
    ck_assert_int_eq(LM_EVENT_RUN_END, 4);
    ck_assert_int_eq(LM_EVENT_MESSAGE, 5);
    ck_assert_int_eq(LM_EVENT_PROGRESS, 6);
    ck_assert_int_eq(LM_LOG_DEBUG, 0);
    ck_assert_int_eq(LM_LOG_ERROR, 3);
    ck_assert_int_eq(LM_OK, 0);
    ck_assert_int_eq(LM_ERR_UNSUPPORTED, -6);
    ck_assert_int_eq(LM_ERR_ABI, -10);
    ck_assert_int_eq(LM_ERR_INTERNAL, -11);
}
END_TEST

START_TEST(tokenizer_vtable_layout) {
    SLOT(lm_tokenizer_vtable, create, 0);
    SLOT(lm_tokenizer_vtable, destroy, 1);
    SLOT(lm_tokenizer_vtable, encode, 2);
    SLOT(lm_tokenizer_vtable, decode, 3);
    SLOT(lm_tokenizer_vtable, info, 4);
    SLOT(lm_tokenizer_vtable, save, 5);
    SLOT(lm_tokenizer_vtable, fingerprint, 6);
    SLOT(lm_tokenizer_vtable, train, 7);
    SLOT(lm_tokenizer_vtable, id_to_token, 8);
    SLOT(lm_tokenizer_vtable, token_to_id, 9);
    SIZE(lm_tokenizer_vtable, 10 * P);
}
END_TEST

START_TEST(dataset_vtable_layout) {
    SLOT(lm_dataset_vtable, create, 0);
    SLOT(lm_dataset_vtable, destroy, 1);
    SLOT(lm_dataset_vtable, split_count, 2);
    SLOT(lm_dataset_vtable, split_name, 3);
    SLOT(lm_dataset_vtable, open_split, 4);
    SIZE(lm_dataset_vtable, 5 * P);
}
END_TEST

START_TEST(architecture_vtable_layout) {
    SLOT(lm_architecture_vtable, create, 0);
    SLOT(lm_architecture_vtable, destroy, 1);
    SLOT(lm_architecture_vtable, info, 2);
    SLOT(lm_architecture_vtable, parameters, 3);
    SLOT(lm_architecture_vtable, init_weights, 4);
    SLOT(lm_architecture_vtable, set_training, 5);
    SLOT(lm_architecture_vtable, forward, 6);
    SLOT(lm_architecture_vtable, backward, 7);
    SLOT(lm_architecture_vtable, logits, 8);
    SLOT(lm_architecture_vtable, hf_config, 9);
    SLOT(lm_architecture_vtable, generate_reset, 10);
    SLOT(lm_architecture_vtable, generate_step, 11);
    SLOT(lm_architecture_vtable, params_written, 12);
    SLOT(lm_architecture_vtable, set_grads_ready, 13); /* 2.1 */
    SLOT(lm_architecture_vtable, forward_train, 14); /* 2.1 */
    SLOT(lm_architecture_vtable, upload_batch, 15); /* 2.1 */
    SIZE(lm_architecture_vtable, 16 * P);
}
END_TEST

START_TEST(objective_vtable_layout) {
    SLOT(lm_objective_vtable, create, 0);
    SLOT(lm_objective_vtable, destroy, 1);
    SLOT(lm_objective_vtable, bind, 2);
    SLOT(lm_objective_vtable, make_batch, 3);
    SIZE(lm_objective_vtable, 4 * P);
}
END_TEST

START_TEST(logger_vtable_layout) {
    SLOT(lm_logger_vtable, create, 0);
    SLOT(lm_logger_vtable, destroy, 1);
    SLOT(lm_logger_vtable, log, 2);
    SLOT(lm_logger_vtable, flush, 3);
    SIZE(lm_logger_vtable, 4 * P);
}
END_TEST

START_TEST(optimizer_vtable_layout) {
    SLOT(lm_optimizer_vtable, create, 0);
    SLOT(lm_optimizer_vtable, destroy, 1);
    SLOT(lm_optimizer_vtable, bind, 2);
    SLOT(lm_optimizer_vtable, step, 3);
    SLOT(lm_optimizer_vtable, state_count, 4);
    SLOT(lm_optimizer_vtable, state_at, 5);
    SLOT(lm_optimizer_vtable, settings_json, 6);
    SIZE(lm_optimizer_vtable, 7 * P);
}
END_TEST

START_TEST(communicator_vtable_layout) {
    SLOT(lm_communicator_vtable, create, 0);
    SLOT(lm_communicator_vtable, destroy, 1);
    SLOT(lm_communicator_vtable, rank, 2);
    SLOT(lm_communicator_vtable, size, 3);
    SLOT(lm_communicator_vtable, memory, 4);
    SLOT(lm_communicator_vtable, all_reduce, 5);
    SLOT(lm_communicator_vtable, broadcast, 6);
    SLOT(lm_communicator_vtable, all_gather, 7);
    SLOT(lm_communicator_vtable, barrier, 8);
    SLOT(lm_communicator_vtable, abort, 9);
    SLOT(lm_communicator_vtable, all_reduce_start, 10); /* 2.1 */
    SLOT(lm_communicator_vtable, wait, 11);
    SLOT(lm_communicator_vtable, test, 12);
    SIZE(lm_communicator_vtable, 13 * P);
}
END_TEST

START_TEST(model_struct_layouts) {
    FIELD(lm_batch, struct_size, 0, 4);
    FIELD(lm_batch, B, 4, 4);
    FIELD(lm_batch, T, 8, 4);
    FIELD(lm_batch, input_ids, 16, P);
    FIELD(lm_batch, labels, 24, P);
    FIELD(lm_batch, attention_mask, 32, P);
    FIELD(lm_batch, token_type_ids, 40, P);
    FIELD(lm_batch, n_targets, 48, 8);
    SIZE(lm_batch, 56);

    FIELD(lm_arch_info, model_type, 0, P);
    FIELD(lm_arch_info, causal, 8, 4);
    FIELD(lm_arch_info, uses_token_types, 12, 4);
    FIELD(lm_arch_info, vocab_size, 16, 4);
    FIELD(lm_arch_info, max_positions, 20, 4);
    FIELD(lm_arch_info, n_params, 24, 8);
    FIELD(lm_arch_info, device, 32, P);
    FIELD(lm_arch_info, precision, 40, P);
    SIZE(lm_arch_info, 48);

    FIELD(lm_param_desc, name, 0, P);
    FIELD(lm_param_desc, ndim, 8, 4);
    FIELD(lm_param_desc, weight_decay, 12, 4);
    FIELD(lm_param_desc, shape, 16, 4 * 8);
    FIELD(lm_param_desc, offset, 48, P);
    FIELD(lm_param_desc, storage, 56, P);
    SIZE(lm_param_desc, 64);

    FIELD(lm_param_set, struct_size, 0, 4);
    FIELD(lm_param_set, grad_dtype, 4, 4);
    FIELD(lm_param_set, device, 8, P);
    FIELD(lm_param_set, descs, 16, P);
    FIELD(lm_param_set, n_descs, 24, P);
    FIELD(lm_param_set, n_params, 32, P);
    FIELD(lm_param_set, params, 40, P);
    FIELD(lm_param_set, grads, 48, P);
    FIELD(lm_param_set, params_copy, 56, P);
    FIELD(lm_param_set, copy_dtype, 64, 4);
    FIELD(lm_param_set, reserved0, 68, 4);
    SIZE(lm_param_set, 72);

    FIELD(lm_optimizer_state, name, 0, P);
    FIELD(lm_optimizer_state, data, 8, P);
    FIELD(lm_optimizer_state, count, 16, P);
    FIELD(lm_optimizer_state, per_parameter, 24, 4);
    FIELD(lm_optimizer_state, reserved0, 28, 4);
    SIZE(lm_optimizer_state, 32);
}
END_TEST

/* Kernels read the step state in device memory, and CUDA code compiled
 * separately from the core (an optimizer plugin's .cu) must agree with it
 * byte for byte. */
START_TEST(step_struct_layouts) {
    FIELD(lm_schedule, kind, 0, 4);
    FIELD(lm_schedule, reserved0, 4, 4);
    FIELD(lm_schedule, base_lr, 8, 8);
    FIELD(lm_schedule, warmup_steps, 16, 8);
    FIELD(lm_schedule, total_steps, 24, 8);
    FIELD(lm_schedule, num_cycles, 32, 8);
    FIELD(lm_schedule, power, 40, 8);
    FIELD(lm_schedule, lr_end, 48, 8);
    FIELD(lm_schedule, timescale, 56, 8);
    SIZE(lm_schedule, 64);

    FIELD(lm_step_state, seed, 0, 8);
    FIELD(lm_step_state, micro_batch, 8, 8);
    FIELD(lm_step_state, step, 16, 8);
    FIELD(lm_step_state, bad_step, 24, 8);
    FIELD(lm_step_state, schedule, 32, 64);
    FIELD(lm_step_state, max_grad_norm, 96, 8);
    FIELD(lm_step_state, lr, 104, 8);
    FIELD(lm_step_state, loss_sum, 112, 8);
    FIELD(lm_step_state, step_loss, 120, 8);
    FIELD(lm_step_state, loss_sums, 128, 4 * 8);
    FIELD(lm_step_state, loss, 160, 4);
    FIELD(lm_step_state, grad_norm, 164, 4);
    FIELD(lm_step_state, clip_scale, 168, 4);
    FIELD(lm_step_state, bad_value, 172, 4);
    FIELD(lm_step_state, bad_what, 176, 4);
    FIELD(lm_step_state, scored, 180, 4);
    FIELD(lm_step_state, reserved, 184, 8 * 8);
    SIZE(lm_step_state, 248);
}
END_TEST

START_TEST(device_struct_layouts) {
    FIELD(lm_device_counters, downloads, 0, 8);
    FIELD(lm_device_counters, syncs, 8, 8);
    FIELD(lm_device_counters, uploads, 16, 8);
    SIZE(lm_device_counters, 24);

    FIELD(lm_device, struct_size, 0, 4);
    FIELD(lm_device, type, 4, 4);
    FIELD(lm_device, index, 8, 4);
    FIELD(lm_device, reserved0, 12, 4);
    FIELD(lm_device, description, 16, P);
    FIELD(lm_device, stream, 24, P);
    FIELD(lm_device, ops, 32, P);
    SIZE(lm_device, 40);

    /* Its own struct_size first, then one slot per operation. */
    FIELD(lm_device_ops, struct_size, 0, 4);
    FIELD(lm_device_ops, reserved0, 4, 4);
    SLOT(lm_device_ops, alloc, 1);
    SLOT(lm_device_ops, free, 2);
    SLOT(lm_device_ops, upload, 3);
    SLOT(lm_device_ops, download, 4);
    SLOT(lm_device_ops, zero, 5);
    SLOT(lm_device_ops, sync, 6);
    SLOT(lm_device_ops, check, 7);
    SLOT(lm_device_ops, counters, 8);
    SLOT(lm_device_ops, retain, 9);
    SLOT(lm_device_ops, release, 10);
    SLOT(lm_device_ops, parallel_for, 11);
    SLOT(lm_device_ops, keep_failure, 12);
    SLOT(lm_device_ops, step_micro_batch_end, 13);
    SLOT(lm_device_ops, step_clip, 14);
    SLOT(lm_device_ops, step_schedule, 15);
    SLOT(lm_device_ops, step_finish, 16);
    SLOT(lm_device_ops, graph_begin, 17); /* 2.1 */
    SLOT(lm_device_ops, graph_end, 18);
    SLOT(lm_device_ops, graph_launch, 19);
    SLOT(lm_device_ops, graph_destroy, 20);
    SIZE(lm_device_ops, 21 * P);
}
END_TEST

START_TEST(data_struct_layouts) {
    FIELD(lm_text_source, struct_size, 0, 4);
    FIELD(lm_text_source, ctx, 8, P);
    FIELD(lm_text_source, count, 16, P);
    FIELD(lm_text_source, row, 24, P);
    FIELD(lm_text_source, fingerprint, 32, 8);
    FIELD(lm_text_source, name, 40, P);
    SIZE(lm_text_source, 48);

    FIELD(lm_vocab_info, vocab_size, 0, 4);
    FIELD(lm_vocab_info, unk_id, 4, 4);
    FIELD(lm_vocab_info, mask_id, 28, 4);
    FIELD(lm_vocab_info, special_ids, 32, P);
    FIELD(lm_vocab_info, n_special, 40, P);
    SIZE(lm_vocab_info, 48);

    FIELD(lm_event, kind, 0, 4);
    FIELD(lm_event, level, 4, 4);
    FIELD(lm_event, step, 8, 8);
    FIELD(lm_event, total_steps, 16, 8);
    FIELD(lm_event, epoch, 24, 8);
    FIELD(lm_event, total_epochs, 32, 4);
    FIELD(lm_event, elapsed, 40, 8);
    FIELD(lm_event, text, 48, P);
    FIELD(lm_event, scalars, 56, P);
    FIELD(lm_event, n_scalars, 64, P);
    SIZE(lm_event, 72);
    FIELD(lm_scalar, name, 0, P);
    FIELD(lm_scalar, value, 8, 8);
    SIZE(lm_scalar, 16);

    FIELD(lm_tensor, dtype, 0, 4);
    FIELD(lm_tensor, ndim, 4, 4);
    FIELD(lm_tensor, shape, 8, LM_MAX_DIMS * 8);
    FIELD(lm_tensor, data, 72, P);
    SIZE(lm_tensor, 80);
    FIELD(lm_buffer, data, 0, P);
    FIELD(lm_buffer, len, 8, P);
    FIELD(lm_buffer, cap, 16, P);
    SIZE(lm_buffer, 24);
    FIELD(lm_ids, data, 0, P);
    FIELD(lm_ids, len, 8, P);
    FIELD(lm_ids, cap, 16, P);
    SIZE(lm_ids, 24);
}
END_TEST

int main(void) {
    Suite *s = suite_create("abi");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, lp64_target);
    tcase_add_test(tc, descriptor_layout);
    tcase_add_test(tc, version_and_enums);
    tcase_add_test(tc, tokenizer_vtable_layout);
    tcase_add_test(tc, dataset_vtable_layout);
    tcase_add_test(tc, architecture_vtable_layout);
    tcase_add_test(tc, objective_vtable_layout);
    tcase_add_test(tc, logger_vtable_layout);
    tcase_add_test(tc, optimizer_vtable_layout);
    tcase_add_test(tc, communicator_vtable_layout);
    tcase_add_test(tc, model_struct_layouts);
    tcase_add_test(tc, step_struct_layouts);
    tcase_add_test(tc, device_struct_layouts);
    tcase_add_test(tc, data_struct_layouts);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}
