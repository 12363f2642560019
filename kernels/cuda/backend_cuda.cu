/* The CUDA backend: the lm_backend_ops table over the lm_cuda_* twins, on
 * one stream with the cuBLAS(Lt) handles and workspaces of an lm_cuda_ctx,
 * presented to plugins as an lm_device (lmcore/device.h, ../device.c).
 * Memory is cudaMalloc'd and zero-filled; ops keep their first failure in
 * the context and sync()/check() report it.
 *
 * Only download and sync wait for the device (device.h), and the backend
 * counts every wait (counters) so that a test can show a training step
 * without logging never waits.  Upload does not wait: it copies the host
 * bytes into a pinned staging ring and queues the copy from there (below).
 * Like every op, the backend is used by one host thread at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"
#include "lmcore/log.h"

/* ---- upload staging ----
 * A copy from pageable host memory may wait for the stream (the driver
 * stages it through its own pinned buffer when it sees fit), and the caller
 * may reuse `src` as soon as upload returns.  So upload copies the bytes
 * into a pinned ring allocated once per backend and queues
 * cudaMemcpyAsync(dst, ring + begin) on the stream, then records an event
 * after it.  A part of the ring is written again only once the copies that
 * read it are done: each staged region keeps its event, and a region about
 * to be reused is first queried (free when its copy is done, the usual case
 * since copies of a few KiB finish in microseconds), else waited for, which
 * is counted as a sync.  Events complete in stream order, so waiting for
 * the youngest overlapping region covers every older one.  Uploads larger
 * than half the ring (parameters at load) copy directly and wait (a sync). */
#define LM_CUDA_STAGING_BYTES ((size_t)8 << 20)
#define LM_CUDA_STAGING_MAX (LM_CUDA_STAGING_BYTES / 2)
/* Regions in flight at most (one event each); more waits for the oldest. */
#define LM_CUDA_STAGING_REGIONS 64
/* Regions start on 256-byte boundaries (the DMA engines' preference). */
#define LM_CUDA_STAGING_ALIGN ((size_t)256)

typedef struct staged_region {
    size_t begin, end; /* [begin, end) of the ring */
} staged_region;

typedef struct cuda_backend {
    lm_backend base; /* first: the lm_backend pointer is the cuda_backend pointer */
    lm_cuda_ctx *ctx;
    lm_device_counters counters;
    /* The staging ring (NULL when pinned memory could not be had: every
     * upload then copies directly and waits). */
    unsigned char *ring;
    size_t ring_head; /* where the next region starts, unless it must wrap */
    /* Regions in flight, oldest first: slot (first + i) % REGIONS, whose
     * copy is followed by events[that slot]. */
    staged_region regions[LM_CUDA_STAGING_REGIONS];
    cudaEvent_t events[LM_CUDA_STAGING_REGIONS];
    int first, in_flight;
    int capturing; /* between graph_begin and graph_end: nothing may wait or upload */
    char description[640]; /* room for any device name */
} cuda_backend;

static lm_cuda_ctx *ctx_of(lm_backend *be) {
    return ((cuda_backend *)be)->ctx;
}

static void cuda_destroy(lm_backend *be) {
    if (!be) return;
    cuda_backend *cb = (cuda_backend *)be;
    if (cb->ctx) {
        cudaSetDevice(lm_cuda_ctx_device(cb->ctx));
        if (cb->capturing) { /* an abandoned capture: close it so that the stream can be waited for */
            cudaGraph_t abandoned = NULL;
            if (cudaStreamEndCapture(lm_cuda_ctx_stream(cb->ctx), &abandoned) == cudaSuccess && abandoned)
                cudaGraphDestroy(abandoned);
            (void)cudaGetLastError();
        }
        /* the ring may still be read by queued copies */
        cudaStreamSynchronize(lm_cuda_ctx_stream(cb->ctx));
        for (int i = 0; i < LM_CUDA_STAGING_REGIONS; i++)
            if (cb->events[i]) cudaEventDestroy(cb->events[i]);
        if (cb->ring) cudaFreeHost(cb->ring);
        (void)cudaGetLastError();
        lm_cuda_ctx_destroy(cb->ctx);
    }
    free(cb);
}

static const char *cuda_describe(lm_backend *be) {
    return ((cuda_backend *)be)->description;
}

