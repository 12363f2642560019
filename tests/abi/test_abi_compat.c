/* Plugin ABI compatibility across versions (docs/plugin-abi.md,
 * "Compatibility rules"), with plugins compiled against frozen copies of
 * the public headers:
 *
 *   abi1:  plugins built against the ABI 1.0 headers (tests/abi/include-1.0)
 *          are refused by this core, before any of their code but the
 *          descriptor runs, with a message that names both versions and
 *          says what to change.
 *   abi20: plugins built against the ABI 2.0 headers (tests/abi/include-2.0)
 *          load and run with this core, whatever its 2.x minor: slots a
 *          later minor appends read as NULL.  A dataset and an optimizer
 *          are exercised through the registry (and a communicator, whose
 *          2.1 slots must read as NULL), the optimizer on a device
 *          and a step state made by the current core (a layout change of
 *          lm_param_set, lm_device_ops or lm_step_state shows up as wrong
 *          numbers or a crash here). */
#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "registry.h"
#include "test_main.h"

static lm_registry *registry(void) {
    lm_registry *r;
    ck_assert_int_eq(lm_registry_create(&r), LM_OK);
    return r;
}

/* ---- ABI 1.x: refused, saying what to change -------------------------- */

static void expect_abi1_refusal(const char *path) {
    lm_registry *r = registry();
    ck_assert_int_eq(lm_registry_load_file(r, path), LM_ERR_ABI);
    const char *m = lm_error_message();
    char versions[128];
    snprintf(versions, sizeof versions, "built for plugin ABI 1.0 but this lmcore speaks ABI %d.%d", LM_ABI_MAJOR,
             LM_ABI_MINOR);
    /* What happened, naming both versions, and what to change, kind by kind. */
    const char *const phrases[] = {versions,
                                   "rebuild it against these headers",
                                   "parameters()",
                                   "optimizers are plugins of their own",
                                   "step state",
                                   "accumulate flag",
                                   "open_split",
                                   "objectives own the batch",
                                   "Migrating from ABI 1"};
    for (size_t i = 0; i < sizeof phrases / sizeof *phrases; i++)
        ck_assert_msg(strstr(m, phrases[i]) != NULL, "refusal '%s' lacks '%s'", m, phrases[i]);
    ck_assert_msg(strstr(m, path) == m, "refusal '%s' does not start with the file's path", m);
    ck_assert_ptr_null(strchr(m, '\n')); /* one line */
    ck_assert_uint_eq(lm_registry_count(r), 0);
    ck_assert_uint_eq(lm_registry_rejected_count(r), 1);
    const char *rejected_path, *reason;
    lm_registry_rejected_at(r, 0, &rejected_path, &reason);
    ck_assert_str_eq(reason, m); /* what `lmcore plugins` lists under "refused:" */
    lm_registry_destroy(r);
}

START_TEST(abi10_dataset_is_refused) {
    ck_assert_int_eq(LM_ABI_MAJOR, 2);
    expect_abi1_refusal(LM_TEST_ABI10_DATASET);
}
END_TEST

/* Same slots in 1.0 and 2.0, refused all the same: a major promises nothing. */
START_TEST(abi10_logger_is_refused) { expect_abi1_refusal(LM_TEST_ABI10_LOGGER); }
END_TEST

/* A script asking for the refused plugin by name is told why it is missing. */
START_TEST(abi10_refusal_reaches_whoever_asks_for_it) {
    lm_registry *r = registry();
    ck_assert_int_eq(lm_registry_scan_dir(r, LM_TEST_ABI10_DIR), LM_OK);
    ck_assert_uint_eq(lm_registry_count(r), 0);
    ck_assert_uint_eq(lm_registry_rejected_count(r), 2);
    const lm_plugin *p;
    ck_assert_int_eq(lm_registry_find(r, LM_KIND_DATASET, "abi10_rows", &p), LM_ERR_NOT_FOUND);
    const char *m = lm_error_message();
    ck_assert_msg(strstr(m, "unknown dataset plugin 'abi10_rows': a file that may be it was refused") != NULL &&
                      strstr(m, "built for plugin ABI 1.0") != NULL,
                  "message: %s", m);
    lm_registry_destroy(r);
}
END_TEST

