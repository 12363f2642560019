/* Column-major GEMMs for the linear layers (cuBLASLt, bias in the epilogue)
 * in the context's precision (attention's batched GEMMs: gemm_batched.cu).
 *
 * cuBLASLt assumes 256-byte aligned matrices unless told otherwise; our
 * tensors are slices of flat buffers (q = qkv + C, parameters carved from one
 * allocation), so the real alignment of every pointer is passed as a
 * preference, and a pointer cuBLASLt cannot serve falls back to cuBLAS. */
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "gemm.cuh"

/* Largest power of two (up to 256) dividing the address. */
static uint32_t pointer_alignment(const void *p) {
    uintptr_t address = (uintptr_t)p;
    uint32_t alignment = 1;
    while (alignment < 256 && (address & (2u * alignment - 1u)) == 0) alignment *= 2;
    return alignment;
}

/* The storage types of a GEMM (gemm_key.types). */
enum { LM_GEMM_F32 = 0, LM_GEMM_BF16_TO_F32 = 1, LM_GEMM_BF16_TO_BF16 = 2 };

static cudaDataType_t ab_type_of(int32_t types) { return types == LM_GEMM_F32 ? CUDA_R_32F : CUDA_R_16BF; }
static cudaDataType_t c_type_of(int32_t types) { return types == LM_GEMM_BF16_TO_BF16 ? CUDA_R_16BF : CUDA_R_32F; }
/* bf16 storage computes in true fp32 (CUBLAS_COMPUTE_32F), whatever the
 * context's precision: the inputs are bf16 already, and a FAST_16BF or
 * TF32 compute type would only round the products again. */
static cublasComputeType_t compute_type_of(const lm_cuda_ctx *ctx, int32_t types) {
    return types == LM_GEMM_F32 ? lm_cuda_compute_type(ctx) : CUBLAS_COMPUTE_32F;
}

/* C[i + j·ldc] = (beta == 0 ? 0 : beta·C) + (bias ? bias[i] : 0) for i < m, j < n
 * (beta == 0 never reads C, as in cuBLAS). */
__global__ void lm_scale_add_bias_kernel(float *C, const float *bias, float beta, int m, int n, int ldc) {
    const size_t total = (size_t)m * n;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
        const int i = (int)(e % m);
        const size_t j = e / m;
        float *c = C + i + j * ldc;
        *c = (beta == 0.0f ? 0.0f : beta * *c) + (bias ? bias[i] : 0.0f);
    }
}

