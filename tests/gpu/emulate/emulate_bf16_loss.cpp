/* The bf16 classifier's kernels emulated through their host functions:
 *   convert_bf16.cu       against kernels/cpu/convert_bf16.c bit for bit, on
 *                         ties (to even, both ways), values that round up
 *                         into the exponent and past bf16's largest finite,
 *                         NaNs of either sign and payload, ±inf, ±0,
 *                         subnormals; n = 1, 3, 1027 and past the grid cap;
 *   crossentropy_bf16.cu  forward, backward (in place, added);
 *   crossentropy_forward_backward.cu  the fused op on bf16 rows (online
 *                         softmax, 16-byte loads of 8 bf16 after a scalar
 *                         head, a scalar tail).
 * The separate bf16 loss kernels claim crossentropy.cu's operations in its
 * order with each logit widened as read and each gradient rounded once as
 * written (crossentropy_kernels.cuh, NOTES.md): so they are checked bit for
 * bit against the emulated fp32 kernels on the widened logits (rounded with
 * kernels/bf16.h).  The fused kernel cuts a bf16 row at other columns than
 * a float row (8 elements per 16 bytes, not 4), so its threads add in
 * another order than the fp32 fused kernel's: it is checked against that
 * kernel on the widened logits within the CPU bounds, not bit for bit.
 * Every op against the CPU twins (kernels/cpu/crossentropy_bf16.c), whose
 * exps and sums differ in the last float bits: losses within a bound,
 * every gradient within one bf16 step (a float a few ulps off may round the
 * other way), unscored rows and padding bit for bit.  Shapes: rows at every
 * 2-byte offset from a 16-byte boundary (V = 12, 13, 37, 1001, 1027 with
 * stride = V; logits 2 to 14 bytes off), V < 8 (a head clamped to V, no
 * body), labels at the fused split's cuts, NaN / inf / -inf logits in
 * unaligned rows, the padded and unpadded GPT-2 vocabulary, 67 rows of stride 9; and
 * V = 0, which every op leaves alone (no launch, no failure). */
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

const double kLossBound = 1e-5; /* norm-relative, against the CPU */

std::vector<float> widen(const std::vector<uint16_t> &h) {
    std::vector<float> x(h.size());
    for (size_t i = 0; i < h.size(); i++) x[i] = lm_bf16_to_float(h[i]);
    return x;
}

std::vector<uint16_t> round_all(const float *x, size_t n) {
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; i++) h[i] = lm_bf16_from_float(x[i]);
    return h;
}

/* Elements whose bf16 codes are further apart than one step (the codes of
 * same-signed values are ordered as the values; NaN agrees with NaN only). */
size_t far_apart(const uint16_t *got, const uint16_t *want, size_t n, size_t *one_step) {
    size_t far = 0;
    *one_step = 0;
    for (size_t i = 0; i < n; i++) {
        if (got[i] == want[i]) continue;
        const bool nan_g = (got[i] & 0x7fffu) > 0x7f80u, nan_w = (want[i] & 0x7fffu) > 0x7f80u;
        const int diff = (int)got[i] - (int)want[i];
        if (!nan_g && !nan_w && (got[i] & 0x8000u) == (want[i] & 0x8000u) && (diff == 1 || diff == -1))
            ++*one_step;
        else
            far++;
    }
    return far;
}

