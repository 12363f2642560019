/* Incremental decoding with a key/value cache (generate_reset /
 * generate_step of the gpt2 plugin, and the two kernels under them).
 *
 * The reference for every logit is the model's full forward over the same
 * prefix, which test_gpt2_parity checks against PyTorch: the cache must
 * change the cost, not the numbers (1e-5 of the largest logit).  The
 * kernels are checked against double-precision sums written out here, and
 * the cached attention also against the full causal attention kernel.
 *
 * The CUDA build compiles this suite a second time with
 * GENERATE_TEST_DEVICE "cuda" (label gpu): the same checks on the GPU, plus
 * GPU against CPU logits. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cuda_probe.h"
#include "generate.h"
#include "gpt2_test_util.h"
#include "kernels.h"
#include "lmcore/json.h"
#include "lmcore/tensor.h"
#include "model_io.h"
#include "model_steps.h"
#include "registry.h"
#include "test_main.h"

#ifndef GENERATE_TEST_DEVICE
#define GENERATE_TEST_DEVICE "cpu"
#endif

/* Relative to the largest reference logit, as test_gpt2_parity measures. */
#define LOGIT_TOLERANCE 1e-5

static const char *const tiny_model[] = {"device=" GENERATE_TEST_DEVICE, "hf_config=" GPT2_TINY_CONFIG, NULL};

enum { TINY_VOCAB = 512, TINY_POSITIONS = 64 };

static void *load_tiny(const char *const *settings) {
    void *model = gpt2_test_create_ok(settings);
    gpt2_test_load_weights(model, GPT2_TINY_WEIGHTS);
    ck_assert_int_eq(gpt2_test_arch()->set_training(model, 0), LM_OK);
    return model;
}

/* A fixed token sequence covering the vocabulary (64-bit LCG). */
static void make_ids(int32_t *ids, int n, uint64_t seed) {
    uint64_t state = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (int i = 0; i < n; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((state >> 33) % TINY_VOCAB);
    }
}

/* Logits of the last of `n` tokens from one full forward (B = 1, T = n),
 * an inference forward: no labels, no step state. */
static void full_forward_last(void *model, const int32_t *ids, int n, float *last) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    lm_batch batch;
    memset(&batch, 0, sizeof batch);
    batch.B = 1;
    batch.T = n;
    batch.input_ids = ids;
    ck_assert_msg(vt->forward(model, &batch, NULL) == LM_OK, "%s", lm_error_message());
    float *all = malloc((size_t)n * TINY_VOCAB * sizeof(float));
    ck_assert_msg(vt->logits(model, all, (size_t)n * TINY_VOCAB) == LM_OK, "%s", lm_error_message());
    memcpy(last, all + (size_t)(n - 1) * TINY_VOCAB, TINY_VOCAB * sizeof(float));
    free(all);
}

/* max |got - want| / max |want|. */
static double relative_error(const float *got, const float *want, size_t n) {
    double err, mag;
    gpt2_test_compare(got, want, n, &err, &mag);
    ck_assert(mag > 0.0);
    return err / mag;
}

static void step_ok(void *model, const int32_t *ids, int n, float *logits) {
    lm_status status = gpt2_test_arch()->generate_step(model, ids, n, logits);
    ck_assert_msg(status == LM_OK, "generate_step(n=%d): %s", n, lm_error_message());
}

static void reset_ok(void *model, int max_tokens) {
    lm_status status = gpt2_test_arch()->generate_reset(model, max_tokens);
    ck_assert_msg(status == LM_OK, "generate_reset(%d): %s", max_tokens, lm_error_message());
}

/* ---- kernels (CPU references) --------------------------------------------- */

/* Double-precision causal attention of query row t of a [T, 3C] qkv over
 * keys 0..t, head by head: out[C] and the probabilities att[NH][t+1]. */
static void reference_attention_row(double *out, double *att, const float *qkv, int t, int C, int NH) {
    const int hs = C / NH;
    const double scale = 1.0 / sqrt((double)hs);
    for (int h = 0; h < NH; h++) {
        const float *q = qkv + (size_t)t * 3 * C + (size_t)h * hs;
        double *p = att + (size_t)h * (t + 1), max = -INFINITY, sum = 0.0;
        for (int j = 0; j <= t; j++) {
            const float *k = qkv + (size_t)j * 3 * C + C + (size_t)h * hs;
            double dot = 0.0;
            for (int d = 0; d < hs; d++) dot += (double)q[d] * (double)k[d];
            p[j] = dot * scale;
            if (p[j] > max) max = p[j];
        }
        for (int j = 0; j <= t; j++) sum += (p[j] = exp(p[j] - max));
        for (int j = 0; j <= t; j++) p[j] /= sum;
        for (int d = 0; d < hs; d++) {
            double acc = 0.0;
            for (int j = 0; j <= t; j++) acc += p[j] * (double)qkv[(size_t)j * 3 * C + 2 * C + (size_t)h * hs + d];
            out[(size_t)h * hs + d] = acc;
        }
    }
}

