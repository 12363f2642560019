/* The sparse MLM head on padded rows (mlm_head_rows=padded, the default
 * where CUDA graphs are captured; plugins/arch_bert/bert_head.c), on the
 * CPU:
 *   - it trains the exact head's bits: the same loss and the same gradients,
 *     every bit, on batches whose scored counts need no padding, some, or
 *     a whole bucket of it, through the fused classifier (forward_train) and
 *     the two-op path (forward, then backward), writing and accumulating;
 *   - its staged signature does not change with the scored count inside a
 *     bucket (the exact head's does), so a graph captured for one batch is
 *     replayed for the next;
 *   - the trainer's graph decisions (core/train/trainer_graph_plan.c), fed
 *     the keys of an MLM run's micro-batches as trainer_graph_micro_batch
 *     makes them, replay most of them, and far more than with exact rows;
 *   - auto is exact on the CPU and padded on CUDA (the device that
 *     captures graphs);
 *   - mlm_head_rows takes auto, exact or padded only.
 * The CUDA build compiles it a second time with BERT_TEST_DEVICE "cuda"
 * (label gpu): the same checks on the GPU, cuBLASLt's rounding bounds. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert_test_util.h"
#include "model_steps.h"
#include "test_main.h"
#include "trainer_graph.h"

#ifndef BERT_TEST_DEVICE
#define BERT_TEST_DEVICE "cpu"
#endif
#define ON_CUDA (strcmp(BERT_TEST_DEVICE, "cuda") == 0)

#define V 512
enum { B = 4, T = 32, N = B * T };

/* The tiny model with dropout (the key is the same in both models). */
#define TINY_WITH_DROPOUT                                                                                         \
    "device=" BERT_TEST_DEVICE, "hf_config=" BERT_TINY_CONFIG, "hidden_dropout_prob=0.1",                          \
        "attention_probs_dropout_prob=0.1"
static const char *const exact_rows[] = {TINY_WITH_DROPOUT, "mlm_head_rows=exact", NULL};
static const char *const padded_rows[] = {TINY_WITH_DROPOUT, "mlm_head_rows=padded", NULL};
static const char *const auto_rows[] = {TINY_WITH_DROPOUT, NULL};

/* A batch of N ids with exactly `scored` labels, at positions spread by a
 * stride coprime with N. */
typedef struct scored_batch {
    int32_t ids[N], labels[N];
    lm_batch batch;
} scored_batch;

static void make_batch(scored_batch *s, int scored, int salt) {
    for (int i = 0; i < N; i++) {
        s->ids[i] = 5 + (i * 37 + salt * 11) % 500;
        s->labels[i] = LM_IGNORE_INDEX;
    }
    for (int k = 0; k < scored; k++) {
        const int pos = (k * 37 + salt) % N;
        s->labels[pos] = (pos * 11 + 3 + salt) % V;
    }
    lm_batch batch = {.B = B, .T = T, .input_ids = s->ids, .labels = s->labels, .n_targets = scored};
    s->batch = batch;
}

/* Padded and exact heads differ only in the rows of the head's GEMMs: the
 * padding rows add exact zeros to every sum over rows, but BLAS (OpenBLAS
 * here, cuBLASLt on a GPU) picks its kernels and blocking by the matrix
 * sizes, so a row's products or a sum over rows may be added in another
 * order: rounding differences of a few ulps, which backward carries into
 * every gradient below the head.  Measured on this test: losses equal to
 * the bit, gradients within 3e-7 of the largest gradient on the CPU.  The
 * bounds leave room for another BLAS build, and on the GPU for cuBLASLt's
 * choice of algorithm by shape (the 1e-4 of the GPU/CPU gradient check in
 * test_bert.c); a wrong padding (a padding row scored) moves the loss by
 * percents. */
#define LOSS_TOLERANCE (ON_CUDA ? 1e-5f : 1e-6f)
#define GRADIENT_TOLERANCE (ON_CUDA ? 1e-4 : 4e-6)

static double max_gradient_difference(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) worst = d; /* NaN wins */
    }
    return worst;
}

static double max_abs(const float *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
    return m;
}

/* Scored counts against a head bucket of 64 rows for N = 128: one row
 * padded to 64, some, none (64 and 128: a full bucket), the next bucket
 * (65 -> 128 = N). */
