/* Learning-rate schedules by their Hugging Face names (get_scheduler), as
 * the lm_schedule a device evaluates (lmcore/step.h). */
#ifndef LMCORE_SCHEDULE_H
#define LMCORE_SCHEDULE_H

#include "lmcore/lmcore.h"

/* "linear", "cosine", ... for a kind; NULL for an unknown one. */
LM_API const char *lm_schedule_name(int kind);

/* The schedule called `name` (one of get_scheduler's names, or "host" for a
 * function the caller evaluates itself) over total_steps updates from
 * base_lr, with warmup_steps of linear warmup, or ceil(total_steps *
 * warmup_ratio) when warmup_steps is 0 (transformers' get_warmup_steps).
 * kwargs (may be NULL) holds the schedule's own settings, as Hugging Face's
 * lr_scheduler_kwargs: num_cycles (cosine 0.5, cosine_with_restarts 1),
 * power and lr_end (polynomial: 1.0 and 1e-7), timescale (inverse_sqrt:
 * the warmup steps, or 10000).  Refuses an unknown name, a key the
 * schedule does not take, out-of-range values, and warmup where the
 * schedule has none (constant), naming the key and what it accepts. */
LM_API lm_status lm_schedule_make(lm_schedule *out, const char *name, double base_lr, int64_t total_steps,
                                  int64_t warmup_steps, double warmup_ratio, lm_config *kwargs);

#endif
