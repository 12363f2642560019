/* The training step, as parts a loop calls in order (Lua's trainer:fit()
 * and any loop a script writes itself):
 *
 *     for each optimizer step:
 *         grad_accum times: next_batch, forward_backward
 *         clip_grad_norm                 (global norm on the device)
 *         optimizer_step                 (schedule, update, step + 1)
 *         at logging points: log         (the one read from the device)
 *     evaluate, save, finish
 *
 * The per-step scalars live in an lm_step_state in the model's device
 * memory (lmcore/step.h): between logging points a step never waits for the
 * device.  The recipe is the Hugging Face Trainer's: AdamW by default (any
 * optimizer plugin), a get_scheduler() schedule, clipping at norm 1.0,
 * training blocks reshuffled every epoch from the seed.  Every random
 * choice is a function of (seed, counters), so a seeded CPU run is
 * bit-for-bit reproducible and resumes exactly. */
#ifndef LMCORE_TRAINER_H
#define LMCORE_TRAINER_H

#include "blocks.h"
#include "registry.h"

typedef struct lm_trainer lm_trainer;

typedef struct lm_trainer_parts {
    lm_handle model, objective, optimizer; /* the optimizer is bound to the model by the trainer */
    lm_handle tokenizer;                   /* saved into checkpoints; its plugin may be NULL */
    const lm_blocks *train, *eval;         /* eval may be NULL */
    const lm_handle *loggers;
    size_t n_loggers;
    /* Data parallel (docs/distributed.md): the process's communicator
     * (lm_distributed_join; plugin NULL: one process) and the ZeRO stage
     * (0, or 1: the optimizer bound to this rank's shard of the weights). */
    lm_handle communicator;
    int zero_stage;
} lm_trainer_parts;

typedef enum lm_strategy { LM_STRATEGY_NO = 0, LM_STRATEGY_STEPS = 1, LM_STRATEGY_EPOCH = 2 } lm_strategy;

/* The run as the settings and the data define it (Hugging Face
 * TrainingArguments names in the comments). */
typedef struct lm_trainer_plan {
    int64_t total_steps, total_epochs, steps_per_epoch; /* max_steps / num_train_epochs */
    int64_t batch_size, eval_batch_size, grad_accum;    /* per_device_*_batch_size, gradient_accumulation_steps */
    int32_t block_size;
    size_t train_blocks;
    lm_strategy logging_strategy, eval_strategy, save_strategy;
    int64_t logging_steps, eval_steps, save_steps, save_total_limit;
    int load_best_model_at_end, greater_is_better;
    int eval_on_start, logging_first_step; /* an evaluation before step 1; a log after step 1 */
    int save_only_model; /* checkpoints without the optimizer state: smaller, and they cannot resume a run */
    char metric_for_best_model[64];
    int64_t early_stopping_patience;
    double early_stopping_threshold;
    int has_checkpoint_dir;
    int host_schedule; /* the learning rate comes from the caller (a Lua function) */
} lm_trainer_plan;

typedef struct lm_train_logs {
    int64_t step;
    double epoch;
    double loss;          /* the mean step loss since the previous log */
    double learning_rate; /* of the last step */
    double grad_norm;     /* of the last step (NaN when it was not computed) */
    double tokens_per_second;
} lm_train_logs;

typedef struct lm_eval_result {
    int64_t step;
    double epoch;
    double loss, perplexity;
    double train_loss; /* the mean step loss since the previous evaluation (NaN without steps) */
    double runtime, samples_per_second;
} lm_eval_result;

typedef struct lm_train_result {
    int64_t steps;
    double epochs;
    double train_loss;       /* mean of step losses over the run */
    double eval_loss;        /* last evaluation (NAN if none) */
    double perplexity;       /* exp(eval_loss) */
    double runtime;          /* seconds, this process */
    double samples_per_second, steps_per_second, tokens_per_second; /* this process's steps */
} lm_train_result;

