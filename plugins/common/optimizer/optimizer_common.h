/* What the optimizer plugins (adamw, sgd, lion) share: checking and keeping
 * the parameter set bind() receives, its weight-decay ranges, state
 * buffers on the parameters' device, the BF16 copy of the parameters,
 * settings checks and torch-style JSON members.
 *
 * Built as the static library lmplugin_optimizer (hidden symbols, CUDA half
 * lmplugin_optimizer_cuda), linked into each optimizer plugin.
 *
 * Every message names the optimizer ("optimizer 'sgd': ..."), as entries
 * other than create() must (docs/plugin-abi.md, status codes). */
#ifndef LM_OPTIMIZER_COMMON_H
#define LM_OPTIMIZER_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "bf16.h" /* lm_bf16_rne: the BF16 copy rounds as the kernels do (kernels/bf16.h) */
#include "lmcore/lmcore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Elements per task of the CPU loops: lmkernels' LM_CPU_PARALLEL_MIN, so
 * that the AdamW update is cut into the pieces lmcore 1.x used.  Pieces
 * depend on the sizes only, never on the thread count. */
#define LM_OPT_GRAIN 32768L

/* A run of parameters [begin, end) with one weight-decay flag: contiguous
 * tensors with the same lm_param_desc.weight_decay, merged. */
typedef struct lm_opt_range {
    size_t begin, end;
    int decay;
} lm_opt_range;

/* The parameters an optimizer was bound to. */
typedef struct lm_opt_params {
    const char *optimizer; /* "adamw": names the optimizer in messages */
    lm_param_set set;      /* the model's (its pointers stay valid until destroy) */
    lm_device *dev;
    int on_gpu;            /* dev is a CUDA device (then this build has CUDA) */
    lm_opt_range *ranges;  /* cover [0, n_params); elements no tensor claims are not decayed */
    size_t n_ranges;
} lm_opt_params;

/* Checks and keeps `set`: a device the plugin can serve (a CPU device with
 * parallel_for, or a CUDA device when the plugin was built with CUDA), F32
 * gradients, no params_copy or a BF16 one, tensors inside [0, n_params)
 * without overlaps.  LM_ERR_UNSUPPORTED for a dtype or device the plugin
 * cannot serve, saying which it can; LM_ERR_INVALID for a malformed set. */
lm_status lm_opt_bind(lm_opt_params *p, const char *optimizer, const lm_param_set *set);
/* Frees what lm_opt_bind allocated (not the state buffers). */
void lm_opt_release(lm_opt_params *p);

/* A per-parameter state buffer (n_params floats) on the parameters'
 * device, zero-filled: a fresh start. */
lm_status lm_opt_alloc_state(lm_opt_params *p, float **out, const char *what);
void lm_opt_free_state(lm_opt_params *p, float *buffer);

/* Where bind() puts one of its state buffers, and what it is called in an
 * out-of-memory message ("AdamW's exp_avg"). */
typedef struct lm_opt_state_slot {
    float **buffer;
    const char *what;
} lm_opt_state_slot;
/* An optimizer's bind(): lm_opt_bind, then a state buffer for each of the
 * n slots.  On failure nothing stays allocated and *p is unbound again, so
 * that nothing half-made is used or freed twice. */
lm_status lm_opt_bind_with_state(lm_opt_params *p, const char *optimizer, const lm_param_set *set,
                                 const lm_opt_state_slot *slots, size_t n);

/* LM_ERR_INVALID "optimizer '<optimizer>': <entry>() before bind()" when
 * bind() has not succeeded; LM_OK otherwise. */
lm_status lm_opt_check_bound(const lm_opt_params *p, const char *optimizer, const char *entry);
/* What step() checks first: bound, and given the step state. */
lm_status lm_opt_check_step(const lm_opt_params *p, const char *optimizer, const lm_step_state *state);

/* Describes a per-parameter state buffer for state_at(). */
void lm_opt_describe_state(const lm_opt_params *p, const char *name, float *data, lm_optimizer_state *out);

/* The end of every step: when the set has a params_copy, rewrites it from
 * the updated params (BF16, round to nearest even), queued like the update
 * and skipped on a bad step.  A no-op without params_copy. */
void lm_opt_refresh_copy(lm_opt_params *p, const lm_step_state *state);

/* The CPU side: runs fn over every range in pieces of LM_OPT_GRAIN on the
 * device's threads; fn gets absolute element indices. */
typedef void (*lm_opt_range_fn)(void *ctx, const lm_opt_range *range, long begin, long end);
void lm_opt_cpu_for_ranges(lm_opt_params *p, lm_opt_range_fn fn, void *ctx);

/* ---- settings ---- */

/* Reads the number `key` (default `def`) and checks lo <= value (lo < value
 * when lo_open) and value < hi (value <= hi when hi_closed; hi INFINITY:
 * any finite value).  A value outside, or NaN, is LM_ERR_INVALID naming the
 * optimizer and the key. */
lm_status lm_opt_number(lm_config *cfg, const char *optimizer, const char *key, double def, double lo, int lo_open,
                        double hi, int hi_closed, double *out);

/* Appends one member `"key": value` to JSON object members being written
 * as Python's json.dumps spells them ("betas": [0.9, 0.999], "eps": 1e-08):
 * `first` is 1 for the first member (no leading ", ").  Numbers round-trip
 * (lm_json_write_number). */
lm_status lm_opt_json_number(lm_buffer *out, int first, const char *key, double value);
lm_status lm_opt_json_pair(lm_buffer *out, int first, const char *key, double a, double b);
lm_status lm_opt_json_bool(lm_buffer *out, int first, const char *key, int value);

/* ---- CUDA (optimizer_common_cuda.cu; only when built with CUDA) ---- */
#if defined(LM_OPT_HAVE_CUDA)
/* Threads per block of the update kernels; blocks for a grid-stride loop
 * over n elements (capped, as kernels/cuda does). */
#define LM_OPT_CUDA_BLOCK 256
unsigned lm_opt_cuda_grid(size_t n);
/* Makes the device's ordinal current for this thread's CUDA runtime (the
 * plugin links its own copy of cudart); LM_ERR_DEVICE naming the reason. */
lm_status lm_opt_cuda_bind(lm_device *dev, const char *optimizer);
/* Selects the device before queueing on its stream (cheap, never waits). */
void lm_opt_cuda_use(lm_device *dev);
/* A launch error of the kernel(s) just queued goes to dev->ops->keep_failure. */
void lm_opt_cuda_check_launch(lm_device *dev, const char *what);
/* dst[i] = bf16(src[i]) for i < n, queued on the device's stream; does
 * nothing when state->bad_step != 0 (read on the device). */
void lm_opt_cuda_bf16_copy(lm_device *dev, const char *what, uint16_t *dst, const float *src, size_t n,
                           const lm_step_state *state);
#endif

#ifdef __cplusplus
}
#endif
#endif
