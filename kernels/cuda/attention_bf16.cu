/* The eager attention on bf16 storage (attention_forward_bf16,
 * attention_backward_bf16, backend_ops.def; the CPU twins are
 * kernels/cpu/attention_bf16.c): q, k and v are widened (exactly) into a
 * context-owned fp32 workspace with the caller's row stride, attention.cu's
 * fp32 op runs on the widened copies, and the forward's fp32 output is
 * rounded once into the bf16 out (convert_to_bf16).  dq/dk/dv are the fp32
 * op's, added at the caller's stride (the workspace keeps the caller's
 * layout, so the fp32 op's one stride serves both).
 *
 * Why widen rather than typed cuBLAS GEMMs (NOTES_bf16_storage.md, point 9):
 * only the scores q·kᵀ have two bf16 operands; att·v and the four backward
 * products pair a bf16 matrix with an fp32 one (the probabilities, dout or
 * dS), which cuBLAS cannot mix in one call, so they would need the bf16
 * operand widened anyway.  Widening all three once costs one pass over
 * 3·N·C values (2 bytes read, 4 written each) per op, next to the T x T
 * probabilities this path exists for (T < 512, the default's choice), and
 * gives what the CPU twin computes: the fp32 op's values on the widened
 * inputs, out rounded once, bit for bit the GPU's own fp32 op (the GPU test
 * checks exactly that), with no new cuBLAS type combination to trust.  The
 * memory bf16 storage saves is the kept activations (q/k/v and out in
 * bf16 for every layer); the workspace is one layer's, shared by all.
 *
 * The workspace grows on first use of a shape (the warm-up step before a
 * CUDA graph capture does it) and never during a capture: a capture that
 * would need it larger keeps a failure naming the fix.  Growing waits for
 * the stream (queued work may read the old block) and empties the batched
 * GEMMs' pointer-array cache, whose generation a recorded graph checks, so
 * that a graph recorded over the old block refuses to launch instead of
 * reading freed memory. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bf16.h"
#include "gemm.cuh"

/* The widened copies' device memory, held by the context. */
struct lm_attention_widened {
    float *memory;
    size_t capacity; /* floats */
};

void lm_cuda_attention_widened_free(lm_cuda_ctx *ctx) {
    if (!ctx->attention_widened) return;
    cudaFree(ctx->attention_widened->memory);
    free(ctx->attention_widened);
    ctx->attention_widened = NULL;
}

/* dst[r·stride + c] = src[r·stride + c] widened, for r < rows, c < C (the
 * columns between rows are not touched). */
__global__ void lm_widen_rows_kernel(float *dst, const uint16_t *src, size_t rows, int C, int stride) {
    const size_t n = rows * (size_t)C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const size_t r = i / (size_t)C, at = r * (size_t)stride + (i - r * (size_t)C);
        dst[at] = lm_bf16_to_float(src[at]);
    }
}

/* Where the widened q, k, v (and the forward's fp32 out) go.  k and v share
 * q's block when their columns sit between q's row columns (GPT-2's
 * interleaved qkv: k = q + C, v = q + 2C, stride 3C), so the workspace is
 * 3·N·C floats in either layout (rounded up to 64 per block); otherwise
 * each has a block of its own. */
struct widened_layout {
    size_t k_at, v_at, out_at, end; /* offsets in floats; q at 0 */
};

/* Whether `x` (k or v) lies within q's rows, at columns [offset, offset + C)
 * of each, clear of q's own C columns and of `other`'s (when >= 0). */
static bool shares_rows(const uint16_t *q, const uint16_t *x, int C, int stride, long long other, long long *offset) {
    const intptr_t bytes = (intptr_t)x - (intptr_t)q;
    if (bytes % (intptr_t)sizeof(uint16_t) != 0) return false;
    const long long delta = (long long)(bytes / (intptr_t)sizeof(uint16_t));
    if (delta < C || delta + C > stride) return false;
    if (other >= 0 && delta < other + C && other < delta + C) return false;
    *offset = delta;
    return true;
}

static size_t aligned_floats(size_t floats) { return (floats + 63) / 64 * 64; }

static widened_layout layout_of(const uint16_t *q, const uint16_t *k, const uint16_t *v, int stride, size_t rows,
                                int C, bool with_out) {
    widened_layout l;
    const size_t span = (rows - 1) * (size_t)stride + (size_t)C; /* one matrix's floats */
    long long k_off = -1, v_off = -1;
    const bool k_shares = shares_rows(q, k, C, stride, -1, &k_off);
    const bool v_shares = shares_rows(q, v, C, stride, k_off, &v_off);
    /* q's block reaches the last shared matrix's last row */
    size_t end = span;
    if (k_shares) end = end > span + (size_t)k_off ? end : span + (size_t)k_off;
    if (v_shares) end = end > span + (size_t)v_off ? end : span + (size_t)v_off;
    /* Blocks of their own start 256 bytes aligned, as cudaMalloc's do: the
     * batched GEMMs then take the path (pointer arrays or strided batches,
     * matrices_aligned in gemm_batched.cu) and cuBLAS the kernels they would
     * take on freshly allocated fp32 buffers. */
    end = aligned_floats(end);
    l.k_at = k_shares ? (size_t)k_off : end;
    if (!k_shares) end = aligned_floats(end + span);
    l.v_at = v_shares ? (size_t)v_off : end;
    if (!v_shares) end = aligned_floats(end + span);
    l.out_at = end;
    l.end = end + (with_out ? rows * (size_t)C : 0);
    return l;
}

