/* System metrics: process memory and CPU from Linux, GPU from NVML through
 * dlopen.  NVML's few types are declared here (the ABI of these entry
 * points has been stable since the _v2 names appeared), so lmcore builds
 * without the CUDA toolkit and runs without the driver. */
#include "sysmetrics.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- the part of nvml.h we use ------------------------------------------------ */

typedef int nvml_return;          /* nvmlReturn_t: 0 = NVML_SUCCESS */
typedef struct nvml_device_st *nvml_device; /* nvmlDevice_t */
typedef struct nvml_utilization {  /* nvmlUtilization_t */
    unsigned int gpu;              /* % of the sample period a kernel ran */
    unsigned int memory;           /* % of the period memory was read or written */
} nvml_utilization;
typedef struct nvml_memory {       /* nvmlMemory_t (v1) */
    unsigned long long total, free, used; /* bytes */
} nvml_memory;
enum { NVML_SUCCESS = 0, NVML_CLOCK_SM = 1 }; /* nvmlClockType_t: GRAPHICS 0, SM 1, MEM 2 */

typedef struct nvml_api {
    void *library;
    nvml_return (*init)(void);
    nvml_return (*shutdown)(void);
    nvml_return (*device_by_index)(unsigned int index, nvml_device *device);
    nvml_return (*utilization)(nvml_device device, nvml_utilization *out);
    nvml_return (*memory)(nvml_device device, nvml_memory *out);
    nvml_return (*power)(nvml_device device, unsigned int *milliwatts);
    nvml_return (*clock)(nvml_device device, int clock_type, unsigned int *mhz);
} nvml_api;

struct lm_sysmetrics {
    nvml_api nvml;
    nvml_device device;
    int has_gpu;
    long page_size;
    double last_wall, last_cpu; /* seconds, at the previous sample */
};

/* dlsym returns an object pointer; copying its bytes into the function
 * pointer is the POSIX-sanctioned conversion (as the registry does). */
static int resolve(void *library, const char *name, void *fn_out, size_t fn_size) {
    void *symbol = dlsym(library, name);
    if (!symbol) return 0;
    memcpy(fn_out, &symbol, fn_size);
    return 1;
}

#define RESOLVE(api, field, name) resolve((api)->library, name, &(api)->field, sizeof((api)->field))

/* Loads NVML and finds the device; on any failure leaves the sampler
 * without GPU metrics (a debug line says why, for whoever wonders). */
static void open_nvml(lm_sysmetrics *m, const char *library, int gpu_index) {
    nvml_api *api = &m->nvml;
    api->library = dlopen(library ? library : "libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!api->library) {
        lm_log(LM_LOG_DEBUG, "system metrics: no GPU metrics (%s)", dlerror());
        return;
    }
    if (!RESOLVE(api, init, "nvmlInit_v2") || !RESOLVE(api, shutdown, "nvmlShutdown") ||
        !RESOLVE(api, device_by_index, "nvmlDeviceGetHandleByIndex_v2") ||
        !RESOLVE(api, utilization, "nvmlDeviceGetUtilizationRates") ||
        !RESOLVE(api, memory, "nvmlDeviceGetMemoryInfo") || !RESOLVE(api, power, "nvmlDeviceGetPowerUsage") ||
        !RESOLVE(api, clock, "nvmlDeviceGetClockInfo")) {
        lm_log(LM_LOG_DEBUG, "system metrics: no GPU metrics (the NVML library lacks a needed function)");
        goto close_library;
    }
    nvml_return rc = api->init();
    if (rc != NVML_SUCCESS) {
        lm_log(LM_LOG_DEBUG, "system metrics: no GPU metrics (nvmlInit failed with code %d)", rc);
        goto close_library;
    }
    rc = gpu_index >= 0 ? api->device_by_index((unsigned int)gpu_index, &m->device) : 1;
    if (rc != NVML_SUCCESS) {
        lm_log(LM_LOG_DEBUG, "system metrics: no GPU metrics (NVML has no device %d, code %d)", gpu_index, rc);
        api->shutdown();
        goto close_library;
    }
    m->has_gpu = 1;
    return;
close_library:
    dlclose(api->library);
    memset(api, 0, sizeof *api);
}