static const int scored_counts[] = {19, 1, 23, 64, 65, 128, 40};
#define N_COUNTS (int)(sizeof scored_counts / sizeof scored_counts[0])

START_TEST(test_padded_head_trains_the_exact_numbers) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *exact = bert_test_create_ok(exact_rows), *padded = bert_test_create_ok(padded_rows);
    ck_assert_int_eq(vt->init_weights(exact, 7), LM_OK);
    ck_assert_int_eq(vt->init_weights(padded, 7), LM_OK);
    ck_assert_int_eq(vt->set_training(exact, 1), LM_OK);
    ck_assert_int_eq(vt->set_training(padded, 1), LM_OK);
    lm_step_state *state_exact = lm_test_state_new(vt, exact, 5, 0);
    lm_step_state *state_padded = lm_test_state_new(vt, padded, 5, 0);
    const size_t n_params = lm_test_params(vt, exact).n_params;
    double worst = 0.0;
    const float loss_scale = 1.0f / 3.0f; /* grad_accum 3: dloss = loss_scale / M rounds */
    for (int c = 0; c < N_COUNTS; c++) {
        scored_batch s;
        make_batch(&s, scored_counts[c], c);
        lm_test_state_key(vt, exact, state_exact, 5, (uint64_t)c);
        lm_test_state_key(vt, padded, state_padded, 5, (uint64_t)c);
        /* The fused classifier, except for one batch: forward, then the loss op's own backward. */
        const int fused = c != 2;
        const int accumulate = c % 3 != 0;
        for (int m = 0; m < 2; m++) {
            void *model = m ? padded : exact;
            lm_step_state *state = m ? state_padded : state_exact;
            const lm_status status =
                fused ? vt->forward_train(model, &s.batch, state, loss_scale) : vt->forward(model, &s.batch, state);
            ck_assert_msg(status == LM_OK, "%s", lm_error_message());
            ck_assert_msg(vt->backward(model, loss_scale, accumulate) == LM_OK, "%s", lm_error_message());
        }
        const float loss_exact = lm_test_state_read(vt, exact, state_exact).loss;
        const float loss_padded = lm_test_state_read(vt, padded, state_padded).loss;
        printf("%d scored rows (%s, %s): loss %.9g exact, %.9g padded\n", scored_counts[c],
               fused ? "forward_train" : "forward + backward", accumulate ? "accumulating" : "writing",
               (double)loss_exact, (double)loss_padded);
        ck_assert_msg(isfinite(loss_exact) && loss_exact > 4.0f, "loss %g", (double)loss_exact);
        ck_assert_msg(fabsf(loss_padded - loss_exact) <= LOSS_TOLERANCE * loss_exact,
                      "loss with %d scored rows: padded %.9g, exact %.9g", scored_counts[c], (double)loss_padded,
                      (double)loss_exact);
        float *grads_exact = lm_test_read_grads(vt, exact), *grads_padded = lm_test_read_grads(vt, padded);
        const double diff = max_gradient_difference(grads_padded, grads_exact, n_params);
        const double scale = max_abs(grads_exact, n_params);
        printf("  gradients: max |padded - exact| %.3g, %.3g of the largest |gradient| %.3g\n", diff, diff / scale,
               scale);
        if (diff > worst) worst = diff / scale;
        ck_assert_msg(diff <= GRADIENT_TOLERANCE * scale, "gradients after %d scored rows differ by %g (largest %g)",
                      scored_counts[c], diff, scale);
        lm_free(grads_exact);
        lm_free(grads_padded);
    }
    printf("worst gradient difference: %.3g of the largest gradient\n", worst);
    lm_test_state_free(vt, exact, state_exact);
    lm_test_state_free(vt, padded, state_padded);
    vt->destroy(exact);
    vt->destroy(padded);
}
END_TEST

static uint64_t signature_of(void *model, scored_batch *s) {
    const lm_architecture_vtable *vt = bert_test_arch();
    uint64_t signature = 0;
    ck_assert_msg(vt->upload_batch(model, &s->batch, &signature) == LM_OK, "%s", lm_error_message());
    uint64_t unused = 0;
    ck_assert_int_eq(vt->upload_batch(model, NULL, &unused), LM_OK);
    return signature;
}

/* Inside a bucket the padded head's batches look the same to the trainer;
 * the exact head's differ with every count.  The buffers are grown first
 * (the largest batch), as a run's first steps do: a buffer that grows
 * moves, and that is another signature for either head. */
