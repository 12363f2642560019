/* Driving an architecture plugin under ABI 2.0 in tests (tests/gpt2,
 * tests/bert, tests/memory, tests/generate): a step state in the model's
 * device memory, a forward whose loss is read back, host copies of the
 * parameter and gradient buffers, and a few training steps with the adamw
 * optimizer plugin.  Header-only, like the rest of tests/common; needs
 * LM_TEST_PLUGIN_DIR (the build's plugin folder) for the optimizer. */
#ifndef LMCORE_TESTS_MODEL_STEPS_H
#define LMCORE_TESTS_MODEL_STEPS_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lmcore/lmcore.h"
#include "plugin_load.h"

/* The model's parameter set (ck_assert on failure). */
static inline lm_param_set lm_test_params(const lm_architecture_vtable *vt, void *model) {
    lm_param_set set;
    ck_assert_msg(vt->parameters(model, &set) == LM_OK, "%s", lm_error_message());
    return set;
}

/* A zeroed step state in the model's device memory with this dropout key;
 * free it with lm_test_state_free. */
static inline lm_step_state *lm_test_state_new(const lm_architecture_vtable *vt, void *model, uint64_t seed,
                                               uint64_t micro_batch) {
    lm_param_set set = lm_test_params(vt, model);
    lm_step_state *state = NULL;
    ck_assert_msg(set.device->ops->alloc(set.device, (void **)&state, sizeof *state, "a test step state") == LM_OK,
                  "%s", lm_error_message());
    lm_step_state host;
    memset(&host, 0, sizeof host);
    host.seed = seed;
    host.micro_batch = micro_batch;
    host.clip_scale = 1.0f;
    ck_assert_int_eq(set.device->ops->upload(set.device, state, &host, sizeof host), LM_OK);
    return state;
}

static inline void lm_test_state_free(const lm_architecture_vtable *vt, void *model, lm_step_state *state) {
    lm_param_set set = lm_test_params(vt, model);
    set.device->ops->free(set.device, state);
}

/* The state as the device has it. */
static inline lm_step_state lm_test_state_read(const lm_architecture_vtable *vt, void *model,
                                               const lm_step_state *state) {
    lm_param_set set = lm_test_params(vt, model);
    lm_step_state host;
    ck_assert_msg(set.device->ops->download(set.device, &host, state, sizeof host) == LM_OK, "%s",
                  lm_error_message());
    return host;
}

/* Sets the dropout key (seed, micro-batch counter) of a state. */
static inline void lm_test_state_key(const lm_architecture_vtable *vt, void *model, lm_step_state *state,
                                     uint64_t seed, uint64_t micro_batch) {
    lm_param_set set = lm_test_params(vt, model);
    uint64_t key[2] = {seed, micro_batch};
    ck_assert_int_eq(set.device->ops->upload(set.device, state, key, sizeof key), LM_OK);
}

/* forward with a state, then the loss it wrote (NaN when the batch has no
 * labels).  Returns the forward's status, its message in lm_error_message(). */
static inline lm_status lm_test_forward(const lm_architecture_vtable *vt, void *model, const lm_batch *batch,
                                        lm_step_state *state, float *loss) {
    if (loss) *loss = NAN;
    lm_status status = vt->forward(model, batch, state);
    if (status != LM_OK || !state || !loss || !batch->labels) return status;
    *loss = lm_test_state_read(vt, model, state).loss;
    return LM_OK;
}

/* Host copies of the flat buffers (n_params floats; lm_free them). */
static inline float *lm_test_read_params(const lm_architecture_vtable *vt, void *model) {
    lm_param_set set = lm_test_params(vt, model);
    float *host = NULL;
    ck_assert_int_eq(lm_alloc((void **)&host, set.n_params * sizeof(float), "test params"), LM_OK);
    ck_assert_int_eq(set.device->ops->download(set.device, host, set.params, set.n_params * sizeof(float)), LM_OK);
    return host;
}

static inline float *lm_test_read_grads(const lm_architecture_vtable *vt, void *model) {
    lm_param_set set = lm_test_params(vt, model);
    float *host = NULL;
    ck_assert_int_eq(lm_alloc((void **)&host, set.n_params * sizeof(float), "test grads"), LM_OK);
    ck_assert_int_eq(set.device->ops->download(set.device, host, set.grads, set.n_params * sizeof(float)), LM_OK);
    return host;
}

static inline void lm_test_write_params(const lm_architecture_vtable *vt, void *model, const float *host) {
    lm_param_set set = lm_test_params(vt, model);
    ck_assert_int_eq(set.device->ops->upload(set.device, set.params, host, set.n_params * sizeof(float)), LM_OK);
    ck_assert_int_eq(set.device->ops->sync(set.device), LM_OK);
}

