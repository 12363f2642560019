/* lmkernels — the op profiler: a backend that forwards every call to the
 * backend it wraps and times each op with that backend's timer.
 *
 * Why it exists: whether a training step is bound by the GEMMs, by the
 * other kernels or by launching them decides which optimisation pays, and
 * only the device can say.  On a GPU the marks are CUDA events on the
 * stream, so an op's time is what it takes on the device (not its launch),
 * and "busy" against "elapsed" (both on the device's clock) shows how much
 * of the step the GPU sat idle waiting for the host.
 *
 * Marks are read back in batches, when the wrapped backend synchronises
 * anyway (a download, sync()) or when the pending set is full; so profiling
 * adds two event records per op and no extra waits in a training step
 * beyond one per PROFILE_PENDING ops.  Mark 0 is the origin (the first op); op j of a batch
 * uses marks 1+2j (start) and 2+2j (end). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "lmcore/log.h"

#define PROFILE_PENDING 2048 /* ops timed between two reads of the marks */
#define PROFILE_KEYS 96      /* distinct op/shape rows; more go to "(other ops)" */
#define PROFILE_KEY_LEN 72

/* A key with ROWS_MARK stands for ops on any number of rows (see
 * begin_rows); the report writes the range seen in its place. */
#define ROWS_MARK '#'

typedef struct op_stat {
    char key[PROFILE_KEY_LEN];
    uint64_t calls;
    double total_ms;
    double max_ms;
    int rows_min, rows_max; /* keys with ROWS_MARK; rows_max 0 until the first op */
} op_stat;

typedef struct profiled_backend {
    lm_backend base; /* first: the lm_backend pointer is the profiled_backend pointer */
    lm_backend *inner;
    lm_backend_timer *timer;
    char label[64];
    int origin_recorded;
    int n_pending;
    int pending[PROFILE_PENDING]; /* index into stats per pending op */
    int broken;                   /* reading the marks failed: stop timing, keep forwarding */
    uint64_t timed_ops;
    double span_ms; /* device clock from the first op to the end of the last one read */
    int n_stats;
    op_stat stats[PROFILE_KEYS + 1];
} profiled_backend;

static lm_backend *inner_of(lm_backend *be) { return ((profiled_backend *)be)->inner; }

static int stat_index(profiled_backend *p, const char *key) {
    for (int i = 0; i < p->n_stats; i++)
        if (strcmp(p->stats[i].key, key) == 0) return i;
    if (p->n_stats >= PROFILE_KEYS) key = "(other ops)";
    for (int i = PROFILE_KEYS; i < p->n_stats; i++)
        if (strcmp(p->stats[i].key, key) == 0) return i;
    op_stat *s = &p->stats[p->n_stats];
    snprintf(s->key, sizeof s->key, "%s", key);
    return p->n_stats++;
}

/* Adds the pending ops' times to their rows; waits for the last one. */
static void read_marks(profiled_backend *p) {
    if (p->n_pending == 0 || p->broken) {
        p->n_pending = 0;
        return;
    }
    lm_backend *in = p->inner;
    for (int j = 0; j < p->n_pending && !p->broken; j++) {
        double ms = 0.0;
        if (in->ops->timer_elapsed_ms(in, p->timer, 1 + 2 * j, 2 + 2 * j, &ms) != LM_OK) {
            p->broken = 1;
            break;
        }
        op_stat *s = &p->stats[p->pending[j]];
        s->calls++;
        s->total_ms += ms;
        if (ms > s->max_ms) s->max_ms = ms;
        p->timed_ops++;
    }
    double span = 0.0;
    if (!p->broken && in->ops->timer_elapsed_ms(in, p->timer, 0, 2 * p->n_pending, &span) == LM_OK)
        p->span_ms = span;
    else
        p->broken = 1;
    if (p->broken) {
        /* The wrapped backend keeps the failure and reports it itself. */
        lm_log(LM_LOG_WARN, "op profile (%s): reading the timer failed (%s); timing stops here", p->label,
               lm_error_message());
        lm_error_clear();
    }
    p->n_pending = 0;
}

