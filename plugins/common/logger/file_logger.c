/* A line logger's output file (see file_logger.h). */
#include "file_logger.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

lm_status file_logger_open(file_logger *f, const char *name, lm_config *cfg, const char *mode) {
    *f = (file_logger){.name = name};
    const char *path = lm_config_string(cfg, "path", NULL);
    int64_t every = lm_config_int(cfg, "every", 1);
    if (!path || !*path) return lm_error_set(LM_ERR_INVALID, "logger '%s' needs a 'path' for its output file", name);
    if (every < 1) return lm_error_set(LM_ERR_INVALID, "logger '%s': 'every' must be at least 1", name);
    f->every = every;
    f->path = malloc(strlen(path) + 1);
    if (f->path) strcpy(f->path, path);
    f->file = fopen(path, mode);
    if (!f->file || !f->path) {
        lm_status s = lm_error_set(LM_ERR_IO, "logger '%s' cannot open '%s': %s", name, path, strerror(errno));
        file_logger_close(f);
        return s;
    }
    return LM_OK;
}

lm_status file_logger_write(file_logger *f, const void *data, size_t len) {
    if (fwrite(data, 1, len, f->file) != len || fflush(f->file) != 0)
        return lm_error_set(LM_ERR_IO, "logger '%s' cannot write '%s': %s (disk full?)", f->name, f->path,
                            strerror(errno));
    return LM_OK;
}

lm_status file_logger_flush(file_logger *f) {
    return fflush(f->file) == 0 ? LM_OK : lm_error_set(LM_ERR_IO, "cannot flush '%s'", f->path);
}

void file_logger_close(file_logger *f) {
    if (f->file) fclose(f->file);
    free(f->path);
    f->file = NULL;
    f->path = NULL;
}
