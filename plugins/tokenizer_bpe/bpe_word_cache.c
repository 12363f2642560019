#include "bpe_word_cache.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS (1u << 16)          /* cleared when half full */
#define CACHE_MAX_BYTES (8u << 20)

void bpe_word_cache_clear(bpe_word_cache *c) {
    if (c->hashes) memset(c->hashes, 0, c->cap * sizeof(*c->hashes));
    c->count = 0;
    c->keys_len = 0;
    c->ids_len_total = 0;
}

int bpe_word_cache_init(bpe_word_cache *c) {
    if (c->hashes) return 1;
    c->cap = CACHE_SLOTS;
    c->hashes = calloc(c->cap, sizeof(*c->hashes));
    c->key_off = malloc(c->cap * sizeof(*c->key_off));
    c->key_len = malloc(c->cap * sizeof(*c->key_len));
    c->ids_off = malloc(c->cap * sizeof(*c->ids_off));
    c->ids_len = malloc(c->cap * sizeof(*c->ids_len));
    c->keys_cap = CACHE_MAX_BYTES;
    c->keys = malloc(c->keys_cap);
    c->ids_cap = CACHE_MAX_BYTES / sizeof(int32_t);
    c->ids = malloc(c->ids_cap * sizeof(int32_t));
    if (!c->hashes || !c->key_off || !c->key_len || !c->ids_off || !c->ids_len || !c->keys || !c->ids) {
        free(c->hashes);
        c->hashes = NULL; /* runs without a cache; the rest is freed at destroy */
        return 0;
    }
    return 1;
}

size_t bpe_word_cache_find(const bpe_word_cache *c, const unsigned char *w, size_t n, uint64_t h) {
    size_t mask = c->cap - 1, i = (size_t)h & mask;
    while (c->hashes[i] != 0) {
        if (c->hashes[i] == h && c->key_len[i] == n && memcmp(c->keys + c->key_off[i], w, n) == 0) return i;
        i = (i + 1) & mask;
    }
    return i;
}

void bpe_word_cache_store(bpe_word_cache *c, size_t slot, uint64_t h, const unsigned char *w, size_t n,
                        const int32_t *ids, size_t n_ids) {
    if (c->count * 2 >= c->cap || c->keys_len + n > c->keys_cap || c->ids_len_total + n_ids > c->ids_cap) {
        bpe_word_cache_clear(c);
        slot = bpe_word_cache_find(c, w, n, h);
    }
    c->hashes[slot] = h;
    c->key_off[slot] = (uint32_t)c->keys_len;
    c->key_len[slot] = (uint32_t)n;
    memcpy(c->keys + c->keys_len, w, n);
    c->keys_len += n;
    c->ids_off[slot] = (uint32_t)c->ids_len_total;
    c->ids_len[slot] = (uint32_t)n_ids;
    if (n_ids) memcpy(c->ids + c->ids_len_total, ids, n_ids * sizeof(int32_t)); /* ids is NULL when 0 */
    c->ids_len_total += n_ids;
    c->count++;
}

void bpe_word_cache_free(bpe_word_cache *c) {
    free(c->hashes);
    free(c->key_off);
    free(c->key_len);
    free(c->ids_off);
    free(c->ids_len);
    free(c->keys);
    free(c->ids);
}
