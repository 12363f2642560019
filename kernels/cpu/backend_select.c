/* lmkernels — picking a backend from a device string ("cpu", "cuda",
 * "cuda:N", "auto"), and the CUDA entry point of builds without CUDA. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "lmcore/log.h"

#ifndef LM_HAVE_CUDA
lm_status lm_backend_cuda_create(lm_backend **out, int device_index, lm_precision precision) {
    (void)device_index;
    (void)precision;
    *out = NULL;
    return lm_error_set(LM_ERR_UNSUPPORTED,
                        "this lmcore was built without CUDA: rebuild with -DLMCORE_CUDA=ON on a machine with the "
                        "CUDA toolkit");
}
#endif

static const char *precision_name(lm_precision precision) {
    switch (precision) {
    case LM_PRECISION_FP32: return "fp32";
    case LM_PRECISION_TF32: return "tf32";
    case LM_PRECISION_BF16: return "bf16";
    }
    return "unknown";
}

/* The CPU computes in fp32 whatever was asked: a user who named the CPU
 * and another precision is warned; "auto" says it in its info line. */
static lm_status create_cpu(lm_backend **out, lm_precision precision, int cpu_threads, int warn_precision) {
    if (precision != LM_PRECISION_FP32 && warn_precision)
        lm_log(LM_LOG_WARN, "precision %s applies to CUDA only: the CPU backend computes in fp32",
               precision_name(precision));
    return lm_backend_cpu_create(out, cpu_threads);
}

/* "cuda" -> 0, "cuda:N" -> N; anything else is not a CUDA device string. */
static int parse_cuda_index(const char *device, int *index) {
    if (strcmp(device, "cuda") == 0) {
        *index = 0;
        return 1;
    }
    if (strncmp(device, "cuda:", 5) != 0) return 0;
    const char *digits = device + 5;
    if (*digits < '0' || *digits > '9') return 0;
    char *end = NULL;
    errno = 0;
    long value = strtol(digits, &end, 10);
    if (errno != 0 || *end != '\0' || value > 1024) return 0;
    *index = (int)value;
    return 1;
}

lm_status lm_backend_create(lm_backend **out, const char *device, lm_precision precision, int cpu_threads) {
    *out = NULL;
    if (device == NULL || strcmp(device, "auto") == 0) {
        lm_status status = lm_backend_cuda_create(out, 0, precision);
        if (status == LM_OK) {
            lm_log(LM_LOG_INFO, "device auto: using %s", (*out)->ops->describe(*out));
            return LM_OK;
        }
        /* Keep the reason for the log line before the CPU path can overwrite it. */
        char reason[512];
        strncpy(reason, lm_error_message(), sizeof reason - 1);
        reason[sizeof reason - 1] = '\0';
        lm_error_clear();
        LM_TRY(create_cpu(out, precision, cpu_threads, 0));
        /* Training on the CPU is what device=auto means on a machine without
         * a GPU: the reason (no CUDA build, no driver) is for --log-level
         * debug; a precision the CPU cannot honour is worth a line. */
        lm_log(LM_LOG_DEBUG, "device auto: no usable GPU (%s); using %s", reason, (*out)->ops->describe(*out));
        if (precision != LM_PRECISION_FP32)
            lm_log(LM_LOG_INFO, "device auto: no usable GPU, so %s runs in fp32 on %s",
                   precision == LM_PRECISION_BF16 ? "bf16" : "tf32", (*out)->ops->describe(*out));
        return LM_OK;
    }
    if (strcmp(device, "cpu") == 0) return create_cpu(out, precision, cpu_threads, 1);
    int index = 0;
    if (parse_cuda_index(device, &index)) return lm_backend_cuda_create(out, index, precision);
    return lm_error_set(LM_ERR_INVALID, "unknown device '%s': use cpu, cuda, cuda:N (N = GPU index) or auto", device);
}