static float uniform_float(uint64_t *state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*state >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

/* Feeds a [T, 3C] qkv to the cache in steps of the given sizes and checks
 * every step's output and probabilities. */
static void check_cached_attention(int C, int NH, const int *steps, int n_steps) {
    int T = 0;
    for (int s = 0; s < n_steps; s++) T += steps[s];
    uint64_t state = 12345u + (uint64_t)C * 7u + (uint64_t)T;
    const size_t qkv_n = (size_t)T * 3 * C;
    float *qkv = malloc(qkv_n * sizeof(float));
    for (size_t i = 0; i < qkv_n; i++) qkv[i] = 2.0f * uniform_float(&state);
    /* One extra row past the end, poisoned: nothing may read or write it. */
    float *k_cache = malloc((size_t)(T + 1) * C * sizeof(float)), *v_cache = malloc((size_t)(T + 1) * C * sizeof(float));
    for (size_t i = 0; i < (size_t)(T + 1) * C; i++) k_cache[i] = v_cache[i] = NAN;
    /* The full causal attention over all T positions, for comparison. */
    float *full_out = malloc((size_t)T * C * sizeof(float));
    float *preatt = malloc((size_t)NH * T * T * sizeof(float)), *full_att = malloc((size_t)NH * T * T * sizeof(float));
    lm_cpu_attention_forward(full_out, preatt, full_att, qkv, qkv + C, qkv + 2 * C, 3 * C, NULL, 1, 1, T, C, NH, 0.0f,
                             0, 0);
    double *ref_out = malloc((size_t)C * sizeof(double)), *ref_att = malloc((size_t)NH * T * sizeof(double));
    double worst_ref = 0.0, worst_full = 0.0, worst_att = 0.0;
    int pos = 0;
    for (int s = 0; s < n_steps; s++) {
        const int n = steps[s];
        float *out = malloc((size_t)n * C * sizeof(float)), *att = malloc((size_t)NH * n * (pos + n) * sizeof(float));
        for (size_t i = 0; i < (size_t)n * C; i++) out[i] = NAN;
        for (size_t i = 0; i < (size_t)NH * n * (pos + n); i++) att[i] = NAN;
        const float *new_rows = qkv + (size_t)pos * 3 * C;
        lm_cpu_kv_cache_append(k_cache, v_cache, new_rows + C, new_rows + 2 * C, 3 * C, pos, n, C);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < C; c++) {
                ck_assert(k_cache[(size_t)(pos + i) * C + c] == new_rows[(size_t)i * 3 * C + C + c]);
                ck_assert(v_cache[(size_t)(pos + i) * C + c] == new_rows[(size_t)i * 3 * C + 2 * C + c]);
            }
        lm_cpu_attention_cached_forward(out, att, new_rows, k_cache, v_cache, 3 * C, pos, n, C, NH);
        for (int i = 0; i < n; i++) {
            const int t = pos + i;
            reference_attention_row(ref_out, ref_att, qkv, t, C, NH);
            for (int c = 0; c < C; c++) {
                double got = out[(size_t)i * C + c];
                ck_assert_msg(isfinite(got), "C=%d NH=%d step %d: out[%d, %d] not written", C, NH, s, i, c);
                worst_ref = fmax(worst_ref, fabs(got - ref_out[c]));
                worst_full = fmax(worst_full, fabs(got - full_out[(size_t)t * C + c]));
            }
            for (int h = 0; h < NH; h++)
                for (int j = 0; j < pos + n; j++) {
                    double p = att[((size_t)h * n + i) * (pos + n) + j];
                    if (j > t) {
                        ck_assert_msg(p == 0.0, "future key %d of query %d has probability %g", j, t, p);
                    } else {
                        worst_att = fmax(worst_att, fabs(p - ref_att[(size_t)h * (t + 1) + j]));
                    }
                }
        }
        pos += n;
        free(out);
        free(att);
    }
    for (int c = 0; c < C; c++) ck_assert_msg(isnan(k_cache[(size_t)T * C + c]) && isnan(v_cache[(size_t)T * C + c]),
                                              "a cache row past the last position was written");
    printf("cached attention C=%d NH=%d T=%d in %d steps: max |out - double| %.2e, |out - full kernel| %.2e, "
           "|att - double| %.2e\n",
           C, NH, T, n_steps, worst_ref, worst_full, worst_att);
    /* Values are in [-2, 2]: outputs are averages of them. */
    ck_assert_msg(worst_ref < 2e-5, "cached attention vs double reference: %.3e", worst_ref);
    ck_assert_msg(worst_full < 2e-5, "cached attention vs the full causal kernel: %.3e", worst_full);
    ck_assert_msg(worst_att < 1e-5, "cached probabilities vs double reference: %.3e", worst_att);
    free(qkv);
    free(k_cache);
    free(v_cache);
    free(full_out);
    free(preatt);
    free(full_att);
    free(ref_out);
    free(ref_att);
}

