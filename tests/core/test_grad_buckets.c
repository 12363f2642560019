/* Gradient buckets (core/train/grad_buckets.c): the plan (its runs cover the
 * buffer exactly once, buckets follow backward's order and respect the
 * cap) and the reductions (each bucket starts as soon as it is final and
 * every bucket before it has started, all are waited for once), through a
 * communicator that records what it is asked. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "grad_buckets.h"
#include "test_main.h"

/* A GPT-2-like table: wte, wpe, L layers of (ln w, ln b, matrix, bias),
 * ln_f w and b; laid out as the model skeleton does, matrices first. */
#define MAX_DESCS 64
typedef struct table {
    lm_param_desc d[MAX_DESCS];
    size_t n, n_params;
} table;

static void add(table *t, const char *name, int64_t numel, int decay) {
    ck_assert_uint_lt(t->n, MAX_DESCS);
    t->d[t->n++] = (lm_param_desc){.name = name, .ndim = 1, .weight_decay = decay, .shape = {numel},
                                   .storage = (size_t)numel};
}

static void layout(table *t) {
    size_t offset = 0;
    for (int pass = 1; pass >= 0; pass--)
        for (size_t i = 0; i < t->n; i++)
            if ((t->d[i].weight_decay != 0) == (pass == 1)) {
                t->d[i].offset = offset;
                offset += t->d[i].storage;
            }
    t->n_params = offset;
}

static table gpt2_like(int layers) {
    table t = {0};
    add(&t, "wte", 1000, 1);
    add(&t, "wpe", 300, 1);
    for (int l = 0; l < layers; l++) {
        add(&t, "ln_1.w", 10, 0);
        add(&t, "ln_1.b", 10, 0);
        add(&t, "attn.w", 400, 1);
        add(&t, "attn.b", 40, 0);
        add(&t, "mlp.w", 800, 1);
        add(&t, "mlp.b", 10, 0);
    }
    add(&t, "ln_f.w", 10, 0);
    add(&t, "ln_f.b", 10, 0);
    layout(&t);
    return t;
}