/* The model's device and what it has counted (downloads, syncs, uploads). */
static inline lm_device *lm_test_device(const lm_architecture_vtable *vt, void *model) {
    return lm_test_params(vt, model).device;
}

static inline lm_device_counters lm_test_counters(const lm_architecture_vtable *vt, void *model) {
    lm_device *dev = lm_test_device(vt, model);
    lm_device_counters c;
    memset(&c, 0, sizeof c);
    dev->ops->counters(dev, &c);
    return c;
}

/* The descriptor of the tensor called `name` (ck_abort when there is none). */
static inline const lm_param_desc *lm_test_find_desc(const lm_architecture_vtable *vt, void *model,
                                                     const char *name) {
    lm_param_set set = lm_test_params(vt, model);
    for (size_t i = 0; i < set.n_descs; i++)
        if (strcmp(set.descs[i].name, name) == 0) return &set.descs[i];
    ck_abort_msg("no parameter %s", name);
    return NULL;
}

/* Replaces the whole step state with `host` (the host fields of a run start:
 * seed, micro_batch, step, max_grad_norm ...). */
static inline void lm_test_state_write(const lm_architecture_vtable *vt, void *model, lm_step_state *state,
                                       const lm_step_state *host) {
    lm_device *dev = lm_test_device(vt, model);
    ck_assert_int_eq(dev->ops->upload(dev, state, host, sizeof *host), LM_OK);
}

/* The adamw optimizer plugin's vtable (dlopen'd once, kept open). */
static inline const lm_optimizer_vtable *lm_test_adamw(void) {
    static const lm_optimizer_vtable *vt = NULL;
    if (vt) return vt;
    const lm_plugin_descriptor *d = lm_test_plugin("optimizer_adamw", LM_KIND_OPTIMIZER);
    ck_assert_str_eq(d->name, "adamw");
    vt = d->vtable;
    return vt;
}

/* An adamw optimizer bound to the model: weight decay 0.01, torch's betas
 * (0.9, 0.999) and eps 1e-8, given explicitly (what the PyTorch fixtures
 * were made with, whatever the plugin's defaults). */
static inline void *lm_test_adamw_bind(void *model, const lm_architecture_vtable *vt) {
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, "optimizer 'adamw'"), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "weight_decay", 0.01), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "beta1", 0.9), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "beta2", 0.999), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "eps", 1e-8), LM_OK);
    void *optimizer = NULL;
    ck_assert_msg(lm_test_adamw()->create(&optimizer, cfg) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(lm_config_validate(cfg), LM_OK);
    lm_config_destroy(cfg);
    lm_param_set set = lm_test_params(vt, model);
    ck_assert_msg(lm_test_adamw()->bind(optimizer, &set) == LM_OK, "%s", lm_error_message());
    return optimizer;
}

/* One optimizer step at learning rate `lr` on the gradients the model holds:
 * the global norm into *norm (no clipping beyond `clip_scale`, which the
 * update multiplies the gradients by), AdamW, the step count + 1. */
static inline void lm_test_adamw_step(const lm_architecture_vtable *vt, void *model, void *optimizer,
                                      lm_step_state *state, double lr, float clip_scale, float *norm) {
    lm_param_set set = lm_test_params(vt, model);
    lm_device *dev = set.device;
    ck_assert_int_eq(dev->ops->step_clip(dev, state, set.grads, LM_F32, set.n_params), LM_OK);
    ck_assert_int_eq(dev->ops->upload(dev, &state->lr, &lr, sizeof lr), LM_OK);
    ck_assert_int_eq(dev->ops->upload(dev, &state->clip_scale, &clip_scale, sizeof clip_scale), LM_OK);
    ck_assert_msg(lm_test_adamw()->step(optimizer, state) == LM_OK, "%s", lm_error_message());
    if (norm) *norm = lm_test_state_read(vt, model, state).grad_norm;
    ck_assert_int_eq(dev->ops->step_finish(dev, state), LM_OK);
    ck_assert_msg(dev->ops->sync(dev) == LM_OK, "%s", lm_error_message());
}

/* One optimizer step as the trainer runs it, with clipping on the device:
 * max_grad_norm and the learning rate into the state, step_clip (the norm,
 * and clip_scale = torch's clip coefficient when the norm exceeds
 * max_grad_norm), AdamW (which reads lr as a float, clip_scale as its
 * gradient scale and t = step + 1), step_finish.  Writes the norm and the
 * clip scale the update used. */
