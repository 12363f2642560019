/* dtype facts and tensor sizes. */
#include <string.h>

#include "lmcore/tensor.h"

static const struct {
    const char *name;
    size_t size;
} dtype_table[LM_DTYPE_COUNT] = {
    [LM_F32] = {"F32", 4}, [LM_F16] = {"F16", 2}, [LM_BF16] = {"BF16", 2}, [LM_I32] = {"I32", 4},
    [LM_I64] = {"I64", 8}, [LM_U16] = {"U16", 2}, [LM_U8] = {"U8", 1},     [LM_F64] = {"F64", 8},
};

size_t lm_dtype_size(lm_dtype dtype) { return (unsigned)dtype < LM_DTYPE_COUNT ? dtype_table[dtype].size : 0; }

const char *lm_dtype_name(lm_dtype dtype) {
    return (unsigned)dtype < LM_DTYPE_COUNT ? dtype_table[dtype].name : "?";
}

lm_status lm_dtype_parse(const char *name, lm_dtype *out) {
    for (int i = 0; i < LM_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (lm_dtype)i;
            return LM_OK;
        }
    }
    return lm_error_set(LM_ERR_FORMAT, "unknown dtype '%s' (lmcore reads F32, F16, BF16, F64, I32, I64, U16, U8)",
                        name);
}

int64_t lm_tensor_numel(const lm_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t lm_tensor_nbytes(const lm_tensor *t) { return (size_t)lm_tensor_numel(t) * lm_dtype_size(t->dtype); }
