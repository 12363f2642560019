/* The LayerNorms that write their output in bf16 (layernorm_forward_bf16 in
 * kernels/cuda/layernorm.cu, residual_layernorm_forward_bf16 in
 * residual_layernorm.cu, both through layernorm_row.cuh's output types),
 * emulated through their host functions.
 *
 * What the files claim (backend_ops.def, NOTES_bf16_storage.md point 10):
 * out_bf16 is the fp32 op's out rounded once, bit for bit; out (when given),
 * mean, rstd and the residual are the fp32 op's bits.  So the reference is
 * the emulated fp32 op (lm_cuda_layernorm_forward,
 * lm_cuda_residual_layernorm_forward) on the same inputs, rounded
 * (kernels/bf16.h); each case runs the bf16 op with and without the fp32
 * output, with mean/rstd kept or NULL, and out_bf16 at a 16-byte boundary
 * or 2 bytes past one (the kernels store one value per lane: no vector
 * path, so every alignment must give the same bits).  The CPU twins
 * (kernels/cpu/layernorm_bf16.c) are a second, looser check: within the
 * layernorm suite's forward bound plus one bf16 step.  Outputs start as
 * all bits set (0xFFFF, NaN): an element not written shows. */
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

const float kEps = 1e-5f;
/* emulate_layernorm.cpp's forward bound, plus one bf16 step (2^-7 relative). */
const double kCpuBound = 1e-5 + 1.0 / 128.0;

/* How a case calls the bf16 op. */
struct variant {
    const char *name;
    bool with_out, with_stats;
    size_t bf16_offset; /* out_bf16's elements past a 16-byte boundary */
};
const variant kVariants[] = {
    {"bf16 + fp32 out", true, true, 0},
    {"bf16 only", false, true, 0},
    {"bf16 only, mean/rstd NULL", false, false, 0},
    {"bf16 + fp32 out, mean/rstd NULL, bf16 2 bytes off", true, false, 1},
    {"bf16 only, 2 bytes off", false, true, 1},
};

std::vector<uint16_t> rounded(const float *x, size_t n) {
    std::vector<uint16_t> r(n);
    for (size_t i = 0; i < n; i++) r[i] = lm_bf16_from_float(x[i]);
    return r;
}

std::vector<float> widened(const std::vector<uint16_t> &h) {
    std::vector<float> x(h.size());
    for (size_t i = 0; i < h.size(); i++) x[i] = lm_bf16_to_float(h[i]);
    return x;
}

long first_code_difference(const std::vector<uint16_t> &got, const std::vector<uint16_t> &want) {
    for (size_t i = 0; i < got.size(); i++)
        if (got[i] != want[i]) return (long)i;
    return -1;
}

/* The fp32 op's outputs (emulated): the reference of every variant. */
struct fp32_outputs {
    std::vector<float> residual, out, mean, rstd;
};

/* What one bf16 call gave, against the fp32 op's bits and the CPU twin's codes. */
struct verdict {
    long bf16_first = -1, out_first = -1, stats_first = -1, residual_first = -1;
    double cpu_error = 0.0;
    size_t cpu_differ = 0;
    bool guards = true, failed = false;
    char failure[400] = "";
    bool ok() const {
        return !failed && guards && bf16_first < 0 && out_first < 0 && stats_first < 0 && residual_first < 0 &&
               cpu_error <= kCpuBound;
    }
};

verdict judge(const std::vector<uint16_t> &got, const fp32_outputs &want, const std::vector<uint16_t> &cpu,
              const emu_floats *out, const emu_floats *mean, const emu_floats *rstd) {
    verdict v;
    v.bf16_first = first_code_difference(got, rounded(want.out.data(), want.out.size()));
    if (out) v.out_first = emu_first_bit_difference(out->p, want.out.data(), want.out.size());
    if (mean)
        v.stats_first = std::max(emu_first_bit_difference(mean->p, want.mean.data(), want.mean.size()),
                                 emu_first_bit_difference(rstd->p, want.rstd.data(), want.rstd.size()));
    const std::vector<float> g = widened(got), c = widened(cpu);
    v.cpu_error = loss_worst_error(g.data(), c.data(), g.size());
    for (size_t i = 0; i < got.size(); i++) v.cpu_differ += got[i] != cpu[i];
    return v;
}

