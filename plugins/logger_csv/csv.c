/* Logger 'csv': one row per logging point (STEP), evaluation and run end,
 * for spreadsheets and pandas.  PROGRESS events (every optimizer step, no
 * scalars) make no row: the trainer's logging_steps decides the step rows.
 *
 *   path   output file (required; replaced)
 *   every  thins the logging points: a step row only at a STEP whose step
 *          is a multiple of N, and at the last step (1: every STEP); its
 *          loss is the mean step loss since the previous row
 *
 *   event,step,epoch,elapsed,loss,learning_rate,grad_norm,tokens_per_second,...
 *   step,50,0.025,42.1,10.9,2e-05,3.1,1520.4,...
 *
 * A CSV header cannot grow, so it is fixed at the first row: the scalars of
 * the first STEP event in their order (system metrics included), then the
 * trainer's evaluation and run-end scalars not already there.  A scalar
 * that shows up later and has no column is left out (with one warning).
 * Evaluations before the first STEP (eval_on_start) are held until it
 * comes, then written first, so that they do not fix the header without
 * the step columns.
 * Fields are quoted as RFC 4180 says (a comma, quote or line break inside
 * quotes, quotes doubled); numbers are written with the fewest digits that
 * read back to the same double; an absent value is an empty field.  Every
 * row is flushed, so a crash loses at most the row being written. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_logger.h"
#include "lmcore/lmcore.h"
#include "loss_window.h"

/* What the trainer reports after an evaluation and at the end (logger.h). */
static const char *const eval_columns[] = {"train_loss",  "eval_loss",    "perplexity",
                                           "epoch_index", "eval_runtime", "eval_samples_per_second"};
static const char *const end_columns[] = {"train_runtime", "train_samples_per_second", "train_steps_per_second",
                                          "train_loss", "eval_loss", "perplexity"};

/* A row that came before the first STEP (an evaluation before training:
 * eval_on_start), held until that STEP fixes the header. */
typedef struct held_row {
    lm_event ev;       /* its scalars point at names/values below */
    lm_scalar *scalars;
    char **names;
} held_row;

#define MAX_HELD_ROWS 16

typedef struct csv {
    file_logger out;
    loss_window window; /* the loss of the next step row */
    char **columns;     /* scalar columns, after event,step,epoch,elapsed; NULL until the header is written */
    size_t n_columns;
    int header_written, warned;
    lm_buffer line;
    held_row held[MAX_HELD_ROWS];
    size_t n_held;
} csv;

static lm_status csv_create(void **self, lm_config *cfg) {
    csv *c = calloc(1, sizeof *c);
    if (!c) return lm_error_set(LM_ERR_NOMEM, "out of memory creating the csv logger");
    lm_status status = file_logger_open(&c->out, "csv", cfg, "w");
    if (status != LM_OK) {
        free(c);
        return status;
    }
    *self = c;
    return LM_OK;
}

static void free_held(csv *c) {
    for (size_t i = 0; i < c->n_held; i++) {
        held_row *h = &c->held[i];
        for (size_t k = 0; k < h->ev.n_scalars; k++) free(h->names[k]);
        free(h->names);
        free(h->scalars);
    }
    c->n_held = 0;
}

static lm_status write_held_rows(csv *c);

static void csv_destroy(void *self) {
    csv *c = self;
    /* A run that stopped before its first step still gets its rows. */
    if (c->n_held > 0 && write_held_rows(c) != LM_OK)
        lm_log(LM_LOG_WARN, "logger 'csv': the rows before the first step were not written to '%s'", c->out.path);
    free_held(c);
    file_logger_close(&c->out);
    for (size_t i = 0; i < c->n_columns; i++) free(c->columns[i]);
    free(c->columns);
    lm_buffer_free(&c->line);
    free(c);
}

/* ---- fields ------------------------------------------------------------------------ */

static lm_status append_text(lm_buffer *b, const char *text) {
    if (!strpbrk(text, ",\"\r\n")) return lm_buffer_append(b, text, strlen(text));
    LM_TRY(lm_buffer_append(b, "\"", 1));
    for (const char *p = text; *p; p++) {
        if (*p == '"') LM_TRY(lm_buffer_append(b, "\"", 1));
        LM_TRY(lm_buffer_append(b, p, 1));
    }
    return lm_buffer_append(b, "\"", 1);
}