START_TEST(test_padded_signature_ignores_the_scored_count) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *exact = bert_test_create_ok(exact_rows), *padded = bert_test_create_ok(padded_rows);
    ck_assert_int_eq(vt->set_training(exact, 1), LM_OK);
    ck_assert_int_eq(vt->set_training(padded, 1), LM_OK);
    scored_batch s;
    make_batch(&s, N, 0);
    (void)signature_of(exact, &s);
    (void)signature_of(padded, &s);
    uint64_t first_bucket = 0, exact_first = 0;
    for (int scored = 1; scored <= 64; scored++) {
        make_batch(&s, scored, scored);
        const uint64_t sig = signature_of(padded, &s), sig_exact = signature_of(exact, &s);
        if (scored == 1) {
            first_bucket = sig;
            exact_first = sig_exact;
            continue;
        }
        ck_assert_msg(sig == first_bucket, "padded head: %d scored rows changed the signature", scored);
        ck_assert_msg(sig_exact != exact_first, "exact head: %d scored rows kept the signature of 1", scored);
    }
    /* The next bucket (65..128 rows) is another shape. */
    make_batch(&s, 65, 3);
    const uint64_t second_bucket = signature_of(padded, &s);
    ck_assert(second_bucket != first_bucket);
    make_batch(&s, 127, 4);
    ck_assert(signature_of(padded, &s) == second_bucket);
    vt->destroy(exact);
    vt->destroy(padded);
}
END_TEST

/* The graph table's decisions over an MLM run's micro-batches, keyed as
 * trainer_graph_micro_batch keys them (the staged signature, and whether
 * the micro-batch writes or adds to the gradients).  Returns the table's
 * counts. */
typedef struct run_counts {
    uint64_t eager, captured, replayed;
    int keys;
    long scored_min, scored_max;
} run_counts;

static run_counts mlm_run(const char *const *settings, int steps, int grad_accum) {
    const lm_architecture_vtable *arch = bert_test_arch();
    void *model = bert_test_create_ok(settings);
    ck_assert_int_eq(arch->set_training(model, 1), LM_OK);
    lm_arch_info info;
    ck_assert_int_eq(arch->info(model, &info), LM_OK);
    void *o = NULL;
    ck_assert_int_eq(bert_test_create_mlm(&o, NULL), LM_OK);
    const int32_t tiny_specials[] = {0, 1, 2, 3, 4};
    lm_vocab_info vocab = {.vocab_size = V, .unk_id = 1, .pad_id = 0, .bos_id = -1, .eos_id = -1, .cls_id = 2,
                           .sep_id = 3, .mask_id = 4, .special_ids = tiny_specials, .n_special = 5};
    ck_assert_msg(bert_test_mlm()->bind(o, &info, &vocab) == LM_OK, "%s", lm_error_message());
    trainer_graphs g;
    memset(&g, 0, sizeof g);
    g.enabled = 1; /* as on a device that captures */
    run_counts out = {0, 0, 0, 0, N, 0};
    int32_t tokens[N];
    uint64_t index = 0;
    for (int step = 0; step < steps; step++)
        for (int micro = 0; micro < grad_accum; micro++, index++) {
            /* [CLS] ... [SEP] blocks of ids that change with the micro-batch */
            for (int i = 0; i < N; i++)
                tokens[i] = i % T == 0 ? 2 : i % T == T - 1 ? 3 : 5 + (int32_t)((i * 37 + index * 101) % 500);
            const lm_batch *batch = NULL;
            ck_assert_msg(bert_test_mlm()->make_batch(o, tokens, B, T, index, &batch) == LM_OK, "%s",
                          lm_error_message());
            if (batch->n_targets < out.scored_min) out.scored_min = (long)batch->n_targets;
            if (batch->n_targets > out.scored_max) out.scored_max = (long)batch->n_targets;
            uint64_t signature = 0, unused = 0;
            ck_assert_msg(arch->upload_batch(model, batch, &signature) == LM_OK, "%s", lm_error_message());
            const uint64_t key = trainer_graphs_key(TRAINER_GRAPH_MICRO_BATCH, signature, (uint64_t)(micro > 0));
            if (trainer_graphs_decide(&g, key, 0) == TRAINER_GRAPH_CAPTURE) {
                /* a stand-in graph: the table only keeps the pointer */
                trainer_graphs_store(&g, key, (lm_device_graph *)(void *)&g);
            }
            ck_assert_int_eq(arch->upload_batch(model, NULL, &unused), LM_OK); /* "replayed" */
        }
    out.eager = g.eager;
    out.captured = g.captured;
    out.replayed = g.replayed;
    out.keys = g.n_entries;
    bert_test_mlm()->destroy(o);
    arch->destroy(model);
    return out;
}

