/* lmcore — status codes and the thread-local error message.
 *
 * Every fallible function in lmcore (core, kernels, plugins) returns an
 * lm_status: LM_OK (0) on success, a negative code on failure.  Whoever
 * detects the failure records one human-readable line with lm_error_set()
 * (what failed, which file or key, how to fix it); callers that add context
 * use lm_error_prefix().  Nothing in the library or in plugins calls exit(). */
#ifndef LMCORE_STATUS_H
#define LMCORE_STATUS_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LM_API __attribute__((visibility("default")))
#define LM_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#define LM_NODISCARD __attribute__((warn_unused_result))
#else
#define LM_API
#define LM_PRINTF(fmt_index, first_arg)
#define LM_NODISCARD
#endif

typedef int lm_status;

enum {
    LM_OK = 0,
    LM_ERR_INVALID = -1,     /* bad argument, bad config value, misuse          */
    LM_ERR_IO = -2,          /* a file could not be opened, read or written     */
    LM_ERR_FORMAT = -3,      /* a file exists but its content is corrupt/foreign */
    LM_ERR_NOMEM = -4,       /* host or device out of memory                    */
    LM_ERR_NOT_FOUND = -5,   /* unknown plugin, key, token, split ...           */
    LM_ERR_UNSUPPORTED = -6, /* valid request this build or plugin cannot serve  */
    LM_ERR_INTERRUPTED = -7, /* the user pressed Ctrl-C                         */
    LM_ERR_NUMERIC = -8,     /* NaN or Inf in a loss or gradient                */
    LM_ERR_DEVICE = -9,      /* CUDA driver / runtime / cuBLAS failure          */
    LM_ERR_ABI = -10,        /* plugin built against an incompatible ABI        */
    LM_ERR_INTERNAL = -11    /* a broken invariant: a bug in lmcore             */
};

/* Short name of a status code ("invalid argument", "I/O error" ...). */
LM_API const char *lm_status_name(lm_status status);

/* Records the message of the current failure for this thread and returns
 * `status` so that `return lm_error_set(...)` reads naturally.  The file and
 * line are kept separately (lm_error_location) so that the one-line message a
 * user sees stays clean. */
LM_API lm_status lm_error_set_at(const char *file, int line, lm_status status, const char *fmt, ...)
    LM_PRINTF(4, 5);
LM_API lm_status lm_error_vset_at(const char *file, int line, lm_status status, const char *fmt, va_list ap);

/* Prepends context ("loading tokenizer 'x.json': ") to the current message. */
LM_API void lm_error_prefix(const char *fmt, ...) LM_PRINTF(1, 2);

/* The message of the last failure on this thread ("" if none) and where it
 * was raised ("core/config.c:120"). */
LM_API const char *lm_error_message(void);
LM_API const char *lm_error_location(void);
LM_API lm_status lm_error_status(void);
LM_API void lm_error_clear(void);

#define lm_error_set(status, ...) lm_error_set_at(__FILE__, __LINE__, (status), __VA_ARGS__)

/* Propagates a failure: LM_TRY(f(x)); returns the status if it is not LM_OK. */
#define LM_TRY(expr)                                                                               \
    do {                                                                                           \
        lm_status lm_try_status_ = (expr);                                                         \
        if (lm_try_status_ != LM_OK) return lm_try_status_;                                        \
    } while (0)

/* For functions with a cleanup label: LM_CHECK(f(x)); jumps to `fail` with
 * `status` set.  The enclosing function declares `lm_status status`. */
#define LM_CHECK(expr)                                                                             \
    do {                                                                                           \
        status = (expr);                                                                           \
        if (status != LM_OK) goto fail;                                                            \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
