/* Gradient buckets reduced as backward finishes them (grad_buckets.h). */
#include "grad_buckets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A tensor's extent in the flat buffer: [offset, end), the elements after
 * it up to the next tensor included, so that the extents tile the buffer. */
typedef struct tensor_extent {
    size_t offset, end;
    size_t tensor_offset, tensor_end; /* the tensor itself, as the architecture reports it */
    size_t bucket;
} tensor_extent;

struct lm_grad_buckets {
    /* The plan. */
    size_t n_extents;
    tensor_extent *extents; /* by offset */
    size_t n_buckets;
    size_t *bucket_tensors;   /* [n_buckets] tensors in each */
    size_t *bucket_elements;  /* [n_buckets] */
    size_t *bucket_first_run; /* [n_buckets + 1] */
    size_t n_runs;
    lm_grad_run *runs;

    /* Where they are reduced (lm_grad_buckets_bind). */
    const lm_communicator_vtable *comm;
    void *comm_self;
    float *grads;
    void *stream;

    /* This step. */
    int armed;
    unsigned char *final;   /* [n_extents] reported final */
    size_t *bucket_final;   /* [n_buckets] tensors reported final */
    size_t next_bucket;     /* buckets [0, next_bucket) have started */
    size_t oldest_running;  /* runs before it are known complete (test) */
    lm_comm_request **requests; /* [n_runs] */
    lm_status failure;
    char failure_message[512];
};

