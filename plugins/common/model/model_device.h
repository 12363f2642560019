/* Where and how an architecture plugin computes: the keys every
 * architecture takes besides its Hugging Face configuration (device,
 * precision, threads, profile_ops, recompute, attn_implementation,
 * pad_vocab_to_multiple_of, logits_dtype, activation_dtype), and the backend
 * they describe.
 *
 * Reading is split in two because of lm_config's rules: keys must be read
 * before lm_config_validate (reading is what makes a key known), and their
 * values can only be judged after it (a wrong type is reported first, by
 * the key's name). */
#ifndef LM_PLUGIN_MODEL_DEVICE_H
#define LM_PLUGIN_MODEL_DEVICE_H

#include "backend.h"
#include "lmcore/config.h"

/* What backward recomputes instead of keeping one buffer per layer (the
 * `recompute` key): memory for time, never results: each buffer is rebuilt
 * by the op that made it, on the same inputs, so the bits are the same. */
typedef enum model_recompute {
    MODEL_RECOMPUTE_NONE = 0,        /* "none": every layer keeps its activations (the fastest) */
    MODEL_RECOMPUTE_ACTIVATIONS = 1, /* "activations": GELU and LayerNorm outputs and the attention
                                        probabilities after dropout, one buffer each for all layers */
    MODEL_RECOMPUTE_ATTENTION = 2    /* "attention": also the probabilities before dropout, by running
                                        each layer's attention forward again (for long blocks) */
} model_recompute;

/* Which attention the model runs (the `attn_implementation` key, Hugging
 * Face's name for the choice; model_plugin.c decides per batch shape). */
typedef enum model_attention {
    MODEL_ATTENTION_AUTO = 0,  /* "auto": eager on the CPU; sdpa on CUDA for blocks of
                                  MODEL_ATTENTION_AUTO_MIN_T tokens or more (head size <= 128) */
    MODEL_ATTENTION_EAGER = 1, /* "eager": scores and probabilities as [B,NH,T,T] tensors */
    MODEL_ATTENTION_SDPA = 2   /* "sdpa": the fused kernel (attention_fused_*, FlashAttention-2's
                                  algorithm): no [B,NH,T,T] buffer, probabilities recomputed in backward */
} model_attention;

/* auto's threshold: from T = 512 on, a layer's two [B,NH,T,T] probability
 * buffers (2·NH·T floats per token) hold as much as all its other
 * activations (about 16·C per token; 2·12·512 = 16·768 for GPT-2 small),
 * so the fused attention's memory saving is at least half the activations.
 * The speed crossover of the fp32 kernel has not been measured on a GPU
 * yet (kernels/cuda/NOTES.md). */
#define MODEL_ATTENTION_AUTO_MIN_T 512
/* The largest head size of the CUDA fused kernels (kernels/cuda/attention_fused*.cu). */
#define MODEL_ATTENTION_FUSED_MAX_HEAD_CUDA 128

/* pad_vocab_to_multiple_of=auto: the multiple on CUDA (a GEMM whose N is a
 * multiple of 128 runs whole tiles: nanoGPT's 50304, llm.c's
 * padded_vocab_size); the CPU pads nothing, where padding is only work. */
#define MODEL_PAD_VOCAB_AUTO_CUDA 128
/* The largest multiple accepted: more would only waste memory. */
#define MODEL_PAD_VOCAB_MAX 65536

/* How a kind of activation is stored: the `logits_dtype` key (the
 * classifier's logits, [N, vocab_rows], the largest activation; the head's
 * GEMMs then read a bf16 copy of the weights, lm_param_set.params_copy, and
 * of their input) and the `activation_dtype` key (the activations backward
 * reads: today the feed-forward block's, GPT-2's c_fc/GELU/c_proj and
 * BERT's intermediate/output.dense, the [N, 4C] ones, the largest of a
 * layer, and the attention block's, the qkv GEMM's input and output and
 * the attention's output; the LayerNorms and the residual stream are later
 * slices).  bf16 halves their bytes
 * (kernels/cuda/NOTES_bf16_storage.md). */
typedef enum model_storage_dtype {
    MODEL_STORAGE_AUTO = 0, /* "auto": bf16 on CUDA with precision=bf16, else fp32 (model_device_stores_bf16) */
    MODEL_STORAGE_FP32 = 1, /* "fp32" */
    MODEL_STORAGE_BF16 = 2  /* "bf16": also on the CPU, where its ops are references (how it is tested) */
} model_storage_dtype;

typedef struct model_device {
    char device[64];        /* "auto", "cpu", "cuda", "cuda:N" */
    lm_precision precision; /* fp32, tf32, bf16 (CUDA; the CPU computes in fp32) */
    int threads;            /* CPU threads, 0 = the default */
    int profile_ops;        /* time every op and log the table when the model is destroyed */
    model_recompute recompute;
    model_attention attention; /* attn_implementation */
    const char *device_given, *precision_given, *recompute_given; /* as read (owned by the config), until checked */
    const char *attention_given;
    /* pad_vocab_to_multiple_of (Hugging Face's resize_token_embeddings
     * argument): N >= 1, or 0 for auto (model_device_vocab_rows). */
    int32_t pad_vocab_multiple;
    char pad_vocab_given[48]; /* the value as given ("auto", "128", "0"...), until checked */
    model_storage_dtype logits_dtype, activation_dtype;
    const char *logits_dtype_given, *activation_dtype_given; /* as read (owned by the config), until checked */
} model_device;

/* Reads the keys (call before lm_config_validate). */
void model_device_read(model_device *d, lm_config *cfg);
/* Judges what was read (after lm_config_validate); messages start with
 * "architecture '<arch>': " and say what to use instead. */
lm_status model_device_check(model_device *d, const char *arch);
/* The rows of the vocabulary inside the model: vocab_size rounded up to a
 * multiple of pad_vocab_to_multiple_of (auto: by the backend's device). */
int32_t model_device_vocab_rows(const model_device *d, const lm_backend *be, int32_t vocab_size);
/* Whether a storage setting (d->logits_dtype, d->activation_dtype) means
 * bf16 on this backend: auto is bf16 on CUDA with precision=bf16. */
int model_device_stores_bf16(model_storage_dtype dtype, const lm_backend *be);
/* Creates the backend (profiled when profile_ops); `label` names the model
 * in the profile ("GPT-2").  Errors are prefixed with the architecture. */
lm_status model_device_create_backend(const model_device *d, const char *arch, const char *label, lm_backend **out);

#endif
