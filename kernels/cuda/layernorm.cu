/* LayerNorm over the last dimension, one warp per row (rows of a few
 * thousand floats stay in L1 across the passes); the forward also with a
 * bf16 output (layernorm_forward_bf16: layernorm_row.cuh).  Backward in
 * one pass over dout and inp: each warp writes its rows' dinp and adds
 * their dweight/dbias contributions into its own shared-memory row; the
 * block adds its warps' rows in warp order into a per-chunk partial, and a
 * column pass adds the chunks in order (deterministic, no atomics).  Rows
 * too wide for the shared memory (C > 1536) take the two-kernel path: dinp
 * per row, then the column reduction reading dout and inp again. */
#include "column_reduce.cuh"
#include "layernorm_row.cuh"

#define LM_LN_ROWS_PER_BLOCK (LM_CUDA_BLOCK / 32)

/* One warp's row of the forward, into `out` of any stored type(s)
 * (layernorm_row.cuh's lm_ln_out). */
template <typename Out>
__device__ __forceinline__ void layernorm_forward_warp_row(Out out, float *mean, float *rstd, const float *inp,
                                                           const float *weight, const float *bias, int N, int C,
                                                           float eps) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * LM_LN_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= N) return;
    const float *x = inp + (size_t)row * C;
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) sum += x[c];
    lm_layernorm_row(out.row((size_t)row * C), mean, rstd, x, weight, bias, C, eps, sum, lane, row);
}

/* The fp32 op's kernel keeps its name and parameters (and its machine
 * code: NOTES_bf16_storage.md, point 10). */
__global__ void lm_layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp,
                                            const float *weight, const float *bias, int N, int C, float eps) {
    layernorm_forward_warp_row(lm_ln_out<float>{out}, mean, rstd, inp, weight, bias, N, C, eps);
}

/* layernorm_forward_bf16: Out is lm_ln_out<uint16_t> (bf16 only) or
 * lm_ln_out_fp32_bf16 (both). */
template <typename Out>
__global__ void lm_layernorm_forward_bf16_kernel(Out out, float *mean, float *rstd, const float *inp,
                                                 const float *weight, const float *bias, int N, int C, float eps) {
    layernorm_forward_warp_row(out, mean, rstd, inp, weight, bias, N, C, eps);
}

/* The second half of one row's input gradient, shared by the two backward
 * kernels so that both give the same bits: from each lane's Σ g and Σ g·x̂
 * over its columns (g = dout·weight), dx[c] = (g - mean(g) - x̂·mean(g·x̂))
 * · rstd, added to dx or written (write_dinp). */
__device__ __forceinline__ void layernorm_row_dinp(float *dx, const float *x, const float *dy, const float *weight,
                                                   float m, float s, int C, float g_sum, float gx_sum, int lane,
                                                   bool write_dinp) {
    const float g_mean = lm_warp_sum(g_sum) / C;
    const float gx_mean = lm_warp_sum(gx_sum) / C;
    for (int c = lane; c < C; c += 32) {
        const float xhat = (x[c] - m) * s;
        const float g = weight[c] * dy[c];
        dx[c] = (write_dinp ? 0.0f : dx[c]) + (g - g_mean - xhat * gx_mean) * s;
    }
}

/* dinp += (g - mean(g) - x̂·mean(g·x̂)) · rstd with g = dout·weight, or
 * written (write_dinp): added onto a 0 that is not read, zeroing then
 * adding's bits (the CPU's rule, kernels/cpu/layernorm.c). */
__global__ void lm_layernorm_backward_input_kernel(float *dinp, const float *dout, const float *inp,
                                                   const float *weight, const float *mean, const float *rstd, int N,
                                                   int C, bool write_dinp) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * LM_LN_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= N) return;
    const float *x = inp + (size_t)row * C;
    const float *dy = dout + (size_t)row * C;
    const float m = mean[row], s = rstd[row];
    float g_sum = 0.0f, gx_sum = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float xhat = (x[c] - m) * s;
        const float g = weight[c] * dy[c];
        g_sum += g;
        gx_sum += g * xhat;
    }
    layernorm_row_dinp(dinp + (size_t)row * C, x, dy, weight, m, s, C, g_sum, gx_sum, lane, write_dinp);
}

