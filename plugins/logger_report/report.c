/* Logger 'report': at the end of a run, a report a person can read.
 *
 *   dir      folder for report.md and loss.svg (required; created when
 *            they are written)
 *   title    the plot's and the report's title ("Training report")
 *   note     a warning shown at the top of both (e.g. "trained on the test
 *            split"); none by default
 *   details  markdown placed after the run line: what the caller knows and
 *            the events do not carry (model, data and splits, every
 *            hyperparameter)
 *   history  the log.jsonl text of the run before a resume: its logging
 *            points and evaluations up to the step this run goes on from
 *            are drawn and listed too, so a resumed run's report covers
 *            the whole run
 *
 * Samples generated during training reach the logger as MESSAGE events
 * "sample at step N: TEXT"; the report lists them.
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

static void report_free(report *r) {
    free(r->dir);
    free(r->title);
    free(r->note);
    free(r->details);
    free(r->history);
    free(r->description);
    free(r->steps);
    free(r->losses);
    free(r->learning_rates);
    free(r->evals);
    for (size_t i = 0; i < r->n_samples; i++) free(r->samples[i].text);
    free(r->samples);
    free(r);
}

/* A copy of an optional setting: NULL when absent or empty. */
static int copy_optional(lm_config *cfg, const char *key, char **out) {
    const char *v = lm_config_string(cfg, key, NULL);
    *out = NULL;
    if (!v || !*v) return 1;
    *out = copy_string(v);
    return *out != NULL;
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
    int copied = copy_optional(cfg, "note", &r->note) & copy_optional(cfg, "details", &r->details) &
                 copy_optional(cfg, "history", &r->history);
    if (!r->dir || !r->title || !copied) {
        report_free(r);
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

static lm_status load_history(report *r, int64_t resumed_at);

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
    for (size_t i = 0; i < r->n_samples; i++) free(r->samples[i].text);
    r->n_samples = 0;
    r->resumed_at = ev->step;
    if (r->history && ev->step > 0) LM_TRY(load_history(r, ev->step));
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

/* One logging point: its step, mean loss and learning rate. */
static lm_status add_point(report *r, int64_t step, double loss, double learning_rate) {
    size_t cap = r->cap_steps;
    LM_TRY(grow((void **)&r->steps, &cap, r->n_steps + 1, sizeof *r->steps));
    cap = r->cap_steps;
    LM_TRY(grow((void **)&r->losses, &cap, r->n_steps + 1, sizeof *r->losses));
    cap = r->cap_steps;
    LM_TRY(grow((void **)&r->learning_rates, &cap, r->n_steps + 1, sizeof *r->learning_rates));
    r->cap_steps = cap;
    r->steps[r->n_steps] = step;
    r->losses[r->n_steps] = loss;
    r->learning_rates[r->n_steps] = learning_rate;
    r->n_steps++;
    return LM_OK;
}

static lm_status on_step(report *r, const lm_event *ev) {
    LM_TRY(add_point(r, ev->step, scalar(ev, "loss"), scalar(ev, "learning_rate")));
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

static lm_status add_eval(report *r, const eval_row *given) {
    LM_TRY(grow((void **)&r->evals, &r->cap_evals, r->n_evals + 1, sizeof *r->evals));
    eval_row *row = &r->evals[r->n_evals++];
    *row = *given;
    if (isnan(row->epoch_index)) row->epoch_index = (double)r->n_evals;
    return LM_OK;
}

static lm_status on_eval(report *r, const lm_event *ev) {
    eval_row row = {ev->step,
                    ev->epoch,
                    scalar(ev, "epoch_index"),
                    scalar(ev, "train_loss"),
                    scalar(ev, "eval_loss"),
                    scalar(ev, "perplexity")};
    LM_TRY(add_eval(r, &row));
    note_step(r, ev);
    return LM_OK;
}

static double json_number_field(const lm_json *object, const char *key) {
    const lm_json *v = lm_json_get(object, key);
    return v && lm_json_type_of(v) == LM_JSON_NUMBER ? lm_json_number(v) : NAN;
}

/* A resumed run: the logging points and evaluations of the history (the
 * earlier log.jsonl) up to the step this run goes on from.  A line that is
 * not JSON (a log cut by a crash) is skipped: the history is a picture of
 * the past, not an input to check. */
static lm_status load_history(report *r, int64_t resumed_at) {
    const char *line = r->history;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        lm_json *event = NULL;
        if (len > 0 && lm_json_parse(line, len, "the report's history", &event) == LM_OK) {
            const lm_json *kind = lm_json_get(event, "event");
            const char *name = kind && lm_json_type_of(kind) == LM_JSON_STRING ? lm_json_string(kind, NULL) : "";
            double step = json_number_field(event, "step");
            lm_status status = LM_OK;
            if (isfinite(step) && step <= (double)resumed_at && strcmp(name, "step") == 0) {
                status = add_point(r, (int64_t)step, json_number_field(event, "loss"),
                                   json_number_field(event, "learning_rate"));
            } else if (isfinite(step) && step <= (double)resumed_at && strcmp(name, "eval") == 0) {
                eval_row row = {(int64_t)step,
                                json_number_field(event, "epoch"),
                                json_number_field(event, "epoch_index"),
                                json_number_field(event, "train_loss"),
                                json_number_field(event, "eval_loss"),
                                json_number_field(event, "perplexity")};
                status = add_eval(r, &row);
            }
            lm_json_free(event);
            LM_TRY(status);
        }
        lm_error_clear();
        line = end ? end + 1 : NULL;
    }
    return LM_OK;
}

/* "sample at step N: TEXT" messages: the samples of the run. */
static lm_status on_message(report *r, const lm_event *ev) {
    const size_t prefix = strlen(REPORT_SAMPLE_PREFIX);
    if (!ev->text || strncmp(ev->text, REPORT_SAMPLE_PREFIX, prefix) != 0) return LM_OK;
    char *colon = strchr(ev->text + prefix, ':');
    if (!colon) return LM_OK;
    LM_TRY(grow((void **)&r->samples, &r->cap_samples, r->n_samples + 1, sizeof *r->samples));
    char *text = copy_string(colon[1] == ' ' ? colon + 2 : colon + 1);
    if (!text) return lm_error_set(LM_ERR_NOMEM, "out of memory in the report logger");
    r->samples[r->n_samples].step = strtoll(ev->text + prefix, NULL, 10);
    r->samples[r->n_samples++].text = text;
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
    /* A resumed run with its history is drawn from step 0: the whole run. */
    int64_t first = r->n_steps > 0 && r->steps[0] < r->first_step ? 0 : r->first_step;
    loss_plot plot = {r->title,   r->description,      r->steps,    r->losses, r->learning_rates,
                      r->n_steps, eval_steps,          eval_losses, r->n_evals, r->steps_per_epoch,
                      first,      last,                r->note};
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
    case LM_EVENT_MESSAGE: return on_message(r, ev);
    }
    return LM_OK;
}

static void report_destroy(void *self) {
    report *r = self;
    /* An interrupted or failed run: still leave what it learned. */
    if (!r->written && r->n_steps > 0 && write_report(r) != LM_OK)
        lm_log(LM_LOG_WARN, "logger 'report': no report for the unfinished run: %s", lm_error_message());
    report_free(r);
}

static const lm_logger_vtable report_vtable = {report_create, report_destroy, report_log, NULL};

LM_PLUGIN_DEFINE(LM_KIND_LOGGER, "report", "1.0.0",
                 "report.md (evaluation table, perplexity, throughput, hardware) and loss.svg at the end of a run",
                 lm_logger_vtable, report_vtable)
