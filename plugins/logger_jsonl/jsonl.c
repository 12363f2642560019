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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_logger.h"
#include "lmcore/lmcore.h"
#include "loss_window.h"

typedef struct jsonl {
    file_logger out;
    loss_window window; /* the loss of the next step line */
    lm_buffer line;
} jsonl;

static lm_status jsonl_create(void **self, lm_config *cfg) {
    int append = lm_config_bool(cfg, "append", 0);
    jsonl *j = calloc(1, sizeof *j);
    if (!j) return lm_error_set(LM_ERR_NOMEM, "out of memory creating the jsonl logger");
    lm_status status = file_logger_open(&j->out, "jsonl", cfg, append ? "a" : "w");
    if (status != LM_OK) {
        free(j);
        return status;
    }
    *self = j;
    return LM_OK;
}

static void jsonl_destroy(void *self) {
    jsonl *j = self;
    file_logger_close(&j->out);
    lm_buffer_free(&j->line);
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
    /* A resumed run's first STEP covers the steps from here on only. */
    if (ev->kind == LM_EVENT_RUN_BEGIN) loss_window_start(&j->window, ev->step);
    double window_mean = NAN;
    if (ev->kind == LM_EVENT_STEP) {
        if (!loss_window_add(&j->window, ev, j->out.every)) return LM_OK;
        window_mean = loss_window_take_mean(&j->window);
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
        if (ev->kind == LM_EVENT_STEP && strcmp(ev->scalars[i].name, "loss") == 0) v = window_mean;
        lm_json_write_number(&w, v);
    }
    lm_json_end_object(&w);
    LM_TRY(lm_json_writer_finish(&w));
    LM_TRY(lm_buffer_append(&j->line, "\n", 1));
    return file_logger_write(&j->out, j->line.data, j->line.len);
}

static lm_status jsonl_flush(void *self) {
    jsonl *j = self;
    return file_logger_flush(&j->out);
}

static const lm_logger_vtable jsonl_vtable = {jsonl_create, jsonl_destroy, jsonl_log, jsonl_flush};

LM_PLUGIN_DEFINE(LM_KIND_LOGGER, "jsonl", "1.0.0",
                 "One JSON object per logging step and evaluation, for scripts and plots", lm_logger_vtable,
                 jsonl_vtable)
