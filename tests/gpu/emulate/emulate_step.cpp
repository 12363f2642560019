/* The step state's CUDA kernels (kernels/cuda/step.cu) and the reductions
 * they use (reduce.cu: sum, sum of squares, loss_mean), emulated through
 * their host functions, against kernels/cpu/step.c and reduce.c.
 *
 * Bits, every byte of the state, as step.cu claims, except where it says
 * otherwise: step_clip after a sum of squares of random gradients (the
 * parallel sum adds in another order: grad_norm and clip_scale within one
 * float ulp); with dyadic gradients the sums are exact and bits are
 * required.  The schedule's cos/pow are the C library's here (step.h is
 * compiled for the host), so the emulation cannot see CUDA's 2-ulp cos and
 * pow: it checks the kernels' logic and order of operations. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "emulate_suites.h"
#include "emulate_util.h"
#include "kernels.h"
#include "kernels_cuda.h"

namespace {

lm_step_state base_state(void) {
    lm_step_state s;
    memset(&s, 0, sizeof s);
    s.seed = 1234;
    s.micro_batch = 17;
    s.step = 41;
    s.schedule.kind = LM_SCHEDULE_LINEAR;
    s.schedule.base_lr = 6e-4;
    s.schedule.warmup_steps = 10;
    s.schedule.total_steps = 100;
    s.schedule.num_cycles = 0.5;
    s.schedule.power = 1.0;
    s.schedule.lr_end = 1e-7;
    s.max_grad_norm = 1.0;
    s.lr = 3e-4;
    s.loss_sum = 1.25;
    s.step_loss = 2.5;
    for (int i = 0; i < LM_LOSS_SUMS; i++) s.loss_sums[i] = 10.0 + i / 3.0;
    s.loss = 3.7f;
    s.grad_norm = 0.5f;
    s.clip_scale = 1.0f;
    s.scored = 1;
    return s;
}

/* The first byte where the states differ, or -1. */
long first_difference(const lm_step_state &a, const lm_step_state &b) {
    const unsigned char *pa = (const unsigned char *)&a, *pb = (const unsigned char *)&b;
    for (size_t i = 0; i < sizeof a; i++)
        if (pa[i] != pb[i]) return (long)i;
    return -1;
}

float float_ulps_apart(float a, float b) {
    if (a == b) return 0.0f;
    return fabsf(a - b) / (nextafterf(fabsf(a), INFINITY) - fabsf(a));
}

/* Runs `op` on a CPU copy and on an emulated device copy of `start`. */
template <class CpuOp, class CudaOp>
bool compare(lm_cuda_ctx *ctx, const char *what, const lm_step_state &start, CpuOp cpu, CudaOp cuda,
             bool one_ulp_norm = false) {
    lm_step_state want = start;
    cpu(&want);
    lm_step_state *device = (lm_step_state *)emu_alloc(sizeof(lm_step_state), 0);
    memcpy(device, &start, sizeof start);
    cuda(device);
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
    lm_step_state got = *device;
    const bool guards = emu_guards_intact(device);
    emu_free(device);
    char detail[200] = "every byte of the state equal";
    bool ok = !failed && guards;
    if (one_ulp_norm) {
        const float norm_ulps = float_ulps_apart(got.grad_norm, want.grad_norm);
        const float scale_ulps = float_ulps_apart(got.clip_scale, want.clip_scale);
        snprintf(detail, sizeof detail, "grad_norm %g ulp, clip_scale %g ulp apart (bound 1), the rest equal",
                 (double)norm_ulps, (double)scale_ulps);
        ok = ok && norm_ulps <= 1.0f && scale_ulps <= 1.0f;
        got.grad_norm = want.grad_norm;
        got.clip_scale = want.clip_scale;
    }
    const long at = first_difference(got, want);
    if (at >= 0) snprintf(detail, sizeof detail, "the states differ from byte %ld on", at);
    ok = ok && at < 0;
    return emu_report(ok, "%s: %s %s", what, detail, failure);
}