/* settings keys (defaults = Hugging Face TrainingArguments, lmcore's older
 * name after the bar):
 *   learning_rate|lr 2e-5, max_grad_norm 1.0, num_train_epochs|epochs 3,
 *   max_steps -1, per_device_train_batch_size|batch_size 8,
 *   per_device_eval_batch_size|eval_batch_size (the train batch size),
 *   gradient_accumulation_steps|grad_accum 1, warmup_steps 0, warmup_ratio 0,
 *   lr_scheduler_type|schedule "linear", seed 42,
 *   logging_strategy "steps", logging_steps|log_every 50,
 *   eval_strategy "epoch" with eval blocks, else "no" (eval_every_epoch:
 *   the older boolean), eval_steps (logging_steps), eval_max_batches 0 (all),
 *   checkpoint_dir "" (none), save_strategy "epoch" with a checkpoint_dir,
 *   save_steps|save_every 0, save_total_limit|keep_last 2,
 *   resume|resume_from_checkpoint "" (a checkpoint folder),
 *   load_best_model_at_end false, metric_for_best_model "eval_loss",
 *   greater_is_better (false for losses and perplexity),
 *   early_stopping_patience 0 (off), early_stopping_threshold 0.
 * schedule_kwargs: lr_scheduler_kwargs (may be NULL).  host_schedule: the
 * caller passes every step's learning rate to optimizer_step itself.
 * With resume set, the checkpoint is loaded now (weights, optimizer state,
 * counters); the optimizer must be the checkpoint's. */
LM_API lm_status lm_trainer_create(lm_trainer **out, lm_config *settings, lm_config *schedule_kwargs,
                                   int host_schedule, const lm_trainer_parts *parts);
LM_API void lm_trainer_destroy(lm_trainer *t);

/* Moves the optimizer settings a trainer table may hold (weight_decay,
 * adam_beta1|beta1, adam_beta2|beta2, adam_epsilon|eps: the trainer's
 * names for AdamW's) from `settings` into `optimizer_cfg`, for an
 * optimizer named in the settings.  weight_decay defaults to 0.01, the
 * reference recipe's; the others to the plugin's own defaults. */
LM_API lm_status lm_trainer_optimizer_settings(lm_config *settings, lm_config *optimizer_cfg);
/* The optimizer plugin for a name given as `optimizer` or `optim`: Hugging
 * Face's TrainingArguments.optim names (adamw_torch, adamw_torch_fused,
 * adamw_hf -> adamw; sgd; lion_32bit -> lion) or a plugin's own name (kept
 * as it is).  A Hugging Face optimizer without a plugin here (adafactor,
 * adamw_bnb_8bit, ...) is an error that says what to use instead. */
LM_API lm_status lm_optimizer_plugin_for(const char *name, const char **plugin);
/* Hugging Face's `optim` name of a plugin (adamw -> adamw_torch, lion ->
 * lion_32bit), or the plugin's own name: what training_args.json writes. */
LM_API const char *lm_optim_name_of(const char *plugin);
/* The optimizer settings a trainer table must not hold when it is given an
 * optimizer object ("weight_decay", ...): NULL, or the first one present. */
LM_API const char *lm_trainer_stray_optimizer_setting(lm_config *settings);

LM_API const lm_trainer_plan *lm_trainer_plan_of(const lm_trainer *t);
LM_API int64_t lm_trainer_step(const lm_trainer *t);        /* optimizer steps done */
LM_API double lm_trainer_epoch(const lm_trainer *t);        /* step / steps_per_epoch */
LM_API int lm_trainer_epoch_done(const lm_trainer *t);      /* the last step ended an epoch */
LM_API int64_t lm_trainer_micro_batches_in_step(const lm_trainer *t);
LM_API const char *lm_trainer_resumed_from(const lm_trainer *t); /* "" when not resumed */
LM_API const char *lm_trainer_checkpoint_dir(const lm_trainer *t); /* "" when none */
/* Which batch next_batch made last (forward_backward refuses any other). */
LM_API uint64_t lm_trainer_batch_serial(const lm_trainer *t);