START_TEST(test_cached_attention_kernel) {
    static const int prompt_then_tokens[] = {5, 1, 1, 1, 3, 1};
    static const int one_by_one[] = {1, 1, 1, 1, 1, 1, 1, 1};
    static const int one_block[] = {37};
    static const int long_steps[] = {100, 1, 1, 60, 1};
    check_cached_attention(64, 4, prompt_then_tokens, 6);
    check_cached_attention(32, 1, one_by_one, 8);
    check_cached_attention(96, 3, one_block, 1);
    check_cached_attention(256, 4, long_steps, 5); /* head size 64, many keys: tasks split over heads */
}
END_TEST

/* matvec_forward: the matmul_forward of a few rows, against double sums,
 * both weight layouts, with and without bias, and the same bits on 1 and
 * 2 threads. */
static void check_matvec(int N, int IC, int OC, lm_weight_layout layout, int with_bias) {
    uint64_t state = 999u + (uint64_t)IC * 31u + (uint64_t)OC;
    float *x = malloc((size_t)N * IC * sizeof(float)), *w = malloc((size_t)IC * OC * sizeof(float));
    float *b = malloc((size_t)OC * sizeof(float)), *out = malloc((size_t)N * OC * sizeof(float));
    float *again = malloc((size_t)N * OC * sizeof(float));
    for (size_t i = 0; i < (size_t)N * IC; i++) x[i] = uniform_float(&state);
    for (size_t i = 0; i < (size_t)IC * OC; i++) w[i] = uniform_float(&state);
    for (int o = 0; o < OC; o++) b[o] = uniform_float(&state);
    for (size_t i = 0; i < (size_t)N * OC; i++) out[i] = again[i] = NAN;
    lm_cpu_set_threads(1);
    lm_cpu_matvec_forward(out, x, w, with_bias ? b : NULL, N, IC, OC, layout);
    lm_cpu_set_threads(2);
    lm_cpu_matvec_forward(again, x, w, with_bias ? b : NULL, N, IC, OC, layout);
    lm_cpu_set_threads(0);
    double worst = 0.0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double want = with_bias ? b[o] : 0.0, magnitude = fabs(want);
            for (int i = 0; i < IC; i++) {
                double term = (double)x[(size_t)n * IC + i] *
                              (double)(layout == LM_W_IN_OUT ? w[(size_t)i * OC + o] : w[(size_t)o * IC + i]);
                want += term;
                magnitude += fabs(term);
            }
            const size_t k = (size_t)n * OC + o;
            ck_assert_msg(isfinite(out[k]), "matvec out[%d, %d] not written", n, o);
            ck_assert_msg(memcmp(&out[k], &again[k], sizeof(float)) == 0, "matvec differs on 1 and 2 threads");
            worst = fmax(worst, fabs(out[k] - want) / magnitude);
        }
    printf("matvec N=%d IC=%d OC=%d %s%s: max |out - double| / sum |terms| %.2e\n", N, IC, OC,
           layout == LM_W_IN_OUT ? "in_out" : "out_in", with_bias ? " +bias" : "", worst);
    ck_assert_msg(worst < 2e-6, "matvec vs double reference: %.3e", worst);
    free(x);
    free(w);
    free(b);
    free(out);
    free(again);
}

START_TEST(test_matvec_kernel) {
    check_matvec(1, 256, 768, LM_W_IN_OUT, 1);
    check_matvec(1, 1024, 256, LM_W_IN_OUT, 1);
    check_matvec(3, 64, 200, LM_W_IN_OUT, 0);
    check_matvec(1, 256, 8192, LM_W_OUT_IN, 0); /* the tied head: several tasks */
    check_matvec(4, 40, 33, LM_W_OUT_IN, 1);
}
END_TEST

/* ---- the gpt2 plugin -------------------------------------------------------- */

START_TEST(test_slots_present) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    ck_assert_ptr_nonnull(vt->generate_reset);
    ck_assert_ptr_nonnull(vt->generate_step);
}
END_TEST

