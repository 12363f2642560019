/* The device keys shared by architecture plugins (model_device.h). */
#include "model_device.h"

#include <string.h>

#include "hf_config.h"

void model_device_read(model_device *d, lm_config *cfg) {
    memset(d, 0, sizeof *d);
    d->device_given = lm_config_string(cfg, "device", "auto");
    d->precision_given = lm_config_string(cfg, "precision", "fp32");
    /* model_device_check's range, in 64 bits before the narrowing. */
    d->threads = (int)lm_config_int_range(cfg, "threads", 0, 0, 4096);
    d->profile_ops = lm_config_bool(cfg, "profile_ops", 0);
    d->recompute_given = lm_config_string(cfg, "recompute", "none");
    d->attention_given = lm_config_string(cfg, "attn_implementation", "auto");
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
    if (d->threads < 0 || d->threads > 4096)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': threads must be 0 (default) or a positive count, "
                                            "got %d", arch, d->threads);
    /* The strings belong to the config, which the plugin does not keep. */
    d->device_given = d->precision_given = d->recompute_given = d->attention_given = NULL;
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
