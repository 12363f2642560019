/* The step arithmetic every device reproduces, and a device in host memory
 * (see lmcore/device.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcore/device.h"
#include "lmcore/log.h"

/* ---- the step state's arithmetic ------------------------------------------------ */

double lm_sum_squares(const float *x, size_t n) {
    const size_t chunk = 16384;
    double total = 0.0;
    for (size_t first = 0; first < n; first += chunk) {
        size_t last = first + chunk < n ? first + chunk : n;
        double sum = 0.0;
        for (size_t i = first; i < last; i++) sum += (double)x[i] * (double)x[i];
        total += sum;
    }
    return total;
}

void lm_step_micro_batch_end(lm_step_state *s, double num, double den, int scored) {
    if (!scored) return;
    const float loss = s->loss;
    if (!isfinite(loss) && s->bad_step == 0) {
        s->bad_step = s->step + 1;
        s->bad_what = LM_BAD_LOSS;
        s->bad_value = loss;
    }
    s->loss_sum += (double)loss * num / den;
    s->scored++;
}

void lm_step_clip_from_sum(lm_step_state *s, double sum) {
    const float norm = (float)sqrt(sum);
    /* A finite sum can still give a norm beyond FLT_MAX. */
    if (!(isfinite(sum) && isfinite(norm)) && s->bad_step == 0) {
        s->bad_step = s->step + 1;
        s->bad_what = LM_BAD_GRAD_NORM;
        s->bad_value = norm;
    }
    s->grad_norm = norm;
    /* torch.nn.utils.clip_grad_norm_: the coefficient max_norm / (total_norm
     * + 1e-6), clamped at 1 (so it applies from a norm of max_norm - 1e-6). */
    const double coefficient = s->max_grad_norm / ((double)norm + 1e-6);
    s->clip_scale = (s->max_grad_norm > 0 && coefficient < 1.0) ? (float)coefficient : 1.0f;
}

void lm_step_schedule(lm_step_state *s) {
    if (s->schedule.kind != LM_SCHEDULE_HOST) s->lr = lm_schedule_lr(&s->schedule, s->step);
}

void lm_step_finish(lm_step_state *s) {
    s->step_loss = s->loss_sum;
    for (int i = 0; i < LM_LOSS_SUMS; i++) s->loss_sums[i] += s->step_loss;
    s->loss_sum = 0.0;
    s->scored = 0;
    s->clip_scale = 1.0f;
    s->step++;
}

/* ---- the host device ---------------------------------------------------------------- */

typedef struct host_device {
    lm_device base; /* first: the lm_device pointer is the host_device pointer */
    char description[128];
    int holders;
    lm_device_counters counters;
    char kept[320]; /* "" or a failure a plugin kept */
} host_device;

static host_device *host_of(lm_device *dev) { return (host_device *)dev; }

static lm_status host_alloc(lm_device *dev, void **ptr, size_t bytes, const char *what) {
    (void)dev;
    *ptr = NULL;
    void *memory = NULL;
    if (posix_memalign(&memory, 64, bytes > 0 ? bytes : 64) != 0)
        return lm_error_set(LM_ERR_NOMEM, "out of host memory allocating %s (%.1f MiB)", what ? what : "a buffer",
                            (double)bytes / 1048576.0);
    memset(memory, 0, bytes > 0 ? bytes : 64);
    *ptr = memory;
    return LM_OK;
}

static void host_free(lm_device *dev, void *ptr) {
    (void)dev;
    free(ptr);
}

static lm_status host_kept(host_device *h) {
    if (!h->kept[0]) return LM_OK;
    lm_status status = lm_error_set(LM_ERR_DEVICE, "%s", h->kept);
    h->kept[0] = '\0';
    return status;
}

static lm_status host_upload(lm_device *dev, void *dst, const void *src, size_t bytes) {
    host_of(dev)->counters.uploads++;
    if (bytes > 0 && dst != src) memcpy(dst, src, bytes);
    return LM_OK;
}

static lm_status host_download(lm_device *dev, void *dst, const void *src, size_t bytes) {
    host_device *h = host_of(dev);
    h->counters.downloads++;
    h->counters.syncs++;
    if (bytes > 0 && dst != src) memcpy(dst, src, bytes);
    return host_kept(h);
}