static inline void lm_test_adamw_clipped_step(const lm_architecture_vtable *vt, void *model, void *optimizer,
                                              lm_step_state *state, double lr, double max_grad_norm, float *norm,
                                              float *clip_scale) {
    lm_param_set set = lm_test_params(vt, model);
    lm_device *dev = set.device;
    ck_assert_int_eq(dev->ops->upload(dev, &state->max_grad_norm, &max_grad_norm, sizeof max_grad_norm), LM_OK);
    ck_assert_int_eq(dev->ops->upload(dev, &state->lr, &lr, sizeof lr), LM_OK);
    ck_assert_int_eq(dev->ops->step_clip(dev, state, set.grads, (lm_dtype)set.grad_dtype, set.n_params), LM_OK);
    ck_assert_msg(lm_test_adamw()->step(optimizer, state) == LM_OK, "%s", lm_error_message());
    lm_step_state host = lm_test_state_read(vt, model, state);
    if (norm) *norm = host.grad_norm;
    if (clip_scale) *clip_scale = host.clip_scale;
    ck_assert_int_eq(dev->ops->step_finish(dev, state), LM_OK);
    ck_assert_msg(dev->ops->sync(dev) == LM_OK, "%s", lm_error_message());
}

/* `steps` steps of forward, backward (gradients written), the norm and
 * AdamW (lr 1e-3, weight decay 0.01, gradients scaled by 0.5) on `batch`,
 * with dropout seed 99 and the step number as the micro-batch counter;
 * writes each step's loss and gradient norm.  Fails the test on any error. */
static inline void lm_test_train_steps(const lm_architecture_vtable *vt, void *model, const lm_batch *batch,
                                       int steps, float *losses, float *norms) {
    void *optimizer = lm_test_adamw_bind(model, vt);
    lm_step_state *state = lm_test_state_new(vt, model, 99, 0);
    for (int step = 0; step < steps; step++) {
        lm_test_state_key(vt, model, state, 99, (uint64_t)step);
        ck_assert_msg(lm_test_forward(vt, model, batch, state, &losses[step]) == LM_OK, "%s", lm_error_message());
        ck_assert_msg(vt->backward(model, 1.0f, 0) == LM_OK, "%s", lm_error_message());
        lm_test_adamw_step(vt, model, optimizer, state, 1e-3, 0.5f, &norms[step]);
    }
    lm_test_state_free(vt, model, state);
    lm_test_adamw()->destroy(optimizer);
}

/* The steps of a PyTorch fixture's Trainer-style run (tests/gpt2, tests/bert):
 * LM_TEST_PARITY_STEPS steps on `batch` of forward, backward, clipping the
 * global norm to 1.0 on the device and AdamW at lr 1e-3 (betas 0.9/0.999,
 * eps 1e-8, weight decay 0.01 on all but biases and LayerNorm weights), then
 * an evaluation-mode loss.  Each step's loss and norm must be within
 * tol_loss / tol_norm (relative) of the fixture's, the clip coefficient
 * torch's max_norm / (norm + 1e-6) where it applies, at least one step must
 * clip, and the final loss must be within tol_loss of ref_final.  Prints
 * the worst errors after `label`. */
#define LM_TEST_PARITY_STEPS 10
static inline void lm_test_check_adamw_parity(const lm_architecture_vtable *vt, void *model, const lm_batch *batch,
                                              const float *ref_losses, const float *ref_norms, float ref_final,
                                              double tol_loss, double tol_norm, const char *label) {
    void *optimizer = lm_test_adamw_bind(model, vt);
    lm_step_state *state = lm_test_state_new(vt, model, 0, 0);
    double worst_loss = 0.0, worst_norm = 0.0;
    int clipped = 0;
    for (int step = 0; step < LM_TEST_PARITY_STEPS; step++) {
        float loss, norm, scale;
        lm_test_state_key(vt, model, state, 0, (uint64_t)step);
        ck_assert_msg(lm_test_forward(vt, model, batch, state, &loss) == LM_OK, "%s", lm_error_message());
        ck_assert_msg(vt->backward(model, 1.0f, 0) == LM_OK, "%s", lm_error_message());
        lm_test_adamw_clipped_step(vt, model, optimizer, state, 1e-3, 1.0, &norm, &scale);
        /* torch.nn.utils.clip_grad_norm_: coefficient max_norm / (norm + 1e-6), applied below 1. */
        double coefficient = 1.0 / ((double)norm + 1e-6);
        if (coefficient < 1.0) {
            clipped++;
            ck_assert_msg(fabs(scale - coefficient) <= 1e-7 * coefficient, "step %d: clip scale %.9g, torch %.9g",
                          step, scale, coefficient);
        } else {
            ck_assert_msg(scale == 1.0f, "step %d: norm %g under 1 but clip scale %g", step, norm, scale);
        }
        double loss_rel = fabs((double)loss - ref_losses[step]) / ref_losses[step];
        double norm_rel = fabs((double)norm - ref_norms[step]) / ref_norms[step];
        if (loss_rel > worst_loss) worst_loss = loss_rel;
        if (norm_rel > worst_norm) worst_norm = norm_rel;
        ck_assert_msg(loss_rel < tol_loss, "step %d: loss %.7f vs pytorch %.7f", step, loss, ref_losses[step]);
        ck_assert_msg(norm_rel < tol_norm, "step %d: grad norm %.7f vs pytorch %.7f", step, norm, ref_norms[step]);
    }
    ck_assert_msg(clipped >= 1, "the fixture never clips: the test would not see clipping");
    ck_assert_int_eq(lm_test_state_read(vt, model, state).step, LM_TEST_PARITY_STEPS);
    /* The loss after the last (clipped) update. */
    float loss;
    ck_assert_int_eq(vt->set_training(model, 0), LM_OK);
    ck_assert_msg(lm_test_forward(vt, model, batch, state, &loss) == LM_OK, "%s", lm_error_message());
    double final_rel = fabs((double)loss - ref_final) / ref_final;
    printf("%s: %d AdamW steps, worst loss relative error %.2e, worst grad-norm relative error %.2e, "
           "final loss %.7f (pytorch %.7f, relative %.2e)\n",
           label, LM_TEST_PARITY_STEPS, worst_loss, worst_norm, loss, ref_final, final_rel);
    ck_assert_msg(final_rel < tol_loss, "loss after %d steps %.7f vs pytorch %.7f", LM_TEST_PARITY_STEPS, loss,
                  ref_final);
    lm_test_state_free(vt, model, state);
    lm_test_adamw()->destroy(optimizer);
}

