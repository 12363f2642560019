/* The ops of incremental decoding (kv_cache_append, attention_cached_forward,
 * matvec_forward) on the CUDA backend against their CPU twins
 * (kernels/cpu/attention_cached.c, matvec.c), on fresh random inputs: outputs are
 * poisoned with NaN beforehand so that an unwritten element fails, the
 * cache rows outside the appended ones must come back untouched, and two
 * GPU runs must agree bit for bit.  Label gpu; exits 77 (skipped) without a
 * usable GPU unless LMCORE_REQUIRE_GPU=1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test_util.h"
#include "kernels.h"
#include "lmcore/status.h"
#include "test_main.h"

/* fp32 norm-relative tolerance of reductions and products (test_cuda_ops.c's). */
#define TOL_DECODE 2e-5

/* Appends n rows at `pos` of a [n, stride] source into caches of `rows`
 * rows that hold random values elsewhere: the whole caches must match. */
static void check_append(int rows, int pos, int n, int C, int stride) {
    lm_backend *be = gt_be;
    printf("kv_cache_append rows=%d pos=%d n=%d C=%d stride=%d\n", rows, pos, n, C, stride);
    const size_t cache_n = (size_t)rows * C, src_n = (size_t)n * stride;
    float *k0 = gt_random(cache_n, -1, 1), *v0 = gt_random(cache_n, -1, 1), *src = gt_random(src_n + 2 * C, -1, 1);
    float *k_cpu = gt_host_copy(k0, cache_n), *v_cpu = gt_host_copy(v0, cache_n);
    lm_cpu_kv_cache_append(k_cpu, v_cpu, src, src + C, stride, pos, n, C);

    float *d_k = gt_dev_upload(be, k0, cache_n), *d_v = gt_dev_upload(be, v0, cache_n);
    float *d_src = gt_dev_upload(be, src, src_n + 2 * C);
    be->ops->kv_cache_append(be, d_k, d_v, d_src, d_src + C, stride, pos, n, C);
    gt_sync(be, "kv_cache_append");
    float *k_gpu = gt_host(cache_n), *v_gpu = gt_host(cache_n);
    gt_dev_download(be, k_gpu, d_k, cache_n);
    gt_dev_download(be, v_gpu, d_v, cache_n);
    gt_compare_exact("kv_cache_append k_cache", k_gpu, k_cpu, cache_n);
    gt_compare_exact("kv_cache_append v_cache", v_gpu, v_cpu, cache_n);
    /* The CPU twin itself: rows pos..pos+n-1 are the source rows, the rest untouched. */
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)r * C + c;
            int appended = r >= pos && r < pos + n;
            float want_k = appended ? src[(size_t)(r - pos) * stride + c] : k0[i];
            float want_v = appended ? src[(size_t)(r - pos) * stride + C + c] : v0[i];
            ck_assert_msg(k_cpu[i] == want_k && v_cpu[i] == want_v, "cpu kv_cache_append row %d col %d", r, c);
        }
    gt_dev_free(be, d_k);
    gt_dev_free(be, d_v);
    gt_dev_free(be, d_src);
    free(k0);
    free(v0);
    free(src);
    free(k_cpu);
    free(v_cpu);
    free(k_gpu);
    free(v_gpu);
}

START_TEST(test_kv_cache_append) {
    check_append(16, 0, 16, 64, 192);  /* a whole prompt, GPT-2 qkv layout */
    check_append(40, 17, 1, 96, 288);  /* one token */
    check_append(50, 9, 7, 33, 33);    /* separate k/v buffers (stride C), odd width */
    check_append(300, 250, 50, 768, 2304);
}
END_TEST

