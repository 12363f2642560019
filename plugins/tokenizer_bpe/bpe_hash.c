/* Open-addressing hash tables for the BPE plugin (see bpe_hash.h). */
#include "bpe_hash.h"

#include <stdlib.h>

void bpe_strmap_free(bpe_strmap *m) {
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof(*m));
}

static bpe_strmap_slot *strmap_find(const bpe_strmap *m, const void *key, size_t len, uint64_t h) {
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    uint32_t tag = (uint32_t)(h >> 32);
    for (;;) {
        bpe_strmap_slot *s = &m->slots[i];
        if (!s->used) return s;
        if (s->hash_tag == tag && s->key_len == len && memcmp(m->arena + s->key_off, key, len) == 0)
            return s;
        i = (i + 1) & mask;
    }
}

static lm_status strmap_grow(bpe_strmap *m) {
    size_t new_cap = m->cap ? m->cap * 2 : 64;
    bpe_strmap_slot *slots = calloc(new_cap, sizeof(*slots));
    if (!slots) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory growing a hash table to %zu slots", new_cap);
    bpe_strmap old = *m;
    m->slots = slots;
    m->cap = new_cap;
    for (size_t i = 0; i < old.cap; i++) {
        bpe_strmap_slot *s = &old.slots[i];
        if (!s->used) continue;
        uint64_t h = bpe_hash_bytes(m->arena + s->key_off, s->key_len);
        *strmap_find(m, m->arena + s->key_off, s->key_len, h) = *s;
    }
    free(old.slots);
    return LM_OK;
}

int32_t bpe_strmap_get(const bpe_strmap *m, const void *key, size_t len) {
    if (m->cap == 0) return -1;
    const bpe_strmap_slot *s = strmap_find(m, key, len, bpe_hash_bytes(key, len));
    return s->used ? s->value : -1;
}

lm_status bpe_strmap_intern(bpe_strmap *m, const void *key, size_t len, int32_t *value, int *inserted) {
    if (len > UINT32_MAX) return lm_error_set(LM_ERR_INVALID, "BPE tokenizer: a %zu-byte token is too long", len);
    if ((m->count + 1) * 2 > m->cap) LM_TRY(strmap_grow(m));
    uint64_t h = bpe_hash_bytes(key, len);
    bpe_strmap_slot *s = strmap_find(m, key, len, h);
    if (s->used) {
        *value = s->value;
        if (inserted) *inserted = 0;
        return LM_OK;
    }
    if (m->arena_len + len + 1 > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 4096;
        while (cap < m->arena_len + len + 1) cap *= 2;
        char *arena = realloc(m->arena, cap);
        if (!arena) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory storing %zu bytes of keys", cap);
        m->arena = arena;
        m->arena_cap = cap;
    }
    if (len) memcpy(m->arena + m->arena_len, key, len);
    m->arena[m->arena_len + len] = '\0';
    s->used = 1;
    s->hash_tag = (uint32_t)(h >> 32);
    s->key_len = (uint32_t)len;
    s->key_off = m->arena_len;
    s->value = *value;
    m->arena_len += len + 1;
    m->count++;
    if (inserted) *inserted = 1;
    return LM_OK;
}

lm_status bpe_strmap_put(bpe_strmap *m, const void *key, size_t len, int32_t value) {
    int32_t v = value;
    int inserted = 0;
    LM_TRY(bpe_strmap_intern(m, key, len, &v, &inserted));
    if (!inserted) {
        bpe_strmap_slot *s = strmap_find(m, key, len, bpe_hash_bytes(key, len));
        s->value = value;
    }
    return LM_OK;
}

void bpe_u64map_free(bpe_u64map *m) {
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof(*m));
}

static size_t u64map_slot(const bpe_u64map *m, uint64_t key) {
    size_t mask = m->cap - 1;
    size_t i = (size_t)bpe_hash_u64(key) & mask;
    while (m->keys[i] != key && m->keys[i] != BPE_U64MAP_EMPTY) i = (i + 1) & mask;
    return i;
}

lm_status bpe_u64map_put(bpe_u64map *m, uint64_t key, uint64_t value) {
    if ((m->count + 1) * 2 > m->cap) {
        size_t new_cap = m->cap ? m->cap * 2 : 64;
        uint64_t *keys = malloc(new_cap * sizeof(*keys));
        uint64_t *values = malloc(new_cap * sizeof(*values));
        if (!keys || !values) {
            free(keys);
            free(values);
            return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory growing a hash table to %zu slots", new_cap);
        }
        memset(keys, 0xFF, new_cap * sizeof(*keys));
        bpe_u64map old = *m;
        m->keys = keys;
        m->values = values;
        m->cap = new_cap;
        for (size_t i = 0; i < old.cap; i++) {
            if (old.keys[i] == BPE_U64MAP_EMPTY) continue;
            size_t j = u64map_slot(m, old.keys[i]);
            m->keys[j] = old.keys[i];
            m->values[j] = old.values[i];
        }
        free(old.keys);
        free(old.values);
    }
    size_t i = u64map_slot(m, key);
    if (m->keys[i] == BPE_U64MAP_EMPTY) {
        m->keys[i] = key;
        m->count++;
    }
    m->values[i] = value;
    return LM_OK;
}
