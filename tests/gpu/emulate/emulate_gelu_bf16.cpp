/* The bf16-storage GELU kernels (kernels/cuda/gelu_bf16.cu: gelu_forward_bf16,
 * gelu_backward_bf16, both forms) emulated through their host functions.
 *
 * What the file claims: gelu.cu's fp32 arithmetic (gelu_math.cuh) on the
 * widened inputs, each output rounded once (kernels/bf16.h's rule).  So
 * every output is checked BIT FOR BIT against the emulated fp32 kernel
 * (gelu.cu, its float4 path) on the widened inputs, rounded; both the
 * 4-wide path (8-byte bf16 accesses: every pointer aligned for it, at a
 * 16-byte boundary and 8 bytes past one) and the scalar path (a bf16
 * pointer 2, 4 or 6 bytes off, or dout's fp32 8 bytes off), n = 1 to past
 * the grid cap (threads loop), tails of 1 to 3.
 *
 * The pointwise suite holds the fp32 kernel to the CPU's fp32 GELU within
 * a norm-relative bound only (another exp and erf), not to its bits; so the
 * CPU twins (kernels/cpu/gelu_bf16.c: the CPU's fp32 GELU, rounded) are a
 * second, looser check: within that bound plus one bf16 step (a value a few
 * float ulps away may round the other way), norm-relative, NaN with NaN.
 *
 * Inputs: NaN (two payloads), ±inf, ±0, subnormals, bf16's largest finite,
 * ±10 (gelu = x, gelu' = 1: the backward's dout then reaches the output
 * as it is, so fp32 ties in dout are rounding ties of dinp, both ways),
 * then random values in [-6, 6). */
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

/* The pointwise suite's fp32 bound, plus one bf16 step (2^-7 relative). */
const double kCpuBound = 2e-6 + 1.0 / 128.0;

const uint16_t kSpecialInputs[] = {
    0x7fc0, 0xffc1, 0x7f80, 0xff80, 0x0000, 0x8000, /* NaNs, ±inf, ±0 */
    0x0001, 0x8001, 0x007f, 0x0080,                 /* subnormals, the smallest normal */
    0x7f7f, 0xff7f,                                 /* ± the largest finite */
    0x4120, 0x4120, 0x4120, 0x4120, 0xc120, 0x4120, /* ±10; the ties of dout below */
};
const uint32_t kSpecialDout[] = {
    0x3f800000u, 0x3f800000u, 0x3f800000u, 0x7f800000u, 0x3f800000u, 0x3f800000u,
    0x3f800000u, 0xbf800000u, 0x00000001u, 0x3f800000u,
    0x3f800000u, 0x3f800000u,
    0x3f808000u, 0x3f818000u, 0xbf808000u, 0x3f808001u, 0x7fc00000u, 0xff800000u, /* ties to even both ways */
};
const size_t kSpecials = sizeof kSpecialInputs / sizeof kSpecialInputs[0];

std::vector<uint16_t> gelu_inputs(size_t n) {
    std::vector<uint16_t> x(n);
    for (size_t i = 0; i < n; i++)
        x[i] = i < kSpecials ? kSpecialInputs[i] : lm_bf16_from_float(emu_uniform(-6, 6));
    return x;
}

std::vector<float> dout_values(size_t n) {
    std::vector<float> d(n);
    for (size_t i = 0; i < n; i++) {
        if (i < kSpecials)
            memcpy(&d[i], &kSpecialDout[i], sizeof(float));
        else
            d[i] = emu_uniform(-1, 1);
    }
    return d;
}

std::vector<float> widen(const std::vector<uint16_t> &h) {
    std::vector<float> x(h.size());
    for (size_t i = 0; i < h.size(); i++) x[i] = lm_bf16_to_float(h[i]);
    return x;
}

/* Against the CPU twin: the specials' codes equal (NaN -> 0x7FC0, ±inf,
 * ±0, x for ±10 and the largest finite); the random part's widened values
 * within kCpuBound, norm-relative (the specials would set the norm). */
double worst_widened_error(const std::vector<uint16_t> &got, const std::vector<uint16_t> &want, long *special) {
    *special = -1;
    const size_t n = got.size(), first = n < kSpecials ? n : kSpecials;
    for (size_t i = 0; i < first && *special < 0; i++)
        if (got[i] != want[i]) *special = (long)i;
    const std::vector<float> g = widen(got), w = widen(want);
    return loss_worst_error(g.data() + first, w.data() + first, n - first);
}

/* Where the pointers sit, in elements past a 16-byte boundary: out and inp
 * (bf16), dout (fp32, the backward's). */