/* The fused backward's shape: 4 warps per block, each with 2·C floats of
 * shared memory (48 KiB, the default limit, holds C = 1536), and chunks of
 * LM_LN_BACKWARD_CHUNK_ROWS rows (a function of N only, so the sums are
 * the same on every GPU). */
#define LM_LN_BACKWARD_WARPS 4
#define LM_LN_BACKWARD_MAX_SHARED (48 * 1024)
#define LM_LN_BACKWARD_CHUNK_ROWS 32

/* One chunk of rows per block; warp w takes rows begin + w, + 4, ...
 * dinp (when not NULL) += or = as lm_layernorm_backward_input_kernel; the
 * chunk's Σ dout·x̂ and Σ dout per column go to partial[chunk][0|1][c], or,
 * with one chunk (partial NULL), are added to (or written as: write_params)
 * dweight/dbias directly. */
__global__ void lm_layernorm_backward_fused_kernel(float *dinp, float *dweight, float *dbias, float *partial,
                                                   const float *dout, const float *inp, const float *weight,
                                                   const float *mean, const float *rstd, int N, int C,
                                                   bool write_dinp, bool write_params) {
    extern __shared__ float warp_sums[]; /* [warps][2][C] */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float *acc_w = warp_sums + (size_t)warp * 2 * C, *acc_b = acc_w + C;
    for (int c = lane; c < C; c += 32) acc_w[c] = acc_b[c] = 0.0f;
    const int begin = blockIdx.x * LM_LN_BACKWARD_CHUNK_ROWS, end = min(N, begin + LM_LN_BACKWARD_CHUNK_ROWS);
    for (int row = begin + warp; row < end; row += LM_LN_BACKWARD_WARPS) {
        const float *x = inp + (size_t)row * C;
        const float *dy = dout + (size_t)row * C;
        const float m = mean[row], s = rstd[row];
        float g_sum = 0.0f, gx_sum = 0.0f;
        for (int c = lane; c < C; c += 32) {
            const float xhat = (x[c] - m) * s;
            const float g = weight[c] * dy[c];
            g_sum += g;
            gx_sum += g * xhat;
            /* Each lane owns its columns of its warp's row: no races. */
            acc_w[c] += dy[c] * xhat;
            acc_b[c] += dy[c];
        }
        if (dinp) layernorm_row_dinp(dinp + (size_t)row * C, x, dy, weight, m, s, C, g_sum, gx_sum, lane, write_dinp);
    }
    __syncthreads();
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float w_total = 0.0f, b_total = 0.0f;
        for (int w = 0; w < LM_LN_BACKWARD_WARPS; w++) {
            w_total += warp_sums[(size_t)w * 2 * C + c];
            b_total += warp_sums[(size_t)w * 2 * C + C + c];
        }
        if (partial) {
            partial[((size_t)blockIdx.x * 2 + 0) * C + c] = w_total;
            partial[((size_t)blockIdx.x * 2 + 1) * C + c] = b_total;
        } else {
            if (dweight) dweight[c] = (write_params ? 0.0f : dweight[c]) + w_total;
            if (dbias) dbias[c] = (write_params ? 0.0f : dbias[c]) + b_total;
        }
    }
}

/* Whether the one-pass backward applies: the warps' rows fit the shared
 * memory and the chunks' partials the context's scratch. */
static int fused_backward_fits(const lm_cuda_ctx *ctx, int N, int C, int *chunks) {
    const size_t shared = (size_t)LM_LN_BACKWARD_WARPS * 2 * (size_t)C * sizeof(float);
    *chunks = (N + LM_LN_BACKWARD_CHUNK_ROWS - 1) / LM_LN_BACKWARD_CHUNK_ROWS;
    return shared <= LM_LN_BACKWARD_MAX_SHARED && (size_t)*chunks * 2 * (size_t)C * sizeof(float) <= ctx->scratch_bytes;
}

