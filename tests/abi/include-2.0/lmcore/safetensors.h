/* lmcore — safetensors files (Hugging Face's weight format).
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"k": "v"}}
 * then the data.  The reader checks every offset against the file size, that
 * the ranges match dtype × shape, are in order without overlap or gaps, and
 * that the header is valid JSON; a corrupt file is an LM_ERR_FORMAT naming the
 * file and the tensor.  Data are memory-mapped read-only. */
#ifndef LMCORE_SAFETENSORS_H
#define LMCORE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_safetensors lm_safetensors;

LM_API lm_status lm_safetensors_open(const char *path, lm_safetensors **out);
LM_API void lm_safetensors_close(lm_safetensors *st);
LM_API size_t lm_safetensors_count(const lm_safetensors *st);
/* Tensor `index` in file order; t->data points into the mapping. */
LM_API lm_status lm_safetensors_at(const lm_safetensors *st, size_t index, const char **name, lm_tensor *t);
LM_API lm_status lm_safetensors_find(const lm_safetensors *st, const char *name, lm_tensor *t); /* LM_ERR_NOT_FOUND */
/* Metadata value or NULL. */
LM_API const char *lm_safetensors_metadata(const lm_safetensors *st, const char *key);

/* Reads tensor `name` into `dst` as float32 (converting F16/BF16/F64), after
 * checking that its shape equals `shape[0..ndim)`; mismatches name both shapes. */
LM_API lm_status lm_safetensors_read_f32(const lm_safetensors *st, const char *name, const int64_t *shape, int ndim,
                                         float *dst);

/* Writing: collect entries, then write atomically (temp file + rename). */
typedef struct lm_safetensors_entry {
    const char *name;
    lm_tensor tensor; /* data is only read during write */
} lm_safetensors_entry;

/* metadata: NULL or alternating key, value strings ending with NULL. */
LM_API lm_status lm_safetensors_write(const char *path, const lm_safetensors_entry *entries, size_t n,
                                      const char *const *metadata);

#ifdef __cplusplus
}
#endif
#endif
