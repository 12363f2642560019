/* Opening a file a user named, for reading, without ever blocking on it.
 *
 * open() of a FIFO blocks until a writer appears (forever, in practice),
 * and read() of a character device such as /dev/zero or /dev/urandom never
 * ends.  Every path that reads a user's file (datasets, tokenizers, JSON,
 * safetensors, token caches, checkpoints, scripts) opens it here: the file
 * is opened with O_NONBLOCK, fstat()ed, refused unless it is a regular
 * file (the message names the path and what it is), and only then made
 * blocking again.  Internal to liblmcore; plugins read files through
 * lm_file_read (lmcore/file.h), which uses it. */
#ifndef LMCORE_USER_FILE_H
#define LMCORE_USER_FILE_H

#include <sys/stat.h>

#include "lmcore/status.h"

/* Opens `path` read-only (close-on-exec, blocking once checked) into *fd.
 * `st` (may be NULL) receives its fstat().  LM_ERR_IO when it cannot be
 * opened or is not a regular file; *fd is -1 then. */
LM_API lm_status lm_user_file_open(const char *path, int *fd, struct stat *st);
/* For callers that must open by name themselves (Lua's io.open): LM_OK
 * when `path` does not exist (the opener reports that) or is a regular
 * file; LM_ERR_IO naming what it is otherwise.  stat() never blocks. */
LM_API lm_status lm_user_file_check(const char *path);
/* "a FIFO (named pipe)", "a directory", "a character device" ... */
LM_API const char *lm_user_file_kind(mode_t mode);

#endif
