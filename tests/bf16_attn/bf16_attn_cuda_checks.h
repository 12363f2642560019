/* test_bf16_attn_ops_cuda's comparison of the CUDA ops with the CPU twins
 * (kernels/cpu/attention_bf16.c) and with the GPU's own fp32 ops; included
 * once, by test_bf16_attn_ops.c, when built with BF16_ATTN_TEST_CUDA (its
 * types and helpers come first); a header only to keep each file short. */
#ifndef LMCORE_TESTS_BF16_ATTN_CUDA_CHECKS_H
#define LMCORE_TESTS_BF16_ATTN_CUDA_CHECKS_H

/* Norm-relative error of two bf16 arrays, widened. */
static double bf16_norm_relative(const uint16_t *got, const uint16_t *want, size_t n) {
    float *g = widened_copy(got, n), *w = widened_copy(want, n);
    const double e = norm_relative(g, w, n);
    free(g), free(w);
    return e;
}

static size_t codes_differing(const uint16_t *a, const uint16_t *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += a[i] != b[i];
    return d;
}

/* lse: the rows that are -inf (no key seen) the same, the finite rest within CUDA_TOL. */
static double lse_error(const float *got, const float *want, size_t n) {
    float *g = float_copy(got, n), *w = float_copy(want, n);
    for (size_t i = 0; i < n; i++) {
        const int gi = isinf(g[i]) && g[i] < 0, wi = isinf(w[i]) && w[i] < 0;
        ck_assert_msg(gi == wi, "lse row %zu: %g on the GPU, %g on the CPU", i, (double)got[i], (double)want[i]);
        if (wi) g[i] = w[i] = 0.0f;
    }
    const double e = norm_relative(g, w, n);
    free(g), free(w);
    return e;
}

/* The GPU's fp32 ops on the widened q/k/v: the eager forward (out rounded
 * on the host) and backward (on the GPU's bf16 op's preatt/att), and the
 * fused forward (out rounded) and backward (on the widened bf16 out). */
