/* Parity of the CPU kernels with PyTorch / Hugging Face, on the fixture
 * written by fixtures/gen_kernel_fixture.py (torch.nn.functional.layer_norm,
 * HF gelu_new / gelu, HF Conv1D and nn.Linear, HF eager attention with its
 * finfo.min mask, F.cross_entropy with ignore_index, torch.optim.AdamW).
 *
 * Tolerances: forward values agree to float rounding (a few 1e-7 relative:
 * different summation orders and exp/tanh implementations), gradients to
 * ~1e-6 relative; AdamW follows torch's operation order and is held to 2 ulp. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"
#include "kernels.h"
#include "lmcore/safetensors.h"

static lm_safetensors *fixture;

static void open_fixture(void) {
    lm_status status = lm_safetensors_open(tk_fixture_path("kernel_fixture.safetensors"), &fixture);
    ck_assert_msg(status == LM_OK, "cannot open the kernel fixture: %s", lm_error_message());
}

static void close_fixture(void) {
    lm_safetensors_close(fixture);
    fixture = NULL;
}

/* Tensor `name` of the fixture, checked to hold `numel` elements of `dtype`. */
static const void *fixture_data(const char *name, lm_dtype dtype, int64_t numel) {
    lm_tensor t;
    lm_status status = lm_safetensors_find(fixture, name, &t);
    ck_assert_msg(status == LM_OK, "fixture tensor %s: %s", name, lm_error_message());
    ck_assert_msg(t.dtype == dtype, "fixture tensor %s has dtype %s", name, lm_dtype_name(t.dtype));
    ck_assert_msg(lm_tensor_numel(&t) == numel, "fixture tensor %s has %lld elements, expected %lld", name,
                  (long long)lm_tensor_numel(&t), (long long)numel);
    return t.data;
}

static const float *fx(const char *name, int64_t numel) {
    return fixture_data(name, LM_F32, numel);
}

static const int32_t *fx_int(const char *name, int64_t numel) {
    return fixture_data(name, LM_I32, numel);
}

START_TEST(test_layernorm_matches_torch) {
    enum { N = 6, C = 16 };
    const float *x = fx("layernorm.x", N * C), *w = fx("layernorm.weight", C), *b = fx("layernorm.bias", C);
    float eps = fx("layernorm.eps", 1)[0];
    float *out = tk_floats(N * C), *mean = tk_floats(N), *rstd = tk_floats(N);
    lm_cpu_layernorm_forward(out, mean, rstd, x, w, b, N, C, eps);
    tk_assert_close("layernorm out", out, fx("layernorm.out", N * C), N * C, 2e-5, 1e-5);
    float *dx = tk_floats(N * C), *dw = tk_floats(C), *db = tk_floats(C);
    lm_cpu_layernorm_backward(dx, dw, db, fx("layernorm.dout", N * C), x, w, mean, rstd, N, C, LM_GRAD_WRITE,
                              LM_GRAD_ADD);
    tk_assert_close("layernorm dx", dx, fx("layernorm.dx", N * C), N * C, 1e-5, 1e-4);
    tk_assert_close("layernorm dweight", dw, fx("layernorm.dweight", C), C, 1e-5, 1e-5);
    tk_assert_close("layernorm dbias", db, fx("layernorm.dbias", C), C, 1e-5, 1e-5);
    free(out), free(mean), free(rstd), free(dx), free(dw), free(db);
}
END_TEST

START_TEST(test_gelu_matches_hugging_face) {
    enum { N = 96 };
    const float *x = fx("gelu.x", N), *dout = fx("gelu.dout", N);
    const char *tags[2] = {"erf", "tanh"};
    for (int approx = 0; approx <= 1; approx++) {
        char name[64], what[64];
        float *out = tk_floats(N), *dx = tk_floats(N);
        lm_cpu_gelu_forward(out, x, N, approx);
        lm_cpu_gelu_backward(dx, x, dout, N, approx);
        snprintf(name, sizeof name, "gelu.%s.out", tags[approx]);
        snprintf(what, sizeof what, "gelu %s forward", tags[approx]);
        tk_assert_close(what, out, fx(name, N), N, 1e-6, 1e-6);
        snprintf(name, sizeof name, "gelu.%s.dx", tags[approx]);
        snprintf(what, sizeof what, "gelu %s backward", tags[approx]);
        tk_assert_close(what, dx, fx(name, N), N, 1e-6, 1e-5);
        free(out), free(dx);
    }
}
END_TEST