/* One token per step: the logits after every prefix equal the full forward's. */
START_TEST(test_every_prefix_matches_full_forward) {
    void *model = load_tiny(tiny_model);
    int32_t ids[TINY_POSITIONS];
    make_ids(ids, TINY_POSITIONS, 1);
    float step_logits[TINY_VOCAB], full_logits[TINY_VOCAB];
    reset_ok(model, TINY_POSITIONS);
    double worst = 0.0;
    int worst_len = 0;
    for (int len = 1; len <= TINY_POSITIONS; len++) {
        step_ok(model, &ids[len - 1], 1, step_logits);
        full_forward_last(model, ids, len, full_logits);
        double rel = relative_error(step_logits, full_logits, TINY_VOCAB);
        if (!(rel <= worst)) {
            worst = rel;
            worst_len = len;
        }
        ck_assert_msg(rel < LOGIT_TOLERANCE, "prefix of %d tokens: generate_step logits differ from forward by %.3e "
                                             "of the largest logit",
                      len, rel);
    }
    printf("generate_step vs forward, every prefix 1..%d (%s): worst relative error %.2e at length %d\n",
           TINY_POSITIONS, GENERATE_TEST_DEVICE, worst, worst_len);
    gpt2_test_arch()->destroy(model);
}
END_TEST

/* A prompt in one step, in chunks, or token by token: the same logits, the
 * same as forward, and the continuation after it as well. */
START_TEST(test_prompt_in_one_step_or_token_by_token) {
    void *model = load_tiny(tiny_model);
    static const int prompt_lengths[] = {1, 2, 7, 31, 60};
    int32_t ids[TINY_POSITIONS];
    make_ids(ids, TINY_POSITIONS, 2);
    float one_step[TINY_VOCAB], by_token[TINY_VOCAB], chunked[TINY_VOCAB], full[TINY_VOCAB];
    for (size_t p = 0; p < sizeof prompt_lengths / sizeof *prompt_lengths; p++) {
        const int n = prompt_lengths[p], total = n + 3;
        reset_ok(model, total);
        step_ok(model, ids, n, one_step);
        full_forward_last(model, ids, n, full);
        double rel_full = relative_error(one_step, full, TINY_VOCAB);

        void *other = load_tiny(tiny_model);
        reset_ok(other, total);
        for (int i = 0; i < n; i++) step_ok(other, &ids[i], 1, by_token);
        double rel_tokens = relative_error(one_step, by_token, TINY_VOCAB);

        void *third = load_tiny(tiny_model);
        reset_ok(third, total);
        for (int done = 0, k = 0; done < n; k++) { /* chunks of 3, 1, 3, 1 ... */
            int chunk = k % 2 == 0 && n - done >= 3 ? 3 : 1;
            step_ok(third, &ids[done], chunk, chunked);
            done += chunk;
        }
        double rel_chunks = relative_error(one_step, chunked, TINY_VOCAB);
        printf("prompt of %2d tokens (%s): one step vs forward %.2e, vs token by token %.2e, vs chunks %.2e\n", n,
               GENERATE_TEST_DEVICE, rel_full, rel_tokens, rel_chunks);
        ck_assert_msg(rel_full < LOGIT_TOLERANCE, "prompt %d: one step vs forward %.3e", n, rel_full);
        ck_assert_msg(rel_tokens < LOGIT_TOLERANCE, "prompt %d: one step vs token by token %.3e", n, rel_tokens);
        ck_assert_msg(rel_chunks < LOGIT_TOLERANCE, "prompt %d: one step vs chunks %.3e", n, rel_chunks);

        /* Three more tokens after each kind of prompt step. */
        for (int t = n; t < total; t++) {
            step_ok(model, &ids[t], 1, one_step);
            step_ok(other, &ids[t], 1, by_token);
            full_forward_last(model, ids, t + 1, full);
            ck_assert_msg(relative_error(one_step, full, TINY_VOCAB) < LOGIT_TOLERANCE, "after prompt %d, token %d", n,
                          t);
            ck_assert_msg(relative_error(by_token, full, TINY_VOCAB) < LOGIT_TOLERANCE, "after prompt %d, token %d", n,
                          t);
        }
        gpt2_test_arch()->destroy(other);
        gpt2_test_arch()->destroy(third);
    }
    gpt2_test_arch()->destroy(model);
}
END_TEST

/* The core's generation loop with the cache and without it (the same
 * vtable with the two slots cleared: a full forward per token). */
static lm_plugin plugin_with(const lm_architecture_vtable *vt, int cached) {
    lm_plugin plugin;
    memset(&plugin, 0, sizeof plugin);
    plugin.kind = LM_KIND_ARCHITECTURE;
    plugin.name = "gpt2";
    plugin.vtable.architecture = *vt;
    if (!cached) {
        plugin.vtable.architecture.generate_reset = NULL;
        plugin.vtable.architecture.generate_step = NULL;
    }
    return plugin;
}

static void generate_ids(void *model, int cached, const int32_t *prompt, int n_prompt, const lm_generate_options *o,
                         lm_ids *out) {
    lm_plugin plugin = plugin_with(gpt2_test_arch(), cached);
    lm_handle handle = {&plugin, model};
    lm_generate_stats stats;
    lm_status status = lm_generate(handle, prompt, n_prompt, o, out, &stats);
    ck_assert_msg(status == LM_OK, "lm_generate (cache %d): %s", cached, lm_error_message());
    ck_assert_int_eq(stats.used_kv_cache, cached);
    ck_assert_int_eq(stats.prompt_tokens, n_prompt);
    ck_assert_int_eq(stats.new_tokens, o->max_new_tokens);
    ck_assert_uint_eq(out->len, (size_t)o->max_new_tokens);
}