/* n queries at positions pos..pos+n-1 over pos+n cached keys. */
static void check_cached_attention(int pos, int n, int C, int NH, int interleaved) {
    lm_backend *be = gt_be;
    const int T = pos + n, stride = interleaved ? 3 * C : C;
    printf("attention_cached_forward pos=%d n=%d C=%d NH=%d stride=%d\n", pos, n, C, NH, stride);
    const size_t q_n = (size_t)n * stride, cache_n = (size_t)T * C, out_n = (size_t)n * C,
                 att_n = (size_t)NH * n * T;
    float *q = gt_random(q_n, -2, 2), *k_cache = gt_random(cache_n, -2, 2), *v_cache = gt_random(cache_n, -1, 1);
    float *out = gt_host(out_n), *att = gt_host(att_n);
    gt_fill_nan(out, out_n);
    gt_fill_nan(att, att_n);
    lm_cpu_attention_cached_forward(out, att, q, k_cache, v_cache, stride, pos, n, C, NH);

    float *d_q = gt_dev_upload(be, q, q_n), *d_k = gt_dev_upload(be, k_cache, cache_n);
    float *d_v = gt_dev_upload(be, v_cache, cache_n);
    float *g_out[2], *g_att[2];
    for (int run = 0; run < 2; run++) {
        float *d_out = gt_dev_nan(be, out_n), *d_att = gt_dev_nan(be, att_n);
        be->ops->attention_cached_forward(be, d_out, d_att, d_q, d_k, d_v, stride, pos, n, C, NH);
        gt_sync(be, "attention_cached_forward");
        g_out[run] = gt_host(out_n);
        g_att[run] = gt_host(att_n);
        gt_dev_download(be, g_out[run], d_out, out_n);
        gt_dev_download(be, g_att[run], d_att, att_n);
        gt_dev_free(be, d_out);
        gt_dev_free(be, d_att);
    }
    gt_compare("attention_cached_forward att", g_att[0], att, att_n, TOL_DECODE);
    gt_compare("attention_cached_forward out", g_out[0], out, out_n, TOL_DECODE);
    /* Keys after a query's own position: exactly 0 on the GPU too. */
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < n; i++)
            for (int j = pos + i + 1; j < T; j++)
                ck_assert_msg(g_att[0][((size_t)h * n + i) * T + j] == 0.0f, "head %d query %d: future key %d not 0", h,
                              i, j);
    gt_assert_bitwise("attention_cached_forward determinism (out)", g_out[0], g_out[1], out_n);
    gt_assert_bitwise("attention_cached_forward determinism (att)", g_att[0], g_att[1], att_n);
    for (int run = 0; run < 2; run++) {
        free(g_out[run]);
        free(g_att[run]);
    }
    gt_dev_free(be, d_q);
    gt_dev_free(be, d_k);
    gt_dev_free(be, d_v);
    free(q);
    free(k_cache);
    free(v_cache);
    free(out);
    free(att);
}

START_TEST(test_attention_cached) {
    check_cached_attention(0, 1, 64, 4, 1);      /* the first token */
    check_cached_attention(0, 32, 256, 4, 1);    /* a prompt in one step */
    check_cached_attention(31, 1, 256, 4, 1);    /* one token after it */
    check_cached_attention(20, 5, 96, 3, 0);     /* a chunk, separate q buffer, head size 32 */
    check_cached_attention(1000, 1, 768, 12, 1); /* GPT-2 small, a long cache */
    check_cached_attention(0, 200, 768, 12, 1);  /* GPT-2 small, a long prompt */
    check_cached_attention(7, 3, 40, 5, 1);      /* head size 8 (< a warp) */
}
END_TEST

/* The rows of a decoding step through each weight layout. */
static void check_matvec(int N, int IC, int OC, lm_weight_layout layout, int with_bias) {
    lm_backend *be = gt_be;
    printf("matvec_forward N=%d IC=%d OC=%d layout=%d bias=%d\n", N, IC, OC, (int)layout, with_bias);
    const size_t in_n = (size_t)N * IC, w_n = (size_t)IC * OC, out_n = (size_t)N * OC;
    float *x = gt_random(in_n, -1, 1), *w = gt_random(w_n, -1, 1), *b = gt_random((size_t)OC, -1, 1);
    float *out = gt_host(out_n), *g_out = gt_host(out_n);
    gt_fill_nan(out, out_n);
    lm_cpu_matvec_forward(out, x, w, with_bias ? b : NULL, N, IC, OC, layout);
    float *d_x = gt_dev_upload(be, x, in_n), *d_w = gt_dev_upload(be, w, w_n), *d_b = gt_dev_upload(be, b, (size_t)OC);
    float *d_out = gt_dev_nan(be, out_n);
    be->ops->matvec_forward(be, d_out, d_x, d_w, with_bias ? d_b : NULL, N, IC, OC, layout);
    gt_sync(be, "matvec_forward");
    gt_dev_download(be, g_out, d_out, out_n);
    gt_compare("matvec_forward out", g_out, out, out_n, TOL_DECODE);
    gt_dev_free(be, d_x);
    gt_dev_free(be, d_w);
    gt_dev_free(be, d_b);
    gt_dev_free(be, d_out);
    free(x);
    free(w);
    free(b);
    free(out);
    free(g_out);
}

START_TEST(test_matvec) {
    check_matvec(1, 256, 768, LM_W_IN_OUT, 1);
    check_matvec(1, 3072, 768, LM_W_IN_OUT, 1);
    check_matvec(3, 64, 200, LM_W_IN_OUT, 0);
    check_matvec(1, 768, 50257, LM_W_OUT_IN, 0); /* GPT-2's tied head */
    check_matvec(4, 40, 33, LM_W_OUT_IN, 1);
}
END_TEST

static Suite *decode_ops_suite(void) {
    Suite *s = suite_create("cuda decoding ops vs cpu");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_kv_cache_append);
    tcase_add_test(tc, test_attention_cached);
    tcase_add_test(tc, test_matvec);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return gt_main("against the CPU kernels", GT_FP32_ONLY, decode_ops_suite(), NULL); }
