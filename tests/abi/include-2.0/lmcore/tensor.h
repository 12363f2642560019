/* lmcore — tensor dtypes and views.
 *
 * Host memory (lm_alloc, lm_buffer, lm_ids) is in memory.h and whole-file
 * helpers in file.h; this header includes both, as ABI 1's tensor.h held
 * all three, so that plugin code migrating from it compiles unchanged. */
#ifndef LMCORE_TENSOR_H
#define LMCORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "file.h"
#include "memory.h"
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

#ifdef __cplusplus
}
#endif
#endif