START_TEST(test_mlm_micro_batches_replay_with_padded_rows) {
    enum { STEPS = 24, ACCUM = 2 };
    const run_counts padded = mlm_run(padded_rows, STEPS, ACCUM), exact = mlm_run(exact_rows, STEPS, ACCUM);
    printf("%d micro-batches of %d x %d, %ld to %ld scored: padded rows %d keys, %llu eager, %llu captured, %llu "
           "replayed; exact rows %d keys, %llu eager, %llu captured, %llu replayed\n",
           STEPS * ACCUM, B, T, padded.scored_min, padded.scored_max, padded.keys,
           (unsigned long long)padded.eager, (unsigned long long)padded.captured,
           (unsigned long long)padded.replayed, exact.keys, (unsigned long long)exact.eager,
           (unsigned long long)exact.captured, (unsigned long long)exact.replayed);
    ck_assert_msg(padded.scored_max > padded.scored_min, "the masking drew the same count every time");
    /* One bucket of rows: a key for the first and one for the accumulating micro-batch. */
    ck_assert_int_eq(padded.keys, 2);
    ck_assert_uint_eq(padded.eager, 2);
    ck_assert_uint_eq(padded.captured, 2);
    ck_assert_uint_eq(padded.replayed, STEPS * ACCUM - 4);
    ck_assert_msg(exact.replayed * 2 < padded.replayed, "exact rows replayed %llu of %d",
                  (unsigned long long)exact.replayed, STEPS * ACCUM);
}
END_TEST

/* auto: the exact head on the CPU, which never captures (today's numbers
 * and speed), the padded one on CUDA. */
START_TEST(test_auto_rows_follow_the_device) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(auto_rows);
    ck_assert_int_eq(vt->set_training(model, 1), LM_OK);
    scored_batch s;
    make_batch(&s, N, 0);
    (void)signature_of(model, &s); /* the buffers grown */
    make_batch(&s, 19, 1);
    const uint64_t nineteen = signature_of(model, &s);
    make_batch(&s, 23, 2);
    const uint64_t twenty_three = signature_of(model, &s);
    if (ON_CUDA) ck_assert_msg(nineteen == twenty_three, "auto on CUDA: the head's rows follow the scored count");
    else ck_assert_msg(nineteen != twenty_three, "auto on the CPU: the head ran on padded rows");
    vt->destroy(model);
}
END_TEST

START_TEST(test_head_rows_setting) {
    static const char *const bad[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, "mlm_head_rows=bucketed", NULL};
    void *model = NULL;
    ck_assert_int_eq(bert_test_create(&model, bad), LM_ERR_INVALID);
    ck_assert_ptr_null(model);
    ck_assert_msg(strstr(lm_error_message(), "mlm_head_rows 'bucketed' is unknown: use auto") != NULL, "%s",
                  lm_error_message());
    static const char *const wrong_type[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, "mlm_head_rows=3", NULL};
    ck_assert_int_ne(bert_test_create(&model, wrong_type), LM_OK);
    ck_assert_msg(strstr(lm_error_message(), "mlm_head_rows") != NULL, "%s", lm_error_message());
    static const char *const named_auto[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, "mlm_head_rows=auto", NULL};
    model = bert_test_create_ok(named_auto);
    bert_test_arch()->destroy(model);
}
END_TEST

static Suite *head_rows_suite(void) {
    Suite *s = suite_create("bert padded head rows (" BERT_TEST_DEVICE ")");
    TCase *tc = tcase_create("mlm_head_rows");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_padded_head_trains_the_exact_numbers);
    tcase_add_test(tc, test_padded_signature_ignores_the_scored_count);
    tcase_add_test(tc, test_mlm_micro_batches_replay_with_padded_rows);
    tcase_add_test(tc, test_auto_rows_follow_the_device);
    tcase_add_test(tc, test_head_rows_setting);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(head_rows_suite(), NULL);
}
