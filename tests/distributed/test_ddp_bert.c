/* BERT MLM, data parallel over 2 ranks, against PyTorch DDP (gloo) on the
 * same tiny model and batch (fixtures/gen_ddp_bert_fixture.py): rank r
 * trains on rows [2r, 2r + 2) of tests/bert's reference batch, whose masked
 * counts differ (8 and 10), with its mean loss over its own masked tokens;
 * the gradients are averaged over the ranks through the mpi communicator
 * plugin, as the trainer does, then clipped to norm 1.0 and AdamW-updated,
 * 10 times.  Each rank's loss, the averaged gradients' norm and the final
 * weights must be PyTorch's.  Run under mpirun -np 2 (run_under_mpirun.sh);
 * CK_FORK=no, as MPI does not survive a fork. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert_test_util.h"
#include "lmcore/lmcore.h"
#include "model_steps.h"
#include "parity_tolerances.h"
#include "test_main.h"

#define DDP_REFERENCE LM_TEST_SOURCE_DIR "/tests/distributed/fixtures/ddp_reference.safetensors"
#define DDP_FINAL LM_TEST_SOURCE_DIR "/tests/distributed/fixtures/ddp_final.safetensors"
#define ROWS 2
#define STEPS 10
/* The final weights after 10 updates, relative to the largest weight: fp32
 * sums in another order than PyTorch's, which AdamW's first steps (m / sqrt(v)
 * of tiny gradients) amplify; measured 9.0e-6 absolute, 7.8e-6 relative. */
#define TOL_WEIGHTS 5e-5

static const char *const tiny_model[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, NULL};

static const float *reference(lm_safetensors *st, const char *name, size_t n) {
    lm_tensor t;
    ck_assert_msg(lm_safetensors_find(st, name, &t) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(lm_tensor_numel(&t), (int64_t)n);
    return t.data;
}

START_TEST(test_ddp_bert_matches_pytorch) {
    const lm_communicator_vtable *cvt = bert_test_vtable("communicator_mpi", LM_KIND_COMMUNICATOR, "mpi");
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, "communicator 'mpi'"), LM_OK);
    void *comm = NULL;
    ck_assert_msg(cvt->create(&comm, cfg) == LM_OK, "%s", lm_error_message());
    const int rank = cvt->rank(comm);
    ck_assert_msg(cvt->size(comm) == 2, "run under mpirun -np 2 (this is rank %d of %d)", rank, cvt->size(comm));

    lm_safetensors *ref = NULL;
    ck_assert_msg(lm_safetensors_open(DDP_REFERENCE, &ref) == LM_OK, "%s", lm_error_message());
    const float *rank_losses = reference(ref, "rank_losses", 2 * STEPS);
    const float *norms = reference(ref, "step_grad_norms", STEPS);
    lm_tensor targets;
    ck_assert_int_eq(lm_safetensors_find(ref, "rank_targets", &targets), LM_OK);

    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(tiny_model);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    /* This rank's shard: rows [2 rank, 2 rank + 2). */
    const size_t first = (size_t)rank * ROWS * (size_t)fb.batch.T;
    lm_batch shard = fb.batch;
    shard.B = ROWS;
    shard.input_ids += first;
    shard.attention_mask += first;
    shard.token_type_ids += first;
    shard.labels += first;
    shard.n_targets = 0;
    for (size_t i = 0; i < (size_t)ROWS * (size_t)fb.batch.T; i++) shard.n_targets += shard.labels[i] != LM_IGNORE_INDEX;
    ck_assert_int_eq(shard.n_targets, ((const int32_t *)targets.data)[rank]);

    void *optimizer = lm_test_adamw_bind(model, vt);
    lm_step_state *state = lm_test_state_new(vt, model, 99, 0);
    lm_param_set set = lm_test_params(vt, model);
    for (int step = 0; step < STEPS; step++) {
        float loss = NAN, norm = NAN, clip = NAN;
        lm_test_state_key(vt, model, state, 99, (uint64_t)step);
        ck_assert_msg(lm_test_forward(vt, model, &shard, state, &loss) == LM_OK, "%s", lm_error_message());
        const float want = rank_losses[rank * STEPS + step];
        ck_assert_msg(fabsf(loss - want) <= TOL_LOSS * fabsf(want), "rank %d step %d: loss %.7g, PyTorch DDP %.7g",
                      rank, step, loss, want);
        ck_assert_msg(vt->backward(model, 1.0f, 0) == LM_OK, "%s", lm_error_message());
        ck_assert_msg(cvt->all_reduce(comm, set.grads, set.n_params, LM_F32, LM_REDUCE_AVG) == LM_OK, "%s",
                      lm_error_message());
        lm_test_adamw_clipped_step(vt, model, optimizer, state, 1e-3, 1.0, &norm, &clip);
        ck_assert_msg(fabsf(norm - norms[step]) <= TOL_NORM * norms[step],
                      "rank %d step %d: norm of the averaged gradients %.7g, PyTorch DDP %.7g", rank, step, norm,
                      norms[step]);
    }
    float *mine = lm_test_read_params(vt, model);
    float *want = bert_test_read_named(model, DDP_FINAL);
    double err = 0, mag = 0;
    bert_test_compare(mine, want, set.n_params, &err, &mag);
    if (rank == 0) printf("final weights: max |lmcore - PyTorch DDP| = %.3g, largest weight %.3g\n", err, mag);
    ck_assert_msg(err <= TOL_WEIGHTS * mag, "rank %d: final weights differ from PyTorch DDP's by %.3g (largest %.3g)",
                  rank, err, mag);
    /* and the two ranks hold the same bits */
    uint64_t hash = lm_hash64(mine, set.n_params * sizeof(float), 0), hashes[2] = {0, 0};
    ck_assert_int_eq(cvt->all_gather(comm, &hash, hashes, sizeof hash), LM_OK);
    ck_assert_msg(hashes[0] == hashes[1], "the ranks' weights differ");

    lm_free(mine);
    lm_free(want);
    lm_test_state_free(vt, model, state);
    lm_test_adamw()->destroy(optimizer);
    bert_test_free_batch(&fb);
    vt->destroy(model);
    lm_safetensors_close(ref);
    cvt->destroy(comm);
    lm_config_destroy(cfg);
}
END_TEST

static Suite *ddp_suite(void) {
    Suite *s = suite_create("ddp_bert");
    TCase *tc = tcase_create("mlm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ddp_bert_matches_pytorch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_exit_status(lm_test_count_failures(CK_NOFORK, ddp_suite(), NULL)); }