static void scale_add_bias(lm_cuda_ctx *ctx, const char *op, float *C, const float *bias, float beta, int m, int n,
                           int ldc) {
    const size_t total = (size_t)m * n;
    lm_scale_add_bias_kernel<<<lm_cuda_grid_for(total, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(C, bias, beta, m,
                                                                                                       n, ldc);
    lm_cuda_check_launch(ctx, op);
}

static void gemm_cublas(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                        const void *A, int lda, const void *B, int ldb, float beta, void *C, int ldc,
                        int32_t types) {
    lm_cuda_keep_cublas(ctx, op,
                        cublasGemmEx(ctx->blas, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     m, n, k, &alpha, A, ab_type_of(types), lda, B, ab_type_of(types), ldb, &beta, C,
                                     c_type_of(types), ldc, compute_type_of(ctx, types), CUBLAS_GEMM_DEFAULT));
}

/* What decides a cuBLASLt plan: every field is an int, so keys compare
 * with memcmp (no padding).  Alpha, beta and the pointers' values are given
 * at each call; the bias pointer is set on the plan's descriptor per call. */
typedef struct gemm_key {
    int32_t trans_a, trans_b, m, n, k, lda, ldb, ldc, has_bias;
    uint32_t align_a, align_b, align_c;
    /* An epilogue with an aux matrix of leading dimension aux_ld (its
     * pointer set per call): GELU in the forward, the pre-GELU values
     * written to aux; or the GELU gradient in the backward, aux read. */
    int32_t aux_epilogue, aux_ld;
    /* The storage types (gemm_types): fp32 everywhere in the context's
     * compute type, or bf16 A and B in true fp32 compute with a bf16 or
     * fp32 C (the bf16 classifier, lm_cuda_gemm_bf16). */
    int32_t types;
} gemm_key;

/* gemm_key.aux_epilogue: the epilogues besides the bias's.  GELU_AUX,
 * DGELU and DGELU_BGRAD have an aux matrix; BGRADA/BGRADB write a bias
 * gradient (the row sums of op(A), the column sums of op(B), over k) to the
 * bias pointer, DGELU_BGRAD the row sums of D (over n). */
enum {
    LM_GEMM_NO_AUX = 0,
    LM_GEMM_GELU_AUX = 1,
    LM_GEMM_DGELU = 2,
    LM_GEMM_BGRADA = 3,
    LM_GEMM_BGRADB = 4,
    LM_GEMM_DGELU_BGRAD = 5
};

static bool is_bias_gradient(int32_t aux_epilogue) {
    return aux_epilogue == LM_GEMM_BGRADA || aux_epilogue == LM_GEMM_BGRADB;
}

struct lm_gemm_plan {
    gemm_key key;
    int usable; /* 0: cuBLASLt has no algorithm for this key: use cuBLAS */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a_layout, b_layout, c_layout;
    cublasLtMatmulAlgo_t algo;
};

/* Enough for GPT-2 and BERT training, evaluation and decoding together;
 * shapes beyond it get a plan built and released per call, as before. */
#define LM_CUDA_GEMM_PLANS 256

static void plan_release(lm_gemm_plan *p) {
    if (p->c_layout) cublasLtMatrixLayoutDestroy(p->c_layout);
    if (p->b_layout) cublasLtMatrixLayoutDestroy(p->b_layout);
    if (p->a_layout) cublasLtMatrixLayoutDestroy(p->a_layout);
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    p->desc = NULL;
    p->a_layout = p->b_layout = p->c_layout = NULL;
}

void lm_cuda_gemm_plans_free(lm_cuda_ctx *ctx) {
    for (int i = 0; i < ctx->n_gemm_plans; i++) plan_release(&ctx->gemm_plans[i]);
    free(ctx->gemm_plans);
    ctx->gemm_plans = NULL;
    ctx->n_gemm_plans = 0;
}

/* Builds the descriptor, layouts and heuristic algorithm for p->key.
 * Returns 0 (p->usable says whether cuBLASLt has an algorithm) or -1 on a
 * kept failure; on -1 the caller releases p. */
static int plan_build(lm_cuda_ctx *ctx, const char *op, lm_gemm_plan *p) {
    const gemm_key *key = &p->key;
    const int32_t op_a = key->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int32_t op_b = key->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const uint64_t workspace_bytes = ctx->lt_workspace_bytes;
    const int m = key->m, n = key->n, k = key->k;
    cublasLtMatmulPreference_t preference = NULL;
    int result = -1;
#define LT_TRY(call)                                                                                               \
    do {                                                                                                           \
        if (lm_cuda_keep_cublas(ctx, op, (call))) goto done;                                                       \
    } while (0)
    LT_TRY(cublasLtMatmulDescCreate(&p->desc, compute_type_of(ctx, key->types), CUDA_R_32F));
    LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a));
    LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b));
    if (key->has_bias || key->aux_epilogue != LM_GEMM_NO_AUX) {
        /* DGELU never has a bias: lm_cuda_gemm_dgelu passes none.  The
         * "bias" of BGRADA/B and DGELU_BGRAD is their output, a bias
         * gradient that they overwrite (lm_cuda_gemm_bgrad, _dgelu). */
        const uint32_t epilogue = key->aux_epilogue == LM_GEMM_DGELU         ? CUBLASLT_EPILOGUE_DGELU
                                  : key->aux_epilogue == LM_GEMM_DGELU_BGRAD ? CUBLASLT_EPILOGUE_DGELU_BGRAD
                                  : key->aux_epilogue == LM_GEMM_BGRADA      ? CUBLASLT_EPILOGUE_BGRADA
                                  : key->aux_epilogue == LM_GEMM_BGRADB      ? CUBLASLT_EPILOGUE_BGRADB
                                  : key->aux_epilogue == LM_GEMM_NO_AUX      ? CUBLASLT_EPILOGUE_BIAS
                                  : key->has_bias                            ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS
                                                                             : CUBLASLT_EPILOGUE_GELU_AUX;
        LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
        if (key->types != LM_GEMM_F32) {
            /* An fp32 bias (BERT's decoder bias, a parameter) added before C's
             * rounding; the default would be C's type. */
            const int32_t bias_type = CUDA_R_32F;
            LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                  sizeof bias_type));
        }
    }
    if (key->aux_epilogue != LM_GEMM_NO_AUX && !is_bias_gradient(key->aux_epilogue)) {
        const int64_t aux_ld = key->aux_ld;
        LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld));
    }
    LT_TRY(cublasLtMatrixLayoutCreate(&p->a_layout, ab_type_of(key->types), key->trans_a ? k : m,
                                      key->trans_a ? m : k, key->lda));
    LT_TRY(cublasLtMatrixLayoutCreate(&p->b_layout, ab_type_of(key->types), key->trans_b ? n : k,
                                      key->trans_b ? k : n, key->ldb));
    LT_TRY(cublasLtMatrixLayoutCreate(&p->c_layout, c_type_of(key->types), m, n, key->ldc));
    LT_TRY(cublasLtMatmulPreferenceCreate(&preference));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                                sizeof workspace_bytes));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key->align_a,
                                                sizeof key->align_a));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key->align_b,
                                                sizeof key->align_b));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key->align_c,
                                                sizeof key->align_c));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key->align_c,
                                                sizeof key->align_c));
    {
        /* "Not supported" here just means no algorithm: fall back quietly. */
        cublasLtMatmulHeuristicResult_t heuristic;
        int found = 0;
        cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(ctx->lt, p->desc, p->a_layout, p->b_layout,
                                                               p->c_layout, p->c_layout, preference, 1, &heuristic,
                                                               &found);
        p->usable = status == CUBLAS_STATUS_SUCCESS && found > 0;
        if (p->usable) p->algo = heuristic.algo;
    }
    result = 0;
