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
 * names and shapes (all of them, before reading any data, and that the file
 * holds as many values as the model needs before the model allocates its
 * buffers) and that every value is finite; a missing, mis-shaped or
 * non-finite tensor is an error naming it.  Staged one tensor at a time. */
LM_API lm_status lm_model_load_weights(const lm_plugin *arch, void *model, const char *path);

/* The index of the first NaN or infinity in values[0..n), or n when every
 * value is finite: the one pass made over weights and optimizer state when
 * they are loaded. */
LM_API size_t lm_first_non_finite(const float *values, size_t n);
/* "NaN", "+infinity" or "-infinity", for messages (printf's "-nan" misleads). */
LM_API const char *lm_non_finite_name(float value);

/* Refuses a tokenizer that does not fit a model of model_vocab ids: more
 * tokens than the model's vocabulary (ids the embedding lacks), or a
 * special token (end of text, padding, [MASK] ...) whose id is outside it.
 * The message names both sizes and ends with `fix`, how to put it right.
 * A tokenizer smaller than the model is accepted (a padded vocabulary, as
 * the trainer's vocab_size setting makes). */
LM_API lm_status lm_vocab_check(const lm_vocab_info *vocab, int32_t model_vocab, const char *fix);

/* Reads "model_type" from <dir>/config.json (e.g. "gpt2", "bert"). */
LM_API lm_status lm_model_type_of(const char *dir, char *out, size_t cap);

#endif
