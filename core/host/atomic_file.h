/* Replacing a file atomically: the bytes go to "<path>.tmp.<pid>", which is
 * synced and renamed over `path`, so a reader sees the old file or the new
 * one, never half of one, and a failed write leaves the old file as it was.
 * lm_file_write_atomic (lmcore/file.h) writes a buffer this way; the
 * safetensors writer streams a model through it without a copy in memory.
 * Internal to liblmcore. */
#ifndef LMCORE_ATOMIC_FILE_H
#define LMCORE_ATOMIC_FILE_H

#include <stddef.h>

#include "lmcore/status.h"

typedef struct lm_atomic_file {
    const char *path; /* the file replaced at commit */
    char tmp[4096];   /* "<path>.tmp.<pid>" */
    int fd;
    int write_errno; /* the first failed write's errno; 0 while every write succeeded */
} lm_atomic_file;

/* Creates the temporary file.  LM_ERR_INVALID when the path is too long,
 * LM_ERR_IO when the temporary cannot be created. */
lm_status lm_atomic_file_open(lm_atomic_file *f, const char *path);
/* Appends len bytes.  Returns 1, or 0 once a write has failed: the failure
 * is kept and reported by commit, so callers may stop writing early. */
int lm_atomic_file_write(lm_atomic_file *f, const void *data, size_t len);
/* Syncs and closes the temporary and renames it over the path.  On any
 * failure (a write before, the sync, the close, the rename) the temporary
 * is removed and the error names the path. */
lm_status lm_atomic_file_commit(lm_atomic_file *f);
/* Closes and removes the temporary: the previous file, if any, stays (for a
 * writer whose input failed; its own error stands). */
void lm_atomic_file_discard(lm_atomic_file *f);

#endif
