/* LayerNorm's CUDA kernels (kernels/cuda/layernorm.cu, layernorm_row.cuh,
 * column_reduce.cuh) and the fused residual + LayerNorm
 * (residual_layernorm.cu), emulated, through their host functions, against
 * the CPU twins (kernels/cpu/layernorm.c, residual_layernorm.c).
 *
 * Within bounds against the CPU (it sums a row with `omp simd`, CUDA with
 * 32 lanes and a butterfly; the parameter gradients in other orders), and
 * bit for bit where kernels/cuda claims it between its own paths: the
 * one-pass backward's dinp against the two-kernel path's (one row
 * function for both), the fused residual + LayerNorm against dropout +
 * residual + layernorm_forward, and the residual against the CPU's. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "emulate_suites.h"
#include "emulate_util.h"
#include "kernels.h"
#include "kernels_cuda.h"

namespace {

const float kEps = 1e-5f;
/* Norm-relative bounds against the CPU twin (emu_worst_error): the worst
 * seen is 6.4e-7 (forward), 2.1e-7 (dinp), 1.1e-6 (dweight/dbias) against
 * the Release build's CPU twin, whose row sums `omp simd` vectorises, and
 * 3.5e-6 (forward) against the sanitizer build's, which sums a row of 2000
 * floats one by one. */
const double kForwardBound = 1e-5, kInputGradBound = 2e-5, kParamGradBound = 2e-5;

const char *store_name(lm_grad_store s) { return s == LM_GRAD_WRITE ? "written" : "added"; }

struct ln_inputs {
    int N, C;
    std::vector<float> inp, weight, bias, dout;
};

ln_inputs make_inputs(int N, int C) {
    ln_inputs in;
    in.N = N;
    in.C = C;
    const size_t n = (size_t)N * C;
    in.inp = emu_uniform_vector(n, -2, 2);
    for (size_t i = 0; i < n; i++) in.inp[i] += (float)(i / C % 5) - 2.0f; /* rows with different means */
    in.weight = emu_uniform_vector(C, 0.5f, 1.5f);
    in.bias = emu_uniform_vector(C, -0.5f, 0.5f);
    in.dout = emu_uniform_vector(n, -1, 1);
    return in;
}

bool take_error(lm_cuda_ctx *ctx, char *failure, size_t size) { return emu_ctx_take_error(ctx, failure, size); }

bool check_forward(lm_cuda_ctx *ctx, const ln_inputs &in) {
    const size_t n = (size_t)in.N * in.C;
    std::vector<float> out(n), mean(in.N), rstd(in.N);
    lm_cpu_layernorm_forward(out.data(), mean.data(), rstd.data(), in.inp.data(), in.weight.data(), in.bias.data(),
                             in.N, in.C, kEps);
    emu_floats d_inp(n), d_w(in.C), d_b(in.C), e_out(n), e_mean(in.N), e_rstd(in.N);
    d_inp.set(in.inp);
    d_w.set(in.weight);
    d_b.set(in.bias);
    lm_cuda_layernorm_forward(ctx, e_out.p, e_mean.p, e_rstd.p, d_inp.p, d_w.p, d_b.p, in.N, in.C, kEps);
    char failure[400] = "";
    const bool failed = take_error(ctx, failure, sizeof failure);
    const double e_o = emu_worst_error(e_out.p, out.data(), n), e_m = emu_worst_error(e_mean.p, mean.data(), in.N);
    const double e_r = emu_worst_error(e_rstd.p, rstd.data(), in.N);
    const bool guards = e_out.guards_intact() && e_mean.guards_intact() && e_rstd.guards_intact();
    const bool ok = !failed && guards && e_o <= kForwardBound && e_m <= kForwardBound && e_r <= kForwardBound;
    return emu_report(ok, "layernorm_forward N=%d C=%d: out %.2e, mean %.2e, rstd %.2e (bound %.0e)%s %s", in.N, in.C,
                      e_o, e_m, e_r, kForwardBound, guards ? "" : "; a write outside an output", failure);
}

/* One backward call on the emulated device: dinp NULL or per dinp_store
 * (NaN where written, `start` where added), dweight/dbias per dparam_store. */
