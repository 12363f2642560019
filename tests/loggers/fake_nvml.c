/* A stand-in for libnvidia-ml.so.1 with the seven entry points lmcore's
 * system metrics use, so the dlopen path is tested on machines without a
 * GPU.  FAKE_NVML_MODE picks a behaviour: "ok" (default), "init_fails",
 * "no_power" (power readings unsupported, as on some boards), "no_device". */
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef struct fake_memory {
    unsigned long long total, free, used;
} fake_memory;
typedef struct fake_utilization {
    unsigned int gpu, memory;
} fake_utilization;

static int mode_is(const char *mode) {
    const char *m = getenv("FAKE_NVML_MODE");
    return strcmp(m ? m : "ok", mode) == 0;
}

static int device_token = 42;
static int initialised = 0;

EXPORT int nvmlInit_v2(void);
EXPORT int nvmlShutdown(void);
EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device);
EXPORT int nvmlDeviceGetUtilizationRates(void *device, fake_utilization *out);
EXPORT int nvmlDeviceGetMemoryInfo(void *device, fake_memory *out);
EXPORT int nvmlDeviceGetPowerUsage(void *device, unsigned int *milliwatts);
EXPORT int nvmlDeviceGetClockInfo(void *device, int type, unsigned int *mhz);

int nvmlInit_v2(void) {
    if (mode_is("init_fails")) return 9; /* NVML_ERROR_DRIVER_NOT_LOADED */
    initialised = 1;
    return 0;
}
int nvmlShutdown(void) {
    initialised = 0;
    return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device) {
    if (!initialised) return 1;
    if (index != 0 || mode_is("no_device")) return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *device = &device_token;
    return 0;
}
int nvmlDeviceGetUtilizationRates(void *device, fake_utilization *out) {
    if (device != &device_token) return 2;
    out->gpu = 87;
    out->memory = 40;
    return 0;
}
int nvmlDeviceGetMemoryInfo(void *device, fake_memory *out) {
    if (device != &device_token) return 2;
    out->total = 80ull << 30;
    out->used = 3ull << 30;
    out->free = out->total - out->used;
    return 0;
}
int nvmlDeviceGetPowerUsage(void *device, unsigned int *milliwatts) {
    if (device != &device_token) return 2;
    if (mode_is("no_power")) return 3; /* NVML_ERROR_NOT_SUPPORTED */
    *milliwatts = 250500;
    return 0;
}
int nvmlDeviceGetClockInfo(void *device, int type, unsigned int *mhz) {
    if (device != &device_token) return 2;
    *mhz = type == 1 ? 1755 : 999; /* NVML_CLOCK_SM = 1 */
    return 0;
}