bool check_convert(lm_cuda_ctx *ctx, size_t n) {
    static const uint32_t special[] = {
        0x3f808000u, 0x3f818000u, 0xbf808000u, 0xbf818000u, /* ties: down to even, up to even */
        0x3f808001u, 0x3f807fffu, 0x3fffffffu, 0x3f7fffffu, /* above / below a tie; up into the exponent */
        0x7f7fffffu, 0x7f7f8000u, 0x7f7f7fffu, 0xff7fffffu, /* past bf16's largest finite: inf; just below */
        0x7fc00000u, 0xffc00001u, 0x7f800001u, 0xff812345u, /* NaNs: 0x7FC0 whatever the sign and payload */
        0x7f800000u, 0xff800000u, 0x00000000u, 0x80000000u, /* ±inf, ±0 */
        0x00008000u, 0x00018000u, 0x007fffffu, 0x80000001u, /* subnormals */
    };
    std::vector<float> in(n);
    for (size_t i = 0; i < n; i++) {
        if (i < sizeof special / sizeof special[0]) {
            memcpy(&in[i], &special[i], sizeof(float));
        } else {
            /* random bits of every exponent, a third of them exact ties */
            uint32_t bits;
            const float u = emu_uniform(0, 1), v = emu_uniform(0, 1);
            bits = (uint32_t)(u * 4294967296.0);
            if (v < 0.33f) bits = (bits & 0xffff0000u) | 0x8000u;
            memcpy(&in[i], &bits, sizeof bits);
        }
    }
    std::vector<uint16_t> want(n);
    lm_cpu_convert_to_bf16(want.data(), in.data(), n);
    emu_array<float> d_in(n);
    emu_array<uint16_t> d_out(n); /* 0xFFFF: a NaN the kernel never writes */
    d_in.set(in);
    lm_cuda_convert_to_bf16(ctx, d_out.p, d_in.p, n);
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
    long first = -1;
    for (size_t i = 0; i < n && first < 0; i++)
        if (d_out.p[i] != want[i]) first = (long)i;
    const bool guards = d_out.guards_intact();
    return emu_report(!failed && first < 0 && guards, "convert_to_bf16 n=%zu: %s%s %s", n,
                      first < 0 ? "the CPU's bits" : "differs", guards ? "" : "; a write outside an output", failure);
}

struct bf16_inputs {
    std::vector<int32_t> labels;
    std::vector<uint16_t> logits;
    std::vector<float> widened;
    int64_t n_targets;
    float loss_scale, dloss;
};

bf16_inputs inputs_for(const loss_case &c) {
    bf16_inputs in;
    in.labels = loss_labels(c, 8); /* bf16: 8 per 16-byte vector */
    const std::vector<float> x = loss_logits(c, in.labels);
    in.logits = round_all(x.data(), x.size());
    in.widened = widen(in.logits);
    in.n_targets = loss_targets(in.labels, c.V);
    in.loss_scale = 0.75f;
    in.dloss = in.loss_scale / (float)in.n_targets;
    return in;
}

bool unscored_or_padding(const loss_case &c, const std::vector<int32_t> &labels, size_t i) {
    const int32_t label = labels[i / (size_t)c.stride];
    return (int)(i % (size_t)c.stride) >= c.V || label < 0 || label >= c.V;
}

