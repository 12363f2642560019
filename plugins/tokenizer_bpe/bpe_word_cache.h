/* The BPE tokenizer's word cache: words already encoded, keyed by their
 * bytes, so that the frequent words of a corpus are merged once (HF
 * tokenizers' BPE keeps such a cache too).  Bounded in slots and bytes and
 * cleared when full. */
#ifndef LM_BPE_WORD_CACHE_H
#define LM_BPE_WORD_CACHE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define BPE_CACHE_MAX_WORD 256 /* longer words are not cached (as HF) */

/* Words already encoded, by their bytes.  Guarded by a try-lock: an encode()
 * that finds it busy (another thread) simply does without it. */
typedef struct bpe_word_cache {
    pthread_mutex_t lock;
    uint64_t *hashes; /* 0 = empty slot */
    uint32_t *key_off, *key_len, *ids_off, *ids_len;
    size_t cap, count;
    unsigned char *keys;
    size_t keys_len, keys_cap;
    int32_t *ids;
    size_t ids_len_total, ids_cap;
} bpe_word_cache;

/* Allocates the tables at first use; 0 when memory is short (the caller
 * then encodes without the cache). */
int bpe_word_cache_init(bpe_word_cache *c);
/* The slot of word w (n bytes, hash h): its own, or the empty one where it
 * would go. */
size_t bpe_word_cache_find(const bpe_word_cache *c, const unsigned char *w, size_t n, uint64_t h);
/* Stores w's ids at slot (from bpe_word_cache_find), clearing the cache
 * first when it is full. */
void bpe_word_cache_store(bpe_word_cache *c, size_t slot, uint64_t h, const unsigned char *w, size_t n,
                          const int32_t *ids, size_t n_ids);
/* Forgets every word (after the vocabulary changes). */
void bpe_word_cache_clear(bpe_word_cache *c);
/* Frees the tables (not the lock: its owner destroys it). */
void bpe_word_cache_free(bpe_word_cache *c);

#endif
