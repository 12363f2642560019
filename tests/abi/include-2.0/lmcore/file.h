/* lmcore — whole files: reading, atomic writing, making folders. */
#ifndef LMCORE_FILE_H
#define LMCORE_FILE_H

#include <stddef.h>

#include "memory.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

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