static void run_gpu_fp32_on_widened(lm_backend *be, const attn_inputs *in, const attn_results *r, fp32_results *f) {
    const attn_case c = in->c;
    float *d_w[3] = {NULL, NULL, NULL}, *d_ge[3] = {NULL, NULL, NULL}, *d_gf[3] = {NULL, NULL, NULL};
    for (int i = 0; i < in->n_buffers; i++) {
        float *w = widened_copy(in->qkv[i], in->n_in);
        d_w[i] = lm_test_dev_copy(be, w, in->n_in * 4);
        d_ge[i] = lm_test_dev_copy(be, in->grad0[i], in->n_in * 4);
        d_gf[i] = lm_test_dev_copy(be, in->grad0[i], in->n_in * 4);
        free(w);
        f->grads_eager[i] = malloc(in->n_in * 4), f->grads_fused[i] = malloc(in->n_in * 4);
    }
    float *fused_wide = widened_copy(r->out_fused, in->n_out), *out32 = malloc(in->n_out * 4);
    f->out_eager = malloc(in->n_out * 2), f->out_fused = malloc(in->n_out * 2);
    f->preatt = malloc(in->n_att * 4), f->att = malloc(in->n_att * 4), f->lse = malloc(in->n_lse * 4);
    float *d_out = lm_test_dev_copy(be, NULL, in->n_out * 4), *d_fw = lm_test_dev_copy(be, fused_wide, in->n_out * 4);
    float *d_pre = lm_test_dev_copy(be, r->preatt, in->n_att * 4), *d_att = lm_test_dev_copy(be, r->att, in->n_att * 4);
    float *d_pre32 = lm_test_dev_copy(be, NULL, in->n_att * 4), *d_att32 = lm_test_dev_copy(be, NULL, in->n_att * 4);
    float *d_scr = lm_test_dev_copy(be, NULL, in->n_att * 4), *d_lse = lm_test_dev_copy(be, NULL, in->n_lse * 4);
    float *d_lse_bf16 = lm_test_dev_copy(be, r->lse, in->n_lse * 4);
    float *d_dout = lm_test_dev_copy(be, in->dout, in->n_out * 4);
    int32_t *d_mask = in->mask ? lm_test_dev_copy(be, in->mask, in->rows * 4) : NULL;
    lm_step_state *d_key = lm_test_dev_copy(be, &in->state, sizeof in->state);
    const float *q = VIEW(d_w, 0), *k = VIEW(d_w, 1), *v = VIEW(d_w, 2);
    be->ops->attention_forward(be, d_out, d_pre32, d_att32, q, k, v, in->stride, d_mask, c.causal, c.B, c.T, c.C,
                               c.NH, c.p, d_key, SITE);
    ck_assert_msg(be->ops->sync(be) == LM_OK, "%s", lm_error_message());
    lm_test_download(be, out32, d_out, in->n_out * 4);
    lm_cpu_convert_to_bf16(f->out_eager, out32, in->n_out);
    lm_test_download(be, f->preatt, d_pre32, in->n_att * 4);
    lm_test_download(be, f->att, d_att32, in->n_att * 4);
    be->ops->attention_backward(be, VIEW(d_ge, 0), VIEW(d_ge, 1), VIEW(d_ge, 2), d_scr, d_dout, d_pre, d_att, q, k, v,
                                in->stride, c.B, c.T, c.C, c.NH, c.p, d_key, SITE);
    be->ops->attention_fused_forward(be, d_out, d_lse, q, k, v, in->stride, d_mask, c.causal, c.B, c.T, c.C, c.NH,
                                     c.p, d_key, SITE);
    be->ops->attention_fused_backward(be, VIEW(d_gf, 0), VIEW(d_gf, 1), VIEW(d_gf, 2), d_scr, d_dout, d_fw, d_lse_bf16,
                                      q, k, v, in->stride, d_mask, c.causal, c.B, c.T, c.C, c.NH, c.p, d_key, SITE);
    ck_assert_msg(be->ops->sync(be) == LM_OK, "%s", lm_error_message());
    lm_test_download(be, out32, d_out, in->n_out * 4);
    lm_cpu_convert_to_bf16(f->out_fused, out32, in->n_out);
    lm_test_download(be, f->lse, d_lse, in->n_lse * 4);
    for (int i = 0; i < in->n_buffers; i++) {
        lm_test_download(be, f->grads_eager[i], d_ge[i], in->n_in * 4);
        lm_test_download(be, f->grads_fused[i], d_gf[i], in->n_in * 4);
        be->ops->free(be, d_w[i]), be->ops->free(be, d_ge[i]), be->ops->free(be, d_gf[i]);
    }
    void *rest[] = {d_out, d_fw, d_pre, d_att, d_pre32, d_att32, d_scr, d_lse, d_lse_bf16, d_dout, d_mask, d_key};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
        if (rest[i]) be->ops->free(be, rest[i]);
    free(fused_wide), free(out32);
}

