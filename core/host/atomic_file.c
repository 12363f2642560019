/* Replacing a file atomically (see atomic_file.h). */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lmcore/file.h"

lm_status lm_atomic_file_open(lm_atomic_file *f, const char *path) {
    f->path = path;
    f->fd = -1;
    f->write_errno = 0;
    if (snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof f->tmp)
        return lm_error_set(LM_ERR_INVALID, "path too long: '%s'", path);
    /* 0666: the permissions come from the umask, as for any new file. */
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (f->fd < 0)
        return lm_error_set(LM_ERR_IO, "cannot create '%s': %s (is the directory writable?)", f->tmp,
                            strerror(errno));
    return LM_OK;
}

int lm_atomic_file_write(lm_atomic_file *f, const void *data, size_t len) {
    const char *p = data;
    while (len && !f->write_errno) {
        ssize_t n = write(f->fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            f->write_errno = n < 0 ? errno : EIO;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    return !f->write_errno;
}

lm_status lm_atomic_file_commit(lm_atomic_file *f) {
    int failed_errno = f->write_errno;
    if (!failed_errno && fsync(f->fd) != 0) failed_errno = errno;
    if (close(f->fd) != 0 && !failed_errno) failed_errno = errno;
    f->fd = -1;
    if (failed_errno) {
        unlink(f->tmp);
        return lm_error_set(LM_ERR_IO, "cannot write '%s': %s (disk full?); the previous file, if any, is untouched",
                            f->path, strerror(failed_errno));
    }
    if (rename(f->tmp, f->path) != 0) {
        int saved_errno = errno;
        unlink(f->tmp);
        return lm_error_set(LM_ERR_IO, "cannot rename '%s' to '%s': %s", f->tmp, f->path, strerror(saved_errno));
    }
    return LM_OK;
}

void lm_atomic_file_discard(lm_atomic_file *f) {
    close(f->fd);
    f->fd = -1;
    unlink(f->tmp);
}

lm_status lm_file_write_atomic(const char *path, const void *data, size_t len) {
    lm_atomic_file f;
    LM_TRY(lm_atomic_file_open(&f, path));
    lm_atomic_file_write(&f, data, len);
    return lm_atomic_file_commit(&f);
}
