/* Saving and loading models in the Hugging Face layout:
 * model.safetensors (HF tensor names), config.json, tokenizer.json. */
#ifndef LMCORE_MODEL_IO_H
#define LMCORE_MODEL_IO_H

#include "registry.h"

/* Writes <dir>/model.safetensors and <dir>/config.json (and
 * <dir>/tokenizer.json when a tokenizer is given, <dir>/training_args.json
 * when args_json is not NULL).  Each file is written atomically. */
LM_API lm_status lm_model_save(const lm_plugin *arch, void *model, const char *dir, const lm_plugin *tokenizer_plugin,
                               void *tokenizer, const char *args_json);

/* Loads every parameter of the model from a safetensors file, checking
 * names and shapes; a missing or mis-shaped tensor is an error naming it. */
LM_API lm_status lm_model_load_weights(const lm_plugin *arch, void *model, const char *path);

/* Reads "model_type" from <dir>/config.json (e.g. "gpt2", "bert"). */
LM_API lm_status lm_model_type_of(const char *dir, char *out, size_t cap);

#endif
