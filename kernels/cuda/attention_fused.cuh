/* Internal to kernels/cuda: what the fused attention's kernels share
 * (attention_fused_forward.cu, attention_fused_backward.cu).
 *
 * The algorithm and its rules are the CPU twin's (kernels/cpu/
 * attention_fused.c, where the file comment says why): FlashAttention-2
 * tiles of LM_FUSED_TILE queries x LM_FUSED_TILE keys in shared memory, an
 * online softmax, lse [B, NH, T] kept for backward (-inf on a query that
 * sees no key, whose probabilities are 1/T on every key), the dropout mask
 * of element (b, h, i, j) drawn at its flat [B, NH, T, T] index from the
 * step state's key.  fp32 FMAs on the CUDA cores (no tensor cores yet).
 *
 * Threads: a block of LM_FUSED_THREADS = 16 x 16 threads works on one
 * (batch row, head) pair and one tile.  Thread (ty, tx) = (tid / 16,
 * tid % 16) owns the score-tile elements of rows ty·4 + r (r < 4) and key
 * columns tx + 16·c (c < 4), and of a [64, head] tile the rows ty·4 + r and
 * head columns tx + 16·d (d < DPT, DPT·16 >= head size).  The 16 threads of
 * a row group are one half-warp, so a row's max and sum are four shuffles.
 * Shared-memory tiles of [64, head] have a row stride of head + 1: the 16
 * key rows a half-warp reads at one column fall in different banks.
 *
 * Stored types: the kernels are templates on S, the type q, k, v and out
 * are stored in: float (attention_fused_{forward,backward}) or bf16 as
 * uint16_t (the *_bf16 ops, NOTES_bf16_storage.md, point 9).  Every read of
 * q/k/v/out goes through act_storage.cuh's lm_load_act (bf16 widened
 * exactly as it enters shared memory) and the forward's out through
 * lm_store_act (rounded once); the arithmetic, lse, dout, D and dq/dk/dv
 * are fp32 in both, so the bf16 kernels compute what the fp32 kernels
 * compute on the widened values.  The float instantiations are the former
 * fp32 kernels' machine code (tests/gpu/emulate/
 * compare_attention_machine_code.sh). */
#ifndef LM_CUDA_ATTENTION_FUSED_CUH
#define LM_CUDA_ATTENTION_FUSED_CUH

#include <math.h>

#include "act_storage.cuh"
#include "cuda_common.cuh"
#include "lmcore/rng.h"

#define LM_FUSED_TILE 64
#define LM_FUSED_THREADS 256
#define LM_FUSED_MAX_HEAD 128
/* Row stride of a score-sized [64, 64] tile in shared memory. */
#define LM_FUSED_LDP (LM_FUSED_TILE + 1)

typedef enum lm_fused_drop { LM_FUSED_DROP_NONE = 0, LM_FUSED_DROP_SOME = 1, LM_FUSED_DROP_ALL = 2 } lm_fused_drop;

/* The arguments every fused kernel takes (by value); S is the stored type
 * of q, k, v (the layout is the same for both: three pointers first). */
template <typename S> struct lm_fused_args {
    const S *q, *k, *v;
    int stride; /* elements between the rows of q, k, v (and dq, dk, dv) */
    const int32_t *key_mask;
    int causal, T, C, NH, hd;
    float scale;     /* hd^-0.5 */
    int drop_mode;   /* lm_fused_drop */
    float dropout_p, keep_scale;
    const lm_step_state *key; /* read only with LM_FUSED_DROP_SOME */
    int site;
};

/* The first key of the batch row that key_mask shows (T when none, 0
 * without a mask), the same for every thread of the block.  `mask` is the
 * same for the whole block, so the early return does not split it at the
 * barriers. */
__device__ __forceinline__ int lm_fused_first_shown(const int32_t *mask, int T, int *shared_min) {
    if (!mask) return 0;
    if (threadIdx.x == 0) *shared_min = T;
    __syncthreads();
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        if (mask[j] != 0) {
            atomicMin(shared_min, j); /* an integer minimum: the same whatever the order */
            break;
        }
    }
    __syncthreads();
    return *shared_min;
}

/* Rows row0 .. row0+63 of a [T, hd] matrix (row t at base + t·ld) into a
 * shared fp32 tile of row stride hd + 1, widened from the stored type;
 * rows past T are zeros. */
template <typename S>
__device__ __forceinline__ void lm_fused_load_tile(float *tile, const S *base, int ld, int row0, int T, int hd) {
    const int ldt = hd + 1;
    for (int idx = threadIdx.x; idx < LM_FUSED_TILE * hd; idx += blockDim.x) {
        const int r = idx / hd, d = idx - r * hd, t = row0 + r;
        tile[r * ldt + d] = t < T ? lm_load_act(base + (size_t)t * ld + d) : 0.0f;
    }
}

/* s[r][c] = Σ_d A[ty·4 + r, d] · B[tx + 16c, d] over two shared tiles. */
__device__ __forceinline__ void lm_fused_tile_dots(float s[4][4], const float *A, const float *B, int hd, int ty,
                                                   int tx) {
    const int ldt = hd + 1;
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int c = 0; c < 4; c++) s[r][c] = 0.0f;
    for (int d = 0; d < hd; d++) {
        float a[4], b[4];
#pragma unroll
        for (int r = 0; r < 4; r++) a[r] = A[(ty * 4 + r) * ldt + d];
#pragma unroll
        for (int c = 0; c < 4; c++) b[c] = B[(tx + 16 * c) * ldt + d];
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int c = 0; c < 4; c++) s[r][c] = fmaf(a[r], b[c], s[r][c]);
    }
}