static lm_status cuda_alloc(lm_backend *be, void **ptr, size_t bytes, const char *what) {
    lm_cuda_ctx *ctx = ctx_of(be);
    *ptr = NULL;
    if (bytes == 0) return LM_OK;
    cudaSetDevice(lm_cuda_ctx_device(ctx));
    void *memory = NULL;
    cudaError_t err = cudaMalloc(&memory, bytes);
    if (err != cudaSuccess) {
        (void)cudaGetLastError(); /* not a failure of the queued ops */
        size_t free_bytes = 0, total_bytes = 0;
        cudaMemGetInfo(&free_bytes, &total_bytes);
        (void)cudaGetLastError();
        if (err == cudaErrorMemoryAllocation)
            return lm_error_set(LM_ERR_NOMEM,
                                "out of GPU memory allocating %s: %.1f MiB requested, %.1f MiB free of %.1f MiB on "
                                "cuda:%d; reduce the batch size, block size or model size",
                                what ? what : "a buffer", bytes / 1048576.0, free_bytes / 1048576.0,
                                total_bytes / 1048576.0, lm_cuda_ctx_device(ctx));
        return lm_error_set(LM_ERR_DEVICE, "CUDA error in alloc (%s, %.1f MiB): %s", what ? what : "a buffer",
                            bytes / 1048576.0, cudaGetErrorString(err));
    }
    err = cudaMemsetAsync(memory, 0, bytes, lm_cuda_ctx_stream(ctx));
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        cudaFree(memory);
        return lm_error_set(LM_ERR_DEVICE, "CUDA error in alloc (zero-filling %s): %s", what ? what : "a buffer",
                            cudaGetErrorString(err));
    }
    *ptr = memory;
    return LM_OK;
}

static void cuda_free(lm_backend *be, void *ptr) {
    if (!ptr) return;
    lm_cuda_ctx *ctx = ctx_of(be);
    /* cudaFree waits for the device; queued work using ptr is done first. */
    lm_cuda_keep_cuda(ctx, "free", cudaFree(ptr));
}

/* Waits for the copy; a kept failure of an earlier op is reported first
 * (it is the cause when the copy fails on a broken context). */
static lm_status finish_copy(lm_cuda_ctx *ctx, const char *op, cudaError_t err) {
    if (err == cudaSuccess) err = cudaStreamSynchronize(lm_cuda_ctx_stream(ctx));
    lm_status kept = lm_cuda_ctx_check(ctx);
    if (kept != LM_OK) {
        (void)cudaGetLastError();
        return kept;
    }
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return lm_error_set(LM_ERR_DEVICE, "CUDA error in %s: %s", op, cudaGetErrorString(err));
    }
    return LM_OK;
}

/* A fault of queued work met while staging (an event that will never
 * complete): kept like a sync's, and returned, since the upload cannot be
 * queued on a broken context. */
static lm_status staging_fault(lm_cuda_ctx *ctx, cudaError_t err) {
    lm_cuda_keep_cuda(ctx, "a kernel (reported at upload)", err);
    return lm_cuda_ctx_check(ctx);
}

/* Forgets the oldest `count` regions (their copies are done). */
static void staging_pop(cuda_backend *cb, int count) {
    cb->first = (cb->first + count) % LM_CUDA_STAGING_REGIONS;
    cb->in_flight -= count;
}

/* Forgets the regions whose copies are done, oldest first, without waiting. */
static lm_status staging_retire_done(cuda_backend *cb) {
    while (cb->in_flight > 0) {
        const cudaError_t err = cudaEventQuery(cb->events[cb->first]);
        if (err == cudaErrorNotReady) {
            /* not a failure; any launch error before it was kept by the caller */
            (void)cudaGetLastError();
            return LM_OK;
        }
        if (err != cudaSuccess) return staging_fault(cb->ctx, err);
        staging_pop(cb, 1);
    }
    return LM_OK;
}

/* Queues dst = src through the ring: returns once src has been copied into
 * it, without waiting for the device unless the part of the ring it needs
 * is still being read (counted as a sync). */
