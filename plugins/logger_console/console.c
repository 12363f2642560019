/* Logger 'console': what a person watching the run wants to see.
 *   - a progress bar like the Hugging Face Trainer's
 *       [1004/6747 05:35 < 32:01, 2.99 it/s, Epoch 0.45/3] loss 3.2187
 *     redrawn on stderr when it is a terminal, on PROGRESS (every optimizer
 *     step, at most every 0.1 s, and always at the last step) with the loss
 *     of the last STEP (logging point); otherwise a plain line at a logging
 *     point (STEP) whose step is a multiple of `every`, and at the last step
 *     (logs, CI);
 *   - after each evaluation a row of the table
 *       Epoch  | Training Loss | Validation Loss | Perplexity
 *     while every evaluation falls on an epoch end, or, from the first one
 *     that does not (eval_strategy "steps", max_steps), under a new header
 *       Step   | Epoch  | Training Loss | Validation Loss | Perplexity
 *     with the epoch to 2 decimals when it is not whole;
 *   - at the end a summary: runtime, samples/s, steps/s, perplexity;
 *   - messages with their level.
 * Tables and the summary go to stdout (they are results); progress and
 * messages to stderr. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lmcore/lmcore.h"
#include "loss_window.h"

enum { NO_TABLE, EPOCH_TABLE, STEP_TABLE };

typedef struct console {
    int tty;
    int64_t every;
    int table; /* which header the evaluation rows are under */
    int64_t last_eval_step; /* the step of the table's last row; -1: none */
    int bar_shown;
    double last_draw; /* elapsed at the last redraw; negative: none yet */
    /* Steps done before this process (a resumed run starts at step N): the
     * rate counts only the steps `elapsed` measured. */
    int has_first;
    int64_t first_step;
    /* The last STEP's loss, shown on the bar until the next logging point. */
    int has_loss;
    double last_loss;
    loss_window window; /* plain lines: the loss since the last printed line */
} console;

static void reset_run(console *c) {
    c->table = NO_TABLE;
    c->last_eval_step = -1;
    c->last_draw = -1;
    c->has_first = 0;
    c->first_step = 0;
    c->has_loss = 0;
    c->last_loss = NAN;
    loss_window_start(&c->window, 0);
}

static lm_status console_create(void **self, lm_config *cfg) {
    console *c = calloc(1, sizeof *c);
    if (!c) return lm_error_set(LM_ERR_NOMEM, "out of memory creating the console logger");
    c->every = lm_config_int(cfg, "every", 50);
    const char *progress = lm_config_string(cfg, "progress", "auto");
    if (strcmp(progress, "auto") == 0) c->tty = isatty(STDERR_FILENO);
    else if (strcmp(progress, "bar") == 0) c->tty = 1;
    else if (strcmp(progress, "lines") == 0) c->tty = 0;
    else lm_config_reject(cfg, "progress", "must be auto, bar or lines, got '%s'", progress);
    if (c->every < 1) lm_config_reject(cfg, "every", "must be at least 1");
    reset_run(c);
    *self = c;
    return LM_OK;
}

static void console_destroy(void *self) { free(self); }

