/* trainer_state.json checked field by field against the run that resumes
 * it, before anything of the checkpoint reaches the trainer.  Pure (JSON in,
 * numbers out): the fuzz target fuzz_checkpoint_state runs it on any bytes. */
#ifndef LMCORE_TRAINER_STATE_CHECK_H
#define LMCORE_TRAINER_STATE_CHECK_H

#include <stdint.h>

#include "lmcore/lmcore.h"
#include "lmcore/step.h"

/* What the resuming run is: every field of the file must agree with it. */
typedef struct trainer_state_run {
    const char *model_type;
    int32_t vocab_size;
    int64_t n_params;
    const char *optimizer;
    const char *schedule;   /* lm_schedule_name of this run's schedule */
    int host_schedule;      /* the schedule is a Lua function */
    uint64_t train_blocks;
    int64_t batch_size, grad_accum, total_steps, total_epochs, steps_per_epoch;
    uint64_t seed;
    int64_t world_size;     /* ranks of this run (data parallel), 1 alone */
} trainer_state_run;

/* What the file says, once checked. */
typedef struct trainer_state_fields {
    int64_t step, epoch, steps_in_epoch, cursor, micro_batches, last_log_step, last_eval_step;
    double loss_sums[LM_LOSS_SUMS];
    double eval_loss;  /* NaN: no evaluation yet */
    double base_lr;    /* 0 for format 1, which does not record it */
} trainer_state_fields;

/* LM_ERR_INVALID with what to do instead when the state says the checkpoint
 * was saved with save_only_model (no optimizer state: it cannot resume). */
lm_status trainer_state_refuse_model_only(const lm_json *root);

/* Reads and checks every field of the parsed trainer_state.json at `path`:
 * its format, that it is this run's (model, optimizer, data, settings),
 * every counter in range and consistent with the others (global_step with
 * epoch and steps_in_epoch, the data cursor with the batches taken, a run
 * not already finished), every loss sum finite, and the loop's own "fit"
 * member well-formed.  Errors name the file and the field. */
lm_status trainer_state_check(const lm_json *root, const char *path, const trainer_state_run *run,
                              trainer_state_fields *out);

#endif
