/* Where and how an architecture plugin computes: the keys every
 * architecture takes besides its Hugging Face configuration (device,
 * precision, threads, profile_ops, recompute), and the backend they
 * describe.
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

typedef struct model_device {
    char device[64];        /* "auto", "cpu", "cuda", "cuda:N" */
    lm_precision precision; /* fp32, tf32, bf16 (CUDA; the CPU computes in fp32) */
    int threads;            /* CPU threads, 0 = the default */
    int profile_ops;        /* time every op and log the table when the model is destroyed */
    model_recompute recompute;
    const char *device_given, *precision_given, *recompute_given; /* as read (owned by the config), until checked */
} model_device;

/* Reads the keys (call before lm_config_validate). */
void model_device_read(model_device *d, lm_config *cfg);
/* Judges what was read (after lm_config_validate); messages start with
 * "architecture '<arch>': " and say what to use instead. */
lm_status model_device_check(model_device *d, const char *arch);
/* Creates the backend (profiled when profile_ops); `label` names the model
 * in the profile ("GPT-2").  Errors are prefixed with the architecture. */
lm_status model_device_create_backend(const model_device *d, const char *arch, const char *label, lm_backend **out);

#endif