static void begin_op(profiled_backend *p, const char *key) {
    if (p->broken) return;
    if (p->n_pending == PROFILE_PENDING) read_marks(p);
    lm_backend *in = p->inner;
    if (!p->origin_recorded) {
        in->ops->timer_record(in, p->timer, 0);
        p->origin_recorded = 1;
    }
    p->pending[p->n_pending] = stat_index(p, key);
    in->ops->timer_record(in, p->timer, 1 + 2 * p->n_pending);
}

static void end_op(profiled_backend *p) {
    if (p->broken) return;
    lm_backend *in = p->inner;
    in->ops->timer_record(in, p->timer, 2 + 2 * p->n_pending);
    p->n_pending++;
}

/* GEMM-like ops on `rows` rows: keyed by the rest of their shape, with the
 * row count kept as a range.  The rows of BERT's MLM head (the masked
 * positions) change from batch to batch: a row of the table per count
 * would crowd it and split the head's time over dozens of rows. */
static void begin_rows(profiled_backend *p, const char *op, int rows, int IC, int OC) {
    char key[PROFILE_KEY_LEN];
    snprintf(key, sizeof key, "%s %cx%d -> %d", op, ROWS_MARK, IC, OC);
    begin_op(p, key);
    if (p->broken) return;
    op_stat *s = &p->stats[p->pending[p->n_pending]];
    if (s->rows_max == 0 || rows < s->rows_min) s->rows_min = rows;
    if (rows > s->rows_max) s->rows_max = rows;
}

static void begin_shaped(profiled_backend *p, const char *fmt, ...) LM_PRINTF(2, 3);
static void begin_shaped(profiled_backend *p, const char *fmt, ...) {
    char key[PROFILE_KEY_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    begin_op(p, key);
}

/* ---- lifetime, memory and synchronisation ---- */

static int by_total_desc(const void *a, const void *b) {
    const op_stat *x = a, *y = b;
    return (x->total_ms < y->total_ms) - (x->total_ms > y->total_ms);
}

/* Appends to buf at *used, never past cap (truncates quietly). */
static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...) LM_PRINTF(4, 5);
static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...) {
    if (*used >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n > 0) *used += (size_t)n < cap - *used ? (size_t)n : cap - *used - 1;
}

static void format_report(profiled_backend *p, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    op_stat sorted[PROFILE_KEYS + 1];
    memcpy(sorted, p->stats, (size_t)p->n_stats * sizeof sorted[0]);
    qsort(sorted, (size_t)p->n_stats, sizeof sorted[0], by_total_desc);
    double busy = 0.0;
    for (int i = 0; i < p->n_stats; i++) busy += sorted[i].total_ms;
    append(buf, cap, &used, "op profile of %s on %s: %llu ops timed; busy %.3f ms of %.3f ms elapsed (%.1f %%)%s\n",
           p->label, p->inner->ops->describe(p->inner), (unsigned long long)p->timed_ops, busy, p->span_ms,
           p->span_ms > 0.0 ? 100.0 * busy / p->span_ms : 0.0, p->broken ? " [timing stopped early]" : "");
    append(buf, cap, &used, "  %-44s %9s %12s %11s %11s %7s\n", "op", "calls", "total ms", "mean us", "max us",
           "share");
    for (int i = 0; i < p->n_stats; i++) {
        const op_stat *s = &sorted[i];
        if (s->calls == 0) continue;
        /* Bounded: key and the text after the mark are within PROFILE_KEY_LEN. */
        char label[2 * PROFILE_KEY_LEN + 32];
        const int key_len = (int)strnlen(s->key, PROFILE_KEY_LEN);
        const char *mark = memchr(s->key, ROWS_MARK, (size_t)key_len);
        if (!mark) {
            snprintf(label, sizeof label, "%.*s", key_len, s->key);
        } else {
            const int before = (int)(mark - s->key), after = key_len - before - 1;
            if (s->rows_min == s->rows_max)
                snprintf(label, sizeof label, "%.*s%d%.*s", before, s->key, s->rows_min, after, mark + 1);
            else
                snprintf(label, sizeof label, "%.*s%d..%d%.*s", before, s->key, s->rows_min, s->rows_max, after,
                         mark + 1);
        }
        append(buf, cap, &used, "  %-44s %9llu %12.3f %11.1f %11.1f %6.1f%%\n", label, (unsigned long long)s->calls,
               s->total_ms, 1e3 * s->total_ms / (double)s->calls, 1e3 * s->max_ms,
               busy > 0.0 ? 100.0 * s->total_ms / busy : 0.0);
    }
}

