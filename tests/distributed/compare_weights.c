/* compare_weights A.safetensors B.safetensors TOLERANCE
 * Prints the largest absolute difference between the F32 tensors of two
 * weight files (same names, same shapes) and exits 0 when it is at most
 * TOLERANCE, 1 otherwise (2 for unusable files).  TOLERANCE 0 asks for the
 * same bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmcore/lmcore.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: compare_weights A.safetensors B.safetensors TOLERANCE\n");
        return 2;
    }
    const double tolerance = atof(argv[3]);
    lm_safetensors *a = NULL, *b = NULL;
    if (lm_safetensors_open(argv[1], &a) != LM_OK || lm_safetensors_open(argv[2], &b) != LM_OK) {
        fprintf(stderr, "compare_weights: %s\n", lm_error_message());
        return 2;
    }
    double worst = 0.0;
    const char *worst_name = "";
    size_t differing = 0, total = 0;
    int rc = 0;
    for (size_t i = 0; i < lm_safetensors_count(a) && rc == 0; i++) {
        const char *name;
        lm_tensor ta, tb;
        if (lm_safetensors_at(a, i, &name, &ta) != LM_OK || lm_safetensors_find(b, name, &tb) != LM_OK ||
            ta.dtype != LM_F32 || tb.dtype != LM_F32 || lm_tensor_numel(&ta) != lm_tensor_numel(&tb)) {
            fprintf(stderr, "compare_weights: tensor %zu ('%s') is missing or differs in type or size\n", i,
                    lm_safetensors_count(a) ? "?" : "");
            rc = 2;
            break;
        }
        const float *x = ta.data, *y = tb.data;
        for (int64_t k = 0; k < lm_tensor_numel(&ta); k++, total++) {
            double d = fabs((double)x[k] - (double)y[k]);
            if (memcmp(&x[k], &y[k], sizeof(float)) != 0) differing++;
            if (d > worst || isnan(d)) {
                worst = isnan(d) ? INFINITY : d;
                worst_name = name;
            }
        }
    }
    if (rc == 0) {
        printf("max |a - b| = %.3g (in %s); %zu of %zu values differ in their bits\n", worst, worst_name, differing,
               total);
        rc = (tolerance == 0 ? differing == 0 : worst <= tolerance) ? 0 : 1;
    }
    lm_safetensors_close(a);
    lm_safetensors_close(b);
    return rc;
}