int check_micro_batch_end(lm_cuda_ctx *ctx) {
    int failures = 0;
    lm_step_state s = base_state();
    failures += !compare(ctx, "step_micro_batch_end (loss 3.7, num 3, den 7)", s,
                         [](lm_step_state *x) { lm_cpu_step_micro_batch_end(x, 3.0, 7.0, 1); },
                         [&](lm_step_state *x) { lm_cuda_step_micro_batch_end(ctx, x, 3.0, 7.0, 1); });
    failures += !compare(ctx, "step_micro_batch_end (not scored: nothing changes)", s,
                         [](lm_step_state *x) { lm_cpu_step_micro_batch_end(x, 1.0, 1.0, 0); },
                         [&](lm_step_state *x) { lm_cuda_step_micro_batch_end(ctx, x, 1.0, 1.0, 0); });
    s.loss = NAN;
    failures += !compare(ctx, "step_micro_batch_end (NaN loss: flagged)", s,
                         [](lm_step_state *x) { lm_cpu_step_micro_batch_end(x, 1.0, 2.0, 1); },
                         [&](lm_step_state *x) { lm_cuda_step_micro_batch_end(ctx, x, 1.0, 2.0, 1); });
    s.bad_step = 3; /* an earlier flag wins */
    s.loss = INFINITY;
    failures += !compare(ctx, "step_micro_batch_end (inf loss after a flag)", s,
                         [](lm_step_state *x) { lm_cpu_step_micro_batch_end(x, 1.0, 2.0, 1); },
                         [&](lm_step_state *x) { lm_cuda_step_micro_batch_end(ctx, x, 1.0, 2.0, 1); });
    return failures;
}

int check_clip(lm_cuda_ctx *ctx) {
    int failures = 0;
    static const size_t sizes[] = {1, 1000, 4097, 300000};
    for (size_t n : sizes) {
        for (int dyadic = 0; dyadic <= 1; dyadic++) {
            std::vector<float> g = emu_uniform_vector(n, -0.05f, 0.05f);
            if (dyadic)
                for (float &x : g) x = roundf(x * 1024.0f) / 1024.0f; /* sums of squares exact in double */
            emu_floats d(n);
            d.set(g);
            for (double max_norm : {1.0, 0.01, 0.0}) {
                lm_step_state s = base_state();
                s.max_grad_norm = max_norm;
                char what[160];
                snprintf(what, sizeof what, "step_clip n=%zu %s gradients, max_grad_norm %g", n,
                         dyadic ? "dyadic" : "random", max_norm);
                failures += !compare(ctx, what, s, [&](lm_step_state *x) { lm_cpu_step_clip(x, g.data(), n); },
                                     [&](lm_step_state *x) { lm_cuda_step_clip(ctx, x, d.p, n); }, !dyadic);
            }
        }
    }
    /* an infinite gradient: flagged with the norm */
    std::vector<float> g(513, 0.25f);
    g[200] = INFINITY;
    emu_floats d(g.size());
    d.set(g);
    failures += !compare(ctx, "step_clip with an infinite gradient (flagged)", base_state(),
                         [&](lm_step_state *x) { lm_cpu_step_clip(x, g.data(), g.size()); },
                         [&](lm_step_state *x) { lm_cuda_step_clip(ctx, x, d.p, g.size()); });
    return failures;
}

int check_schedule(lm_cuda_ctx *ctx) {
    int failures = 0;
    static const int64_t steps[] = {0, 5, 10, 41, 99, 100, 150};
    for (int kind = 0; kind < LM_SCHEDULE_KIND_COUNT; kind++) {
        for (int64_t step : steps) {
            lm_step_state s = base_state();
            s.schedule.kind = kind;
            if (kind == LM_SCHEDULE_COSINE_WITH_RESTARTS) s.schedule.num_cycles = 3.0;
            if (kind == LM_SCHEDULE_POLYNOMIAL) s.schedule.power = 2.0;
            if (kind == LM_SCHEDULE_INVERSE_SQRT) s.schedule.timescale = 10.0;
            s.step = step;
            char what[120];
            snprintf(what, sizeof what, "step_schedule kind %d at step %lld", kind, (long long)step);
            failures += !compare(ctx, what, s, [](lm_step_state *x) { lm_cpu_step_schedule(x); },
                                 [&](lm_step_state *x) { lm_cuda_step_schedule(ctx, x); });
        }
    }
    return failures;
}