#undef LT_TRY
done:
    if (preference) cublasLtMatmulPreferenceDestroy(preference);
    return result;
}

/* Returns 1 when cuBLASLt queued the product, 0 when it has no algorithm
 * for these pointers (the caller falls back), -1 on a kept failure. */
static int gemm_lt(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                   const void *A, int lda, const void *B, int ldb, float beta, void *C, int ldc, const float *bias,
                   int aux_epilogue, const void *aux, int aux_ld, int32_t types) {
    gemm_key key;
    memset(&key, 0, sizeof key);
    key.types = types;
    key.trans_a = trans_a, key.trans_b = trans_b, key.m = m, key.n = n, key.k = k;
    key.lda = lda, key.ldb = ldb, key.ldc = ldc, key.has_bias = bias != NULL;
    key.aux_epilogue = aux || is_bias_gradient(aux_epilogue) ? aux_epilogue : LM_GEMM_NO_AUX;
    key.aux_ld = aux ? aux_ld : 0;
    key.align_a = pointer_alignment(A), key.align_b = pointer_alignment(B), key.align_c = pointer_alignment(C);

    lm_gemm_plan *plan = NULL, temporary;
    for (int i = 0; i < ctx->n_gemm_plans && !plan; i++)
        if (memcmp(&ctx->gemm_plans[i].key, &key, sizeof key) == 0) plan = &ctx->gemm_plans[i];
    if (!plan) {
        if (!ctx->gemm_plans) ctx->gemm_plans = (lm_gemm_plan *)calloc(LM_CUDA_GEMM_PLANS, sizeof *ctx->gemm_plans);
        plan = ctx->gemm_plans && ctx->n_gemm_plans < LM_CUDA_GEMM_PLANS ? &ctx->gemm_plans[ctx->n_gemm_plans]
                                                                         : &temporary;
        memset(plan, 0, sizeof *plan);
        plan->key = key;
        if (plan_build(ctx, op, plan) != 0) {
            plan_release(plan);
            return -1;
        }
        if (plan != &temporary) ctx->n_gemm_plans++;
    }
    int result = 0;
    if (plan->usable) {
        cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
        if (bias)
            status = cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
        if (aux && status == CUBLAS_STATUS_SUCCESS)
            status = cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux,
                                                    sizeof aux);
        if (status == CUBLAS_STATUS_SUCCESS)
            status = cublasLtMatmul(ctx->lt, plan->desc, &alpha, A, plan->a_layout, B, plan->b_layout, &beta, C,
                                    plan->c_layout, C, plan->c_layout, &plan->algo, ctx->lt_workspace,
                                    ctx->lt_workspace_bytes, ctx->stream);
        if (status == CUBLAS_STATUS_NOT_SUPPORTED) {
            /* Nothing was queued: fall back, now and for this key from now on. */
            plan->usable = 0;
        } else {
            result = lm_cuda_keep_cublas(ctx, op, status) ? -1 : 1;
        }
    }
    if (plan == &temporary) plan_release(&temporary);
    return result;
}

