/* Token <-> id tables: an arena of token bytes, a span per id and an
 * open-addressing hash index (load factor <= 1/2). */
#include <stdlib.h>
#include <string.h>

#include "wordpiece.h"

#define HOLE UINT64_MAX

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: tokens are short */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

void wp_vocab_free(wp_vocab *v) {
    free(v->arena);
    free(v->spans);
    free(v->slots);
    memset(v, 0, sizeof *v);
}

const char *wp_vocab_token(const wp_vocab *v, int32_t id, size_t *len) {
    if (id < 0 || id >= v->count || v->spans[id] == HOLE) return NULL;
    uint64_t span = v->spans[id];
    if (len) *len = (size_t)(span & WP_MAX_TOKEN_BYTES);
    return v->arena + (span >> 24);
}

int32_t wp_vocab_find(const wp_vocab *v, const char *token, size_t len) {
    if (!v->slots) return -1;
    size_t i = (size_t)hash_bytes(token, len) & v->slot_mask;
    for (;;) {
        int32_t id = v->slots[i];
        if (id < 0) return -1;
        uint64_t span = v->spans[id];
        if ((size_t)(span & WP_MAX_TOKEN_BYTES) == len && memcmp(v->arena + (span >> 24), token, len) == 0)
            return id;
        i = (i + 1) & v->slot_mask;
    }
}

static lm_status rehash(wp_vocab *v, size_t n_slots) {
    int32_t *slots = malloc(n_slots * sizeof *slots);
    if (!slots) return lm_error_set(LM_ERR_NOMEM, "out of memory growing the WordPiece vocabulary index");
    memset(slots, 0xff, n_slots * sizeof *slots);
    size_t mask = n_slots - 1;
    for (int32_t id = 0; id < v->count; id++) {
        if (v->spans[id] == HOLE) continue;
        size_t len;
        const char *tok = wp_vocab_token(v, id, &len);
        size_t i = (size_t)hash_bytes(tok, len) & mask;
        while (slots[i] >= 0) i = (i + 1) & mask;
        slots[i] = id;
    }
    free(v->slots);
    v->slots = slots;
    v->slot_mask = mask;
    return LM_OK;
}

/* Makes room for ids up to `id` and one more distinct token. */
static lm_status reserve(wp_vocab *v, int32_t id, size_t token_len) {
    if (token_len > WP_MAX_TOKEN_BYTES)
        return lm_error_set(LM_ERR_INVALID, "a WordPiece token of %zu bytes is too long (limit %u)", token_len,
                            WP_MAX_TOKEN_BYTES);
    if (id >= v->cap) {
        int32_t cap = v->cap ? v->cap : 256;
        while (cap <= id) cap *= 2;
        uint64_t *spans = realloc(v->spans, (size_t)cap * sizeof *spans);
        if (!spans) return lm_error_set(LM_ERR_NOMEM, "out of memory growing the WordPiece vocabulary");
        for (int32_t i = v->cap; i < cap; i++) spans[i] = HOLE;
        v->spans = spans;
        v->cap = cap;
    }
    if (v->arena_len + token_len + 1 > v->arena_cap) {
        size_t cap = v->arena_cap ? v->arena_cap : 4096;
        while (cap < v->arena_len + token_len + 1) cap *= 2;
        char *arena = realloc(v->arena, cap);
        if (!arena) return lm_error_set(LM_ERR_NOMEM, "out of memory growing the WordPiece vocabulary");
        v->arena = arena;
        v->arena_cap = cap;
    }
    if ((size_t)(v->distinct + 1) * 2 > (v->slots ? v->slot_mask + 1 : 0)) {
        size_t n = v->slots ? (v->slot_mask + 1) * 2 : 1024;
        while ((size_t)(v->distinct + 1) * 2 > n) n *= 2;
        LM_TRY(rehash(v, n));
    }
    return LM_OK;
}

lm_status wp_vocab_put(wp_vocab *v, const char *token, size_t len, int32_t id) {
    if (id < 0) return lm_error_set(LM_ERR_INVALID, "negative token id %d", (int)id);
    LM_TRY(reserve(v, id, len));
    if (id < v->count && v->spans[id] != HOLE)
        return lm_error_set(LM_ERR_INVALID, "token id %d is used twice", (int)id);
    if (wp_vocab_find(v, token, len) >= 0)
        return lm_error_set(LM_ERR_INVALID, "token '%.*s' appears twice", (int)(len > 64 ? 64 : len), token);
    if (len) memcpy(v->arena + v->arena_len, token, len);
    v->spans[id] = ((uint64_t)v->arena_len << 24) | len;
    v->arena_len += len;
    v->arena[v->arena_len] = '\0'; /* not counted: keeps each token printable */
    v->arena_len += 1;
    if (id >= v->count) v->count = id + 1;
    v->distinct++;
    size_t i = (size_t)hash_bytes(token, len) & v->slot_mask;
    while (v->slots[i] >= 0) i = (i + 1) & v->slot_mask;
    v->slots[i] = id;
    return LM_OK;
}

lm_status wp_vocab_push(wp_vocab *v, const char *token, size_t len, int32_t *id) {
    int32_t next = v->count;
    LM_TRY(wp_vocab_put(v, token, len, next));
    if (id) *id = next;
    return LM_OK;
}
