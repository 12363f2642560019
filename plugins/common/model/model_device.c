/* The device keys shared by architecture plugins (model_device.h). */
#include "model_device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_config.h"

#define PAD_VOCAB_KEY "pad_vocab_to_multiple_of"

/* "auto" or an integer, as a string (the scripts pass their option's text)
 * or a number (a Lua table): kept as text, judged by model_device_check. */
static void read_pad_vocab(model_device *d, lm_config *cfg) {
    snprintf(d->pad_vocab_given, sizeof d->pad_vocab_given, "auto");
    for (size_t i = 0; i < lm_config_count(cfg); i++) {
        if (strcmp(lm_config_key_at(cfg, i), PAD_VOCAB_KEY) != 0) continue;
        switch (lm_config_type_at(cfg, i)) {
        case LM_CONFIG_INT:
            snprintf(d->pad_vocab_given, sizeof d->pad_vocab_given, "%lld",
                     (long long)lm_config_int(cfg, PAD_VOCAB_KEY, 0));
            break;
        case LM_CONFIG_NUMBER:
            snprintf(d->pad_vocab_given, sizeof d->pad_vocab_given, "%g", lm_config_number(cfg, PAD_VOCAB_KEY, 0));
            break;
        case LM_CONFIG_STRING:
            snprintf(d->pad_vocab_given, sizeof d->pad_vocab_given, "%s", lm_config_string(cfg, PAD_VOCAB_KEY, ""));
            break;
        case LM_CONFIG_BOOL:
            snprintf(d->pad_vocab_given, sizeof d->pad_vocab_given, "%s",
                     lm_config_bool(cfg, PAD_VOCAB_KEY, 0) ? "true" : "false");
            break;
        case LM_CONFIG_LIST:
            (void)lm_config_has(cfg, PAD_VOCAB_KEY); /* read: judged below, not reported as unknown */
            snprintf(d->pad_vocab_given, sizeof d->pad_vocab_given, "a list");
            break;
        }
        return;
    }
}

/* "auto" (0), or a decimal integer in [1, MODEL_PAD_VOCAB_MAX]. */
static lm_status check_pad_vocab(model_device *d, const char *arch) {
    const char *given = d->pad_vocab_given;
    if (strcmp(given, "auto") == 0) {
        d->pad_vocab_multiple = 0;
        return LM_OK;
    }
    char *end = NULL;
    const long value = given[0] >= '0' && given[0] <= '9' ? strtol(given, &end, 10) : 0;
    if (end && *end == '\0' && value >= 1 && value <= MODEL_PAD_VOCAB_MAX) {
        d->pad_vocab_multiple = (int32_t)value;
        return LM_OK;
    }
    return lm_error_set(LM_ERR_INVALID, "architecture '%s': pad_vocab_to_multiple_of must be auto (%d on CUDA, 1 "
                                        "on the CPU) or an integer from 1 to %d (the vocabulary is padded inside "
                                        "the model to a multiple of it), got '%s'",
                        arch, MODEL_PAD_VOCAB_AUTO_CUDA, MODEL_PAD_VOCAB_MAX, given);
}

int32_t model_device_vocab_rows(const model_device *d, const lm_backend *be, int32_t vocab_size) {
    int64_t multiple = d->pad_vocab_multiple;
    if (multiple == 0) multiple = be->device.type == LM_DEVICE_CUDA ? MODEL_PAD_VOCAB_AUTO_CUDA : 1;
    return (int32_t)(((int64_t)vocab_size + multiple - 1) / multiple * multiple);
}

int model_device_stores_bf16(model_storage_dtype dtype, const lm_backend *be) {
    if (dtype != MODEL_STORAGE_AUTO) return dtype == MODEL_STORAGE_BF16;
    return be->device.type == LM_DEVICE_CUDA && be->precision == LM_PRECISION_BF16;
}

void model_device_read(model_device *d, lm_config *cfg) {
    memset(d, 0, sizeof *d);
    d->device_given = lm_config_string(cfg, "device", "auto");
    d->precision_given = lm_config_string(cfg, "precision", "fp32");
    /* model_device_check's range, in 64 bits before the narrowing. */
    d->threads = (int)lm_config_int_range(cfg, "threads", 0, 0, 4096);
    d->profile_ops = lm_config_bool(cfg, "profile_ops", 0);
    d->recompute_given = lm_config_string(cfg, "recompute", "none");
    d->attention_given = lm_config_string(cfg, "attn_implementation", "auto");
    d->logits_dtype_given = lm_config_string(cfg, "logits_dtype", "auto");
    d->activation_dtype_given = lm_config_string(cfg, "activation_dtype", "auto");
    read_pad_vocab(d, cfg);
}