/* `lmcore plugins` lists the 2.0 plugins by kind and the 1.0 ones under
 * "refused:" with the reason, as a plugin author first meets them. */
START_TEST(listing_shows_both) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "LMCORE_PLUGIN_PATH= '%s' --plugin-path '%s:%s' plugins 2>&1", LM_TEST_LMCORE_EXE,
             LM_TEST_ABI10_DIR, LM_TEST_ABI20_DIR);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    static char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    const char *refused = strstr(out, "\nrefused:");
    ck_assert_msg(refused != NULL, "no refused: section in\n%s", out);
    /* Listed (before "refused:"), each on a line starting with its kind. */
    const char *const listed[][2] = {{"optimizer", "abi20_sgd"}, {"dataset", "abi20_lines"}};
    for (size_t i = 0; i < 2; i++) {
        char line[64];
        snprintf(line, sizeof line, "\n%s ", listed[i][0]);
        const char *at = strstr(out, line);
        ck_assert_msg(at && at < refused && strstr(at, listed[i][1]) && strstr(at, listed[i][1]) < strchr(at + 1, '\n'),
                      "'%s %s' not listed in\n%s", listed[i][0], listed[i][1], out);
    }
    ck_assert_msg(strstr(refused, "lm_abi10_rows.so: built for plugin ABI 1.0") &&
                      strstr(refused, "lm_abi10_quiet.so: built for plugin ABI 1.0"),
                  "the 1.0 plugins are not refused with their reason in\n%s", out);
    ck_assert_msg(strstr(refused, "abi20_") == NULL, "a 2.0 plugin was refused:\n%s", refused);
}
END_TEST

/* ---- ABI 2.0 plugins with this core ---------------------------------- */

static const lm_plugin *load(lm_registry *r, const char *path, lm_plugin_kind kind, const char *name) {
    ck_assert_msg(lm_registry_load_file(r, path) == LM_OK, "%s", lm_error_message());
    const lm_plugin *p;
    ck_assert_int_eq(lm_registry_find(r, kind, name, &p), LM_OK);
    ck_assert_int_eq(p->descriptor->abi_major, 2);
    ck_assert_int_eq(p->descriptor->abi_minor, 0);
    ck_assert_int_le(p->descriptor->abi_minor, LM_ABI_MINOR);
    return p;
}

/* Bytes of the core's copy of the vtable past what the plugin gave: the
 * slots later minors appended, which must read as NULL. */
static void expect_later_slots_null(const lm_plugin *p, size_t core_size) {
    const unsigned char *bytes = (const unsigned char *)&p->vtable;
    for (size_t i = p->descriptor->vtable_size; i < core_size; i++)
        ck_assert_msg(bytes[i] == 0, "byte %zu of the %s vtable, past the plugin's %u, is not zero", i,
                      lm_plugin_kind_name(p->kind), p->descriptor->vtable_size);
}

