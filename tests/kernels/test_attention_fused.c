/* The fused attention's CPU twin (kernels/cpu/attention_fused.c) against
 * today's attention (kernels/cpu/attention.c) on random inputs: causal,
 * padded, with queries that see no key, T not a multiple of the 64-row
 * tile, several heads, GPT-2's interleaved qkv and BERT's three buffers;
 * with dropout, the same elements dropped; backward also against finite
 * differences.
 *
 * Tolerances (fp32; the two compute the same sums in another order: tiles
 * and an online softmax against one softmax per row):
 *   forward out:   |fused - eager| <= 4e-6 · (|eager| + rms(eager))
 *   backward d*:   |fused - eager| <= 1e-5 · (|eager| + rms(eager))
 *   lse: exp(score - lse) is the eager probability to 4e-6 relative (read
 *        through the forward), and exactly -inf on rows that see no key.
 * Measured on the cases below: forward within 1.0e-6, backward within 2.3e-6
 * of that scale (printed by each case). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"
#include "kernels.h"
#include "test_main.h"

#define TOL_FORWARD 4e-6
#define TOL_BACKWARD 1e-5
#define SEED 1234
#define STREAM 99

/* Fails unless |got - want| <= tol · (|want| + rms(want)) everywhere (NaN
 * never passes); prints the worst ratio. */
static void assert_close_scaled(const char *what, const float *got, const float *want, size_t n, double tol) {
    double sum_sq = 0.0;
    for (size_t i = 0; i < n; i++) sum_sq += (double)want[i] * want[i];
    const double rms = sqrt(sum_sq / (double)(n > 0 ? n : 1));
    double worst = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        const double err = fabs((double)got[i] - (double)want[i]) / (fabs((double)want[i]) + rms + 1e-30);
        if (!(err <= worst) || isnan(got[i])) {
            worst = isnan(got[i]) || isnan(err) ? INFINITY : err;
            worst_i = i;
        }
    }
    printf("  %-28s worst %.3g of (|eager| + rms), at %zu\n", what, worst, worst_i);
    ck_assert_msg(worst <= tol, "%s: element %zu is %.9g, eager gives %.9g (%.3g > %.3g of |eager| + rms %.3g)", what,
                  worst_i, (double)got[worst_i], (double)want[worst_i], worst, tol, rms);
}

typedef struct attn_case {
    int B, T, C, NH, interleaved, causal;
    int mask_mode; /* 0 none; 1 right padding of random length; 2 left padding (5 keys) + last row all padding */
    float p;
} attn_case;

typedef struct attn_inputs {
    size_t n_in, n_out, n_att, n_lse;
    int stride;
    float *buffers[3];
    const float *q, *k, *v;
    int32_t *mask;
} attn_inputs;

static attn_inputs make_inputs(const attn_case *c, uint64_t seed) {
    attn_inputs in = {0};
    in.stride = c->interleaved ? 3 * c->C : c->C;
    in.n_in = (size_t)c->B * c->T * in.stride;
    in.n_out = (size_t)c->B * c->T * c->C;
    in.n_att = (size_t)c->B * c->NH * c->T * c->T;
    in.n_lse = (size_t)c->B * c->NH * c->T;
    for (int i = 0; i < (c->interleaved ? 1 : 3); i++) {
        in.buffers[i] = tk_floats(in.n_in);
        tk_fill(in.buffers[i], in.n_in, -2.0f, 2.0f, seed + (uint64_t)i);
    }
    in.q = in.buffers[0];
    in.k = c->interleaved ? in.buffers[0] + c->C : in.buffers[1];
    in.v = c->interleaved ? in.buffers[0] + 2 * c->C : in.buffers[2];
    if (c->mask_mode) {
        in.mask = tk_ints((size_t)c->B * c->T);
        for (int b = 0; b < c->B; b++) {
            const int length = 1 + (int)((uint64_t)(b * 7919 + 13) % (uint64_t)c->T);
            for (int t = 0; t < c->T; t++)
                in.mask[b * c->T + t] = c->mask_mode == 1 ? t < length : (b == c->B - 1 ? 0 : t >= 5);
        }
    }
    return in;
}

