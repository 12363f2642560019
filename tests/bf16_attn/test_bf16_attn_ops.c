/* The attention block's bf16 ops (backend_ops.def, "the attention block in
 * bf16": attention_forward_bf16, attention_backward_bf16,
 * attention_fused_forward_bf16, attention_fused_backward_bf16) through the
 * backend table.
 *
 * On the CPU (test_bf16_attn_ops) against what the twins promise
 * (kernels/cpu/attention_bf16.c), bit for bit: each op is the fp32 op on
 * the widened q/k/v (the fused backward: and the widened bf16 out) with out
 * rounded once; preatt, att, lse and dq/dk/dv (added onto random values)
 * every bit the fp32 op's.  Layouts: BERT's three buffers (stride C),
 * GPT-2's interleaved qkv (stride 3C) and an interleaved layout with 5
 * padding columns per row (stride 3C + 5), whose padding holds NaN in q/k/v
 * (a twin that read it would spread NaN) and a sentinel in the gradients
 * (which must stay: the gradients land at the caller's stride, nothing
 * between).  Causal or not, key masks (right padding; left padding with a
 * batch row of padding only: queries that see no key), dropout 0.1 / 0.2 /
 * everything dropped, T past one 64-row tile, head sizes 16, 8, 33, 64, 128.
 *
 * Against references that share no code with the twins (both devices):
 *   a double-precision attention computed here from the widened inputs,
 *   with the ops' masking rules and the same dropout draws
 *   (lm_rng_uniform >= p at the flat [B, NH, T, T] index): out within half
 *   a bf16 ulp plus OUT_FP32 · Σ_j |a_ij·v_jd| (the fp32 op's own error,
 *   relative to the sum's magnitude); dq/dk/dv within GRAD_BOUND,
 *   norm-relative (|got - exact| / (|exact| + rms(exact))).  The fused
 *   backward's exact D is Σ dout·out over the ROUNDED out (its contract),
 *   the eager one's over the exact out (it reads the probabilities);
 *   torch (a committed fixture, gen_sdpa_bf16_fixture.py): an fp32 SDPA on
 *   the same bf16 values, rounded once; causal, key-masked and plain: each
 *   op within TORCH_STEPS bf16 steps of torch (fp32 sums in another order
 *   may round the other way).
 *
 * The same source builds test_bf16_attn_ops_cuda (label gpu; 77 without a
 * GPU): the CUDA ops against the CPU twins on the same bf16 inputs (out
 * within CUDA_OUT: the fp32 attention tests' 2e-5 plus one bf16 step;
 * preatt, att and lse within 2e-5, gradients within 5e-5, norm-relative;
 * the backward twins given the GPU's forward results so that only the
 * backward differs); the eager bf16 ops bit for bit the GPU's own fp32 ops
 * on the widened inputs, out rounded (kernels/cuda/attention_bf16.cu runs
 * exactly those); the padding columns untouched; and the references above.
 * kernels/cuda/NOTES_bf16_storage.md, point 9. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bf16.h"
#include "bf16_op_check.h"
#include "cuda_probe.h"
#include "kernels.h"
#include "lmcore/lmcore.h"
#include "lmcore/rng.h"
#include "sdpa_bf16_fixture.h"
#include "test_main.h"

#ifndef BF16_ATTN_TEST_DEVICE
#define BF16_ATTN_TEST_DEVICE "cpu"
#endif
#define OUT_FP32 1e-5   /* the fp32 out's error, relative to Σ|a·v| (worst seen is printed) */
#define GRAD_BOUND 5e-5 /* dq/dk/dv against the double reference, norm-relative */
#define TORCH_STEPS 1
#define CUDA_TOL 2e-5   /* test_cuda_ops.c / test_cuda_fused_attention.c: out, probabilities, lse */
#define CUDA_GRAD 5e-5  /* their gradients */
#define CUDA_OUT (CUDA_TOL + 0.0078125) /* plus one bf16 step: 2^-7 of the value at most */
#define GRAD_SENTINEL 12345.0f
#define SITE 3