#define PROFILE_REPORT_BYTES 16384

static void p_destroy(lm_backend *be) {
    profiled_backend *p = (profiled_backend *)be;
    if (!p) return;
    lm_backend *in = p->inner;
    if (in->ops->sync(in) == LM_OK) {
        read_marks(p);
    } else {
        lm_error_clear(); /* the failure was reported to whoever ran the op */
        p->broken = 1;
    }
    char *report = malloc(PROFILE_REPORT_BYTES);
    if (report && p->timed_ops > 0) {
        format_report(p, report, PROFILE_REPORT_BYTES);
        /* One log line per table row keeps the log's line prefix on each. */
        for (char *line = report; *line;) {
            char *newline = strchr(line, '\n');
            if (newline) *newline = '\0';
            lm_log(LM_LOG_INFO, "%s", line);
            if (!newline) break;
            line = newline + 1;
        }
    }
    free(report);
    in->ops->timer_destroy(in, p->timer);
    in->ops->destroy(in);
    free(p);
}

static const char *p_describe(lm_backend *be) { return inner_of(be)->ops->describe(inner_of(be)); }

static lm_status p_alloc(lm_backend *be, void **ptr, size_t bytes, const char *what) {
    return inner_of(be)->ops->alloc(inner_of(be), ptr, bytes, what);
}

static void p_free(lm_backend *be, void *ptr) { inner_of(be)->ops->free(inner_of(be), ptr); }

static lm_status p_upload(lm_backend *be, void *dst, const void *src, size_t bytes) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "upload");
    lm_status status = p->inner->ops->upload(p->inner, dst, src, bytes);
    end_op(p);
    return status;
}

/* The end of a host read (a download, the *_to_host ops): it waited for
 * the device anyway, so the marks are read now at no extra wait. */
static lm_status end_host_read(profiled_backend *p, lm_status status) {
    end_op(p);
    if (status == LM_OK) read_marks(p);
    return status;
}

static lm_status p_download(lm_backend *be, void *dst, const void *src, size_t bytes) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "download");
    return end_host_read(p, p->inner->ops->download(p->inner, dst, src, bytes));
}

static lm_status p_sync(lm_backend *be) {
    profiled_backend *p = (profiled_backend *)be;
    lm_status status = p->inner->ops->sync(p->inner);
    if (status == LM_OK) read_marks(p);
    return status;
}

static lm_status p_check(lm_backend *be) { return inner_of(be)->ops->check(inner_of(be)); }

static void p_zero(lm_backend *be, void *ptr, size_t bytes) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "zero");
    p->inner->ops->zero(p->inner, ptr, bytes);
    end_op(p);
}

/* ---- ops (backend_ops.def): timed and forwarded ----
 * The list's profile key of an op says which row of the table a call is
 * added to: NAME, the op's own row; ROWS(rows, in, out), GEMM-like ops, a
 * row per (in, out) shape with the rows seen as a range (begin_rows); SHAPE
 * (format, ...), a row per formatted shape.  Each wrapper names its op in
 * op_name for these, and itself `self` (an op has a parameter p). */
#define PROFILE_BEGIN_NAME begin_op(self, op_name)
#define PROFILE_BEGIN_ROWS(rows, in, out) begin_rows(self, op_name, rows, in, out)
#define PROFILE_BEGIN_SHAPE(format, ...) begin_shaped(self, "%s" format, op_name, __VA_ARGS__)

