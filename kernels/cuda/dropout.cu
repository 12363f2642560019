/* Inverted dropout with counter-based masks, the CPU twin's semantics
 * (kernels/cpu/dropout.c, dropout_mask.h): element i is kept when
 * lm_rng_uniform(seed, stream, i) >= p and then scaled by 1/(1-p); p <= 0
 * copies, p >= 1 drops everything (no 0·inf).  Backward redraws the mask.
 *
 * The key is not an argument: the kernels read seed and micro-batch from
 * the step state in device memory (cuda_common.cuh, lm_dropout_key_load),
 * so that the host never has to know them and a captured step replays
 * with the current micro-batch's masks. */
#include <stdio.h>

#include "cuda_common.cuh"
#include "dropout_multiplier.cuh"
#include "pointwise_map.cuh"

/* out = inp · multiplier (x = inp); backward: dinp = dout · multiplier
 * (x = dout), the same mask drawn again, written as 0 + x (the CPU's bits:
 * kernels/cpu/dropout.c).  The key is loaded per element from device
 * memory (a broadcast through L1, as before). */
template <bool BACKWARD> struct lm_dropout_op {
    const lm_step_state *key;
    int site;
    float p, scale;
    static const bool reads_out = false;
    __device__ float operator()(float x, float, float, size_t i) const {
        const lm_dropout_key k = lm_dropout_key_load(key, site);
        const float kept = x * lm_dropout_multiplier(k.seed, k.stream, i, p, scale);
        return BACKWARD ? __fadd_rn(0.0f, kept) : kept;
    }
};

/* A draw without a key is the caller's bug; kept (ops return nothing) so
 * that the next sync names it, instead of dereferencing NULL on the GPU. */
static int missing_key(lm_cuda_ctx *ctx, const char *op, const lm_step_state *key, float p) {
    if (key) return 0;
    char reason[160];
    snprintf(reason, sizeof reason, "dropout p=%g needs the step state (its key), and none was given", (double)p);
    lm_cuda_ctx_keep_error(ctx, op, reason);
    return 1;
}

extern "C" void lm_cuda_dropout_forward(lm_cuda_ctx *ctx, float *out, const float *inp, size_t n, float p,
                                        const lm_step_state *key, int site) {
    if (n == 0) return;
    if (p <= 0.0f) {
        if (out != inp)
            lm_cuda_keep_cuda(ctx, "dropout_forward",
                              cudaMemcpyAsync(out, inp, n * sizeof *out, cudaMemcpyDeviceToDevice, ctx->stream));
        return;
    }
    if (p >= 1.0f) {
        lm_cuda_keep_cuda(ctx, "dropout_forward", cudaMemsetAsync(out, 0, n * sizeof *out, ctx->stream));
        return;
    }
    if (missing_key(ctx, "dropout_forward", key, p)) return;
    const float scale = 1.0f / (1.0f - p);
    lm_pointwise_map(ctx, "dropout_forward", out, inp, (const float *)NULL, n,
                     lm_dropout_op<false>{key, site, p, scale});
}

extern "C" void lm_cuda_dropout_backward(lm_cuda_ctx *ctx, float *dinp, const float *dout, size_t n, float p,
                                         const lm_step_state *key, int site) {
    if (n == 0) return;
    if (p <= 0.0f || p >= 1.0f) { /* a copy, or everything dropped: forward's */
        lm_cuda_dropout_forward(ctx, dinp, dout, n, p, key, site);
        return;
    }
    if (missing_key(ctx, "dropout_backward", key, p)) return;
    const float scale = 1.0f / (1.0f - p);
    lm_pointwise_map(ctx, "dropout_backward", dinp, dout, (const float *)NULL, n,
                     lm_dropout_op<true>{key, site, p, scale});
}
