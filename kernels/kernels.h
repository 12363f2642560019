/* lmcore kernels — the op library shared by architecture plugins.
 *
 * Each op has a CPU reference here (kernels/cpu/<op>.c) and a CUDA twin
 * (kernels/cuda/<op>.cu, declared in kernels_cuda.h) with the same name
 * after the prefix and the same arguments in the same order, preceded by an
 * lm_cuda_ctx (stream, BLAS handles, workspace).  Conventions (llm.c style):
 *   - outputs first, then inputs, then sizes, then options;
 *   - float32, row-major, contiguous unless a stride is given;
 *   - B batch, T positions, C channels, NH heads, V vocab, N = rows (B*T);
 *   - backward functions ACCUMULATE (+=) into every gradient they write,
 *     parameter and activation gradients alike: the caller zeroes them;
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

/* Number of threads the CPU kernels use (lmcore's pool, kernels/cpu/threads.c); 0 = one per core. */
void lm_cpu_set_threads(int n);

/* ---- embeddings --------------------------------------------------------- */
/* out[b,t,:] = wte[ids[b,t],:] + wpe[t,:] (+ wtt[type_ids[b,t],:] if wtt) */
void lm_cpu_embedding_forward(float *out, const int32_t *ids, const int32_t *type_ids, const float *wte,
                              const float *wpe, const float *wtt, int B, int T, int C);
/* dwte/dwpe/dwtt += scatter of dout (dwtt/type_ids may be NULL). */
void lm_cpu_embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                               const int32_t *type_ids, int B, int T, int C);

/* ---- layer norm ---------------------------------------------------------- */
/* mean/rstd: [N] saved for backward. */
void lm_cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                              const float *bias, int N, int C, float eps);
void lm_cpu_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, const float *mean, const float *rstd, int N, int C);

/* ---- linear (GEMM through BLAS) ------------------------------------------ */
/* out[N,OC] = inp[N,IC] · W + bias (bias may be NULL). */
void lm_cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                           int OC, lm_weight_layout layout);
/* dinp += dout·Wᵀ, dweight += (layout-wise) inpᵀ·dout, dbias += Σ dout.
 * dinp may be NULL (first layer); dbias may be NULL (no bias). */
void lm_cpu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int N, int IC, int OC, lm_weight_layout layout);

/* ---- attention ------------------------------------------------------------ */
/* Multi-head scaled dot-product attention.  q, k, v point at [B, T, *] rows
 * with a row stride of `stride` floats (GPT-2: q = qkv, k = qkv + C,
 * v = qkv + 2C, stride = 3C; BERT: three [B,T,C] buffers, stride = C).
 * out: [B, T, C].  att: [B, NH, T, T] probabilities after dropout, kept for
 * backward; preatt: [B, NH, T, T] probabilities before dropout.
 * key_mask: [B, T] (1 keep, 0 padding) or NULL.  causal: mask future keys.
 * dropout_p applies to the probabilities (Hugging Face attn_pdrop /
 * attention_probs_dropout_prob) with masks from (seed, stream).
 * Details both backends share: scores are scaled by 1/sqrt(C/NH); a hidden
 * key (future when causal, or key_mask 0) gets probability exactly 0, as
 * with Hugging Face's additive finfo.min mask, and a query with no visible
 * key at all gets 1/T on every one of the T keys (what softmax over equal
 * finfo.min scores gives; its backward is the ordinary softmax backward);
 * the dropout element index is the flat index into [B, NH, T, T]. */
void lm_cpu_attention_forward(float *out, float *preatt, float *att, const float *q, const float *k,
                              const float *v, int stride, const int32_t *key_mask, int causal, int B, int T,
                              int C, int NH, float dropout_p, uint64_t seed, uint64_t stream);
/* dq/dk/dv += (same strides as q/k/v); scratch: [B, NH, T, T] floats. */
void lm_cpu_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                               const float *preatt, const float *att, const float *q, const float *k,
                               const float *v, int stride, int B, int T, int C, int NH, float dropout_p,
                               uint64_t seed, uint64_t stream);

