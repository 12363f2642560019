/* The fp32 loss kernels emulated through their host functions against the
 * CPU twins (kernels/cpu/crossentropy.c):
 *   crossentropy.cu                    forward, backward in place and out
 *                                      of place (added onto non-zero values);
 *   crossentropy_forward_backward.cu   the fused classifier (online softmax,
 *                                      float4 body with scalar head and tail).
 * Shapes: V = 1, 2, 3, 13 (rows not 16-byte aligned; a row's scalar head
 * longer than V, clamped), a padded vocabulary
 * (V = 300, stride 384; V = 50257, stride 50304), 50257 unpadded, logits
 * starting 4 bytes off, N = 1, rows whose labels are all ignored with
 * n_targets = 0 (dloss infinite: no row may use it), NaN / inf / -inf logits,
 * labels at the fused kernel's cuts (head, body, tail).
 * The sums run in another order than the CPU's and the exps are the C
 * library's, not the CPU twin's vectorised ones: losses and gradients within
 * a bound; unscored rows, padding columns and (out of place) the untouched
 * padding bit for bit.  The fused kernel is a template on the stored type
 * since issue #16 item 4; its float instantiation must give, bit for bit,
 * the losses and dlogits of the fp32 kernel it replaced
 * (frozen_crossentropy_fused_fp32.cu, emulated beside it). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "emulate_loss_common.h"
#include "emulate_suites.h"
#include "emulate_util.h"
#include "kernels.h"
#include "kernels_cuda.h"

/* frozen_crossentropy_fused_fp32.cu: the fused fp32 kernel before the template. */
extern "C" void lm_frozen_crossentropy_forward_backward(lm_cuda_ctx *ctx, float *losses, float *logits,
                                                        const int32_t *labels, float loss_scale,
                                                        const int64_t *n_targets, int N, int V, int stride);