START_TEST(abi20_dataset_loads_and_runs) {
    lm_registry *r = registry();
    const lm_plugin *p = load(r, LM_TEST_ABI20_DATASET, LM_KIND_DATASET, "abi20_lines");
    /* 2.0's dataset table ends with open_split; later minors may add more. */
    ck_assert_uint_eq(p->descriptor->vtable_size, offsetof(lm_dataset_vtable, open_split) + sizeof(void *));
    expect_later_slots_null(p, sizeof(lm_dataset_vtable));

    lm_config *cfg;
    ck_assert_int_eq(lm_config_create(&cfg, "dataset 'abi20_lines'"), LM_OK);
    ck_assert_int_eq(lm_config_set_int(cfg, "rows", 4), LM_OK);
    void *self;
    ck_assert_msg(lm_plugin_instantiate(p, cfg, &self) == LM_OK, "%s", lm_error_message());
    const lm_dataset_vtable *vt = &p->vtable.dataset;
    size_t n_splits;
    ck_assert_int_eq(vt->split_count(self, &n_splits), LM_OK);
    ck_assert_uint_eq(n_splits, 2);
    const char *name;
    ck_assert_int_eq(vt->split_name(self, 1, &name), LM_OK);
    ck_assert_str_eq(name, "validation");
    const lm_text_source *src, *again;
    ck_assert_int_eq(vt->open_split(self, "validation", &src), LM_OK);
    ck_assert_uint_ge(src->struct_size, offsetof(lm_text_source, name) + sizeof(void *)); /* 2.0's fields */
    ck_assert_uint_le(src->struct_size, sizeof(lm_text_source));
    ck_assert_uint_eq(src->count, 4);
    ck_assert_str_eq(src->name, "validation");
    ck_assert_uint_ne(src->fingerprint, 0);
    const char *text;
    size_t len;
    ck_assert_int_eq(src->row(src->ctx, 3, &text, &len), LM_OK);
    ck_assert_uint_eq(len, strlen("validation line 3"));
    ck_assert_int_eq(memcmp(text, "validation line 3", len), 0);
    ck_assert_int_eq(src->row(src->ctx, 4, &text, &len), LM_ERR_INVALID);
    ck_assert_int_eq(vt->open_split(self, "validation", &again), LM_OK);
    ck_assert_ptr_eq(again, src);
    ck_assert_int_eq(vt->open_split(self, "test", &src), LM_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "no split 'test'"));
    lm_plugin_release(p, self);
    lm_config_destroy(cfg);
    lm_registry_destroy(r);
}
END_TEST

/* Two tensors in one flat buffer: "w" (4 floats, decayed), "b" (2, not). */
enum { N = 6 };
static const lm_param_desc descs[2] = {
    {"w", 2, 1, {2, 2, 0, 0}, 0, 4},
    {"b", 1, 0, {2, 0, 0, 0}, 4, 2},
};
static const float params0[N] = {0.5f, -1.0f, 2.0f, 0.25f, 0.1f, -0.2f};
static const float grads_of_step[2][N] = {{3.0f, 0.0f, -4.0f, 0.0f, 0.0f, 0.0f}, /* norm 5: clipped to 1 */
                                          {0.1f, 0.2f, -0.1f, 0.0f, 0.3f, 0.1f}}; /* norm 0.4: not clipped */
static const double lr = 0.5, momentum = 0.9, weight_decay = 0.1, max_grad_norm = 1.0;

/* What torch.optim.SGD(momentum, weight_decay) does after clip_grad_norm_, in floats. */
static void expected_params(int steps, float out[N]) {
    float buf[N];
    memcpy(out, params0, sizeof params0);
    for (int s = 0; s < steps; s++) {
        double sum = 0;
        for (int i = 0; i < N; i++) sum += (double)grads_of_step[s][i] * grads_of_step[s][i];
        const double norm = sqrt(sum);
        const float clip = norm > max_grad_norm ? (float)(max_grad_norm / (norm + 1e-6)) : 1.0f;
        for (int i = 0; i < N; i++) {
            const float decay = i < 4 ? (float)weight_decay : 0.0f;
            const float d = grads_of_step[s][i] * clip + decay * out[i];
            buf[i] = s == 0 ? d : (float)momentum * buf[i] + d;
            out[i] -= (float)lr * buf[i];
        }
    }
}

