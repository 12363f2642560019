/* lmcore — the logger plugin interface (kind LM_KIND_LOGGER).
 *
 * The trainer reports what happens as events; every logger of a run gets
 * every event and shows or stores what it cares about. */
#ifndef LMCORE_LOGGER_H
#define LMCORE_LOGGER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The scalars the trainer sends with each event (look them up by name with
 * lm_event_scalar; later versions may add more):
 *   RUN_BEGIN  n_params, train_blocks, eval_blocks, block_size, batch_size
 *              (text: a one-line description of the run)
 *   STEP       sent at logging points only (logging_steps): loss (the mean
 *              step loss since the previous STEP), learning_rate and
 *              grad_norm (of the last step), tokens_per_second (since the
 *              previous STEP), then the system metrics (rss_mb,
 *              cpu_percent, gpu_*); reading them is the step's one wait
 *              for the device
 *   PROGRESS   after every optimizer step, no scalars (step, epoch,
 *              elapsed only): progress bars; nothing is read from the device
 *   EVAL       after an evaluation, at any step (eval_strategy): eval_loss,
 *              perplexity, train_loss (the mean step loss since the
 *              previous evaluation), epoch_index (the fractional epoch),
 *              eval_runtime
 *   RUN_END    train_runtime, train_samples_per_second,
 *              train_steps_per_second, train_loss, eval_loss, perplexity
 *   MESSAGE    none (text, and the level in `level`) */
typedef enum lm_event_kind {
    LM_EVENT_RUN_BEGIN = 1,
    LM_EVENT_STEP = 2,     /* at a logging point, after an optimizer step */
    LM_EVENT_EVAL = 3,     /* after an evaluation */
    LM_EVENT_RUN_END = 4,
    LM_EVENT_MESSAGE = 5,
    LM_EVENT_PROGRESS = 6  /* after every optimizer step */
} lm_event_kind;

typedef struct lm_scalar {
    const char *name;
    double value;
} lm_scalar;

typedef struct lm_event {
    lm_event_kind kind;
    int32_t level;         /* lm_log_level, for messages */
    int64_t step;          /* optimizer steps done */
    int64_t total_steps;   /* planned optimizer steps */
    double epoch;          /* fractional epoch, 1.0 = one pass */
    int32_t total_epochs;
    double elapsed;        /* seconds since RUN_BEGIN */
    const char *text;
    const lm_scalar *scalars;
    size_t n_scalars;
} lm_event;

/* Looks up a scalar by name; returns 0 if absent. */
static inline int lm_event_scalar(const lm_event *ev, const char *name, double *value) {
    for (size_t i = 0; i < ev->n_scalars; i++) {
        const char *a = ev->scalars[i].name, *b = name;
        while (*a && *a == *b) a++, b++;
        if (*a == *b) {
            *value = ev->scalars[i].value;
            return 1;
        }
    }
    return 0;
}

typedef struct lm_logger_vtable {
    /* Required. */
    lm_status (*create)(void **self, lm_config *cfg);
    void (*destroy)(void *self);
    lm_status (*log)(void *self, const lm_event *event);
    /* Optional: called after each checkpoint and at the end of the run, so
     * what was logged is on disk if the process dies afterwards. */
    lm_status (*flush)(void *self);
} lm_logger_vtable;

#ifdef __cplusplus
}
#endif
#endif
