/* The trainer's containers: code point map, pair-count map, per-step
 * where_to_update map and the merge queue (a binary max-heap ordered like
 * HF's Merge: count, then the smaller pair first). */
#include <stdlib.h>
#include <string.h>

#include "wordpiece_train.h"

static lm_status oom(const char *what) {
    return lm_error_set(LM_ERR_NOMEM, "out of memory in wordpiece training (%s)", what);
}

static inline size_t mix(uint64_t x) {
    x ^= x >> 31;
    x *= 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    return (size_t)x;
}

/* ---- code point map ---------------------------------------------------------- */

lm_status wp_cpmap_init(wp_cpmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    size_t slots = 64;
    while (slots < expected * 2) slots *= 2;
    m->keys = malloc(slots * sizeof *m->keys);
    m->index = malloc(slots * sizeof *m->index);
    if (!m->keys || !m->index) return oom("character map");
    memset(m->keys, 0xff, slots * sizeof *m->keys);
    m->mask = slots - 1;
    return LM_OK;
}

void wp_cpmap_free(wp_cpmap *m) {
    free(m->keys);
    free(m->index);
    free(m->cps);
    free(m->counts);
    memset(m, 0, sizeof *m);
}

int64_t wp_cpmap_find(const wp_cpmap *m, uint32_t cp) {
    for (size_t i = mix(cp) & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == UINT32_MAX) return -1;
        if (m->keys[i] == cp) return m->index[i];
    }
}

static lm_status cpmap_grow(wp_cpmap *m) {
    size_t slots = (m->mask + 1) * 2;
    uint32_t *keys = malloc(slots * sizeof *keys), *index = malloc(slots * sizeof *index);
    if (!keys || !index) {
        free(keys);
        free(index);
        return oom("character map");
    }
    memset(keys, 0xff, slots * sizeof *keys);
    for (size_t k = 0; k < m->n; k++) {
        size_t i = mix(m->cps[k]) & (slots - 1);
        while (keys[i] != UINT32_MAX) i = (i + 1) & (slots - 1);
        keys[i] = m->cps[k];
        index[i] = (uint32_t)k;
    }
    free(m->keys);
    free(m->index);
    m->keys = keys;
    m->index = index;
    m->mask = slots - 1;
    return LM_OK;
}

lm_status wp_cpmap_get(wp_cpmap *m, uint32_t cp, uint32_t **slot) {
    size_t i = mix(cp) & m->mask;
    for (; m->keys[i] != UINT32_MAX; i = (i + 1) & m->mask)
        if (m->keys[i] == cp) {
            *slot = &m->index[i];
            return LM_OK;
        }
    if ((m->n + 1) * 2 > m->mask + 1) {
        LM_TRY(cpmap_grow(m));
        return wp_cpmap_get(m, cp, slot);
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        uint32_t *cps = realloc(m->cps, cap * sizeof *cps);
        if (!cps) return oom("character list");
        m->cps = cps;
        uint64_t *counts = realloc(m->counts, cap * sizeof *counts);
        if (!counts) return oom("character counts");
        m->counts = counts;
        m->cap = cap;
    }
    m->keys[i] = cp;
    m->index[i] = (uint32_t)m->n;
    m->cps[m->n] = cp;
    m->counts[m->n] = 0;
    m->n++;
    *slot = &m->index[i];
    return LM_OK;
}

/* ---- pair counts ------------------------------------------------------------- */

int64_t wp_pairmap_get(const wp_pairmap *m, uint64_t pair) {
    if (!m->keys) return 0;
    for (size_t i = mix(pair) & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == UINT64_MAX) return 0;
        if (m->keys[i] == pair) return m->values[i];
    }
}