/* ---- the step ---- */
/* The next micro-batch of the shuffled training blocks (starting a new
 * epoch when the last one is done), made by the objective.  Valid until the
 * next call; *serial identifies it for forward_backward. */
LM_API lm_status lm_trainer_next_batch(lm_trainer *t, const lm_batch **batch, uint64_t *serial);
/* Forward and backward of that batch: the loss, scaled by 1/grad_accum,
 * added to the step's on the device, gradients written or accumulated. */
LM_API lm_status lm_trainer_forward_backward(lm_trainer *t, const lm_batch *batch, uint64_t serial);
/* The global gradient norm and the clip scale, on the device. */
LM_API lm_status lm_trainer_clip_grad_norm(lm_trainer *t);
/* The schedule's learning rate (or *host_lr when the schedule is the
 * caller's), the optimizer's update, and the step's end on the device. */
LM_API lm_status lm_trainer_optimizer_step(lm_trainer *t, const double *host_lr);

/* ---- what reads the device ---- */
/* Reads the step state (one download): refuses a diverged run, naming the
 * step; sends a STEP event with the mean loss since the last log. */
LM_API lm_status lm_trainer_log(lm_trainer *t, lm_train_logs *out);
/* Refuses a diverged run (one download), without logging. */
LM_API lm_status lm_trainer_check(lm_trainer *t);
/* Mean loss over `blocks` (NULL: the eval blocks) in eval mode, batches
 * weighted by size, at most eval_max_batches; with `report`, an EVAL event
 * (and the evaluation becomes the run's last one). */
LM_API lm_status lm_trainer_evaluate(lm_trainer *t, const lm_blocks *blocks, int report, lm_eval_result *out);
/* Writes a checkpoint of the run as it stands into checkpoint_dir;
 * extra_json (NULL or a JSON object's text) is kept in trainer_state.json
 * as "fit" for the loop's own state (callbacks, best model); `protect` is a
 * checkpoint folder pruning must keep.  The folder's path goes to dir. */
LM_API lm_status lm_trainer_save(lm_trainer *t, const char *extra_json, const char *protect, char *dir, size_t cap);
/* The "fit" object of the checkpoint resumed from, as JSON text ("" if none). */
LM_API const char *lm_trainer_resumed_extra(const lm_trainer *t);
/* Ends the run: a RUN_END event, loggers flushed. */
LM_API lm_status lm_trainer_finish(lm_trainer *t, lm_train_result *result);

/* ---- the learning rate ---- */
/* What the schedule gives the next update (computed on the host: no read). */
LM_API double lm_trainer_learning_rate(const lm_trainer *t);
/* Changes the schedule's base (peak) learning rate from the next update on. */
LM_API lm_status lm_trainer_set_learning_rate(lm_trainer *t, double base_lr);

LM_API lm_status lm_trainer_device_counters(lm_trainer *t, lm_device_counters *out);
/* The training arguments as JSON (for training_args.json). */
LM_API lm_status lm_trainer_args_json(const lm_trainer *t, lm_buffer *out);
/* Sends a message to every logger. */
LM_API lm_status lm_trainer_message(lm_trainer *t, lm_log_level level, const char *text);

/* The step as CUDA graphs (cuda_graph=auto, trainer_graph.h): whether
 * they are in use (0 with cuda_graph=off, on a device without graphs, or
 * after a failed capture), and how many step parts ran eagerly, were
 * captured, and were replayed so far. */
typedef struct lm_trainer_graph_counts {
    int enabled;
    uint64_t eager, captured, replayed;
} lm_trainer_graph_counts;
LM_API void lm_trainer_graph_stats(const lm_trainer *t, lm_trainer_graph_counts *out);

#endif