typedef struct attn_case {
    int B, T, C, NH;
    int layout;    /* 0: three buffers, stride C; 1: interleaved, 3C; 2: interleaved with 5 padding columns */
    int causal;
    int mask_mode; /* 0 none; 1 right padding; 2 five keys of left padding, the last batch row all padding */
    float p;
} attn_case;

static const attn_case cases[] = {
    {2, 37, 32, 2, 1, 1, 0, 0.0f},  {2, 37, 32, 4, 2, 1, 1, 0.1f}, {3, 20, 24, 3, 0, 0, 2, 0.2f},
    {2, 70, 66, 2, 2, 0, 1, 0.0f},  {1, 9, 16, 2, 0, 1, 0, 1.0f},  {2, 70, 128, 2, 1, 1, 2, 0.1f},
    {1, 66, 128, 1, 0, 0, 1, 0.0f},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- inputs ---- */

typedef struct attn_inputs {
    attn_case c;
    int stride, n_buffers;
    size_t rows, n_in, n_out, n_lse, n_att;
    uint16_t *qkv[3];  /* bf16; padding columns NaN */
    float *grad0[3];   /* where the gradients start; padding columns GRAD_SENTINEL */
    float *dout;
    int32_t *mask;     /* NULL without one */
    lm_step_state state;
    uint64_t stream;
} attn_inputs;

static int is_padding(const attn_inputs *in, size_t at) { return (int)(at % (size_t)in->stride) >= 3 * in->c.C; }

static attn_inputs inputs_make(attn_case c, uint64_t seed) {
    attn_inputs in;
    memset(&in, 0, sizeof in);
    in.c = c;
    in.stride = c.layout == 0 ? c.C : c.layout == 1 ? 3 * c.C : 3 * c.C + 5;
    in.n_buffers = c.layout == 0 ? 3 : 1;
    in.rows = (size_t)c.B * c.T;
    in.n_in = in.rows * (size_t)in.stride;
    in.n_out = in.rows * (size_t)c.C;
    in.n_lse = (size_t)c.B * c.NH * c.T;
    in.n_att = in.n_lse * (size_t)c.T;
    lm_test_lcg_state = seed;
    for (int i = 0; i < in.n_buffers; i++) {
        in.qkv[i] = malloc(in.n_in * sizeof(uint16_t));
        in.grad0[i] = malloc(in.n_in * sizeof(float));
        ck_assert(in.qkv[i] && in.grad0[i]);
        lm_test_random_bf16(in.qkv[i], in.n_in, 2.0f);
        for (size_t j = 0; j < in.n_in; j++) {
            in.grad0[i][j] = is_padding(&in, j) ? GRAD_SENTINEL : lm_test_uniform(-0.01f, 0.01f);
            if (is_padding(&in, j)) in.qkv[i][j] = 0x7FC1; /* NaN: must never be read */
        }
    }
    in.dout = malloc(in.n_out * sizeof(float));
    ck_assert_ptr_nonnull(in.dout);
    for (size_t j = 0; j < in.n_out; j++) in.dout[j] = lm_test_uniform(-1.0f, 1.0f);
    if (c.mask_mode) {
        in.mask = malloc(in.rows * sizeof(int32_t));
        ck_assert_ptr_nonnull(in.mask);
        for (int b = 0; b < c.B; b++) {
            const int length = 1 + (b * 7919 + 13) % c.T;
            for (int t = 0; t < c.T; t++)
                in.mask[b * c.T + t] = c.mask_mode == 1 ? t < length : (b == c.B - 1 ? 0 : t >= 5);
        }
    }
    in.state.seed = seed * 31u + 7u;
    in.state.micro_batch = 11;
    in.stream = lm_dropout_stream(in.state.micro_batch, SITE);
    return in;
}

static void inputs_free(attn_inputs *in) {
    for (int i = 0; i < in->n_buffers; i++) free(in->qkv[i]), free(in->grad0[i]);
    free(in->dout), free(in->mask);
}

/* q, k, v (or dq, dk, dv) inside a layout's buffers. */
#define VIEW(bufs, i)                                                                                                  \
    ((i) == 0 || in->n_buffers == 1 ? (bufs)[0] + (in->n_buffers == 1 ? (i) * in->c.C : 0) : (bufs)[i])

/* ---- the four ops on a backend ---- */

typedef struct attn_results {
    uint16_t *out_eager, *out_fused;
    float *preatt, *att, *lse;
    float *grads_eager[3], *grads_fused[3];
} attn_results;

static void results_alloc(attn_results *r, const attn_inputs *in) {
    r->out_eager = malloc(in->n_out * 2), r->out_fused = malloc(in->n_out * 2);
    r->preatt = malloc(in->n_att * 4), r->att = malloc(in->n_att * 4), r->lse = malloc(in->n_lse * 4);
    ck_assert(r->out_eager && r->out_fused && r->preatt && r->att && r->lse);
    for (int i = 0; i < in->n_buffers; i++) {
        r->grads_eager[i] = malloc(in->n_in * 4), r->grads_fused[i] = malloc(in->n_in * 4);
        ck_assert(r->grads_eager[i] && r->grads_fused[i]);
    }
}

static void results_free(attn_results *r, const attn_inputs *in) {
    free(r->out_eager), free(r->out_fused), free(r->preatt), free(r->att), free(r->lse);
    for (int i = 0; i < in->n_buffers; i++) free(r->grads_eager[i]), free(r->grads_fused[i]);
}

static void run_bf16_ops(lm_backend *be, const attn_inputs *in, attn_results *r) {
    const attn_case c = in->c;
    uint16_t *d_qkv[3] = {NULL, NULL, NULL};
    float *d_ge[3] = {NULL, NULL, NULL}, *d_gf[3] = {NULL, NULL, NULL};
    for (int i = 0; i < in->n_buffers; i++) {
        d_qkv[i] = lm_test_dev_copy(be, in->qkv[i], in->n_in * 2);
        d_ge[i] = lm_test_dev_copy(be, in->grad0[i], in->n_in * 4);
        d_gf[i] = lm_test_dev_copy(be, in->grad0[i], in->n_in * 4);
    }
    float *d_dout = lm_test_dev_copy(be, in->dout, in->n_out * 4);
    int32_t *d_mask = in->mask ? lm_test_dev_copy(be, in->mask, in->rows * 4) : NULL;
    lm_step_state *d_key = lm_test_dev_copy(be, &in->state, sizeof in->state);
    uint16_t *d_oe = lm_test_dev_copy(be, NULL, in->n_out * 2), *d_of = lm_test_dev_copy(be, NULL, in->n_out * 2);
    float *d_pre = lm_test_dev_copy(be, NULL, in->n_att * 4), *d_att = lm_test_dev_copy(be, NULL, in->n_att * 4);
    float *d_scr = lm_test_dev_copy(be, NULL, in->n_att * 4), *d_lse = lm_test_dev_copy(be, NULL, in->n_lse * 4);
    const uint16_t *q = VIEW(d_qkv, 0), *k = VIEW(d_qkv, 1), *v = VIEW(d_qkv, 2);
    be->ops->attention_forward_bf16(be, d_oe, d_pre, d_att, q, k, v, in->stride, d_mask, c.causal, c.B, c.T, c.C,
                                    c.NH, c.p, d_key, SITE);
    be->ops->attention_backward_bf16(be, VIEW(d_ge, 0), VIEW(d_ge, 1), VIEW(d_ge, 2), d_scr, d_dout, d_pre, d_att, q,
                                     k, v, in->stride, c.B, c.T, c.C, c.NH, c.p, d_key, SITE);
    be->ops->attention_fused_forward_bf16(be, d_of, d_lse, q, k, v, in->stride, d_mask, c.causal, c.B, c.T, c.C, c.NH,
                                          c.p, d_key, SITE);
    be->ops->attention_fused_backward_bf16(be, VIEW(d_gf, 0), VIEW(d_gf, 1), VIEW(d_gf, 2), d_scr, d_dout, d_of,
                                           d_lse, q, k, v, in->stride, d_mask, c.causal, c.B, c.T, c.C, c.NH, c.p,
                                           d_key, SITE);
    ck_assert_msg(be->ops->sync(be) == LM_OK, "%s", lm_error_message());
    lm_test_download(be, r->out_eager, d_oe, in->n_out * 2);
    lm_test_download(be, r->out_fused, d_of, in->n_out * 2);
    lm_test_download(be, r->preatt, d_pre, in->n_att * 4);
    lm_test_download(be, r->att, d_att, in->n_att * 4);
    lm_test_download(be, r->lse, d_lse, in->n_lse * 4);
    for (int i = 0; i < in->n_buffers; i++) {
        lm_test_download(be, r->grads_eager[i], d_ge[i], in->n_in * 4);
        lm_test_download(be, r->grads_fused[i], d_gf[i], in->n_in * 4);
        be->ops->free(be, d_qkv[i]), be->ops->free(be, d_ge[i]), be->ops->free(be, d_gf[i]);
    }
    void *rest[] = {d_dout, d_mask, d_key, d_oe, d_of, d_pre, d_att, d_scr, d_lse};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
        if (rest[i]) be->ops->free(be, rest[i]);
}

/* ---- helpers ---- */

static float *widened_copy(const uint16_t *h, size_t n) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    lm_cpu_widen_bf16(x, h, n);
    return x;
}

