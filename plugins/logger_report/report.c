/* Logger 'report': at the end of a run, a report a person can read.
 *
 *   dir    folder for report.md and loss.svg (required; created when they
 *          are written)
 *   title  the plot's and the report's title ("Training report")
 *
 * The logger keeps the loss of every logging point (STEP events: the mean
 * step loss of each logging interval) and every evaluation (EVAL, at an
 * epoch end or mid-epoch), then at RUN_END writes loss.svg (loss_plot.c)
 * and report.md (report_markdown.c): the run description, the evaluation
 * table, final perplexity, throughput, runtime and hardware.  PROGRESS
 * events (every optimizer step) add no row and no point: they only move
 * the count of steps done, which an unfinished run's report states and its
 * plot's x axis ends at.  Both files are replaced atomically.  A run that
 * stops early (Ctrl-C, an error) still gets its report when the logger is
 * destroyed, marked as unfinished. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loss_plot.h"
#include "report.h"

static char *copy_string(const char *s) {
    char *c = malloc(strlen(s) + 1);
    if (c) strcpy(c, s);
    return c;
}

static lm_status report_create(void **self, lm_config *cfg) {
    const char *dir = lm_config_string(cfg, "dir", NULL);
    const char *title = lm_config_string(cfg, "title", "Training report");
    if (!dir || !*dir) return lm_error_set(LM_ERR_INVALID, "logger 'report' needs a 'dir' for report.md and loss.svg");
    /* The folder is made when the report is written: a run that fails
     * before its first step leaves nothing behind. */
    report *r = calloc(1, sizeof *r);
    if (!r) return lm_error_set(LM_ERR_NOMEM, "out of memory creating the report logger");
    r->dir = copy_string(dir);
    r->title = copy_string(title);
    r->n_params = r->train_blocks = r->eval_blocks = r->block_size = r->batch_size = NAN;
    r->runtime = r->samples_per_second = r->steps_per_second = r->train_loss = r->eval_loss = r->perplexity = NAN;
    if (!r->dir || !r->title) {
        free(r->dir);
        free(r->title);
        free(r);
        return lm_error_set(LM_ERR_NOMEM, "out of memory creating the report logger");
    }
    *self = r;
    return LM_OK;
}

static double scalar(const lm_event *ev, const char *name) {
    double v = NAN;
    lm_event_scalar(ev, name, &v);
    return v;
}

/* `steps`: how many optimizer steps the STEP's interval covers, so that a
 * short last interval weighs what it lasted. */
static void track(series_stats *s, const lm_event *ev, const char *name, double steps) {
    double v;
    if (!lm_event_scalar(ev, name, &v) || !isfinite(v)) return;
    if (s->count == 0 || v > s->peak) s->peak = v;
    s->sum += v * steps;
    s->inverse_sum += v > 0 ? steps / v : 0;
    s->count += steps;
}

static lm_status grow(void **array, size_t *cap, size_t need, size_t item) {
    if (need <= *cap) return LM_OK;
    size_t new_cap = *cap ? *cap * 2 : 256;
    while (new_cap < need) new_cap *= 2;
    void *p = realloc(*array, new_cap * item);
    if (!p) return lm_error_set(LM_ERR_NOMEM, "out of memory in the report logger (%zu entries)", new_cap);
    *array = p;
    *cap = new_cap;
    return LM_OK;
}

static lm_status on_begin(report *r, const lm_event *ev) {
    /* A second fit with the same logger starts a new report. */
    r->n_steps = r->n_evals = 0;
    r->ended = r->written = 0;
    r->steps_per_epoch = 0;
    r->first_step = r->last_step = r->last_step_event = ev->step;
    series_stats none = {0, 0, 0, 0};
    r->tokens_per_second = r->rss_mb = r->cpu_percent = none;
    r->gpu_utilization = r->gpu_memory_mb = r->gpu_power_w = none;
    free(r->description);
    r->description = copy_string(ev->text ? ev->text : "");
    if (!r->description) return lm_error_set(LM_ERR_NOMEM, "out of memory in the report logger");
    r->started = (double)time(NULL) - ev->elapsed;
    r->n_params = scalar(ev, "n_params");
    r->train_blocks = scalar(ev, "train_blocks");
    r->eval_blocks = scalar(ev, "eval_blocks");
    r->block_size = scalar(ev, "block_size");
    r->batch_size = scalar(ev, "batch_size");
    r->total_steps = ev->total_steps;
    r->total_epochs = ev->total_epochs;
    return LM_OK;
}

/* What a STEP, PROGRESS or EVAL event tells: how far the run got and how
 * long its epochs are; the planned steps and epochs are taken from the
 * training events (STEP, PROGRESS) only. */
static void note_step(report *r, const lm_event *ev) {
    if (ev->step > r->last_step) r->last_step = ev->step;
    if (ev->epoch > 0 && ev->step > 0) r->steps_per_epoch = (double)ev->step / ev->epoch;
    if (ev->kind == LM_EVENT_EVAL) return;
    r->total_steps = ev->total_steps;
    r->total_epochs = ev->total_epochs;
}

