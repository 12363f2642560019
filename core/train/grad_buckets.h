/* Gradient buckets: the all-reduce of a data-parallel step cut into pieces
 * that start while backward still runs (PyTorch DDP's Reducer).
 *
 * The plan groups the model's tensors, in reverse of their order in
 * lm_param_set.descs (the order backward finishes them: the last layers
 * first), into buckets of at most `cap` elements (a tensor larger than the
 * cap is a bucket of its own).  A bucket's tensors may lie in several runs
 * of the flat gradient buffer (the decayed matrices come before every
 * vector): each run is one all-reduce.  Every element of the buffer is in
 * exactly one run: the elements between tensors, if any, go with the
 * tensor before them.
 *
 * During the step's last backward the architecture reports ranges of final
 * gradients (lm_grad_buckets_ready); a bucket starts (all_reduce_start) once
 * all of its tensors are final and every bucket before it in the plan has
 * started, so every rank starts the same reductions in the same order
 * whatever its timing.  lm_grad_buckets_finish starts what has not started
 * (everything, when backward did not run) and waits for all of it.  The
 * element-wise sums do not depend on how the buffer is cut, so the result
 * is the blocking all-reduce's, bit for bit (2 ranks; more ranks may add
 * in another order if the engine picks another algorithm per size).
 *
 * Internal to liblmcore (core/train). */
#ifndef LMCORE_GRAD_BUCKETS_H
#define LMCORE_GRAD_BUCKETS_H

#include <stddef.h>

#include "lmcore/architecture.h"
#include "lmcore/communicator.h"

typedef struct lm_grad_buckets lm_grad_buckets;

/* One contiguous piece of the flat buffer, reduced by one request. */
typedef struct lm_grad_run {
    size_t offset, count; /* elements */
    size_t bucket;        /* the bucket it belongs to */
} lm_grad_run;

/* The plan for n_params elements described by descs; cap in elements (>= 1).
 * Fails only for memory or descriptors outside the buffer. */
LM_API lm_status lm_grad_buckets_plan(const lm_param_desc *descs, size_t n_descs, size_t n_params, size_t cap,
                                   lm_grad_buckets **out);
LM_API void lm_grad_buckets_free(lm_grad_buckets *b);

LM_API size_t lm_grad_buckets_count(const lm_grad_buckets *b);
/* Runs in plan order: bucket 0's runs (by offset), then bucket 1's ... */
LM_API size_t lm_grad_buckets_run_count(const lm_grad_buckets *b);
LM_API const lm_grad_run *lm_grad_buckets_runs(const lm_grad_buckets *b);
/* Elements of bucket i (its runs together). */
LM_API size_t lm_grad_buckets_elements(const lm_grad_buckets *b, size_t bucket);

/* What the buckets reduce through: the communicator's non-blocking slots
 * (all_reduce_start and wait; test may be NULL), the gradients (f32,
 * averaged) and the stream their producer queues on (NULL on the CPU). */
LM_API void lm_grad_buckets_bind(lm_grad_buckets *b, const lm_communicator_vtable *comm, void *comm_self, float *grads,
                              void *stream);

/* A backward whose ranges count begins (the step's last micro-batch). */
LM_API void lm_grad_buckets_arm(lm_grad_buckets *b);
LM_API int lm_grad_buckets_armed(const lm_grad_buckets *b);
/* Elements [offset, offset + count) are final: starts the buckets this
 * completes, then lets the engine progress on those in flight (test).
 * Ignored unless armed.  A failure is kept for lm_grad_buckets_finish (and
 * lm_grad_buckets_failed), and nothing more starts after it. */
LM_API void lm_grad_buckets_ready(lm_grad_buckets *b, size_t offset, size_t count);
/* The lm_grads_ready_fn for set_grads_ready (user: the grad_buckets). */
LM_API void lm_grad_buckets_ready_fn(void *user, size_t offset, size_t count);
/* The kept failure (its message set again), or LM_OK. */
LM_API lm_status lm_grad_buckets_failed(const lm_grad_buckets *b);
/* Buckets started so far in this step (during backward, before finish). */
LM_API size_t lm_grad_buckets_started(const lm_grad_buckets *b);
/* Starts the rest in plan order, waits for every request, and disarms:
 * the gradients hold the average across ranks (stream-ordered on a GPU). */
LM_API lm_status lm_grad_buckets_finish(lm_grad_buckets *b);

/* After a failed backward: waits for what has started (so no reduction is
 * left writing into the gradients), starts nothing, and disarms. */
LM_API void lm_grad_buckets_drain(lm_grad_buckets *b);

#endif