bool report(const char *op, int N, int C, float p, const variant &var, const verdict &v) {
    char extra[48] = "";
    if (p >= 0.0f) snprintf(extra, sizeof extra, " p=%g", (double)p);
    return emu_report(v.ok(),
                      "%s N=%d C=%d%s %s: out_bf16 %s (first %ld)%s%s%s; CPU twin %.2e (bound %.1e), %zu code(s) "
                      "differ%s %s",
                      op, N, C, extra, var.name,
                      v.bf16_first < 0 ? "= the fp32 op's out rounded" : "DIFFERS from the fp32 op's out rounded",
                      v.bf16_first, v.out_first >= 0 ? "; out differs from the fp32 op's" : "",
                      v.stats_first >= 0 ? "; mean/rstd differ from the fp32 op's" : "",
                      v.residual_first >= 0 ? "; residual differs from the fp32 op's" : "", v.cpu_error, kCpuBound,
                      v.cpu_differ, v.guards ? "" : "; a write outside an output", v.failure);
}

struct ln_case_inputs {
    std::vector<float> inp, weight, bias, a;
};

ln_case_inputs make_inputs(int N, int C) {
    const size_t n = (size_t)N * C;
    ln_case_inputs in;
    in.inp = emu_uniform_vector(n, -2, 2);
    for (size_t i = 0; i < n; i++) in.inp[i] += (float)(i / C % 5) - 2.0f; /* rows with different means */
    in.weight = emu_uniform_vector(C, 0.5f, 1.5f);
    in.bias = emu_uniform_vector(C, -0.5f, 0.5f);
    in.a = emu_uniform_vector(n, -1, 1);
    return in;
}

int check_layernorm(lm_cuda_ctx *ctx, int N, int C) {
    const size_t n = (size_t)N * C;
    const ln_case_inputs in = make_inputs(N, C);
    emu_floats d_inp(n), d_w(C), d_b(C);
    d_inp.set(in.inp);
    d_w.set(in.weight);
    d_b.set(in.bias);
    fp32_outputs want;
    {
        emu_floats out(n), mean(N), rstd(N);
        lm_cuda_layernorm_forward(ctx, out.p, mean.p, rstd.p, d_inp.p, d_w.p, d_b.p, N, C, kEps);
        want.out = out.get();
        want.mean = mean.get();
        want.rstd = rstd.get();
    }
    std::vector<uint16_t> cpu(n);
    std::vector<float> cpu_out(n), cpu_mean(N), cpu_rstd(N);
    const int cpu_status = lm_cpu_layernorm_forward_bf16(cpu.data(), cpu_out.data(), cpu_mean.data(),
                                                         cpu_rstd.data(), in.inp.data(), in.weight.data(),
                                                         in.bias.data(), N, C, kEps);
    int failures = 0;
    for (const variant &var : kVariants) {
        emu_array<uint16_t> out_bf16(n, var.bf16_offset);
        emu_floats out(n), mean(N), rstd(N);
        lm_cuda_layernorm_forward_bf16(ctx, out_bf16.p, var.with_out ? out.p : NULL, var.with_stats ? mean.p : NULL,
                                       var.with_stats ? rstd.p : NULL, d_inp.p, d_w.p, d_b.p, N, C, kEps);
        verdict v = judge(out_bf16.get(), want, cpu, var.with_out ? &out : NULL, var.with_stats ? &mean : NULL,
                          var.with_stats ? &rstd : NULL);
        v.failed = emu_ctx_take_error(ctx, v.failure, sizeof v.failure) || cpu_status != 0;
        v.guards = out_bf16.guards_intact() && out.guards_intact() && mean.guards_intact() && rstd.guards_intact();
        failures += !report("layernorm_forward_bf16", N, C, -1.0f, var, v);
    }
    return failures;
}

