/* The device side of a training step on the CUDA backend (kernels/cuda/
 * step.cu, reduce.cu) against its CPU twins (kernels/cpu/step.c, reduce.c),
 * the backend as the public lm_device, and the device's promise about
 * waiting (lmcore/device.h): uploads do not wait, a download waits once, and
 * a whole training step without logging never waits.
 *
 * Tolerances.  The scalar updates are one GPU thread each with the CPU's
 * operations in the CPU's order, so every field must match bit for bit
 * given the same inputs.  Two inputs can differ: a parallel sum (loss_mean's
 * Σ losses, step_clip's Σ g²) adds in another order than the CPU, both in
 * double, so the float results (loss, grad_norm, clip_scale) may be 1 ulp
 * apart; and the cosine and polynomial schedules use CUDA's cos/pow (2 ulp)
 * and an FMA, so their learning rate may differ by 2e-15 of base_lr.  Where
 * the inputs are dyadic (k / 2^m, small k) every sum is exact in any order,
 * and the test demands bits.
 *
 * Part of the test_cuda_kernels executable (label gpu; exit 77 without a
 * usable GPU unless LMCORE_REQUIRE_GPU=1). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "gpu_test_util.h"
#include "kernels.h"
#include "lmcore/device.h"
#include "lmcore/status.h"
#include "lmcore/step.h"

/* ---- comparing step states ----------------------------------------------------------------- */

/* Units in the last place between two floats (0 when both are NaN). */
static uint64_t ulps_f(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : UINT64_MAX;
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    /* a monotonic integer line on which -0 and +0 are neighbours */
    const int64_t la = ia < 0 ? (int64_t)INT32_MIN - ia : ia, lb = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return la > lb ? (uint64_t)(la - lb) : (uint64_t)(lb - la);
}

