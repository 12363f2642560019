/* A backend as the public lm_device (lmcore/device.h): the core and
 * optimizer plugins reach a model's device through these functions, which
 * forward to the backend's own table, so that the op profiler (a backend
 * that wraps another) sees and times the step operations too. */
#include <stddef.h>
#include <string.h>

#include "backend.h"
#include "cpu/cpu_internal.h"

lm_backend *lm_backend_of_device(lm_device *dev) {
    return (lm_backend *)(void *)((char *)dev - offsetof(lm_backend, device));
}

static lm_status device_alloc(lm_device *dev, void **ptr, size_t bytes, const char *what) {
    lm_backend *be = lm_backend_of_device(dev);
    return be->ops->alloc(be, ptr, bytes, what);
}

static void device_free(lm_device *dev, void *ptr) {
    lm_backend *be = lm_backend_of_device(dev);
    if (ptr) be->ops->free(be, ptr);
}

static lm_status device_upload(lm_device *dev, void *dst, const void *src, size_t bytes) {
    lm_backend *be = lm_backend_of_device(dev);
    return be->ops->upload(be, dst, src, bytes);
}

static lm_status device_download(lm_device *dev, void *dst, const void *src, size_t bytes) {
    lm_backend *be = lm_backend_of_device(dev);
    return be->ops->download(be, dst, src, bytes);
}

static void device_zero(lm_device *dev, void *ptr, size_t bytes) {
    lm_backend *be = lm_backend_of_device(dev);
    be->ops->zero(be, ptr, bytes);
}

static lm_status device_sync(lm_device *dev) {
    lm_backend *be = lm_backend_of_device(dev);
    return be->ops->sync(be);
}

static lm_status device_check(lm_device *dev) {
    lm_backend *be = lm_backend_of_device(dev);
    return be->ops->check(be);
}

static void device_counters(lm_device *dev, lm_device_counters *out) {
    lm_backend *be = lm_backend_of_device(dev);
    memset(out, 0, sizeof *out);
    be->ops->counters(be, out);
}

void lm_backend_release(lm_backend *be) {
    if (be && --be->holders <= 0) be->ops->destroy(be);
}

static void device_retain(lm_device *dev) { lm_backend_of_device(dev)->holders++; }

static void device_release(lm_device *dev) { lm_backend_release(lm_backend_of_device(dev)); }

static void device_parallel_for(lm_device *dev, long n, long grain, lm_task_fn fn, void *ctx) {
    (void)dev;
    lm_cpu_parallel_for(n, grain > 0 ? grain : 1, fn, ctx);
}

static void device_keep_failure(lm_device *dev, const char *what, const char *reason) {
    lm_backend *be = lm_backend_of_device(dev);
    be->ops->keep_failure(be, what ? what : "a plugin's work", reason ? reason : "failed");
}

static lm_status device_step_micro_batch_end(lm_device *dev, lm_step_state *state, double num, double den,
                                             int scored) {
    if (!state) return lm_error_set(LM_ERR_INVALID, "step_micro_batch_end: no step state");
    if (!(den != 0.0)) return lm_error_set(LM_ERR_INVALID, "step_micro_batch_end: the divisor is %g", den);
    lm_backend *be = lm_backend_of_device(dev);
    be->ops->step_micro_batch_end(be, state, num, den, scored);
    return LM_OK;
}

static lm_status device_step_clip(lm_device *dev, lm_step_state *state, const void *grads, lm_dtype dtype, size_t n) {
    if (!state) return lm_error_set(LM_ERR_INVALID, "step_clip: no step state");
    if (dtype != LM_F32)
        return lm_error_set(LM_ERR_UNSUPPORTED, "step_clip: gradients of dtype %s; this device reads F32 gradients",
                            lm_dtype_name(dtype));
    lm_backend *be = lm_backend_of_device(dev);
    be->ops->step_clip(be, state, (const float *)grads, n);
    return LM_OK;
}