static void free_inputs(attn_inputs *in) {
    for (int i = 0; i < 3; i++) free(in->buffers[i]);
    free(in->mask);
}

/* Gradient buffers laid out like the inputs; *grad_q.. point into them. */
static void grad_views(const attn_case *c, float *const bufs[3], float **gq, float **gk, float **gv) {
    *gq = bufs[0];
    *gk = c->interleaved ? bufs[0] + c->C : bufs[1];
    *gv = c->interleaved ? bufs[0] + 2 * c->C : bufs[2];
}

static void check_case(attn_case c) {
    printf("fused vs eager: B=%d T=%d C=%d NH=%d interleaved=%d causal=%d mask=%d p=%g\n", c.B, c.T, c.C, c.NH,
           c.interleaved, c.causal, c.mask_mode, (double)c.p);
    attn_inputs in = make_inputs(&c, 500 + (uint64_t)c.T);
    const int n_buffers = c.interleaved ? 1 : 3;
    float *out_eager = tk_floats(in.n_out), *preatt = tk_floats(in.n_att), *att = tk_floats(in.n_att);
    float *out_fused = tk_floats(in.n_out), *lse = tk_floats(in.n_lse);
    lm_cpu_attention_forward(out_eager, preatt, att, in.q, in.k, in.v, in.stride, in.mask, c.causal, c.B, c.T, c.C,
                             c.NH, c.p, SEED, STREAM);
    lm_cpu_attention_fused_forward(out_fused, lse, in.q, in.k, in.v, in.stride, in.mask, c.causal, c.B, c.T, c.C, c.NH,
                                   c.p, SEED, STREAM);
    assert_close_scaled("forward out", out_fused, out_eager, in.n_out, TOL_FORWARD);

    /* lse: -inf exactly on the rows that see no key (eager: 1/T everywhere),
     * else exp(score - lse) = the eager probability of the row's first shown key. */
    const int hs = c.C / c.NH;
    const float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < c.B; b++) {
        for (int h = 0; h < c.NH; h++) {
            for (int i = 0; i < c.T; i++) {
                const size_t row = ((size_t)b * c.NH + h) * c.T + (size_t)i;
                const float *p_row = preatt + row * c.T;
                int first = -1;
                for (int j = 0; j < (c.causal ? i + 1 : c.T); j++)
                    if (!in.mask || in.mask[b * c.T + j]) {
                        first = j;
                        break;
                    }
                if (first < 0) {
                    ck_assert_msg(isinf(lse[row]) && lse[row] < 0, "lse of row %zu (sees no key) is %g, not -inf",
                                  row, (double)lse[row]);
                    continue;
                }
                const float *qi = in.q + ((size_t)b * c.T + i) * in.stride + (size_t)h * hs;
                const float *kj = in.k + ((size_t)b * c.T + first) * in.stride + (size_t)h * hs;
                double score = 0.0;
                for (int d = 0; d < hs; d++) score += (double)qi[d] * kj[d];
                const double p = exp(score * scale - lse[row]);
                ck_assert_msg(fabs(p - p_row[first]) <= 4e-6 * p_row[first] + 1e-12,
                              "row %zu: exp(score - lse) = %.9g, eager probability %.9g", row, p,
                              (double)p_row[first]);
            }
        }
    }

    /* backward: both accumulate onto the same random gradients */
    float *dout = tk_floats(in.n_out);
    tk_fill(dout, in.n_out, -1.0f, 1.0f, 77 + (uint64_t)c.T);
    float *g_eager[3] = {NULL, NULL, NULL}, *g_fused[3] = {NULL, NULL, NULL}, *g0[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n_buffers; i++) {
        g0[i] = tk_floats(in.n_in);
        tk_fill(g0[i], in.n_in, -0.01f, 0.01f, 90 + (uint64_t)i);
        g_eager[i] = tk_copy(g0[i], in.n_in);
        g_fused[i] = tk_copy(g0[i], in.n_in);
    }
    float *scratch_eager = tk_floats(in.n_att), *scratch_fused = tk_floats(in.n_lse);
    float *gq, *gk, *gv;
    grad_views(&c, g_eager, &gq, &gk, &gv);
    lm_cpu_attention_backward(gq, gk, gv, scratch_eager, dout, preatt, att, in.q, in.k, in.v, in.stride, c.B, c.T, c.C,
                              c.NH, c.p, SEED, STREAM);
    grad_views(&c, g_fused, &gq, &gk, &gv);
    lm_cpu_attention_fused_backward(gq, gk, gv, scratch_fused, dout, out_fused, lse, in.q, in.k, in.v, in.stride,
                                    in.mask, c.causal, c.B, c.T, c.C, c.NH, c.p, SEED, STREAM);
    static const char *names[2][3] = {{"backward dq", "backward dk", "backward dv"}, {"backward dqkv", "", ""}};
    for (int i = 0; i < n_buffers; i++) {
        float *added_eager = tk_delta(g_eager[i], g0[i], in.n_in), *added_fused = tk_delta(g_fused[i], g0[i], in.n_in);
        assert_close_scaled(names[c.interleaved][i], added_fused, added_eager, in.n_in, TOL_BACKWARD);
        free(added_eager);
        free(added_fused);
        free(g0[i]);
        free(g_eager[i]);
        free(g_fused[i]);
    }
    free(scratch_eager);
    free(scratch_fused);
    free(dout);
    free(out_eager);
    free(out_fused);
    free(preatt);
    free(att);
    free(lse);
    free_inputs(&in);
}

