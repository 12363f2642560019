/* The element-wise CUDA ops (kernels/cuda/pointwise_map.cuh through
 * residual.cu, gelu.cu, dropout.cu with dropout_multiplier.cuh), emulated
 * through their host functions, against the CPU twins: the float4 path
 * (every pointer 16-byte aligned, as the host code decides) and the scalar
 * path (a pointer 4 bytes off), n with and without a tail, in place, and a
 * grid capped at LM_CUDA_MAX_GRID blocks (threads loop).
 *
 * Bits: the two paths against each other (the same per-element code);
 * residual and dropout against the CPU (one IEEE operation each, `0 + x`
 * in dropout's backward on both).  GELU against the CPU within a bound:
 * the CPU's exp is its own vectorised one (vec_math.h) and its erf
 * libmvec's, the emulator's the C library's (and the GPU's its own). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <functional>
#include <string>
#include <vector>

#include "emulate_suites.h"
#include "emulate_util.h"
#include "kernels.h"
#include "kernels_cuda.h"

namespace {

const double kGeluBound = 2e-6; /* norm-relative, ~10x the worst seen */

/* An op with up to two inputs: out = op(x[, y]); the CPU twin and the CUDA
 * op on the emulated device. */
struct pointwise_op {
    std::string name;
    bool bits;     /* equal bits to the CPU's expected */
    bool two_inputs;
    std::function<void(float *out, const float *x, const float *y, size_t n)> cpu;
    std::function<void(lm_cuda_ctx *ctx, float *out, const float *x, const float *y, size_t n)> cuda;
};

lm_step_state *dropout_key(void) {
    static lm_step_state *key;
    if (!key) {
        key = (lm_step_state *)emu_alloc(sizeof(lm_step_state), 0);
        memset(key, 0, sizeof *key);
        key->seed = 99;
        key->micro_batch = (1ull << 32) + 7; /* past 2^32: the stream's high bits */
    }
    return key;
}
const int kSite = 3;

std::vector<pointwise_op> ops(void) {
    std::vector<pointwise_op> list;
    list.push_back({"residual_forward", true, true,
                    [](float *o, const float *x, const float *y, size_t n) { lm_cpu_residual_forward(o, x, y, n); },
                    [](lm_cuda_ctx *c, float *o, const float *x, const float *y, size_t n) {
                        lm_cuda_residual_forward(c, o, x, y, n);
                    }});
    for (int tanh_form = 0; tanh_form <= 1; tanh_form++) {
        list.push_back({tanh_form ? "gelu_forward (tanh)" : "gelu_forward (erf)", false, false,
                        [tanh_form](float *o, const float *x, const float *, size_t n) {
                            lm_cpu_gelu_forward(o, x, n, tanh_form);
                        },
                        [tanh_form](lm_cuda_ctx *c, float *o, const float *x, const float *, size_t n) {
                            lm_cuda_gelu_forward(c, o, x, n, tanh_form);
                        }});
        list.push_back({tanh_form ? "gelu_backward (tanh)" : "gelu_backward (erf)", false, true,
                        [tanh_form](float *o, const float *x, const float *y, size_t n) {
                            lm_cpu_gelu_backward(o, x, y, n, tanh_form);
                        },
                        [tanh_form](lm_cuda_ctx *c, float *o, const float *x, const float *y, size_t n) {
                            lm_cuda_gelu_backward(c, o, x, y, n, tanh_form);
                        }});
    }
    static const float ps[] = {0.0f, 0.1f, 0.5f, 1.0f};
    for (float p : ps) {
        for (int backward = 0; backward <= 1; backward++) {
            char name[48];
            snprintf(name, sizeof name, "dropout_%s p=%g", backward ? "backward" : "forward", (double)p);
            list.push_back({name, true, false,
                            [p, backward](float *o, const float *x, const float *, size_t n) {
                                const lm_step_state *k = dropout_key();
                                const uint64_t stream = lm_dropout_stream(k->micro_batch, kSite);
                                if (backward)
                                    lm_cpu_dropout_backward(o, x, n, p, k->seed, stream);
                                else
                                    lm_cpu_dropout_forward(o, x, n, p, k->seed, stream);
                            },
                            [p, backward](lm_cuda_ctx *c, float *o, const float *x, const float *, size_t n) {
                                /* no key where nothing is drawn, as the models pass it */
                                const lm_step_state *k = p > 0.0f && p < 1.0f ? dropout_key() : NULL;
                                if (backward)
                                    lm_cuda_dropout_backward(c, o, x, n, p, k, kSite);
                                else
                                    lm_cuda_dropout_forward(c, o, x, n, p, k, kSite);
                            }});
        }
    }
    return list;
}

/* One op at size n: the CPU, then the emulated op with every pointer
 * aligned (float4 path) and with `out`, x or y 4 bytes off (scalar path),
 * and in place (out = x) on the float4 path. */
