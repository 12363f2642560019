/* emulate_util.h's helpers. */
#include "emulate_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <mutex>

namespace {

struct allocation {
    unsigned char *base; /* mapping: guard page, data pages, guard page */
    size_t total, bytes;
    unsigned char *data_begin, *data_end; /* the accessible pages */
};

std::mutex allocations_lock;
std::map<const void *, allocation> allocations;
const size_t kPage = 4096;
const unsigned char kCanary = 0xa5;

} /* namespace */

void *emu_alloc(size_t bytes, size_t offset) {
    const size_t data_pages = (bytes + offset + 16 + kPage - 1) / kPage + 1;
    const size_t total = (data_pages + 2) * kPage;
    void *map = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "emulator: cannot map %zu bytes of device memory\n", total);
        abort();
    }
    allocation a;
    a.base = (unsigned char *)map;
    a.total = total;
    a.bytes = bytes;
    a.data_begin = a.base + kPage;
    a.data_end = a.data_begin + data_pages * kPage;
    mprotect(a.base, kPage, PROT_NONE);
    mprotect(a.data_end, kPage, PROT_NONE);
    memset(a.data_begin, kCanary, data_pages * kPage);
    /* The end as close to the guard page as the start's alignment allows. */
    const uintptr_t end = (uintptr_t)a.data_end;
    unsigned char *p = (unsigned char *)(((end - bytes - offset) & ~(uintptr_t)15) + offset);
    memset(p, 0xff, bytes);
    std::lock_guard<std::mutex> hold(allocations_lock);
    allocations[p] = a;
    return p;
}

void emu_free(void *p) {
    if (!p) return;
    std::lock_guard<std::mutex> hold(allocations_lock);
    auto it = allocations.find(p);
    if (it == allocations.end()) abort();
    munmap(it->second.base, it->second.total);
    allocations.erase(it);
}

bool emu_guards_intact(const void *p) {
    std::lock_guard<std::mutex> hold(allocations_lock);
    auto it = allocations.find(p);
    if (it == allocations.end()) return false;
    const allocation &a = it->second;
    const unsigned char *begin = (const unsigned char *)p, *end = begin + a.bytes;
    for (const unsigned char *q = begin - 64 < a.data_begin ? a.data_begin : begin - 64; q < begin; q++)
        if (*q != kCanary) return false;
    for (const unsigned char *q = end; q < a.data_end; q++)
        if (*q != kCanary) return false;
    return true;
}

emu_floats::emu_floats(size_t n_, size_t offset) : p((float *)emu_alloc(n_ * sizeof(float), offset * sizeof(float))), n(n_) {}
emu_floats::~emu_floats() { emu_free(p); }
void emu_floats::fill(float v) {
    for (size_t i = 0; i < n; i++) p[i] = v;
}
void emu_floats::set(const std::vector<float> &v) { memcpy(p, v.data(), n * sizeof(float)); }
std::vector<float> emu_floats::get() const { return std::vector<float>(p, p + n); }

static uint64_t rng_state = 12345;

float emu_uniform(float lo, float hi) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

std::vector<float> emu_uniform_vector(size_t n, float lo, float hi) {
    std::vector<float> v(n);
    for (float &x : v) x = emu_uniform(lo, hi);
    return v;
}

double emu_worst_error(const float *got, const float *want, size_t n) {
    double sum_sq = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(want[i])) sum_sq += (double)want[i] * want[i];
    const double rms = sqrt(sum_sq / (double)(n ? n : 1)) + 1e-30;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isinf(want[i]) || isinf(got[i])) {
            if (got[i] != want[i]) return INFINITY;
            continue;
        }
        const double err = fabs((double)got[i] - want[i]) / (fabs((double)want[i]) + rms);
        if (!(err <= worst)) worst = isnan(err) ? INFINITY : err;
    }
    return worst;
}

double emu_worst_added_error(double worst, const float *got_after, const float *want_after, const float *before,
                             size_t n) {
    std::vector<float> got(n), want(n);
    for (size_t j = 0; j < n; j++) {
        got[j] = got_after[j] - before[j];
        want[j] = want_after[j] - before[j];
    }
    const double e = emu_worst_error(got.data(), want.data(), n);
    return e > worst || isnan(e) ? e : worst;
}

long emu_first_bit_difference(const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0) return (long)i;
    return -1;
}

bool emu_report(bool ok, const char *format, ...) {
    printf("%s ", ok ? "ok  " : "FAIL");
    va_list ap;
    va_start(ap, format);
    vprintf(format, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return ok;
}

bool emu_launched(const std::vector<const void *> &launched, const void *kernel) {
    for (const void *k : launched)
        if (k == kernel) return true;
    return false;
}