static lm_status staged_upload(cuda_backend *cb, void *dst_device, const void *src_host, size_t bytes) {
    lm_cuda_ctx *ctx = cb->ctx;
    LM_TRY(staging_retire_done(cb));
    const size_t need = (bytes + LM_CUDA_STAGING_ALIGN - 1) / LM_CUDA_STAGING_ALIGN * LM_CUDA_STAGING_ALIGN;
    size_t begin = cb->ring_head;
    if (begin + need > LM_CUDA_STAGING_BYTES) begin = 0; /* wrap: the tail piece stays unused this lap */
    const size_t end = begin + need;
    /* The youngest region in flight that overlaps [begin, end), or the
     * oldest when every event is taken. */
    int wait_for = cb->in_flight == LM_CUDA_STAGING_REGIONS ? 0 : -1;
    for (int i = 0; i < cb->in_flight; i++) {
        const staged_region *r = &cb->regions[(cb->first + i) % LM_CUDA_STAGING_REGIONS];
        if (r->begin < end && begin < r->end) wait_for = i;
    }
    if (wait_for >= 0) {
        const cudaEvent_t done = cb->events[(cb->first + wait_for) % LM_CUDA_STAGING_REGIONS];
        cudaError_t err = cudaEventQuery(done); /* it may have finished since the query above */
        if (err == cudaErrorNotReady) {
            (void)cudaGetLastError();
            cb->counters.syncs++; /* the host waits for the device: say so */
            err = cudaEventSynchronize(done);
        }
        if (err != cudaSuccess) return staging_fault(ctx, err);
        staging_pop(cb, wait_for + 1);
    }
    memcpy(cb->ring + begin, src_host, bytes);
    const cudaStream_t stream = lm_cuda_ctx_stream(ctx);
    const int slot = (cb->first + cb->in_flight) % LM_CUDA_STAGING_REGIONS;
    cudaError_t err = cudaMemcpyAsync(dst_device, cb->ring + begin, bytes, cudaMemcpyHostToDevice, stream);
    if (err == cudaSuccess && (err = cudaEventRecord(cb->events[slot], stream)) != cudaSuccess) {
        /* The copy is queued but cannot be tracked: wait for it rather
         * than let a later upload overwrite what it reads. */
        cb->counters.syncs++;
        (void)cudaStreamSynchronize(stream);
    }
    if (err != cudaSuccess) {
        /* A kept failure of an earlier op comes first: it is the cause on a broken context. */
        (void)cudaGetLastError();
        LM_TRY(lm_cuda_ctx_check(ctx));
        return lm_error_set(LM_ERR_DEVICE, "CUDA error in upload (%zu bytes): %s", bytes, cudaGetErrorString(err));
    }
    cb->regions[slot].begin = begin;
    cb->regions[slot].end = end;
    cb->in_flight++;
    cb->ring_head = end;
    return LM_OK;
}

static lm_status cuda_upload(lm_backend *be, void *dst_device, const void *src_host, size_t bytes) {
    cuda_backend *cb = (cuda_backend *)be;
    lm_cuda_ctx *ctx = cb->ctx;
    cb->counters.uploads++;
    if (bytes == 0) return LM_OK;
    const cudaStream_t stream = lm_cuda_ctx_stream(ctx);
    /* A launch error of a plugin's kernel not yet seen is kept first (for
     * the next sync or check), so that clearing the state of the queries
     * below cannot lose it. */
    lm_cuda_check_launch(ctx, "a queued kernel");
    /* A copy queued while the stream is captured would replay from a ring
     * region that later uploads overwrite (and querying events is not
     * allowed then): uploads belong before the capture.  Asked first, so
     * that a refused upload makes no other CUDA call inside the capture. */
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    const cudaError_t capture_err = cudaStreamIsCapturing(stream, &capture);
    if (capture_err != cudaSuccess) (void)cudaGetLastError();
    if (capture_err == cudaSuccess && capture != cudaStreamCaptureStatusNone)
        return lm_error_set(LM_ERR_INVALID,
                            "upload of %zu bytes while the stream is captured into a CUDA graph: upload before the "
                            "capture begins",
                            bytes);
    cudaSetDevice(lm_cuda_ctx_device(ctx));
    if (cb->ring && bytes <= LM_CUDA_STAGING_MAX) return staged_upload(cb, dst_device, src_host, bytes);
    /* Too large for the ring (or no ring): the direct copy, and a wait so
     * that src may be reused at once. */
    cb->counters.syncs++;
    return finish_copy(ctx, "upload", cudaMemcpyAsync(dst_device, src_host, bytes, cudaMemcpyHostToDevice, stream));
}

