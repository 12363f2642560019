/* What the 'report' logger remembers of a run, shared by the event
 * collection (report.c) and the writing of report.md (report_markdown.c). */
#ifndef LM_REPORT_REPORT_H
#define LM_REPORT_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/lmcore.h"

/* One evaluation: at an epoch end (epoch_index whole) or mid-epoch
 * (eval_strategy "steps", max_steps: epoch_index fractional). */
typedef struct eval_row {
    int64_t step;
    double epoch, epoch_index, train_loss, eval_loss, perplexity;
} eval_row;

/* Running summary of a scalar of the STEP events (system metrics,
 * throughput), each weighted by the optimizer steps its logging interval
 * covers. */
typedef struct series_stats {
    double count; /* steps covered */
    double sum, peak;
    double inverse_sum; /* sum of steps/value: the harmonic mean of rates */
} series_stats;

/* A text sample generated during training (a MESSAGE event whose text
 * starts with REPORT_SAMPLE_PREFIX). */
typedef struct sample_row {
    int64_t step;
    char *text;
} sample_row;

#define REPORT_SAMPLE_PREFIX "sample at step "

typedef struct report {
    char *dir, *title;
    char *note;    /* a warning shown at the top of report.md and of the plot (NULL: none) */
    char *details; /* markdown from the caller: model, data, hyperparameters (NULL: none) */
    char *history; /* log.jsonl text of the run before a resume (NULL: none) */
    int64_t resumed_at; /* > 0: the step this process went on from (its points before came from history) */
    char *description; /* RUN_BEGIN text */
    double started;    /* UNIX time of RUN_BEGIN */
    double n_params, train_blocks, eval_blocks, block_size, batch_size; /* NAN if not reported */
    int64_t total_steps;
    int32_t total_epochs;
    int64_t first_step;      /* RUN_BEGIN's: 0, or where a resumed run went on */
    int64_t last_step;       /* the last step done (STEP, EVAL or PROGRESS) */
    int64_t last_step_event; /* the step of the last STEP: where the next one's interval starts */
    /* per logging point (STEP event): its step and the mean step loss of its interval */
    int64_t *steps;
    double *losses, *learning_rates;
    size_t n_steps, cap_steps;
    double steps_per_epoch; /* step / epoch of the STEP and EVAL events */
    series_stats tokens_per_second, rss_mb, cpu_percent, gpu_utilization, gpu_memory_mb, gpu_power_w;
    /* per evaluation, in the order they came */
    eval_row *evals;
    size_t n_evals, cap_evals;
    sample_row *samples;
    size_t n_samples, cap_samples;
    /* RUN_END */
    int ended;
    int64_t end_step;
    double end_epoch, runtime, samples_per_second, steps_per_second, train_loss, eval_loss, perplexity;
    int written;
} report;

/* report.md for what r holds (a run that has not ended gets a note saying so). */
lm_status report_markdown(const report *r, lm_buffer *out);

#endif
