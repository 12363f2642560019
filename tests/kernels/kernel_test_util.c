/* Helpers shared by the kernel test suites (see kernel_test_util.h). */
#include "kernel_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "lmcore/lmcore.h"
#include "plugin_load.h"

float *tk_floats(size_t n) {
    float *x = calloc(n > 0 ? n : 1, sizeof *x);
    ck_assert_msg(x != NULL, "out of memory allocating %zu floats", n);
    return x;
}

int32_t *tk_ints(size_t n) {
    int32_t *x = calloc(n > 0 ? n : 1, sizeof *x);
    ck_assert_msg(x != NULL, "out of memory allocating %zu ints", n);
    return x;
}

float *tk_copy(const float *src, size_t n) {
    float *x = tk_floats(n);
    memcpy(x, src, n * sizeof *x);
    return x;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void tk_fill(float *x, size_t n, float lo, float hi, uint64_t seed) {
    uint64_t state = seed;
    for (size_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(&state) >> 11) * (1.0 / 9007199254740992.0);
        x[i] = (float)(lo + (hi - lo) * u);
    }
}

double tk_assert_close(const char *what, const float *got, const float *want, size_t n, double atol, double rtol) {
    double worst_diff = 0.0, worst_excess = -INFINITY;
    size_t worst_index = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        double excess = isnan(diff) ? INFINITY : diff - (atol + rtol * fabs((double)want[i]));
        if (excess > worst_excess) {
            worst_excess = excess;
            worst_index = i;
        }
        if (diff > worst_diff || isnan(diff)) worst_diff = diff;
    }
    ck_assert_msg(n == 0 || worst_excess <= 0.0,
                  "%s: element %zu is %.9g, expected %.9g (|diff| %.3g > %.3g + %.3g*|expected|)", what, worst_index,
                  (double)got[worst_index], (double)want[worst_index],
                  fabs((double)got[worst_index] - (double)want[worst_index]), atol, rtol);
    if (getenv("LM_TEST_VERBOSE")) fprintf(stderr, "  %-48s worst |diff| %.3g\n", what, worst_diff);
    return worst_diff;
}

int64_t tk_max_ulp(const float *got, const float *want, size_t n) {
    int64_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t a, b;
        memcpy(&a, &got[i], sizeof a);
        memcpy(&b, &want[i], sizeof b);
        /* Map to a monotonic integer line so that -0 and +0 are neighbours. */
        int64_t la = a < 0 ? (int64_t)INT32_MIN - a : a, lb = b < 0 ? (int64_t)INT32_MIN - b : b;
        int64_t d = la > lb ? la - lb : lb - la;
        if (d > worst) worst = d;
    }
    return worst;
}

static double weighted_sum(const float *out, const float *weights, size_t n_out) {
    double sum = 0.0;
    for (size_t i = 0; i < n_out; i++) sum += (double)weights[i] * (double)out[i];
    return sum;
}

double tk_check_gradient(const char *what, tk_forward_fn forward, void *ctx, float *x, size_t n, const float *out,
                         const float *weights, size_t n_out, const float *analytic, double h, double atol,
                         double rtol) {
    double worst = 0.0;
    for (size_t j = 0; j < n; j++) {
        float saved = x[j];
        float up = (float)((double)saved + h), down = (float)((double)saved - h);
        x[j] = up;
        forward(ctx);
        double loss_up = weighted_sum(out, weights, n_out);
        x[j] = down;
        forward(ctx);
        double loss_down = weighted_sum(out, weights, n_out);
        x[j] = saved;
        double fd = (loss_up - loss_down) / ((double)up - (double)down);
        double a = (double)analytic[j];
        double err = fabs(a - fd);
        double bound = atol + rtol * fmax(fabs(a), fabs(fd));
        ck_assert_msg(err <= bound, "%s: d/dx[%zu] analytic %.7g vs finite difference %.7g (|diff| %.3g > %.3g)", what,
                      j, a, fd, err, bound);
        if (err > worst) worst = err;
    }
    forward(ctx); /* leave the outputs of the unperturbed inputs behind */
    if (getenv("LM_TEST_VERBOSE")) fprintf(stderr, "  %-48s worst |analytic - fd| %.3g\n", what, worst);
    return worst;
}

float *tk_delta(const float *after, const float *before, size_t n) {
    float *d = tk_floats(n);
    for (size_t i = 0; i < n; i++) d[i] = after[i] - before[i];
    return d;
}