static lm_status pairmap_add(wp_pairmap *m, uint64_t pair, int64_t delta) {
    if (!m->keys || (m->n + 1) * 2 > m->mask + 1) {
        size_t slots = m->keys ? (m->mask + 1) * 2 : 1 << 16;
        uint64_t *keys = malloc(slots * sizeof *keys);
        int64_t *values = malloc(slots * sizeof *values);
        if (!keys || !values) {
            free(keys);
            free(values);
            return oom("pair counts");
        }
        memset(keys, 0xff, slots * sizeof *keys);
        if (m->keys)
            for (size_t k = 0; k <= m->mask; k++) {
                if (m->keys[k] == UINT64_MAX) continue;
                size_t i = mix(m->keys[k]) & (slots - 1);
                while (keys[i] != UINT64_MAX) i = (i + 1) & (slots - 1);
                keys[i] = m->keys[k];
                values[i] = m->values[k];
            }
        free(m->keys);
        free(m->values);
        m->keys = keys;
        m->values = values;
        m->mask = slots - 1;
    }
    size_t i = mix(pair) & m->mask;
    for (; m->keys[i] != UINT64_MAX; i = (i + 1) & m->mask)
        if (m->keys[i] == pair) {
            m->values[i] += delta;
            return LM_OK;
        }
    m->keys[i] = pair;
    m->values[i] = delta;
    m->n++;
    return LM_OK;
}

/* ---- the queue --------------------------------------------------------------- */

/* 1 when x must pop before y: higher count, then the smaller pair. */
static inline int before(const wp_heap_entry *x, const wp_heap_entry *y) {
    if (x->count != y->count) return x->count > y->count;
    return x->pair < y->pair;
}

lm_status wp_heap_push(wp_heap *h, const wp_heap_entry *e) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        wp_heap_entry *items = realloc(h->items, cap * sizeof *items);
        if (!items) return oom("merge queue");
        h->items = items;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(e, &h->items[parent])) break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = *e;
    return LM_OK;
}

int wp_heap_pop(wp_heap *h, wp_heap_entry *out) {
    if (h->n == 0) return 0;
    *out = h->items[0];
    wp_heap_entry last = h->items[--h->n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n) break;
        if (child + 1 < h->n && before(&h->items[child + 1], &h->items[child])) child++;
        if (!before(&h->items[child], &last)) break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (h->n) h->items[i] = last;
    return 1;
}

void wp_heap_entry_free(wp_heap_entry *e) {
    free(e->pos);
    memset(e, 0, sizeof *e);
}

/* ---- where_to_update ------------------------------------------------------------ */

/* The step table only ever holds the current step's pairs, so emptying the
 * slots it used leaves it entirely empty (no tombstones needed). */
void wp_step_reset(wp_trainer *tr) {
    for (size_t k = 0; k < tr->step_n; k++) tr->step_keys[tr->step_slot[k]] = UINT64_MAX;
    tr->step_n = 0;
}

static lm_status step_table(wp_trainer *tr, size_t want) {
    size_t slots = 1024;
    while (slots < want * 4) slots *= 2;
    free(tr->step_keys);
    free(tr->step_index);
    tr->step_keys = malloc(slots * sizeof *tr->step_keys);
    tr->step_index = malloc(slots * sizeof *tr->step_index);
    if (!tr->step_keys || !tr->step_index) return oom("pair positions");
    memset(tr->step_keys, 0xff, slots * sizeof *tr->step_keys);
    tr->step_mask = slots - 1;
    for (size_t k = 0; k < tr->step_n; k++) {
        size_t i = mix(tr->step_pairs[k]) & tr->step_mask;
        while (tr->step_keys[i] != UINT64_MAX) i = (i + 1) & tr->step_mask;
        tr->step_keys[i] = tr->step_pairs[k];
        tr->step_index[i] = (uint32_t)k;
        tr->step_slot[k] = i;
    }
    return LM_OK;
}