START_TEST(test_fused_matches_eager_causal) {
    check_case((attn_case){2, 130, 48, 3, 1, 1, 0, 0.0f}); /* GPT-2 layout, 3 tiles, the last partial */
    check_case((attn_case){1, 64, 32, 2, 1, 1, 0, 0.0f});  /* exactly one tile */
    check_case((attn_case){3, 7, 16, 4, 1, 1, 0, 0.0f});   /* head size 4, shorter than a tile */
}
END_TEST

START_TEST(test_fused_matches_eager_padding) {
    check_case((attn_case){3, 100, 64, 4, 0, 0, 1, 0.0f}); /* BERT layout, right padding */
    check_case((attn_case){3, 70, 32, 2, 1, 1, 2, 0.0f});  /* causal + left padding: queries 0..4 see no key */
    check_case((attn_case){2, 90, 32, 2, 0, 0, 2, 0.0f});  /* bidirectional, a fully padded batch row */
}
END_TEST

START_TEST(test_fused_matches_eager_with_dropout) {
    /* A different mask would move outputs and gradients by O(1): within
     * tolerance means the same elements were dropped, at the same flat index. */
    check_case((attn_case){2, 130, 48, 3, 1, 1, 0, 0.2f});
    check_case((attn_case){3, 100, 64, 4, 0, 0, 1, 0.1f});
    check_case((attn_case){3, 70, 32, 2, 1, 1, 2, 0.3f}); /* uniform rows draw on every key */
    check_case((attn_case){2, 20, 16, 2, 0, 1, 0, 1.0f}); /* everything dropped */
}
END_TEST

/* The dropout rule itself: with p > 0 the output depends on the (seed,
 * stream) pair only, the same pair gives the same bits, another gives
 * another mask. */
START_TEST(test_fused_dropout_is_a_function_of_the_key) {
    attn_case c = {2, 80, 32, 2, 1, 1, 0, 0.25f};
    attn_inputs in = make_inputs(&c, 4242);
    float *a = tk_floats(in.n_out), *b = tk_floats(in.n_out), *other = tk_floats(in.n_out);
    float *lse = tk_floats(in.n_lse);
    lm_cpu_attention_fused_forward(a, lse, in.q, in.k, in.v, in.stride, NULL, 1, c.B, c.T, c.C, c.NH, c.p, SEED, STREAM);
    lm_cpu_attention_fused_forward(b, lse, in.q, in.k, in.v, in.stride, NULL, 1, c.B, c.T, c.C, c.NH, c.p, SEED, STREAM);
    lm_cpu_attention_fused_forward(other, lse, in.q, in.k, in.v, in.stride, NULL, 1, c.B, c.T, c.C, c.NH, c.p, SEED,
                                   STREAM + 1);
    ck_assert_msg(memcmp(a, b, in.n_out * sizeof(float)) == 0, "the same key must give the same bits");
    size_t differ = 0;
    for (size_t i = 0; i < in.n_out; i++) differ += a[i] != other[i];
    ck_assert_msg(differ > in.n_out / 2, "another stream must drop other elements (%zu of %zu outputs differ)", differ,
                  in.n_out);
    free(a);
    free(b);
    free(other);
    free(lse);
    free_inputs(&in);
}
END_TEST

