/* What the emulation suites share: "device" memory with guard pages, the
 * emulated context, random inputs, and the comparisons with the CPU twins.
 * Not force-included with emu_cuda.h: the suites are ordinary C++ that
 * call the kernels' host functions (lm_cuda_*) as the CUDA backend does. */
#ifndef LM_EMULATE_UTIL_H
#define LM_EMULATE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <vector>

typedef struct lm_cuda_ctx lm_cuda_ctx;

/* "Device" memory: `bytes` starting `offset` bytes past a 16-byte boundary,
 * ending less than 16 bytes before an inaccessible page (a read or write
 * past the end faults), the bytes around it canaries (emu_guards_intact).
 * Filled with all bits set (NaN). */
void *emu_alloc(size_t bytes, size_t offset);
void emu_free(void *p);
/* Whether the canaries around p (an emu_alloc block) are untouched. */
bool emu_guards_intact(const void *p);

/* A float buffer of n in emulated device memory, `offset` floats past a
 * 16-byte boundary, freed with the object. */
struct emu_floats {
    float *p;
    size_t n;
    emu_floats(size_t n_, size_t offset = 0);
    ~emu_floats();
    emu_floats(const emu_floats &) = delete;
    emu_floats &operator=(const emu_floats &) = delete;
    void fill(float v);
    void set(const std::vector<float> &v);
    std::vector<float> get() const;
    bool guards_intact() const { return emu_guards_intact(p); }
};

lm_cuda_ctx *emu_ctx_create(void);
void emu_ctx_destroy(lm_cuda_ctx *ctx);
size_t emu_ctx_scratch_bytes(const lm_cuda_ctx *ctx);
void emu_ctx_set_scratch_bytes(lm_cuda_ctx *ctx, size_t bytes);
void emu_ctx_poison_scratch(lm_cuda_ctx *ctx);
/* The failure an op kept, as lm_cuda_ctx_check words it; 0 when none. */
int emu_ctx_take_error(lm_cuda_ctx *ctx, char *message, size_t size);

/* The kernels launched (their addresses) since the last call, in order:
 * which path the host code took. */
std::vector<const void *> emu_launched_kernels(void);
bool emu_launched(const std::vector<const void *> &launched, const void *kernel);

/* Uniform floats in [lo, hi) from a fixed generator (the same inputs every run). */
float emu_uniform(float lo, float hi);
std::vector<float> emu_uniform_vector(size_t n, float lo, float hi);

/* Worst |got - want| / (|want| + rms(want)) (a norm-relative error; 0 for
 * equal infinities, infinite for a NaN or a mismatched infinity). */
double emu_worst_error(const float *got, const float *want, size_t n);
/* emu_worst_error of what two ops ADDED into a buffer that held `before`
 * (gradients an op accumulates): got_after - before against want_after -
 * before; `worst` returned if larger (or NaN-poisoned), so that a loop over
 * buffers keeps the worst. */
double emu_worst_added_error(double worst, const float *got_after, const float *want_after, const float *before,
                             size_t n);
/* Index of the first element whose bits differ, or -1. */
long emu_first_bit_difference(const float *got, const float *want, size_t n);

/* One case's verdict: prints "ok  " or "FAIL" and the text; returns ok. */
bool emu_report(bool ok, const char *format, ...) __attribute__((format(printf, 2, 3)));

#endif
