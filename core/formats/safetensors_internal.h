/* Writing a safetensors file from memory the host cannot read directly (a
 * model's parameters or an optimizer's state on its device).  Not part of
 * the public API: exported (LM_API) for tests/safetensors only, as
 * schedule.h is for its test. */
#ifndef LMCORE_SAFETENSORS_INTERNAL_H
#define LMCORE_SAFETENSORS_INTERNAL_H

#include <stddef.h>

#include "lmcore/safetensors.h"

/* Copies `bytes` bytes of tensor t's data, starting `offset` bytes in, to
 * the host memory at dst.  t->data is whatever the entry's data was: for a
 * device, a device pointer. */
typedef lm_status (*lm_safetensors_reader)(void *ctx, const lm_tensor *t, size_t offset, void *dst, size_t bytes);

/* How much of a tensor lm_safetensors_write_via stages at a time. */
#define LM_SAFETENSORS_STAGE_BYTES ((size_t)4 << 20)

/* lm_safetensors_write where each entry's data is read through `read`, at
 * most LM_SAFETENSORS_STAGE_BYTES at a time into one staging buffer: saving
 * a model or a checkpoint needs no host copy of the whole parameter set or
 * optimizer state (for GPT-2 124M: 1.5 GB less at every checkpoint).  The
 * file is the same byte for byte; same atomic replace and errors. */
LM_API lm_status lm_safetensors_write_via(const char *path, const lm_safetensors_entry *entries, size_t n,
                                          const char *const *metadata, lm_safetensors_reader read, void *ctx);

/* A reader for entries whose data are pointers into `ctx`, an lm_device's
 * memory: one download per staged piece. */
LM_API lm_status lm_safetensors_read_device(void *ctx, const lm_tensor *t, size_t offset, void *dst, size_t bytes);

#endif