START_TEST(cuda_ops_match_the_cpu_twins) {
    const attn_inputs in_value = inputs_make(cases[_i], 1000u + (uint64_t)_i), *in = &in_value;
    const attn_case c = in->c;
    lm_backend *be = lm_test_make_backend(BF16_ATTN_TEST_DEVICE);
    attn_results r;
    results_alloc(&r, in);
    run_bf16_ops(be, in, &r);
    assert_padding_untouched(in, r.grads_eager, "attention_backward_bf16");
    assert_padding_untouched(in, r.grads_fused, "attention_fused_backward_bf16");

    /* the CPU twins; the backward ones on the GPU's forward results */
    uint16_t *out_e = malloc(in->n_out * 2), *out_f = malloc(in->n_out * 2);
    float *pre = malloc(in->n_att * 4), *att = malloc(in->n_att * 4), *lse = malloc(in->n_lse * 4);
    float *scratch = malloc(in->n_att * 4), *ge[3] = {NULL, NULL, NULL}, *gf[3] = {NULL, NULL, NULL};
    ck_assert(out_e && out_f && pre && att && lse && scratch);
    for (int i = 0; i < in->n_buffers; i++) {
        ge[i] = float_copy(in->grad0[i], in->n_in);
        gf[i] = float_copy(in->grad0[i], in->n_in);
    }
    const uint16_t *q = VIEW(in->qkv, 0), *k = VIEW(in->qkv, 1), *v = VIEW(in->qkv, 2);
    ck_assert_int_eq(lm_cpu_attention_forward_bf16(out_e, pre, att, q, k, v, in->stride, in->mask, c.causal, c.B, c.T,
                                                   c.C, c.NH, c.p, in->state.seed, in->stream), 0);
    ck_assert_int_eq(lm_cpu_attention_backward_bf16(VIEW(ge, 0), VIEW(ge, 1), VIEW(ge, 2), scratch, in->dout, r.preatt,
                                                    r.att, q, k, v, in->stride, c.B, c.T, c.C, c.NH, c.p,
                                                    in->state.seed, in->stream), 0);
    ck_assert_int_eq(lm_cpu_attention_fused_forward_bf16(out_f, lse, q, k, v, in->stride, in->mask, c.causal, c.B, c.T,
                                                         c.C, c.NH, c.p, in->state.seed, in->stream), 0);
    ck_assert_int_eq(lm_cpu_attention_fused_backward_bf16(VIEW(gf, 0), VIEW(gf, 1), VIEW(gf, 2), scratch, in->dout,
                                                          r.out_fused, r.lse, q, k, v, in->stride, in->mask, c.causal,
                                                          c.B, c.T, c.C, c.NH, c.p, in->state.seed, in->stream), 0);
    float *a_gpu = added(in, r.grads_eager), *a_cpu = added(in, ge);
    const size_t n = n_added(in);
    const double e_out = bf16_norm_relative(r.out_eager, out_e, in->n_out);
    const double e_pre = norm_relative(r.preatt, pre, in->n_att), e_att = norm_relative(r.att, att, in->n_att);
    const double e_ge = norm_relative(a_gpu, a_cpu, n);
    free(a_gpu), free(a_cpu);
    a_gpu = added(in, r.grads_fused), a_cpu = added(in, gf);
    const double f_out = bf16_norm_relative(r.out_fused, out_f, in->n_out), f_lse = lse_error(r.lse, lse, in->n_lse);
    const double f_g = norm_relative(a_gpu, a_cpu, n);
    free(a_gpu), free(a_cpu);

    /* the GPU's own fp32 ops on the widened inputs */
    fp32_results f;
    run_gpu_fp32_on_widened(be, in, &r, &f);
    int eager_bits = memcmp(r.out_eager, f.out_eager, in->n_out * 2) == 0 &&
                     memcmp(r.preatt, f.preatt, in->n_att * 4) == 0 && memcmp(r.att, f.att, in->n_att * 4) == 0;
    int fused_grad_bits = 1;
    for (int i = 0; i < in->n_buffers; i++) {
        eager_bits = eager_bits && memcmp(r.grads_eager[i], f.grads_eager[i], in->n_in * 4) == 0;
        fused_grad_bits = fused_grad_bits && memcmp(r.grads_fused[i], f.grads_fused[i], in->n_in * 4) == 0;
    }
    printf("case %d (B%d T%d C%d NH%d layout %d causal %d mask %d p %g) CUDA against the CPU twins: eager out %.2e "
           "(bound %.2e), preatt %.2e, att %.2e, gradients %.2e; fused out %.2e, lse %.2e, gradients %.2e; eager "
           "%s the GPU's fp32 ops' bits; fused against the GPU's fp32 kernels (not asserted): out %zu code(s) "
           "differ, lse %s, gradients %s\n",
           _i, c.B, c.T, c.C, c.NH, c.layout, c.causal, c.mask_mode, (double)c.p, e_out, CUDA_OUT, e_pre, e_att, e_ge,
           f_out, f_lse, f_g, eager_bits ? "has" : "DOES NOT HAVE",
           codes_differing(r.out_fused, f.out_fused, in->n_out),
           memcmp(r.lse, f.lse, in->n_lse * 4) == 0 ? "bit for bit" : "differ",
           fused_grad_bits ? "bit for bit" : "differ");
    ck_assert_msg(e_out <= CUDA_OUT && f_out <= CUDA_OUT, "case %d: out off the CPU twin", _i);
    ck_assert_msg(e_pre <= CUDA_TOL && e_att <= CUDA_TOL && f_lse <= CUDA_TOL, "case %d: probabilities or lse", _i);
    ck_assert_msg(e_ge <= CUDA_GRAD && f_g <= CUDA_GRAD, "case %d: gradients off the CPU twin", _i);
    ck_assert_msg(eager_bits, "case %d: the eager bf16 ops are not the GPU's fp32 ops on the widened inputs", _i);
    fp32_results_free(&f, in);
    for (int i = 0; i < in->n_buffers; i++) free(ge[i]), free(gf[i]);
    free(out_e), free(out_f), free(pre), free(att), free(lse), free(scratch);
    results_free(&r, in);
    lm_backend_release(be);
    inputs_free((attn_inputs *)in);
}
END_TEST

#endif