START_TEST(abi20_optimizer_steps_on_this_cores_device) {
    lm_registry *r = registry();
    const lm_plugin *p = load(r, LM_TEST_ABI20_OPTIMIZER, LM_KIND_OPTIMIZER, "abi20_sgd");
    ck_assert_uint_eq(p->descriptor->vtable_size, offsetof(lm_optimizer_vtable, settings_json) + sizeof(void *));
    expect_later_slots_null(p, sizeof(lm_optimizer_vtable));

    /* The current core's CPU device, as a model hands it out. */
    lm_backend *be;
    ck_assert_int_eq(lm_backend_create(&be, "cpu", LM_PRECISION_FP32, 2), LM_OK);
    lm_device *dev = &be->device;
    const lm_device_ops *ops = dev->ops;
    float *params, *grads;
    lm_step_state *state;
    ck_assert_int_eq(ops->alloc(dev, (void **)&params, N * sizeof(float), "test params"), LM_OK);
    ck_assert_int_eq(ops->alloc(dev, (void **)&grads, N * sizeof(float), "test grads"), LM_OK);
    ck_assert_int_eq(ops->alloc(dev, (void **)&state, sizeof *state, "step state"), LM_OK);
    ck_assert_int_eq(ops->upload(dev, params, params0, sizeof params0), LM_OK);
    lm_step_state host = {0};
    host.seed = 1;
    host.schedule.kind = LM_SCHEDULE_CONSTANT;
    host.schedule.base_lr = lr;
    host.max_grad_norm = max_grad_norm;
    host.clip_scale = 1.0f;
    ck_assert_int_eq(ops->upload(dev, state, &host, sizeof host), LM_OK);
    lm_param_set set = {0};
    set.struct_size = sizeof set;
    set.grad_dtype = LM_F32;
    set.device = dev;
    set.descs = descs;
    set.n_descs = 2;
    set.n_params = N;
    set.params = params;
    set.grads = grads;
    set.copy_dtype = LM_F32;

    lm_config *cfg;
    ck_assert_int_eq(lm_config_create(&cfg, "optimizer 'abi20_sgd'"), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "momentum", momentum), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "weight_decay", weight_decay), LM_OK);
    void *opt;
    ck_assert_msg(lm_plugin_instantiate(p, cfg, &opt) == LM_OK, "%s", lm_error_message());
    const lm_optimizer_vtable *vt = &p->vtable.optimizer;
    ck_assert_msg(vt->bind(opt, &set) == LM_OK, "%s", lm_error_message());
    size_t n_states;
    ck_assert_int_eq(vt->state_count(opt, &n_states), LM_OK);
    ck_assert_uint_eq(n_states, 1);
    lm_optimizer_state st;
    ck_assert_int_eq(vt->state_at(opt, 0, &st), LM_OK);
    ck_assert_str_eq(st.name, "momentum_buffer");
    ck_assert_uint_eq(st.count, N);
    ck_assert_int_eq(st.per_parameter, 1);
    lm_buffer json = {0};
    ck_assert_int_eq(vt->settings_json(opt, &json), LM_OK);
    ck_assert_ptr_nonnull(strstr(json.data, "\"momentum\": 0.9"));
    lm_buffer_free(&json);

    /* Two steps as the trainer runs them; nothing waits for the device. */
    lm_device_counters before, after;
    ops->counters(dev, &before);
    for (int s = 0; s < 2; s++) {
        ck_assert_int_eq(ops->upload(dev, grads, grads_of_step[s], sizeof grads_of_step[s]), LM_OK);
        ck_assert_int_eq(ops->step_clip(dev, state, grads, LM_F32, N), LM_OK);
        ck_assert_int_eq(ops->step_schedule(dev, state), LM_OK);
        ck_assert_int_eq(vt->step(opt, state), LM_OK);
        ck_assert_int_eq(ops->step_finish(dev, state), LM_OK);
    }
    ops->counters(dev, &after);
    ck_assert_uint_eq(after.downloads, before.downloads);
    ck_assert_uint_eq(after.syncs, before.syncs);
    ck_assert_int_eq(ops->sync(dev), LM_OK);

    float got[N], want[N];
    ck_assert_int_eq(ops->download(dev, got, params, sizeof got), LM_OK);
    expected_params(2, want);
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-6f * (1.0f + fabsf(want[i])), "param %d: %.9g, expected %.9g", i,
                      (double)got[i], (double)want[i]);
    ck_assert_int_eq(ops->download(dev, &host, state, sizeof host), LM_OK);
    ck_assert_int_eq(host.step, 2);
    ck_assert_double_eq_tol(host.lr, lr, 1e-12);
    ck_assert_float_eq_tol(host.grad_norm, 0.4f, 1e-6f); /* of the last step */
    ck_assert_float_eq(host.clip_scale, 1.0f);           /* reset by step_finish */

    /* A diverged run (bad_step set): the optimizer changes nothing. */
    host.bad_step = 2;
    ck_assert_int_eq(ops->upload(dev, state, &host, sizeof host), LM_OK);
    ck_assert_int_eq(vt->step(opt, state), LM_OK);
    ck_assert_int_eq(ops->download(dev, want, params, sizeof want), LM_OK);
    ck_assert_int_eq(memcmp(want, got, sizeof got), 0);

    /* The model goes first (its buffers, then its hold on the device); the
     * optimizer's hold keeps the device alive until the optimizer frees
     * its state and releases it (ASan and valgrind see a use after free). */
    ops->free(dev, state);
    ops->free(dev, grads);
    ops->free(dev, params);
    lm_backend_release(be);
    lm_plugin_release(p, opt);
    lm_config_destroy(cfg);
    lm_registry_destroy(r);
}
END_TEST

