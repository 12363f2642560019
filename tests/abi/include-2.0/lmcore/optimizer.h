/* lmcore — the optimizer plugin interface (kind LM_KIND_OPTIMIZER).
 *
 * An optimizer updates a model's parameters from their gradients, as
 * torch.optim does: it owns its state (AdamW's moments, SGD's momentum
 * buffers), allocated on the model's device beside the parameters, and
 * reads everything that changes from step to step from the step state in
 * device memory (step.h): the learning rate, the step count and the clip
 * scale.  So an update is queued work that never waits for the device and
 * takes no per-step argument, and a CUDA graph can replay it.
 *
 * Parameter groups: each tensor's lm_param_desc.weight_decay says whether
 * the optimizer's weight decay applies to it (not to biases and LayerNorm
 * weights, as the Hugging Face Trainer does). */
#ifndef LMCORE_OPTIMIZER_H
#define LMCORE_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

#include "architecture.h"
#include "config.h"
#include "device.h"
#include "status.h"
#include "step.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One buffer of an optimizer's state, in device memory.  Per-parameter
 * buffers are laid out like lm_param_set.params (n_params floats) and are
 * saved as "<tensor name>.<name>" ("transformer.wte.weight.exp_avg");
 * others are saved whole as "optimizer.<name>". */
typedef struct lm_optimizer_state {
    const char *name;  /* "exp_avg": PyTorch's name for it where there is one */
    float *data;       /* device memory */
    size_t count;      /* floats */
    int32_t per_parameter;
    int32_t reserved0;
} lm_optimizer_state;

typedef struct lm_optimizer_vtable {
    /* Required.  cfg: the optimizer's hyper-parameters, e.g. weight_decay,
     * beta1, beta2, eps for adamw.  Not the learning rate: that comes from
     * the step state at every update (schedule included). */
    lm_status (*create)(void **self, lm_config *cfg);
    void (*destroy)(void *self);
    /* Allocates the state for these parameters on their device, zero-filled
     * (a fresh start), and keeps `params` (the set's pointers stay valid
     * until destroy).  Called once, before the first step; refuse a
     * gradient dtype or device the plugin cannot serve with
     * LM_ERR_UNSUPPORTED, saying which it can. */
    lm_status (*bind)(void *self, const lm_param_set *params);
    /* One update of every parameter, queued on the device: reads
     * state->lr, state->step (the update is number step + 1),
     * state->clip_scale (multiply the gradients by it first) and
     * state->bad_step (when it is not 0, the run diverged: change nothing),
     * all in device memory.  Never waits for the device, never reads from
     * it.  When params_copy is set, rewrites it from the new params. */
    lm_status (*step)(void *self, const lm_step_state *state);
    /* The state buffers, for checkpoints (read and written through the
     * device's download and upload).  Valid after bind. */
    lm_status (*state_count)(void *self, size_t *n);
    lm_status (*state_at)(void *self, size_t index, lm_optimizer_state *out);
    /* Appends the hyper-parameters as the members of a JSON object (no
     * braces), in torch.optim names: "\"betas\": [0.9, 0.999], ...".  Saved
     * with checkpoints and in training_args.json. */
    lm_status (*settings_json)(void *self, lm_buffer *out);
} lm_optimizer_vtable;

#ifdef __cplusplus
}
#endif
#endif