/* The recompute= settings each architecture must train with bit for bit as
 * without: with attention dropout, and without it (no dropped
 * probabilities are kept then; att aliases preatt). */
typedef struct lm_test_recompute_case {
    const char *setting;
    const char *attention_dropout;
} lm_test_recompute_case;
static const lm_test_recompute_case lm_test_recompute_cases[] = {
    {"recompute=activations", "0.1"},
    {"recompute=attention", "0.1"},
    {"recompute=activations", "0"},
    {"recompute=attention", "0"},
};
#define LM_TEST_RECOMPUTE_CASES (sizeof lm_test_recompute_cases / sizeof lm_test_recompute_cases[0])

/* Two implementations of the same model (attn_implementation=eager, [0],
 * and =sdpa, [1]) after three steps of lm_test_train_steps from the same
 * weights `initial`: each step's loss and gradient norm within 1e-5
 * relative, and the parameters' change (final - initial) within 1e-2 of
 * the largest change.  AdamW normalises each gradient element, so an
 * element whose gradient is near 0 may move by up to lr either way: the
 * change, not the value, is compared, to its largest element.  Measured on
 * the tiny fixtures on the CPU: losses and norms equal to the bit, the
 * change within 3e-3 (BERT) and 4e-4 (GPT-2) of the largest. */
static inline void lm_test_check_implementations_agree(const char *label, float losses[2][3], float norms[2][3],
                                                       const float *initial, float *const params[2], size_t n) {
    double worst_loss = 0.0, worst_norm = 0.0, worst_change = 0.0, largest_change = 0.0;
    for (int step = 0; step < 3; step++) {
        const double loss_rel = fabs((double)losses[1][step] - losses[0][step]) / fabs((double)losses[0][step]);
        const double norm_rel = fabs((double)norms[1][step] - norms[0][step]) / fabs((double)norms[0][step]);
        worst_loss = loss_rel > worst_loss || isnan(loss_rel) ? loss_rel : worst_loss;
        worst_norm = norm_rel > worst_norm || isnan(norm_rel) ? norm_rel : worst_norm;
    }
    for (size_t i = 0; i < n; i++) {
        const double change = fabs((double)params[0][i] - initial[i]);
        const double diff = fabs((double)params[1][i] - params[0][i]);
        largest_change = change > largest_change ? change : largest_change;
        worst_change = diff > worst_change || isnan(diff) ? diff : worst_change;
    }
    printf("%s eager vs sdpa, 3 steps with dropout: losses %.7f %.7f %.7f vs %.7f %.7f %.7f; worst relative loss "
           "%.2e, norm %.2e, parameter change %.2e of %.2e\n",
           label, losses[0][0], losses[0][1], losses[0][2], losses[1][0], losses[1][1], losses[1][2], worst_loss,
           worst_norm, worst_change, largest_change);
    ck_assert_msg(worst_loss <= 1e-5, "%s: eager and sdpa losses differ by %.3g relative", label, worst_loss);
    ck_assert_msg(worst_norm <= 1e-5, "%s: eager and sdpa gradient norms differ by %.3g relative", label, worst_norm);
    ck_assert_msg(largest_change > 0.0 && worst_change <= 1e-2 * largest_change,
                  "%s: parameters after 3 steps differ by %.3g (largest change %.3g)", label, worst_change,
                  largest_change);
}

#endif
