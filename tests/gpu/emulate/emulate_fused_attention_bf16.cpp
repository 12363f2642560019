/* The fused attention's bf16 ops (attention_fused_forward_bf16,
 * attention_fused_backward_bf16: the uint16_t instantiations of
 * kernels/cuda/attention_fused_*.cu, host side included), emulated.
 *
 * What the kernels claim (attention_fused.cuh): the bf16 instantiation does
 * the float instantiation's operations in its order, on q/k/v widened as
 * they enter the fp32 tiles (widening is exact), with out rounded once as
 * it is stored and D = Σ dout·out read from the widened bf16 out.  So,
 * against the emulated fp32 kernels on the widened q/k/v, asserted bit for
 * bit:
 *   out   the fp32 kernel's out rounded with kernels/bf16.h;
 *   lse   the fp32 kernel's lse (every bit: the same sums in the same order);
 *   dq/dk/dv (added onto random values)  the fp32 backward's, given the
 *         widened bf16 out as its `out` (the only input that differs).
 * And against the CPU twins (kernels/cpu/attention_bf16.c), which add in
 * another order: out within the fp32 suite's 1e-5 plus one bf16 step
 * (2^-7 of the value: two roundings of fp32 values that differ), lse within
 * 1e-5, gradients within 5e-5 (the CPU backward given the emulated bf16 out,
 * so that only the backward's own order differs), all norm-relative.
 * Shapes: GPT-2's interleaved qkv (stride 3C) and BERT's three buffers
 * (stride C), causal and not, right padding, left padding with an
 * all-padding batch row (queries that see no key), dropout 0.1-0.2 and 1,
 * T not a multiple of the 64-row tile, head sizes 64, 33 (odd) and 128. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "bf16.h"
#include "emulate_loss_common.h"
#include "emulate_suites.h"
#include "emulate_util.h"
#include "kernels.h"
#include "kernels_cuda.h"

namespace {

struct bf16_case {
    int B, T, C, NH, interleaved, causal, mask_mode; /* mask_mode as in emulate_fused_attention.cpp */
    float p;
};

std::vector<float> widen(const uint16_t *h, size_t n) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; i++) x[i] = lm_bf16_to_float(h[i]);
    return x;
}

/* q, k and v views of one layout: interleaved rows [q | k | v] in buffer 0,
 * or three buffers. */
template <typename T> struct qkv_views {
    T *q, *k, *v;
    qkv_views(T *b0, T *b1, T *b2, int interleaved, int C)
        : q(b0), k(interleaved ? b0 + C : b1), v(interleaved ? b0 + 2 * C : b2) {}
};

