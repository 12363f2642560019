/* A plugin built against the frozen ABI 1.0 headers keeps loading and
 * working when the core's minor version grows: the shipped BERT plugin's own
 * sources compiled against tests/abi/include-1.0 load with the 1.1 core, read
 * the 1.1 slots as NULL, and train exactly like the same sources built
 * against the current headers. */
#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "test_main.h"

static const lm_plugin *load_bert(lm_registry **r, const char *path) {
    ck_assert_int_eq(lm_registry_create(r), LM_OK);
    ck_assert_msg(lm_registry_load_file(*r, path) == LM_OK, "%s", lm_error_message());
    const lm_plugin *p;
    ck_assert_int_eq(lm_registry_find(*r, LM_KIND_ARCHITECTURE, "bert", &p), LM_OK);
    return p;
}

START_TEST(abi10_plugin_loads_with_missing_slots_null) {
    ck_assert_int_ge(LM_ABI_MINOR, 1); /* the core has grown since 1.0 */
    lm_registry *r;
    const lm_plugin *p = load_bert(&r, LM_TEST_ABI10_BERT);
    ck_assert_int_eq(p->descriptor->abi_major, 1);
    ck_assert_int_eq(p->descriptor->abi_minor, 0);
    /* its vtable ends where 1.0 ended: before the 1.1 slots */
    ck_assert_uint_eq(p->descriptor->vtable_size, offsetof(lm_architecture_vtable, generate_reset));
    ck_assert_ptr_null(p->vtable.architecture.generate_reset);
    ck_assert_ptr_null(p->vtable.architecture.generate_step);
    ck_assert_ptr_nonnull(p->vtable.architecture.hf_config); /* the last 1.0 slot */
    lm_registry_destroy(r);
}
END_TEST

/* One forward with labels, backward, AdamW step, forward again. */
static void train_two_steps(const lm_plugin *p, float losses[2]) {
    lm_config *cfg;
    ck_assert_int_eq(lm_config_create(&cfg, "architecture 'bert'"), LM_OK);
    const char *settings[] = {"vocab_size=64", "hidden_size=32", "num_hidden_layers=1", "num_attention_heads=2",
                              "intermediate_size=64", "max_position_embeddings=16", "device=cpu", "threads=1"};
    for (size_t i = 0; i < sizeof settings / sizeof *settings; i++)
        ck_assert_int_eq(lm_config_set_parsed(cfg, settings[i]), LM_OK);
    void *model;
    ck_assert_msg(lm_plugin_instantiate(p, cfg, &model) == LM_OK, "%s", lm_error_message());
    lm_config_destroy(cfg);
    const lm_architecture_vtable *vt = &p->vtable.architecture;
    ck_assert_int_eq(vt->init_weights(model, 7), LM_OK);
    ck_assert_int_eq(vt->set_training(model, 0), LM_OK);
    enum { B = 2, T = 8 };
    int32_t ids[B * T], labels[B * T];
    for (int i = 0; i < B * T; i++) {
        ids[i] = (i * 7 + 3) % 64;
        labels[i] = i % 3 == 0 ? (i * 5 + 1) % 64 : LM_IGNORE_INDEX;
    }
    lm_batch batch = {B, T, ids, labels, NULL, NULL, 6, 1, 0};
    lm_optim_params step = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f, 1};
    ck_assert_int_eq(vt->zero_grad(model), LM_OK);
    ck_assert_int_eq(vt->forward(model, &batch, &losses[0]), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f), LM_OK);
    ck_assert_int_eq(vt->optimizer_step(model, &step), LM_OK);
    ck_assert_int_eq(vt->forward(model, &batch, &losses[1]), LM_OK);
    lm_plugin_release(p, model);
}

START_TEST(abi10_plugin_trains_like_the_current_build) {
    lm_registry *old_r, *new_r;
    const lm_plugin *old_p = load_bert(&old_r, LM_TEST_ABI10_BERT);
    const lm_plugin *new_p = load_bert(&new_r, LM_TEST_CURRENT_BERT);
    ck_assert_int_eq(new_p->descriptor->abi_minor, LM_ABI_MINOR);
    float old_losses[2], new_losses[2];
    train_two_steps(old_p, old_losses);
    train_two_steps(new_p, new_losses);
    ck_assert(isfinite(old_losses[0]) && old_losses[0] > 3.0f); /* about ln(64) = 4.16 at initialisation */
    ck_assert_float_lt(old_losses[1], old_losses[0]);          /* the step learned something */
    ck_assert_float_eq(old_losses[0], new_losses[0]);          /* same code, same numbers */
    ck_assert_float_eq(old_losses[1], new_losses[1]);
    lm_registry_destroy(old_r);
    lm_registry_destroy(new_r);
}
END_TEST

int main(void) {
    Suite *s = suite_create("abi_compat");
    TCase *tc = tcase_create("abi10");
    tcase_add_test(tc, abi10_plugin_loads_with_missing_slots_null);
    tcase_add_test(tc, abi10_plugin_trains_like_the_current_build);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}