static double wall_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_seconds(void) {
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec * 1e-6;
}

lm_status lm_sysmetrics_create(lm_sysmetrics **out, const char *nvml_library, int gpu_index) {
    *out = NULL;
    lm_sysmetrics *m = calloc(1, sizeof *m);
    if (!m) return lm_error_set(LM_ERR_NOMEM, "out of memory creating the system metrics sampler");
    m->page_size = sysconf(_SC_PAGESIZE);
    if (m->page_size <= 0) m->page_size = 4096;
    m->last_wall = wall_seconds();
    m->last_cpu = cpu_seconds();
    open_nvml(m, nvml_library, gpu_index);
    *out = m;
    return LM_OK;
}

void lm_sysmetrics_destroy(lm_sysmetrics *m) {
    if (!m) return;
    if (m->has_gpu) {
        m->nvml.shutdown();
        dlclose(m->nvml.library);
    }
    free(m);
}

int lm_sysmetrics_has_gpu(const lm_sysmetrics *m) { return m && m->has_gpu; }

/* statm's second field: resident pages. */
static lm_status resident_mb(const lm_sysmetrics *m, double *mb) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return lm_error_set(LM_ERR_IO, "system metrics: cannot open /proc/self/statm: %s", strerror(errno));
    unsigned long long size_pages = 0, resident_pages = 0;
    int fields = fscanf(f, "%llu %llu", &size_pages, &resident_pages);
    fclose(f);
    if (fields != 2) return lm_error_set(LM_ERR_FORMAT, "system metrics: /proc/self/statm has an unexpected format");
    *mb = (double)resident_pages * (double)m->page_size / (1024.0 * 1024.0);
    return LM_OK;
}

static void push(lm_scalar *out, size_t *n, const char *name, double value) {
    out[*n].name = name;
    out[*n].value = value;
    (*n)++;
}

lm_status lm_sysmetrics_sample(lm_sysmetrics *m, lm_scalar *out, size_t cap, size_t *n) {
    *n = 0;
    if (cap < LM_SYSMETRICS_MAX)
        return lm_error_set(LM_ERR_INVALID, "system metrics: the output array holds %zu scalars, it needs %d", cap,
                            LM_SYSMETRICS_MAX);
    double rss = 0;
    LM_TRY(resident_mb(m, &rss));
    push(out, n, LM_SYSMETRIC_RSS_MB, rss);

    double wall = wall_seconds(), cpu = cpu_seconds();
    double dt = wall - m->last_wall;
    push(out, n, LM_SYSMETRIC_CPU_PERCENT, dt > 0 ? 100.0 * (cpu - m->last_cpu) / dt : 0.0);
    m->last_wall = wall;
    m->last_cpu = cpu;

    if (!m->has_gpu) return LM_OK;
    nvml_utilization util;
    if (m->nvml.utilization(m->device, &util) == NVML_SUCCESS) push(out, n, LM_SYSMETRIC_GPU_UTIL, util.gpu);
    nvml_memory memory;
    if (m->nvml.memory(m->device, &memory) == NVML_SUCCESS)
        push(out, n, LM_SYSMETRIC_GPU_MEMORY_MB, (double)memory.used / (1024.0 * 1024.0));
    unsigned int milliwatts;
    if (m->nvml.power(m->device, &milliwatts) == NVML_SUCCESS)
        push(out, n, LM_SYSMETRIC_GPU_POWER_W, milliwatts / 1000.0);
    unsigned int mhz;
    if (m->nvml.clock(m->device, NVML_CLOCK_SM, &mhz) == NVML_SUCCESS)
        push(out, n, LM_SYSMETRIC_GPU_SM_CLOCK_MHZ, mhz);
    return LM_OK;
}
