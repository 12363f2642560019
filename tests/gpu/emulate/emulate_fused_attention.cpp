/* The fused attention's CUDA kernels (kernels/cuda/attention_fused_*.cu,
 * host side included: the launch shapes, the kernel chosen by head size,
 * the shared-memory attribute), emulated, against the CPU twin
 * (kernels/cpu/attention_fused.c): tiling, indices, masks, dropout draws,
 * barriers and shuffles.  Within a bound: the CPU adds in another order. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "emulate_suites.h"
#include "emulate_util.h"
#include "kernels.h"
#include "kernels_cuda.h"

namespace {

struct fused_case {
    int B, T, C, NH, interleaved, causal, mask_mode; /* mask_mode as in the GPU test */
    float p;
};

bool check(lm_cuda_ctx *ctx, const fused_case &c) {
    const int stride = c.interleaved ? 3 * c.C : c.C, n_buffers = c.interleaved ? 1 : 3;
    const size_t n_in = (size_t)c.B * c.T * stride, n_out = (size_t)c.B * c.T * c.C, n_lse = (size_t)c.B * c.NH * c.T;
    std::vector<float> in[3], g0[3];
    for (int i = 0; i < n_buffers; i++) {
        in[i] = emu_uniform_vector(n_in, -2, 2);
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
    std::vector<float> dout = emu_uniform_vector(n_out, -1, 1);
    lm_step_state *key = (lm_step_state *)emu_alloc(sizeof(lm_step_state), 0);
    memset(key, 0, sizeof *key);
    key->seed = 777;
    key->micro_batch = 3;
    const int site = 5;
    const uint64_t stream = lm_dropout_stream(key->micro_batch, site);

    /* the CPU twin */
    const float *q = in[0].data(), *k = c.interleaved ? q + c.C : in[1].data(), *v = c.interleaved ? q + 2 * c.C : in[2].data();
    const int32_t *m = c.mask_mode ? mask.data() : NULL;
    std::vector<float> out(n_out), lse(n_lse), scratch(n_lse), g_cpu[3];
    for (int i = 0; i < n_buffers; i++) g_cpu[i] = g0[i];
    lm_cpu_attention_fused_forward(out.data(), lse.data(), q, k, v, stride, m, c.causal, c.B, c.T, c.C, c.NH, c.p,
                                   key->seed, stream);
    float *gq = g_cpu[0].data(), *gk = c.interleaved ? gq + c.C : g_cpu[1].data();
    float *gv = c.interleaved ? gq + 2 * c.C : g_cpu[2].data();
    lm_cpu_attention_fused_backward(gq, gk, gv, scratch.data(), dout.data(), out.data(), lse.data(), q, k, v, stride,
                                    m, c.causal, c.B, c.T, c.C, c.NH, c.p, key->seed, stream);

    /* the CUDA ops, emulated, on device copies */
    emu_floats d_in0(n_in), d_in1(n_buffers > 1 ? n_in : 1), d_in2(n_buffers > 1 ? n_in : 1);
    emu_floats d_g0(n_in), d_g1(n_buffers > 1 ? n_in : 1), d_g2(n_buffers > 1 ? n_in : 1);
    emu_floats *d_in[3] = {&d_in0, &d_in1, &d_in2}, *d_g[3] = {&d_g0, &d_g1, &d_g2};
    for (int i = 0; i < n_buffers; i++) {
        d_in[i]->set(in[i]);
        d_g[i]->set(g0[i]);
    }
    emu_floats d_mask(c.mask_mode ? mask.size() : 1), e_out(n_out), e_lse(n_lse), d_dout(n_out), D(n_lse);
    int32_t *dm = c.mask_mode ? (int32_t *)d_mask.p : NULL;
    if (dm) memcpy(dm, mask.data(), mask.size() * sizeof(int32_t));
    d_dout.set(dout);
    const float *eq = d_in0.p, *ek = c.interleaved ? eq + c.C : d_in1.p, *ev = c.interleaved ? eq + 2 * c.C : d_in2.p;
    float *egq = d_g0.p, *egk = c.interleaved ? egq + c.C : d_g1.p, *egv = c.interleaved ? egq + 2 * c.C : d_g2.p;
    lm_cuda_attention_fused_forward(ctx, e_out.p, e_lse.p, eq, ek, ev, stride, dm, c.causal, c.B, c.T, c.C, c.NH,
                                    c.p, key, site);
    lm_cuda_attention_fused_backward(ctx, egq, egk, egv, D.p, d_dout.p, e_out.p, e_lse.p, eq, ek, ev, stride, dm,
                                     c.causal, c.B, c.T, c.C, c.NH, c.p, key, site);
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);

    const double err_out = emu_worst_error(e_out.p, out.data(), n_out);
    const double err_lse = emu_worst_error(e_lse.p, lse.data(), n_lse);
    double err_grad = 0.0;
    bool guards = e_out.guards_intact() && e_lse.guards_intact() && D.guards_intact();
    for (int i = 0; i < n_buffers; i++) {
        err_grad = emu_worst_added_error(err_grad, d_g[i]->p, g_cpu[i].data(), g0[i].data(), n_in);
        guards = guards && d_g[i]->guards_intact();
    }
    emu_free(key);
    const bool ok = !failed && guards && err_out <= 1e-5 && err_lse <= 1e-5 && err_grad <= 5e-5;
    return emu_report(ok,
                      "fused attention B=%d T=%d C=%d NH=%d (head %d) interleaved=%d causal=%d mask=%d p=%g: out "
                      "%.2e, lse %.2e, gradients %.2e (bounds 1e-5, 1e-5, 5e-5)%s%s%s",
                      c.B, c.T, c.C, c.NH, c.C / c.NH, c.interleaved, c.causal, c.mask_mode, (double)c.p, err_out,
                      err_lse, err_grad, guards ? "" : "; a write outside an output", failed ? "; " : "", failure);
}

} /* namespace */

int emulate_fused_attention(lm_cuda_ctx *ctx) {
    static const fused_case cases[] = {
        {2, 130, 48, 3, 1, 1, 0, 0.0f},  {3, 100, 256, 4, 0, 0, 1, 0.0f}, {3, 70, 80, 2, 1, 1, 2, 0.0f},
        {2, 90, 256, 2, 0, 0, 2, 0.0f},  {1, 7, 16, 4, 1, 1, 0, 0.0f},    {2, 130, 48, 3, 1, 1, 0, 0.2f},
        {3, 100, 256, 4, 0, 0, 1, 0.1f}, {3, 70, 80, 2, 1, 1, 2, 0.3f},   {2, 20, 32, 2, 0, 1, 0, 1.0f},
        {1, 200, 128, 2, 1, 1, 1, 0.1f},
    };
    int failures = 0;
    for (const fused_case &c : cases) failures += !check(ctx, c);
    return failures;
}