START_TEST(test_lm_generate_with_and_without_cache) {
    int32_t prompt[8];
    make_ids(prompt, 8, 3);
    lm_generate_options greedy = {.max_new_tokens = TINY_POSITIONS - 8, .temperature = 0.0, .top_k = 0,
                                  .top_p = 1.0, .seed = 1, .eos_id = -1};
    lm_generate_options sampled = greedy;
    sampled.temperature = 0.9;
    sampled.top_k = 40;
    sampled.top_p = 0.95;
    sampled.seed = 7;
    /* Greedy decoding of the fixture's near-zero weights repeats one token;
     * weights drawn with a wider init give varied greedy text as well. */
    static const char *const wide_init[] = {"device=" GENERATE_TEST_DEVICE, "hf_config=" GPT2_TINY_CONFIG,
                                            "initializer_range=0.3", NULL};
    void *fixture = load_tiny(tiny_model), *wide = gpt2_test_create_ok(wide_init);
    ck_assert_int_eq(gpt2_test_arch()->init_weights(wide, 11), LM_OK);
    struct {
        const char *what;
        void *model;
        const lm_generate_options *options;
        int min_changes;
    } runs[] = {{"greedy, fixture weights", fixture, &greedy, 0},
                {"sampled, fixture weights", fixture, &sampled, 20},
                {"greedy, wide init", wide, &greedy, 20}};
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
        lm_ids cached = {0}, uncached = {0};
        generate_ids(runs[r].model, 1, prompt, 8, runs[r].options, &cached);
        generate_ids(runs[r].model, 0, prompt, 8, runs[r].options, &uncached);
        int changes = 0;
        for (size_t i = 0; i < cached.len; i++) {
            ck_assert_msg(cached.data[i] == uncached.data[i], "%s: token %zu is %d with the cache, %d without",
                          runs[r].what, i, cached.data[i], uncached.data[i]);
            changes += i > 0 && cached.data[i] != cached.data[i - 1];
        }
        printf("lm_generate %s (%s): %zu tokens identical with and without the KV cache (%d changes of token), "
               "first: %d %d %d %d\n",
               runs[r].what, GENERATE_TEST_DEVICE, cached.len, changes, cached.data[0], cached.data[1],
               cached.data[2], cached.data[3]);
        ck_assert_msg(changes >= runs[r].min_changes, "%s: only %d changes of token, the comparison proves little",
                      runs[r].what, changes);
        lm_ids_free(&cached);
        lm_ids_free(&uncached);
    }
    /* Greedy with the cache against the argmax of full forwards taken here. */
    lm_ids cached = {0};
    greedy.max_new_tokens = 6;
    generate_ids(wide, 1, prompt, 8, &greedy, &cached);
    int32_t seq[TINY_POSITIONS];
    memcpy(seq, prompt, sizeof prompt);
    float full[TINY_VOCAB];
    for (int i = 0; i < 6; i++) {
        full_forward_last(wide, seq, 8 + i, full);
        int best = 0;
        for (int v = 1; v < TINY_VOCAB; v++)
            if (full[v] > full[best]) best = v;
        ck_assert_int_eq(cached.data[i], best);
        seq[8 + i] = best;
    }
    lm_ids_free(&cached);
    gpt2_test_arch()->destroy(fixture);
    gpt2_test_arch()->destroy(wide);
}
END_TEST

/* repetition_penalty and no_repeat_ngram_size against transformers'
 * generate() on the same weights (fixtures/gen_processors_fixture.py):
 * greedy decoding gives the fixture's ids, with and without the cache.
 * The generator checked that no step was a near tie. */
#define PROCESSORS_FIXTURE LM_TEST_SOURCE_DIR "/tests/generate/fixtures/processors"

