/* The gradients-ready notification of an architecture (ABI 2.1,
 * set_grads_ready), checked on a CPU model (whose gradients are host
 * memory, final when reported):
 *   - every reported range holds whole tensors, and the ranges of one
 *     backward cover the gradient buffer exactly once;
 *   - what a range holds when it is reported is what it holds when
 *     backward returns, bit for bit (reported final means final);
 *   - the ranges come as backward goes: more calls than layers, the first
 *     holding `first_tensor` (the head's end), the last `last_tensor` (the
 *     tied word embeddings);
 *   - set_grads_ready(NULL) stops the calls. */
#ifndef LM_TEST_GRADS_READY_CHECK_H
#define LM_TEST_GRADS_READY_CHECK_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "model_steps.h"

#define GRADS_READY_MAX_CALLS 512

typedef struct grads_ready_record {
    const float *grads;
    float *snapshot;        /* each range's values when it was reported */
    unsigned char *covered; /* [n] reported already */
    size_t n, calls;
    size_t offset[GRADS_READY_MAX_CALLS], count[GRADS_READY_MAX_CALLS];
    int overlapped;
} grads_ready_record;

static inline void grads_ready_record_range(void *user, size_t offset, size_t count) {
    grads_ready_record *r = user;
    ck_assert_msg(offset <= r->n && count <= r->n - offset, "range [%zu, +%zu) outside the %zu gradients", offset,
                  count, r->n);
    ck_assert_uint_lt(r->calls, GRADS_READY_MAX_CALLS);
    for (size_t i = offset; i < offset + count; i++) {
        if (r->covered[i]) r->overlapped = 1;
        r->covered[i] = 1;
    }
    memcpy(r->snapshot + offset, r->grads + offset, count * sizeof(float));
    r->offset[r->calls] = offset;
    r->count[r->calls] = count;
    r->calls++;
}

/* The call whose range holds tensor d whole, or -1. */
static inline long grads_ready_call_of(const grads_ready_record *r, const lm_param_desc *d) {
    for (size_t c = 0; c < r->calls; c++)
        if (r->offset[c] <= d->offset && d->offset + d->storage <= r->offset[c] + r->count[c]) return (long)c;
    return -1;
}

/* One backward of `batch` (forward first) with the notification on. */
static inline void lm_test_check_grads_ready(const lm_architecture_vtable *vt, void *model, const lm_batch *batch,
                                             lm_step_state *state, int n_layer, const char *first_tensor,
                                             const char *last_tensor) {
    ck_assert_ptr_nonnull(vt->set_grads_ready);
    lm_param_set set = lm_test_params(vt, model);
    grads_ready_record *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->grads = set.grads;
    r->n = set.n_params;
    r->snapshot = calloc(set.n_params, sizeof(float));
    r->covered = calloc(set.n_params, 1);
    ck_assert(r->snapshot && r->covered);
    float loss;
    ck_assert_int_eq(vt->set_grads_ready(model, grads_ready_record_range, r), LM_OK);
    ck_assert_int_eq(lm_test_forward(vt, model, batch, state, &loss), LM_OK);
    ck_assert_uint_eq(r->calls, 0); /* forward reports nothing */
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);
    ck_assert_msg(!r->overlapped, "a gradient was reported twice in one backward");
    for (size_t i = 0; i < set.n_params; i++) ck_assert_msg(r->covered[i], "gradient %zu was never reported", i);
    ck_assert_msg(memcmp(r->snapshot, set.grads, set.n_params * sizeof(float)) == 0,
                  "a range changed after it was reported final");
    ck_assert_msg(r->calls > (size_t)n_layer, "%zu calls for %d layers: not reported as backward goes", r->calls,
                  n_layer);
    for (size_t i = 0; i < set.n_descs; i++)
        ck_assert_msg(grads_ready_call_of(r, &set.descs[i]) >= 0, "no range holds all of %s", set.descs[i].name);
    ck_assert_int_eq(grads_ready_call_of(r, lm_test_find_desc(vt, model, first_tensor)), 0);
    ck_assert_int_eq(grads_ready_call_of(r, lm_test_find_desc(vt, model, last_tensor)), (long)r->calls - 1);
    /* Without the callback: no call. */
    const size_t calls = r->calls;
    ck_assert_int_eq(vt->set_grads_ready(model, NULL, NULL), LM_OK);
    ck_assert_int_eq(lm_test_forward(vt, model, batch, state, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);
    ck_assert_uint_eq(r->calls, calls);
    free(r->snapshot);
    free(r->covered);
    free(r);
}

#endif