/* The workspace, at least `floats` long, or NULL with a failure kept. */
static float *widened_workspace(lm_cuda_ctx *ctx, const char *op, size_t floats) {
    lm_attention_widened *w = ctx->attention_widened;
    if (w && w->capacity >= floats) return w->memory;
    char reason[240];
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(ctx->stream, &capture) == cudaSuccess && capture != cudaStreamCaptureStatusNone) {
        snprintf(reason, sizeof reason,
                 "its fp32 workspace for the widened q/k/v holds %zu floats and this shape needs %zu: run one step "
                 "of this shape before capturing (memory cannot be allocated during a capture)",
                 w ? w->capacity : (size_t)0, floats);
        lm_cuda_ctx_keep_error(ctx, op, reason);
        return NULL;
    }
    if (!w) {
        w = (lm_attention_widened *)calloc(1, sizeof *w);
        if (!w) {
            lm_cuda_ctx_keep_error(ctx, op, "out of host memory for the widened q/k/v's bookkeeping");
            return NULL;
        }
        ctx->attention_widened = w;
    }
    if (w->memory) {
        /* queued work (and any graph recorded over it) may read the old block */
        if (lm_cuda_keep_cuda(ctx, op, cudaStreamSynchronize(ctx->stream))) return NULL;
        lm_cuda_gemm_pointer_arrays_free(ctx);
        cudaFree(w->memory);
        w->memory = NULL;
        w->capacity = 0;
    }
    if (cudaMalloc((void **)&w->memory, floats * sizeof(float)) != cudaSuccess) {
        (void)cudaGetLastError();
        w->memory = NULL;
        snprintf(reason, sizeof reason,
                 "out of GPU memory for the widened q/k/v (%zu MiB): use the fused attention "
                 "(attn_implementation=sdpa), which needs no workspace, or a smaller batch",
                 (floats * sizeof(float)) >> 20);
        lm_cuda_ctx_keep_error(ctx, op, reason);
        return NULL;
    }
    w->capacity = floats;
    return w->memory;
}

/* Widens q, k, v into the workspace; returns it (NULL after a kept failure). */
static float *widen_qkv(lm_cuda_ctx *ctx, const char *op, const widened_layout &l, const uint16_t *q,
                        const uint16_t *k, const uint16_t *v, int stride, size_t rows, int C) {
    float *ws = widened_workspace(ctx, op, l.end);
    if (!ws) return NULL;
    const unsigned grid = lm_cuda_grid_for(rows * (size_t)C, LM_CUDA_BLOCK);
    lm_widen_rows_kernel<<<grid, LM_CUDA_BLOCK, 0, ctx->stream>>>(ws, q, rows, C, stride);
    lm_widen_rows_kernel<<<grid, LM_CUDA_BLOCK, 0, ctx->stream>>>(ws + l.k_at, k, rows, C, stride);
    lm_widen_rows_kernel<<<grid, LM_CUDA_BLOCK, 0, ctx->stream>>>(ws + l.v_at, v, rows, C, stride);
    lm_cuda_check_launch(ctx, op);
    return ws;
}

/* The key rule of attention.cu, checked here so that the failure names this op. */
static bool key_missing(lm_cuda_ctx *ctx, const char *op, float dropout_p, const lm_step_state *key) {
    if (!(dropout_p > 0.0f && dropout_p < 1.0f) || key) return false;
    char reason[160];
    snprintf(reason, sizeof reason, "dropout p=%g needs the step state (its key), and none was given",
             (double)dropout_p);
    lm_cuda_ctx_keep_error(ctx, op, reason);
    return true;
}

extern "C" void lm_cuda_attention_forward_bf16(lm_cuda_ctx *ctx, uint16_t *out, float *preatt, float *att,
                                               const uint16_t *q, const uint16_t *k, const uint16_t *v, int stride,
                                               const int32_t *key_mask, int causal, int B, int T, int C, int NH,
                                               float dropout_p, const lm_step_state *key, int site) {
    const char *op = "attention_forward_bf16";
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0 || key_missing(ctx, op, dropout_p, key)) return;
    const size_t rows = (size_t)B * (size_t)T;
    const widened_layout l = layout_of(q, k, v, stride, rows, C, true);
    float *ws = widen_qkv(ctx, op, l, q, k, v, stride, rows, C);
    if (!ws) return;
    lm_cuda_attention_forward(ctx, ws + l.out_at, preatt, att, ws, ws + l.k_at, ws + l.v_at, stride, key_mask, causal,
                              B, T, C, NH, dropout_p, key, site);
    lm_cuda_convert_to_bf16(ctx, out, ws + l.out_at, rows * (size_t)C);
}

extern "C" void lm_cuda_attention_backward_bf16(lm_cuda_ctx *ctx, float *dq, float *dk, float *dv, float *scratch,
                                                const float *dout, const float *preatt, const float *att,
                                                const uint16_t *q, const uint16_t *k, const uint16_t *v, int stride,
                                                int B, int T, int C, int NH, float dropout_p,
                                                const lm_step_state *key, int site) {
    const char *op = "attention_backward_bf16";
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    const size_t rows = (size_t)B * (size_t)T;
    const widened_layout l = layout_of(q, k, v, stride, rows, C, false);
    float *ws = widen_qkv(ctx, op, l, q, k, v, stride, rows, C);
    if (!ws) return;
    lm_cuda_attention_backward(ctx, dq, dk, dv, scratch, dout, preatt, att, ws, ws + l.k_at, ws + l.v_at, stride, B,
                               T, C, NH, dropout_p, key, site);
}