/* A wait inside a capture would fail the capture (thread-local mode
 * forbids it) and could not wait for work that has not run: refused, and
 * kept so that graph_end reports the capture as failed, naming the wait. */
static lm_status refuse_wait_in_capture(cuda_backend *cb, const char *op) {
    lm_cuda_ctx_keep_error(cb->ctx, op,
                           "the host waited for the GPU while its work was captured into a CUDA graph: read or "
                           "synchronise before graph_begin or after graph_end");
    return lm_error_set(LM_ERR_INVALID, "%s while the GPU's work is captured into a CUDA graph: read or synchronise "
                                        "before graph_begin or after graph_end",
                        op);
}

/* A host read: waits for the queued work even when there is nothing to
 * copy, so that what the caller does next sees it done. */
static lm_status cuda_download(lm_backend *be, void *dst_host, const void *src_device, size_t bytes) {
    cuda_backend *cb = (cuda_backend *)be;
    lm_cuda_ctx *ctx = cb->ctx;
    if (cb->capturing) return refuse_wait_in_capture(cb, "download");
    cb->counters.downloads++;
    cb->counters.syncs++;
    cudaSetDevice(lm_cuda_ctx_device(ctx));
    if (bytes == 0) return finish_copy(ctx, "download", cudaSuccess);
    return finish_copy(ctx, "download",
                       cudaMemcpyAsync(dst_host, src_device, bytes, cudaMemcpyDeviceToHost, lm_cuda_ctx_stream(ctx)));
}

static lm_status cuda_sync(lm_backend *be) {
    if (((cuda_backend *)be)->capturing) return refuse_wait_in_capture((cuda_backend *)be, "sync");
    ((cuda_backend *)be)->counters.syncs++;
    return lm_cuda_ctx_sync(ctx_of(be));
}

static void cuda_counters(lm_backend *be, lm_device_counters *out) {
    *out = ((cuda_backend *)be)->counters;
}

/* A failure of work a plugin queued itself (its own kernel's launch):
 * reported by the next sync or check like an op's, first one wins. */
static void cuda_keep_failure(lm_backend *be, const char *what, const char *reason) {
    lm_cuda_ctx_keep_error(ctx_of(be), what ? what : "a plugin's work", reason ? reason : "failed");
}

static lm_status cuda_check(lm_backend *be) {
    return lm_cuda_ctx_check(ctx_of(be));
}

static void cuda_zero(lm_backend *be, void *ptr, size_t bytes) {
    if (bytes == 0) return;
    lm_cuda_ctx *ctx = ctx_of(be);
    lm_cuda_keep_cuda(ctx, "zero", cudaMemsetAsync(ptr, 0, bytes, lm_cuda_ctx_stream(ctx)));
}

/* ---- ops (backend_ops.def): the backend replaced by its context,
 * everything else passed on ---- */
#define LM_OP(name, params, args, profile_key)                                                                         \
    static void cuda_##name(lm_backend *be, LM_UNPAREN params) { lm_cuda_##name(ctx_of(be), LM_UNPAREN args); }
#define LM_OP_CPU_ADAPTED LM_OP
#define LM_OP_HOST_READ(name, params, args, profile_key) /* written below */
#include "backend_ops.def"

/* ---- the host reads (LM_OP_HOST_READ) ---- */

/* The sum lands in the context's device double; the download (one download
 * and one sync in the counters) reads it. */
static lm_status reduce_to_host(lm_backend *be, const float *x, size_t n, double *out, int square) {
    lm_cuda_ctx *ctx = ctx_of(be);
    *out = 0.0;
    if (square) {
        lm_cuda_sum_squares(ctx, ctx->sum_result, x, n);
    } else {
        lm_cuda_sum(ctx, ctx->sum_result, x, n);
    }
    return cuda_download(be, out, ctx->sum_result, sizeof *out);
}

static lm_status cuda_sum_to_host(lm_backend *be, const float *x, size_t n, double *out) {
    return reduce_to_host(be, x, n, out, 0);
}

static lm_status cuda_sum_squares_to_host(lm_backend *be, const float *x, size_t n, double *out) {
    return reduce_to_host(be, x, n, out, 1);
}

/* ---- timer: CUDA events recorded on the context's stream ---- */