/* Column values for dweight (dout·x̂) and dbias (dout). */
struct lm_layernorm_param_grads {
    const float *dout, *inp, *mean, *rstd;
    int C;
    __device__ void operator()(int r, int c, float (&v)[2]) const {
        const size_t i = (size_t)r * C + c;
        v[0] = dout[i] * ((inp[i] - mean[r]) * rstd[r]);
        v[1] = dout[i];
    }
};

extern "C" void lm_cuda_layernorm_forward(lm_cuda_ctx *ctx, float *out, float *mean, float *rstd, const float *inp,
                                          const float *weight, const float *bias, int N, int C, float eps) {
    if (N <= 0 || C <= 0) return;
    const int blocks = (N + LM_LN_ROWS_PER_BLOCK - 1) / LM_LN_ROWS_PER_BLOCK;
    lm_layernorm_forward_kernel<<<blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(out, mean, rstd, inp, weight, bias, N, C,
                                                                          eps);
    lm_cuda_check_launch(ctx, "layernorm_forward");
}

extern "C" void lm_cuda_layernorm_forward_bf16(lm_cuda_ctx *ctx, uint16_t *out_bf16, float *out, float *mean,
                                               float *rstd, const float *inp, const float *weight, const float *bias,
                                               int N, int C, float eps) {
    if (N <= 0 || C <= 0) return;
    const int blocks = (N + LM_LN_ROWS_PER_BLOCK - 1) / LM_LN_ROWS_PER_BLOCK;
    if (out)
        lm_layernorm_forward_bf16_kernel<lm_ln_out_fp32_bf16><<<blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(
            lm_ln_out_fp32_bf16{out, out_bf16}, mean, rstd, inp, weight, bias, N, C, eps);
    else
        lm_layernorm_forward_bf16_kernel<lm_ln_out<uint16_t>><<<blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(
            lm_ln_out<uint16_t>{out_bf16}, mean, rstd, inp, weight, bias, N, C, eps);
    lm_cuda_check_launch(ctx, "layernorm_forward_bf16");
}

extern "C" void lm_cuda_layernorm_backward(lm_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                           const float *dout, const float *inp, const float *weight,
                                           const float *mean, const float *rstd, int N, int C,
                                           lm_grad_store dinp_store, lm_grad_store dparam_store) {
    if (N <= 0 || C <= 0) return;
    const bool write_dinp = dinp_store == LM_GRAD_WRITE, write_params = dparam_store == LM_GRAD_WRITE;
    int chunks = 0;
    if (fused_backward_fits(ctx, N, C, &chunks)) {
        float *partial = chunks > 1 ? (float *)ctx->scratch : NULL;
        const size_t shared = (size_t)LM_LN_BACKWARD_WARPS * 2 * (size_t)C * sizeof(float);
        lm_layernorm_backward_fused_kernel<<<chunks, LM_LN_BACKWARD_WARPS * 32, shared, ctx->stream>>>(
            dinp, dweight, dbias, partial, dout, inp, weight, mean, rstd, N, C, write_dinp, write_params);
        if (partial && (dweight || dbias)) {
            lm_column_outputs<2> outs = {{dweight, dbias}, write_params};
            lm_column_finish_kernel<2><<<(C + LM_CUDA_BLOCK - 1) / LM_CUDA_BLOCK, LM_CUDA_BLOCK, 0, ctx->stream>>>(
                outs, partial, chunks, C);
        }
        lm_cuda_check_launch(ctx, "layernorm_backward");
        return;
    }
    if (dinp) {
        const int blocks = (N + LM_LN_ROWS_PER_BLOCK - 1) / LM_LN_ROWS_PER_BLOCK;
        lm_layernorm_backward_input_kernel<<<blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(dinp, dout, inp, weight, mean,
                                                                                     rstd, N, C, write_dinp);
        lm_cuda_check_launch(ctx, "layernorm_backward");
    }
    lm_column_outputs<2> outs = {{dweight, dbias}, write_params};
    lm_layernorm_param_grads value = {dout, inp, mean, rstd, C};
    lm_column_reduce<2>(ctx, "layernorm_backward (parameter gradients)", outs, value, N, C);
}
