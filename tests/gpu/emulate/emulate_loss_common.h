/* What the loss suites (emulate_crossentropy.cpp, emulate_bf16_loss.cpp)
 * share (emulate_embedding.cpp uses its emu_array): the shapes, the labels and the logits of a case, device buffers of
 * any element type, and a comparison that lets NaN agree with NaN (a NaN
 * logit's row has a NaN loss on both sides: that is the defined result). */
#ifndef LM_EMULATE_LOSS_COMMON_H
#define LM_EMULATE_LOSS_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <vector>

#include "emulate_util.h"

/* A batch of N rows, V scored columns, `stride` elements apart. */
struct loss_case {
    const char *name;
    int N, V, stride;
    int labels;          /* LABELS_MIXED, LABELS_ALL_IGNORED, LABELS_SPECIAL or LABELS_BOUNDARIES */
    int logits_offset;   /* elements past a 16-byte boundary (misaligns every row) */
};

enum { LABELS_MIXED, LABELS_ALL_IGNORED, LABELS_SPECIAL, LABELS_BOUNDARIES };

/* Where the fused kernel (crossentropy_forward_backward.cu) cuts row n: a
 * scalar head up to the row's first 16-byte boundary (clamped to V), then
 * 16-byte vectors of `vec_elems` elements (4 floats, 8 bf16), then the
 * tail, which starts at the returned column.  Row n starts
 * logits_offset + n * stride elements past a 16-byte boundary (emu_array). */
static inline void loss_row_cuts(const loss_case &c, int n, int vec_elems, int *head, int *tail) {
    const int misaligned = (int)(((long)c.logits_offset + (long)n * c.stride) % vec_elems);
    *head = misaligned == 0 ? 0 : vec_elems - misaligned;
    if (*head > c.V) *head = c.V;
    *tail = *head + (c.V - *head) / vec_elems * vec_elems;
}

/* Labels: mixed rows have -100 (every 5th from 3) and V (out of range,
 * every 7th from 5) among the scored ones, which cover columns 0 and V-1.
 * LABELS_BOUNDARIES: each row's label sits at a cut of the fused kernel's
 * split for vectors of vec_elems elements, in turn the last column of the
 * head, the first of the body, the last of the body, the first of the tail
 * (clamped into [0, V): a cut that does not exist in a row gives a column
 * beside it); every 7th row from 5 is unscored (V). */
static inline std::vector<int32_t> loss_labels(const loss_case &c, int vec_elems = 4) {
    std::vector<int32_t> labels((size_t)c.N);
    for (int n = 0; n < c.N; n++) {
        int32_t label = (int32_t)(((long)n * 7919 + 3) % c.V);
        if (n == 0) label = 0;
        if (n == 1) label = c.V - 1;
        if (c.N > 4 && n % 5 == 3) label = -100;
        if (c.N > 6 && n % 7 == 5) label = c.V;
        if (c.labels == LABELS_ALL_IGNORED) label = n % 2 ? -100 : c.V;
        if (c.labels == LABELS_BOUNDARIES) {
            int head, tail;
            loss_row_cuts(c, n, vec_elems, &head, &tail);
            const int cuts[4] = {head - 1, head, tail - 1, tail};
            label = cuts[n % 4];
            if (label < 0) label = 0;
            if (label >= c.V) label = c.V - 1;
            if (n % 7 == 5) label = c.V;
        }
        labels[(size_t)n] = label;
    }
    return labels;
}

static inline int64_t loss_targets(const std::vector<int32_t> &labels, int V) {
    int64_t n = 0;
    for (int32_t l : labels) n += l >= 0 && l < V;
    return n;
}

/* Logits in [-4, 4); the padding columns hold 9 (larger than any scored
 * logit: a kernel that read them would move the max).  LABELS_SPECIAL:
 * row 0 has a NaN logit, row 1 a +inf, row 2 some -inf columns (not its
 * label), row 3 its label at -inf. */
static inline std::vector<float> loss_logits(const loss_case &c, const std::vector<int32_t> &labels) {
    std::vector<float> x((size_t)c.N * c.stride);
    for (int n = 0; n < c.N; n++)
        for (int j = 0; j < c.stride; j++) x[(size_t)n * c.stride + j] = j < c.V ? emu_uniform(-4, 4) : 9.0f;
    if (c.labels == LABELS_SPECIAL && c.N >= 4 && c.V >= 4) {
        x[(size_t)0 * c.stride + c.V / 2] = NAN;
        x[(size_t)1 * c.stride + c.V / 3] = INFINITY;
        for (int j = 0; j < c.V; j += 3)
            if (j != labels[2]) x[(size_t)2 * c.stride + j] = -INFINITY;
        if (labels[3] >= 0 && labels[3] < c.V) x[(size_t)3 * c.stride + labels[3]] = -INFINITY;
    }
    return x;
}

/* "Device" memory of n elements of T, `offset` elements past a 16-byte
 * boundary (emu_alloc: guard page after it, canaries around it). */
template <typename T> struct emu_array {
    T *p;
    size_t n;
    emu_array(size_t n_, size_t offset = 0) : p((T *)emu_alloc(n_ * sizeof(T), offset * sizeof(T))), n(n_) {}
    ~emu_array() { emu_free(p); }
    emu_array(const emu_array &) = delete;
    emu_array &operator=(const emu_array &) = delete;
    void set(const std::vector<T> &v) { memcpy(p, v.data(), n * sizeof(T)); }
    std::vector<T> get() const { return std::vector<T>(p, p + n); }
    bool guards_intact() const { return emu_guards_intact(p); }
};

/* emu_worst_error, with a NaN agreeing only with a NaN (infinite error
 * otherwise). */
static inline double loss_worst_error(const float *got, const float *want, size_t n) {
    std::vector<float> g(got, got + n), w(want, want + n);
    for (size_t i = 0; i < n; i++) {
        if (isnan(g[i]) != isnan(w[i])) return INFINITY;
        if (isnan(w[i])) g[i] = w[i] = 0.0f;
    }
    return emu_worst_error(g.data(), w.data(), n);
}

/* Whether got has want's bits at every element that `where` selects. */
template <typename T, typename F> bool loss_bits_where(const T *got, const T *want, size_t n, F where) {
    for (size_t i = 0; i < n; i++)
        if (where(i) && memcmp(&got[i], &want[i], sizeof(T)) != 0) return false;
    return true;
}

#endif
