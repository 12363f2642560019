/* lmcore — host logging, progress reporting and interruption.
 *
 * lm_log() is for diagnostics (what a plugin decided, warnings); training
 * metrics go through logger plugins instead.  Progress bars are drawn on
 * stderr when it is a terminal and become periodic plain lines otherwise,
 * so long work (tokenizer training, cache building) never looks hung. */
#ifndef LMCORE_LOG_H
#define LMCORE_LOG_H

#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lm_log_level {
    LM_LOG_DEBUG = 0,
    LM_LOG_INFO = 1,
    LM_LOG_WARN = 2,
    LM_LOG_ERROR = 3,
    LM_LOG_QUIET = 4
} lm_log_level;

LM_API void lm_log(lm_log_level level, const char *fmt, ...) LM_PRINTF(2, 3);
LM_API void lm_log_set_level(lm_log_level level);
LM_API lm_log_level lm_log_get_level(void);
/* Parses "debug|info|warn|error|quiet". */
LM_API lm_status lm_log_level_parse(const char *name, lm_log_level *out);

/* A progress report over `total` units (0: unknown total). */
typedef struct lm_progress lm_progress;
LM_API lm_progress *lm_progress_begin(const char *label, uint64_t total);
LM_API void lm_progress_update(lm_progress *p, uint64_t done);
LM_API void lm_progress_end(lm_progress *p); /* NULL is fine */

/* Ctrl-C: the core's SIGINT handler sets a flag; long-running loops poll it
 * and return LM_ERR_INTERRUPTED (after saving what must be saved). */
LM_API int lm_interrupted(void);
LM_API void lm_interrupt_request(void);
LM_API void lm_interrupt_clear(void);

/* Monotonic seconds, for throughput figures. */
LM_API double lm_time_seconds(void);

#ifdef __cplusplus
}
#endif
#endif
