/* A line logger's output file (see file_logger.h). */
#include "file_logger.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What create() can check without creating anything: the path, if it
 * exists, is a regular file or a character device (/dev/null; a FIFO
 * would block the first write until a reader comes), and the folder that
 * will hold it exists and is writable. */
static lm_status check_path(const char *name, const char *path) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)) return LM_OK;
        return lm_error_set(LM_ERR_IO, "logger '%s' cannot write '%s': it is %s, not a regular file; give a file path",
                            name, path, S_ISDIR(st.st_mode)    ? "a directory"
                                        : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                                                               : "not a regular file");
    }
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return lm_error_set(LM_ERR_IO, "logger '%s' cannot open '%s': its folder '%s' does not exist (create it first)",
                            name, path, dir);
    if (access(dir, W_OK) != 0)
        return lm_error_set(LM_ERR_IO, "logger '%s' cannot open '%s': %s (folder '%s')", name, path, strerror(errno),
                            dir);
    return LM_OK;
}

lm_status file_logger_open(file_logger *f, const char *name, lm_config *cfg, const char *mode) {
    *f = (file_logger){.name = name};
    const char *path = lm_config_string(cfg, "path", NULL);
    int64_t every = lm_config_int(cfg, "every", 1);
    if (!path || !*path) return lm_error_set(LM_ERR_INVALID, "logger '%s' needs a 'path' for its output file", name);
    if (every < 1) return lm_error_set(LM_ERR_INVALID, "logger '%s': 'every' must be at least 1", name);
    if (strlen(mode) >= sizeof f->mode) return lm_error_set(LM_ERR_INVALID, "logger '%s': bad mode '%s'", name, mode);
    LM_TRY(check_path(name, path));
    f->every = every;
    strcpy(f->mode, mode);
    f->path = malloc(strlen(path) + 1);
    if (!f->path) return lm_error_set(LM_ERR_NOMEM, "out of memory creating logger '%s'", name);
    strcpy(f->path, path);
    return LM_OK;
}

lm_status file_logger_write(file_logger *f, const void *data, size_t len) {
    if (!f->file) {
        f->file = fopen(f->path, f->mode);
        if (!f->file)
            return lm_error_set(LM_ERR_IO, "logger '%s' cannot open '%s': %s", f->name, f->path, strerror(errno));
    }
    if (fwrite(data, 1, len, f->file) != len || fflush(f->file) != 0)
        return lm_error_set(LM_ERR_IO, "logger '%s' cannot write '%s': %s (disk full?)", f->name, f->path,
                            strerror(errno));
    return LM_OK;
}

lm_status file_logger_flush(file_logger *f) {
    if (!f->file) return LM_OK; /* nothing written yet */
    return fflush(f->file) == 0 ? LM_OK : lm_error_set(LM_ERR_IO, "cannot flush '%s'", f->path);
}

void file_logger_close(file_logger *f) {
    if (f->file) fclose(f->file);
    free(f->path);
    f->file = NULL;
    f->path = NULL;
}