static lm_status device_step_schedule(lm_device *dev, lm_step_state *state) {
    if (!state) return lm_error_set(LM_ERR_INVALID, "step_schedule: no step state");
    lm_backend *be = lm_backend_of_device(dev);
    be->ops->step_schedule(be, state);
    return LM_OK;
}

static lm_status device_step_finish(lm_device *dev, lm_step_state *state) {
    if (!state) return lm_error_set(LM_ERR_INVALID, "step_finish: no step state");
    lm_backend *be = lm_backend_of_device(dev);
    be->ops->step_finish(be, state);
    return LM_OK;
}

/* ---- graphs: present only where the backend has them (device.h) ---- */

static lm_status device_graph_begin(lm_device *dev) {
    lm_backend *be = lm_backend_of_device(dev);
    return be->ops->graph_begin(be);
}

static lm_status device_graph_end(lm_device *dev, lm_device_graph **out) {
    if (!out) return lm_error_set(LM_ERR_INVALID, "graph_end: no place for the graph");
    *out = NULL;
    lm_backend *be = lm_backend_of_device(dev);
    return be->ops->graph_end(be, out);
}

static lm_status device_graph_launch(lm_device *dev, lm_device_graph *graph) {
    if (!graph) return lm_error_set(LM_ERR_INVALID, "graph_launch: no graph");
    lm_backend *be = lm_backend_of_device(dev);
    return be->ops->graph_launch(be, graph);
}

static void device_graph_destroy(lm_device *dev, lm_device_graph *graph) {
    lm_backend *be = lm_backend_of_device(dev);
    if (graph) be->ops->graph_destroy(be, graph);
}

/* The tables differ in parallel_for (a CPU device lends its thread pool to
 * plugins, a GPU device has none: kernels go on the stream) and in the
 * graph slots (only a backend that can capture has them). */
#define DEVICE_OPS(parallel_for_fn, graph_begin_fn, graph_end_fn, graph_launch_fn, graph_destroy_fn)                   \
    {                                                                                                                  \
        .struct_size = sizeof(lm_device_ops), .alloc = device_alloc, .free = device_free, .upload = device_upload,     \
        .download = device_download, .zero = device_zero, .sync = device_sync, .check = device_check,                  \
        .counters = device_counters, .retain = device_retain, .release = device_release,                               \
        .parallel_for = parallel_for_fn, .keep_failure = device_keep_failure,                                          \
        .step_micro_batch_end = device_step_micro_batch_end, .step_clip = device_step_clip,                            \
        .step_schedule = device_step_schedule, .step_finish = device_step_finish, .graph_begin = graph_begin_fn,       \
        .graph_end = graph_end_fn, .graph_launch = graph_launch_fn, .graph_destroy = graph_destroy_fn,                 \
    }

static const lm_device_ops cpu_device_ops = DEVICE_OPS(device_parallel_for, NULL, NULL, NULL, NULL);
static const lm_device_ops gpu_device_ops = DEVICE_OPS(NULL, NULL, NULL, NULL, NULL);
static const lm_device_ops gpu_graph_device_ops = DEVICE_OPS(NULL, device_graph_begin, device_graph_end,
                                                             device_graph_launch, device_graph_destroy);

void lm_backend_device_init(lm_backend *be, lm_device_type type, int index, void *stream) {
    lm_device *dev = &be->device;
    memset(dev, 0, sizeof *dev);
    dev->struct_size = (uint32_t)sizeof *dev;
    dev->type = (int32_t)type;
    dev->index = index;
    dev->description = be->ops->describe(be);
    dev->stream = stream;
    const int can_capture = be->ops->graph_begin && be->ops->graph_end && be->ops->graph_launch &&
                            be->ops->graph_destroy;
    dev->ops = type == LM_DEVICE_CPU ? &cpu_device_ops : can_capture ? &gpu_graph_device_ops : &gpu_device_ops;
    be->holders = 1;
}
