/* Hash tables of the BPE plugin: byte strings -> int32 and uint64 -> uint64.
 * Open addressing with linear probing, power-of-two capacity, load <= 1/2. */
#ifndef BPE_HASH_H
#define BPE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lmcore/status.h>

/* A fast hash for short keys (tokens, words): 8 bytes at a time, finished
 * with a murmur-style mix.  Not for fingerprints (use lm_hash64). */
static inline uint64_t bpe_hash_bytes(const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (len * 0xFF51AFD7ED558CCDull);
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    for (size_t i = 0; i < len; i++) tail |= (uint64_t)p[i] << (8 * i);
    h = (h ^ tail) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    return h;
}

static inline uint64_t bpe_hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

/* Byte string -> int32.  Keys are copied into the map's own arena. */
typedef struct bpe_strmap_slot {
    uint32_t hash_tag; /* high 32 bits of the hash, to skip most memcmp */
    uint32_t key_len;
    uint64_t key_off; /* into arena */
    int32_t value;
    int32_t used;
} bpe_strmap_slot;

typedef struct bpe_strmap {
    bpe_strmap_slot *slots;
    size_t cap, count;
    char *arena;
    size_t arena_len, arena_cap;
} bpe_strmap;

void bpe_strmap_free(bpe_strmap *m);
/* The value, or -1 when the key is absent. */
int32_t bpe_strmap_get(const bpe_strmap *m, const void *key, size_t len);
/* Inserts or replaces. */
lm_status bpe_strmap_put(bpe_strmap *m, const void *key, size_t len, int32_t value);
/* Inserts key with *value when absent; else sets *value to the stored one
 * and *inserted to 0. */
lm_status bpe_strmap_intern(bpe_strmap *m, const void *key, size_t len, int32_t *value, int *inserted);
/* The key bytes of an occupied slot. */
static inline const char *bpe_strmap_slot_key(const bpe_strmap *m, const bpe_strmap_slot *s) {
    return m->arena + s->key_off;
}

/* uint64 -> uint64; the key UINT64_MAX is reserved (marks empty slots). */
#define BPE_U64MAP_EMPTY UINT64_MAX
typedef struct bpe_u64map {
    uint64_t *keys;
    uint64_t *values;
    size_t cap, count;
} bpe_u64map;

void bpe_u64map_free(bpe_u64map *m);
lm_status bpe_u64map_put(bpe_u64map *m, uint64_t key, uint64_t value);
/* Returns 1 and sets *value when found. */
static inline int bpe_u64map_get(const bpe_u64map *m, uint64_t key, uint64_t *value) {
    if (m->cap == 0) return 0;
    size_t mask = m->cap - 1;
    size_t i = (size_t)bpe_hash_u64(key) & mask;
    for (;;) {
        uint64_t k = m->keys[i];
        if (k == key) {
            *value = m->values[i];
            return 1;
        }
        if (k == BPE_U64MAP_EMPTY) return 0;
        i = (i + 1) & mask;
    }
}

#endif
