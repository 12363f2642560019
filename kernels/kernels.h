/* lmcore kernels — the op library shared by architecture plugins.
 *
 * The ops are listed once, in backend_ops.def, with their semantics; this
 * header declares their CPU references (kernels/cpu/<op>.c) from that list,
 * kernels_cuda.h their CUDA twins (kernels/cuda/<op>.cu: the same name
 * after the prefix and the same arguments in the same order, preceded by an
 * lm_cuda_ctx with the stream, BLAS handles and workspace), and backend.h
 * the backend table that calls them.  Conventions (llm.c style):
 *   - outputs first, then inputs, then sizes, then options;
 *   - float32, row-major, contiguous unless a stride is given;
 *   - B batch, T positions, C channels, NH heads, V vocab, N = rows (B*T);
 *   - backward functions add (+=) into gradients or write them (=): the
 *     parameter gradients of matmul/gelu_matmul/layernorm_backward as the
 *     caller asks (lm_grad_store: written on a step's first micro-batch),
 *     activation gradients as each op says (gelu_backward and
 *     dropout_backward write, matmul_backward and layernorm_backward write
 *     dinp when asked, gelu_matmul_backward writes its dinp;
 *     backend_ops.def lists which, and why);
 *   - dropout masks are a pure function of (seed, stream, element index)
 *     through lmcore/rng.h, identical on CPU and GPU; the backend table
 *     (backend.h) derives seed and stream from the step state.
 * Kernels do not fail: sizes are validated by the caller. */
#ifndef LM_KERNELS_H
#define LM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/step.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Weight layouts of a linear layer y = x W (+ b):
 *   LM_W_IN_OUT  — weight stored [IC, OC] (Hugging Face Conv1D, GPT-2)
 *   LM_W_OUT_IN  — weight stored [OC, IC] (torch.nn.Linear, BERT)        */
typedef enum lm_weight_layout { LM_W_IN_OUT = 0, LM_W_OUT_IN = 1 } lm_weight_layout;

/* How a backward op stores a gradient that the caller could either zero
 * first or not: LM_GRAD_ADD adds into it (+=: the gradient has another
 * share already there, e.g. a residual path's, or an earlier micro-batch's
 * parameter gradient), LM_GRAD_WRITE overwrites it (=: the op is its first
 * writer, so no zeroing pass is needed and whatever the buffer held, NaN
 * included, is never read). */
typedef enum lm_grad_store { LM_GRAD_ADD = 0, LM_GRAD_WRITE = 1 } lm_grad_store;

/* Number of threads the CPU kernels use (lmcore's pool, kernels/cpu/threads.c); 0 = one per core. */
void lm_cpu_set_threads(int n);

/* Strips the parentheses of an op's parameter or argument list in
 * backend_ops.def: LM_UNPAREN (int a, int b) is int a, int b. */
#define LM_UNPAREN(...) __VA_ARGS__

/* The CPU kernels of the ops in backend_ops.def (their semantics are
 * written there), the parameters as the list has them... */
#define LM_OP(name, params, args, profile_key) void lm_cpu_##name params;
#define LM_OP_CPU_ADAPTED(name, params, args, profile_key)
#define LM_OP_HOST_READ(name, params, args, profile_key)
#include "backend_ops.def"

/* ... and those whose arguments differ from the op's (LM_OP_CPU_ADAPTED).
 * Dropout, and attention's on the probabilities, takes the (seed, stream)
 * pair that the backend derives from the step state (backend_cpu.c): the
 * references stay pure functions of their arguments, as the tests want. */
void lm_cpu_attention_forward(float *out, float *preatt, float *att, const float *q, const float *k,
                              const float *v, int stride, const int32_t *key_mask, int causal, int B, int T,
                              int C, int NH, float dropout_p, uint64_t seed, uint64_t stream);
void lm_cpu_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                               const float *preatt, const float *att, const float *q, const float *k,
                               const float *v, int stride, int B, int T, int C, int NH, float dropout_p,
                               uint64_t seed, uint64_t stream);
/* The fused attention's CPU twin (attention_fused.c): tiled with an online
 * softmax like the CUDA kernels, so it too trains long blocks without the
 * [B, NH, T, T] buffers. */
void lm_cpu_attention_fused_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                                    int stride, const int32_t *key_mask, int causal, int B, int T, int C, int NH,
                                    float dropout_p, uint64_t seed, uint64_t stream);
void lm_cpu_attention_fused_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                                     const float *out, const float *lse, const float *q, const float *k,
                                     const float *v, int stride, const int32_t *key_mask, int causal, int B, int T,
                                     int C, int NH, float dropout_p, uint64_t seed, uint64_t stream);
void lm_cpu_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed, uint64_t stream);
void lm_cpu_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed, uint64_t stream);
void lm_cpu_residual_layernorm_forward(float *residual, float *out, float *mean, float *rstd, const float *a,
                                       const float *branch, const float *weight, const float *bias, int N, int C,
                                       float eps, float p, uint64_t seed, uint64_t stream);
/* Also returns the sum of the losses of the scored rows (double): the
 * tests compare it with torch's; the backend op leaves the sum to
 * loss_mean, as on the GPU. */
double lm_cpu_crossentropy_forward(float *losses, const float *logits, const int32_t *labels, int N, int V,
                                   int stride);