/* Integers as integers ("128", not "1.28e+02"), the rest with the shortest
 * %g that reads back exactly: lossless, yet readable. */
static lm_status append_number(lm_buffer *b, double v) {
    if (isnan(v)) return lm_buffer_append(b, "NaN", 3);
    if (isinf(v)) return v > 0 ? lm_buffer_append(b, "inf", 3) : lm_buffer_append(b, "-inf", 4);
    if (v == floor(v) && fabs(v) < 1e15) return lm_buffer_appendf(b, "%.0f", v);
    char text[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, v);
        if (strtod(text, NULL) == v) break;
    }
    return lm_buffer_append(b, text, strlen(text));
}

/* ---- header -------------------------------------------------------------------------- */

static int has_column(const csv *c, const char *name) {
    for (size_t i = 0; i < c->n_columns; i++)
        if (strcmp(c->columns[i], name) == 0) return 1;
    return 0;
}

static lm_status add_column(csv *c, const char *name, size_t cap) {
    if (has_column(c, name)) return LM_OK;
    if (c->n_columns == cap) return lm_error_set(LM_ERR_INTERNAL, "logger 'csv': column table overflow");
    c->columns[c->n_columns] = malloc(strlen(name) + 1);
    if (!c->columns[c->n_columns]) return lm_error_set(LM_ERR_NOMEM, "out of memory in the csv logger");
    strcpy(c->columns[c->n_columns++], name);
    return LM_OK;
}

static lm_status write_line(csv *c) { return file_logger_write(&c->out, c->line.data, c->line.len); }

/* The first row's event decides the scalar columns (see the top comment). */
static lm_status write_header(csv *c, const lm_event *first) {
    size_t n_fixed = sizeof eval_columns / sizeof *eval_columns + sizeof end_columns / sizeof *end_columns;
    size_t cap = (first->kind == LM_EVENT_STEP ? first->n_scalars : 0) + n_fixed;
    c->columns = calloc(cap ? cap : 1, sizeof *c->columns);
    if (!c->columns) return lm_error_set(LM_ERR_NOMEM, "out of memory in the csv logger");
    if (first->kind == LM_EVENT_STEP)
        for (size_t i = 0; i < first->n_scalars; i++) LM_TRY(add_column(c, first->scalars[i].name, cap));
    for (size_t i = 0; i < sizeof eval_columns / sizeof *eval_columns; i++) LM_TRY(add_column(c, eval_columns[i], cap));
    for (size_t i = 0; i < sizeof end_columns / sizeof *end_columns; i++) LM_TRY(add_column(c, end_columns[i], cap));
    lm_buffer_clear(&c->line);
    LM_TRY(lm_buffer_append(&c->line, "event,step,epoch,elapsed", 24));
    for (size_t i = 0; i < c->n_columns; i++) {
        LM_TRY(lm_buffer_append(&c->line, ",", 1));
        LM_TRY(append_text(&c->line, c->columns[i]));
    }
    LM_TRY(lm_buffer_append(&c->line, "\n", 1));
    c->header_written = 1;
    return write_line(c);
}

/* ---- rows ---------------------------------------------------------------------------- */

static void warn_unknown_columns(csv *c, const lm_event *ev) {
    if (c->warned) return;
    for (size_t i = 0; i < ev->n_scalars; i++) {
        if (has_column(c, ev->scalars[i].name)) continue;
        lm_log(LM_LOG_WARN, "logger 'csv': scalar '%s' appeared after the header of '%s' was written; left out",
               ev->scalars[i].name, c->out.path);
        c->warned = 1;
        return;
    }
}

