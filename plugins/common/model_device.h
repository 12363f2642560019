/* Where and how an architecture plugin computes: the keys every
 * architecture takes besides its Hugging Face configuration (device,
 * precision, threads, profile_ops, recompute_attention), and the backend
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

typedef struct model_device {
    char device[64];        /* "auto", "cpu", "cuda", "cuda:N" */
    lm_precision precision; /* fp32, tf32, bf16 (CUDA; the CPU computes in fp32) */
    int threads;            /* CPU threads, 0 = the default */
    int profile_ops;        /* time every op and log the table when the model is destroyed */
    /* Keep no attention probabilities per layer: backward recomputes a
     * layer's (the same attention_forward on the same inputs, so the same
     * bits) into one shared buffer.  Saves (L-1)·B·heads·T² floats for one
     * more attention forward per layer: worth it for long blocks. */
    int recompute_attention;
    const char *device_given, *precision_given; /* as read (owned by the config), until checked */
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