int check_finish(lm_cuda_ctx *ctx) {
    lm_step_state s = base_state();
    s.clip_scale = 0.25f;
    return !compare(ctx, "step_finish", s, [](lm_step_state *x) { lm_cpu_step_finish(x); },
                    [&](lm_step_state *x) { lm_cuda_step_finish(ctx, x); });
}

/* lm_cuda_sum / sum_squares (the two-stage reductions step_clip and the
 * host reads use) and loss_mean against the CPU's sums: the same double
 * sums in another order, so within 1e-13 of the magnitude; loss_mean
 * within one float ulp (bits for dyadic losses). */
int check_reductions(lm_cuda_ctx *ctx) {
    int failures = 0;
    static const size_t sizes[] = {0, 1, 255, 4096, 4097, 70000, 5000000};
    for (size_t n : sizes) {
        const std::vector<float> x = emu_uniform_vector(n, -1, 3);
        emu_floats d(n ? n : 1);
        if (n) d.set(x);
        double *out = (double *)emu_alloc(2 * sizeof(double), 0);
        lm_cuda_sum(ctx, &out[0], d.p, n);
        lm_cuda_sum_squares(ctx, &out[1], d.p, n);
        const double want_sum = lm_cpu_sum(x.data(), n), want_sq = lm_cpu_sum_squares(x.data(), n);
        const double e_sum = fabs(out[0] - want_sum) / (fabs(want_sum) + 1e-300);
        const double e_sq = fabs(out[1] - want_sq) / (fabs(want_sq) + 1e-300);
        char failure[400] = "";
        const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
        const bool ok = !failed && emu_guards_intact(out) && (n ? e_sum <= 1e-13 && e_sq <= 1e-13 : out[0] == 0.0 && out[1] == 0.0);
        failures += !emu_report(ok, "sum / sum_squares n=%zu: %.1e / %.1e from the CPU's (bound 1e-13) %s", n, e_sum,
                                e_sq, failure);
        emu_free(out);
    }
    for (int dyadic = 0; dyadic <= 1; dyadic++) {
        const size_t n = 3000;
        std::vector<float> losses = emu_uniform_vector(n, 0, 8);
        if (dyadic)
            for (float &x : losses) x = roundf(x * 256.0f) / 256.0f;
        const int64_t count = 2999;
        float want = 0.0f;
        lm_cpu_loss_mean(&want, losses.data(), n, &count);
        emu_floats d(n), out(1);
        d.set(losses);
        int64_t *d_count = (int64_t *)emu_alloc(sizeof(int64_t), 0);
        *d_count = count;
        lm_cuda_loss_mean(ctx, out.p, d.p, n, d_count);
        char failure[400] = "";
        const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
        const float ulps = float_ulps_apart(out.p[0], want);
        const bool ok = !failed && (dyadic ? memcmp(out.p, &want, sizeof want) == 0 : ulps <= 1.0f);
        failures += !emu_report(ok, "loss_mean n=%zu %s losses: %g ulp from the CPU's (%s) %s", n,
                                dyadic ? "dyadic" : "random", (double)ulps, dyadic ? "bits required" : "bound 1",
                                failure);
        emu_free(d_count);
    }
    return failures;
}

} /* namespace */

int emulate_step(lm_cuda_ctx *ctx) {
    return check_micro_batch_end(ctx) + check_clip(ctx) + check_schedule(ctx) + check_finish(ctx) +
           check_reductions(ctx);
}