const char *tk_fixture_path(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/tests/kernels/fixtures/%s", LM_TEST_SOURCE_DIR, name);
    return path;
}

/* ---- AdamW through the adamw optimizer plugin ---- */

static const lm_optimizer_vtable *adamw_vtable(void) {
    static const lm_optimizer_vtable *vt = NULL;
    if (vt) return vt;
    const lm_plugin_descriptor *d = lm_test_plugin("optimizer_adamw", LM_KIND_OPTIMIZER);
    ck_assert_str_eq(d->name, "adamw");
    vt = d->vtable;
    return vt;
}

void tk_adamw(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1, float beta2,
              float eps, float weight_decay, float grad_scale, int64_t t, int threads) {
    const lm_optimizer_vtable *vt = adamw_vtable();
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, threads), LM_OK);
    lm_device *dev = &be->device;
    const size_t bytes = n * sizeof(float);
    float *d_param = NULL, *d_grad = NULL;
    lm_step_state *state = NULL;
    ck_assert_int_eq(dev->ops->alloc(dev, (void **)&d_param, bytes, "test params"), LM_OK);
    ck_assert_int_eq(dev->ops->alloc(dev, (void **)&d_grad, bytes, "test grads"), LM_OK);
    ck_assert_int_eq(dev->ops->alloc(dev, (void **)&state, sizeof *state, "test step state"), LM_OK);
    ck_assert_int_eq(dev->ops->upload(dev, d_param, param, bytes), LM_OK);
    ck_assert_int_eq(dev->ops->upload(dev, d_grad, grad, bytes), LM_OK);

    /* One decayed tensor of n elements. */
    const lm_param_desc desc = {.name = "w", .ndim = 1, .weight_decay = 1, .shape = {(int64_t)n}, .offset = 0,
                                .storage = n};
    lm_param_set set;
    memset(&set, 0, sizeof set);
    set.struct_size = sizeof set;
    set.grad_dtype = LM_F32;
    set.device = dev;
    set.descs = &desc;
    set.n_descs = 1;
    set.n_params = n;
    set.params = d_param;
    set.grads = d_grad;
    set.copy_dtype = LM_F32;

    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, "optimizer 'adamw'"), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "beta1", (double)beta1), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "beta2", (double)beta2), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "eps", (double)eps), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "weight_decay", (double)weight_decay), LM_OK);
    void *opt = NULL;
    ck_assert_msg(vt->create(&opt, cfg) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(lm_config_validate(cfg) == LM_OK, "%s", lm_error_message());
    lm_config_destroy(cfg);
    ck_assert_msg(vt->bind(opt, &set) == LM_OK, "%s", lm_error_message());

    /* The moments in, as lm_cpu_adamw took them. */
    size_t count = 0;
    ck_assert_int_eq(vt->state_count(opt, &count), LM_OK);
    ck_assert_uint_eq(count, 2);
    lm_optimizer_state moments[2];
    float *host[2] = {m, v};
    const char *names[2] = {"exp_avg", "exp_avg_sq"};
    for (size_t i = 0; i < 2; i++) {
        ck_assert_int_eq(vt->state_at(opt, i, &moments[i]), LM_OK);
        ck_assert_str_eq(moments[i].name, names[i]);
        ck_assert_uint_eq(moments[i].count, n);
        ck_assert_int_eq(moments[i].per_parameter, 1);
        ck_assert_int_eq(dev->ops->upload(dev, moments[i].data, host[i], bytes), LM_OK);
    }
    /* The step state as lmcore 1.x's arguments: lr, the gradient scale, t = step + 1. */
    lm_step_state s;
    memset(&s, 0, sizeof s);
    s.lr = (double)lr;
    s.clip_scale = grad_scale;
    s.step = t - 1;
    ck_assert_int_eq(dev->ops->upload(dev, state, &s, sizeof s), LM_OK);
    ck_assert_msg(vt->step(opt, state) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(dev->ops->sync(dev) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(dev->ops->download(dev, param, d_param, bytes), LM_OK);
    for (size_t i = 0; i < 2; i++) ck_assert_int_eq(dev->ops->download(dev, host[i], moments[i].data, bytes), LM_OK);

    vt->destroy(opt);
    dev->ops->free(dev, state);
    dev->ops->free(dev, d_grad);
    dev->ops->free(dev, d_param);
    lm_backend_release(be);
}
