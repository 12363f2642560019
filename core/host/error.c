/* Thread-local error state: one message per thread, the last failure wins.
 * Functions that add context prefix it rather than replacing it, so the
 * user sees "loading model 'out/': model.safetensors: tensor 'x' ...". */
#include <stdio.h>
#include <string.h>

#include "lmcore/status.h"

#define LM_ERROR_CAPACITY 2048

static _Thread_local char error_message[LM_ERROR_CAPACITY];
static _Thread_local char error_location[256];
static _Thread_local lm_status error_status;

const char *lm_status_name(lm_status status) {
    switch (status) {
    case LM_OK: return "ok";
    case LM_ERR_INVALID: return "invalid argument";
    case LM_ERR_IO: return "I/O error";
    case LM_ERR_FORMAT: return "bad file format";
    case LM_ERR_NOMEM: return "out of memory";
    case LM_ERR_NOT_FOUND: return "not found";
    case LM_ERR_UNSUPPORTED: return "unsupported";
    case LM_ERR_INTERRUPTED: return "interrupted";
    case LM_ERR_NUMERIC: return "numerical error";
    case LM_ERR_DEVICE: return "device error";
    case LM_ERR_ABI: return "plugin ABI mismatch";
    case LM_ERR_INTERNAL: return "internal error";
    default: return "unknown error";
    }
}

lm_status lm_error_vset_at(const char *file, int line, lm_status status, const char *fmt, va_list ap) {
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    /* Keep only the path below the source root: "core/host/config.c:12". */
    const char *shown = file ? file : "?";
    const char *markers[] = {"/core/", "/plugins/", "/kernels/", "/tests/"};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        const char *hit = strstr(shown, markers[i]);
        if (hit) {
            shown = hit + 1;
            break;
        }
    }
    snprintf(error_location, sizeof error_location, "%s:%d", shown, line);
    error_status = status;
    return status;
}

lm_status lm_error_set_at(const char *file, int line, lm_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lm_error_vset_at(file, line, status, fmt, ap);
    va_end(ap);
    return status;
}

void lm_error_prefix(const char *fmt, ...) {
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    size_t plen = strlen(prefix), mlen = strlen(error_message);
    if (plen + mlen + 1 > sizeof error_message) mlen = sizeof error_message - plen - 1;
    memmove(error_message + plen, error_message, mlen);
    memcpy(error_message, prefix, plen);
    error_message[plen + mlen] = '\0';
}

const char *lm_error_message(void) { return error_message; }
const char *lm_error_location(void) { return error_location; }
lm_status lm_error_status(void) { return error_status; }

void lm_error_clear(void) {
    error_message[0] = '\0';
    error_location[0] = '\0';
    error_status = LM_OK;
}
