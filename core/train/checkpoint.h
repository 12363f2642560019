/* Training checkpoints: everything needed to continue a run exactly.
 *
 * <root>/checkpoint-<step>/ holds model.safetensors (HF names), config.json,
 * tokenizer.json, training_args.json, optimizer.safetensors (the optimizer
 * plugin's state under its own names: "<param>.exp_avg" and
 * "<param>.exp_avg_sq" for AdamW, "<param>.momentum_buffer" for SGD) and
 * trainer_state.json (written by the trainer: counters, loss sums, the
 * schedule, the optimizer's name and settings, callback state), then
 * checksums.json (every other file's size and lm_hash64, written last and
 * checked before a resume reads anything: checkpoint_manifest.c).  A
 * checkpoint is written into a hidden temporary folder and renamed into
 * place, so it is either complete or absent; only the newest `keep_last`
 * are kept (and a protected one: the best model's). */
#ifndef LMCORE_CHECKPOINT_H
#define LMCORE_CHECKPOINT_H

#include "lmcore/lmcore.h"
#include "registry.h"

typedef struct lm_checkpoint_parts {
    lm_handle model, optimizer, tokenizer; /* the tokenizer's plugin may be NULL */
} lm_checkpoint_parts;

#define LM_CHECKPOINT_STATE_FILE "trainer_state.json"
#define LM_CHECKPOINT_OPTIMIZER_FILE "optimizer.safetensors"
#define LM_CHECKPOINT_MANIFEST_FILE "checksums.json"

/* Writes <dir>/checksums.json over every other file in dir. */
LM_API lm_status lm_checkpoint_write_manifest(const char *dir);

/* Checks every file of the checkpoint in dir against its checksums.json,
 * naming the file that is missing, resized or changed.  A checkpoint
 * without checksums.json (lmcore before it) is accepted with a warning. */
LM_API lm_status lm_checkpoint_verify(const char *dir);

/* The checks of lm_checkpoint_verify on a parsed checksums.json (`manifest`
 * is its path, for messages): for the fuzz target. */
LM_API lm_status lm_checkpoint_check_manifest(const char *dir, const char *manifest, const lm_json *root);

/* Writes <root>/checkpoint-<step> and prunes older ones beyond keep_last
 * (0 keeps all), never the folder named `protect` (NULL: none).  The path
 * of the new folder goes to dir_out (may be NULL). */
LM_API lm_status lm_checkpoint_save(const char *root, int64_t step, int keep_last, const char *protect,
                                    const lm_checkpoint_parts *parts, const char *state_json, const char *args_json,
                                    char *dir_out, size_t dir_cap);

/* The checkpoint a resume_from_checkpoint value names, into out: `given`
 * itself when it holds trainer_state.json, else the newest complete
 * checkpoint-N in it, else in given/checkpoints (a run's output_dir).  An
 * error says what was looked for. */
LM_API lm_status lm_checkpoint_resolve(const char *given, char *out, size_t cap);

/* Parses <dir>/trainer_state.json (the caller frees *state). */
LM_API lm_status lm_checkpoint_read_state(const char *dir, lm_json **state);

/* Loads <dir>/model.safetensors into the model and <dir>/optimizer.safetensors
 * into the optimizer (bound to the model), naming any tensor that is
 * missing, of another shape, or holds a NaN or an infinity. */
LM_API lm_status lm_checkpoint_load_tensors(const char *dir, const lm_checkpoint_parts *parts);

#endif