static lm_status on_step(report *r, const lm_event *ev) {
    size_t cap = r->cap_steps;
    LM_TRY(grow((void **)&r->steps, &cap, r->n_steps + 1, sizeof *r->steps));
    cap = r->cap_steps;
    LM_TRY(grow((void **)&r->losses, &cap, r->n_steps + 1, sizeof *r->losses));
    r->cap_steps = cap;
    r->steps[r->n_steps] = ev->step;
    r->losses[r->n_steps] = scalar(ev, "loss");
    r->n_steps++;
    double covered = ev->step > r->last_step_event ? (double)(ev->step - r->last_step_event) : 1.0;
    r->last_step_event = ev->step;
    note_step(r, ev);
    track(&r->tokens_per_second, ev, "tokens_per_second", covered);
    track(&r->rss_mb, ev, "rss_mb", covered);
    track(&r->cpu_percent, ev, "cpu_percent", covered);
    track(&r->gpu_utilization, ev, "gpu_utilization", covered);
    track(&r->gpu_memory_mb, ev, "gpu_memory_mb", covered);
    track(&r->gpu_power_w, ev, "gpu_power_w", covered);
    return LM_OK;
}

static lm_status on_eval(report *r, const lm_event *ev) {
    LM_TRY(grow((void **)&r->evals, &r->cap_evals, r->n_evals + 1, sizeof *r->evals));
    eval_row *row = &r->evals[r->n_evals++];
    row->step = ev->step;
    row->epoch = ev->epoch;
    row->epoch_index = scalar(ev, "epoch_index");
    if (isnan(row->epoch_index)) row->epoch_index = (double)r->n_evals;
    row->train_loss = scalar(ev, "train_loss");
    row->eval_loss = scalar(ev, "eval_loss");
    row->perplexity = scalar(ev, "perplexity");
    note_step(r, ev);
    return LM_OK;
}

static lm_status write_file(const report *r, const char *name, const lm_buffer *content) {
    lm_buffer path = {0};
    lm_status status = lm_mkdir_p(r->dir);
    if (status == LM_OK) status = lm_buffer_appendf(&path, "%s/%s", r->dir, name);
    if (status == LM_OK) status = lm_file_write_atomic(path.data, content->data, content->len);
    if (status != LM_OK) lm_error_prefix("logger 'report': ");
    lm_buffer_free(&path);
    return status;
}

static lm_status write_report(report *r) {
    lm_buffer svg = {0}, md = {0};
    int64_t *eval_steps = malloc((r->n_evals ? r->n_evals : 1) * sizeof *eval_steps);
    double *eval_losses = malloc((r->n_evals ? r->n_evals : 1) * sizeof *eval_losses);
    lm_status status = LM_OK;
    if (!eval_steps || !eval_losses) {
        status = lm_error_set(LM_ERR_NOMEM, "out of memory writing the report");
        goto fail;
    }
    for (size_t i = 0; i < r->n_evals; i++) {
        eval_steps[i] = r->evals[i].step;
        eval_losses[i] = r->evals[i].eval_loss;
    }
    /* The x axis ends at the run's last step: RUN_END's, or the last one
     * done by a run that stopped early. */
    int64_t last = r->ended && r->end_step > r->last_step ? r->end_step : r->last_step;
    loss_plot plot = {r->title,   r->description, r->steps,           r->losses,      r->n_steps, eval_steps,
                      eval_losses, r->n_evals,    r->steps_per_epoch, r->first_step, last};
    LM_CHECK(loss_plot_svg(&plot, &svg));
    LM_CHECK(write_file(r, "loss.svg", &svg));
    LM_CHECK(report_markdown(r, &md));
    LM_CHECK(write_file(r, "report.md", &md));
    r->written = 1;
fail:
    free(eval_steps);
    free(eval_losses);
    lm_buffer_free(&svg);
    lm_buffer_free(&md);
    return status;
}

static lm_status on_end(report *r, const lm_event *ev) {
    r->ended = 1;
    r->end_step = ev->step;
    r->end_epoch = ev->epoch;
    r->runtime = scalar(ev, "train_runtime");
    r->samples_per_second = scalar(ev, "train_samples_per_second");
    r->steps_per_second = scalar(ev, "train_steps_per_second");
    r->train_loss = scalar(ev, "train_loss");
    r->eval_loss = scalar(ev, "eval_loss");
    r->perplexity = scalar(ev, "perplexity");
    return write_report(r);
}

static lm_status report_log(void *self, const lm_event *ev) {
    report *r = self;
    switch (ev->kind) {
    case LM_EVENT_RUN_BEGIN: return on_begin(r, ev);
    case LM_EVENT_STEP: return on_step(r, ev);
    case LM_EVENT_EVAL: return on_eval(r, ev);
    case LM_EVENT_RUN_END: return on_end(r, ev);
    case LM_EVENT_PROGRESS: note_step(r, ev); return LM_OK;
    case LM_EVENT_MESSAGE: return LM_OK;
    }
    return LM_OK;
}

static void report_destroy(void *self) {
    report *r = self;
    /* An interrupted or failed run: still leave what it learned. */
    if (!r->written && r->n_steps > 0 && write_report(r) != LM_OK)
        lm_log(LM_LOG_WARN, "logger 'report': no report for the unfinished run: %s", lm_error_message());
    free(r->dir);
    free(r->title);
    free(r->description);
    free(r->steps);
    free(r->losses);
    free(r->evals);
    free(r);
}

static const lm_logger_vtable report_vtable = {report_create, report_destroy, report_log, NULL};

LM_PLUGIN_DEFINE(LM_KIND_LOGGER, "report", "1.0.0",
                 "report.md (evaluation table, perplexity, throughput, hardware) and loss.svg at the end of a run",
                 lm_logger_vtable, report_vtable)
