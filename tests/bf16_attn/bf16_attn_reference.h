/* test_bf16_attn_ops.c's independent reference: multi-head attention in
 * double from the widened bf16 inputs, with backend_ops.def's rules (hidden
 * keys 0, a query that sees no key 1/T on all T keys, dropout's keep-mask
 * lm_rng_uniform(seed, stream, flat index) >= p scaled by 1/(1-p)) and the
 * softmax backward dS = A ⊙ dA - P · D.  Included once, by that file (its
 * types and helpers come first); a header only to keep each file short. */
#ifndef LMCORE_TESTS_BF16_ATTN_REFERENCE_H
#define LMCORE_TESTS_BF16_ATTN_REFERENCE_H

typedef struct exact_attention {
    double *out, *out_magnitude;     /* [B, T, C]; Σ_j |a_ij · v_jd| */
    float *grads_eager, *grads_fused; /* what each backward adds, laid out as added() lays its result */
} exact_attention;

/* Element `col` of row (b, t) of q (which 0), k (1) or v (2), widened. */
static double qkv_at(const attn_inputs *in, int which, int b, int t, int col) {
    const uint16_t *buf = in->n_buffers == 1 ? in->qkv[0] + which * in->c.C : in->qkv[which];
    return lm_bf16_to_float(buf[((size_t)b * in->c.T + t) * (size_t)in->stride + (size_t)col]);
}

/* The index of that element in its gradient buffer, and the buffer. */
static size_t grad_at(const attn_inputs *in, int which, int b, int t, int col, int *buffer) {
    *buffer = in->n_buffers == 1 ? 0 : which;
    const size_t row = ((size_t)b * in->c.T + t) * (size_t)in->stride;
    return row + (size_t)col + (in->n_buffers == 1 ? (size_t)which * in->c.C : 0);
}

/* fused_out: the fused forward's bf16 out, whose Σ dout·out the fused backward's D is. */
static void exact_attention_compute(exact_attention *ex, const attn_inputs *in, const uint16_t *fused_out) {
    const attn_case c = in->c;
    const int T = c.T, hd = c.C / c.NH;
    const double scale = 1.0 / sqrt((double)hd);
    ex->out = calloc(in->n_out, sizeof(double));
    ex->out_magnitude = calloc(in->n_out, sizeof(double));
    double *g[2][3];
    for (int kind = 0; kind < 2; kind++)
        for (int i = 0; i < 3; i++) {
            g[kind][i] = calloc(in->n_in, sizeof(double));
            ck_assert_ptr_nonnull(g[kind][i]);
        }
    double *p = malloc(T * sizeof *p), *a = malloc(T * sizeof *a), *dA = malloc(T * sizeof *dA);
    ck_assert(ex->out && ex->out_magnitude && p && a && dA);
    for (int b = 0; b < c.B; b++)
        for (int h = 0; h < c.NH; h++)
            for (int i = 0; i < T; i++) {
                const int visible = c.causal ? i + 1 : T;
                int shown_any = 0;
                double max_s = -INFINITY;
                for (int j = 0; j < T; j++) {
                    const int shown = j < visible && (!in->mask || in->mask[b * T + j] != 0);
                    double s = 0.0;
                    for (int d = 0; d < hd; d++) s += qkv_at(in, 0, b, i, h * hd + d) * qkv_at(in, 1, b, j, h * hd + d);
                    p[j] = shown ? s * scale : -INFINITY;
                    if (shown) shown_any = 1, max_s = fmax(max_s, p[j]);
                }
                double sum = 0.0;
                for (int j = 0; j < T; j++) {
                    p[j] = !shown_any ? 1.0 : p[j] == -INFINITY ? 0.0 : exp(p[j] - max_s);
                    sum += p[j];
                }
                const uint64_t row = (((uint64_t)b * c.NH + h) * T + i) * (uint64_t)T;
                for (int j = 0; j < T; j++) {
                    p[j] /= sum;
                    double keep = 1.0;
                    if (c.p >= 1.0f) keep = 0.0;
                    else if (c.p > 0.0f)
                        keep = lm_rng_uniform(in->state.seed, in->stream, row + j) >= c.p ? 1.0 / (1.0 - c.p) : 0.0;
                    a[j] = p[j] * keep;
                }
                const size_t o = ((size_t)b * T + i) * c.C + (size_t)h * hd;
                double D_exact = 0.0, D_fused = 0.0;
                for (int d = 0; d < hd; d++) {
                    double s = 0.0, m = 0.0;
                    for (int j = 0; j < T; j++) {
                        const double term = a[j] * qkv_at(in, 2, b, j, h * hd + d);
                        s += term, m += fabs(term);
                    }
                    ex->out[o + d] = s, ex->out_magnitude[o + d] = m;
                    D_exact += in->dout[o + d] * s;
                    D_fused += in->dout[o + d] * (double)lm_bf16_to_float(fused_out[o + d]);
                }
                for (int j = 0; j < T; j++) {
                    dA[j] = 0.0;
                    for (int d = 0; d < hd; d++) dA[j] += in->dout[o + d] * qkv_at(in, 2, b, j, h * hd + d);
                }
                for (int kind = 0; kind < 2; kind++) {
                    const double D = kind == 0 ? D_exact : D_fused;
                    for (int j = 0; j < T; j++) {
                        const double dS = a[j] * dA[j] - p[j] * D;
                        for (int d = 0; d < hd; d++) {
                            int bq, bk, bv;
                            const size_t iq = grad_at(in, 0, b, i, h * hd + d, &bq);
                            const size_t ik = grad_at(in, 1, b, j, h * hd + d, &bk);
                            const size_t iv = grad_at(in, 2, b, j, h * hd + d, &bv);
                            g[kind][bq][iq] += scale * dS * qkv_at(in, 1, b, j, h * hd + d);
                            g[kind][bk][ik] += scale * dS * qkv_at(in, 0, b, i, h * hd + d);
                            g[kind][bv][iv] += a[j] * in->dout[o + d];
                        }
                    }
                }
            }
    const size_t n = n_added(in);
    for (int kind = 0; kind < 2; kind++) {
        float *flat = malloc(n * sizeof *flat + 1);
        ck_assert_ptr_nonnull(flat);
        size_t at = 0;
        for (int i = 0; i < in->n_buffers; i++)
            for (size_t j = 0; j < in->n_in; j++)
                if (!is_padding(in, j)) flat[at++] = (float)g[kind][i][j];
        if (kind == 0) ex->grads_eager = flat;
        else ex->grads_fused = flat;
        for (int i = 0; i < 3; i++) free(g[kind][i]);
    }
    free(p), free(a), free(dA);
}

static void exact_attention_free(exact_attention *ex) {
    free(ex->out), free(ex->out_magnitude), free(ex->grads_eager), free(ex->grads_fused);
}

/* The worst ratio of |out - exact| to its bound: half a bf16 ulp (at the
 * larger end) plus OUT_FP32 · Σ_j |a·v| (the fp32 op's own error). */
static double out_against_exact(const attn_inputs *in, const uint16_t *out, const exact_attention *ex) {
    double worst = 0.0;
    for (size_t i = 0; i < in->n_out; i++) {
        const double value = lm_bf16_to_float(out[i]), exact = ex->out[i];
        const double slack = OUT_FP32 * ex->out_magnitude[i];
        const double bound = 0.5 * lm_test_bf16_ulp(fmax(fabs(value), fabs(exact) + slack)) + slack;
        const double ratio = fabs(value - exact) / bound;
        if (isnan(ratio) || ratio > worst) worst = isnan(ratio) ? INFINITY : ratio;
    }
    return worst;
}

#endif