static int same_double(double a, double b) {
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

enum field_kind { FIELD_U64, FIELD_I64, FIELD_F64, FIELD_F32, FIELD_I32, FIELD_BYTES };
/* Which tolerance of compare_state a field gets (0: bits). */
enum field_tolerance { EXACT = 0, TOL_LR = 1, TOL_NORM = 2, TOL_LOSS = 3 };

typedef struct state_field {
    const char *name;
    size_t offset, size;
    enum field_kind kind;
    enum field_tolerance tolerance;
} state_field;

#define STATE_FIELD(member, kind, tolerance)                                                                    \
    { #member, offsetof(lm_step_state, member), sizeof(((lm_step_state *)0)->member), kind, tolerance }
#define LOSS_SUM_FIELD(i)                                                                                        \
    { "loss_sums[" #i "]", offsetof(lm_step_state, loss_sums) + (i) * sizeof(double), sizeof(double), FIELD_F64, \
      EXACT }

static const state_field state_fields[] = {
    STATE_FIELD(seed, FIELD_U64, EXACT),
    STATE_FIELD(micro_batch, FIELD_U64, EXACT),
    STATE_FIELD(step, FIELD_I64, EXACT),
    STATE_FIELD(bad_step, FIELD_I64, EXACT),
    STATE_FIELD(schedule, FIELD_BYTES, EXACT),
    STATE_FIELD(max_grad_norm, FIELD_F64, EXACT),
    STATE_FIELD(lr, FIELD_F64, TOL_LR),
    STATE_FIELD(loss_sum, FIELD_F64, EXACT),
    STATE_FIELD(step_loss, FIELD_F64, EXACT),
    LOSS_SUM_FIELD(0),
    LOSS_SUM_FIELD(1),
    LOSS_SUM_FIELD(2),
    LOSS_SUM_FIELD(3),
    STATE_FIELD(loss, FIELD_F32, TOL_LOSS),
    STATE_FIELD(grad_norm, FIELD_F32, TOL_NORM),
    STATE_FIELD(clip_scale, FIELD_F32, TOL_NORM),
    STATE_FIELD(bad_value, FIELD_F32, EXACT),
    STATE_FIELD(bad_what, FIELD_I32, EXACT),
    STATE_FIELD(scored, FIELD_I32, EXACT),
    STATE_FIELD(reserved, FIELD_BYTES, EXACT),
};

/* Tolerances of compare_state: ulps for the float results of parallel sums
 * (loss, grad_norm and clip_scale), and an absolute one for lr. */
typedef struct state_tolerance {
    uint64_t loss_ulps, norm_ulps;
    double lr_abs;
} state_tolerance;

static const state_tolerance BITS = {0, 0, 0.0};

/* Every field of got (GPU) against want (CPU); prints the fields that
 * differ, then fails naming the first.  NaN equals NaN (the payloads of the
 * two processors may differ). */
static void compare_state(const char *what, const lm_step_state *got, const lm_step_state *want,
                          state_tolerance tol) {
    const size_t count = sizeof state_fields / sizeof state_fields[0];
    const char *first_bad = NULL;
    size_t covered = 0;
    for (size_t i = 0; i < count; i++) {
        const state_field *f = &state_fields[i];
        const char *g = (const char *)got + f->offset, *w = (const char *)want + f->offset;
        covered += f->size;
        int ok = 1;
        char detail[160] = "";
        switch (f->kind) {
        case FIELD_F64: {
            double a, b;
            memcpy(&a, g, sizeof a);
            memcpy(&b, w, sizeof b);
            const double allowed = f->tolerance == TOL_LR ? tol.lr_abs : 0.0;
            ok = same_double(a, b) || (allowed > 0.0 && fabs(a - b) <= allowed);
            snprintf(detail, sizeof detail, "gpu %.17g, cpu %.17g", a, b);
            break;
        }
        case FIELD_F32: {
            float a, b;
            memcpy(&a, g, sizeof a);
            memcpy(&b, w, sizeof b);
            const uint64_t allowed =
                f->tolerance == TOL_NORM ? tol.norm_ulps : f->tolerance == TOL_LOSS ? tol.loss_ulps : 0;
            const uint64_t d = ulps_f(a, b);
            ok = d <= allowed;
            snprintf(detail, sizeof detail, "gpu %.9g, cpu %.9g (%llu ulp, %llu allowed)", (double)a, (double)b,
                     (unsigned long long)d, (unsigned long long)allowed);
            break;
        }
        case FIELD_U64:
        case FIELD_I64: {
            int64_t a, b;
            memcpy(&a, g, sizeof a);
            memcpy(&b, w, sizeof b);
            ok = a == b;
            snprintf(detail, sizeof detail, "gpu %lld, cpu %lld", (long long)a, (long long)b);
            break;
        }
        case FIELD_I32: {
            int32_t a, b;
            memcpy(&a, g, sizeof a);
            memcpy(&b, w, sizeof b);
            ok = a == b;
            snprintf(detail, sizeof detail, "gpu %d, cpu %d", (int)a, (int)b);
            break;
        }
        case FIELD_BYTES:
            ok = memcmp(g, w, f->size) == 0;
            snprintf(detail, sizeof detail, "bytes differ");
            break;
        }
        if (!ok) {
            printf("    %s: %s differs: %s\n", what, f->name, detail);
            if (!first_bad) first_bad = f->name;
        }
    }
    printf("  %-52s %s\n", what, first_bad ? "FAIL" : "ok");
    fflush(stdout);
    /* a field added to step.h and not to the table would go unchecked */
    ck_assert_msg(covered == sizeof(lm_step_state),
                  "the field table covers %zu of the %zu bytes of lm_step_state: update it", covered,
                  sizeof(lm_step_state));
    ck_assert_msg(first_bad == NULL, "%s: %s differs between the GPU and the CPU", what, first_bad);
}

/* A step state as a run has one in the middle of training. */
static lm_step_state typical_state(void) {
    lm_step_state s;
    memset(&s, 0, sizeof s);
    s.seed = 0x5EEDF00Dull;
    s.micro_batch = 123;
    s.step = 41;
    s.schedule.kind = LM_SCHEDULE_LINEAR;
    s.schedule.base_lr = 5e-4;
    s.schedule.warmup_steps = 10;
    s.schedule.total_steps = 1000;
    s.max_grad_norm = 1.0;
    s.lr = 4.2e-4;
    s.loss_sum = 0.75;
    s.step_loss = 3.1;
    s.loss_sums[0] = 1.0 / 3.0;
    s.loss_sums[1] = 2e10;
    s.loss_sums[2] = -0.5;
    s.loss_sums[3] = 7.0;
    s.loss = 2.0f;
    s.grad_norm = 0.9f;
    s.clip_scale = 1.0f;
    s.scored = 2;
    return s;
}

/* Values k / 2^shift with |k| <= range: their sums and sums of squares are
 * exact in double in any order (for the sizes used here), so the GPU's
 * parallel sums equal the CPU's bit for bit. */
static float *dyadic(size_t n, int range, int shift, int nonnegative) {
    int32_t *k = gt_random_ints(n > 0 ? n : 1, nonnegative ? 0 : -range, range + 1);
    float *x = gt_host(n);
    for (size_t i = 0; i < n; i++) x[i] = ldexpf((float)k[i], -shift);
    free(k);
    return x;
}

static lm_device *device(void) {
    return &gt_be->device;
}

static lm_device_counters counters_now(void) {
    lm_device_counters c;
    device()->ops->counters(device(), &c);
    return c;
}

/* ---- the backend as an lm_device ------------------------------------------------------------ */

START_TEST(test_device_is_filled) {
    lm_device *dev = device();
    printf("device: %s\n", dev->description);
    ck_assert_uint_eq(dev->struct_size, sizeof *dev);
    ck_assert_int_eq(dev->type, LM_DEVICE_CUDA);
    ck_assert_int_eq(dev->index, 0);
    ck_assert_ptr_nonnull(dev->stream);
    ck_assert_ptr_nonnull(dev->ops);
    ck_assert_str_eq(dev->description, gt_be->ops->describe(gt_be));
    ck_assert_ptr_null(dev->ops->parallel_for); /* a GPU device queues kernels instead */
    ck_assert_ptr_eq(lm_backend_of_device(dev), gt_be);
    ck_assert_ptr_nonnull(gt_be->ops->counters);
    ck_assert_ptr_nonnull(gt_be->ops->keep_failure);
    ck_assert_ptr_nonnull(gt_be->ops->loss_mean);
    ck_assert_ptr_nonnull(gt_be->ops->step_micro_batch_end);
    ck_assert_ptr_nonnull(gt_be->ops->step_clip);
    ck_assert_ptr_nonnull(gt_be->ops->step_schedule);
    ck_assert_ptr_nonnull(gt_be->ops->step_finish);
}
END_TEST

/* keep_failure (a plugin's own kernel failed to launch) is reported once
 * by the next check or sync, naming what failed; the first one wins.  A
 * dropout that must draw without a key is kept the same way, naming the op. */
START_TEST(test_keep_failure) {
    lm_device *dev = device();
    gt_sync(gt_be, "before keep_failure");
    dev->ops->keep_failure(dev, "adamw_update", "too many resources requested for launch");
    lm_status status = dev->ops->check(dev);
    printf("kept by a plugin: %s\n", lm_error_message());
    ck_assert_int_eq(status, LM_ERR_DEVICE);
    ck_assert_msg(strstr(lm_error_message(), "adamw_update") && strstr(lm_error_message(), "too many resources"),
                  "the message does not say what failed and why: %s", lm_error_message());
    ck_assert_int_eq(dev->ops->check(dev), LM_OK); /* reported once */

    gt_be->ops->keep_failure(gt_be, "first_kernel", "reason one");
    gt_be->ops->keep_failure(gt_be, "second_kernel", "reason two");
    status = gt_be->ops->sync(gt_be);
    ck_assert_int_eq(status, LM_ERR_DEVICE);
    ck_assert_msg(strstr(lm_error_message(), "first_kernel") && !strstr(lm_error_message(), "second_kernel"),
                  "the first failure must win: %s", lm_error_message());
    gt_sync(gt_be, "a reported failure");

    float *buf = gt_dev_nan(gt_be, 256);
    gt_be->ops->dropout_forward(gt_be, buf, buf, 64, 0.1f, NULL, 0);
    status = gt_be->ops->sync(gt_be);
    printf("dropout without a key: %s\n", lm_error_message());
    ck_assert_int_eq(status, LM_ERR_DEVICE);
    ck_assert_msg(strstr(lm_error_message(), "dropout_forward") != NULL, "%s", lm_error_message());
    gt_be->ops->attention_forward(gt_be, buf, buf + 64, buf + 128, buf, buf, buf, 8, NULL, 1, 1, 4, 8, 1, 0.1f, NULL,
                                  0);
    status = gt_be->ops->sync(gt_be);
    ck_assert_int_eq(status, LM_ERR_DEVICE);
    ck_assert_msg(strstr(lm_error_message(), "attention_forward") != NULL, "%s", lm_error_message());
    /* p = 0 needs no key */
    gt_be->ops->dropout_forward(gt_be, buf + 64, buf, 64, 0.0f, NULL, 0);
    gt_be->ops->dropout_backward(gt_be, buf + 64, buf, 64, 0.0f, NULL, 0);
    gt_sync(gt_be, "dropout p=0 without a key");
    gt_dev_free(gt_be, buf);
}
END_TEST

/* ---- loss_mean ----------------------------------------------------------------------------------- */

/* loss_mean into a step state's loss, as a model writes it: that field
 * changes to lm_cpu_loss_mean's value and nothing else does. */
static void check_loss_mean(size_t n, int64_t count, int exact) {
    printf("loss_mean n=%zu count=%lld inputs=%s\n", n, (long long)count, exact ? "dyadic" : "random");
    float *losses = exact ? dyadic(n, 2560, 8, 1) : gt_random(n, 0.0f, 12.0f);
    lm_step_state want = typical_state(), got;
    lm_cpu_loss_mean(&want.loss, losses, n, &count);
    const lm_step_state start = typical_state();
    lm_step_state *d_state = gt_dev_step_state(gt_be, &start);
    float *d_losses = gt_dev_upload(gt_be, losses, n > 0 ? n : 1);
    int64_t *d_count = gt_dev_count(gt_be, count); /* read on the device, as a model's batch count */
    gt_be->ops->loss_mean(gt_be, &d_state->loss, d_losses, n, d_count);
    gt_sync(gt_be, "loss_mean");
    gt_dev_step_state_download(gt_be, &got, d_state);
    const state_tolerance tol = {exact ? 0 : 1, 0, 0.0};
    char what[96];
    snprintf(what, sizeof what, "loss_mean n=%zu count=%lld (%s)", n, (long long)count, exact ? "bits" : "1 ulp");
    compare_state(what, &got, &want, tol);
    /* deterministic: the same bits again */
    const float first = got.loss;
    gt_be->ops->loss_mean(gt_be, &d_state->loss, d_losses, n, d_count);
    gt_dev_step_state_download(gt_be, &got, d_state);
    ck_assert_msg(memcmp(&first, &got.loss, sizeof first) == 0, "loss_mean not deterministic: %.9g then %.9g",
                  (double)first, (double)got.loss);
    gt_dev_free(gt_be, d_count);
    gt_dev_free(gt_be, d_state);
    gt_dev_free(gt_be, d_losses);
    free(losses);
}

START_TEST(test_loss_mean) {
    check_loss_mean(1, 1, 0);
    check_loss_mean(37, 29, 0); /* count < n: rows with nothing to predict weigh nothing */
    check_loss_mean(1000003, 999000, 0);
    check_loss_mean(0, 1, 0);
    check_loss_mean(4097, 4097, 1);
    check_loss_mean(300000, 123, 1);
}
END_TEST

/* ---- step_micro_batch_end ---------------------------------------------------------------------- */

typedef struct micro_batch_case {
    float loss;
    double num, den;
    int scored;
    int64_t bad_step_before;
} micro_batch_case;

START_TEST(test_step_micro_batch_end) {
    const micro_batch_case cases[] = {
        {2.5f, 37.0, 128.0, 1, 0},
        {1.234567f, 1.0, 3.0, 1, 0},      /* a division that rounds */
        {2.5f, 37.0, 128.0, 0, 0},        /* nothing to predict: nothing changes */
        {NAN, 5.0, 7.0, 1, 0},            /* flagged: bad_step = step + 1, LM_BAD_LOSS */
        {INFINITY, 5.0, 7.0, 1, 12},      /* an earlier flag stays */
        {-INFINITY, 1.0, 1.0, 1, 0},
        {3.0e38f, 1e300, 1e-10, 1, 0},    /* the sum overflows to inf; not flagged (only the loss is checked) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const micro_batch_case *c = &cases[i];
        lm_step_state start = typical_state(), want, got;
        start.loss = c->loss;
        start.bad_step = c->bad_step_before;
        if (c->bad_step_before) {
            start.bad_what = LM_BAD_GRAD_NORM;
            start.bad_value = 42.0f;
        }
        want = start;
        lm_cpu_step_micro_batch_end(&want, c->num, c->den, c->scored);
        lm_step_state *d_state = gt_dev_step_state(gt_be, &start);
        gt_be->ops->step_micro_batch_end(gt_be, d_state, c->num, c->den, c->scored);
        gt_sync(gt_be, "step_micro_batch_end");
        gt_dev_step_state_download(gt_be, &got, d_state);
        char what[96];
        snprintf(what, sizeof what, "step_micro_batch_end loss=%g num=%g den=%g scored=%d", (double)c->loss, c->num,
                 c->den, c->scored);
        compare_state(what, &got, &want, BITS);
        gt_dev_free(gt_be, d_state);
    }

    /* Eight micro-batches in a row on one state, through the public device,
     * without a read in between: the sum's order of operations is the CPU's. */
    lm_step_state start = typical_state(), want = typical_state(), got;
    start.loss_sum = want.loss_sum = 0.0;
    start.scored = want.scored = 0;
    lm_step_state *d_state = gt_dev_step_state(gt_be, &start);
    float *losses = gt_random(8, 0.5f, 11.0f);
    int32_t *nums = gt_random_ints(8, 1, 4096);
    for (int mb = 0; mb < 8; mb++) {
        want.loss = losses[mb];
        lm_cpu_step_micro_batch_end(&want, (double)nums[mb], 10007.0, 1);
        /* the model's forward writes the loss: here an upload of that field */
        ck_assert_int_eq(gt_be->ops->upload(gt_be, &d_state->loss, &losses[mb], sizeof(float)), LM_OK);
        ck_assert_msg(device()->ops->step_micro_batch_end(device(), d_state, (double)nums[mb], 10007.0, 1) == LM_OK,
                      "%s", lm_error_message());
    }
    gt_dev_step_state_download(gt_be, &got, d_state);
    compare_state("step_micro_batch_end x8 (accumulated)", &got, &want, BITS);
    gt_dev_free(gt_be, d_state);
    free(losses);
    free(nums);
}
END_TEST

/* ---- step_clip ----------------------------------------------------------------------------------- */

static void check_clip(const char *label, const float *grads, size_t n, const lm_step_state *start,
                       state_tolerance tol) {
    lm_step_state want = *start, got;
    lm_cpu_step_clip(&want, grads, n);
    lm_step_state *d_state = gt_dev_step_state(gt_be, start);
    float *d_grads = gt_dev_upload(gt_be, grads, n > 0 ? n : 1);
    gt_be->ops->step_clip(gt_be, d_state, d_grads, n);
    gt_sync(gt_be, "step_clip");
    gt_dev_step_state_download(gt_be, &got, d_state);
    printf("  %s: grad_norm gpu %.9g cpu %.9g, clip_scale gpu %.9g cpu %.9g\n", label, (double)got.grad_norm,
           (double)want.grad_norm, (double)got.clip_scale, (double)want.clip_scale);
    compare_state(label, &got, &want, tol);
    /* the same through the public device, again: deterministic bits */
    const lm_step_state first = got;
    ck_assert_int_eq(gt_be->ops->upload(gt_be, d_state, start, sizeof *start), LM_OK);
    ck_assert_msg(device()->ops->step_clip(device(), d_state, d_grads, LM_F32, n) == LM_OK, "%s", lm_error_message());
    gt_dev_step_state_download(gt_be, &got, d_state);
    ck_assert_msg(memcmp(&first, &got, sizeof got) == 0, "%s: step_clip not deterministic", label);
    gt_dev_free(gt_be, d_state);
    gt_dev_free(gt_be, d_grads);
}

START_TEST(test_step_clip) {
    const size_t n = 1000003;
    lm_step_state s = typical_state();
    /* |g| <= 1, about 577 for the norm: clipped at 1, not at 1e9, never at 0 */
    float *exact = dyadic(n, 64, 6, 0);
    const double max_norms[] = {1.0, 1e9, 0.0, 577.0};
    for (size_t i = 0; i < sizeof max_norms / sizeof max_norms[0]; i++) {
        s.max_grad_norm = max_norms[i];
        char what[96];
        snprintf(what, sizeof what, "step_clip dyadic n=%zu max=%g (bits)", n, max_norms[i]);
        check_clip(what, exact, n, &s, BITS);
    }
    /* random gradients: the sums differ in double rounding only */
    const size_t big = 3000017;
    float *random = gt_random(big, -0.01f, 0.01f);
    s.max_grad_norm = 1.0;
    const state_tolerance one_ulp = {0, 1, 0.0};
    check_clip("step_clip random n=3000017 max=1 (1 ulp)", random, big, &s, one_ulp);
    s.max_grad_norm = 100.0;
    check_clip("step_clip random n=3000017 max=100 (1 ulp)", random, big, &s, one_ulp);
    /* no gradients: norm 0, nothing clipped */
    s.max_grad_norm = 1.0;
    check_clip("step_clip n=0", exact, 0, &s, BITS);
    /* not finite: flagged once, with the norm seen; clip_scale follows the CPU (NaN: 1, inf: 0) */
    exact[n / 2] = NAN;
    check_clip("step_clip with a NaN gradient", exact, n, &s, BITS);
    exact[n / 2] = INFINITY;
    check_clip("step_clip with an inf gradient", exact, n, &s, BITS);
    lm_step_state flagged = s;
    flagged.bad_step = 5;
    flagged.bad_what = LM_BAD_LOSS;
    flagged.bad_value = NAN;
    check_clip("step_clip inf after an earlier flag", exact, n, &flagged, BITS);
    free(exact);
    free(random);
}
END_TEST

/* ---- step_schedule ---------------------------------------------------------------------------- */

typedef struct schedule_case {
    const char *name;
    lm_schedule schedule;
    int exact; /* only IEEE operations without a product-add: bits */
} schedule_case;

static lm_schedule make_schedule(int kind, int64_t warmup, int64_t total, double num_cycles, double power,
                                 double timescale) {
    lm_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.base_lr = 5e-4;
    s.warmup_steps = warmup;
    s.total_steps = total;
    s.num_cycles = num_cycles;
    s.power = power;
    s.lr_end = 1e-7;
    s.timescale = timescale;
    return s;
}

START_TEST(test_step_schedule) {
    const schedule_case cases[] = {
        {"linear", make_schedule(LM_SCHEDULE_LINEAR, 10, 100, 0, 0, 0), 1},
        {"linear, no warmup", make_schedule(LM_SCHEDULE_LINEAR, 0, 100, 0, 0, 0), 1},
        {"cosine", make_schedule(LM_SCHEDULE_COSINE, 10, 100, 0.5, 0, 0), 0},
        {"cosine_with_restarts", make_schedule(LM_SCHEDULE_COSINE_WITH_RESTARTS, 10, 100, 2.0, 0, 0), 0},
        {"polynomial power 1", make_schedule(LM_SCHEDULE_POLYNOMIAL, 10, 100, 0, 1.0, 0), 0},
        {"polynomial power 2", make_schedule(LM_SCHEDULE_POLYNOMIAL, 10, 100, 0, 2.0, 0), 0},
        {"constant", make_schedule(LM_SCHEDULE_CONSTANT, 10, 100, 0, 0, 0), 1},
        {"constant_with_warmup", make_schedule(LM_SCHEDULE_CONSTANT_WITH_WARMUP, 10, 100, 0, 0, 0), 1},
        {"inverse_sqrt", make_schedule(LM_SCHEDULE_INVERSE_SQRT, 10, 100, 0, 0, 10.0), 1},
        {"inverse_sqrt, default timescale", make_schedule(LM_SCHEDULE_INVERSE_SQRT, 0, 100, 0, 0, 0.0), 1},
        {"host (lr left alone)", make_schedule(LM_SCHEDULE_HOST, 10, 100, 0, 0, 0), 1},
    };
    const int64_t steps[] = {0, 1, 5, 9, 10, 11, 37, 50, 99, 100, 101, 250};
    const size_t n_cases = sizeof cases / sizeof cases[0], n_steps = sizeof steps / sizeof steps[0];
    const size_t count = n_cases * n_steps;
    lm_step_state *start = calloc(count, sizeof *start), *got = calloc(count, sizeof *got);
    ck_assert(start && got);
    for (size_t c = 0; c < n_cases; c++) {
        for (size_t k = 0; k < n_steps; k++) {
            lm_step_state *s = &start[c * n_steps + k];
            *s = typical_state();
            s->schedule = cases[c].schedule;
            s->step = steps[k];
            s->lr = 0.123; /* what the host wrote (kept by HOST) */
        }
    }
    /* one array of states: one upload, one step_schedule per state, one download */
    lm_step_state *d_states = NULL;
    ck_assert_int_eq(gt_be->ops->alloc(gt_be, (void **)&d_states, count * sizeof *d_states, "step states"), LM_OK);
    ck_assert_int_eq(gt_be->ops->upload(gt_be, d_states, start, count * sizeof *start), LM_OK);
    for (size_t i = 0; i < count; i++) gt_be->ops->step_schedule(gt_be, &d_states[i]);
    ck_assert_int_eq(gt_be->ops->download(gt_be, got, d_states, count * sizeof *got), LM_OK);
    gt_sync(gt_be, "step_schedule");
    for (size_t c = 0; c < n_cases; c++) {
        double worst = 0.0;
        for (size_t k = 0; k < n_steps; k++) {
            const size_t i = c * n_steps + k;
            lm_step_state want = start[i];
            lm_cpu_step_schedule(&want);
            const double d = fabs(got[i].lr - want.lr);
            if (d > worst) worst = d;
            /* CUDA's cos/pow are within 2 ulp and the polynomial's product-add is an FMA */
            const state_tolerance tol = {0, 0, cases[c].exact ? 0.0 : 2e-15 * cases[c].schedule.base_lr};
            char what[96];
            snprintf(what, sizeof what, "step_schedule %s step %lld", cases[c].name, (long long)steps[k]);
            compare_state(what, &got[i], &want, tol);
        }
        printf("  step_schedule %-34s largest |gpu - cpu| = %.3g (%s)\n", cases[c].name, worst,
               cases[c].exact ? "bits required" : "2e-15 of base_lr allowed");
    }
    gt_dev_free(gt_be, d_states);
    free(start);
    free(got);
}
END_TEST

/* ---- step_finish ------------------------------------------------------------------------------------ */

START_TEST(test_step_finish) {
    lm_step_state start = typical_state(), want, got;
    start.loss_sum = 10.0 / 3.0;
    start.clip_scale = 0.25f;
    start.scored = 4;
    want = start;
    lm_cpu_step_finish(&want);
    lm_cpu_step_finish(&want); /* a second step with nothing scored adds 0 */
    lm_step_state *d_state = gt_dev_step_state(gt_be, &start);
    gt_be->ops->step_finish(gt_be, d_state);
    ck_assert_msg(device()->ops->step_finish(device(), d_state) == LM_OK, "%s", lm_error_message());
    gt_dev_step_state_download(gt_be, &got, d_state);
    compare_state("step_finish x2", &got, &want, BITS);
    gt_dev_free(gt_be, d_state);
}
END_TEST

/* ---- a whole step, and the device's waits ---------------------------------------------------------- */

/* Three training steps of three micro-batches each, as a trainer runs them
 * through the public device (schedule, per micro-batch: the host uploads
 * the micro-batch index, forward draws dropout and writes the loss, the
 * loss is added; then the norm, and finish), against the CPU twins.  The
 * device must not wait once (no sync, no download in the counters) until
 * the host reads the state; the dropout of each micro-batch must draw that
 * micro-batch's mask (the key is read on the device at its point in the
 * stream); the state must match the CPU's bit for bit (dyadic inputs). */
START_TEST(test_step_never_waits) {
    enum { STEPS = 3, MICRO = 3, ROWS = 4096, DROP_N = 5003, SITE = 1 };
    const size_t n_grads = 1000003;
    const int64_t counts[MICRO] = {4000, 4096, 3111};
    const double total = 4000.0 + 4096.0 + 3111.0;
    lm_device *dev = device();

    lm_step_state start;
    memset(&start, 0, sizeof start);
    start.seed = gt_next_seed();
    start.schedule = make_schedule(LM_SCHEDULE_LINEAR, 2, 10, 0, 0, 0);
    start.max_grad_norm = 1.0;
    start.clip_scale = 1.0f;
    lm_step_state cpu = start, got;

    float *losses[MICRO], *d_losses[MICRO];
    int64_t *d_counts[MICRO];
    for (int mb = 0; mb < MICRO; mb++) {
        losses[mb] = dyadic(ROWS, 2560, 8, 1);
        d_losses[mb] = gt_dev_upload(gt_be, losses[mb], ROWS);
        d_counts[mb] = gt_dev_count(gt_be, counts[mb]);
    }
    float *grads = dyadic(n_grads, 64, 8, 0); /* norm about 144: clipped */
    float *d_grads = gt_dev_upload(gt_be, grads, n_grads);
    float *x = gt_random(DROP_N, -1, 1), *d_x = gt_dev_upload(gt_be, x, DROP_N);
    float *d_drop[STEPS * MICRO];
    for (int i = 0; i < STEPS * MICRO; i++) d_drop[i] = gt_dev_nan(gt_be, DROP_N);
    lm_step_state *d_state = gt_dev_step_state(gt_be, &start);
    gt_sync(gt_be, "the step's setup");

    const lm_device_counters before = counters_now();
    for (int step = 0; step < STEPS; step++) {
        ck_assert_int_eq(dev->ops->step_schedule(dev, d_state), LM_OK);
        lm_cpu_step_schedule(&cpu);
        for (int mb = 0; mb < MICRO; mb++) {
            /* the host's word for the micro-batch: a local that changes right after the upload */
            uint64_t index = (uint64_t)(step * MICRO + mb);
            ck_assert_int_eq(dev->ops->upload(dev, &d_state->micro_batch, &index, sizeof index), LM_OK);
            cpu.micro_batch = index;
            index = UINT64_MAX;
            gt_be->ops->dropout_forward(gt_be, d_drop[step * MICRO + mb], d_x, DROP_N, 0.1f, d_state, SITE);
            gt_be->ops->loss_mean(gt_be, &d_state->loss, d_losses[mb], ROWS, d_counts[mb]);
            lm_cpu_loss_mean(&cpu.loss, losses[mb], ROWS, &counts[mb]);
            ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, d_state, (double)counts[mb], total, 1), LM_OK);
            lm_cpu_step_micro_batch_end(&cpu, (double)counts[mb], total, 1);
        }
        ck_assert_int_eq(dev->ops->step_clip(dev, d_state, d_grads, LM_F32, n_grads), LM_OK);
        lm_cpu_step_clip(&cpu, grads, n_grads);
        ck_assert_int_eq(dev->ops->step_finish(dev, d_state), LM_OK);
        lm_cpu_step_finish(&cpu);
    }
    const lm_device_counters after = counters_now();
    printf("  %d steps: uploads +%llu, downloads +%llu, syncs +%llu\n", STEPS,
           (unsigned long long)(after.uploads - before.uploads),
           (unsigned long long)(after.downloads - before.downloads), (unsigned long long)(after.syncs - before.syncs));
    ck_assert_msg(after.syncs == before.syncs, "the steps waited for the device %llu times",
                  (unsigned long long)(after.syncs - before.syncs));
    ck_assert_uint_eq(after.downloads, before.downloads);
    ck_assert_uint_eq(after.uploads, before.uploads + STEPS * MICRO);

    ck_assert_int_eq(dev->ops->download(dev, &got, d_state, sizeof got), LM_OK);
    const lm_device_counters read = counters_now();
    ck_assert_uint_eq(read.downloads, after.downloads + 1);
    ck_assert_uint_eq(read.syncs, after.syncs + 1);
    ck_assert_int_eq(dev->ops->check(dev), LM_OK);
    compare_state("3 steps of 3 micro-batches", &got, &cpu, BITS);
    ck_assert_int_eq(got.step, STEPS);
    ck_assert_msg(got.clip_scale == 1.0f && got.grad_norm > 1.0f, "grad_norm %g", (double)got.grad_norm);

    float *want = gt_host(DROP_N), *g = gt_host(DROP_N);
    for (int i = 0; i < STEPS * MICRO; i++) {
        lm_cpu_dropout_forward(want, x, DROP_N, 0.1f, start.seed, lm_dropout_stream((uint64_t)i, SITE));
        gt_dev_download(gt_be, g, d_drop[i], DROP_N);
        char what[64];
        snprintf(what, sizeof what, "dropout of micro-batch %d (key read on the device)", i);
        gt_compare_exact(what, g, want, DROP_N);
    }
    for (int mb = 0; mb < MICRO; mb++) {
        gt_dev_free(gt_be, d_losses[mb]);
        gt_dev_free(gt_be, d_counts[mb]);
        free(losses[mb]);
    }
    for (int i = 0; i < STEPS * MICRO; i++) gt_dev_free(gt_be, d_drop[i]);
    gt_dev_free(gt_be, d_grads);
    gt_dev_free(gt_be, d_x);
    gt_dev_free(gt_be, d_state);
    free(grads);
    free(x);
    free(want);
    free(g);
}
END_TEST

/* The step's device side is capturable: schedule, loss_mean, dropout with
 * the key read on the device, micro_batch_end, clip and finish captured
 * once into a CUDA graph and replayed four times give the CPU's state after
 * four such steps, bit for bit (dyadic inputs), with no wait counted.  An
 * upload inside the capture is refused (it would replay from a reused
 * staging region) without breaking the capture. */
START_TEST(test_step_graph_replay) {
    enum { MICRO = 2, ROWS = 4096, DROP_N = 3001, SITE = 5, REPLAYS = 4 };
    const size_t n_grads = 500009;
    const int64_t counts[MICRO] = {4096, 2049};
    const double total = 4096.0 + 2049.0;
    lm_step_state start;
    memset(&start, 0, sizeof start);
    start.seed = gt_next_seed();
    start.micro_batch = 77;
    start.schedule = make_schedule(LM_SCHEDULE_LINEAR, 1, 6, 0, 0, 0);
    start.max_grad_norm = 1.0;
    start.clip_scale = 1.0f;
    lm_step_state cpu = start, got;
    float *losses[MICRO], *d_losses[MICRO];
    int64_t *d_counts[MICRO];
    for (int mb = 0; mb < MICRO; mb++) {
        losses[mb] = dyadic(ROWS, 2560, 8, 1);
        d_losses[mb] = gt_dev_upload(gt_be, losses[mb], ROWS);
        d_counts[mb] = gt_dev_count(gt_be, counts[mb]);
    }
    float *grads = dyadic(n_grads, 64, 8, 0), *d_grads = gt_dev_upload(gt_be, grads, n_grads);
    float *x = gt_random(DROP_N, -1, 1), *d_x = gt_dev_upload(gt_be, x, DROP_N), *d_y = gt_dev_nan(gt_be, DROP_N);
    lm_step_state *d_state = gt_dev_step_state(gt_be, &start);
    gt_sync(gt_be, "the graph's setup");

    const cudaStream_t stream = (cudaStream_t)device()->stream;
    ck_assert_int_eq(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    gt_be->ops->step_schedule(gt_be, d_state);
    for (int mb = 0; mb < MICRO; mb++) {
        gt_be->ops->dropout_forward(gt_be, d_y, d_x, DROP_N, 0.1f, d_state, SITE);
        gt_be->ops->loss_mean(gt_be, &d_state->loss, d_losses[mb], ROWS, d_counts[mb]);
        gt_be->ops->step_micro_batch_end(gt_be, d_state, (double)counts[mb], total, 1);
    }
    gt_be->ops->step_clip(gt_be, d_state, d_grads, n_grads);
    gt_be->ops->step_finish(gt_be, d_state);
    const uint64_t index = 5;
    const lm_status refused = gt_be->ops->upload(gt_be, &d_state->micro_batch, &index, sizeof index);
    const char *refusal = lm_error_message();
    printf("  upload during capture: %s\n", refusal);
    cudaGraph_t graph = NULL;
    const cudaError_t end = cudaStreamEndCapture(stream, &graph);
    ck_assert_msg(end == cudaSuccess, "capturing the step failed: %s", cudaGetErrorString(end));
    ck_assert_int_eq(refused, LM_ERR_INVALID);
    ck_assert_msg(gt_be->ops->check(gt_be) == LM_OK, "an op failed under capture: %s", lm_error_message());
    cudaGraphExec_t exec = NULL;
    ck_assert_int_eq(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);

    const lm_device_counters before = counters_now();
    for (int r = 0; r < REPLAYS; r++) ck_assert_int_eq(cudaGraphLaunch(exec, stream), cudaSuccess);
    const lm_device_counters after = counters_now();
    ck_assert_uint_eq(after.syncs, before.syncs);
    for (int r = 0; r < REPLAYS; r++) {
        lm_cpu_step_schedule(&cpu);
        for (int mb = 0; mb < MICRO; mb++) {
            lm_cpu_loss_mean(&cpu.loss, losses[mb], ROWS, &counts[mb]);
            lm_cpu_step_micro_batch_end(&cpu, (double)counts[mb], total, 1);
        }
        lm_cpu_step_clip(&cpu, grads, n_grads);
        lm_cpu_step_finish(&cpu);
    }
    gt_dev_step_state_download(gt_be, &got, d_state);
    compare_state("4 replays of a captured step", &got, &cpu, BITS);
    ck_assert_int_eq(got.step, REPLAYS);
    float *want = gt_host(DROP_N), *g = gt_host(DROP_N);
    lm_cpu_dropout_forward(want, x, DROP_N, 0.1f, start.seed, lm_dropout_stream(start.micro_batch, SITE));
    gt_dev_download(gt_be, g, d_y, DROP_N);
    gt_compare_exact("dropout in the replayed graph", g, want, DROP_N);

    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    for (int mb = 0; mb < MICRO; mb++) {
        gt_dev_free(gt_be, d_losses[mb]);
        gt_dev_free(gt_be, d_counts[mb]);
        free(losses[mb]);
    }
    gt_dev_free(gt_be, d_grads);
    gt_dev_free(gt_be, d_x);
    gt_dev_free(gt_be, d_y);
    gt_dev_free(gt_be, d_state);
    free(grads);
    free(x);
    free(want);
    free(g);
}
END_TEST

/* The words of upload number `u`: a pattern no other upload has. */
static void fill_pattern(uint32_t *words, size_t n, uint32_t u) {
    for (size_t i = 0; i < n; i++) words[i] = (u << 22) ^ (uint32_t)i ^ 0x9E3779B9u;
}

static size_t check_pattern(const uint32_t *words, size_t n, uint32_t u) {
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) wrong += words[i] != ((u << 22) ^ (uint32_t)i ^ 0x9E3779B9u);
    return wrong;
}

/* Uploads of small buffers never wait, on an idle GPU and on a busy one
 * (the stream is still running the work queued before them when they have
 * all returned); the source may be overwritten as soon as upload returns;
 * a download counts one download and one sync, sync one sync. */
START_TEST(test_upload_does_not_wait) {
    enum { UPLOADS = 32, MAX_WORDS = 1024 };
    lm_device *dev = device();
    uint32_t *d_words = NULL;
    ck_assert_int_eq(gt_be->ops->alloc(gt_be, (void **)&d_words, (size_t)UPLOADS * MAX_WORDS * 4, "upload test"),
                     LM_OK);
    uint32_t *src = calloc(MAX_WORDS, 4), *back = calloc((size_t)UPLOADS * MAX_WORDS, 4);
    ck_assert(src && back);
    size_t sizes[UPLOADS];
    for (int u = 0; u < UPLOADS; u++) sizes[u] = (size_t)1 + (size_t)(u * 37) % MAX_WORDS;

    for (int busy = 0; busy <= 1; busy++) {
        float *a = NULL, *b = NULL, *c = NULL;
        const int M = 4096;
        if (busy) {
            /* about 100 ms of fp32 GEMMs on an H100 (5.5 TFLOP), queued first */
            const size_t bytes = (size_t)M * M * sizeof(float);
            ck_assert_int_eq(gt_be->ops->alloc(gt_be, (void **)&a, bytes, "gemm a"), LM_OK);
            ck_assert_int_eq(gt_be->ops->alloc(gt_be, (void **)&b, bytes, "gemm b"), LM_OK);
            ck_assert_int_eq(gt_be->ops->alloc(gt_be, (void **)&c, bytes, "gemm c"), LM_OK);
            gt_be->ops->matmul_forward(gt_be, c, a, b, NULL, M, M, M, LM_W_IN_OUT); /* plan built here */
        }
        gt_sync(gt_be, "before the uploads");
        const lm_device_counters before = counters_now();
        if (busy)
            for (int i = 0; i < 40; i++) gt_be->ops->matmul_forward(gt_be, c, a, b, NULL, M, M, M, LM_W_IN_OUT);
        for (int u = 0; u < UPLOADS; u++) {
            fill_pattern(src, sizes[u], (uint32_t)(u + busy * UPLOADS));
            ck_assert_int_eq(dev->ops->upload(dev, d_words + (size_t)u * MAX_WORDS, src, sizes[u] * 4), LM_OK);
            memset(src, 0xA5, MAX_WORDS * 4); /* the caller reuses src at once */
        }
        ck_assert_int_eq(dev->ops->upload(dev, d_words, src, 0), LM_OK); /* counted, copies nothing */
        if (busy) {
            const cudaError_t q = cudaStreamQuery((cudaStream_t)dev->stream);
            (void)cudaGetLastError(); /* "not ready" is an answer, not a failure to keep */
            printf("  %d uploads behind 40 queued GEMMs: the stream is %s when they have returned\n", UPLOADS,
                   q == cudaErrorNotReady ? "still busy" : "idle");
            ck_assert_msg(q == cudaErrorNotReady,
                          "the stream finished its GEMMs before the uploads returned: an upload waited (%s)",
                          cudaGetErrorString(q));
        }
        const lm_device_counters after = counters_now();
        printf("  %s GPU: %d uploads: uploads +%llu, syncs +%llu, downloads +%llu\n", busy ? "busy" : "idle",
               UPLOADS + 1, (unsigned long long)(after.uploads - before.uploads),
               (unsigned long long)(after.syncs - before.syncs),
               (unsigned long long)(after.downloads - before.downloads));
        ck_assert_uint_eq(after.uploads, before.uploads + UPLOADS + 1);
        ck_assert_msg(after.syncs == before.syncs, "uploads waited %llu times",
                      (unsigned long long)(after.syncs - before.syncs));
        ck_assert_uint_eq(after.downloads, before.downloads);

        ck_assert_int_eq(dev->ops->download(dev, back, d_words, (size_t)UPLOADS * MAX_WORDS * 4), LM_OK);
        const lm_device_counters read = counters_now();
        ck_assert_uint_eq(read.downloads, after.downloads + 1);
        ck_assert_uint_eq(read.syncs, after.syncs + 1);
        ck_assert_uint_eq(read.uploads, after.uploads);
        for (int u = 0; u < UPLOADS; u++) {
            const size_t wrong = check_pattern(back + (size_t)u * MAX_WORDS, sizes[u], (uint32_t)(u + busy * UPLOADS));
            ck_assert_msg(wrong == 0, "upload %d (%zu bytes): %zu words wrong", u, sizes[u] * 4, wrong);
        }
        ck_assert_int_eq(dev->ops->sync(dev), LM_OK);
        ck_assert_uint_eq(counters_now().syncs, read.syncs + 1);
        if (busy) {
            gt_dev_free(gt_be, a);
            gt_dev_free(gt_be, b);
            gt_dev_free(gt_be, c);
        }
    }
    gt_dev_free(gt_be, d_words);
    free(src);
    free(back);
}
END_TEST

/* Uploads of every size, many more bytes than the staging buffer holds,
 * queued behind GPU work so that the staged copies are still pending when
 * their part of the buffer comes round again: every byte must arrive (the
 * staging waits where it must, and those waits are counted), including
 * uploads too large to stage. */
START_TEST(test_upload_wraps) {
    const size_t sizes[] = {4, 1000, 65536, 300000, 1500000, 3000000, 777, 12000000};
    const int per_size = 8, n_sizes = (int)(sizeof sizes / sizeof sizes[0]);
    const int uploads = per_size * n_sizes;
    size_t total = 0, largest = 0;
    for (int u = 0; u < uploads; u++) {
        const size_t words = sizes[u % n_sizes] / 4 + 1;
        total += words;
        if (words > largest) largest = words;
    }
    uint32_t *d_words = NULL;
    ck_assert_int_eq(gt_be->ops->alloc(gt_be, (void **)&d_words, total * 4, "upload wrap test"), LM_OK);
    uint32_t *src = calloc(largest, 4), *back = calloc(total, 4);
    ck_assert(src && back);
    const int M = 2048;
    float *a = NULL, *c = NULL;
    ck_assert_int_eq(gt_be->ops->alloc(gt_be, (void **)&a, (size_t)M * M * 4, "gemm a"), LM_OK);
    ck_assert_int_eq(gt_be->ops->alloc(gt_be, (void **)&c, (size_t)M * M * 4, "gemm c"), LM_OK);
    gt_sync(gt_be, "before the uploads");
    const lm_device_counters before = counters_now();
    size_t at = 0;
    for (int u = 0; u < uploads; u++) {
        if (u % 16 == 0)
            for (int i = 0; i < 4; i++) gt_be->ops->matmul_forward(gt_be, c, a, a, NULL, M, M, M, LM_W_IN_OUT);
        const size_t words = sizes[u % n_sizes] / 4 + 1;
        fill_pattern(src, words, (uint32_t)u);
        ck_assert_int_eq(gt_be->ops->upload(gt_be, d_words + at, src, words * 4), LM_OK);
        memset(src, 0x5A, words * 4);
        at += words;
    }
    const lm_device_counters after = counters_now();
    printf("  %d uploads, %.1f MiB: syncs +%llu (staging reuse waits and unstaged large uploads)\n", uploads,
           (double)total * 4 / 1048576.0, (unsigned long long)(after.syncs - before.syncs));
    ck_assert_uint_eq(after.uploads, before.uploads + (uint64_t)uploads);
    ck_assert_msg(after.syncs - before.syncs <= (uint64_t)uploads, "more waits than uploads");
    gt_dev_download(gt_be, (float *)back, (const float *)d_words, total);
    at = 0;
    for (int u = 0; u < uploads; u++) {
        const size_t words = sizes[u % n_sizes] / 4 + 1;
        const size_t wrong = check_pattern(back + at, words, (uint32_t)u);
        ck_assert_msg(wrong == 0, "upload %d (%zu bytes): %zu words wrong", u, words * 4, wrong);
        at += words;
    }
    gt_dev_free(gt_be, d_words);
    gt_dev_free(gt_be, a);
    gt_dev_free(gt_be, c);
    free(src);
    free(back);
}
END_TEST

Suite *gpu_step_suite(void) {
    Suite *s = suite_create("cuda step");
    TCase *tc = tcase_create("step");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_device_is_filled);
    tcase_add_test(tc, test_keep_failure);
    tcase_add_test(tc, test_loss_mean);
    tcase_add_test(tc, test_step_micro_batch_end);
    tcase_add_test(tc, test_step_clip);
    tcase_add_test(tc, test_step_schedule);
    tcase_add_test(tc, test_step_finish);
    tcase_add_test(tc, test_step_never_waits);
    tcase_add_test(tc, test_step_graph_replay);
    tcase_add_test(tc, test_upload_does_not_wait);
    tcase_add_test(tc, test_upload_wraps);
    suite_add_tcase(s, tc);
    return s;
}