static void host_zero(lm_device *dev, void *ptr, size_t bytes) {
    (void)dev;
    if (bytes > 0) memset(ptr, 0, bytes);
}

static lm_status host_sync(lm_device *dev) {
    host_of(dev)->counters.syncs++;
    return host_kept(host_of(dev));
}

static lm_status host_check(lm_device *dev) { return host_kept(host_of(dev)); }

static void host_counters(lm_device *dev, lm_device_counters *out) { *out = host_of(dev)->counters; }

static void host_retain(lm_device *dev) { host_of(dev)->holders++; }

static void host_release(lm_device *dev) {
    if (--host_of(dev)->holders <= 0) free(dev);
}

static void host_parallel_for(lm_device *dev, long n, long grain, lm_task_fn fn, void *ctx) {
    (void)dev;
    if (grain < 1) grain = 1;
    for (long begin = 0; begin < n; begin += grain) fn(ctx, begin, n - begin < grain ? n : begin + grain);
}

static void host_keep_failure(lm_device *dev, const char *what, const char *reason) {
    host_device *h = host_of(dev);
    if (!h->kept[0]) snprintf(h->kept, sizeof h->kept, "%s: %s", what ? what : "work", reason ? reason : "failed");
}

static lm_status host_step_micro_batch_end(lm_device *dev, lm_step_state *state, double num, double den,
                                           int scored) {
    (void)dev;
    if (!state || !(den != 0.0)) return lm_error_set(LM_ERR_INVALID, "step_micro_batch_end: no state, or divisor 0");
    lm_step_micro_batch_end(state, num, den, scored);
    return LM_OK;
}

static lm_status host_step_clip(lm_device *dev, lm_step_state *state, const void *grads, lm_dtype dtype, size_t n) {
    (void)dev;
    if (!state) return lm_error_set(LM_ERR_INVALID, "step_clip: no step state");
    if (dtype != LM_F32)
        return lm_error_set(LM_ERR_UNSUPPORTED, "step_clip: gradients of dtype %s; this device reads F32 gradients",
                            lm_dtype_name(dtype));
    lm_step_clip_from_sum(state, lm_sum_squares(grads, n));
    return LM_OK;
}

static lm_status host_step_schedule(lm_device *dev, lm_step_state *state) {
    (void)dev;
    if (!state) return lm_error_set(LM_ERR_INVALID, "step_schedule: no step state");
    lm_step_schedule(state);
    return LM_OK;
}

static lm_status host_step_finish(lm_device *dev, lm_step_state *state) {
    (void)dev;
    if (!state) return lm_error_set(LM_ERR_INVALID, "step_finish: no step state");
    lm_step_finish(state);
    return LM_OK;
}

static const lm_device_ops host_ops = {
    .struct_size = sizeof(lm_device_ops),
    .alloc = host_alloc,
    .free = host_free,
    .upload = host_upload,
    .download = host_download,
    .zero = host_zero,
    .sync = host_sync,
    .check = host_check,
    .counters = host_counters,
    .retain = host_retain,
    .release = host_release,
    .parallel_for = host_parallel_for,
    .keep_failure = host_keep_failure,
    .step_micro_batch_end = host_step_micro_batch_end,
    .step_clip = host_step_clip,
    .step_schedule = host_step_schedule,
    .step_finish = host_step_finish,
};

lm_status lm_host_device_create(lm_device **out, const char *description) {
    *out = NULL;
    host_device *h = calloc(1, sizeof *h);
    if (!h) return lm_error_set(LM_ERR_NOMEM, "out of host memory creating a host device");
    snprintf(h->description, sizeof h->description, "%s", description && *description ? description : "cpu (host)");
    h->holders = 1;
    h->base.struct_size = (uint32_t)sizeof h->base;
    h->base.type = LM_DEVICE_CPU;
    h->base.index = 0;
    h->base.description = h->description;
    h->base.stream = NULL;
    h->base.ops = &host_ops;
    *out = &h->base;
    return LM_OK;
}