struct backward_result {
    std::vector<float> dinp, dweight, dbias;
    bool guards = true, failed = false;
    char failure[400] = "";
};

backward_result run_backward(lm_cuda_ctx *ctx, const ln_inputs &in, const std::vector<float> &mean,
                             const std::vector<float> &rstd, bool with_dinp, lm_grad_store dinp_store,
                             lm_grad_store dparam_store, const std::vector<float> &dinp_start,
                             const std::vector<float> &dw_start, const std::vector<float> &db_start) {
    const size_t n = (size_t)in.N * in.C;
    emu_floats d_inp(n), d_w(in.C), d_dout(n), d_mean(in.N), d_rstd(in.N), e_dinp(n), e_dw(in.C), e_db(in.C);
    d_inp.set(in.inp);
    d_w.set(in.weight);
    d_dout.set(in.dout);
    d_mean.set(mean);
    d_rstd.set(rstd);
    if (dinp_store == LM_GRAD_ADD) e_dinp.set(dinp_start); /* else NaN: must not be read */
    if (dparam_store == LM_GRAD_ADD) {
        e_dw.set(dw_start);
        e_db.set(db_start);
    }
    emu_ctx_poison_scratch(ctx);
    lm_cuda_layernorm_backward(ctx, with_dinp ? e_dinp.p : NULL, e_dw.p, e_db.p, d_dout.p, d_inp.p, d_w.p, d_mean.p,
                               d_rstd.p, in.N, in.C, dinp_store, dparam_store);
    backward_result r;
    r.failed = take_error(ctx, r.failure, sizeof r.failure);
    r.dinp = e_dinp.get();
    r.dweight = e_dw.get();
    r.dbias = e_db.get();
    r.guards = e_dinp.guards_intact() && e_dw.guards_intact() && e_db.guards_intact();
    return r;
}

} /* namespace */

/* layernorm.cu's one-pass backward kernel (its emulated build): whether it
 * ran tells which path the host code took. */
void lm_layernorm_backward_fused_kernel(float *dinp, float *dweight, float *dbias, float *partial, const float *dout,
                                        const float *inp, const float *weight, const float *mean, const float *rstd,
                                        int N, int C, bool write_dinp, bool write_params);