struct lm_backend_timer {
    int n;
    cudaEvent_t *events;
};

static void cuda_timer_destroy(lm_backend *be, lm_backend_timer *timer) {
    (void)be;
    if (!timer) return;
    for (int i = 0; i < timer->n; i++)
        if (timer->events[i]) cudaEventDestroy(timer->events[i]);
    free(timer->events);
    free(timer);
}

static lm_status cuda_timer_create(lm_backend *be, lm_backend_timer **out, int n) {
    *out = NULL;
    if (n < 1) return lm_error_set(LM_ERR_INVALID, "timer_create: %d marks (at least 1)", n);
    lm_backend_timer *t = (lm_backend_timer *)calloc(1, sizeof *t);
    if (t) t->events = (cudaEvent_t *)calloc((size_t)n, sizeof *t->events);
    if (!t || !t->events) {
        free(t);
        return lm_error_set(LM_ERR_NOMEM, "out of host memory for a timer of %d marks", n);
    }
    t->n = n;
    cudaSetDevice(lm_cuda_ctx_device(ctx_of(be)));
    for (int i = 0; i < n; i++) {
        cudaError_t err = cudaEventCreate(&t->events[i]);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            t->events[i] = NULL;
            cuda_timer_destroy(be, t);
            return lm_error_set(LM_ERR_DEVICE, "CUDA error in timer_create (event %d of %d): %s", i, n,
                                cudaGetErrorString(err));
        }
    }
    *out = t;
    return LM_OK;
}

static void cuda_timer_record(lm_backend *be, lm_backend_timer *timer, int i) {
    if (i < 0 || i >= timer->n) return;
    lm_cuda_ctx *ctx = ctx_of(be);
    lm_cuda_keep_cuda(ctx, "timer_record", cudaEventRecord(timer->events[i], lm_cuda_ctx_stream(ctx)));
}

static lm_status cuda_timer_elapsed_ms(lm_backend *be, lm_backend_timer *timer, int from, int to, double *ms) {
    *ms = 0.0;
    if (from < 0 || to < 0 || from >= timer->n || to >= timer->n)
        return lm_error_set(LM_ERR_INVALID, "timer_elapsed_ms: marks %d and %d of %d", from, to, timer->n);
    /* A failure kept by an op stays kept: the model reports it at its next
     * check (the profiler only stops timing); taking it here would lose it. */
    lm_cuda_ctx *ctx = ctx_of(be);
    if (lm_cuda_ctx_failed(ctx))
        return lm_error_set(LM_ERR_DEVICE, "timer_elapsed_ms: an earlier op failed (the model reports it)");
    ((cuda_backend *)be)->counters.syncs++; /* the host waits for the device */
    cudaError_t err = cudaEventSynchronize(timer->events[to]);
    if (err != cudaSuccess) {
        /* A fault of the queued work: kept for the model, like a sync's. */
        lm_cuda_keep_cuda(ctx, "a kernel (reported at a profiler mark)", err);
        return lm_error_set(LM_ERR_DEVICE, "CUDA error in timer_elapsed_ms (waiting for mark %d): %s", to,
                            cudaGetErrorString(err));
    }
    float elapsed = 0.0f;
    err = cudaEventElapsedTime(&elapsed, timer->events[from], timer->events[to]);
    if (err != cudaSuccess) {
        (void)cudaGetLastError(); /* the timer's own failure, not the model's */
        return lm_error_set(LM_ERR_DEVICE, "CUDA error in timer_elapsed_ms (marks %d to %d): %s", from, to,
                            cudaGetErrorString(err));
    }
    *ms = (double)elapsed;
    return LM_OK;
}

/* ---- graphs (lmcore/device.h graph_*): stream capture of the context's
 * stream, in thread-local mode.  Global mode would also fail a capture
 * when an unrelated thread (a logger, a data thread, another model) made
 * an unsafe call such as cudaMalloc; relaxed mode would let this thread's
 * own unsafe calls through silently: a cudaMalloc or a synchronous copy
 * inside the step means a lazy allocation or a host read that the warm-up
 * step did not take out of it, and running it eagerly instead of replaying
 * a graph that lacks it is the safe answer.  Thread-local mode refuses
 * exactly this thread's such calls, which the capture then reports. ---- */

