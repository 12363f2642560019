/* Logger 'jsonl': one JSON object per line, for scripts and plots.
 *   {"event":"step","step":50,"epoch":0.12,"elapsed":3.1,"loss":...,
 *    "learning_rate":...,"grad_norm":...,"tokens_per_second":...}
 * Step lines come from STEP events, which the trainer sends at its logging
 * points (logging_steps); `every` thins them further: a STEP is written
 * when its step is a multiple of `every` or the last one, its loss the
 * mean step loss since the previous step line.  Evaluations (at any step),
 * run begin/end and messages are always written; PROGRESS events (every
 * optimizer step, no scalars) never: they are for progress bars and would
 * be a line per step.  Each line is flushed, so a crash loses at most the
 * line being written. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcore/lmcore.h"

typedef struct jsonl {
    FILE *file;
    char *path;
    int64_t every;
    /* The loss since the last step line: each STEP's loss is a mean over
     * the steps since the previous STEP, so it counts with that many. */
    double window_loss;
    int64_t window_steps, last_step_event;
    lm_buffer line;
} jsonl;

static lm_status jsonl_create(void **self, lm_config *cfg) {
    const char *path = lm_config_string(cfg, "path", NULL);
    int64_t every = lm_config_int(cfg, "every", 1);
    int append = lm_config_bool(cfg, "append", 0);
    if (!path || !*path) return lm_error_set(LM_ERR_INVALID, "logger 'jsonl' needs a 'path' for its output file");
    if (every < 1) return lm_error_set(LM_ERR_INVALID, "logger 'jsonl': 'every' must be at least 1");
    jsonl *j = calloc(1, sizeof *j);
    if (!j) return lm_error_set(LM_ERR_NOMEM, "out of memory creating the jsonl logger");
    j->every = every;
    j->path = malloc(strlen(path) + 1);
    if (j->path) strcpy(j->path, path);
    j->file = fopen(path, append ? "a" : "w");
    if (!j->file || !j->path) {
        lm_status s = lm_error_set(LM_ERR_IO, "logger 'jsonl' cannot open '%s': %s", path, strerror(errno));
        if (j->file) fclose(j->file);
        free(j->path);
        free(j);
        return s;
    }
    *self = j;
    return LM_OK;
}

static void jsonl_destroy(void *self) {
    jsonl *j = self;
    if (j->file) fclose(j->file);
    lm_buffer_free(&j->line);
    free(j->path);
    free(j);
}

static const char *event_name(lm_event_kind kind) {
    switch (kind) {
    case LM_EVENT_RUN_BEGIN: return "run_begin";
    case LM_EVENT_STEP: return "step";
    case LM_EVENT_EVAL: return "eval";
    case LM_EVENT_RUN_END: return "run_end";
    case LM_EVENT_MESSAGE: return "message";
    case LM_EVENT_PROGRESS: return "progress";
    }
    return "unknown";
}

static lm_status jsonl_log(void *self, const lm_event *ev) {
    jsonl *j = self;
    if (ev->kind == LM_EVENT_PROGRESS) return LM_OK;
    if (ev->kind == LM_EVENT_RUN_BEGIN) {
        /* A resumed run's first STEP covers the steps from here on only. */
        j->window_loss = 0;
        j->window_steps = 0;
        j->last_step_event = ev->step;
    }
    if (ev->kind == LM_EVENT_STEP) {
        double loss = NAN;
        lm_event_scalar(ev, "loss", &loss);
        int64_t covered = ev->step - j->last_step_event;
        if (covered < 1) covered = 1; /* out-of-order events: count the STEP once */
        j->last_step_event = ev->step;
        j->window_loss += loss * (double)covered;
        j->window_steps += covered;
        if (ev->step % j->every != 0 && ev->step != ev->total_steps) return LM_OK;
    }
    lm_buffer_clear(&j->line);
    lm_json_writer w;
    lm_json_writer_init(&w, &j->line, 0);
    lm_json_begin_object(&w);
    lm_json_key(&w, "event");
    lm_json_write_cstr(&w, event_name(ev->kind));
    lm_json_key(&w, "step");
    lm_json_write_int(&w, ev->step);
    lm_json_key(&w, "total_steps");
    lm_json_write_int(&w, ev->total_steps);
    lm_json_key(&w, "epoch");
    lm_json_write_number(&w, ev->epoch);
    lm_json_key(&w, "elapsed");
    lm_json_write_number(&w, ev->elapsed);
    if (ev->text) {
        lm_json_key(&w, ev->kind == LM_EVENT_MESSAGE ? "message" : "text");
        lm_json_write_cstr(&w, ev->text);
    }
    for (size_t i = 0; i < ev->n_scalars; i++) {
        lm_json_key(&w, ev->scalars[i].name);
        double v = ev->scalars[i].value;
        if (ev->kind == LM_EVENT_STEP && strcmp(ev->scalars[i].name, "loss") == 0 && j->window_steps > 0)
            v = j->window_loss / (double)j->window_steps;
        lm_json_write_number(&w, v);
    }
    lm_json_end_object(&w);
    LM_TRY(lm_json_writer_finish(&w));
    if (ev->kind == LM_EVENT_STEP) {
        j->window_loss = 0;
        j->window_steps = 0;
    }
    if (fwrite(j->line.data, 1, j->line.len, j->file) != j->line.len || fputc('\n', j->file) == EOF ||
        fflush(j->file) != 0)
        return lm_error_set(LM_ERR_IO, "logger 'jsonl' cannot write '%s': %s (disk full?)", j->path,
                            strerror(errno));
    return LM_OK;
}

static lm_status jsonl_flush(void *self) {
    jsonl *j = self;
    return fflush(j->file) == 0 ? LM_OK : lm_error_set(LM_ERR_IO, "cannot flush '%s'", j->path);
}

static const lm_logger_vtable jsonl_vtable = {jsonl_create, jsonl_destroy, jsonl_log, jsonl_flush};

LM_PLUGIN_DEFINE(LM_KIND_LOGGER, "jsonl", "1.0.0",
                 "One JSON object per logging step and evaluation, for scripts and plots", lm_logger_vtable,
                 jsonl_vtable)