/* ---- finite differences ---- */

typedef struct fd_case {
    attn_case c;
    attn_inputs in;
    float *out, *lse;
} fd_case;

static void fd_forward(void *ctx) {
    fd_case *f = ctx;
    lm_cpu_attention_fused_forward(f->out, f->lse, f->in.q, f->in.k, f->in.v, f->in.stride, f->in.mask, f->c.causal,
                                   f->c.B, f->c.T, f->c.C, f->c.NH, f->c.p, SEED, STREAM);
}

/* Masks that leave every query a visible key (a row that sees none is
 * Hugging Face's uniform row, whose autograd gradient is not the float
 * function's derivative: the eager comparison above covers it). */
static void check_fd(attn_case c) {
    printf("fused finite differences: B=%d T=%d C=%d NH=%d interleaved=%d causal=%d mask=%d p=%g\n", c.B, c.T, c.C,
           c.NH, c.interleaved, c.causal, c.mask_mode, (double)c.p);
    fd_case f = {.c = c, .in = make_inputs(&c, 900)};
    f.out = tk_floats(f.in.n_out);
    f.lse = tk_floats(f.in.n_lse);
    float *dout = tk_floats(f.in.n_out), *scratch = tk_floats(f.in.n_lse);
    tk_fill(dout, f.in.n_out, -1.0f, 1.0f, 31);
    fd_forward(&f);
    const int n_buffers = c.interleaved ? 1 : 3;
    float *g[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n_buffers; i++) g[i] = tk_floats(f.in.n_in);
    float *gq, *gk, *gv;
    grad_views(&c, g, &gq, &gk, &gv);
    lm_cpu_attention_fused_backward(gq, gk, gv, scratch, dout, f.out, f.lse, f.in.q, f.in.k, f.in.v, f.in.stride,
                                    f.in.mask, c.causal, c.B, c.T, c.C, c.NH, c.p, SEED, STREAM);
    static const char *names[2][3] = {{"fused dq", "fused dk", "fused dv"}, {"fused dqkv", "", ""}};
    for (int i = 0; i < n_buffers; i++) {
        tk_check_gradient(names[c.interleaved][i], fd_forward, &f, f.in.buffers[i], f.in.n_in, f.out, dout,
                          f.in.n_out, g[i], 1e-2, 5e-4, 5e-3);
        free(g[i]);
    }
    free(dout);
    free(scratch);
    free(f.out);
    free(f.lse);
    free_inputs(&f.in);
}

START_TEST(test_fused_gradients_finite_differences) {
    check_fd((attn_case){1, 67, 8, 2, 1, 1, 0, 0.0f});  /* causal, two tiles (the second of 3 rows) */
    check_fd((attn_case){2, 66, 8, 2, 0, 0, 1, 0.2f});  /* padded, dropout: the mask is fixed by the key */
}
END_TEST

static Suite *fused_suite(void) {
    Suite *s = suite_create("attention_fused");
    TCase *tc = tcase_create("cpu twin");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fused_matches_eager_causal);
    tcase_add_test(tc, test_fused_matches_eager_padding);
    tcase_add_test(tc, test_fused_matches_eager_with_dropout);
    tcase_add_test(tc, test_fused_dropout_is_a_function_of_the_key);
    tcase_add_test(tc, test_fused_gradients_finite_differences);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_run_suites(fused_suite(), NULL); }