/* The loss gradient's ops take its parts (loss_scale and the scored count
 * on the device, backend_ops.def); the references take the scale dloss
 * itself, which the tests give as torch computes it. */
void lm_cpu_crossentropy_backward(float *dlogits, const float *logits, const int32_t *labels, float dloss, int N,
                                  int V, int stride);
void lm_cpu_crossentropy_forward_backward(float *losses, float *logits, const int32_t *labels, float dloss, int N,
                                          int V, int stride);

/* ---- the classifier in bf16 (backend_ops.def; bf16 values are uint16_t,
 * kernels/bf16.h).  References: the fp32 ops on the widened inputs, their
 * outputs rounded once.  They allocate scratch per call and return 0, or
 * -1 without memory (nothing written; the backend keeps a failure). ---- */
/* out[i] = widened in[i] (exact). */
void lm_cpu_widen_bf16(float *out, const uint16_t *in, size_t n);
int lm_cpu_matmul_forward_bf16(uint16_t *out, const uint16_t *inp, const uint16_t *weight, const float *bias, int N,
                               int IC, int OC, lm_weight_layout layout);
int lm_cpu_matmul_backward_bf16(float *dinp, float *dweight, float *dbias, const uint16_t *dout, const uint16_t *inp,
                                const uint16_t *weight, int N, int IC, int OC, lm_weight_layout layout,
                                lm_grad_store dinp_store, lm_grad_store dparam_store);
/* The feed-forward block in bf16 (backend_ops.def; gelu_*_bf16 allocate
 * nothing and are declared from the list). */
int lm_cpu_matmul_forward_bf16_to_fp32(float *out, const uint16_t *inp, const uint16_t *weight, const float *bias,
                                       int N, int IC, int OC, lm_weight_layout layout);
int lm_cpu_matmul_gelu_forward_bf16(uint16_t *out, uint16_t *pre_gelu, const uint16_t *inp, const uint16_t *weight,
                                    const float *bias, int N, int IC, int OC, lm_weight_layout layout);
int lm_cpu_gelu_matmul_backward_bf16(uint16_t *dpre_gelu, float *dweight, float *dbias, float *dbias_pre,
                                     const uint16_t *dout, const uint16_t *gelu_out, const uint16_t *pre_gelu,
                                     const uint16_t *weight, int N, int IC, int OC, lm_weight_layout layout,
                                     lm_grad_store dparam_store);
/* The attention block in bf16 (backend_ops.def): the fp32 ops' (seed,
 * stream) arguments, as theirs. */
int lm_cpu_attention_forward_bf16(uint16_t *out, float *preatt, float *att, const uint16_t *q, const uint16_t *k,
                                  const uint16_t *v, int stride, const int32_t *key_mask, int causal, int B, int T,
                                  int C, int NH, float dropout_p, uint64_t seed, uint64_t stream);
int lm_cpu_attention_backward_bf16(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                                   const float *preatt, const float *att, const uint16_t *q, const uint16_t *k,
                                   const uint16_t *v, int stride, int B, int T, int C, int NH, float dropout_p,
                                   uint64_t seed, uint64_t stream);
int lm_cpu_attention_fused_forward_bf16(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k,
                                        const uint16_t *v, int stride, const int32_t *key_mask, int causal, int B,
                                        int T, int C, int NH, float dropout_p, uint64_t seed, uint64_t stream);
int lm_cpu_attention_fused_backward_bf16(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                                         const uint16_t *out, const float *lse, const uint16_t *q, const uint16_t *k,
                                         const uint16_t *v, int stride, const int32_t *key_mask, int causal, int B,
                                         int T, int C, int NH, float dropout_p, uint64_t seed, uint64_t stream);
/* The LayerNorms' bf16 outputs (backend_ops.def; layernorm_bf16.c): 0, or
 * -1 without memory for the scratch of rows over 4096 channels without out
 * (nothing written).  mean/rstd may be NULL; the residual op takes the fp32
 * op's (seed, stream). */
int lm_cpu_layernorm_forward_bf16(uint16_t *out_bf16, float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int N, int C, float eps);
int lm_cpu_residual_layernorm_forward_bf16(float *residual, uint16_t *out_bf16, float *out, float *mean, float *rstd,
                                           const float *a, const float *branch, const float *weight,
                                           const float *bias, int N, int C, float eps, float p, uint64_t seed,
                                           uint64_t stream);
/* The losses (and the gradients' fp32 values before rounding) are the fp32
 * references' on the widened logits; dloss as theirs. */
int lm_cpu_crossentropy_forward_bf16(float *losses, const uint16_t *logits, const int32_t *labels, int N, int V,
                                     int stride);
int lm_cpu_crossentropy_backward_bf16(uint16_t *dlogits, const uint16_t *logits, const int32_t *labels, float dloss,
                                      int N, int V, int stride);
int lm_cpu_crossentropy_forward_backward_bf16(float *losses, uint16_t *logits, const int32_t *labels, float dloss,
                                              int N, int V, int stride);

/* ---- reductions (the host reads sum_to_host and sum_squares_to_host) ---- */
/* Σ x² in double (global grad norm = sqrt of the sum over buffers), in
 * fixed chunks summed in order: the same for any thread count. */
double lm_cpu_sum_squares(const float *x, size_t n);
/* Σ x in double, in index order. */
double lm_cpu_sum(const float *x, size_t n);

#ifdef __cplusplus
}
#endif
#endif