START_TEST(test_logits_processors_match_transformers) {
    static const char *const settings[] = {"device=" GENERATE_TEST_DEVICE,
                                           "hf_config=" PROCESSORS_FIXTURE "/config.json", NULL};
    void *model = gpt2_test_create_ok(settings);
    gpt2_test_load_weights(model, PROCESSORS_FIXTURE "/model.safetensors");
    lm_json *expected = NULL;
    ck_assert_msg(lm_json_parse_file(PROCESSORS_FIXTURE "/expected.json", &expected) == LM_OK, "%s",
                  lm_error_message());
    const lm_json *prompt_json = lm_json_get(expected, "prompt"), *cases = lm_json_get(expected, "cases");
    int32_t prompt[16];
    const int n_prompt = (int)lm_json_size(prompt_json);
    ck_assert(n_prompt > 0 && n_prompt <= 16);
    for (int i = 0; i < n_prompt; i++) prompt[i] = (int32_t)lm_json_int(lm_json_at(prompt_json, (size_t)i));
    const int new_tokens = (int)lm_json_int(lm_json_get(expected, "new_tokens"));
    ck_assert_uint_eq(lm_json_size(cases), 5);
    for (size_t c = 0; c < lm_json_size(cases); c++) {
        const lm_json *item = lm_json_at(cases, c), *ids = lm_json_get(item, "ids");
        const char *name = lm_json_string(lm_json_get(item, "name"), NULL);
        lm_generate_options o = {.max_new_tokens = new_tokens, .temperature = 0.0, .top_p = 1.0, .eos_id = -1};
        o.repetition_penalty = lm_json_number(lm_json_get(item, "repetition_penalty"));
        o.no_repeat_ngram_size = (int32_t)lm_json_int(lm_json_get(item, "no_repeat_ngram_size"));
        for (int cached = 0; cached <= 1; cached++) {
            lm_ids out = {0};
            generate_ids(model, cached, prompt, n_prompt, &o, &out);
            for (int i = 0; i < new_tokens; i++)
                ck_assert_msg(out.data[i] == (int32_t)lm_json_int(lm_json_at(ids, (size_t)i)),
                              "case %s (cache %d): token %d is %d, transformers generated %lld", name, cached, i,
                              out.data[i], (long long)lm_json_int(lm_json_at(ids, (size_t)i)));
            lm_ids_free(&out);
        }
    }
    /* Bad values are refused by name. */
    lm_plugin plugin = plugin_with(gpt2_test_arch(), 1);
    lm_handle handle = {&plugin, model};
    lm_ids out = {0};
    lm_generate_stats stats;
    lm_generate_options bad = {.max_new_tokens = 2, .top_p = 1.0, .eos_id = -1, .repetition_penalty = -1.0};
    ck_assert_int_eq(lm_generate(handle, prompt, n_prompt, &bad, &out, &stats), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "repetition_penalty must be a number > 0"));
    bad.repetition_penalty = 1.0;
    bad.no_repeat_ngram_size = -2;
    ck_assert_int_eq(lm_generate(handle, prompt, n_prompt, &bad, &out, &stats), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "no_repeat_ngram_size must be >= 0"));
    lm_ids_free(&out);
    lm_json_free(expected);
    gpt2_test_arch()->destroy(model);
}
END_TEST

/* A model whose vocabulary is padded beyond its tokenizer (lm.load_model's
 * tokenizer setting passes the tokenizer's size as n_decodable): sampling
 * never yields an id the tokenizer could not decode. */
START_TEST(test_sampling_stops_at_decodable_ids) {
    static const char *const wide_init[] = {"device=" GENERATE_TEST_DEVICE, "hf_config=" GPT2_TINY_CONFIG,
                                            "initializer_range=0.3", NULL};
    void *wide = gpt2_test_create_ok(wide_init);
    ck_assert_int_eq(gpt2_test_arch()->init_weights(wide, 11), LM_OK);
    int32_t prompt[8];
    make_ids(prompt, 8, 3);
    lm_generate_options o = {.max_new_tokens = 48, .temperature = 1.0, .top_k = 0, .top_p = 1.0, .seed = 5,
                             .eos_id = -1};
    const int32_t decodable = 40;
    lm_ids all = {0}, limited = {0};
    generate_ids(wide, 1, prompt, 8, &o, &all);
    int beyond = 0;
    for (size_t i = 0; i < all.len; i++) beyond += all.data[i] >= decodable;
    ck_assert_msg(beyond > 0, "unlimited sampling never went beyond id %d: the check below proves nothing", decodable);
    o.n_decodable = decodable;
    generate_ids(wide, 1, prompt, 8, &o, &limited);
    ck_assert_uint_eq(limited.len, 48);
    for (size_t i = 0; i < limited.len; i++)
        ck_assert_msg(limited.data[i] >= 0 && limited.data[i] < decodable, "token %zu is %d, beyond the %d decodable",
                      i, limited.data[i], decodable);
    o.temperature = 0.0; /* greedy too */
    lm_ids_free(&limited);
    generate_ids(wide, 1, prompt, 8, &o, &limited);
    for (size_t i = 0; i < limited.len; i++) ck_assert_int_lt(limited.data[i], decodable);
    lm_ids_free(&all);
    lm_ids_free(&limited);
    gpt2_test_arch()->destroy(wide);
}
END_TEST

static void expect_error(lm_status status, lm_status code, const char *fragment) {
    ck_assert_msg(status == code, "expected status %d, got %d (%s)", code, status, lm_error_message());
    ck_assert_msg(strstr(lm_error_message(), fragment) != NULL, "message lacks '%s': %s", fragment,
                  lm_error_message());
}

/* lm_vocab_check, the one rule lm.load_model and the trainer apply to a
 * tokenizer beside a model. */
