/* One run per output folder (see dir_lock.h). */
#include "dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmcore/file.h"

struct lm_dir_lock {
    int fd;
    int created_dir; /* the folder did not exist before: removed on release if empty */
    char dir[PATH_MAX];
    char path[PATH_MAX + sizeof LM_DIR_LOCK_FILE + 1];
};

/* The process id written in the lock file by its holder, or 0 (a holder
 * that has not written it yet). */
static long holder_pid(int fd) {
    char text[32] = {0};
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) return 0;
    text[n] = '\0';
    return strtol(text, NULL, 10);
}

static lm_status refuse_busy(const lm_dir_lock *lock, const char *setting, long pid) {
    char who[64];
    if (pid <= 0) snprintf(who, sizeof who, "another lmcore process");
    else if (pid == (long)getpid()) snprintf(who, sizeof who, "this process (pid %ld)", pid);
    else snprintf(who, sizeof who, "lmcore process %ld", pid);
    return lm_error_set(LM_ERR_INVALID,
                        "%s '%s' is in use by another run: %s holds %s; wait for that run to end (or stop it), or give "
                        "this run another %s",
                        setting, lock->dir, who, lock->path, setting);
}

/* One attempt: 1 locked, 0 the file was replaced meanwhile (try again),
 * -1 an error (set). */
static int try_lock(lm_dir_lock *lock, const char *setting) {
    int fd = open(lock->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0) {
        lm_error_set(LM_ERR_IO, "cannot create the lock file '%s' of %s '%s': %s", lock->path, setting, lock->dir,
                     strerror(errno));
        return -1;
    }
    struct stat held, named;
    if (fstat(fd, &held) != 0 || !S_ISREG(held.st_mode)) {
        close(fd);
        lm_error_set(LM_ERR_IO, "the lock file '%s' of %s '%s' is not a regular file: remove it", lock->path,
                     setting, lock->dir);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        long pid = err == EWOULDBLOCK ? holder_pid(fd) : 0;
        close(fd);
        if (err == EWOULDBLOCK) refuse_busy(lock, setting, pid);
        else lm_error_set(LM_ERR_IO, "cannot lock '%s': %s", lock->path, strerror(err));
        return -1;
    }
    /* The previous holder removes the file when it releases: if it did so
     * between our open() and flock(), we hold a file nobody else sees. */
    if (stat(lock->path, &named) != 0 || named.st_ino != held.st_ino || named.st_dev != held.st_dev) {
        close(fd);
        return 0;
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        int err = errno;
        close(fd);
        lm_error_set(LM_ERR_IO, "cannot write the lock file '%s': %s", lock->path, strerror(err));
        return -1;
    }
    lock->fd = fd;
    return 1;
}

lm_status lm_dir_lock_acquire(const char *dir, const char *setting, lm_dir_lock **out) {
    *out = NULL;
    lm_dir_lock *lock = calloc(1, sizeof *lock);
    if (!lock) return lm_error_set(LM_ERR_NOMEM, "out of memory locking %s '%s'", setting, dir);
    lock->fd = -1;
    if (snprintf(lock->dir, sizeof lock->dir, "%s", dir) >= (int)sizeof lock->dir) {
        free(lock);
        return lm_error_set(LM_ERR_INVALID, "%s '%s' is too long a path", setting, dir);
    }
    snprintf(lock->path, sizeof lock->path, "%s/%s", dir, LM_DIR_LOCK_FILE);
    struct stat st;
    lock->created_dir = stat(dir, &st) != 0 && errno == ENOENT;
    lm_status status = lm_mkdir_p(dir);
    for (int attempt = 0; status == LM_OK; attempt++) {
        int got = try_lock(lock, setting);
        if (got == 1) break;
        if (got < 0 || attempt == 100) {
            if (got == 0) lm_error_set(LM_ERR_IO, "cannot lock %s '%s': its lock file keeps being replaced", setting, dir);
            status = lm_error_status();
        }
    }
    if (status != LM_OK) {
        if (lock->created_dir) rmdir(dir); /* made here, still empty: leave nothing */
        free(lock);
        return status;
    }
    *out = lock;
    return LM_OK;
}

void lm_dir_lock_release(lm_dir_lock *lock) {
    if (!lock) return;
    /* Removed before it is unlocked: a process waiting on this file then
     * sees it replaced and starts over on a fresh one (try_lock). */
    unlink(lock->path);
    close(lock->fd);
    if (lock->created_dir) rmdir(lock->dir); /* fails, as it should, unless empty */
    free(lock);
}
