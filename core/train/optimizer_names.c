/* Hugging Face's optimizer names (TrainingArguments.optim: "adamw_torch",
 * "sgd", "lion_32bit", ...) and lmcore's optimizer plugins, both ways: so
 * that `optim=adamw_torch` from a Trainer habit, or read back from a
 * training_args.json, picks the plugin that computes the same update, and
 * training_args.json says `optim` in the names Hugging Face reads. */
#include <stddef.h>
#include <string.h>

#include "trainer.h"

/* (Hugging Face name, plugin) pairs; the first pair of a plugin is the name
 * training_args.json writes for it. */
static const char *const optim_to_plugin[][2] = {
    {"adamw_torch", "adamw"}, {"adamw_torch_fused", "adamw"}, {"adamw_hf", "adamw"},
    {"sgd", "sgd"},           {"lion_32bit", "lion"},
};

/* Hugging Face optimizers that no plugin here implements (bitsandbytes,
 * apex, torchao, GaLore, ...): named, so that the error says so rather
 * than "no such plugin". */
static const char *const optim_without_plugin[] = {
    "adafactor",         "adamw_apex_fused",   "adamw_anyprecision", "adamw_bnb_8bit",  "adamw_8bit",
    "paged_adamw_32bit", "paged_adamw_8bit",   "lion_8bit",          "paged_lion_32bit", "paged_lion_8bit",
    "adagrad",           "rmsprop",            "rmsprop_bnb",        "galore_adamw",    "lomo",
    "adalomo",           "schedule_free_adamw", "ademamix",          "adamw_torch_4bit", "grokadamw",
};

lm_status lm_optimizer_plugin_for(const char *name, const char **plugin) {
    *plugin = name;
    for (size_t i = 0; i < sizeof optim_to_plugin / sizeof *optim_to_plugin; i++)
        if (strcmp(name, optim_to_plugin[i][0]) == 0) {
            *plugin = optim_to_plugin[i][1];
            return LM_OK;
        }
    for (size_t i = 0; i < sizeof optim_without_plugin / sizeof *optim_without_plugin; i++)
        if (strcmp(name, optim_without_plugin[i]) == 0)
            return lm_error_set(LM_ERR_INVALID,
                                "optim '%s' is a Hugging Face optimizer that lmcore has no plugin for: use adamw_torch "
                                "(adamw), sgd or lion_32bit (lion), or write one (`lmcore new-plugin optimizer NAME`, "
                                "docs/writing-plugins.md)",
                                name);
    return LM_OK; /* a plugin's own name: adamw, lion, or a user's */
}

const char *lm_optim_name_of(const char *plugin) {
    for (size_t i = 0; i < sizeof optim_to_plugin / sizeof *optim_to_plugin; i++)
        if (strcmp(plugin, optim_to_plugin[i][1]) == 0) return optim_to_plugin[i][0];
    return plugin;
}