/* acc[r][d] += Σ_c P[ty·4 + r, c] · M[c, tx + 16d] over a tile: a
 * [64 × 64] tile of weights in shared memory (row stride LM_FUSED_LDP: the
 * probabilities in the forward, dS in the backward's dQ) times a tile of
 * the head's columns (M: V in the forward, K for dQ; row stride hd + 1),
 * each thread owning 4 rows × DPT columns; columns past hd add 0.
 * TRANSPOSED reads Pᵀ instead (P[c, ty·4 + r]): the backward's dV = Aᵀ·dO
 * and dK = dSᵀ·Q, whose rows are keys. */
template <int DPT, bool TRANSPOSED = false>
__device__ __forceinline__ void lm_fused_tile_accumulate(float (&acc)[4][DPT], const float *P, const float *M, int hd,
                                                         int ty, int tx) {
    const int ldt = hd + 1;
    for (int c = 0; c < LM_FUSED_TILE; c++) {
        float pv[4], mv[DPT];
#pragma unroll
        for (int r = 0; r < 4; r++)
            pv[r] = TRANSPOSED ? P[c * LM_FUSED_LDP + ty * 4 + r] : P[(ty * 4 + r) * LM_FUSED_LDP + c];
#pragma unroll
        for (int d = 0; d < DPT; d++) mv[d] = tx + 16 * d < hd ? M[c * ldt + tx + 16 * d] : 0.0f;
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int d = 0; d < DPT; d++) acc[r][d] = fmaf(pv[r], mv[d], acc[r][d]);
    }
}

/* Max and sum over the 16 threads of a row group (one half-warp; every
 * lane of the warp takes part). */
__device__ __forceinline__ float lm_fused_row_max(float v) {
    for (int offset = 8; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

__device__ __forceinline__ float lm_fused_row_sum(float v) {
    for (int offset = 8; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

/* keep/(1-p) of the element at flat index `index`: the draw and threshold
 * of dropout.cu and attention.cu (lm_rng_uniform >= p), 1 without dropout,
 * 0 when everything is dropped. */
template <typename S>
__device__ __forceinline__ float lm_fused_keep(const lm_fused_args<S> &a, lm_dropout_key dk, uint64_t index) {
    if (a.drop_mode == LM_FUSED_DROP_NONE) return 1.0f;
    if (a.drop_mode == LM_FUSED_DROP_ALL) return 0.0f;
    return lm_rng_uniform(dk.seed, dk.stream, index) >= a.dropout_p ? a.keep_scale : 0.0f;
}

/* One query row as the rules see it. */
struct lm_fused_row {
    int query;   /* index in [0, T); >= T: a padding row of the last tile */
    int visible; /* keys before this one may be shown (query + 1 when causal, else T) */
    bool uniform; /* sees no key: 1/T on every key */
};

template <typename S>
__device__ __forceinline__ lm_fused_row lm_fused_row_of(const lm_fused_args<S> &a, int query, int first_shown) {
    lm_fused_row row;
    row.query = query;
    row.visible = a.causal ? query + 1 : a.T;
    row.uniform = first_shown >= row.visible;
    return row;
}

/* Whether key j (key_shown: its mask bit, 0 past T) counts for the row. */
__device__ __forceinline__ bool lm_fused_shown(const lm_fused_row &row, int T, int j, int key_shown) {
    return row.query < T && j < T && (row.uniform || (j < row.visible && key_shown != 0));
}

/* One past the last key a query tile starting at `first` needs: under a
 * causal mask the keys after its last query, unless its first query sees
 * no key (then all T: the uniform row covers future keys too). */
template <typename S>
__device__ __forceinline__ int lm_fused_key_end(const lm_fused_args<S> &a, int first, int first_shown) {
    if (!a.causal || first_shown >= first + 1) return a.T;
    return min(a.T, first + LM_FUSED_TILE);
}

/* Floats of dynamic shared memory: `tiles` [64, hd] tiles and one [64, 64]. */
static inline size_t lm_fused_smem_bytes(int tiles, int hd) {
    return ((size_t)tiles * LM_FUSED_TILE * (size_t)(hd + 1) + (size_t)LM_FUSED_TILE * LM_FUSED_LDP) * sizeof(float);
}

/* Fills the arguments and says whether to launch: nothing for an empty
 * shape; a head size over LM_FUSED_MAX_HEAD, or dropout without a key, is
 * kept as the op's failure (the next check reports it).  Instantiated for
 * float and uint16_t in attention_fused_forward.cu. */
template <typename S>
int lm_fused_prepare(lm_cuda_ctx *ctx, const char *op, lm_fused_args<S> *a, const S *q, const S *k, const S *v,
                     int stride, const int32_t *key_mask, int causal, int B, int T, int C, int NH,
                     float dropout_p, const lm_step_state *key, int site);

/* Head columns per thread of the kernels' template (DPT·16 >= hd). */
static inline int lm_fused_columns_per_thread(int hd) { return hd <= 32 ? 2 : hd <= 64 ? 4 : 8; }

/* Raises a kernel's dynamic shared memory limit to `bytes` once (the
 * attribute stays set; the kernel of each template instance keeps its own
 * high-water mark).  Returns 0 after keeping the failure. */
int lm_fused_allow_smem(lm_cuda_ctx *ctx, const char *op, const void *kernel, size_t bytes, size_t *allowed);

#endif
