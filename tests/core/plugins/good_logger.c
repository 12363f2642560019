/* A well-formed test logger: appends "kind step text" lines to `path`. */
#include <stdio.h>
#include <stdlib.h>

#include "lmcore/lmcore.h"

typedef struct recorder {
    FILE *file;
} recorder;

static lm_status rec_create(void **self, lm_config *cfg) {
    const char *path = lm_config_string(cfg, "path", NULL);
    int64_t fail = lm_config_int(cfg, "fail", 0);
    if (fail) return lm_error_set(LM_ERR_INVALID, "test_logger was asked to fail");
    recorder *r = calloc(1, sizeof *r);
    if (!r) return lm_error_set(LM_ERR_NOMEM, "oom");
    if (path) {
        r->file = fopen(path, "a");
        if (!r->file) {
            free(r);
            return lm_error_set(LM_ERR_IO, "cannot open %s", path);
        }
    }
    *self = r;
    return LM_OK;
}

static void rec_destroy(void *self) {
    recorder *r = self;
    if (r->file) fclose(r->file);
    free(r);
}

static lm_status rec_log(void *self, const lm_event *ev) {
    recorder *r = self;
    if (r->file) {
        fprintf(r->file, "%d %lld %s\n", (int)ev->kind, (long long)ev->step, ev->text ? ev->text : "-");
        fflush(r->file);
    }
    return LM_OK;
}

/* Records that the core asked for a flush (after checkpoints, at the end). */
static lm_status rec_flush(void *self) {
    recorder *r = self;
    if (r->file) {
        fputs("flush\n", r->file);
        fflush(r->file);
    }
    return LM_OK;
}

static const lm_logger_vtable vtable = {rec_create, rec_destroy, rec_log, rec_flush};
LM_PLUGIN_DEFINE(LM_KIND_LOGGER, "test_logger", "0.0.1", "records events (tests)", lm_logger_vtable, vtable)