static float *float_copy(const float *x, size_t n) {
    float *y = malloc((n ? n : 1) * sizeof *y);
    ck_assert_ptr_nonnull(y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

/* Worst |got - want| / (|want| + rms(want)) over n. */
static double norm_relative(const float *got, const float *want, size_t n) {
    double ss = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)want[i] * want[i];
    const double rms = n ? sqrt(ss / (double)n) : 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - want[i]) / (fabs(want[i]) + rms + 1e-30);
        if (isnan(e) || e > worst) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* What an op added to each gradient buffer (padding columns left out), as one array. */
static float *added(const attn_inputs *in, float *const grads[3]) {
    float *a = malloc(in->n_buffers * in->n_in * sizeof *a + 1);
    ck_assert_ptr_nonnull(a);
    size_t n = 0;
    for (int i = 0; i < in->n_buffers; i++)
        for (size_t j = 0; j < in->n_in; j++)
            if (!is_padding(in, j)) a[n++] = grads[i][j] - in->grad0[i][j];
    return a;
}

static size_t n_added(const attn_inputs *in) {
    size_t n = 0;
    for (size_t j = 0; j < in->n_in; j++) n += !is_padding(in, j);
    return n * (size_t)in->n_buffers;
}

/* bf16 codes as integers in the order of their values (-0 and +0 equal):
 * the distance of two is their distance in bf16 steps. */
static int bf16_ordered(uint16_t h) { return h & 0x8000u ? -(int)(h & 0x7fffu) : (int)h; }

static void assert_padding_untouched(const attn_inputs *in, float *const grads[3], const char *op) {
    for (int i = 0; i < in->n_buffers; i++)
        for (size_t j = 0; j < in->n_in; j++)
            if (is_padding(in, j))
                ck_assert_msg(grads[i][j] == GRAD_SENTINEL, "%s wrote padding column %d of row %zu: %g", op,
                              (int)(j % (size_t)in->stride), j / (size_t)in->stride, (double)grads[i][j]);
}

/* ---- the fp32 ops on the widened operands (what the CPU twins promise) ---- */

typedef struct fp32_results {
    uint16_t *out_eager, *out_fused; /* rounded once */
    float *preatt, *att, *lse, *grads_eager[3], *grads_fused[3];
} fp32_results;

#ifndef BF16_ATTN_TEST_CUDA
/* The fp32 ops on the widened q/k/v; the fused backward on the widened
 * bf16 out `fused_out` (the op under test's, as its contract says). */
static void run_fp32_on_widened(const attn_inputs *in, const uint16_t *fused_out, fp32_results *f) {
    const attn_case c = in->c;
    float *w[3] = {NULL, NULL, NULL};
    for (int i = 0; i < in->n_buffers; i++) {
        w[i] = widened_copy(in->qkv[i], in->n_in);
        f->grads_eager[i] = float_copy(in->grad0[i], in->n_in);
        f->grads_fused[i] = float_copy(in->grad0[i], in->n_in);
    }
    float *out32 = malloc(in->n_out * 4), *scratch = malloc(in->n_att * 4);
    float *fused_wide = widened_copy(fused_out, in->n_out);
    f->out_eager = malloc(in->n_out * 2), f->out_fused = malloc(in->n_out * 2);
    f->preatt = malloc(in->n_att * 4), f->att = malloc(in->n_att * 4), f->lse = malloc(in->n_lse * 4);
    ck_assert(out32 && scratch && f->out_eager && f->out_fused && f->preatt && f->att && f->lse);
    const float *q = VIEW(w, 0), *k = VIEW(w, 1), *v = VIEW(w, 2);
    lm_cpu_attention_forward(out32, f->preatt, f->att, q, k, v, in->stride, in->mask, c.causal, c.B, c.T, c.C, c.NH,
                             c.p, in->state.seed, in->stream);
    lm_cpu_convert_to_bf16(f->out_eager, out32, in->n_out);
    lm_cpu_attention_backward(VIEW(f->grads_eager, 0), VIEW(f->grads_eager, 1), VIEW(f->grads_eager, 2), scratch,
                              in->dout, f->preatt, f->att, q, k, v, in->stride, c.B, c.T, c.C, c.NH, c.p,
                              in->state.seed, in->stream);
    lm_cpu_attention_fused_forward(out32, f->lse, q, k, v, in->stride, in->mask, c.causal, c.B, c.T, c.C, c.NH, c.p,
                                   in->state.seed, in->stream);
    lm_cpu_convert_to_bf16(f->out_fused, out32, in->n_out);
    lm_cpu_attention_fused_backward(VIEW(f->grads_fused, 0), VIEW(f->grads_fused, 1), VIEW(f->grads_fused, 2),
                                    scratch, in->dout, fused_wide, f->lse, q, k, v, in->stride, in->mask, c.causal,
                                    c.B, c.T, c.C, c.NH, c.p, in->state.seed, in->stream);
    for (int i = 0; i < in->n_buffers; i++) free(w[i]);
    free(out32), free(scratch), free(fused_wide);
}
#endif

static void fp32_results_free(fp32_results *f, const attn_inputs *in) {
    free(f->out_eager), free(f->out_fused), free(f->preatt), free(f->att), free(f->lse);
    for (int i = 0; i < in->n_buffers; i++) free(f->grads_eager[i]), free(f->grads_fused[i]);
}

#include "bf16_attn_reference.h"

#ifndef BF16_ATTN_TEST_CUDA
/* CPU: every op is the fp32 op on the widened operands, out rounded once, bit for bit. */
START_TEST(twins_are_the_fp32_ops_on_widened_operands) {
    const attn_inputs in = inputs_make(cases[_i], 1000u + (uint64_t)_i);
    const attn_case c = in.c;
    lm_backend *be = lm_test_make_backend(BF16_ATTN_TEST_DEVICE);
    attn_results r;
    results_alloc(&r, &in);
    run_bf16_ops(be, &in, &r);
    fp32_results f;
    run_fp32_on_widened(&in, r.out_fused, &f);
    ck_assert_msg(memcmp(r.out_eager, f.out_eager, in.n_out * 2) == 0, "case %d: attention_forward_bf16's out", _i);
    ck_assert_msg(memcmp(r.preatt, f.preatt, in.n_att * 4) == 0, "case %d: preatt", _i);
    ck_assert_msg(memcmp(r.att, f.att, in.n_att * 4) == 0, "case %d: att", _i);
    ck_assert_msg(memcmp(r.out_fused, f.out_fused, in.n_out * 2) == 0, "case %d: attention_fused_forward_bf16's out",
                  _i);
    ck_assert_msg(memcmp(r.lse, f.lse, in.n_lse * 4) == 0, "case %d: lse", _i);
    for (int i = 0; i < in.n_buffers; i++) {
        ck_assert_msg(memcmp(r.grads_eager[i], f.grads_eager[i], in.n_in * 4) == 0,
                      "case %d: attention_backward_bf16's gradient buffer %d", _i, i);
        ck_assert_msg(memcmp(r.grads_fused[i], f.grads_fused[i], in.n_in * 4) == 0,
                      "case %d: attention_fused_backward_bf16's gradient buffer %d", _i, i);
    }
    assert_padding_untouched(&in, r.grads_eager, "attention_backward_bf16");
    assert_padding_untouched(&in, r.grads_fused, "attention_fused_backward_bf16");
    printf("case %d (B%d T%d C%d NH%d layout %d causal %d mask %d p %g): the fp32 ops' bits on the widened "
           "operands, out rounded once; padding columns untouched\n",
           _i, c.B, c.T, c.C, c.NH, c.layout, c.causal, c.mask_mode, (double)c.p);
    fp32_results_free(&f, &in);
    results_free(&r, &in);
    lm_backend_release(be);
    inputs_free((attn_inputs *)&in);
}
END_TEST
#else
/* CUDA: against the CPU twins on the same bf16 inputs; the eager ops the GPU's own fp32 ops' bits. */
#include "bf16_attn_cuda_checks.h"
#endif

/* Both devices: against the double-precision attention. */
START_TEST(ops_match_a_double_reference) {
    const attn_inputs in = inputs_make(cases[_i], 2000u + (uint64_t)_i);
    const attn_case c = in.c;
    lm_backend *be = lm_test_make_backend(BF16_ATTN_TEST_DEVICE);
    attn_results r;
    results_alloc(&r, &in);
    run_bf16_ops(be, &in, &r);
    exact_attention ex;
    exact_attention_compute(&ex, &in, r.out_fused);
    const double out_e = out_against_exact(&in, r.out_eager, &ex), out_f = out_against_exact(&in, r.out_fused, &ex);
    float *ae = added(&in, r.grads_eager), *af = added(&in, r.grads_fused);
    const size_t n = n_added(&in);
    const double ge = norm_relative(ae, ex.grads_eager, n), gf = norm_relative(af, ex.grads_fused, n);
    printf("case %d (B%d T%d C%d NH%d layout %d causal %d mask %d p %g) against double: out %.3f / %.3f of the "
           "bound (eager / fused), gradients %.2e / %.2e (bound %.0e)\n",
           _i, c.B, c.T, c.C, c.NH, c.layout, c.causal, c.mask_mode, (double)c.p, out_e, out_f, ge, gf, GRAD_BOUND);
    ck_assert_msg(out_e <= 1.0 && out_f <= 1.0, "case %d: out off the double reference (%.3f, %.3f of the bound)", _i,
                  out_e, out_f);
    ck_assert_msg(ge <= GRAD_BOUND && gf <= GRAD_BOUND, "case %d: gradients off the double reference (%.2e, %.2e)",
                  _i, ge, gf);
    free(ae), free(af);
    exact_attention_free(&ex);
    results_free(&r, &in);
    lm_backend_release(be);
    inputs_free((attn_inputs *)&in);
}
END_TEST

/* Both devices: against torch's fp32 SDPA on the same bf16 values, rounded. */
START_TEST(ops_match_torch_sdpa) {
    static const uint16_t *const want[3] = {sdpa_out_causal, sdpa_out_masked, sdpa_out_plain};
    static const char *const names[3] = {"causal", "key mask", "plain"};
    const int B = SDPA_B, T = SDPA_T, C = SDPA_C, NH = SDPA_NH;
    const size_t n = (size_t)B * T * C, n_lse = (size_t)B * NH * T;
    lm_backend *be = lm_test_make_backend(BF16_ATTN_TEST_DEVICE);
    int32_t mask[SDPA_B * SDPA_T];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) mask[b * T + t] = t < sdpa_lengths[b];
    uint16_t *dq = lm_test_dev_copy(be, sdpa_q, n * 2), *dk = lm_test_dev_copy(be, sdpa_k, n * 2);
    uint16_t *dv = lm_test_dev_copy(be, sdpa_v, n * 2), *d_out = lm_test_dev_copy(be, NULL, n * 2);
    float *d_pre = lm_test_dev_copy(be, NULL, n_lse * T * 4), *d_att = lm_test_dev_copy(be, NULL, n_lse * T * 4);
    float *d_lse = lm_test_dev_copy(be, NULL, n_lse * 4);
    int32_t *d_mask = lm_test_dev_copy(be, mask, sizeof mask);
    uint16_t got[SDPA_B * SDPA_T * SDPA_C];
    for (int variant = 0; variant < 3; variant++)
        for (int fused = 0; fused < 2; fused++) {
            const int causal = variant == 0;
            const int32_t *m = variant == 1 ? d_mask : NULL;
            if (fused)
                be->ops->attention_fused_forward_bf16(be, d_out, d_lse, dq, dk, dv, C, m, causal, B, T, C, NH, 0.0f,
                                                      NULL, SITE);
            else
                be->ops->attention_forward_bf16(be, d_out, d_pre, d_att, dq, dk, dv, C, m, causal, B, T, C, NH, 0.0f,
                                                NULL, SITE);
            ck_assert_msg(be->ops->sync(be) == LM_OK, "%s", lm_error_message());
            lm_test_download(be, got, d_out, sizeof got);
            int equal = 0, worst = 0;
            for (size_t i = 0; i < n; i++) {
                const int steps = abs(bf16_ordered(got[i]) - bf16_ordered(want[variant][i]));
                equal += steps == 0;
                worst = steps > worst ? steps : worst;
                ck_assert_msg(steps <= TORCH_STEPS, "%s %s at %zu: 0x%04x, torch 0x%04x", names[variant],
                              fused ? "fused" : "eager", i, got[i], want[variant][i]);
            }
            printf("%s %s against torch's SDPA: %d of %zu equal, worst %d bf16 step(s)\n", fused ? "fused" : "eager",
                   names[variant], equal, n, worst);
        }
    void *bufs[] = {dq, dk, dv, d_out, d_pre, d_att, d_lse, d_mask};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->ops->free(be, bufs[i]);
    lm_backend_release(be);
}
END_TEST

static Suite *bf16_attn_suite(void) {
    Suite *s = suite_create("bf16_attn_ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 120);
#ifndef BF16_ATTN_TEST_CUDA
    tcase_add_loop_test(tc, twins_are_the_fp32_ops_on_widened_operands, 0, N_CASES);
#else
    tcase_add_loop_test(tc, cuda_ops_match_the_cpu_twins, 0, N_CASES);
#endif
    tcase_add_loop_test(tc, ops_match_a_double_reference, 0, N_CASES);
    tcase_add_test(tc, ops_match_torch_sdpa);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_main_for_device(BF16_ATTN_TEST_DEVICE, bf16_attn_suite); }