START_TEST(test_vocab_check) {
    const int32_t specials[] = {0, 1, 299};
    lm_vocab_info vocab = {.vocab_size = 300, .unk_id = -1, .pad_id = 1, .bos_id = -1, .eos_id = 0, .cls_id = -1,
                           .sep_id = -1, .mask_id = 299, .special_ids = specials, .n_special = 3};
    ck_assert_int_eq(lm_vocab_check(&vocab, 300, "fix"), LM_OK);
    ck_assert_int_eq(lm_vocab_check(&vocab, 512, "fix"), LM_OK); /* a padded vocabulary */
    expect_error(lm_vocab_check(&vocab, 299, "use the saved one"), LM_ERR_INVALID,
                 "the tokenizer has 300 tokens but the model's vocab_size is 299: use the saved one");
    vocab.vocab_size = 200; /* a tokenizer whose specials lie beyond its own size */
    expect_error(lm_vocab_check(&vocab, 250, "fix"), LM_ERR_INVALID,
                 "the tokenizer's [MASK] token has id 299, outside the model's vocabulary of 250 ids (the tokenizer "
                 "has 200 tokens): fix");
    vocab.mask_id = 3;
    expect_error(lm_vocab_check(&vocab, 250, "fix"), LM_ERR_INVALID,
                 "the tokenizer's special token id 299 is outside the model's vocabulary of 250 ids");
}
END_TEST

START_TEST(test_limits_and_misuse) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    void *model = load_tiny(tiny_model);
    int32_t ids[8];
    make_ids(ids, 8, 4);
    float logits[TINY_VOCAB], full[TINY_VOCAB];

    expect_error(vt->generate_step(model, ids, 1, logits), LM_ERR_INVALID, "generate_reset");
    expect_error(vt->generate_reset(model, 0), LM_ERR_INVALID, "n_positions=64");
    expect_error(vt->generate_reset(model, TINY_POSITIONS + 1), LM_ERR_INVALID, "n_positions=64");
    expect_error(vt->generate_step(model, ids, 1, logits), LM_ERR_INVALID, "generate_reset"); /* failed resets */

    reset_ok(model, 4);
    expect_error(vt->generate_step(model, ids, 5, logits), LM_ERR_INVALID, "max_tokens=4");
    step_ok(model, ids, 3, logits);
    expect_error(vt->generate_step(model, ids + 3, 2, logits), LM_ERR_INVALID, "max_tokens=4");
    expect_error(vt->generate_step(model, ids, 0, logits), LM_ERR_INVALID, "n >= 1");
    expect_error(vt->generate_step(model, ids, 1, NULL), LM_ERR_INVALID, "logits");
    int32_t bad = TINY_VOCAB;
    expect_error(vt->generate_step(model, &bad, 1, logits), LM_ERR_INVALID, "vocabulary [0, 512)");
    bad = -1;
    expect_error(vt->generate_step(model, &bad, 1, logits), LM_ERR_INVALID, "token id -1");
    /* The refused steps changed nothing: the 4th token still fits and is right. */
    step_ok(model, ids + 3, 1, logits);
    full_forward_last(model, ids, 4, full);
    ck_assert(relative_error(logits, full, TINY_VOCAB) < LOGIT_TOLERANCE);
    expect_error(vt->generate_step(model, ids + 4, 1, logits), LM_ERR_INVALID, "max_tokens=4");

    /* A reset starts a new sequence (smaller, then larger than before). */
    reset_ok(model, 2);
    step_ok(model, ids + 4, 2, logits);
    full_forward_last(model, ids + 4, 2, full);
    ck_assert(relative_error(logits, full, TINY_VOCAB) < LOGIT_TOLERANCE);
    reset_ok(model, TINY_POSITIONS);
    step_ok(model, ids, 8, logits);
    full_forward_last(model, ids, 8, full);
    ck_assert(relative_error(logits, full, TINY_VOCAB) < LOGIT_TOLERANCE);

    /* The cache holds the keys and values of the weights at the reset:
     * whoever writes new weights through the parameter set (an optimizer,
     * a checkpoint load) resets, and the steps then follow the new weights. */
    float *weights = lm_test_read_params(vt, model);
    const lm_param_desc *ln_f = lm_test_find_desc(vt, model, "transformer.ln_f.bias");
    for (int c = 0; c < 64; c++) weights[ln_f->offset + (size_t)c] += 0.25f * (float)((c % 5) - 2);
    lm_test_write_params(vt, model, weights);
    reset_ok(model, 8);
    step_ok(model, ids, 5, logits);
    full_forward_last(model, ids, 5, full);
    ck_assert(relative_error(logits, full, TINY_VOCAB) < LOGIT_TOLERANCE);
    /* init_weights makes the cache stale: steps are refused until a reset. */
    ck_assert_int_eq(vt->init_weights(model, 5), LM_OK);
    expect_error(vt->generate_step(model, ids + 5, 1, logits), LM_ERR_INVALID, "generate_reset");
    reset_ok(model, 8);
    step_ok(model, ids, 1, logits);
    lm_free(weights);
    vt->destroy(model);

    /* Destroying a model right after reset (cache allocated, never stepped) is fine. */
    model = load_tiny(tiny_model);
    reset_ok(model, TINY_POSITIONS);
    vt->destroy(model);
}
END_TEST

