/* Shared by the optimizer plugins: see optimizer_common.h. */
#include "optimizer_common.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- binding ---- */

static int by_offset(const void *a, const void *b) {
    const lm_param_desc *x = *(const lm_param_desc *const *)a, *y = *(const lm_param_desc *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static lm_status add_range(lm_opt_params *p, size_t begin, size_t end, int decay) {
    if (begin == end) return LM_OK;
    lm_opt_range *last = p->n_ranges ? &p->ranges[p->n_ranges - 1] : NULL;
    if (last && last->decay == decay && last->end == begin) {
        last->end = end;
        return LM_OK;
    }
    p->ranges[p->n_ranges++] = (lm_opt_range){begin, end, decay};
    return LM_OK;
}

/* Contiguous tensors with the same weight-decay flag become one range, so
 * that the update runs over as few long loops (kernels) as the layout
 * allows: GPT-2 and BERT lay out the decayed tensors first, two ranges. */
static lm_status build_ranges(lm_opt_params *p) {
    const lm_param_set *set = &p->set;
    const lm_param_desc **sorted = NULL;
    if (set->n_descs > 0 && !set->descs)
        return lm_error_set(LM_ERR_INVALID, "optimizer '%s': the parameter set has %zu tensors but no descriptors",
                            p->optimizer, set->n_descs);
    /* Tensors and the gaps between them: at most 2 * n_descs + 1 ranges. */
    p->ranges = calloc(2 * set->n_descs + 1, sizeof *p->ranges);
    if (set->n_descs) sorted = malloc(set->n_descs * sizeof *sorted);
    if (!p->ranges || (set->n_descs && !sorted)) {
        free(sorted);
        return lm_error_set(LM_ERR_NOMEM, "optimizer '%s': out of memory for %zu parameter ranges", p->optimizer,
                            set->n_descs);
    }
    for (size_t i = 0; i < set->n_descs; i++) sorted[i] = &set->descs[i];
    if (set->n_descs) qsort(sorted, set->n_descs, sizeof *sorted, by_offset);
    size_t cursor = 0;
    lm_status status = LM_OK;
    for (size_t i = 0; i < set->n_descs && status == LM_OK; i++) {
        const lm_param_desc *d = sorted[i];
        const char *name = d->name ? d->name : "(unnamed)";
        if (d->offset > set->n_params || d->storage > set->n_params - d->offset) {
            status = lm_error_set(LM_ERR_INVALID,
                                  "optimizer '%s': tensor '%s' occupies elements [%zu, %zu) of a parameter buffer of "
                                  "%zu",
                                  p->optimizer, name, d->offset, d->offset + d->storage, set->n_params);
        } else if (d->offset < cursor) {
            status = lm_error_set(LM_ERR_INVALID, "optimizer '%s': tensor '%s' overlaps the tensor before it "
                                                  "(it starts at element %zu, which another tensor holds)",
                                  p->optimizer, name, d->offset);
        } else {
            /* A gap no tensor claims (alignment padding) is updated without decay. */
            add_range(p, cursor, d->offset, 0);
            add_range(p, d->offset, d->offset + d->storage, d->weight_decay != 0);
            cursor = d->offset + d->storage;
        }
    }
    if (status == LM_OK) add_range(p, cursor, set->n_params, 0);
    free(sorted);
    return status;
}

lm_status lm_opt_bind(lm_opt_params *p, const char *optimizer, const lm_param_set *set) {
    if (p->dev)
        return lm_error_set(LM_ERR_INVALID, "optimizer '%s': bind() was already called (an optimizer serves one "
                                            "model: create another for another model)",
                            optimizer);
    if (!set || !set->device || !set->device->ops)
        return lm_error_set(LM_ERR_INVALID, "optimizer '%s': bind() needs a parameter set with its device",
                            optimizer);
    if (set->struct_size < sizeof(lm_param_set))
        return lm_error_set(LM_ERR_INVALID,
                            "optimizer '%s': the parameter set is %u bytes but this plugin reads %zu: rebuild the "
                            "model plugin against the same lmcore headers",
                            optimizer, set->struct_size, sizeof(lm_param_set));
    lm_device *dev = set->device;
    const char *where = dev->description ? dev->description : "this device";
    if (dev->ops->struct_size < offsetof(lm_device_ops, keep_failure) + sizeof dev->ops->keep_failure ||
        !dev->ops->alloc || !dev->ops->free || !dev->ops->retain || !dev->ops->release)
        return lm_error_set(LM_ERR_UNSUPPORTED,
                            "optimizer '%s': the device '%s' lacks the operations an optimizer needs (alloc, free, "
                            "retain, release, parallel_for, keep_failure): it comes from an older lmcore",
                            optimizer, where);
    if (set->grad_dtype != LM_F32)
        return lm_error_set(LM_ERR_UNSUPPORTED, "optimizer '%s': the gradients are %s; it reads F32 gradients only",
                            optimizer, lm_dtype_name((lm_dtype)set->grad_dtype));
    if (set->params_copy && set->copy_dtype != LM_BF16)
        return lm_error_set(LM_ERR_UNSUPPORTED,
                            "optimizer '%s': the model keeps a %s copy of its parameters; the optimizer rewrites "
                            "BF16 copies only",
                            optimizer, lm_dtype_name((lm_dtype)set->copy_dtype));
    if (set->n_params > 0 && (!set->params || !set->grads))
        return lm_error_set(LM_ERR_INVALID, "optimizer '%s': the parameter set has %zu parameters but no %s buffer",
                            optimizer, set->n_params, set->params ? "gradient" : "parameter");
    if (set->n_params > (size_t)LONG_MAX / 2)
        return lm_error_set(LM_ERR_UNSUPPORTED, "optimizer '%s': %zu parameters are more than it can index",
                            optimizer, set->n_params);
    int on_gpu = 0;
    if (dev->type == LM_DEVICE_CPU) {
        if (!dev->ops->parallel_for)
            return lm_error_set(LM_ERR_UNSUPPORTED, "optimizer '%s': the CPU device '%s' has no parallel_for",
                                optimizer, where);
    } else if (dev->type == LM_DEVICE_CUDA) {
#if defined(LM_OPT_HAVE_CUDA)
        LM_TRY(lm_opt_cuda_bind(dev, optimizer));
        on_gpu = 1;
#else
        return lm_error_set(LM_ERR_UNSUPPORTED,
                            "optimizer '%s': the parameters are on %s, but this build of the plugin has no CUDA: "
                            "rebuild lmcore with the CUDA toolkit (-DLMCORE_CUDA=ON), or train on the CPU "
                            "(device=cpu)",
                            optimizer, where);
#endif
    } else {
        return lm_error_set(LM_ERR_UNSUPPORTED, "optimizer '%s': unknown device type %d ('%s'); it serves cpu and cuda",
                            optimizer, (int)dev->type, where);
    }
    lm_opt_params bound = {.optimizer = optimizer, .set = *set, .dev = dev, .on_gpu = on_gpu};
    lm_status status = build_ranges(&bound);
    if (status != LM_OK) {
        free(bound.ranges);
        return status;
    }
    /* The state will live on the device: hold it until that is freed, even
     * if the model is destroyed first. */
    dev->ops->retain(dev);
    *p = bound;
    return LM_OK;
}

void lm_opt_release(lm_opt_params *p) {
    free(p->ranges);
    p->ranges = NULL;
    p->n_ranges = 0;
    if (p->dev) p->dev->ops->release(p->dev);
    p->dev = NULL;
}

lm_status lm_opt_alloc_state(lm_opt_params *p, float **out, const char *what) {
    *out = NULL;
    if (p->set.n_params == 0) return LM_OK;
    void *memory = NULL;
    lm_status status = p->dev->ops->alloc(p->dev, &memory, p->set.n_params * sizeof(float), what);
    if (status != LM_OK) {
        lm_error_prefix("optimizer '%s': ", p->optimizer);
        return status;
    }
    *out = memory;
    return LM_OK;
}

void lm_opt_free_state(lm_opt_params *p, float *buffer) {
    if (buffer && p->dev) p->dev->ops->free(p->dev, buffer);
}

lm_status lm_opt_bind_with_state(lm_opt_params *p, const char *optimizer, const lm_param_set *set,
                                 const lm_opt_state_slot *slots, size_t n) {
    LM_TRY(lm_opt_bind(p, optimizer, set));
    lm_status status = LM_OK;
    size_t allocated = 0;
    while (allocated < n && (status = lm_opt_alloc_state(p, slots[allocated].buffer, slots[allocated].what)) == LM_OK)
        allocated++;
    if (status != LM_OK) {
        for (size_t i = 0; i < allocated; i++) {
            lm_opt_free_state(p, *slots[i].buffer);
            *slots[i].buffer = NULL;
        }
        lm_opt_release(p);
        *p = (lm_opt_params){0};
    }
    return status;
}

lm_status lm_opt_check_bound(const lm_opt_params *p, const char *optimizer, const char *entry) {
    if (!p->dev) return lm_error_set(LM_ERR_INVALID, "optimizer '%s': %s() before bind()", optimizer, entry);
    return LM_OK;
}

lm_status lm_opt_check_step(const lm_opt_params *p, const char *optimizer, const lm_step_state *state) {
    LM_TRY(lm_opt_check_bound(p, optimizer, "step"));
    if (!state) return lm_error_set(LM_ERR_INVALID, "optimizer '%s': step() needs the step state", optimizer);
    return LM_OK;
}

void lm_opt_describe_state(const lm_opt_params *p, const char *name, float *data, lm_optimizer_state *out) {
    memset(out, 0, sizeof *out);
    out->name = name;
    out->data = data;
    out->count = p->set.n_params;
    out->per_parameter = 1;
}

/* ---- the CPU loops ---- */

typedef struct range_job {
    lm_opt_range_fn fn;
    void *ctx;
    const lm_opt_range *range;
} range_job;

static void range_task(void *ctx, long begin, long end) {
    const range_job *job = ctx;
    const long base = (long)job->range->begin;
    job->fn(job->ctx, job->range, base + begin, base + end);
}

void lm_opt_cpu_for_ranges(lm_opt_params *p, lm_opt_range_fn fn, void *ctx) {
    for (size_t r = 0; r < p->n_ranges; r++) {
        range_job job = {fn, ctx, &p->ranges[r]};
        p->dev->ops->parallel_for(p->dev, (long)(p->ranges[r].end - p->ranges[r].begin), LM_OPT_GRAIN, range_task,
                                  &job);
    }
}

typedef struct copy_job {
    uint16_t *dst;
    const float *src;
} copy_job;

static void bf16_copy_task(void *ctx, long begin, long end) {
    const copy_job *job = ctx;
    for (long i = begin; i < end; i++) {
        uint32_t bits;
        memcpy(&bits, &job->src[i], sizeof bits);
        job->dst[i] = lm_bf16_rne(bits);
    }
}

void lm_opt_refresh_copy(lm_opt_params *p, const lm_step_state *state) {
    if (!p->set.params_copy || p->set.n_params == 0) return;
#if defined(LM_OPT_HAVE_CUDA)
    if (p->on_gpu) {
        lm_opt_cuda_bf16_copy(p->dev, p->optimizer, p->set.params_copy, p->set.params, p->set.n_params, state);
        return;
    }
#endif
    if (state->bad_step != 0) return; /* the params did not change */
    copy_job job = {p->set.params_copy, p->set.params};
    p->dev->ops->parallel_for(p->dev, (long)p->set.n_params, LM_OPT_GRAIN, bf16_copy_task, &job);
}

/* ---- settings ---- */

lm_status lm_opt_number(lm_config *cfg, const char *optimizer, const char *key, double def, double lo, int lo_open,
                        double hi, int hi_closed, double *out) {
    const double v = lm_config_number(cfg, key, def);
    const int above = lo_open ? v > lo : v >= lo;
    /* An unbounded range still wants a finite number. */
    const int below = isinf(hi) ? isfinite(v) : hi_closed ? v <= hi : v < hi;
    *out = v;
    if (above && below) return LM_OK; /* NaN fails both */
    if (isinf(hi))
        return lm_error_set(LM_ERR_INVALID, "optimizer '%s': config key '%s' must be a finite number %s %g, got %g",
                            optimizer, key, lo_open ? ">" : ">=", lo, v);
    return lm_error_set(LM_ERR_INVALID, "optimizer '%s': config key '%s' must be in %c%g, %g%c, got %g", optimizer,
                        key, lo_open ? '(' : '[', lo, hi, hi_closed ? ']' : ')', v);
}

static lm_status member_key(lm_buffer *out, int first, const char *key) {
    LM_TRY(first ? LM_OK : lm_buffer_append(out, ", ", 2));
    lm_json_writer w;
    lm_json_writer_init(&w, out, 0);
    lm_json_write_cstr(&w, key);
    LM_TRY(lm_json_writer_finish(&w));
    return lm_buffer_append(out, ": ", 2);
}

static lm_status append_number(lm_buffer *out, double value) {
    lm_json_writer w;
    lm_json_writer_init(&w, out, 0);
    lm_json_write_number(&w, value);
    return lm_json_writer_finish(&w);
}

lm_status lm_opt_json_number(lm_buffer *out, int first, const char *key, double value) {
    LM_TRY(member_key(out, first, key));
    return append_number(out, value);
}

lm_status lm_opt_json_pair(lm_buffer *out, int first, const char *key, double a, double b) {
    LM_TRY(member_key(out, first, key));
    LM_TRY(lm_buffer_append(out, "[", 1));
    LM_TRY(append_number(out, a));
    LM_TRY(lm_buffer_append(out, ", ", 2));
    LM_TRY(append_number(out, b));
    return lm_buffer_append(out, "]", 1);
}

lm_status lm_opt_json_bool(lm_buffer *out, int first, const char *key, int value) {
    LM_TRY(member_key(out, first, key));
    return value ? lm_buffer_append(out, "true", 4) : lm_buffer_append(out, "false", 5);
}
