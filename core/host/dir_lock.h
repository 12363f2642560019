/* One run per output folder: a lock file `<dir>/.lmcore.lock` held with
 * flock() and holding the holder's process id.
 *
 * Two runs writing one output_dir interleave their logs and break each
 * other's checkpoint renames; the second is refused at its start, with a
 * message naming the first run's process.  flock() locks belong to the
 * open file, so the kernel releases them when the process dies however it
 * dies (SIGKILL, a crash, the OOM killer): a lock file left by a dead run
 * never blocks the next.  Released, the lock file is removed, and so is
 * the folder when the lock created it and nothing else was written there
 * (a run that failed before writing leaves nothing behind).  Internal to
 * liblmcore (the Lua runtime's lm.lock_dir, the trainer's checkpoint_dir). */
#ifndef LMCORE_DIR_LOCK_H
#define LMCORE_DIR_LOCK_H

#include "lmcore/status.h"

typedef struct lm_dir_lock lm_dir_lock;

/* The name of the lock file inside the locked folder. */
#define LM_DIR_LOCK_FILE ".lmcore.lock"

/* Creates `dir` (and its parents) if needed and locks it.  `setting` names
 * it in messages ("output_dir").  LM_ERR_INVALID when another process
 * holds it (the message names that process), LM_ERR_IO when the folder or
 * the lock file cannot be made. */
LM_API lm_status lm_dir_lock_acquire(const char *dir, const char *setting, lm_dir_lock **out);
/* Unlocks, removes the lock file (and the folder if it made it and it is
 * now empty) and frees; NULL is a no-op. */
LM_API void lm_dir_lock_release(lm_dir_lock *lock);

#endif
