/* System metrics for the training loggers: what the process and the GPU
 * are doing while a run trains.  Core-internal (the trainer samples them
 * and adds them to its STEP events).
 *
 * Process metrics are always there (Linux /proc and getrusage); GPU metrics
 * come from NVML, loaded with dlopen at create time, so lmcore neither links
 * against the NVIDIA driver nor needs it: without libnvidia-ml (a CPU
 * machine) the GPU metrics are simply absent from the sample. */
#ifndef LMCORE_SYSMETRICS_H
#define LMCORE_SYSMETRICS_H

#include <stddef.h>

#include "lmcore/lmcore.h"

/* Most scalars one sample can hold: size the `out` array with it. */
#define LM_SYSMETRICS_MAX 6

/* Scalar names, as the loggers show them (TensorBoard: train/<name>). */
#define LM_SYSMETRIC_RSS_MB "rss_mb"                     /* resident set size, MiB */
#define LM_SYSMETRIC_CPU_PERCENT "cpu_percent"           /* user+system time / wall time, 100 = one core */
#define LM_SYSMETRIC_GPU_UTIL "gpu_utilization"          /* % of time a kernel ran (NVML) */
#define LM_SYSMETRIC_GPU_MEMORY_MB "gpu_memory_mb"       /* device memory in use, MiB (all processes) */
#define LM_SYSMETRIC_GPU_POWER_W "gpu_power_w"           /* board power draw, watts */
#define LM_SYSMETRIC_GPU_SM_CLOCK_MHZ "gpu_sm_clock_mhz" /* current SM clock */

typedef struct lm_sysmetrics lm_sysmetrics;

/* nvml_library: the NVML shared object to try (NULL: "libnvidia-ml.so.1");
 * gpu_index: NVML's device index (NVML numbers every GPU of the machine and
 * ignores CUDA_VISIBLE_DEVICES).  A missing library, a failed nvmlInit or a
 * missing device is not an error: the sampler then reports process metrics
 * only.  Fails only when out of memory. */
LM_API lm_status lm_sysmetrics_create(lm_sysmetrics **out, const char *nvml_library, int gpu_index);
LM_API void lm_sysmetrics_destroy(lm_sysmetrics *m); /* NULL is fine */
/* 1 when NVML was loaded and the device found. */
LM_API int lm_sysmetrics_has_gpu(const lm_sysmetrics *m);

/* Writes up to LM_SYSMETRICS_MAX scalars into out[0 .. *n): rss_mb,
 * cpu_percent (since the previous sample, or since create for the first),
 * then the GPU metrics NVML could read.  Names are static strings.  A GPU
 * query that fails (power readings are unsupported on some boards) only
 * leaves that metric out.  LM_ERR_INVALID if cap < LM_SYSMETRICS_MAX;
 * LM_ERR_IO if /proc/self/statm cannot be read. */
LM_API lm_status lm_sysmetrics_sample(lm_sysmetrics *m, lm_scalar *out, size_t cap, size_t *n);

#endif