struct layout {
    const char *name;
    size_t out, inp, dout;
};
const layout kLayouts[] = {
    {"4-wide", 0, 0, 0},
    {"4-wide, bf16 8 bytes off", 4, 4, 0},
    {"scalar (inp 2 bytes off)", 0, 1, 0},
    {"scalar (inp 4 bytes off)", 0, 2, 0},
    {"scalar (out 6 bytes off)", 3, 0, 0},
    {"scalar (dout 8 bytes off)", 0, 0, 2},
};

int check(lm_cuda_ctx *ctx, int backward, int tanh_form, size_t n) {
    const std::vector<uint16_t> inp = gelu_inputs(n);
    const std::vector<float> inp32 = widen(inp), dout = dout_values(n);
    const char *name = backward ? (tanh_form ? "gelu_backward_bf16 (tanh)" : "gelu_backward_bf16 (erf)")
                                : (tanh_form ? "gelu_forward_bf16 (tanh)" : "gelu_forward_bf16 (erf)");
    /* The emulated fp32 kernel on the widened inputs (aligned: its float4 path), rounded. */
    std::vector<uint16_t> want(n), cpu(n);
    {
        emu_floats d_out(n), d_inp(n), d_dout(n);
        d_inp.set(inp32);
        d_dout.set(dout);
        if (backward)
            lm_cuda_gelu_backward(ctx, d_out.p, d_inp.p, d_dout.p, n, tanh_form);
        else
            lm_cuda_gelu_forward(ctx, d_out.p, d_inp.p, n, tanh_form);
        for (size_t i = 0; i < n; i++) want[i] = lm_bf16_from_float(d_out.p[i]);
    }
    if (backward)
        lm_cpu_gelu_backward_bf16(cpu.data(), inp.data(), dout.data(), n, tanh_form);
    else
        lm_cpu_gelu_forward_bf16(cpu.data(), inp.data(), n, tanh_form);
    int failures = 0;
    for (const layout &l : kLayouts) {
        if (!backward && l.dout) continue;
        emu_array<uint16_t> d_out(n, l.out), d_inp(n, l.inp); /* out: 0xFFFF, never written by the kernel */
        emu_floats d_dout(n, l.dout);
        d_inp.set(inp);
        d_dout.set(dout);
        if (backward)
            lm_cuda_gelu_backward_bf16(ctx, d_out.p, d_inp.p, d_dout.p, n, tanh_form);
        else
            lm_cuda_gelu_forward_bf16(ctx, d_out.p, d_inp.p, n, tanh_form);
        char failure[400] = "";
        const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
        const std::vector<uint16_t> got = d_out.get();
        long first = -1;
        for (size_t i = 0; i < n && first < 0; i++)
            if (got[i] != want[i]) first = (long)i;
        long special = -1;
        const double cpu_err = worst_widened_error(got, cpu, &special);
        size_t cpu_differ = 0;
        for (size_t i = 0; i < n; i++) cpu_differ += got[i] != cpu[i];
        const bool guards = d_out.guards_intact();
        const bool ok = !failed && guards && first < 0 && special < 0 && cpu_err <= kCpuBound;
        char where[200] = "";
        if (first >= 0)
            snprintf(where, sizeof where, " (first at %ld: 0x%04x, the fp32 kernel's rounded 0x%04x)", first,
                     got[(size_t)first], want[(size_t)first]);
        else if (special >= 0)
            snprintf(where, sizeof where, "; special input %ld (0x%04x): 0x%04x, the CPU twin's 0x%04x", special,
                     inp[(size_t)special], got[(size_t)special], cpu[(size_t)special]);
        failures += !emu_report(ok, "%s n=%zu %s: %s%s; CPU twin %.2e (bound %.1e), %zu code(s) differ%s %s", name, n,
                                l.name, first < 0 ? "the fp32 kernel's bits, rounded" : "differs from the fp32 kernel",
                                where, cpu_err, kCpuBound, cpu_differ, guards ? "" : "; a write outside the output",
                                failure);
    }
    return failures;
}

} /* namespace */

int emulate_gelu_bf16(lm_cuda_ctx *ctx) {
    /* the specials alone (n = 18), tails of 1..3 after the 4-wide body */
    static const size_t sizes[] = {1, 3, 4, 5, kSpecials, 1027, 4098};
    int failures = 0;
    for (int backward = 0; backward <= 1; backward++)
        for (int tanh_form = 0; tanh_form <= 1; tanh_form++)
            for (size_t n : sizes) failures += check(ctx, backward, tanh_form, n);
    /* past the grid cap (8192 x 256 threads): the scalar layouts loop, and
     * past 4 x that the 4-wide ones too */
    failures += check(ctx, 1, 1, ((size_t)1 << 21) + 1001);
    failures += check(ctx, 0, 0, ((size_t)1 << 23) + 4101);
    return failures;
}