/* ---- pointwise ------------------------------------------------------------ */
/* approx_tanh = 1: GPT-2 "gelu_new"; 0: exact erf GELU (BERT "gelu"). */
void lm_cpu_gelu_forward(float *out, const float *inp, size_t n, int approx_tanh);
void lm_cpu_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n, int approx_tanh);
/* out = inp * keep / (1 - p), keep = uniform(seed, stream, i) >= p.  p = 0 copies. */
void lm_cpu_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed, uint64_t stream);
void lm_cpu_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed, uint64_t stream);
void lm_cpu_residual_forward(float *out, const float *a, const float *b, size_t n);
/* dst += src */
void lm_cpu_accumulate(float *dst, const float *src, size_t n);

/* ---- loss ------------------------------------------------------------------- */
/* losses[i] = -log softmax(logits[i,:])[labels[i]], or 0 where labels[i] is
 * LM_IGNORE_INDEX (-100).  Returns the sum over scored rows (double). */
double lm_cpu_crossentropy_forward(float *losses, const float *logits, const int32_t *labels, int N, int V);
/* dlogits += dloss * (softmax(logits) - onehot(label)) for scored rows;
 * dlogits may alias logits (in-place, overwrites it: unscored rows become 0). */
void lm_cpu_crossentropy_backward(float *dlogits, const float *logits, const int32_t *labels, float dloss, int N,
                                  int V);

/* ---- reductions ------------------------------------------------------------ */
/* Σ x² in double (global grad norm = sqrt of the sum over buffers), in
 * fixed chunks summed in order: the same for any thread count. */
double lm_cpu_sum_squares(const float *x, size_t n);
/* Σ x in double, in index order. */
double lm_cpu_sum(const float *x, size_t n);
/* *out = (float)(lm_cpu_sum(losses, n) / count): the batch's mean loss. */
void lm_cpu_loss_mean(float *out, const float *losses, size_t n, int64_t count);

/* ---- the device side of a training step (lmcore/device.h, step.h) --------- */
void lm_cpu_step_micro_batch_end(lm_step_state *s, double num, double den, int scored);
void lm_cpu_step_clip(lm_step_state *s, const float *grads, size_t n);
void lm_cpu_step_schedule(lm_step_state *s);
void lm_cpu_step_finish(lm_step_state *s);

/* ---- incremental decoding (key/value cache, one sequence) ----------------- */
/* Appends n positions to a cache: k_cache[pos+i, :] = k[i*stride .. +C) and
 * v_cache[pos+i, :] = v[i*stride .. +C) for i < n.  The caches are
 * [max_tokens, C] rows (row stride C); k, v point at [n, *] rows `stride`
 * floats apart (GPT-2: k = qkv + C, v = qkv + 2C, stride = 3C). */
void lm_cpu_kv_cache_append(float *k_cache, float *v_cache, const float *k, const float *v, int stride, int pos,
                            int n, int C);
/* Causal multi-head attention of the n queries at positions pos..pos+n-1
 * (q: [n, *] rows `stride` floats apart) over the pos+n cached keys and
 * values (k_cache, v_cache: rows C apart, filled up to row pos+n-1): query i
 * sees keys 0..pos+i, as row pos+i of lm_cpu_attention_forward with
 * causal = 1, no key mask and no dropout.  out: [n, C].  att: [NH, n, pos+n]
 * probabilities (hidden keys exactly 0); the scores are computed in place
 * there, so it is also the op's scratch. */
void lm_cpu_attention_cached_forward(float *out, float *att, const float *q, const float *k_cache,
                                     const float *v_cache, int stride, int pos, int n, int C, int NH);
/* lm_cpu_matmul_forward's result for a few rows (a decoding step), as one
 * matrix-vector product per row: the weight is read in place, without the
 * packing a GEMM does (which costs more than the product when N is 1). */
void lm_cpu_matvec_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                           int OC, lm_weight_layout layout);

#ifdef __cplusplus
}
#endif
#endif