static lm_status write_row(csv *c, const lm_event *ev, const char *event, double window_mean) {
    if (!c->header_written) LM_TRY(write_header(c, ev));
    warn_unknown_columns(c, ev);
    lm_buffer_clear(&c->line);
    LM_TRY(lm_buffer_appendf(&c->line, "%s,%lld,", event, (long long)ev->step));
    LM_TRY(append_number(&c->line, ev->epoch));
    LM_TRY(lm_buffer_append(&c->line, ",", 1));
    LM_TRY(append_number(&c->line, ev->elapsed));
    for (size_t i = 0; i < c->n_columns; i++) {
        LM_TRY(lm_buffer_append(&c->line, ",", 1));
        double v;
        if (!lm_event_scalar(ev, c->columns[i], &v)) continue; /* absent: empty field */
        if (ev->kind == LM_EVENT_STEP && strcmp(c->columns[i], "loss") == 0) v = window_mean;
        LM_TRY(append_number(&c->line, v));
    }
    LM_TRY(lm_buffer_append(&c->line, "\n", 1));
    return write_line(c);
}

static const char *event_name(lm_event_kind kind) {
    return kind == LM_EVENT_STEP ? "step" : kind == LM_EVENT_EVAL ? "eval" : "run_end";
}

/* Copies a row that came before the first STEP (its names and values: the
 * event's own are the caller's until it returns). */
static lm_status hold_row(csv *c, const lm_event *ev) {
    held_row *h = &c->held[c->n_held];
    memset(h, 0, sizeof *h);
    h->ev = *ev;
    h->ev.text = NULL;
    h->scalars = calloc(ev->n_scalars ? ev->n_scalars : 1, sizeof *h->scalars);
    h->names = calloc(ev->n_scalars ? ev->n_scalars : 1, sizeof *h->names);
    if (!h->scalars || !h->names) {
        free(h->scalars);
        free(h->names);
        return lm_error_set(LM_ERR_NOMEM, "out of memory in the csv logger");
    }
    c->n_held++;
    h->ev.n_scalars = 0;
    for (size_t k = 0; k < ev->n_scalars; k++) {
        h->names[k] = strdup(ev->scalars[k].name);
        if (!h->names[k]) return lm_error_set(LM_ERR_NOMEM, "out of memory in the csv logger");
        h->scalars[k].name = h->names[k];
        h->scalars[k].value = ev->scalars[k].value;
        h->ev.n_scalars = k + 1;
    }
    h->ev.scalars = h->scalars;
    return LM_OK;
}

/* The held rows, after the header (which the first of them fixes when no
 * STEP came at all). */
static lm_status write_held_rows(csv *c) {
    lm_status status = LM_OK;
    for (size_t i = 0; i < c->n_held && status == LM_OK; i++)
        status = write_row(c, &c->held[i].ev, event_name(c->held[i].ev.kind), NAN);
    free_held(c);
    return status;
}

static lm_status csv_log(void *self, const lm_event *ev) {
    csv *c = self;
    switch (ev->kind) {
    case LM_EVENT_STEP:
    case LM_EVENT_EVAL:
    case LM_EVENT_RUN_END: break;
    case LM_EVENT_RUN_BEGIN:
        /* A resumed run's first STEP covers the steps from here on only. */
        loss_window_start(&c->window, ev->step);
        return LM_OK; /* begin and messages are text: the jsonl and console loggers keep them */
    default: return LM_OK; /* messages; PROGRESS has no scalars and would be a row per step */
    }
    double window_mean = NAN;
    if (ev->kind == LM_EVENT_STEP) {
        if (!loss_window_add(&c->window, ev, c->out.every)) return LM_OK;
        window_mean = loss_window_take_mean(&c->window);
    }
    /* The header takes its step columns from the first STEP: an evaluation
     * before it waits for it (a run's end does not: no STEP will come). */
    if (!c->header_written && ev->kind == LM_EVENT_EVAL && c->n_held < MAX_HELD_ROWS) return hold_row(c, ev);
    if (!c->header_written && ev->kind == LM_EVENT_STEP) LM_TRY(write_header(c, ev));
    if (c->n_held > 0) LM_TRY(write_held_rows(c));
    return write_row(c, ev, event_name(ev->kind), window_mean);
}

static lm_status csv_flush(void *self) {
    csv *c = self;
    return file_logger_flush(&c->out);
}

static const lm_logger_vtable csv_vtable = {csv_create, csv_destroy, csv_log, csv_flush};

LM_PLUGIN_DEFINE(LM_KIND_LOGGER, "csv", "1.0.0",
                 "One CSV row per logging step, evaluation and run end (header from the first step)", lm_logger_vtable,
                 csv_vtable)