static int by_offset(const void *a, const void *b) {
    const lm_grad_run *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Runs tile [0, n_params): sorted by offset, each starts where the last ended. */
static void expect_exact_cover(const lm_grad_buckets *b, size_t n_params) {
    const size_t n_runs = lm_grad_buckets_run_count(b);
    lm_grad_run *runs = malloc(n_runs * sizeof *runs);
    memcpy(runs, lm_grad_buckets_runs(b), n_runs * sizeof *runs);
    size_t total = 0;
    for (size_t k = 0; k < lm_grad_buckets_count(b); k++) total += lm_grad_buckets_elements(b, k);
    ck_assert_uint_eq(total, n_params);
    qsort(runs, n_runs, sizeof *runs, by_offset);
    size_t at = 0;
    for (size_t r = 0; r < n_runs; r++) {
        ck_assert_msg(runs[r].offset == at, "run %zu starts at %zu, the last ended at %zu", r, runs[r].offset, at);
        ck_assert_uint_gt(runs[r].count, 0);
        at += runs[r].count;
    }
    ck_assert_uint_eq(at, n_params);
    free(runs);
}

/* The bucket holding tensor d. */
static size_t bucket_of(const lm_grad_buckets *b, const lm_param_desc *d) {
    const lm_grad_run *runs = lm_grad_buckets_runs(b);
    for (size_t r = 0; r < lm_grad_buckets_run_count(b); r++)
        if (runs[r].offset <= d->offset && d->offset + d->storage <= runs[r].offset + runs[r].count)
            return runs[r].bucket;
    ck_abort_msg("no run holds %s", d->name);
    return 0;
}

START_TEST(plan_covers_the_buffer_in_backward_order_within_the_cap) {
    table t = gpt2_like(4);
    const size_t caps[] = {1, 50, 500, 1300, 2000, 100000};
    for (size_t c = 0; c < sizeof caps / sizeof *caps; c++) {
        lm_grad_buckets *b;
        ck_assert_int_eq(lm_grad_buckets_plan(t.d, t.n, t.n_params, caps[c], &b), LM_OK);
        expect_exact_cover(b, t.n_params);
        /* Backward's order: the last declared tensor in bucket 0, and the
         * bucket never rises going back through the declarations. */
        ck_assert_uint_eq(bucket_of(b, &t.d[t.n - 1]), 0);
        for (size_t i = 0; i + 1 < t.n; i++) ck_assert_uint_ge(bucket_of(b, &t.d[i]), bucket_of(b, &t.d[i + 1]));
        ck_assert_uint_eq(bucket_of(b, &t.d[0]), lm_grad_buckets_count(b) - 1);
        /* The cap, unless a bucket is one tensor larger than it. */
        for (size_t k = 0; k < lm_grad_buckets_count(b); k++) {
            size_t tensors = 0;
            for (size_t i = 0; i < t.n; i++) tensors += bucket_of(b, &t.d[i]) == k;
            ck_assert_msg(lm_grad_buckets_elements(b, k) <= caps[c] || tensors == 1,
                          "cap %zu: bucket %zu holds %zu elements in %zu tensors", caps[c], k,
                          lm_grad_buckets_elements(b, k), tensors);
            ck_assert_uint_ge(tensors, 1);
        }
        if (caps[c] == 1) ck_assert_uint_eq(lm_grad_buckets_count(b), t.n); /* a tensor each */
        if (caps[c] >= t.n_params) {
            /* One bucket: the whole buffer in one run, today's single all-reduce. */
            ck_assert_uint_eq(lm_grad_buckets_count(b), 1);
            ck_assert_uint_eq(lm_grad_buckets_run_count(b), 1);
        }
        lm_grad_buckets_free(b);
    }
}
END_TEST

/* Elements between tensors (none in today's models) still go somewhere. */
START_TEST(plan_covers_gaps) {
    table t = {0};
    add(&t, "a", 10, 1);
    add(&t, "b", 5, 0);
    add(&t, "c", 7, 1);
    t.d[0].offset = 3;  /* [0, 3) before the first tensor */
    t.d[2].offset = 20; /* [13, 20) between a and c */
    t.d[1].offset = 30; /* [27, 30) between c and b, [35, 40) after b */
    t.n_params = 40;
    lm_grad_buckets *b;
    ck_assert_int_eq(lm_grad_buckets_plan(t.d, t.n, t.n_params, 12, &b), LM_OK);
    expect_exact_cover(b, t.n_params);
    lm_grad_buckets_free(b);
    /* A tensor outside the buffer is a broken table. */
    t.d[1].offset = 36;
    ck_assert_int_eq(lm_grad_buckets_plan(t.d, t.n, t.n_params, 12, &b), LM_ERR_INTERNAL);
}
END_TEST

/* ---- the reductions, through a recording communicator ------------------------------- */

#define MAX_EVENTS 256
typedef struct recorder {
    char kind[MAX_EVENTS];      /* 's' started, 't' tested, 'w' waited */
    size_t offset[MAX_EVENTS], count[MAX_EVENTS];
    size_t n, fail_after;       /* fail the start after this many (0: never) */
    size_t starts;
} recorder;

static recorder rec;

struct lm_comm_request {
    size_t offset, count;
};

static lm_status rec_start(void *self, void *data, size_t count, lm_dtype dtype, lm_reduce_op op, void *stream,
                           lm_comm_request **request) {
    ck_assert_ptr_null(stream);
    ck_assert_int_eq(dtype, LM_F32);
    ck_assert_int_eq(op, LM_REDUCE_AVG);
    if (rec.fail_after && rec.starts == rec.fail_after)
        return lm_error_set(LM_ERR_DEVICE, "injected failure of start %zu", rec.starts);
    rec.starts++;
    lm_comm_request *r = malloc(sizeof *r);
    r->offset = (size_t)((float *)data - (float *)self);
    r->count = count;
    *request = r;
    rec.kind[rec.n] = 's';
    rec.offset[rec.n] = r->offset;
    rec.count[rec.n++] = count;
    return LM_OK;
}

static lm_status rec_test(void *self, lm_comm_request *r, int *done) {
    (void)self;
    rec.kind[rec.n] = 't';
    rec.offset[rec.n] = r->offset;
    rec.count[rec.n++] = r->count;
    *done = 0;
    return LM_OK;
}

static lm_status rec_wait(void *self, lm_comm_request *r) {
    (void)self;
    rec.kind[rec.n] = 'w';
    rec.offset[rec.n] = r->offset;
    rec.count[rec.n++] = r->count;
    free(r);
    return LM_OK;
}

static const lm_communicator_vtable rec_vtable = {.all_reduce_start = rec_start, .wait = rec_wait, .test = rec_test};

/* The events of kind k, as (offset, count) pairs. */
static size_t count_kind(char k) {
    size_t n = 0;
    for (size_t i = 0; i < rec.n; i++) n += rec.kind[i] == k;
    return n;
}

/* Tensors [first, end) in declaration order reported final, the way the model skeleton reports them. */
static void report(lm_grad_buckets *b, const table *t, size_t first, size_t end) {
    for (size_t i = first; i < end; i++) lm_grad_buckets_ready(b, t->d[i].offset, t->d[i].storage);
}

START_TEST(buckets_start_as_backward_finishes_them) {
    table t = gpt2_like(4); /* 2 + 4 x 6 + 2 = 28 tensors */
    float *grads = calloc(t.n_params, sizeof(float));
    lm_grad_buckets *b;
    /* 1300 elements: about a layer (1270) each. */
    ck_assert_int_eq(lm_grad_buckets_plan(t.d, t.n, t.n_params, 1300, &b), LM_OK);
    const size_t n_buckets = lm_grad_buckets_count(b), n_runs = lm_grad_buckets_run_count(b);
    ck_assert_uint_ge(n_buckets, 4);
    /* self = grads: the recorder reads offsets from the pointers. */
    lm_grad_buckets_bind(b, &rec_vtable, grads, grads, NULL);
    memset(&rec, 0, sizeof rec);

    /* Not armed (an accumulating micro-batch): reports are ignored. */
    report(b, &t, 0, t.n);
    ck_assert_uint_eq(rec.n, 0);

    lm_grad_buckets_arm(b);
    ck_assert(lm_grad_buckets_armed(b));
    /* ln_f, then the layers from the last: bucket 0 holds ln_f and the last layer. */
    report(b, &t, t.n - 2, t.n);
    ck_assert_uint_eq(count_kind('s'), 0); /* bucket 0 still waits for its layer */
    size_t started = 0;
    for (int l = 3; l >= 0; l--) {
        report(b, &t, 2 + (size_t)l * 6, 2 + (size_t)(l + 1) * 6);
        ck_assert_uint_ge(lm_grad_buckets_started(b), started);
        started = lm_grad_buckets_started(b);
    }
    /* Every layer is final: every bucket but the embeddings' has started, in plan order. */
    ck_assert_uint_ge(started, n_buckets - 2);
    ck_assert_uint_lt(started, n_buckets);
    const lm_grad_run *runs = lm_grad_buckets_runs(b);
    size_t s = 0;
    for (size_t i = 0; i < rec.n; i++) {
        if (rec.kind[i] != 's') continue;
        ck_assert_uint_eq(rec.offset[i], runs[s].offset);
        ck_assert_uint_eq(rec.count[i], runs[s].count);
        s++;
    }
    ck_assert_uint_gt(count_kind('t'), 0); /* progress asked for while backward goes on */
    report(b, &t, 0, 2);                   /* the embeddings */
    ck_assert_uint_eq(lm_grad_buckets_started(b), n_buckets);
    ck_assert_uint_eq(count_kind('w'), 0); /* nothing waited for during backward */
    ck_assert_int_eq(lm_grad_buckets_finish(b), LM_OK);
    ck_assert_uint_eq(count_kind('s'), n_runs);
    ck_assert_uint_eq(count_kind('w'), n_runs); /* each once */
    ck_assert(!lm_grad_buckets_armed(b));

    /* A bucket final before the ones ahead of it waits for them: every
     * rank starts the same reductions in the same order. */
    memset(&rec, 0, sizeof rec);
    lm_grad_buckets_arm(b);
    report(b, &t, 0, t.n - 2); /* everything but ln_f, in bucket 0 */
    ck_assert_uint_eq(count_kind('s'), 0);
    report(b, &t, t.n - 2, t.n);
    ck_assert_uint_eq(count_kind('s'), n_runs);
    ck_assert_int_eq(lm_grad_buckets_finish(b), LM_OK);

    /* A backward that did not run (a batch with nothing to predict): finish starts all, in order. */
    memset(&rec, 0, sizeof rec);
    lm_grad_buckets_arm(b);
    ck_assert_int_eq(lm_grad_buckets_finish(b), LM_OK);
    ck_assert_uint_eq(count_kind('s'), n_runs);
    ck_assert_uint_eq(count_kind('w'), n_runs);
    for (size_t i = 0; i < n_runs; i++) ck_assert_uint_eq(rec.offset[i], runs[i].offset);

    /* A failed start is kept: nothing more starts, finish returns it after waiting for what started. */
    memset(&rec, 0, sizeof rec);
    rec.fail_after = 1;
    lm_grad_buckets_arm(b);
    report(b, &t, 0, t.n);
    ck_assert_int_eq(lm_grad_buckets_failed(b), LM_ERR_DEVICE);
    ck_assert_int_eq(lm_grad_buckets_finish(b), LM_ERR_DEVICE);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "injected failure of start 1"));
    ck_assert_uint_eq(count_kind('s'), 1);
    ck_assert_uint_eq(count_kind('w'), 1);
    ck_assert_int_eq(lm_grad_buckets_failed(b), LM_OK); /* the next step starts clean */
    lm_grad_buckets_free(b);
    free(grads);
}
END_TEST

int main(void) {
    Suite *s = suite_create("grad_buckets");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, plan_covers_the_buffer_in_backward_order_within_the_cap);
    tcase_add_test(tc, plan_covers_gaps);
    tcase_add_test(tc, buckets_start_as_backward_finishes_them);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}
