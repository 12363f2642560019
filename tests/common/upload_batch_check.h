/* The architecture slot upload_batch (ABI 2.1), checked the same way for
 * every architecture: the batch's host half of forward, ahead of it, so
 * that the forward can be captured into a CUDA graph (docs/plugin-abi.md,
 * core/train/trainer_graph.h).  On the CPU device:
 *   - a forward of the staged batch uploads nothing and computes from what
 *     was staged (the host arrays changed since do not reach it), with the
 *     loss of an ordinary forward;
 *   - a staged batch serves one forward: the next forward stages again;
 *   - upload_batch(NULL) drops the staged batch;
 *   - the signature is equal for equal shapes and different when the
 *     shape, the labels or the training mode differ.
 * `batch` has labels and B*T ids of which it changes the first (the caller
 * gives a batch whose first id is not vocab - 1). */
#ifndef LM_TEST_UPLOAD_BATCH_CHECK_H
#define LM_TEST_UPLOAD_BATCH_CHECK_H

#include "model_steps.h"

static inline void lm_test_check_upload_batch(const lm_architecture_vtable *vt, void *model, lm_batch *batch,
                                              lm_step_state *state, int32_t vocab) {
    ck_assert_ptr_nonnull(vt->upload_batch);
    int32_t *ids = (int32_t *)batch->input_ids;
    const int32_t first_id = ids[0];
    float plain = NAN, staged = NAN, again = NAN;
    ck_assert_int_eq(lm_test_forward(vt, model, batch, state, &plain), LM_OK);

    uint64_t sig = 0, sig_again = 0;
    ck_assert_msg(vt->upload_batch(model, batch, &sig) == LM_OK, "%s", lm_error_message());
    ids[0] = vocab - 1; /* after staging: must not reach the staged forward */
    const lm_device_counters before = lm_test_counters(vt, model);
    ck_assert_int_eq(lm_test_forward(vt, model, batch, state, &staged), LM_OK);
    const lm_device_counters after = lm_test_counters(vt, model);
    ck_assert_uint_eq(after.uploads, before.uploads); /* the forward itself uploads nothing */
    ck_assert_msg(staged == plain, "staged forward: loss %.9g, plain forward %.9g", staged, plain);

    /* Used once: this forward stages the changed ids, and the loss moves. */
    ck_assert_int_eq(lm_test_forward(vt, model, batch, state, &again), LM_OK);
    ck_assert_msg(again != plain, "a second forward reused the staged batch (loss %.9g)", again);

    /* Dropped: the forward after upload_batch(NULL) stages from the host. */
    ids[0] = first_id;
    ck_assert_int_eq(vt->upload_batch(model, batch, &sig_again), LM_OK);
    ck_assert_uint_eq(sig_again, sig);
    uint64_t unused = 1;
    ck_assert_int_eq(vt->upload_batch(model, NULL, &unused), LM_OK);
    ids[0] = vocab - 1;
    ck_assert_int_eq(lm_test_forward(vt, model, batch, state, &again), LM_OK);
    ck_assert_msg(again != plain, "the dropped staged batch was used (loss %.9g)", again);
    ids[0] = first_id;

    /* The signature follows what decides the kernels. */
    uint64_t other = 0;
    const int32_t T = batch->T;
    batch->T = T - 1; /* the same arrays, read as a shorter block */
    ck_assert_int_eq(vt->upload_batch(model, batch, &other), LM_OK);
    ck_assert(other != sig);
    batch->T = T;
    const int32_t *labels = batch->labels;
    batch->labels = NULL;
    ck_assert_int_eq(vt->upload_batch(model, batch, &other), LM_OK);
    ck_assert(other != sig);
    batch->labels = labels;
    ck_assert_int_eq(vt->set_training(model, 0), LM_OK);
    ck_assert_int_eq(vt->upload_batch(model, batch, &other), LM_OK);
    ck_assert(other != sig);
    ck_assert_int_eq(vt->set_training(model, 1), LM_OK);
    ck_assert_int_eq(vt->upload_batch(model, batch, &other), LM_OK);
    ck_assert_uint_eq(other, sig);
    ck_assert_int_eq(vt->upload_batch(model, NULL, &unused), LM_OK);

    /* A bad batch is refused by upload_batch, as forward would refuse it. */
    ids[0] = vocab;
    ck_assert_int_eq(vt->upload_batch(model, batch, &other), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "outside the vocabulary") != NULL, "%s", lm_error_message());
    ids[0] = first_id;
}

#endif