/* kind 0: forward; 1: backward in place; 2: backward added; 3: forward_backward. */
bool check_loss(lm_cuda_ctx *ctx, const loss_case &c, const bf16_inputs &in, int kind) {
    static const char *names[] = {"crossentropy_forward_bf16", "crossentropy_backward_bf16 in place",
                                  "crossentropy_backward_bf16 added", "crossentropy_forward_backward_bf16"};
    const size_t total = in.logits.size();
    const bool has_loss = kind == 0 || kind == 3, has_grad = kind != 0, in_place = kind != 2;
    std::vector<uint16_t> before = in.logits;
    if (kind == 2) {
        const std::vector<float> r = emu_uniform_vector(total, -1, 1);
        before = round_all(r.data(), total);
    }

    /* The CPU twin. */
    std::vector<float> cpu_losses((size_t)c.N);
    std::vector<uint16_t> cpu_grads = before;
    int cpu_status = 0;
    if (kind == 0) cpu_status = lm_cpu_crossentropy_forward_bf16(cpu_losses.data(), in.logits.data(), in.labels.data(), c.N, c.V, c.stride);
    if (kind == 1 || kind == 2)
        cpu_status = lm_cpu_crossentropy_backward_bf16(cpu_grads.data(), kind == 1 ? cpu_grads.data() : in.logits.data(),
                                                       in.labels.data(), in.dloss, c.N, c.V, c.stride);
    if (kind == 3)
        cpu_status = lm_cpu_crossentropy_forward_backward_bf16(cpu_losses.data(), cpu_grads.data(), in.labels.data(),
                                                               in.dloss, c.N, c.V, c.stride);

    emu_array<uint16_t> d_logits(total, c.logits_offset), d_grads(total, c.logits_offset);
    emu_array<int32_t> d_labels(in.labels.size());
    emu_array<int64_t> d_targets(1);
    emu_floats e_losses((size_t)c.N);
    d_logits.set(in.logits);
    d_grads.set(before);
    d_labels.set(in.labels);
    d_targets.p[0] = in.n_targets;
    e_losses.fill(NAN);

    /* The emulated fp32 kernels on the widened logits: the bits claimed by
     * the separate ops; for the fused op, the fp32 fused kernel, whose
     * values it must be near (another order of the sums). */
    emu_floats f_logits(total, (size_t)c.logits_offset), f_grads(total, (size_t)c.logits_offset), f_losses((size_t)c.N);
    f_logits.set(in.widened);
    f_grads.set(widen(before));
    f_losses.fill(NAN);
    if (kind == 3) {
        lm_cuda_crossentropy_forward_backward(ctx, f_losses.p, f_logits.p, d_labels.p, in.loss_scale, d_targets.p, c.N,
                                              c.V, c.stride);
    } else {
        if (has_loss) lm_cuda_crossentropy_forward(ctx, f_losses.p, f_logits.p, d_labels.p, c.N, c.V, c.stride);
        if (has_grad)
            lm_cuda_crossentropy_backward(ctx, in_place ? f_logits.p : f_grads.p, f_logits.p, d_labels.p,
                                          in.loss_scale, d_targets.p, c.N, c.V, c.stride);
    }
    const std::vector<uint16_t> claimed = round_all(in_place ? f_logits.p : f_grads.p, total);

    uint16_t *out = in_place ? d_logits.p : d_grads.p;
    if (kind == 0) lm_cuda_crossentropy_forward_bf16(ctx, e_losses.p, d_logits.p, d_labels.p, c.N, c.V, c.stride);
    if (kind == 1 || kind == 2)
        lm_cuda_crossentropy_backward_bf16(ctx, out, d_logits.p, d_labels.p, in.loss_scale, d_targets.p, c.N, c.V,
                                           c.stride);
    if (kind == 3)
        lm_cuda_crossentropy_forward_backward_bf16(ctx, e_losses.p, d_logits.p, d_labels.p, in.loss_scale,
                                                   d_targets.p, c.N, c.V, c.stride);
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);

    bool bits = true, exact = true;
    double e_loss = 0.0, e_loss_fp32 = 0.0;
    size_t far = 0, one_step = 0, far_fp32 = 0, one_step_fp32 = 0;
    if (has_loss) {
        bits = bits && memcmp(e_losses.p, f_losses.p, (size_t)c.N * sizeof(float)) == 0;
        e_loss = loss_worst_error(e_losses.p, cpu_losses.data(), (size_t)c.N);
        e_loss_fp32 = loss_worst_error(e_losses.p, f_losses.p, (size_t)c.N);
        exact = exact && loss_bits_where(e_losses.p, cpu_losses.data(), (size_t)c.N, [&](size_t n) {
                    return in.labels[n] < 0 || in.labels[n] >= c.V;
                });
    }
    if (has_grad) {
        /* Out of place the fp32 kernel leaves unscored rows and padding as
         * they were; so does the bf16 one (never rounded again). */
        bits = bits && memcmp(out, claimed.data(), total * sizeof(uint16_t)) == 0;
        far = far_apart(out, cpu_grads.data(), total, &one_step);
        far_fp32 = far_apart(out, claimed.data(), total, &one_step_fp32);
        exact = exact && loss_bits_where(out, cpu_grads.data(), total,
                                         [&](size_t i) { return unscored_or_padding(c, in.labels, i); });
    }
    if (kind == 0) exact = exact && memcmp(d_logits.p, in.logits.data(), total * sizeof(uint16_t)) == 0;
    const bool guards = d_logits.guards_intact() && d_grads.guards_intact() && e_losses.guards_intact();
    /* The separate ops: the fp32 kernels' bits; the fused one: near the
     * fp32 fused kernel's values, as near as the CPU's must be. */
    const bool like_fp32 = kind == 3 ? far_fp32 == 0 && e_loss_fp32 <= kLossBound : bits;
    const bool ok = !failed && cpu_status == 0 && like_fp32 && exact && far == 0 && guards && e_loss <= kLossBound;
    char versus_fp32[200];
    if (kind == 3)
        snprintf(versus_fp32, sizeof versus_fp32,
                 "the emulated fp32 fused kernel's: loss %.2e, %zu gradients one bf16 step off, %zu further (%s)",
                 e_loss_fp32, one_step_fp32, far_fp32, bits ? "all bits equal" : "bits differ");
    else
        snprintf(versus_fp32, sizeof versus_fp32, "%s the emulated fp32 kernel's", bits ? "bits of" : "DIFFERS from");
    return emu_report(ok,
                      "%s %s N=%d V=%d stride=%d: %s; CPU: loss %.2e (bound %.0e), "
                      "%zu of %zu gradients one bf16 step off, %zu further%s%s %s",
                      names[kind], c.name, c.N, c.V, c.stride, versus_fp32, e_loss, kLossBound, one_step,
                      has_grad ? total : (size_t)0, far, exact ? "" : "; unscored rows / padding differ",
                      guards ? "" : "; a write outside an output", failure);
}