START_TEST(test_linear_layouts_match_torch) {
    enum { N = 7, IC = 12, OC = 10 };
    const float *x = fx("linear.x", N * IC), *dout = fx("linear.dout", N * OC);
    const char *tags[2] = {"conv1d", "linear"};
    const lm_weight_layout layouts[2] = {LM_W_IN_OUT, LM_W_OUT_IN};
    for (int i = 0; i < 2; i++) {
        char name[64];
#define FX(field, n) (snprintf(name, sizeof name, "linear.%s.%s", tags[i], field), fx(name, n))
        const float *w = FX("weight", IC * OC), *b = FX("bias", OC);
        float *out = tk_floats(N * OC), *dx = tk_floats(N * IC), *dw = tk_floats(IC * OC), *db = tk_floats(OC);
        lm_cpu_matmul_forward(out, x, w, b, N, IC, OC, layouts[i]);
        lm_cpu_matmul_backward(dx, dw, db, dout, x, w, N, IC, OC, layouts[i], LM_GRAD_WRITE, LM_GRAD_ADD);
        tk_assert_close(tags[i], out, FX("out", N * OC), N * OC, 1e-5, 1e-5);
        tk_assert_close(tags[i], dx, FX("dx", N * IC), N * IC, 1e-5, 1e-5);
        tk_assert_close(tags[i], dw, FX("dweight", IC * OC), IC * OC, 1e-5, 1e-5);
        tk_assert_close(tags[i], db, FX("dbias", OC), OC, 1e-5, 1e-5);
#undef FX
        free(out), free(dx), free(dw), free(db);
    }
}
END_TEST

enum { AB = 2, AT = 6, AC = 16, ANH = 2 };

START_TEST(test_attention_causal_padded_matches_hugging_face) {
    /* GPT-2 layout; sequence 1 is left-padded so that its first two queries
     * see no key: Hugging Face gives them uniform rows. */
    const float *qkv = fx("attention.causal.qkv", AB * AT * 3 * AC);
    const int32_t *mask = fx_int("attention.causal.key_mask", AB * AT);
    size_t natt = (size_t)AB * ANH * AT * AT, no = (size_t)AB * AT * AC, nin = (size_t)AB * AT * 3 * AC;
    float *out = tk_floats(no), *preatt = tk_floats(natt), *att = tk_floats(natt), *scratch = tk_floats(natt);
    lm_cpu_attention_forward(out, preatt, att, qkv, qkv + AC, qkv + 2 * AC, 3 * AC, mask, 1, AB, AT, AC, ANH, 0.0f,
                             1, 2);
    tk_assert_close("causal attention probabilities", preatt, fx("attention.causal.probs", natt), natt, 1e-6, 1e-5);
    tk_assert_close("causal attention probabilities (att, p = 0)", att, preatt, natt, 0.0, 0.0);
    tk_assert_close("causal attention out", out, fx("attention.causal.out", no), no, 1e-6, 1e-5);
    float *dqkv = tk_floats(nin);
    lm_cpu_attention_backward(dqkv, dqkv + AC, dqkv + 2 * AC, scratch, fx("attention.causal.dout", no), preatt, att,
                              qkv, qkv + AC, qkv + 2 * AC, 3 * AC, AB, AT, AC, ANH, 0.0f, 1, 2);
    tk_assert_close("causal attention dqkv", dqkv, fx("attention.causal.dqkv", nin), nin, 1e-6, 1e-5);
    free(out), free(preatt), free(att), free(scratch), free(dqkv);
}
END_TEST

START_TEST(test_attention_bidirectional_padded_matches_hugging_face) {
    size_t natt = (size_t)AB * ANH * AT * AT, no = (size_t)AB * AT * AC;
    const float *q = fx("attention.bidir.q", no), *k = fx("attention.bidir.k", no), *v = fx("attention.bidir.v", no);
    const int32_t *mask = fx_int("attention.bidir.key_mask", AB * AT);
    float *out = tk_floats(no), *preatt = tk_floats(natt), *att = tk_floats(natt), *scratch = tk_floats(natt);
    lm_cpu_attention_forward(out, preatt, att, q, k, v, AC, mask, 0, AB, AT, AC, ANH, 0.0f, 1, 2);
    tk_assert_close("bidirectional attention probabilities", preatt, fx("attention.bidir.probs", natt), natt, 1e-6,
                    1e-5);
    tk_assert_close("bidirectional attention out", out, fx("attention.bidir.out", no), no, 1e-6, 1e-5);
    float *dq = tk_floats(no), *dk = tk_floats(no), *dv = tk_floats(no);
    lm_cpu_attention_backward(dq, dk, dv, scratch, fx("attention.bidir.dout", no), preatt, att, q, k, v, AC, AB, AT,
                              AC, ANH, 0.0f, 1, 2);
    tk_assert_close("bidirectional attention dq", dq, fx("attention.bidir.dq", no), no, 1e-6, 1e-5);
    tk_assert_close("bidirectional attention dk", dk, fx("attention.bidir.dk", no), no, 1e-6, 1e-5);
    tk_assert_close("bidirectional attention dv", dv, fx("attention.bidir.dv", no), no, 1e-6, 1e-5);
    free(out), free(preatt), free(att), free(scratch), free(dq), free(dk), free(dv);
}
END_TEST