namespace {

bool ran_one_pass(void) {
    return emu_launched(emu_launched_kernels(), (const void *)lm_layernorm_backward_fused_kernel);
}

int check_backward(lm_cuda_ctx *ctx, const ln_inputs &in) {
    const size_t n = (size_t)in.N * in.C;
    std::vector<float> out(n), mean(in.N), rstd(in.N);
    lm_cpu_layernorm_forward(out.data(), mean.data(), rstd.data(), in.inp.data(), in.weight.data(), in.bias.data(),
                             in.N, in.C, kEps);
    const std::vector<float> dinp_start = emu_uniform_vector(n, -1, 1);
    const std::vector<float> dw_start = emu_uniform_vector(in.C, -1, 1), db_start = emu_uniform_vector(in.C, -1, 1);
    const size_t full_scratch = emu_ctx_scratch_bytes(ctx);
    /* layernorm.cu's LM_LN_BACKWARD_CHUNK_ROWS: only sizes the scratch that
     * forces the other path (checked: the one-pass kernel must not run). */
    const int chunks = (in.N + 31) / 32;
    (void)emu_launched_kernels();
    int fused = -1; /* known after the first call */
    int failures = 0;
    static const struct {
        int with_dinp;
        lm_grad_store dinp_store, dparam_store;
    } modes[] = {
        {1, LM_GRAD_WRITE, LM_GRAD_WRITE},
        {1, LM_GRAD_ADD, LM_GRAD_ADD},
        {0, LM_GRAD_WRITE, LM_GRAD_ADD},
        {1, LM_GRAD_ADD, LM_GRAD_WRITE},
    };
    for (const auto &mode : modes) {
        std::vector<float> dinp = dinp_start, dw(in.C), db(in.C);
        if (mode.dparam_store == LM_GRAD_ADD) {
            dw = dw_start;
            db = db_start;
        }
        lm_cpu_layernorm_backward(mode.with_dinp ? dinp.data() : NULL, dw.data(), db.data(), in.dout.data(),
                                  in.inp.data(), in.weight.data(), mean.data(), rstd.data(), in.N, in.C,
                                  mode.dinp_store, mode.dparam_store);
        /* the path the host picks, then (when that was the one-pass kernel)
         * the two-kernel path, forced by a scratch too small for the chunks */
        for (int forced = 0; forced <= (fused ? 1 : 0); forced++) {
            if (forced) emu_ctx_set_scratch_bytes(ctx, (size_t)chunks * 2 * in.C * sizeof(float) - 4);
            const backward_result r = run_backward(ctx, in, mean, rstd, mode.with_dinp, mode.dinp_store,
                                                   mode.dparam_store, dinp_start, dw_start, db_start);
            emu_ctx_set_scratch_bytes(ctx, full_scratch);
            const bool one_pass = ran_one_pass();
            if (fused < 0) fused = one_pass;
            const bool path_as_meant = forced ? !one_pass : one_pass == (fused == 1);
            const double e_dinp = mode.with_dinp ? emu_worst_error(r.dinp.data(), dinp.data(), n) : 0.0;
            /* without dinp, the buffer must stay as it was (NaN) */
            bool untouched = true;
            if (!mode.with_dinp)
                for (float x : r.dinp) untouched = untouched && isnan(x);
            const double e_dw = emu_worst_error(r.dweight.data(), dw.data(), in.C);
            const double e_db = emu_worst_error(r.dbias.data(), db.data(), in.C);
            /* bits between the paths: the one-pass kernel's dinp against this */
            long path_difference = -1;
            if (forced && mode.with_dinp) {
                const backward_result one_pass = run_backward(ctx, in, mean, rstd, 1, mode.dinp_store,
                                                              mode.dparam_store, dinp_start, dw_start, db_start);
                path_difference = emu_first_bit_difference(r.dinp.data(), one_pass.dinp.data(), n);
                (void)emu_launched_kernels();
            }
            const bool ok = !r.failed && r.guards && untouched && e_dinp <= kInputGradBound &&
                            e_dw <= kParamGradBound && e_db <= kParamGradBound && path_difference < 0 && path_as_meant;
            const char *path = !path_as_meant ? "(not the path meant)"
                               : forced       ? "two-kernel path (forced)"
                               : one_pass     ? (chunks > 1 ? "one-pass, chunks" : "one-pass, 1 chunk")
                                              : "two-kernel path";
            failures += !emu_report(ok,
                                    "layernorm_backward N=%d C=%d %s: dinp %s %.2e, dweight/dbias %s %.2e/%.2e (bounds "
                                    "%.0e, %.0e)%s%s%s %s",
                                    in.N, in.C, path, mode.with_dinp ? store_name(mode.dinp_store) : "NULL", e_dinp,
                                    store_name(mode.dparam_store), e_dw, e_db, kInputGradBound, kParamGradBound,
                                    forced && mode.with_dinp ? (path_difference < 0 ? "; dinp = one-pass's bits" : "; dinp differs from the one-pass kernel's") : "",
                                    r.guards ? "" : "; a write outside an output",
                                    untouched ? "" : "; dinp NULL but the buffer changed", r.failure);
        }
    }
    return failures;
}

int check_residual_layernorm(lm_cuda_ctx *ctx, int N, int C, float p) {
    const size_t n = (size_t)N * C;
    const ln_inputs in = make_inputs(N, C);
    const std::vector<float> a = emu_uniform_vector(n, -1, 1);
    lm_step_state *key = (lm_step_state *)emu_alloc(sizeof(lm_step_state), 0);
    memset(key, 0, sizeof *key);
    key->seed = 4242;
    key->micro_batch = 5;
    const int site = 2;
    const uint64_t stream = lm_dropout_stream(key->micro_batch, site);
    std::vector<float> residual(n), out(n), mean(N), rstd(N);
    lm_cpu_residual_layernorm_forward(residual.data(), out.data(), mean.data(), rstd.data(), a.data(), in.inp.data(),
                                      in.weight.data(), in.bias.data(), N, C, kEps, p, key->seed, stream);

    emu_floats d_a(n), d_branch(n), d_w(C), d_b(C), e_res(n), e_out(n), e_mean(N), e_rstd(N);
    d_a.set(a);
    d_branch.set(in.inp);
    d_w.set(in.weight);
    d_b.set(in.bias);
    lm_cuda_residual_layernorm_forward(ctx, e_res.p, e_out.p, e_mean.p, e_rstd.p, d_a.p, d_branch.p, d_w.p, d_b.p, N, C,
                                       kEps, p, key, site);
    /* the unfused CUDA ops it replaces, emulated: dropout, residual, layernorm */
    emu_floats u_drop(n), u_res(n), u_out(n), u_mean(N), u_rstd(N);
    lm_cuda_dropout_forward(ctx, u_drop.p, d_branch.p, n, p, key, site);
    lm_cuda_residual_forward(ctx, u_res.p, d_a.p, u_drop.p, n);
    lm_cuda_layernorm_forward(ctx, u_out.p, u_mean.p, u_rstd.p, u_res.p, d_w.p, d_b.p, N, C, kEps);
    char failure[400] = "";
    const bool failed = take_error(ctx, failure, sizeof failure);
    const long res_vs_cpu = emu_first_bit_difference(e_res.p, residual.data(), n);
    const long fused_vs_ops = std::max(emu_first_bit_difference(e_res.p, u_res.p, n),
                                       std::max(emu_first_bit_difference(e_out.p, u_out.p, n),
                                                std::max(emu_first_bit_difference(e_mean.p, u_mean.p, N),
                                                         emu_first_bit_difference(e_rstd.p, u_rstd.p, N))));
    const double e_o = emu_worst_error(e_out.p, out.data(), n), e_m = emu_worst_error(e_mean.p, mean.data(), N);
    const double e_r = emu_worst_error(e_rstd.p, rstd.data(), N);
    const bool guards = e_res.guards_intact() && e_out.guards_intact() && e_mean.guards_intact() && e_rstd.guards_intact();
    emu_free(key);
    const bool ok = !failed && guards && res_vs_cpu < 0 && fused_vs_ops < 0 && e_o <= kForwardBound &&
                    e_m <= kForwardBound && e_r <= kForwardBound;
    return !emu_report(ok,
                       "residual_layernorm_forward N=%d C=%d p=%g: residual %s the CPU's, out/mean/rstd %s the "
                       "unfused CUDA ops'; vs the CPU out %.2e, mean %.2e, rstd %.2e (bound %.0e)%s %s",
                       N, C, (double)p, res_vs_cpu < 0 ? "=" : "differs from", fused_vs_ops < 0 ? "=" : "differ from",
                       e_o, e_m, e_r, kForwardBound, guards ? "" : "; a write outside an output", failure);
}

} /* namespace */

int emulate_layernorm(lm_cuda_ctx *ctx) {
    /* (N, C): tiny; N not a multiple of the 8 rows of a forward block nor of
     * the backward's 32-row chunks; C not a multiple of 32 or 4; C = 1536
     * (the one-pass kernel's widest), 1537 and 2000 (two-kernel path). */
    static const int shapes[][2] = {{1, 1}, {3, 7}, {5, 96}, {32, 100}, {33, 768}, {70, 45}, {100, 1536},
                                    {17, 1537}, {70, 2000}, {1000, 64}};
    int failures = 0;
    for (const auto &s : shapes) {
        const ln_inputs in = make_inputs(s[0], s[1]);
        failures += !check_forward(ctx, in);
        failures += check_backward(ctx, in);
    }
    return failures;
}

int emulate_residual_layernorm(lm_cuda_ctx *ctx) {
    static const struct {
        int N, C;
        float p;
    } cases[] = {{1, 1, 0.0f}, {5, 96, 0.0f}, {33, 768, 0.1f}, {9, 2000, 0.1f}, {13, 45, 0.5f}, {6, 100, 1.0f}};
    int failures = 0;
    for (const auto &c : cases) failures += check_residual_layernorm(ctx, c.N, c.C, c.p);
    return failures;
}