static lm_status step_list(wp_trainer *tr, uint64_t pair, wp_wordlist **list) {
    if (!tr->step_keys || (tr->step_n + 1) * 2 > tr->step_mask + 1) LM_TRY(step_table(tr, tr->step_n + 1));
    size_t i = mix(pair) & tr->step_mask;
    for (; tr->step_keys[i] != UINT64_MAX; i = (i + 1) & tr->step_mask)
        if (tr->step_keys[i] == pair) {
            *list = &tr->step_lists[tr->step_index[i]];
            return LM_OK;
        }
    if (tr->step_n == tr->step_cap) {
        size_t cap = tr->step_cap ? tr->step_cap * 2 : 1024;
        uint64_t *pairs = realloc(tr->step_pairs, cap * sizeof *pairs);
        if (!pairs) return oom("pair positions");
        tr->step_pairs = pairs;
        size_t *slot = realloc(tr->step_slot, cap * sizeof *slot);
        if (!slot) return oom("pair positions");
        tr->step_slot = slot;
        wp_wordlist *lists = realloc(tr->step_lists, cap * sizeof *lists);
        if (!lists) return oom("pair positions");
        tr->step_lists = lists;
        tr->step_cap = cap;
    }
    tr->step_keys[i] = pair;
    tr->step_index[i] = (uint32_t)tr->step_n;
    tr->step_pairs[tr->step_n] = pair;
    tr->step_slot[tr->step_n] = i;
    tr->step_lists[tr->step_n] = (wp_wordlist){0};
    *list = &tr->step_lists[tr->step_n++];
    return LM_OK;
}

static lm_status list_add(wp_wordlist *l, uint32_t w) {
    if (l->n && l->items[l->n - 1] == w) return LM_OK; /* a set: words arrive in runs */
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 4;
        uint32_t *items = realloc(l->items, cap * sizeof *items);
        if (!items) return oom("pair positions");
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = w;
    return LM_OK;
}

lm_status wp_change(wp_trainer *tr, int32_t left, int32_t right, int change, uint32_t w) {
    uint64_t pair = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    LM_TRY(pairmap_add(&tr->pairs, pair, (int64_t)change * (int64_t)tr->counts[w]));
    if (change <= 0) return LM_OK;
    wp_wordlist *list = NULL;
    LM_TRY(step_list(tr, pair, &list));
    return list_add(list, w);
}

lm_status wp_step_flush(wp_trainer *tr) {
    lm_status status = LM_OK;
    for (size_t k = 0; k < tr->step_n; k++) {
        wp_wordlist *l = &tr->step_lists[k];
        int64_t count = wp_pairmap_get(&tr->pairs, tr->step_pairs[k]);
        if (status == LM_OK && count > 0) {
            wp_heap_entry e = {(uint64_t)count, tr->step_pairs[k], l->items, l->n};
            status = wp_heap_push(&tr->heap, &e);
            if (status == LM_OK) l->items = NULL; /* the queue owns it now */
        }
        free(l->items);
        l->items = NULL;
    }
    wp_step_reset(tr);
    return status;
}

lm_status wp_count_pairs(wp_trainer *tr) {
    wp_step_reset(tr);
    for (int32_t w = 0; w < tr->words.count; w++) {
        const int32_t *s = tr->syms + tr->word_off[w];
        for (uint32_t i = 0; i + 1 < tr->word_len[w]; i++) LM_TRY(wp_change(tr, s[i], s[i + 1], 1, (uint32_t)w));
    }
    return wp_step_flush(tr);
}

void wp_trainer_free(wp_trainer *tr) {
    wp_vocab_free(&tr->words);
    free(tr->counts);
    wp_cpmap_free(&tr->chars);
    free(tr->syms);
    free(tr->word_off);
    free(tr->word_len);
    free(tr->pairs.keys);
    free(tr->pairs.values);
    for (size_t i = 0; i < tr->heap.n; i++) free(tr->heap.items[i].pos);
    free(tr->heap.items);
    for (size_t k = 0; k < tr->step_n; k++) free(tr->step_lists[k].items);
    free(tr->step_keys);
    free(tr->step_index);
    free(tr->step_pairs);
    free(tr->step_slot);
    free(tr->step_lists);
    memset(tr, 0, sizeof *tr);
}