namespace {

const double kBound = 1e-5; /* norm-relative, losses and gradients */

struct case_inputs {
    std::vector<int32_t> labels;
    std::vector<float> logits;
    int64_t n_targets;
    float loss_scale, dloss;
};

case_inputs inputs_for(const loss_case &c) {
    case_inputs in;
    in.labels = loss_labels(c);
    in.logits = loss_logits(c, in.labels);
    in.n_targets = loss_targets(in.labels, c.V);
    in.loss_scale = 0.75f;
    in.dloss = in.loss_scale / (float)in.n_targets; /* the kernels' lm_loss_gradient_scale */
    return in;
}

/* The columns a kernel must leave with the twin's exact bits: unscored rows
 * and padding columns. */
struct exact_columns {
    const loss_case &c;
    const std::vector<int32_t> &labels;
    bool operator()(size_t i) const {
        const int32_t label = labels[i / (size_t)c.stride];
        return (int)(i % (size_t)c.stride) >= c.V || label < 0 || label >= c.V;
    }
};

bool finish(lm_cuda_ctx *ctx, bool ok, const char *op, const loss_case &c, double e_loss, double e_grad,
            bool exact, bool guards, const char *note = "") {
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
    ok = ok && !failed && exact && guards && e_loss <= kBound && e_grad <= kBound;
    return emu_report(ok, "%s %s N=%d V=%d stride=%d: loss %.2e, grad %.2e (bound %.0e)%s%s%s %s", op, c.name, c.N,
                      c.V, c.stride, e_loss, e_grad, kBound, note, exact ? "" : "; unscored rows / padding differ",
                      guards ? "" : "; a write outside an output", failure);
}

bool check_forward(lm_cuda_ctx *ctx, const loss_case &c, const case_inputs &in) {
    std::vector<float> losses((size_t)c.N);
    (void)lm_cpu_crossentropy_forward(losses.data(), in.logits.data(), in.labels.data(), c.N, c.V, c.stride);
    emu_array<float> d_logits(in.logits.size(), c.logits_offset);
    emu_array<int32_t> d_labels(in.labels.size());
    emu_floats e_losses((size_t)c.N);
    d_logits.set(in.logits);
    d_labels.set(in.labels);
    e_losses.fill(NAN);
    lm_cuda_crossentropy_forward(ctx, e_losses.p, d_logits.p, d_labels.p, c.N, c.V, c.stride);
    const bool exact = loss_bits_where(e_losses.p, losses.data(), losses.size(), [&](size_t n) {
        return in.labels[n] < 0 || in.labels[n] >= c.V;
    });
    const bool logits_kept = memcmp(d_logits.p, in.logits.data(), in.logits.size() * sizeof(float)) == 0;
    return finish(ctx, logits_kept, "crossentropy_forward", c, loss_worst_error(e_losses.p, losses.data(), losses.size()),
                  0.0, exact, e_losses.guards_intact() && d_logits.guards_intact());
}

/* in_place: dlogits are the logits; else dlogits start at values in
 * [-1, 1) (padding included, which must stay as it is). */
bool check_backward(lm_cuda_ctx *ctx, const loss_case &c, const case_inputs &in, bool in_place) {
    std::vector<float> before = in_place ? in.logits : emu_uniform_vector(in.logits.size(), -1, 1);
    std::vector<float> grads = before;
    lm_cpu_crossentropy_backward(grads.data(), in_place ? grads.data() : in.logits.data(), in.labels.data(), in.dloss,
                                 c.N, c.V, c.stride);
    emu_array<float> d_logits(in.logits.size(), c.logits_offset), d_grads(in.logits.size(), c.logits_offset);
    emu_array<int32_t> d_labels(in.labels.size());
    emu_array<int64_t> d_targets(1);
    d_logits.set(in.logits);
    d_grads.set(before);
    d_labels.set(in.labels);
    d_targets.p[0] = in.n_targets;
    float *out = in_place ? d_logits.p : d_grads.p;
    lm_cuda_crossentropy_backward(ctx, out, d_logits.p, d_labels.p, in.loss_scale, d_targets.p, c.N, c.V, c.stride);
    const bool exact = loss_bits_where(out, grads.data(), grads.size(), exact_columns{c, in.labels});
    const bool logits_kept =
        in_place || memcmp(d_logits.p, in.logits.data(), in.logits.size() * sizeof(float)) == 0;
    return finish(ctx, logits_kept, in_place ? "crossentropy_backward in place" : "crossentropy_backward added", c,
                  0.0, loss_worst_error(out, grads.data(), grads.size()), exact,
                  d_logits.guards_intact() && d_grads.guards_intact());
}

bool check_forward_backward(lm_cuda_ctx *ctx, const loss_case &c, const case_inputs &in) {
    std::vector<float> losses((size_t)c.N), grads = in.logits;
    lm_cpu_crossentropy_forward_backward(losses.data(), grads.data(), in.labels.data(), in.dloss, c.N, c.V, c.stride);
    emu_array<float> d_logits(in.logits.size(), c.logits_offset);
    emu_array<int32_t> d_labels(in.labels.size());
    emu_array<int64_t> d_targets(1);
    emu_floats e_losses((size_t)c.N);
    d_logits.set(in.logits);
    d_labels.set(in.labels);
    d_targets.p[0] = in.n_targets;
    e_losses.fill(NAN);
    lm_cuda_crossentropy_forward_backward(ctx, e_losses.p, d_logits.p, d_labels.p, in.loss_scale, d_targets.p, c.N,
                                          c.V, c.stride);
    /* The frozen pre-template kernel on the same inputs, at the same
     * alignment: the float instantiation must give its bits. */
    emu_array<float> frozen_logits(in.logits.size(), c.logits_offset);
    emu_floats frozen_losses((size_t)c.N);
    frozen_logits.set(in.logits);
    frozen_losses.fill(NAN);
    lm_frozen_crossentropy_forward_backward(ctx, frozen_losses.p, frozen_logits.p, d_labels.p, in.loss_scale,
                                            d_targets.p, c.N, c.V, c.stride);
    const bool frozen_bits =
        memcmp(e_losses.p, frozen_losses.p, (size_t)c.N * sizeof(float)) == 0 &&
        memcmp(d_logits.p, frozen_logits.p, in.logits.size() * sizeof(float)) == 0;
    const bool exact = loss_bits_where(d_logits.p, grads.data(), grads.size(), exact_columns{c, in.labels}) &&
                       loss_bits_where(e_losses.p, losses.data(), losses.size(), [&](size_t n) {
                           return in.labels[n] < 0 || in.labels[n] >= c.V;
                       });
    char note[160];
    snprintf(note, sizeof note, "; %zu losses and %zu dlogits %s the frozen fp32 kernel's", (size_t)c.N,
             in.logits.size(), frozen_bits ? "the bits of" : "DIFFER from");
    return finish(ctx, frozen_bits, "crossentropy_forward_backward", c,
                  loss_worst_error(e_losses.p, losses.data(), losses.size()),
                  loss_worst_error(d_logits.p, grads.data(), grads.size()), exact,
                  d_logits.guards_intact() && e_losses.guards_intact() && frozen_logits.guards_intact() &&
                      frozen_losses.guards_intact(),
                  note);
}

} /* namespace */

int emulate_crossentropy(lm_cuda_ctx *ctx) {
    static const loss_case cases[] = {
        {"one column", 1, 1, 1, LABELS_MIXED, 0},
        {"one column, unaligned rows", 8, 1, 1, LABELS_MIXED, 0},
        {"head clamped to V", 6, 2, 2, LABELS_MIXED, 1},
        {"unaligned rows", 9, 3, 3, LABELS_MIXED, 0},
        {"unaligned rows", 12, 13, 13, LABELS_MIXED, 0},
        {"padded", 11, 300, 384, LABELS_MIXED, 0},
        {"4 bytes off", 8, 1027, 1027, LABELS_MIXED, 1},
        {"GPT-2 padded", 3, 50257, 50304, LABELS_MIXED, 0},
        {"GPT-2 unpadded", 2, 50257, 50257, LABELS_MIXED, 3},
        {"all ignored, n_targets 0", 4, 70, 72, LABELS_ALL_IGNORED, 0},
        {"NaN/inf logits", 4, 37, 40, LABELS_SPECIAL, 0},
        {"many rows", 1031, 5, 8, LABELS_MIXED, 0},
        {"labels at the cuts", 16, 1027, 1027, LABELS_BOUNDARIES, 1},
        {"labels at the cuts, V < 4", 12, 3, 3, LABELS_BOUNDARIES, 2},
    };
    int failures = 0;
    for (const loss_case &c : cases) {
        const case_inputs in = inputs_for(c);
        failures += !check_forward(ctx, c, in);
        failures += !check_backward(ctx, c, in, true);
        failures += !check_backward(ctx, c, in, false);
        failures += !check_forward_backward(ctx, c, in);
    }
    return failures;
}