static int by_offset(const void *a, const void *b) {
    const tensor_extent *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

void lm_grad_buckets_free(lm_grad_buckets *b) {
    if (!b) return;
    free(b->extents);
    free(b->bucket_tensors);
    free(b->bucket_elements);
    free(b->bucket_first_run);
    free(b->runs);
    free(b->final);
    free(b->bucket_final);
    free(b->requests);
    free(b);
}

/* Extents by offset, each desc's index in `bucket` for now (the plan
 * replaces it with its bucket). */
static lm_status make_extents(lm_grad_buckets *b, const lm_param_desc *descs, size_t n_descs, size_t n_params) {
    const size_t n = n_descs ? n_descs : 1;
    b->extents = calloc(n, sizeof *b->extents);
    if (!b->extents) return lm_error_set(LM_ERR_NOMEM, "out of memory planning the gradient buckets");
    b->n_extents = n;
    if (n_descs == 0) { /* one piece: the whole buffer */
        b->extents[0] = (tensor_extent){0, n_params, 0, n_params, 0};
        return LM_OK;
    }
    for (size_t i = 0; i < n_descs; i++) {
        if (descs[i].offset > n_params || descs[i].storage > n_params - descs[i].offset)
            return lm_error_set(LM_ERR_INTERNAL, "gradient buckets: tensor '%s' ([%zu, +%zu)) lies outside the %zu "
                                                 "gradients",
                                descs[i].name, descs[i].offset, descs[i].storage, n_params);
        const size_t end = descs[i].offset + descs[i].storage;
        b->extents[i] = (tensor_extent){descs[i].offset, end, descs[i].offset, end, i};
    }
    qsort(b->extents, n, sizeof *b->extents, by_offset);
    for (size_t k = 0; k + 1 < n; k++) {
        if (b->extents[k].end > b->extents[k + 1].offset)
            return lm_error_set(LM_ERR_INTERNAL, "gradient buckets: tensors '%s' and '%s' overlap",
                                descs[b->extents[k].bucket].name, descs[b->extents[k + 1].bucket].name);
        b->extents[k].end = b->extents[k + 1].offset;
    }
    b->extents[0].offset = 0;
    b->extents[n - 1].end = n_params;
    return LM_OK;
}

lm_status lm_grad_buckets_plan(const lm_param_desc *descs, size_t n_descs, size_t n_params, size_t cap,
                               lm_grad_buckets **out) {
    *out = NULL;
    lm_grad_buckets *b = calloc(1, sizeof *b);
    if (!b) return lm_error_set(LM_ERR_NOMEM, "out of memory planning the gradient buckets");
    lm_status status = make_extents(b, descs, n_descs, n_params);
    const size_t n = b->n_extents;
    size_t *extent_of = NULL; /* desc index -> extent index */
    if (status == LM_OK) {
        extent_of = malloc(n * sizeof *extent_of);
        b->bucket_tensors = calloc(n, sizeof *b->bucket_tensors);
        b->bucket_elements = calloc(n, sizeof *b->bucket_elements);
        b->bucket_first_run = calloc(n + 1, sizeof *b->bucket_first_run);
        b->runs = calloc(n, sizeof *b->runs);
        b->final = calloc(n, 1);
        b->bucket_final = calloc(n, sizeof *b->bucket_final);
        b->requests = calloc(n, sizeof *b->requests);
        if (!extent_of || !b->bucket_tensors || !b->bucket_elements || !b->bucket_first_run || !b->runs || !b->final ||
            !b->bucket_final || !b->requests)
            status = lm_error_set(LM_ERR_NOMEM, "out of memory planning the gradient buckets");
    }
    if (status != LM_OK) {
        free(extent_of);
        lm_grad_buckets_free(b);
        return status;
    }
    for (size_t k = 0; k < n; k++) extent_of[b->extents[k].bucket] = k;
    /* Reverse declaration order, as DDP fills its buckets: backward's order. */
    size_t bucket = 0;
    for (size_t i = n; i-- > 0;) {
        tensor_extent *e = &b->extents[extent_of[i]];
        const size_t size = e->end - e->offset;
        if (b->bucket_tensors[bucket] > 0 && b->bucket_elements[bucket] + size > cap) bucket++;
        e->bucket = bucket;
        b->bucket_tensors[bucket]++;
        b->bucket_elements[bucket] += size;
    }
    free(extent_of);
    b->n_buckets = n ? bucket + 1 : 0;
    /* Each bucket's runs: its extents by offset, neighbours merged. */
    for (size_t k = 0; k < b->n_buckets; k++) {
        b->bucket_first_run[k] = b->n_runs;
        for (size_t x = 0; x < n; x++) {
            const tensor_extent *e = &b->extents[x];
            if (e->bucket != k) continue;
            lm_grad_run *last = b->n_runs > b->bucket_first_run[k] ? &b->runs[b->n_runs - 1] : NULL;
            if (last && last->offset + last->count == e->offset) last->count += e->end - e->offset;
            else b->runs[b->n_runs++] = (lm_grad_run){e->offset, e->end - e->offset, k};
        }
    }
    b->bucket_first_run[b->n_buckets] = b->n_runs;
    *out = b;
    return LM_OK;
}

size_t lm_grad_buckets_count(const lm_grad_buckets *b) { return b->n_buckets; }
size_t lm_grad_buckets_run_count(const lm_grad_buckets *b) { return b->n_runs; }
const lm_grad_run *lm_grad_buckets_runs(const lm_grad_buckets *b) { return b->runs; }
size_t lm_grad_buckets_elements(const lm_grad_buckets *b, size_t bucket) { return b->bucket_elements[bucket]; }
size_t lm_grad_buckets_started(const lm_grad_buckets *b) { return b->next_bucket; }
int lm_grad_buckets_armed(const lm_grad_buckets *b) { return b->armed; }

void lm_grad_buckets_bind(lm_grad_buckets *b, const lm_communicator_vtable *comm, void *comm_self, float *grads,
                          void *stream) {
    b->comm = comm;
    b->comm_self = comm_self;
    b->grads = grads;
    b->stream = stream;
}

void lm_grad_buckets_arm(lm_grad_buckets *b) {
    memset(b->final, 0, b->n_extents);
    memset(b->bucket_final, 0, b->n_buckets * sizeof *b->bucket_final);
    b->next_bucket = 0;
    b->oldest_running = 0;
    b->armed = 1;
}

/* Keeps the first failure: its message would be overwritten by backward's
 * own checks before the trainer reads it. */
static void keep_failure(lm_grad_buckets *b, lm_status status) {
    if (b->failure != LM_OK) return;
    b->failure = status;
    snprintf(b->failure_message, sizeof b->failure_message, "%s", lm_error_message());
}

lm_status lm_grad_buckets_failed(const lm_grad_buckets *b) {
    if (b->failure == LM_OK) return LM_OK;
    return lm_error_set(b->failure, "%s", b->failure_message);
}

static lm_status start_bucket(lm_grad_buckets *b, size_t k) {
    for (size_t r = b->bucket_first_run[k]; r < b->bucket_first_run[k + 1]; r++) {
        const lm_grad_run *run = &b->runs[r];
        LM_TRY(b->comm->all_reduce_start(b->comm_self, b->grads + run->offset, run->count, LM_F32, LM_REDUCE_AVG,
                                         b->stream, &b->requests[r]));
    }
    b->next_bucket = k + 1;
    return LM_OK;
}

/* The oldest reduction in flight, tested until one is not done: each MPI
 * call moves every outstanding collective on (Open MPI's progress). */
static lm_status progress(lm_grad_buckets *b) {
    if (!b->comm->test) return LM_OK;
    const size_t started_runs = b->bucket_first_run[b->next_bucket];
    while (b->oldest_running < started_runs) {
        int done = 0;
        LM_TRY(b->comm->test(b->comm_self, b->requests[b->oldest_running], &done));
        if (!done) break;
        b->oldest_running++;
    }
    return LM_OK;
}

void lm_grad_buckets_ready(lm_grad_buckets *b, size_t offset, size_t count) {
    if (!b->armed || b->failure != LM_OK) return;
    const size_t end = offset + count;
    /* The first extent that ends past `offset` (extents tile the buffer). */
    size_t lo = 0, hi = b->n_extents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->extents[mid].end <= offset) lo = mid + 1;
        else hi = mid;
    }
    for (size_t x = lo; x < b->n_extents && b->extents[x].offset < end; x++) {
        const tensor_extent *e = &b->extents[x];
        /* A tensor counts once the ranges hold it whole (the elements between tensors are never reported). */
        if (b->final[x] || e->tensor_offset < offset || e->tensor_end > end) continue;
        b->final[x] = 1;
        b->bucket_final[e->bucket]++;
    }
    lm_status status = LM_OK;
    while (status == LM_OK && b->next_bucket < b->n_buckets &&
           b->bucket_final[b->next_bucket] == b->bucket_tensors[b->next_bucket])
        status = start_bucket(b, b->next_bucket);
    if (status == LM_OK) status = progress(b);
    if (status != LM_OK) keep_failure(b, status);
}

void lm_grad_buckets_ready_fn(void *user, size_t offset, size_t count) { lm_grad_buckets_ready(user, offset, count); }

static lm_status wait_started(lm_grad_buckets *b, lm_status status) {
    /* Every started request is waited for once, even after a failure (wait frees it). */
    for (size_t r = 0; r < b->n_runs; r++) {
        if (!b->requests[r]) continue;
        lm_status waited = b->comm->wait(b->comm_self, b->requests[r]);
        b->requests[r] = NULL;
        if (status == LM_OK) status = waited;
    }
    b->armed = 0;
    b->next_bucket = 0;
    b->oldest_running = 0;
    b->failure = LM_OK;
    return status;
}

lm_status lm_grad_buckets_finish(lm_grad_buckets *b) {
    lm_status status = b->failure != LM_OK ? lm_grad_buckets_failed(b) : LM_OK;
    while (status == LM_OK && b->next_bucket < b->n_buckets) status = start_bucket(b, b->next_bucket);
    return wait_started(b, status);
}

void lm_grad_buckets_drain(lm_grad_buckets *b) { (void)wait_started(b, LM_OK); }
