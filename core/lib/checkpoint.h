/* Training checkpoints: everything needed to continue a run exactly.
 *
 * <root>/checkpoint-<step>/ holds model.safetensors (HF names), config.json,
 * tokenizer.json, optimizer.safetensors (AdamW moments as
 * "<param>.exp_avg" / "<param>.exp_avg_sq") and trainer_state.json (step,
 * epoch, position in the shuffled order, RNG counters, loss sums, the
 * schedule's length).  A checkpoint is written into a hidden temporary
 * folder and renamed into place, so it is either complete or absent; only
 * the newest `keep_last` are kept. */
#ifndef LMCORE_CHECKPOINT_H
#define LMCORE_CHECKPOINT_H

#include "trainer.h"

typedef struct lm_checkpoint_state {
    int64_t step, total_steps;
    int64_t epoch;           /* epoch in progress (0-based) */
    int64_t steps_in_epoch;  /* optimizer steps done in that epoch */
    uint64_t cursor;         /* next block of the epoch's shuffled order */
    uint64_t micro_batches;  /* dropout / masking counter */
    uint64_t seed;
    double loss_sum_run, loss_sum_epoch;
    uint64_t train_blocks;   /* the run's shape, checked on resume */
    int64_t batch_size, grad_accum;
} lm_checkpoint_state;

/* Writes <root>/checkpoint-<state->step> and prunes older ones beyond
 * keep_last (0 keeps all).  tokenizer may have a NULL plugin. */
LM_API lm_status lm_checkpoint_save(const char *root, int keep_last, const lm_checkpoint_state *state,
                                    lm_handle model, lm_handle tokenizer, const char *args_json);

/* Loads a checkpoint folder into the model (weights and moments) and state,
 * refusing one from another architecture, vocabulary or shape with the
 * mismatch named. */
LM_API lm_status lm_checkpoint_load(const char *dir, lm_handle model, lm_checkpoint_state *state);

#endif
