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

/* Ops that wait for the device anyway: time them, then read the marks. */
static lm_status p_download(lm_backend *be, void *dst, const void *src, size_t bytes) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "download");
    lm_status status = p->inner->ops->download(p->inner, dst, src, bytes);
    end_op(p);
    if (status == LM_OK) read_marks(p);
    return status;
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

/* ---- ops: timed and forwarded ---- */

static void p_embedding_forward(lm_backend *be, float *out, const int32_t *ids, const int32_t *type_ids,
                                const float *wte, const float *wpe, const float *wtt, int B, int T, int C) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "embedding_forward");
    p->inner->ops->embedding_forward(p->inner, out, ids, type_ids, wte, wpe, wtt, B, T, C);
    end_op(p);
}

static void p_embedding_backward(lm_backend *be, float *dwte, float *dwpe, float *dwtt, const float *dout,
                                 const int32_t *ids, const int32_t *type_ids, int B, int T, int C) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "embedding_backward");
    p->inner->ops->embedding_backward(p->inner, dwte, dwpe, dwtt, dout, ids, type_ids, B, T, C);
    end_op(p);
}

static void p_layernorm_forward(lm_backend *be, float *out, float *mean, float *rstd, const float *inp,
                                const float *weight, const float *bias, int N, int C, float eps) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "layernorm_forward");
    p->inner->ops->layernorm_forward(p->inner, out, mean, rstd, inp, weight, bias, N, C, eps);
    end_op(p);
}

static void p_layernorm_backward(lm_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *inp, const float *weight, const float *mean, const float *rstd, int N,
                                 int C) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "layernorm_backward");
    p->inner->ops->layernorm_backward(p->inner, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    end_op(p);
}

/* GEMM rows are keyed by shape: a step's linear layers differ by shape
 * (GPT-2: qkv, attention projection, MLP up and down, the LM head); the
 * number of rows N is shown as the range seen (begin_rows). */
static void p_matmul_forward(lm_backend *be, float *out, const float *inp, const float *weight, const float *bias,
                             int N, int IC, int OC, lm_weight_layout layout) {
    profiled_backend *p = (profiled_backend *)be;
    begin_rows(p, "matmul_forward", N, IC, OC);
    p->inner->ops->matmul_forward(p->inner, out, inp, weight, bias, N, IC, OC, layout);
    end_op(p);
}

static void p_matmul_backward(lm_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, int N, int IC, int OC, lm_weight_layout layout) {
    profiled_backend *p = (profiled_backend *)be;
    begin_rows(p, "matmul_backward", N, IC, OC);
    p->inner->ops->matmul_backward(p->inner, dinp, dweight, dbias, dout, inp, weight, N, IC, OC, layout);
    end_op(p);
}

static void p_attention_forward(lm_backend *be, float *out, float *preatt, float *att, const float *q, const float *k,
                                const float *v, int stride, const int32_t *key_mask, int causal, int B, int T, int C,
                                int NH, float dropout_p, const lm_step_state *key, int site) {
    profiled_backend *p = (profiled_backend *)be;
    begin_shaped(p, "attention_forward B%d T%d NH%d", B, T, NH);
    p->inner->ops->attention_forward(p->inner, out, preatt, att, q, k, v, stride, key_mask, causal, B, T, C, NH,
                                     dropout_p, key, site);
    end_op(p);
}

static void p_attention_backward(lm_backend *be, float *dq, float *dk, float *dv, float *scratch, const float *dout,
                                 const float *preatt, const float *att, const float *q, const float *k, const float *v,
                                 int stride, int B, int T, int C, int NH, float dropout_p, const lm_step_state *key,
                                 int site) {
    profiled_backend *p = (profiled_backend *)be;
    begin_shaped(p, "attention_backward B%d T%d NH%d", B, T, NH);
    p->inner->ops->attention_backward(p->inner, dq, dk, dv, scratch, dout, preatt, att, q, k, v, stride, B, T, C, NH,
                                      dropout_p, key, site);
    end_op(p);
}

static void p_gelu_forward(lm_backend *be, float *out, const float *inp, size_t n, int approx_tanh) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "gelu_forward");
    p->inner->ops->gelu_forward(p->inner, out, inp, n, approx_tanh);
    end_op(p);
}

static void p_gelu_backward(lm_backend *be, float *dinp, const float *inp, const float *dout, size_t n,
                            int approx_tanh) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "gelu_backward");
    p->inner->ops->gelu_backward(p->inner, dinp, inp, dout, n, approx_tanh);
    end_op(p);
}

static void p_dropout_forward(lm_backend *be, float *out, const float *inp, size_t n, float prob,
                              const lm_step_state *key, int site) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "dropout_forward");
    p->inner->ops->dropout_forward(p->inner, out, inp, n, prob, key, site);
    end_op(p);
}

static void p_dropout_backward(lm_backend *be, float *dinp, const float *dout, size_t n, float prob,
                               const lm_step_state *key, int site) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "dropout_backward");
    p->inner->ops->dropout_backward(p->inner, dinp, dout, n, prob, key, site);
    end_op(p);
}

static void p_residual_forward(lm_backend *be, float *out, const float *a, const float *b, size_t n) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "residual_forward");
    p->inner->ops->residual_forward(p->inner, out, a, b, n);
    end_op(p);
}