/* A storage setting (logits_dtype, activation_dtype): auto, fp32 or bf16. */
static lm_status check_storage_dtype(const char *arch, const char *key, const char *given, const char *what,
                                     model_storage_dtype *out) {
    const char *value = given ? given : "auto";
    if (strcmp(value, "auto") == 0) *out = MODEL_STORAGE_AUTO;
    else if (strcmp(value, "fp32") == 0) *out = MODEL_STORAGE_FP32;
    else if (strcmp(value, "bf16") == 0) *out = MODEL_STORAGE_BF16;
    else
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': %s '%.40s' is unknown: use auto (bf16 on CUDA with "
                                            "precision=bf16, else fp32), fp32 or bf16 (%s stored in bfloat16: half "
                                            "their memory)", arch, key, value, what);
    return LM_OK;
}

lm_status model_device_check(model_device *d, const char *arch) {
    const char *device = d->device_given ? d->device_given : "auto";
    if (strlen(device) >= sizeof d->device)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': device '%.40s...' is too long: use cpu, cuda, cuda:N "
                                            "or auto", arch, device);
    strcpy(d->device, device);
    LM_TRY(hf_parse_precision(arch, d->precision_given ? d->precision_given : "fp32", &d->precision));
    const char *recompute = d->recompute_given ? d->recompute_given : "none";
    if (strcmp(recompute, "none") == 0) d->recompute = MODEL_RECOMPUTE_NONE;
    else if (strcmp(recompute, "activations") == 0) d->recompute = MODEL_RECOMPUTE_ACTIVATIONS;
    else if (strcmp(recompute, "attention") == 0) d->recompute = MODEL_RECOMPUTE_ATTENTION;
    else
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': recompute '%.40s' is unknown: use none (keep every "
                                            "layer's activations), activations or attention (less memory, more "
                                            "time)", arch, recompute);
    const char *attention = d->attention_given ? d->attention_given : "auto";
    if (strcmp(attention, "auto") == 0) d->attention = MODEL_ATTENTION_AUTO;
    else if (strcmp(attention, "eager") == 0) d->attention = MODEL_ATTENTION_EAGER;
    else if (strcmp(attention, "sdpa") == 0) d->attention = MODEL_ATTENTION_SDPA;
    else if (strcmp(attention, "flash_attention_2") == 0 || strcmp(attention, "flash_attention_3") == 0)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': attn_implementation '%s' is not available: lmcore's "
                                            "fused attention (FlashAttention-2's algorithm, in fp32, with padding "
                                            "masks and dropout) is attn_implementation=sdpa", arch, attention);
    else
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': attn_implementation '%.40s' is unknown: use auto "
                                            "(the default), eager ([B,NH,T,T] probabilities) or sdpa (the fused "
                                            "kernel, for long blocks)", arch, attention);
    LM_TRY(check_pad_vocab(d, arch));
    LM_TRY(check_storage_dtype(arch, "logits_dtype", d->logits_dtype_given, "the classifier's logits",
                               &d->logits_dtype));
    LM_TRY(check_storage_dtype(arch, "activation_dtype", d->activation_dtype_given,
                               "the feed-forward and attention blocks' activations",
                               &d->activation_dtype));
    if (d->threads < 0 || d->threads > 4096)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': threads must be 0 (default) or a positive count, "
                                            "got %d", arch, d->threads);
    /* The strings belong to the config, which the plugin does not keep. */
    d->device_given = d->precision_given = d->recompute_given = d->attention_given = d->logits_dtype_given =
        d->activation_dtype_given = NULL;
    return LM_OK;
}

lm_status model_device_create_backend(const model_device *d, const char *arch, const char *label, lm_backend **out) {
    *out = NULL;
    lm_status status = lm_backend_create(out, d->device, d->precision, d->threads);
    if (status == LM_OK && d->profile_ops) {
        status = lm_backend_profile(out, label);
        if (status != LM_OK) {
            (*out)->ops->destroy(*out);
            *out = NULL;
        }
    }
    if (status != LM_OK) lm_error_prefix("architecture '%s': ", arch);
    return status;
}