#define LM_OP(name, params, args, profile_key)                                                                         \
    static void p_##name(lm_backend *be, LM_UNPAREN params) {                                                          \
        profiled_backend *self = (profiled_backend *)be;                                                               \
        static const char op_name[] = #name;                                                                           \
        PROFILE_BEGIN_##profile_key;                                                                                   \
        self->inner->ops->name(self->inner, LM_UNPAREN args);                                                          \
        end_op(self);                                                                                                  \
    }
#define LM_OP_CPU_ADAPTED LM_OP
#define LM_OP_HOST_READ(name, params, args, profile_key)                                                               \
    static lm_status p_##name(lm_backend *be, LM_UNPAREN params) {                                                     \
        profiled_backend *self = (profiled_backend *)be;                                                               \
        static const char op_name[] = #name;                                                                           \
        PROFILE_BEGIN_##profile_key;                                                                                   \
        return end_host_read(self, self->inner->ops->name(self->inner, LM_UNPAREN args));                              \
    }
#include "backend_ops.def"

/* Timer calls go to the wrapped backend (lm_backend_profile never wraps a
 * profiled backend twice), for code that times through any backend. */
static lm_status p_timer_create(lm_backend *be, lm_backend_timer **out, int n) {
    return inner_of(be)->ops->timer_create(inner_of(be), out, n);
}

static void p_timer_destroy(lm_backend *be, lm_backend_timer *timer) {
    inner_of(be)->ops->timer_destroy(inner_of(be), timer);
}

static void p_timer_record(lm_backend *be, lm_backend_timer *timer, int i) {
    inner_of(be)->ops->timer_record(inner_of(be), timer, i);
}

static lm_status p_timer_elapsed_ms(lm_backend *be, lm_backend_timer *timer, int from, int to, double *ms) {
    return inner_of(be)->ops->timer_elapsed_ms(inner_of(be), timer, from, to, ms);
}

static void p_counters(lm_backend *be, lm_device_counters *out) {
    inner_of(be)->ops->counters(inner_of(be), out);
}

static void p_keep_failure(lm_backend *be, const char *what, const char *reason) {
    inner_of(be)->ops->keep_failure(inner_of(be), what, reason);
}

static const lm_backend_ops profiled_ops = {
#define LM_BACKEND_ENTRY(member) .member = p_##member,
#include "backend_table.def"
};

lm_status lm_backend_profile(lm_backend **be, const char *label) {
    lm_backend *in = *be;
    if (!in) return lm_error_set(LM_ERR_INVALID, "op profiler: no backend to profile");
    if (in->ops == &profiled_ops) return LM_OK; /* already profiled */
    if (!in->ops->timer_create)
        return lm_error_set(LM_ERR_UNSUPPORTED, "op profiler: backend %s has no timer", in->ops->describe(in));
    profiled_backend *p = calloc(1, sizeof *p);
    if (!p) return lm_error_set(LM_ERR_NOMEM, "out of host memory creating the op profiler");
    lm_status status = in->ops->timer_create(in, &p->timer, 1 + 2 * PROFILE_PENDING);
    if (status != LM_OK) {
        free(p);
        lm_error_prefix("op profiler: ");
        return status;
    }
    p->base.ops = &profiled_ops;
    p->base.precision = in->precision;
    p->inner = in;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "a model");
    /* The same device, reached through the profiler so that the step
     * operations of plugins are timed too. */
    lm_backend_device_init(&p->base, (lm_device_type)in->device.type, in->device.index, in->device.stream);
    *be = &p->base;
    return LM_OK;
}

lm_status lm_backend_profile_report(lm_backend *be, char *buf, size_t cap) {
    if (!be || be->ops != &profiled_ops)
        return lm_error_set(LM_ERR_INVALID, "op profile: this model's backend is not profiled (set profile_ops=true)");
    if (!buf || cap == 0) return lm_error_set(LM_ERR_INVALID, "op profile: no room for the report");
    profiled_backend *p = (profiled_backend *)be;
    LM_TRY(p_sync(be));
    format_report(p, buf, cap);
    return LM_OK;
}
