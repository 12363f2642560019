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

typedef enum lm_event_kind {
    LM_EVENT_RUN_BEGIN = 1, /* text: run description; scalars: n_params, ... */
    LM_EVENT_STEP = 2,      /* after an optimizer step: loss, learning_rate, grad_norm, tokens_per_second */
    LM_EVENT_EVAL = 3,      /* after an evaluation: train_loss, eval_loss, perplexity */
    LM_EVENT_RUN_END = 4,   /* train_runtime, train_samples_per_second, train_steps_per_second, perplexity */
    LM_EVENT_MESSAGE = 5    /* text, level in `level` */
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
    /* Optional. */
    lm_status (*flush)(void *self);
} lm_logger_vtable;

#ifdef __cplusplus
}
#endif
#endif