struct lm_device_graph {
    cudaGraphExec_t exec;
    /* The GEMM pointer arrays the graph's batched GEMMs read are the
     * context's cache: when it is emptied they are freed, and the graph
     * must not be launched again (graph_launch refuses it). */
    unsigned long long pointer_arrays_generation;
};

static lm_status cuda_graph_begin(lm_backend *be) {
    cuda_backend *cb = (cuda_backend *)be;
    lm_cuda_ctx *ctx = cb->ctx;
    if (cb->capturing)
        return lm_error_set(LM_ERR_INVALID, "graph_begin: a capture is already open: close it with graph_end first");
    /* A failure kept before the capture belongs to the work before it:
     * reported now, so that what graph_end reports is the capture's own. */
    LM_TRY(lm_cuda_ctx_check(ctx));
    cudaSetDevice(lm_cuda_ctx_device(ctx));
    const cudaError_t err = cudaStreamBeginCapture(lm_cuda_ctx_stream(ctx), cudaStreamCaptureModeThreadLocal);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return lm_error_set(LM_ERR_DEVICE, "CUDA error in graph_begin (cudaStreamBeginCapture): %s",
                            cudaGetErrorString(err));
    }
    cb->capturing = 1;
    return LM_OK;
}

static lm_status cuda_graph_end(lm_backend *be, lm_device_graph **out) {
    cuda_backend *cb = (cuda_backend *)be;
    lm_cuda_ctx *ctx = cb->ctx;
    *out = NULL;
    if (!cb->capturing) return lm_error_set(LM_ERR_INVALID, "graph_end: no capture is open: call graph_begin first");
    cb->capturing = 0;
    cudaSetDevice(lm_cuda_ctx_device(ctx));
    cudaGraph_t graph = NULL;
    const cudaError_t end_err = cudaStreamEndCapture(lm_cuda_ctx_stream(ctx), &graph);
    /* An op's failure inside the capture was kept (ops return nothing): it
     * names the op, so it comes first; it is taken here, once. */
    lm_status kept = lm_cuda_ctx_check(ctx);
    if (kept != LM_OK || end_err != cudaSuccess) {
        (void)cudaGetLastError();
        if (graph) cudaGraphDestroy(graph);
        if (kept != LM_OK) {
            lm_error_prefix("CUDA graph capture failed (none of its work ran): ");
            return kept;
        }
        return lm_error_set(LM_ERR_DEVICE, "CUDA graph capture failed (none of its work ran): "
                                           "cudaStreamEndCapture: %s",
                            cudaGetErrorString(end_err));
    }
    cudaGraphExec_t exec = NULL;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0ull);
    cudaGraphDestroy(graph);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return lm_error_set(LM_ERR_DEVICE, "CUDA graph capture failed (none of its work ran): "
                                           "cudaGraphInstantiate: %s",
                            cudaGetErrorString(err));
    }
    lm_device_graph *g = (lm_device_graph *)calloc(1, sizeof *g);
    if (!g) {
        cudaGraphExecDestroy(exec);
        return lm_error_set(LM_ERR_NOMEM, "out of host memory for a CUDA graph");
    }
    g->exec = exec;
    g->pointer_arrays_generation = ctx->gemm_pointer_arrays_generation;
    *out = g;
    return LM_OK;
}

static lm_status cuda_graph_launch(lm_backend *be, lm_device_graph *graph) {
    cuda_backend *cb = (cuda_backend *)be;
    lm_cuda_ctx *ctx = cb->ctx;
    if (cb->capturing)
        return lm_error_set(LM_ERR_INVALID, "graph_launch inside a capture: launch graphs after graph_end");
    if (graph->pointer_arrays_generation != ctx->gemm_pointer_arrays_generation)
        return lm_error_set(LM_ERR_UNSUPPORTED, "graph_launch: the graph's batched GEMMs read pointer arrays that "
                                                "the GPU context has freed since (its cache was emptied after many "
                                                "shapes): capture the work again");
    lm_cuda_check_launch(ctx, "a queued kernel"); /* kept before the launch's own error is looked at */
    cudaSetDevice(lm_cuda_ctx_device(ctx));
    const cudaError_t err = cudaGraphLaunch(graph->exec, lm_cuda_ctx_stream(ctx));
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        LM_TRY(lm_cuda_ctx_check(ctx)); /* an earlier op's failure is the cause on a broken context */
        return lm_error_set(LM_ERR_DEVICE, "CUDA error in graph_launch: %s", cudaGetErrorString(err));
    }
    return LM_OK;
}