int check(lm_cuda_ctx *ctx, const pointwise_op &op, size_t n) {
    const std::vector<float> x = emu_uniform_vector(n, -4, 4), y = emu_uniform_vector(n, -1, 1);
    std::vector<float> want(n);
    op.cpu(want.data(), x.data(), y.data(), n);
    int failures = 0;
    std::vector<float> vectorised;
    /* layouts: offsets of (out, x, y) in floats past a 16-byte boundary */
    static const int layouts[][3] = {{0, 0, 0}, {1, 1, 1}, {0, 0, 3}, {2, 0, 0}};
    static const char *layout_names[] = {"float4", "scalar (all 4 B off)", "scalar (y off)", "scalar (out off)"};
    for (int l = 0; l < 4; l++) {
        if (l == 2 && !op.two_inputs) continue;
        emu_floats out(n, layouts[l][0]), dx(n, layouts[l][1]), dy(n, layouts[l][2]);
        dx.set(x);
        dy.set(y);
        op.cuda(ctx, out.p, dx.p, op.two_inputs ? dy.p : NULL, n);
        char failure[400] = "";
        const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
        const std::vector<float> got = out.get();
        if (l == 0) vectorised = got;
        const long bits_cpu = emu_first_bit_difference(got.data(), want.data(), n);
        const double err = emu_worst_error(got.data(), want.data(), n);
        const long bits_paths = emu_first_bit_difference(got.data(), vectorised.data(), n);
        const bool guards = out.guards_intact();
        const bool ok = !failed && guards && bits_paths < 0 && (op.bits ? bits_cpu < 0 : err <= kGeluBound);
        char verdict[120];
        if (op.bits)
            snprintf(verdict, sizeof verdict, "%s", bits_cpu < 0 ? "the CPU's bits" : "differs from the CPU's bits");
        else
            snprintf(verdict, sizeof verdict, "%.2e from the CPU (bound %.0e)", err, kGeluBound);
        failures += !emu_report(ok, "%s n=%zu %s: %s%s%s%s %s", op.name.c_str(), n, layout_names[l], verdict,
                                l && bits_paths >= 0 ? "; differs from the float4 path's bits" : "",
                                guards ? "" : "; a write outside the output", failed ? ";" : "", failure);
    }
    /* in place: out = x (residual's dinp += dout, gelu_backward's dinp = dout's buffer) */
    emu_floats io(n), other(n);
    const bool x_in_place = op.two_inputs && op.name.compare(0, 13, "gelu_backward") == 0;
    io.set(x_in_place ? y : x);
    other.set(x_in_place ? x : y);
    if (x_in_place)
        op.cuda(ctx, io.p, other.p, io.p, n); /* dinp aliases dout */
    else
        op.cuda(ctx, io.p, io.p, op.two_inputs ? other.p : NULL, n);
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
    const long bits = emu_first_bit_difference(io.p, vectorised.data(), n);
    failures += !emu_report(!failed && bits < 0, "%s n=%zu in place (%s): %s %s", op.name.c_str(), n,
                            x_in_place ? "dinp = dout" : "out = x", bits < 0 ? "the float4 path's bits" : "differs",
                            failure);
    return failures;
}

/* dropout with 0 < p < 1 and no key: kept as a failure naming the op,
 * nothing written (dropout.cu's missing_key). */
int check_missing_key(lm_cuda_ctx *ctx) {
    emu_floats out(8), in(8);
    in.fill(1.0f);
    lm_cuda_dropout_forward(ctx, out.p, in.p, 8, 0.5f, NULL, kSite);
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
    bool untouched = true;
    for (size_t i = 0; i < 8; i++) untouched = untouched && isnan(out.p[i]);
    const bool ok = failed && strstr(failure, "dropout_forward") && strstr(failure, "needs the step state") && untouched;
    return !emu_report(ok, "dropout_forward p=0.5 without a key: kept \"%s\"%s", failure,
                       untouched ? ", nothing written" : ", but the output was written");
}

} /* namespace */

int emulate_pointwise(lm_cuda_ctx *ctx) {
    /* tails of 0..3 elements after the float4 body, a single element */
    static const size_t sizes[] = {1, 3, 4, 1027, 4098};
    int failures = 0;
    for (const pointwise_op &op : ops()) {
        for (size_t n : sizes) failures += check(ctx, op, n);
    }
    /* the capped grid: 8192 x 256 threads over 2^21 + 1001 elements (the
     * scalar layouts loop twice) and 2^23 + 4100 (so does the float4 one) */
    const std::vector<pointwise_op> all = ops();
    failures += check(ctx, all[0], ((size_t)1 << 21) + 1001);
    failures += check(ctx, all[0], ((size_t)1 << 23) + 4101);
    failures += check_missing_key(ctx);
    return failures;
}