int check_residual_layernorm(lm_cuda_ctx *ctx, int N, int C, float p) {
    const size_t n = (size_t)N * C;
    const ln_case_inputs in = make_inputs(N, C);
    lm_step_state *key = (lm_step_state *)emu_alloc(sizeof(lm_step_state), 0);
    memset(key, 0, sizeof *key);
    key->seed = 4242;
    key->micro_batch = 5;
    const int site = 2;
    emu_floats d_a(n), d_branch(n), d_w(C), d_b(C);
    d_a.set(in.a);
    d_branch.set(in.inp);
    d_w.set(in.weight);
    d_b.set(in.bias);
    fp32_outputs want;
    {
        emu_floats res(n), out(n), mean(N), rstd(N);
        lm_cuda_residual_layernorm_forward(ctx, res.p, out.p, mean.p, rstd.p, d_a.p, d_branch.p, d_w.p, d_b.p, N, C,
                                           kEps, p, key, site);
        want.residual = res.get();
        want.out = out.get();
        want.mean = mean.get();
        want.rstd = rstd.get();
    }
    std::vector<uint16_t> cpu(n);
    std::vector<float> cpu_res(n);
    const int cpu_status = lm_cpu_residual_layernorm_forward_bf16(
        cpu_res.data(), cpu.data(), NULL, NULL, NULL, in.a.data(), in.inp.data(), in.weight.data(), in.bias.data(), N,
        C, kEps, p, key->seed, lm_dropout_stream(key->micro_batch, site));
    int failures = 0;
    for (const variant &var : kVariants) {
        emu_array<uint16_t> out_bf16(n, var.bf16_offset);
        emu_floats res(n), out(n), mean(N), rstd(N);
        lm_cuda_residual_layernorm_forward_bf16(ctx, res.p, out_bf16.p, var.with_out ? out.p : NULL,
                                                var.with_stats ? mean.p : NULL, var.with_stats ? rstd.p : NULL, d_a.p,
                                                d_branch.p, d_w.p, d_b.p, N, C, kEps, p, key, site);
        verdict v = judge(out_bf16.get(), want, cpu, var.with_out ? &out : NULL, var.with_stats ? &mean : NULL,
                          var.with_stats ? &rstd : NULL);
        v.residual_first = emu_first_bit_difference(res.p, want.residual.data(), n);
        /* the residual is the CPU's bits too (emulate_layernorm.cpp's claim for the fp32 op) */
        if (v.residual_first < 0) v.residual_first = emu_first_bit_difference(res.p, cpu_res.data(), n);
        v.failed = emu_ctx_take_error(ctx, v.failure, sizeof v.failure) || cpu_status != 0;
        v.guards = out_bf16.guards_intact() && res.guards_intact() && out.guards_intact() && mean.guards_intact() &&
                   rstd.guards_intact();
        failures += !report("residual_layernorm_forward_bf16", N, C, p, var, v);
    }
    emu_free(key);
    return failures;
}

/* A draw without the step state: the failure kept under the op's name and
 * nothing written (as the fp32 op). */
int check_missing_key(lm_cuda_ctx *ctx) {
    const int N = 3, C = 40;
    const size_t n = (size_t)N * C;
    emu_floats d_a(n), d_branch(n), d_w(C), d_b(C), res(n);
    d_a.fill(1.0f);
    d_branch.fill(1.0f);
    d_w.fill(1.0f);
    d_b.fill(0.0f);
    emu_array<uint16_t> out_bf16(n);
    lm_cuda_residual_layernorm_forward_bf16(ctx, res.p, out_bf16.p, NULL, NULL, NULL, d_a.p, d_branch.p, d_w.p, d_b.p,
                                            N, C, kEps, 0.1f, NULL, 0);
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
    bool untouched = true;
    for (size_t i = 0; i < n; i++) untouched = untouched && out_bf16.p[i] == 0xffffu && isnan(res.p[i]);
    const bool named = strstr(failure, "residual_layernorm_forward_bf16") != NULL;
    return !emu_report(failed && named && untouched,
                       "residual_layernorm_forward_bf16 p=0.1 without a key: %s%s (%s)",
                       failed && named ? "failure kept under the op's name" : "NO failure kept under the op's name",
                       untouched ? ", nothing written" : ", but outputs WRITTEN", failure);
}

} /* namespace */

int emulate_layernorm_bf16(lm_cuda_ctx *ctx) {
    /* (N, C): tiny; C not a multiple of 32, 8 or 4; N not a multiple of a
     * block's 8 rows; GPT-2's width; wider than the CPU twin's stack chunk
     * (4096: its fp32 scratch path) */
    static const int shapes[][2] = {{1, 1}, {3, 7}, {70, 45}, {33, 768}, {17, 1537}, {3, 4100}};
    int failures = 0;
    for (const auto &s : shapes) failures += check_layernorm(ctx, s[0], s[1]);
    static const struct {
        int N, C;
        float p;
    } cases[] = {{1, 1, 0.0f}, {5, 96, 0.0f}, {33, 768, 0.1f}, {13, 45, 0.5f}, {6, 100, 1.0f}, {3, 4100, 0.1f}};
    for (const auto &c : cases) failures += check_residual_layernorm(ctx, c.N, c.C, c.p);
    failures += check_missing_key(ctx);
    return failures;
}
