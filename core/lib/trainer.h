/* The training loop with the Hugging Face Trainer's defaults. */
#ifndef LMCORE_TRAINER_H
#define LMCORE_TRAINER_H

#include "blocks.h"
#include "registry.h"

typedef struct lm_handle {
    const lm_plugin *plugin;
    void *self;
} lm_handle;

typedef struct lm_trainer lm_trainer;

typedef struct lm_train_result {
    int64_t steps;
    double epochs;
    double train_loss;       /* mean of step losses over the run */
    double eval_loss;        /* last evaluation (NAN if none) */
    double perplexity;       /* exp(eval_loss) */
    double runtime;          /* seconds */
    double samples_per_second, steps_per_second, tokens_per_second;
} lm_train_result;

/* cfg keys (defaults = Hugging Face TrainingArguments):
 *   lr 2e-5, weight_decay 0.01, beta1 0.9, beta2 0.999, eps 1e-8,
 *   max_grad_norm 1.0, epochs 3, max_steps -1, batch_size 8,
 *   eval_batch_size (batch_size), grad_accum 1, warmup_steps 0,
 *   schedule "linear"|"constant", seed 42, log_every 50,
 *   eval_every_epoch true, eval_max_batches 0 (all),
 *   checkpoint_dir "" (none), save_every 0 (epoch ends only), keep_last 2,
 *   resume "" (a checkpoint folder to continue from, exactly).
 * With checkpoint_dir set, a checkpoint is also written when Ctrl-C stops
 * the run.  tokenizer (plugin may be NULL) is saved into checkpoints. */
LM_API lm_status lm_trainer_create(lm_trainer **out, lm_config *cfg, lm_handle model, lm_handle objective,
                                   lm_handle tokenizer, const lm_vocab_info *vocab, const lm_blocks *train, const lm_blocks *eval,
                                   const lm_handle *loggers, size_t n_loggers);
LM_API void lm_trainer_destroy(lm_trainer *t);
LM_API lm_status lm_trainer_fit(lm_trainer *t, lm_train_result *result);
/* Mean loss over `blocks` in eval mode (dropout off), batches weighted by size. */
LM_API lm_status lm_trainer_evaluate(lm_trainer *t, const lm_blocks *blocks, double *loss);
/* The training arguments as JSON (for training_args.json). */
LM_API lm_status lm_trainer_args_json(const lm_trainer *t, lm_buffer *out);

#endif