static void format_clock(char *out, size_t cap, double seconds) {
    if (!(seconds >= 0) || seconds > 1e8) {
        snprintf(out, cap, "--:--");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else snprintf(out, cap, "%02ld:%02ld", s / 60, s % 60);
}

static double scalar(const lm_event *ev, const char *name) {
    double v = NAN;
    lm_event_scalar(ev, name, &v);
    return v;
}

static void end_bar(console *c) {
    if (c->bar_shown) {
        fputc('\n', stderr);
        c->bar_shown = 0;
    }
}

/* Without a RUN_BEGIN (a logger given events by hand), the first step
 * event tells: a PROGRESS follows the one step it reports, so the steps
 * before it were done elsewhere. */
static void note_first_step(console *c, const lm_event *ev) {
    if (c->has_first) return;
    c->has_first = 1;
    c->first_step = ev->kind == LM_EVENT_PROGRESS && ev->step > 0 ? ev->step - 1 : 0;
    loss_window_start(&c->window, c->first_step);
}

/* "[12/30 00:04 < 00:06, 3.00 it/s, Epoch 0.40/3]": the HF Trainer's bar. */
static void format_progress(const console *c, const lm_event *ev, char *out, size_t cap) {
    double done = (double)(ev->step - c->first_step);
    double rate = ev->elapsed > 0 && done > 0 ? done / ev->elapsed : 0;
    char spent[32], left[32];
    format_clock(spent, sizeof spent, ev->elapsed);
    format_clock(left, sizeof left, rate > 0 ? (double)(ev->total_steps - ev->step) / rate : -1);
    snprintf(out, cap, "[%lld/%lld %s < %s, %.2f it/s, Epoch %.2f/%d]", (long long)ev->step,
             (long long)ev->total_steps, spent, left, rate, ev->epoch, ev->total_epochs);
}

static void draw_bar(console *c, const lm_event *ev) {
    char progress[160];
    format_progress(c, ev, progress, sizeof progress);
    c->last_draw = ev->elapsed;
    /* Trailing spaces wipe what a longer previous bar left on the line. */
    if (c->has_loss) fprintf(stderr, "\r%s loss %.4f   ", progress, c->last_loss);
    else fprintf(stderr, "\r%s   ", progress);
    fflush(stderr);
    c->bar_shown = 1;
}

static void on_progress(console *c, const lm_event *ev) {
    note_first_step(c, ev);
    if (!c->tty) return; /* plain lines come with the losses, on STEP */
    /* A redraw per step would cost more than a fast step on a terminal. */
    if (ev->elapsed - c->last_draw < 0.1 && c->last_draw >= 0 && ev->step != ev->total_steps) return;
    draw_bar(c, ev);
}

static void on_step(console *c, const lm_event *ev) {
    note_first_step(c, ev);
    c->has_loss = 1;
    c->last_loss = scalar(ev, "loss");
    const int line_due = loss_window_add(&c->window, ev, c->every);
    if (c->tty) {
        /* A logging point is rare: show its loss now, the next PROGRESS may
         * be the end of the run or far away. */
        draw_bar(c, ev);
        return;
    }
    if (!line_due) return;
    char progress[160];
    format_progress(c, ev, progress, sizeof progress);
    fprintf(stderr, "%s loss %.4f lr %.3g grad_norm %.3f tokens/s %.0f\n", progress,
            loss_window_take_mean(&c->window), scalar(ev, "learning_rate"), scalar(ev, "grad_norm"),
            scalar(ev, "tokens_per_second"));
}

/* An evaluation at an epoch end reports a whole epoch_index; one made
 * mid-epoch a fraction (logger.h). */
static int whole_epoch(double epoch) { return isfinite(epoch) && fabs(epoch - nearbyint(epoch)) < 1e-6; }

static void on_eval(console *c, const lm_event *ev) {
    end_bar(c);
    double epoch = scalar(ev, "epoch_index");
    if (isnan(epoch)) epoch = ev->epoch;
    int whole = whole_epoch(epoch);
    /* The header only grows a Step column when a row needs it, so a run
     * evaluated at epoch ends keeps the reference report's table. */
    if (c->table == NO_TABLE && whole) {
        printf("%-6s | %-13s | %-15s | %s\n", "Epoch", "Training Loss", "Validation Loss", "Perplexity");
        c->table = EPOCH_TABLE;
    } else if (c->table != STEP_TABLE && !whole) {
        printf("%-6s | %-6s | %-13s | %-15s | %s\n", "Step", "Epoch", "Training Loss", "Validation Loss",
               "Perplexity");
        c->table = STEP_TABLE;
    }
    if (c->table == EPOCH_TABLE) {
        printf("%-6.0f | ", epoch);
    } else {
        char text[32];
        snprintf(text, sizeof text, whole ? "%.0f" : "%.2f", epoch);
        printf("%-6lld | %-6s | ", (long long)ev->step, text);
    }
    /* Before any step (eval_on_start) there is no training loss: "No log",
     * as the Trainer's table says. */
    const double train_loss = scalar(ev, "train_loss");
    if (isnan(train_loss)) printf("%-13s | ", "No log");
    else printf("%-13.6f | ", train_loss);
    printf("%-15.6f | %.2f\n", scalar(ev, "eval_loss"), scalar(ev, "perplexity"));
    c->last_eval_step = ev->step;
    fflush(stdout);
}

static void on_end(console *c, const lm_event *ev) {
    end_bar(c);
    char runtime[32];
    format_clock(runtime, sizeof runtime, scalar(ev, "train_runtime"));
    printf("TrainOutput(global_step=%lld, training_loss=%.6f, train_runtime=%.2f s (%s), "
           "train_samples_per_second=%.3f, train_steps_per_second=%.3f, epoch=%.2f)\n",
           (long long)ev->step, scalar(ev, "train_loss"), scalar(ev, "train_runtime"), runtime,
           scalar(ev, "train_samples_per_second"), scalar(ev, "train_steps_per_second"), ev->epoch);
    /* The final evaluation is already the table's last row when it was made
     * at the last step: only a run evaluated earlier (or never shown) gets
     * the line, so the same numbers are not printed twice. */
    double eval_loss = scalar(ev, "eval_loss");
    if (!isnan(eval_loss) && !(c->table != NO_TABLE && c->last_eval_step == ev->step))
        printf("Validation loss: %.4f, Perplexity: %.2f\n", eval_loss, scalar(ev, "perplexity"));
    fflush(stdout);
}

static lm_status console_log(void *self, const lm_event *ev) {
    console *c = self;
    switch (ev->kind) {
    case LM_EVENT_RUN_BEGIN:
        end_bar(c);
        /* A new run (a second fit, or a resumed one at step N) starts its
         * own table and counts its own steps. */
        reset_run(c);
        c->has_first = 1;
        c->first_step = ev->step;
        loss_window_start(&c->window, ev->step);
        fprintf(stderr, "training %s\n", ev->text ? ev->text : "");
        break;
    case LM_EVENT_PROGRESS: on_progress(c, ev); break;
    case LM_EVENT_STEP: on_step(c, ev); break;
    case LM_EVENT_EVAL: on_eval(c, ev); break;
    case LM_EVENT_RUN_END: on_end(c, ev); break;
    case LM_EVENT_MESSAGE: {
        if (ev->level < (int)lm_log_get_level()) break;
        static const char *const prefix[] = {"debug: ", "", "warning: ", "error: "};
        end_bar(c);
        fprintf(stderr, "%s%s\n", ev->level >= 0 && ev->level <= 3 ? prefix[ev->level] : "",
                ev->text ? ev->text : "");
        break;
    }
    }
    return LM_OK;
}

static lm_status console_flush(void *self) {
    (void)self;
    fflush(stdout);
    fflush(stderr);
    return LM_OK;
}

static const lm_logger_vtable console_vtable = {console_create, console_destroy, console_log, console_flush};

LM_PLUGIN_DEFINE(LM_KIND_LOGGER, "console", "1.0.0",
                 "Progress bar, epoch table and run summary on the terminal (plain lines when not a terminal)",
                 lm_logger_vtable, console_vtable)