static void p_accumulate(lm_backend *be, float *dst, const float *src, size_t n) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "accumulate");
    p->inner->ops->accumulate(p->inner, dst, src, n);
    end_op(p);
}

static void p_crossentropy_forward(lm_backend *be, float *losses, const float *logits, const int32_t *labels, int N,
                                   int V) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "crossentropy_forward");
    p->inner->ops->crossentropy_forward(p->inner, losses, logits, labels, N, V);
    end_op(p);
}

static void p_crossentropy_backward(lm_backend *be, float *dlogits, const float *logits, const int32_t *labels,
                                    float dloss, int N, int V) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "crossentropy_backward");
    p->inner->ops->crossentropy_backward(p->inner, dlogits, logits, labels, dloss, N, V);
    end_op(p);
}

static lm_status p_sum_to_host(lm_backend *be, const float *x, size_t n, double *out) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "sum_to_host");
    lm_status status = p->inner->ops->sum_to_host(p->inner, x, n, out);
    end_op(p);
    if (status == LM_OK) read_marks(p);
    return status;
}

static lm_status p_sum_squares_to_host(lm_backend *be, const float *x, size_t n, double *out) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "sum_squares_to_host");
    lm_status status = p->inner->ops->sum_squares_to_host(p->inner, x, n, out);
    end_op(p);
    if (status == LM_OK) read_marks(p);
    return status;
}

static void p_loss_mean(lm_backend *be, float *out, const float *losses, size_t n, int64_t count) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "loss_mean");
    p->inner->ops->loss_mean(p->inner, out, losses, n, count);
    end_op(p);
}

static void p_step_micro_batch_end(lm_backend *be, lm_step_state *state, double num, double den, int scored) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "step_micro_batch_end");
    p->inner->ops->step_micro_batch_end(p->inner, state, num, den, scored);
    end_op(p);
}

static void p_step_clip(lm_backend *be, lm_step_state *state, const float *grads, size_t n) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "step_clip");
    p->inner->ops->step_clip(p->inner, state, grads, n);
    end_op(p);
}

static void p_step_schedule(lm_backend *be, lm_step_state *state) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "step_schedule");
    p->inner->ops->step_schedule(p->inner, state);
    end_op(p);
}

static void p_step_finish(lm_backend *be, lm_step_state *state) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "step_finish");
    p->inner->ops->step_finish(p->inner, state);
    end_op(p);
}

static void p_kv_cache_append(lm_backend *be, float *k_cache, float *v_cache, const float *k, const float *v,
                              int stride, int pos, int n, int C) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "kv_cache_append");
    p->inner->ops->kv_cache_append(p->inner, k_cache, v_cache, k, v, stride, pos, n, C);
    end_op(p);
}

static void p_attention_cached_forward(lm_backend *be, float *out, float *att, const float *q, const float *k_cache,
                                       const float *v_cache, int stride, int pos, int n, int C, int NH) {
    profiled_backend *p = (profiled_backend *)be;
    begin_op(p, "attention_cached_forward");
    p->inner->ops->attention_cached_forward(p->inner, out, att, q, k_cache, v_cache, stride, pos, n, C, NH);
    end_op(p);
}

static void p_matvec_forward(lm_backend *be, float *out, const float *inp, const float *weight, const float *bias,
                             int N, int IC, int OC, lm_weight_layout layout) {
    profiled_backend *p = (profiled_backend *)be;
    begin_rows(p, "matvec_forward", N, IC, OC);
    p->inner->ops->matvec_forward(p->inner, out, inp, weight, bias, N, IC, OC, layout);
    end_op(p);
}

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
    .destroy = p_destroy,
    .describe = p_describe,
    .alloc = p_alloc,
    .free = p_free,
    .upload = p_upload,
    .download = p_download,
    .sync = p_sync,
    .check = p_check,
    .zero = p_zero,
    .embedding_forward = p_embedding_forward,
    .embedding_backward = p_embedding_backward,
    .layernorm_forward = p_layernorm_forward,
    .layernorm_backward = p_layernorm_backward,
    .matmul_forward = p_matmul_forward,
    .matmul_backward = p_matmul_backward,
    .attention_forward = p_attention_forward,
    .attention_backward = p_attention_backward,
    .gelu_forward = p_gelu_forward,
    .gelu_backward = p_gelu_backward,
    .dropout_forward = p_dropout_forward,
    .dropout_backward = p_dropout_backward,
    .residual_forward = p_residual_forward,
    .accumulate = p_accumulate,
    .crossentropy_forward = p_crossentropy_forward,
    .crossentropy_backward = p_crossentropy_backward,
    .loss_mean = p_loss_mean,
    .sum_to_host = p_sum_to_host,
    .sum_squares_to_host = p_sum_squares_to_host,
    .step_micro_batch_end = p_step_micro_batch_end,
    .step_clip = p_step_clip,
    .step_schedule = p_step_schedule,
    .step_finish = p_step_finish,
    .kv_cache_append = p_kv_cache_append,
    .attention_cached_forward = p_attention_cached_forward,
    .matvec_forward = p_matvec_forward,
    .timer_create = p_timer_create,
    .timer_destroy = p_timer_destroy,
    .timer_record = p_timer_record,
    .timer_elapsed_ms = p_timer_elapsed_ms,
    .counters = p_counters,
    .keep_failure = p_keep_failure,
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