/* Training-side forwards between steps do not touch the cache. */
START_TEST(test_forward_between_steps) {
    void *model = load_tiny(tiny_model);
    int32_t ids[24], other[2 * 16];
    make_ids(ids, 24, 5);
    make_ids(other, 2 * 16, 6);
    float logits[TINY_VOCAB], full[TINY_VOCAB];
    reset_ok(model, 24);
    step_ok(model, ids, 10, logits);
    /* A training forward and backward (with labels and a step state). */
    int32_t labels[2 * 16];
    make_ids(labels, 2 * 16, 8);
    lm_batch batch;
    memset(&batch, 0, sizeof batch);
    batch.B = 2;
    batch.T = 16;
    batch.input_ids = other;
    batch.labels = labels;
    batch.n_targets = 2 * 16;
    lm_step_state *state = lm_test_state_new(gpt2_test_arch(), model, 1, 0);
    ck_assert_msg(gpt2_test_arch()->set_training(model, 1) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(gpt2_test_arch()->forward(model, &batch, state) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(gpt2_test_arch()->backward(model, 1.0f, 0) == LM_OK, "%s", lm_error_message());
    lm_test_state_free(gpt2_test_arch(), model, state);
    for (int t = 10; t < 24; t++) step_ok(model, &ids[t], 1, logits);
    full_forward_last(model, ids, 24, full);
    double rel = relative_error(logits, full, TINY_VOCAB);
    ck_assert_msg(rel < LOGIT_TOLERANCE, "after a forward between steps: %.3e", rel);
    gpt2_test_arch()->destroy(model);
}
END_TEST

#ifdef GENERATE_TEST_CUDA
static const char *const tiny_model_cpu[] = {"device=cpu", "hf_config=" GPT2_TINY_CONFIG, NULL};

/* The GPU's steps against the CPU's, position by position.  fp32 on both,
 * but different GEMM and reduction orders: 1e-4 of the largest logit. */
START_TEST(test_cuda_steps_match_cpu_steps) {
    void *gpu = load_tiny(tiny_model), *cpu = load_tiny(tiny_model_cpu);
    int32_t ids[TINY_POSITIONS];
    make_ids(ids, TINY_POSITIONS, 7);
    float on_gpu[TINY_VOCAB], on_cpu[TINY_VOCAB];
    reset_ok(gpu, TINY_POSITIONS);
    reset_ok(cpu, TINY_POSITIONS);
    step_ok(gpu, ids, 20, on_gpu);
    step_ok(cpu, ids, 20, on_cpu);
    double worst = relative_error(on_gpu, on_cpu, TINY_VOCAB);
    for (int t = 20; t < TINY_POSITIONS; t++) {
        step_ok(gpu, &ids[t], 1, on_gpu);
        step_ok(cpu, &ids[t], 1, on_cpu);
        worst = fmax(worst, relative_error(on_gpu, on_cpu, TINY_VOCAB));
    }
    printf("generate_step cuda vs cpu: worst relative error %.2e over %d positions\n", worst, TINY_POSITIONS);
    ck_assert_msg(worst < 1e-4, "cuda vs cpu steps: %.3e", worst);
    gpt2_test_arch()->destroy(gpu);
    gpt2_test_arch()->destroy(cpu);
}
END_TEST
#endif

static Suite *generate_suite(void) {
    Suite *s = suite_create("generate (" GENERATE_TEST_DEVICE ")");
    TCase *tc = tcase_create("kv cache");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cached_attention_kernel); /* the CPU kernels, in both builds */
    tcase_add_test(tc, test_matvec_kernel);
    tcase_add_test(tc, test_slots_present);
    tcase_add_test(tc, test_every_prefix_matches_full_forward);
    tcase_add_test(tc, test_prompt_in_one_step_or_token_by_token);
    tcase_add_test(tc, test_lm_generate_with_and_without_cache);
    tcase_add_test(tc, test_logits_processors_match_transformers);
    tcase_add_test(tc, test_sampling_stops_at_decodable_ids);
    tcase_add_test(tc, test_vocab_check);
    tcase_add_test(tc, test_limits_and_misuse);
    tcase_add_test(tc, test_forward_between_steps);
#ifdef GENERATE_TEST_CUDA
    tcase_add_test(tc, test_cuda_steps_match_cpu_steps);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_main_for_device(GENERATE_TEST_DEVICE, generate_suite); }
