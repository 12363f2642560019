/* The optimizers' CUDA updates (plugins/optimizer_{adamw,sgd,lion}/
 * *_cuda.cu, host side included: AdamW's float4 choice by alignment, the
 * grids from lm_opt_cuda_grid) emulated against the plugins' CPU kernels
 * (*_cpu.c, built with their plugin's flags), bit for bit as the NOTES
 * claim (`device_and_threads_agree`): parameters and state buffers, over
 * ranges with and without weight decay whose ends are not multiples of 4
 * (AdamW's heads and tails), aligned and not, with gradient clipping and
 * with a diverged run (nothing may change).  AdamW's bias corrections use
 * pow, glibc's on both sides here and CUDA's on the GPU (a last-bit
 * difference that the GPU test, not this, can see). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "adamw.h"
#include "lion.h"
#include "sgd.h"
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

enum optimizer { ADAMW, SGD, SGD_MOMENTUM, SGD_NESTEROV, LION };
const char *optimizer_name(int o) {
    static const char *names[] = {"adamw", "sgd", "sgd (momentum 0.9, dampening 0.1)", "sgd (nesterov)", "lion"};
    return names[o];
}

struct optimizer_case {
    int optimizer;
    size_t n;
    size_t split;       /* ranges [0, split) with decay, [split, n) without */
    size_t offset;      /* floats past 16 bytes, for every buffer (0: the float4 path) */
    size_t grad_offset; /* the gradients alone off by this much (the scalar path) */
    int64_t step;
    float clip_scale;
    int64_t bad_step;
};

bool check(const optimizer_case &c) {
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
    const sgd_hparams sgd_h = {c.optimizer == SGD ? 0.0f : 0.9f, c.optimizer == SGD_MOMENTUM ? 0.9f : 1.0f, 0.01f,
                               c.optimizer == SGD_NESTEROV};
    const lion_hparams lion_h = {0.9f, 0.1f, 0.99f, (float)(1.0 - (double)0.99f), 0.01};
    /* SGD without momentum has no buffer (NULL), as its plugin passes it */
    const bool second_buffer = c.optimizer == ADAMW, first_buffer = c.optimizer != SGD;
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
    switch (c.optimizer) {
    case ADAMW: adamw_cpu_step(&p, m_cpu.data(), v_cpu.data(), &h, &state); break;
    case LION: lion_cpu_step(&p, m_cpu.data(), &lion_h, &state); break;
    default: sgd_cpu_step(&p, first_buffer ? m_cpu.data() : NULL, &sgd_h, &state); break;
    }

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
    switch (c.optimizer) {
    case ADAMW: adamw_cuda_step(&p, d_m.p, d_v.p, &h, d_state); break;
    case LION: lion_cuda_step(&p, d_m.p, &lion_h, d_state); break;
    default: sgd_cuda_step(&p, first_buffer ? d_m.p : NULL, &sgd_h, d_state); break;
    }
    emu_free(d_state);
    const long dp = emu_first_bit_difference(d_p.p, p_cpu.data(), c.n);
    const long dm = emu_first_bit_difference(d_m.p, m_cpu.data(), c.n);
    const long dv = second_buffer ? emu_first_bit_difference(d_v.p, v_cpu.data(), c.n) : -1;
    const bool unchanged = c.bad_step == 0 || emu_first_bit_difference(d_p.p, params.data(), c.n) < 0;
    const bool guards = d_p.guards_intact() && d_m.guards_intact() && d_v.guards_intact();
    const bool ok = !kept_failure[0] && guards && unchanged && dp < 0 && dm < 0 && dv < 0;
    return emu_report(ok,
                      "%s n=%zu ranges [0,%zu) decay + [%zu,%zu) %s, step %lld, clip_scale %g, bad_step %lld: "
                      "params and state %s%s %s",
                      optimizer_name(c.optimizer), c.n, c.split, c.split, c.n,
                      c.offset == 0 && c.grad_offset == 0 ? "aligned" : "a buffer 4 B off",
                      (long long)c.step, (double)c.clip_scale, (long long)c.bad_step,
                      dp < 0 && dm < 0 && dv < 0 ? "the CPU's bits" : "differ from the CPU's",
                      guards ? "" : "; a write outside a buffer", kept_failure);
}

} /* namespace */

int emulate_optimizers(lm_cuda_ctx *ctx) {
    (void)ctx; /* the optimizers queue on the model's lm_device, not on a kernels context */
    static const optimizer_case shapes[] = {
        {0, 1000, 1000 / 3 + 7, 0, 0, 0, 1.0f, 0}, {0, 1000, 1000 / 3 + 7, 0, 0, 9, 0.5f, 0},
        {0, 1000, 1000 / 3 + 7, 1, 0, 9, 0.5f, 0}, {0, 1000, 1000 / 3 + 7, 0, 2, 3, 1.0f, 0},
        {0, 5, 2, 0, 0, 0, 1.0f, 0},               {0, 3, 0, 0, 0, 1, 1.0f, 0},
        {0, 70001, 12345, 0, 0, 100, 0.25f, 0},    {0, 999, 500, 0, 0, 9, 1.0f, 4},
    };
    int failures = 0;
    for (int o = ADAMW; o <= LION; o++)
        for (optimizer_case c : shapes) {
            c.optimizer = o;
            failures += !check(c);
        }
    return failures;
}
