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

/* ZeRO-1 (docs/distributed.md): the optimizer of each rank holds the state
 * of elements [start[rank], start[rank + 1]) of the flat parameters only
 * (whole tensors).  The checkpoint's files are those of an unsharded run
 * all the same: rank 0 writes every tensor's state, receiving each other
 * rank's through the communicator as it streams (lm_checkpoint_save on rank
 * 0, lm_checkpoint_send_optimizer on the others), and a resume reads each
 * rank's shard from the file. */
typedef struct lm_checkpoint_shards {
    lm_handle comm;
    int rank, world;
    const size_t *start; /* world + 1 entries */
} lm_checkpoint_shards;

typedef struct lm_checkpoint_parts {
    lm_handle model, optimizer, tokenizer; /* the tokenizer's plugin may be NULL */
    const lm_checkpoint_shards *shards;    /* NULL: the optimizer holds every tensor's state */
    int model_only; /* save_only_model: no optimizer.safetensors (such a checkpoint cannot resume a run) */
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

/* ZeRO-1, on every rank but 0 while rank 0 runs lm_checkpoint_save: sends
 * this rank's shard of the optimizer state to rank 0, piece by piece in the
 * order rank 0 writes it (a communicator broadcast from this rank per
 * piece; the other ranks take part).  Needs parts->shards. */
LM_API lm_status lm_checkpoint_send_optimizer(const lm_checkpoint_parts *parts);

/* The checkpoint a resume_from_checkpoint value names, into out: `given`
 * itself when it holds trainer_state.json, else the newest complete
 * checkpoint-N in it, else in given/checkpoints (a run's output_dir).  An
 * error says what was looked for. */
LM_API lm_status lm_checkpoint_resolve(const char *given, char *out, size_t cap);

/* Parses <dir>/trainer_state.json (the caller frees *state). */
LM_API lm_status lm_checkpoint_read_state(const char *dir, lm_json **state);

/* Loads <dir>/model.safetensors into the model and <dir>/optimizer.safetensors
 * into the optimizer (bound to the model, or with parts->shards to this
 * rank's shard of it: only its tensors' state is read), naming any tensor that is
 * missing, of another shape, or holds a NaN or an infinity. */
LM_API lm_status lm_checkpoint_load_tensors(const char *dir, const lm_checkpoint_parts *parts);

#endif