bool check(lm_cuda_ctx *ctx, const bf16_case &c) {
    const int stride = c.interleaved ? 3 * c.C : c.C, n_buffers = c.interleaved ? 1 : 3;
    const size_t n_in = (size_t)c.B * c.T * stride, n_out = (size_t)c.B * c.T * c.C, n_lse = (size_t)c.B * c.NH * c.T;
    const size_t n_buf = n_buffers > 1 ? n_in : 1;
    std::vector<uint16_t> in16[3];
    std::vector<float> in32[3], g0[3];
    for (int i = 0; i < n_buffers; i++) {
        const std::vector<float> x = emu_uniform_vector(n_in, -2, 2);
        in16[i].resize(n_in);
        for (size_t j = 0; j < n_in; j++) in16[i][j] = lm_bf16_from_float(x[j]);
        in32[i] = widen(in16[i].data(), n_in);
        g0[i] = emu_uniform_vector(n_in, -0.01f, 0.01f);
    }
    std::vector<int32_t> mask;
    if (c.mask_mode) {
        mask.resize((size_t)c.B * c.T);
        for (int b = 0; b < c.B; b++) {
            const int length = 1 + (b * 7919 + 13) % c.T;
            for (int t = 0; t < c.T; t++)
                mask[(size_t)b * c.T + t] = c.mask_mode == 1 ? t < length : (b == c.B - 1 ? 0 : t >= 5);
        }
    }
    const std::vector<float> dout = emu_uniform_vector(n_out, -1, 1);
    lm_step_state *key = (lm_step_state *)emu_alloc(sizeof(lm_step_state), 0);
    memset(key, 0, sizeof *key);
    key->seed = 4242;
    key->micro_batch = 9;
    const int site = 2;

    /* device copies: the bf16 inputs, their widened fp32 values, a gradient set per precision */
    emu_array<uint16_t> h0(n_in), h1(n_buf), h2(n_buf);
    emu_floats f0(n_in), f1(n_buf), f2(n_buf), ga0(n_in), ga1(n_buf), ga2(n_buf), gb0(n_in), gb1(n_buf), gb2(n_buf);
    emu_array<uint16_t> *h[3] = {&h0, &h1, &h2};
    emu_floats *f[3] = {&f0, &f1, &f2}, *ga[3] = {&ga0, &ga1, &ga2}, *gb[3] = {&gb0, &gb1, &gb2};
    for (int i = 0; i < n_buffers; i++) {
        h[i]->set(in16[i]);
        f[i]->set(in32[i]);
        ga[i]->set(g0[i]);
        gb[i]->set(g0[i]);
    }
    emu_floats d_mask(c.mask_mode ? mask.size() : 1), out32(n_out), lse32(n_lse), lse16(n_lse), d_dout(n_out);
    emu_floats out16_wide(n_out), D32(n_lse), D16(n_lse);
    emu_array<uint16_t> out16(n_out);
    int32_t *dm = c.mask_mode ? (int32_t *)d_mask.p : NULL;
    if (dm) memcpy(dm, mask.data(), mask.size() * sizeof(int32_t));
    d_dout.set(dout);
    const qkv_views<const uint16_t> eh(h0.p, h1.p, h2.p, c.interleaved, c.C);
    const qkv_views<const float> ef(f0.p, f1.p, f2.p, c.interleaved, c.C);
    const qkv_views<float> ea(ga0.p, ga1.p, ga2.p, c.interleaved, c.C), eb(gb0.p, gb1.p, gb2.p, c.interleaved, c.C);

    /* the emulated ops: fp32 on the widened values, then bf16 */
    lm_cuda_attention_fused_forward(ctx, out32.p, lse32.p, ef.q, ef.k, ef.v, stride, dm, c.causal, c.B, c.T, c.C,
                                    c.NH, c.p, key, site);
    lm_cuda_attention_fused_forward_bf16(ctx, out16.p, lse16.p, eh.q, eh.k, eh.v, stride, dm, c.causal, c.B, c.T,
                                         c.C, c.NH, c.p, key, site);
    out16_wide.set(widen(out16.p, n_out));
    lm_cuda_attention_fused_backward(ctx, ea.q, ea.k, ea.v, D32.p, d_dout.p, out16_wide.p, lse32.p, ef.q, ef.k, ef.v,
                                     stride, dm, c.causal, c.B, c.T, c.C, c.NH, c.p, key, site);
    lm_cuda_attention_fused_backward_bf16(ctx, eb.q, eb.k, eb.v, D16.p, d_dout.p, out16.p, lse16.p, eh.q, eh.k, eh.v,
                                          stride, dm, c.causal, c.B, c.T, c.C, c.NH, c.p, key, site);
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);

    /* bit for bit against the fp32 kernels */
    size_t out_bits = 0;
    for (size_t j = 0; j < n_out; j++) out_bits += out16.p[j] != lm_bf16_from_float(out32.p[j]);
    const bool lse_bits = memcmp(lse16.p, lse32.p, n_lse * sizeof(float)) == 0;
    bool grad_bits = memcmp(D16.p, D32.p, n_lse * sizeof(float)) == 0;
    for (int i = 0; i < n_buffers; i++) grad_bits = grad_bits && memcmp(ga[i]->p, gb[i]->p, n_in * sizeof(float)) == 0;

    /* the CPU twins */
    const uint64_t stream = lm_dropout_stream(key->micro_batch, site);
    std::vector<uint16_t> cpu_out(n_out);
    std::vector<float> cpu_lse(n_lse), scratch(n_lse), g_cpu[3];
    for (int i = 0; i < n_buffers; i++) g_cpu[i] = g0[i];
    const qkv_views<const uint16_t> ch(in16[0].data(), in16[n_buffers > 1 ? 1 : 0].data(),
                                       in16[n_buffers > 1 ? 2 : 0].data(), c.interleaved, c.C);
    const qkv_views<float> cg(g_cpu[0].data(), n_buffers > 1 ? g_cpu[1].data() : NULL,
                              n_buffers > 1 ? g_cpu[2].data() : NULL, c.interleaved, c.C);
    const int32_t *m = c.mask_mode ? mask.data() : NULL;
    int cpu_status = lm_cpu_attention_fused_forward_bf16(cpu_out.data(), cpu_lse.data(), ch.q, ch.k, ch.v, stride, m,
                                                         c.causal, c.B, c.T, c.C, c.NH, c.p, key->seed, stream);
    cpu_status |= lm_cpu_attention_fused_backward_bf16(cg.q, cg.k, cg.v, scratch.data(), dout.data(), out16.p,
                                                       cpu_lse.data(), ch.q, ch.k, ch.v, stride, m, c.causal, c.B,
                                                       c.T, c.C, c.NH, c.p, key->seed, stream);
    const std::vector<float> cpu_out_wide = widen(cpu_out.data(), n_out);
    const double err_out = emu_worst_error(out16_wide.p, cpu_out_wide.data(), n_out);
    const double err_lse = emu_worst_error(lse16.p, cpu_lse.data(), n_lse);
    double err_grad = 0.0;
    bool guards = out16.guards_intact() && lse16.guards_intact() && D16.guards_intact();
    for (int i = 0; i < n_buffers; i++) {
        err_grad = emu_worst_added_error(err_grad, gb[i]->p, g_cpu[i].data(), g0[i].data(), n_in);
        guards = guards && gb[i]->guards_intact() && h[i]->guards_intact();
    }
    emu_free(key);
    const double out_bound = 1e-5 + ldexp(1.0, -7);
    const bool ok = !failed && cpu_status == 0 && guards && out_bits == 0 && lse_bits && grad_bits &&
                    err_out <= out_bound && err_lse <= 1e-5 && err_grad <= 5e-5;
    return emu_report(ok,
                      "fused attention bf16 B=%d T=%d C=%d NH=%d (head %d) interleaved=%d causal=%d mask=%d p=%g: "
                      "against fp32 on the widened inputs: out %zu code(s) differ, lse %s, dq/dk/dv and D %s; "
                      "against the CPU twin: out %.2e, lse %.2e, gradients %.2e (bounds %.2e, 1e-5, 5e-5)%s%s%s",
                      c.B, c.T, c.C, c.NH, c.C / c.NH, c.interleaved, c.causal, c.mask_mode, (double)c.p, out_bits,
                      lse_bits ? "bit for bit" : "DIFFER", grad_bits ? "bit for bit" : "DIFFER", err_out, err_lse,
                      err_grad, out_bound, guards ? "" : "; a write outside an output", failed ? "; " : "", failure);
}

} /* namespace */

int emulate_fused_attention_bf16(lm_cuda_ctx *ctx) {
    static const bf16_case cases[] = {
        {2, 70, 128, 2, 1, 1, 0, 0.0f}, /* GPT-2: interleaved, causal, T past one tile, head 64 */
        {2, 70, 128, 2, 0, 0, 1, 0.1f}, /* BERT: three buffers, right padding, dropout */
        {3, 40, 66, 2, 1, 1, 2, 0.2f},  /* head 33, left padding and an all-padding row, dropout */
        {2, 65, 99, 3, 0, 0, 2, 0.0f},  /* head 33, three buffers, not causal */
        {1, 20, 64, 1, 0, 1, 0, 1.0f},  /* everything dropped */
        {1, 80, 128, 1, 1, 0, 1, 0.1f}, /* head 128 */
    };
    int failures = 0;
    for (const bf16_case &c : cases) failures += !check(ctx, c);
    return failures;
}
