/* lmcore — host tensors, aligned memory and growable byte buffers. */
#ifndef LMCORE_TENSOR_H
#define LMCORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lm_dtype {
    LM_F32 = 0,
    LM_F16 = 1,
    LM_BF16 = 2,
    LM_I32 = 3,
    LM_I64 = 4,
    LM_U16 = 5,
    LM_U8 = 6,
    LM_F64 = 7,
    LM_DTYPE_COUNT
} lm_dtype;

#define LM_MAX_DIMS 8

/* A view: shape and dtype over memory it may or may not own. */
typedef struct lm_tensor {
    lm_dtype dtype;
    int32_t ndim;
    int64_t shape[LM_MAX_DIMS];
    void *data;
} lm_tensor;

LM_API size_t lm_dtype_size(lm_dtype dtype);
/* Safetensors spelling: "F32", "BF16", "I32" ... */
LM_API const char *lm_dtype_name(lm_dtype dtype);
LM_API lm_status lm_dtype_parse(const char *name, lm_dtype *out);
LM_API int64_t lm_tensor_numel(const lm_tensor *t);
LM_API size_t lm_tensor_nbytes(const lm_tensor *t);

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

/* Whole-file helpers with clear errors.  lm_file_read reads everything into a
 * NUL-terminated buffer.  lm_file_write_atomic writes to "<path>.tmp.<pid>" then
 * renames, so a reader sees the old file or the new one, never half of it. */
LM_API lm_status lm_file_read(const char *path, lm_buffer *out);
LM_API lm_status lm_file_write_atomic(const char *path, const void *data, size_t len);
/* Creates a directory and its parents (like mkdir -p). */
LM_API lm_status lm_mkdir_p(const char *path);

#ifdef __cplusplus
}
#endif
#endif