/* Waits for the queued work first, as free() does: launches of the graph
 * may still be queued. */
static void cuda_graph_destroy(lm_backend *be, lm_device_graph *graph) {
    if (!graph) return;
    lm_cuda_ctx *ctx = ctx_of(be);
    cudaSetDevice(lm_cuda_ctx_device(ctx));
    lm_cuda_keep_cuda(ctx, "graph_destroy (waiting for its launches)", cudaStreamSynchronize(lm_cuda_ctx_stream(ctx)));
    lm_cuda_keep_cuda(ctx, "graph_destroy", cudaGraphExecDestroy(graph->exec));
    free(graph);
}

static lm_backend_ops make_cuda_ops(void) {
    lm_backend_ops ops;
    memset(&ops, 0, sizeof ops);
#define LM_BACKEND_ENTRY(member) ops.member = cuda_##member;
#include "backend_table.def"
    /* optional members, outside backend_table.def (backend.h) */
    ops.graph_begin = cuda_graph_begin;
    ops.graph_end = cuda_graph_end;
    ops.graph_launch = cuda_graph_launch;
    ops.graph_destroy = cuda_graph_destroy;
    return ops;
}

/* C++ has no designated initialisers for this table in C++17: filled once. */
static const lm_backend_ops cuda_ops = make_cuda_ops();

extern "C" lm_status lm_backend_cuda_create(lm_backend **out, int device_index, lm_precision precision) {
    *out = NULL;
    lm_cuda_ctx *ctx = NULL;
    LM_TRY(lm_cuda_ctx_create(&ctx, device_index, precision));
    cuda_backend *cb = (cuda_backend *)calloc(1, sizeof *cb);
    if (!cb) {
        lm_cuda_ctx_destroy(ctx);
        return lm_error_set(LM_ERR_NOMEM, "out of host memory creating the CUDA backend");
    }
    cb->ctx = ctx;
    cb->base.ops = &cuda_ops;
    cb->base.precision = precision;
    cudaError_t err;
    for (int i = 0; i < LM_CUDA_STAGING_REGIONS; i++) {
        /* no timing: recording and querying such events is cheapest */
        if ((err = cudaEventCreateWithFlags(&cb->events[i], cudaEventDisableTiming)) != cudaSuccess) {
            (void)cudaGetLastError();
            cb->events[i] = NULL;
            cuda_destroy(&cb->base);
            return lm_error_set(LM_ERR_DEVICE, "CUDA error creating the upload events: %s", cudaGetErrorString(err));
        }
    }
    if ((err = cudaHostAlloc((void **)&cb->ring, LM_CUDA_STAGING_BYTES, cudaHostAllocDefault)) != cudaSuccess) {
        /* Not fatal: uploads copy directly and wait, which the counters show. */
        (void)cudaGetLastError();
        cb->ring = NULL;
        lm_log(LM_LOG_WARN, "cuda:%d: no pinned memory for the %zu MiB upload staging buffer (%s): every upload will "
                            "wait for the GPU",
               device_index, LM_CUDA_STAGING_BYTES >> 20, cudaGetErrorString(err));
    }
    cudaDeviceProp prop;
    err = cudaGetDeviceProperties(&prop, device_index);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        cuda_destroy(&cb->base);
        return lm_error_set(LM_ERR_DEVICE, "CUDA error in cudaGetDeviceProperties: %s", cudaGetErrorString(err));
    }
    snprintf(cb->description, sizeof cb->description, "cuda:%d %s (sm_%d%d, %.1f GiB)", device_index, prop.name,
             prop.major, prop.minor, (double)prop.totalGlobalMem / 1073741824.0);
    if (prop.major < 8)
        lm_log(LM_LOG_WARN, "%s: this build targets sm_80 and newer; kernels may fail to launch on sm_%d%d",
               cb->description, prop.major, prop.minor);
    /* Plugins reach this backend as an lm_device (device.c): its stream is the context's. */
    lm_backend_device_init(&cb->base, LM_DEVICE_CUDA, device_index, (void *)lm_cuda_ctx_stream(ctx));
    *out = &cb->base;
    return LM_OK;
}
