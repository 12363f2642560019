/* Diagnostics, progress reports, Ctrl-C flag and the clock. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lmcore/log.h"

static lm_log_level current_level = LM_LOG_INFO;
static volatile sig_atomic_t interrupt_flag;

void lm_log_set_level(lm_log_level level) { current_level = level; }
lm_log_level lm_log_get_level(void) { return current_level; }

lm_status lm_log_level_parse(const char *name, lm_log_level *out) {
    static const char *names[] = {"debug", "info", "warn", "error", "quiet"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (lm_log_level)i;
            return LM_OK;
        }
    }
    return lm_error_set(LM_ERR_INVALID, "unknown log level '%s' (use debug, info, warn, error or quiet)", name);
}

void lm_log(lm_log_level level, const char *fmt, ...) {
    if (level < current_level || level >= LM_LOG_QUIET) return;
    static const char *prefix[] = {"debug: ", "", "warning: ", "error: "};
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s%s\n", prefix[level], line);
}

double lm_time_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int lm_interrupted(void) { return interrupt_flag != 0; }
void lm_interrupt_request(void) { interrupt_flag = 1; }
void lm_interrupt_clear(void) { interrupt_flag = 0; }

/* ---- progress -------------------------------------------------------------
 * On a terminal: one line redrawn in place at most 10 times a second.
 * Otherwise (logs, CI): a plain line every 10 % or every 30 seconds, once
 * the work has lasted two seconds. */
struct lm_progress {
    char label[96];
    uint64_t total, done;
    double start, last_draw;
    int tty, last_decile;
};

static void format_clock(char *out, size_t cap, double seconds) {
    if (seconds < 0 || seconds > 1e7) {
        snprintf(out, cap, "--:--");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else snprintf(out, cap, "%02ld:%02ld", s / 60, s % 60);
}

static void progress_draw(lm_progress *p, int final) {
    double now = lm_time_seconds(), elapsed = now - p->start;
    char spent[32], left[32];
    format_clock(spent, sizeof spent, elapsed);
    if (p->total) {
        double frac = p->done >= p->total ? 1.0 : (double)p->done / (double)p->total;
        format_clock(left, sizeof left, frac > 0 ? elapsed * (1 - frac) / frac : -1);
        if (p->tty) {
            char bar[31];
            int fill = (int)(frac * 30);
            for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
            bar[30] = '\0';
            fprintf(stderr, "\r%s [%s] %3d%% %llu/%llu %s < %s%s", p->label, bar, (int)(frac * 100),
                    (unsigned long long)p->done, (unsigned long long)p->total, spent, left, final ? "\n" : "");
        } else {
            fprintf(stderr, "%s: %llu/%llu (%d%%) %s < %s\n", p->label, (unsigned long long)p->done,
                    (unsigned long long)p->total, (int)(frac * 100), spent, left);
        }
    } else {
        fprintf(stderr, p->tty ? "\r%s: %llu %s%s" : "%s: %llu %s%s\n", p->label, (unsigned long long)p->done, spent,
                p->tty && final ? "\n" : "");
    }
    fflush(stderr);
    p->last_draw = now;
}

lm_progress *lm_progress_begin(const char *label, uint64_t total) {
    lm_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL; /* progress is cosmetic: callers accept NULL */
    snprintf(p->label, sizeof p->label, "%s", label ? label : "working");
    p->total = total;
    p->start = p->last_draw = lm_time_seconds();
    p->tty = isatty(STDERR_FILENO);
    p->last_decile = 0;
    return p;
}

void lm_progress_update(lm_progress *p, uint64_t done) {
    if (!p || current_level > LM_LOG_INFO) {
        if (p) p->done = done;
        return;
    }
    p->done = done;
    double now = lm_time_seconds();
    if (p->tty) {
        if (now - p->last_draw >= 0.1) progress_draw(p, 0);
        return;
    }
    /* Work that ends within two seconds prints nothing: logs stay quiet. */
    if (now - p->start < 2.0) return;
    int decile = p->total ? (int)(10.0 * (double)done / (double)p->total) : 0;
    if ((p->total && decile > p->last_decile) || now - p->last_draw >= 30.0) {
        p->last_decile = decile;
        progress_draw(p, 0);
    }
}

void lm_progress_end(lm_progress *p) {
    if (!p) return;
    if (current_level <= LM_LOG_INFO && (p->tty || lm_time_seconds() - p->start >= 2.0)) {
        if (p->total) p->done = p->total;
        progress_draw(p, 1);
    }
    free(p);
}
