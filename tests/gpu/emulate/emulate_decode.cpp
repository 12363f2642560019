/* Incremental decoding's CUDA kernels (kernels/cuda/attention_cached.cu:
 * kv_cache_append, attention_cached_forward) emulated through their host
 * functions against the CPU twins (kernels/cpu/attention_cached.c): the
 * prompt step (pos 0, several queries) and single-token steps after it,
 * rows interleaved as GPT-2's qkv (stride 3C), head sizes 4 to 64.
 * Appended rows bit for bit (a copy; the rows after them untouched);
 * out and the probabilities within a bound (the CPU scores with a GEMM and
 * its own exp); the hidden keys' probabilities exactly 0. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "emulate_suites.h"
#include "emulate_util.h"
#include "kernels.h"
#include "kernels_cuda.h"

namespace {

const double kBound = 1e-5; /* norm-relative; worst seen 7.6e-7 */

struct decode_case {
    int C, NH, pos, n, max_tokens;
};

bool check(lm_cuda_ctx *ctx, const decode_case &c) {
    const int stride = 3 * c.C, T = c.pos + c.n;
    const size_t cache = (size_t)c.max_tokens * c.C;
    /* the cache as earlier steps left it (rows < pos), NaN after them */
    std::vector<float> k_cache(cache, NAN), v_cache(cache, NAN);
    for (size_t i = 0; i < (size_t)c.pos * c.C; i++) {
        k_cache[i] = emu_uniform(-1, 1);
        v_cache[i] = emu_uniform(-1, 1);
    }
    const std::vector<float> qkv = emu_uniform_vector((size_t)c.n * stride, -1, 1);
    std::vector<float> out((size_t)c.n * c.C), att((size_t)c.NH * c.n * T);
    std::vector<float> kc = k_cache, vc = v_cache;
    lm_cpu_kv_cache_append(kc.data(), vc.data(), qkv.data() + c.C, qkv.data() + 2 * c.C, stride, c.pos, c.n, c.C);
    lm_cpu_attention_cached_forward(out.data(), att.data(), qkv.data(), kc.data(), vc.data(), stride, c.pos, c.n, c.C,
                                    c.NH);

    emu_floats d_k(cache), d_v(cache), d_qkv(qkv.size()), e_out(out.size()), e_att(att.size());
    d_k.set(k_cache);
    d_v.set(v_cache);
    d_qkv.set(qkv);
    lm_cuda_kv_cache_append(ctx, d_k.p, d_v.p, d_qkv.p + c.C, d_qkv.p + 2 * c.C, stride, c.pos, c.n, c.C);
    lm_cuda_attention_cached_forward(ctx, e_out.p, e_att.p, d_qkv.p, d_k.p, d_v.p, stride, c.pos, c.n, c.C, c.NH);
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
    /* NaN rows after pos + n compare equal bit for bit: both left them */
    const bool cache_bits = emu_first_bit_difference(d_k.p, kc.data(), cache) < 0 &&
                            emu_first_bit_difference(d_v.p, vc.data(), cache) < 0;
    const double e_o = emu_worst_error(e_out.p, out.data(), out.size());
    const double e_a = emu_worst_error(e_att.p, att.data(), att.size());
    bool hidden_zero = true;
    for (int h = 0; h < c.NH; h++)
        for (int i = 0; i < c.n; i++)
            for (int j = c.pos + i + 1; j < T; j++) {
                const float p = e_att.p[((size_t)h * c.n + i) * T + j];
                hidden_zero = hidden_zero && p == 0.0f && !signbit(p);
            }
    const bool guards = e_out.guards_intact() && e_att.guards_intact() && d_k.guards_intact() && d_v.guards_intact();
    const bool ok = !failed && guards && cache_bits && hidden_zero && e_o <= kBound && e_a <= kBound;
    return emu_report(ok,
                      "attention_cached C=%d NH=%d (head %d) pos=%d n=%d: cache %s, out %.2e, att %.2e (bound %.0e)%s%s "
                      "%s",
                      c.C, c.NH, c.C / c.NH, c.pos, c.n, cache_bits ? "the CPU's bits" : "differs", e_o, e_a, kBound,
                      hidden_zero ? "" : "; a hidden key's probability is not +0",
                      guards ? "" : "; a write outside an output", failure);
}

} /* namespace */

int emulate_decode(lm_cuda_ctx *ctx) {
    static const decode_case cases[] = {
        {48, 3, 0, 5, 16},  {48, 3, 5, 1, 16},    {16, 4, 0, 1, 4},      {16, 4, 3, 1, 4},
        {768, 12, 0, 9, 40}, {768, 12, 131, 1, 140}, {100, 2, 20, 3, 30}, {256, 4, 7, 200, 300},
    };
    int failures = 0;
    for (const decode_case &c : cases) failures += !check(ctx, c);
    return failures;
}