/* 2.1 appended the non-blocking all-reduce to the communicator table: a 2.0
 * communicator has none of it (the trainer then reduces after backward) and
 * its 2.0 slots still work. */
START_TEST(abi20_communicator_lacks_the_21_slots) {
    lm_registry *r = registry();
    const lm_plugin *p = load(r, LM_TEST_ABI20_COMMUNICATOR, LM_KIND_COMMUNICATOR, "abi20_one");
    ck_assert_uint_eq(p->descriptor->vtable_size, offsetof(lm_communicator_vtable, abort) + sizeof(void *));
    expect_later_slots_null(p, sizeof(lm_communicator_vtable));
    const lm_communicator_vtable *vt = &p->vtable.communicator;
    ck_assert_ptr_null(vt->all_reduce_start);
    ck_assert_ptr_null(vt->wait);
    ck_assert_ptr_null(vt->test);
    lm_config *cfg;
    ck_assert_int_eq(lm_config_create(&cfg, "communicator 'abi20_one'"), LM_OK);
    void *self;
    ck_assert_msg(lm_plugin_instantiate(p, cfg, &self) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(vt->size(self), 1);
    float grads[3] = {1.0f, 2.0f, 3.0f};
    ck_assert_int_eq(vt->all_reduce(self, grads, 3, LM_F32, LM_REDUCE_AVG), LM_OK);
    ck_assert_float_eq(grads[2], 3.0f);
    lm_plugin_release(p, self);
    lm_config_destroy(cfg);
    lm_registry_destroy(r);
}
END_TEST

int main(void) {
    Suite *s = suite_create("abi_compat");
    TCase *abi1 = tcase_create("abi1");
    tcase_add_test(abi1, abi10_dataset_is_refused);
    tcase_add_test(abi1, abi10_logger_is_refused);
    tcase_add_test(abi1, abi10_refusal_reaches_whoever_asks_for_it);
    tcase_add_test(abi1, listing_shows_both);
    suite_add_tcase(s, abi1);
    TCase *abi20 = tcase_create("abi20");
    tcase_add_test(abi20, abi20_dataset_loads_and_runs);
    tcase_add_test(abi20, abi20_optimizer_steps_on_this_cores_device);
    tcase_add_test(abi20, abi20_communicator_lacks_the_21_slots);
    suite_add_tcase(s, abi20);
    return lm_test_run_suites(s, NULL);
}
