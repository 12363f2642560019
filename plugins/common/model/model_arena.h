/* Carving one allocation into the activation buffers of a batch shape.
 *
 * An architecture keeps its activations in one allocation per model (on a
 * GPU an allocation is slow and synchronises; one arena, grown only when a
 * larger batch shape arrives, costs nothing per step) and lays the buffers
 * out in it twice: first without a base, to count the floats needed, then
 * with the allocated base, to assign them.  Every buffer starts on a 256-byte
 * boundary (64 floats): vectorised kernels want 64, and cuBLASLt picks its
 * algorithm by each matrix's alignment up to 256 bytes, so only then is
 * that alignment the same wherever a buffer lies: the same algorithm and
 * the same bits whatever the layout (recompute= moves buffers around). */
#ifndef LM_PLUGIN_MODEL_ARENA_H
#define LM_PLUGIN_MODEL_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "model_device.h"

/* n floats rounded up to whole 256-byte blocks. */
static inline size_t model_arena_round(size_t n) { return (n + 63) & ~(size_t)63; }

typedef struct model_arena {
    float *base; /* NULL: only count */
    size_t used; /* floats */
} model_arena;

/* The next n floats (NULL while counting). */
static inline float *model_arena_take(model_arena *a, size_t n) {
    float *p = a->base ? a->base + a->used : NULL;
    a->used += model_arena_round(n);
    return p;
}

/* Floats holding n bf16 values (uint16_t): the arena counts floats. */
static inline size_t model_arena_floats_for_bf16(size_t n) { return (n + 1) / 2; }

/* The next n bf16 values (NULL while counting). */
static inline uint16_t *model_arena_take_bf16(model_arena *a, size_t n) {
    return (uint16_t *)(void *)model_arena_take(a, model_arena_floats_for_bf16(n));
}

/* A per-layer buffer of n floats: `shared` (taken once by the caller) when
 * every layer shares one, else its own.  `share` decides, not whether
 * `shared` is NULL: while counting, every taken pointer is NULL. */
static inline float *model_arena_take_or_share(model_arena *a, int share, float *shared, size_t n) {
    return share ? shared : model_arena_take(a, n);
}

/* model_arena_take_or_share for n bf16 values. */
static inline uint16_t *model_arena_take_or_share_bf16(model_arena *a, int share, uint16_t *shared, size_t n) {
    return share ? shared : model_arena_take_bf16(a, n);
}

/* The attention probabilities in a carve: for every layer [B,NH,T,T]
 * floats before dropout (preatt) and after it (att), or one buffer of each
 * for all layers under `recompute` (model_device.h: att with activations,
 * preatt too with attention).  Without attention dropout the probabilities
 * after it do not exist: every user reads preatt (the dropout p is then
 * 0), and att aliases it. */
typedef struct model_arena_probs {
    size_t size; /* floats of one buffer */
    int share_att, share_preatt, dropout;
    float *att, *preatt; /* the buffers all layers share (when they do) */
    size_t scratch_size; /* floats of the attention backward's scratch (model_attention_carve) */
} model_arena_probs;

/* Takes the shared buffers (when recompute shares them). */
static inline model_arena_probs model_arena_probs_begin(model_arena *a, model_recompute recompute, int dropout,
                                                        size_t size) {
    model_arena_probs p = {size, recompute >= MODEL_RECOMPUTE_ACTIVATIONS, recompute >= MODEL_RECOMPUTE_ATTENTION,
                           dropout, NULL, NULL, 0};
    p.att = p.share_att && dropout ? model_arena_take(a, size) : NULL;
    p.preatt = p.share_preatt ? model_arena_take(a, size) : NULL;
    return p;
}

/* One layer's preatt and att. */
static inline void model_arena_probs_layer(model_arena *a, const model_arena_probs *p, float **preatt, float **att) {
    *preatt = model_arena_take_or_share(a, p->share_preatt, p->preatt, p->size);
    *att = p->dropout ? model_arena_take_or_share(a, p->share_att, p->att, p->size) : *preatt;
}

#endif
