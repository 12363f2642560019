/* lmcore — host memory: aligned allocations, growable byte buffers and token-id arrays. */
#ifndef LMCORE_MEMORY_H
#define LMCORE_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 64-byte aligned, zero-filled host memory; returns LM_ERR_NOMEM with a message
 * naming `what` and the size when the allocation fails. */
LM_API lm_status lm_alloc(void **out, size_t nbytes, const char *what);
LM_API void lm_free(void *ptr);

/* A growable byte buffer (always NUL-terminated for text use). */
typedef struct lm_buffer {
    char *data;
    size_t len;
    size_t cap;
} lm_buffer;

LM_API lm_status lm_buffer_reserve(lm_buffer *b, size_t cap);
LM_API lm_status lm_buffer_append(lm_buffer *b, const void *data, size_t len);
LM_API lm_status lm_buffer_appendf(lm_buffer *b, const char *fmt, ...) LM_PRINTF(2, 3);
LM_API void lm_buffer_clear(lm_buffer *b);
LM_API void lm_buffer_free(lm_buffer *b);

/* A growable array of token ids. */
typedef struct lm_ids {
    int32_t *data;
    size_t len;
    size_t cap;
} lm_ids;

LM_API lm_status lm_ids_push(lm_ids *ids, int32_t id);
LM_API lm_status lm_ids_append(lm_ids *ids, const int32_t *src, size_t n);
LM_API void lm_ids_clear(lm_ids *ids);
LM_API void lm_ids_free(lm_ids *ids);

#ifdef __cplusplus
}
#endif
#endif
