/* tokenizer_wordpiece — the trainer's data structures (wordpiece_train_data.c)
 * shared with the algorithm (wordpiece_train.c). */
#ifndef LM_WORDPIECE_TRAIN_H
#define LM_WORDPIECE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "wordpiece.h"

/* code point -> dense index, with a count per code point */
typedef struct wp_cpmap {
    uint32_t *keys; /* UINT32_MAX: empty */
    uint32_t *index;
    size_t mask;
    uint32_t *cps;
    uint64_t *counts;
    size_t n, cap;
} wp_cpmap;

lm_status wp_cpmap_init(wp_cpmap *m, size_t expected);
void wp_cpmap_free(wp_cpmap *m);
/* Index of cp (inserted with count 0 if absent). */
lm_status wp_cpmap_get(wp_cpmap *m, uint32_t cp, uint32_t **slot);
int64_t wp_cpmap_find(const wp_cpmap *m, uint32_t cp);

/* pair (left << 32 | right) -> count */
typedef struct wp_pairmap {
    uint64_t *keys; /* UINT64_MAX: empty */
    int64_t *values;
    size_t mask, n;
} wp_pairmap;

int64_t wp_pairmap_get(const wp_pairmap *m, uint64_t pair);

/* a list of word indices */
typedef struct wp_wordlist {
    uint32_t *items;
    uint32_t n, cap;
} wp_wordlist;

/* one queue entry: HF's Merge { pair, count, pos } */
typedef struct wp_heap_entry {
    uint64_t count;
    uint64_t pair;
    uint32_t *pos;
    uint32_t n_pos;
} wp_heap_entry;

typedef struct wp_heap {
    wp_heap_entry *items;
    size_t n, cap;
} wp_heap;

lm_status wp_heap_push(wp_heap *h, const wp_heap_entry *e); /* takes ownership of e->pos */
int wp_heap_pop(wp_heap *h, wp_heap_entry *out);           /* 0 when empty */
void wp_heap_entry_free(wp_heap_entry *e);

typedef struct wp_trainer {
    wp_vocab words; /* distinct words; ids index counts/word_off/word_len */
    uint64_t *counts;
    size_t counts_cap;
    wp_cpmap chars;
    int32_t *syms; /* every word's symbols, word w at syms + word_off[w] */
    size_t *word_off;
    uint32_t *word_len;
    wp_pairmap pairs;
    wp_heap heap;
    /* HF's where_to_update of the current step: pair -> words */
    uint64_t *step_keys; /* UINT64_MAX: empty */
    uint32_t *step_index;
    size_t step_mask;
    uint64_t *step_pairs; /* in order of first appearance */
    size_t *step_slot;    /* the table slot of each step pair */
    wp_wordlist *step_lists;
    size_t step_n, step_cap;
} wp_trainer;

void wp_trainer_free(wp_trainer *tr);
/* Records one pair-count change made while merging word w (HF: the count
 * moves by change * count[w]; a positive change remembers w for the pair). */
lm_status wp_change(wp_trainer *tr, int32_t left, int32_t right, int change, uint32_t w);
void wp_step_reset(wp_trainer *tr);
/* Pushes every pair of the step whose count is positive to the queue. */
lm_status wp_step_flush(wp_trainer *tr);
/* HF's count_pairs: initial pair counts and queue. */
lm_status wp_count_pairs(wp_trainer *tr);

/* wordpiece_plugin.c: the trained vocabulary becomes the model. */
lm_status wp_finalize_trained(wp_tokenizer *t);

#endif