/* V = 0: every loss op returns before launching (its host code), so
 * nothing is written and no failure kept, the losses and logits left as
 * they were. */
bool check_empty_vocabulary(lm_cuda_ctx *ctx) {
    const int N = 3, stride = 8;
    emu_array<uint16_t> d_logits((size_t)N * stride);
    emu_array<int32_t> d_labels((size_t)N);
    emu_array<int64_t> d_targets(1);
    emu_floats e_losses((size_t)N);
    const std::vector<uint16_t> logits((size_t)N * stride, 0x3f80u); /* 1.0 */
    d_logits.set(logits);
    d_labels.set(std::vector<int32_t>{0, -100, 1});
    d_targets.p[0] = 2;
    e_losses.fill(-2.0f);
    lm_cuda_crossentropy_forward_bf16(ctx, e_losses.p, d_logits.p, d_labels.p, N, 0, stride);
    lm_cuda_crossentropy_backward_bf16(ctx, d_logits.p, d_logits.p, d_labels.p, 0.75f, d_targets.p, N, 0, stride);
    lm_cuda_crossentropy_forward_backward_bf16(ctx, e_losses.p, d_logits.p, d_labels.p, 0.75f, d_targets.p, N, 0,
                                               stride);
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
    bool untouched = memcmp(d_logits.p, logits.data(), logits.size() * sizeof(uint16_t)) == 0;
    for (int n = 0; n < N; n++) untouched = untouched && e_losses.p[n] == -2.0f;
    return emu_report(!failed && untouched && d_logits.guards_intact() && e_losses.guards_intact(),
                      "crossentropy_*_bf16 V=0 N=%d stride=%d: %s %s", N, stride,
                      untouched ? "nothing written" : "WROTE to the losses or logits", failure);
}

} /* namespace */

int emulate_bf16_loss(lm_cuda_ctx *ctx) {
    int failures = 0;
    static const size_t sizes[] = {1, 3, 1027, ((size_t)1 << 21) + 1001};
    for (size_t n : sizes) failures += !check_convert(ctx, n);
    /* logits_offset is in bf16 elements (2 bytes). */
    static const loss_case cases[] = {
        {"one column", 1, 1, 1, LABELS_MIXED, 0},
        {"odd rows", 9, 3, 3, LABELS_MIXED, 1},
        {"padded", 11, 300, 384, LABELS_MIXED, 0},
        {"GPT-2 padded", 2, 50257, 50304, LABELS_MIXED, 0},
        {"all ignored, n_targets 0", 4, 70, 72, LABELS_ALL_IGNORED, 0},
        {"NaN/inf logits", 4, 37, 40, LABELS_SPECIAL, 0},
        {"NaN/inf logits, unaligned rows", 4, 37, 37, LABELS_SPECIAL, 3},
        {"V 12: rows 8 bytes off in turn", 10, 12, 12, LABELS_BOUNDARIES, 0},
        {"V 13, labels at the cuts", 16, 13, 13, LABELS_BOUNDARIES, 5},
        {"odd V, labels at the cuts", 16, 37, 37, LABELS_BOUNDARIES, 3},
        {"V 1027, labels at the cuts, 2 bytes off", 16, 1027, 1027, LABELS_BOUNDARIES, 1},
        {"V 1001, labels at the cuts, 14 bytes off", 16, 1001, 1001, LABELS_BOUNDARIES, 7},
        {"V 7 < 8", 16, 7, 7, LABELS_BOUNDARIES, 1},
        {"V 5 < 8", 12, 5, 5, LABELS_BOUNDARIES, 6},
        {"V 2, head clamped to V", 12, 2, 2, LABELS_BOUNDARIES, 7},
        {"GPT-2 unpadded, 6 bytes off", 2, 50257, 50257, LABELS_MIXED, 3},
        {"rows at every offset", 67, 5, 9, LABELS_MIXED, 0},
    };
    for (const loss_case &c : cases) {
        const bf16_inputs in = inputs_for(c);
        for (int kind = 0; kind < 4; kind++) failures += !check_loss(ctx, c, in, kind);
    }
    failures += !check_empty_vocabulary(ctx);
    return failures;
}
