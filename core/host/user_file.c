/* Opening a user's file without blocking on it (see user_file.h). */
#include "user_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

const char *lm_user_file_kind(mode_t mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

static lm_status refuse(const char *path, mode_t mode) {
    return lm_error_set(LM_ERR_IO, "'%s' is %s, not a regular file: give the path of a regular file", path,
                        lm_user_file_kind(mode));
}

lm_status lm_user_file_open(const char *path, int *fd, struct stat *st) {
    *fd = -1;
    /* O_NONBLOCK: open() of a FIFO returns at once instead of waiting for
     * a writer; fstat() then tells what was opened. */
    int opened = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (opened < 0) {
        int err = errno;
        struct stat named; /* a socket cannot be opened at all (ENXIO): say what it is */
        if (stat(path, &named) == 0 && !S_ISREG(named.st_mode) && !S_ISDIR(named.st_mode))
            return refuse(path, named.st_mode);
        return lm_error_set(LM_ERR_IO, "cannot open '%s': %s", path, strerror(err));
    }
    struct stat info;
    if (fstat(opened, &info) != 0) {
        int err = errno;
        close(opened);
        return lm_error_set(LM_ERR_IO, "cannot stat '%s': %s", path, strerror(err));
    }
    if (!S_ISREG(info.st_mode)) {
        close(opened);
        return refuse(path, info.st_mode);
    }
    /* A regular file: reads block as usual (O_NONBLOCK has no effect on
     * regular files on Linux, but a caller may hand the fd to code that
     * assumes blocking semantics). */
    int flags = fcntl(opened, F_GETFL);
    if (flags < 0 || fcntl(opened, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int err = errno;
        close(opened);
        return lm_error_set(LM_ERR_IO, "cannot open '%s': %s", path, strerror(err));
    }
    if (st) *st = info;
    *fd = opened;
    return LM_OK;
}

lm_status lm_user_file_check(const char *path) {
    struct stat info;
    if (stat(path, &info) != 0 || S_ISREG(info.st_mode)) return LM_OK;
    return refuse(path, info.st_mode);
}