START_TEST(test_crossentropy_matches_torch) {
    enum { N = 9, V = 50 };
    const float *logits = fx("ce.logits", N * V);
    const int32_t *labels = fx_int("ce.labels", N);
    float *losses = tk_floats(N);
    double sum = lm_cpu_crossentropy_forward(losses, logits, labels, N, V, V);
    tk_assert_close("cross-entropy per-row losses", losses, fx("ce.losses", N), N, 1e-5, 1e-6);
    int scored = 0;
    for (int n = 0; n < N; n++) scored += labels[n] != -100;
    ck_assert_int_eq(scored, 7);
    float mean = (float)(sum / scored);
    tk_assert_close("cross-entropy mean loss", &mean, fx("ce.loss", 1), 1, 1e-6, 1e-6);

    float dloss = (float)(1.0 / scored);
    float *dlogits = tk_floats(N * V);
    lm_cpu_crossentropy_backward(dlogits, logits, labels, dloss, N, V, V);
    tk_assert_close("cross-entropy dlogits", dlogits, fx("ce.dlogits", N * V), N * V, 1e-7, 1e-5);
    /* In place: the logits buffer becomes the gradient, ignored rows zeros. */
    float *inplace = tk_copy(logits, N * V);
    lm_cpu_crossentropy_backward(inplace, inplace, labels, dloss, N, V, V);
    tk_assert_close("cross-entropy in-place dlogits", inplace, dlogits, N * V, 0.0, 0.0);
    free(losses), free(dlogits), free(inplace);
}
END_TEST

/* lmcore 1.x's lm_cpu_adamw now lives in the adamw optimizer plugin: the
 * same torch parity, through the plugin's bind and step on a CPU device. */
START_TEST(test_adamw_matches_torch) {
    enum { N = 37 };
    const float *h = fx("adamw.hparams", 6);
    float lr = h[0], beta1 = h[1], beta2 = h[2], eps = h[3], wd = h[4], clip = h[5];
    float *param = tk_copy(fx("adamw.param0", N), N), *m = tk_floats(N), *v = tk_floats(N);
    int64_t worst_ulp = 0;
    for (int step = 1; step <= 3; step++) {
        char name[32];
        snprintf(name, sizeof name, "adamw.grad%d", step);
        tk_adamw(param, fx(name, N), m, v, N, lr, beta1, beta2, eps, wd, step == 2 ? clip : 1.0f, step, 1);
        const char *fields[3] = {"param", "m", "v"};
        float *mine[3] = {param, m, v};
        for (int f = 0; f < 3; f++) {
            snprintf(name, sizeof name, "adamw.%s%d", fields[f], step);
            const float *want = fx(name, N);
            int64_t ulp = tk_max_ulp(mine[f], want, N);
            ck_assert_msg(ulp <= 2, "AdamW step %d: %s differs from torch by %lld ulp", step, fields[f],
                          (long long)ulp);
            if (ulp > worst_ulp) worst_ulp = ulp;
        }
    }
    if (getenv("LM_TEST_VERBOSE"))
        fprintf(stderr, "  adamw: worst difference from torch %lld ulp\n", (long long)worst_ulp);
    free(param), free(m), free(v);
}
END_TEST

Suite *kernels_torch_suite(void) {
    Suite *s = suite_create("kernels_torch_parity");
    TCase *tc = tcase_create("fixture");
    tcase_add_checked_fixture(tc, open_fixture, close_fixture);
    tcase_add_test(tc, test_layernorm_matches_torch);
    tcase_add_test(tc, test_gelu_matches_hugging_face);
    tcase_add_test(tc, test_linear_layouts_match_torch);
    tcase_add_test(tc, test_attention_causal_padded_matches_hugging_face);
    tcase_add_test(tc, test_attention_bidirectional_padded_matches_hugging_face);
    tcase_add_test(tc, test_crossentropy_matches_torch);
    tcase_add_test(tc, test_adamw_matches_torch);
    suite_add_tcase(s, tc);
    return s;
}