void lm_cuda_gemm(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                  const float *bias) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* empty product: C = beta·C (+ bias) */
        scale_add_bias(ctx, op, C, bias, beta, m, n, ldc);
        return;
    }
    /* The bias epilogue wants a 16-byte aligned vector. */
    const bool fuse_bias = bias && pointer_alignment(bias) >= 16;
    int done = gemm_lt(ctx, op, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc,
                       fuse_bias ? bias : NULL, LM_GEMM_NO_AUX, NULL, 0, LM_GEMM_F32);
    if (done < 0) return;
    if (done == 0) gemm_cublas(ctx, op, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, LM_GEMM_F32);
    /* cuBLAS has no bias epilogue: the fallback needs the bias kernel too. */
    if (bias && (!fuse_bias || done == 0)) scale_add_bias(ctx, op, C, bias, 1.0f, m, n, ldc);
}

/* lm_cuda_gemm_gelu and its bf16 twin: the aux matrix (pre_gelu) has C's
 * type, cuBLASLt's default (CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE
 * unset: "the type of the elements of the output matrix"). */
static int gemm_gelu_typed(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                           const void *A, int lda, const void *B, int ldb, void *C, int ldc, const float *bias,
                           void *pre_gelu, int32_t types) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    /* cuBLASLt's rules for the aux matrix (its leading dimension a multiple
     * of 8, 16-byte aligned) and ours for the bias epilogue. */
    if ((bias && pointer_alignment(bias) < 16) || pointer_alignment(pre_gelu) < 16 || ldc % 8 != 0) return 0;
    const int done = gemm_lt(ctx, op, trans_a, trans_b, m, n, k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, bias,
                             LM_GEMM_GELU_AUX, pre_gelu, ldc, types);
    return done < 0 ? -1 : done;
}

int lm_cuda_gemm_gelu(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                      const float *A, int lda, const float *B, int ldb, float *C, int ldc, const float *bias,
                      float *pre_gelu) {
    return gemm_gelu_typed(ctx, op, trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, bias, pre_gelu, LM_GEMM_F32);
}

int lm_cuda_gemm_gelu_bf16(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                           const uint16_t *A, int lda, const uint16_t *B, int ldb, uint16_t *C, int ldc,
                           const float *bias, uint16_t *pre_gelu) {
    return gemm_gelu_typed(ctx, op, trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, bias, pre_gelu,
                           LM_GEMM_BF16_TO_BF16);
}

/* lm_cuda_gemm_dgelu and its bf16 twin (the aux matrix read in C's type, as
 * in the forward; the bias gradient fp32, plan_build's BIAS_DATA_TYPE). */
static int gemm_dgelu_typed(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                            const void *A, int lda, const void *B, int ldb, void *C, int ldc, const void *pre_gelu,
                            float *bias_grad, int32_t types) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    /* The aux matrix's rules, as for the forward's; the bias vector's, as
     * for the bias epilogue. */
    if (pointer_alignment(pre_gelu) < 16 || ldc % 8 != 0) return 0;
    if (bias_grad && pointer_alignment(bias_grad) < 16) return 0;
    /* beta = 0: C (and the bias gradient) are written, never read (the op's contract). */
    const int done = gemm_lt(ctx, op, trans_a, trans_b, m, n, k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, bias_grad,
                             bias_grad ? LM_GEMM_DGELU_BGRAD : LM_GEMM_DGELU, pre_gelu, ldc, types);
    return done < 0 ? -1 : done;
}

