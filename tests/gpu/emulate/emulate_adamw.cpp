/* The AdamW update's CUDA kernel (plugins/optimizer_adamw/adamw_cuda.cu,
 * host side included: the float4 choice by alignment, the grid from
 * lm_opt_cuda_grid) emulated against the plugin's CPU kernel
 * (adamw_cpu.c, built with its plugin's flags), bit for bit as the NOTES
 * claim (`device_and_threads_agree`): parameters, exp_avg and exp_avg_sq,
 * over ranges with and without weight decay whose ends are not multiples
 * of 4 (the heads and tails), aligned and not, with gradient clipping and
 * with a diverged run (nothing may change).  The bias corrections' pow is
 * glibc's on both sides here; on the GPU it is CUDA's (a last-bit
 * difference that the GPU test, not this, can see). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "adamw.h"
#include "emulate_suites.h"
#include "emulate_util.h"

namespace {

char kept_failure[300];

void serial_parallel_for(lm_device *, long n, long, lm_task_fn fn, void *ctx) {
    if (n > 0) fn(ctx, 0, n);
}

void keep_failure(lm_device *, const char *what, const char *reason) {
    if (!kept_failure[0]) snprintf(kept_failure, sizeof kept_failure, "%s: %s", what, reason);
}

struct adamw_case {
    size_t n;
    size_t split;       /* ranges [0, split) with decay, [split, n) without */
    size_t offset;      /* floats past 16 bytes, for every buffer (0: the float4 path) */
    size_t grad_offset; /* the gradients alone off by this much (the scalar path) */
    int64_t step;
    float clip_scale;
    int64_t bad_step;
};

bool check(const adamw_case &c) {
    lm_device_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.struct_size = sizeof ops;
    ops.parallel_for = serial_parallel_for;
    ops.keep_failure = keep_failure;
    lm_device dev;
    memset(&dev, 0, sizeof dev);
    dev.struct_size = sizeof dev;
    dev.ops = &ops;
    lm_opt_range ranges[2] = {{0, c.split, 1}, {c.split, c.n, 0}};
    const adamw_hparams h = {0.9f, 0.999f, 1e-8f, 0.01f};
    const std::vector<float> params = emu_uniform_vector(c.n, -1, 1), grads = emu_uniform_vector(c.n, -0.1f, 0.1f);
    const std::vector<float> m0 = emu_uniform_vector(c.n, -0.01f, 0.01f), v0 = emu_uniform_vector(c.n, 0, 1e-4f);

    lm_step_state state;
    memset(&state, 0, sizeof state);
    state.lr = 6e-4;
    state.step = c.step;
    state.clip_scale = c.clip_scale;
    state.bad_step = c.bad_step;

    /* the CPU kernel */
    std::vector<float> p_cpu = params, g_cpu = grads, m_cpu = m0, v_cpu = v0;
    lm_opt_params p;
    memset(&p, 0, sizeof p);
    p.optimizer = "adamw";
    p.set.n_params = c.n;
    p.set.params = p_cpu.data();
    p.set.grads = g_cpu.data();
    p.dev = &dev;
    p.ranges = ranges;
    p.n_ranges = 2;
    adamw_cpu_step(&p, m_cpu.data(), v_cpu.data(), &h, &state);

    /* the CUDA kernel, emulated */
    emu_floats d_p(c.n, c.offset), d_g(c.n, c.offset + c.grad_offset), d_m(c.n, c.offset), d_v(c.n, c.offset);
    d_p.set(params);
    d_g.set(grads);
    d_m.set(m0);
    d_v.set(v0);
    lm_step_state *d_state = (lm_step_state *)emu_alloc(sizeof state, 0);
    memcpy(d_state, &state, sizeof state);
    p.set.params = d_p.p;
    p.set.grads = d_g.p;
    kept_failure[0] = 0;
    adamw_cuda_step(&p, d_m.p, d_v.p, &h, d_state);
    emu_free(d_state);
    const long dp = emu_first_bit_difference(d_p.p, p_cpu.data(), c.n);
    const long dm = emu_first_bit_difference(d_m.p, m_cpu.data(), c.n);
    const long dv = emu_first_bit_difference(d_v.p, v_cpu.data(), c.n);
    const bool unchanged = c.bad_step == 0 || emu_first_bit_difference(d_p.p, params.data(), c.n) < 0;
    const bool guards = d_p.guards_intact() && d_m.guards_intact() && d_v.guards_intact();
    const bool ok = !kept_failure[0] && guards && unchanged && dp < 0 && dm < 0 && dv < 0;
    return emu_report(ok,
                      "adamw n=%zu ranges [0,%zu) decay + [%zu,%zu) %s, step %lld, clip_scale %g, bad_step %lld: "
                      "params/exp_avg/exp_avg_sq %s%s %s",
                      c.n, c.split, c.split, c.n,
                      c.offset == 0 && c.grad_offset == 0 ? "float4" : "scalar (a buffer 4 B off)",
                      (long long)c.step, (double)c.clip_scale, (long long)c.bad_step,
                      dp < 0 && dm < 0 && dv < 0 ? "the CPU's bits" : "differ from the CPU's",
                      guards ? "" : "; a write outside a buffer", kept_failure);
}

} /* namespace */

int emulate_adamw(lm_cuda_ctx *ctx) {
    (void)ctx; /* the optimizer queues on the model's lm_device, not on a kernels context */
    static const adamw_case cases[] = {
        {1000, 1000 / 3 + 7, 0, 0, 0, 1.0f, 0},  {1000, 1000 / 3 + 7, 0, 0, 9, 0.5f, 0},
        {1000, 1000 / 3 + 7, 1, 0, 9, 0.5f, 0},  {1000, 1000 / 3 + 7, 0, 2, 3, 1.0f, 0},
        {5, 2, 0, 0, 0, 1.0f, 0},                {3, 0, 0, 0, 1, 1.0f, 0},
        {70001, 12345, 0, 0, 100, 0.25f, 0},     {999, 500, 0, 0, 9, 1.0f, 4},
    };
    int failures = 0;
    for (const adamw_case &c : cases) failures += !check(c);
    return failures;
}
