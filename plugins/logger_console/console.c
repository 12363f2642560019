/* Logger 'console': what a person watching the run wants to see.
 *   - a progress bar like the Hugging Face Trainer's
 *       [1004/6747 05:35 < 32:01, 2.99 it/s, Epoch 0.45/3]
 *     redrawn on stderr when it is a terminal, a plain line every `every`
 *     steps otherwise (logs, CI);
 *   - after each evaluation a row of the table
 *       Epoch | Training Loss | Validation Loss | Perplexity
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

typedef struct console {
    int tty;
    int64_t every;
    int table_started;
    int bar_shown;
    double last_draw;
    double window_loss;
    int64_t window_steps;
} console;

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

static void on_step(console *c, const lm_event *ev) {
    double loss = scalar(ev, "loss");
    c->window_loss += loss;
    c->window_steps++;
    double rate = ev->elapsed > 0 ? (double)ev->step / ev->elapsed : 0;
    char spent[32], left[32];
    format_clock(spent, sizeof spent, ev->elapsed);
    format_clock(left, sizeof left, rate > 0 ? (double)(ev->total_steps - ev->step) / rate : -1);
    if (c->tty) {
        double now = ev->elapsed;
        if (now - c->last_draw < 0.1 && ev->step != ev->total_steps) return;
        c->last_draw = now;
        fprintf(stderr, "\r[%lld/%lld %s < %s, %.2f it/s, Epoch %.2f/%d] loss %.4f   ", (long long)ev->step,
                (long long)ev->total_steps, spent, left, rate, ev->epoch, ev->total_epochs, loss);
        fflush(stderr);
        c->bar_shown = 1;
        return;
    }
    if (ev->step % c->every != 0 && ev->step != ev->total_steps) return;
    fprintf(stderr, "[%lld/%lld %s < %s, %.2f it/s, Epoch %.2f/%d] loss %.4f lr %.3g grad_norm %.3f tokens/s %.0f\n",
            (long long)ev->step, (long long)ev->total_steps, spent, left, rate, ev->epoch, ev->total_epochs,
            c->window_loss / (double)c->window_steps, scalar(ev, "learning_rate"), scalar(ev, "grad_norm"),
            scalar(ev, "tokens_per_second"));
    c->window_loss = 0;
    c->window_steps = 0;
}

static void on_eval(console *c, const lm_event *ev) {
    end_bar(c);
    if (!c->table_started) {
        printf("%-6s | %-13s | %-15s | %s\n", "Epoch", "Training Loss", "Validation Loss", "Perplexity");
        c->table_started = 1;
    }
    printf("%-6.0f | %-13.6f | %-15.6f | %.2f\n", scalar(ev, "epoch_index"), scalar(ev, "train_loss"),
           scalar(ev, "eval_loss"), scalar(ev, "perplexity"));
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
    double eval_loss = scalar(ev, "eval_loss");
    if (!isnan(eval_loss)) printf("Validation loss: %.4f, Perplexity: %.2f\n", eval_loss, scalar(ev, "perplexity"));
    fflush(stdout);
}

static lm_status console_log(void *self, const lm_event *ev) {
    console *c = self;
    switch (ev->kind) {
    case LM_EVENT_RUN_BEGIN:
        end_bar(c);
        fprintf(stderr, "training %s\n", ev->text ? ev->text : "");
        break;
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