int lm_cuda_gemm_dgelu(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                       const float *A, int lda, const float *B, int ldb, float *C, int ldc, const float *pre_gelu,
                       float *bias_grad) {
    return gemm_dgelu_typed(ctx, op, trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, pre_gelu, bias_grad,
                            LM_GEMM_F32);
}

int lm_cuda_gemm_dgelu_bf16(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                            const uint16_t *A, int lda, const uint16_t *B, int ldb, uint16_t *C, int ldc,
                            const uint16_t *pre_gelu, float *bias_grad) {
    return gemm_dgelu_typed(ctx, op, trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, pre_gelu, bias_grad,
                            LM_GEMM_BF16_TO_BF16);
}

int lm_cuda_gemm_bgrad(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                       const float *A, int lda, const float *B, int ldb, float *C, int ldc, bool of_a,
                       float *bias_grad) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    /* The bias vector's alignment, as for the bias epilogue. */
    if (pointer_alignment(bias_grad) < 16) return 0;
    /* beta = 0: C and the bias gradient are written, never read. */
    const int done = gemm_lt(ctx, op, trans_a, trans_b, m, n, k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, bias_grad,
                             of_a ? LM_GEMM_BGRADA : LM_GEMM_BGRADB, NULL, 0, LM_GEMM_F32);
    return done < 0 ? -1 : done;
}

/* C (bf16) = bf16(C·beta + bias) where the product is empty, or
 * bf16(C + bias) after a product that had no bias epilogue (C read back:
 * the bias then rounds a second time, documented at lm_cuda_gemm_bf16). */
__global__ void lm_bf16_bias_kernel(uint16_t *C, const float *bias, int add, int m, int n, int ldc) {
    const size_t total = (size_t)m * n;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
        const int i = (int)(e % m);
        uint16_t *c = C + i + (e / m) * ldc;
        *c = lm_bf16_from_float((add ? lm_bf16_to_float(*c) : 0.0f) + (bias ? bias[i] : 0.0f));
    }
}

void lm_cuda_gemm_bf16(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                       const uint16_t *A, int lda, const uint16_t *B, int ldb, float beta, void *C, bool c_bf16,
                       int ldc, const float *bias) {
    if (m <= 0 || n <= 0) return;
    const int32_t types = c_bf16 ? LM_GEMM_BF16_TO_BF16 : LM_GEMM_BF16_TO_F32;
    const unsigned grid = lm_cuda_grid_for((size_t)m * n, LM_CUDA_BLOCK);
    if (k <= 0) { /* empty product: C = beta·C (+ bias) */
        if (c_bf16) {
            lm_bf16_bias_kernel<<<grid, LM_CUDA_BLOCK, 0, ctx->stream>>>((uint16_t *)C, bias, beta != 0.0f, m, n, ldc);
            lm_cuda_check_launch(ctx, op);
        } else {
            scale_add_bias(ctx, op, (float *)C, bias, beta, m, n, ldc);
        }
        return;
    }
    const bool fuse_bias = bias && pointer_alignment(bias) >= 16;
    const int done = gemm_lt(ctx, op, trans_a, trans_b, m, n, k, 1.0f, A, lda, B, ldb, beta, C, ldc,
                             fuse_bias ? bias : NULL, LM_GEMM_NO_AUX, NULL, 0, types);
    if (done < 0) return;
    if (done == 0) gemm_cublas(ctx, op, trans_a, trans_b, m, n, k, 1.0f, A, lda, B, ldb, beta, C, ldc, types);
    if (bias && (!fuse_bias || done == 0)) {
        if (c_bf16) {
            lm_bf16_bias_kernel<<<grid, LM_CUDA_BLOCK, 0, ctx->stream>>>((uint16_t *)C, bias, 1, m, n, ldc);
            lm_cuda_check_launch(ctx, op);
        } else {
            scale_add_bias(ctx, op, (float *)C, bias, 1.0f, m, n, ldc);
        }
    }
}
