/* BPE training, a C transcription of HF tokenizers' BpeTrainer::do_train.
 *
 * Words are counted after pre-tokenization; each distinct word becomes a
 * sequence of byte ids.  Pair counts are kept for the whole corpus and a
 * max-heap orders candidate merges by (count desc, pair ids asc) -- HF's
 * tie-break: among equally frequent pairs the one with the smallest
 * (left id, right id) wins.  After each merge only the affected words are
 * rewritten and only the changed pairs are re-counted.
 *
 * Two HF quirks are reproduced on purpose, because they change results:
 *  - a heap entry carries the set of words where its pair was (newly) seen;
 *    a merge rewrites only those words, and a pair created again later gets
 *    a second entry with the new words only;
 *  - the count of the merged pair itself is not decreased by the merge.
 * HF pushes new entries in HashMap order, so when two entries for the same
 * pair have the same count, which one HF pops first is arbitrary; lmcore is
 * deterministic there (on the wikitext fixture no such tie decides anything). */
#include "bpe_train.h"

#include <stdlib.h>
#include <string.h>

#include <lmcore/log.h>
#include <lmcore/status.h>

#include "bpe_pretok.h"

typedef struct heap_entry {
    uint64_t count;
    uint64_t pair; /* left id << 32 | right id */
    int32_t *pos;  /* words to rewrite */
    uint32_t n_pos;
    uint32_t owned; /* pos was malloc'd for this entry */
} heap_entry;

typedef struct int_vec {
    int32_t *data;
    uint32_t len, cap;
} int_vec;

typedef struct trainer {
    /* distinct words */
    bpe_strmap word_index;
    uint64_t *word_count;
    size_t n_words, words_cap;
    int32_t *symbols; /* all words' symbols, each word in its own slice */
    size_t *word_start;
    uint32_t *word_len;
    /* vocabulary being built */
    bpe_strmap token_index;
    lm_buffer token_text;
    size_t *token_off;
    uint32_t *token_len;
    size_t n_tokens, tokens_cap;
    /* pairs */
    bpe_u64map pair_index;
    int64_t *pair_count;
    uint64_t *pair_key;
    int_vec *pair_new_words; /* words where the pair appeared in this step */
    int32_t *pair_touched_step;
    size_t n_pairs, pairs_cap;
    int32_t *touched; /* pairs with new words in this step */
    size_t n_touched, touched_cap;
    /* candidate merges */
    heap_entry *heap;
    size_t heap_len, heap_cap;
    int32_t *initial_pos; /* one block holding the first entries' words */
    /* result */
    uint64_t *merges; /* pair */
    int32_t *merge_ids;
    size_t n_merges, merges_cap;
} trainer;

#define GROW(ptr, cap, need, what)                                                                 \
    do {                                                                                           \
        if ((need) > (cap)) {                                                                      \
            size_t new_cap_ = (cap) ? (cap) : 256;                                                 \
            while (new_cap_ < (need)) new_cap_ *= 2;                                               \
            void *p_ = realloc((ptr), new_cap_ * sizeof(*(ptr)));                                  \
            if (!p_) return lm_error_set(LM_ERR_NOMEM, "BPE training: out of memory for %s", what); \
            (ptr) = p_;                                                                            \
            (cap) = new_cap_;                                                                      \
        }                                                                                          \
    } while (0)

static void trainer_free(trainer *t) {
    bpe_strmap_free(&t->word_index);
    free(t->word_count);
    free(t->symbols);
    free(t->word_start);
    free(t->word_len);
    bpe_strmap_free(&t->token_index);
    lm_buffer_free(&t->token_text);
    free(t->token_off);
    free(t->token_len);
    bpe_u64map_free(&t->pair_index);
    free(t->pair_count);
    free(t->pair_key);
    for (size_t i = 0; i < t->n_pairs; i++) free(t->pair_new_words[i].data);
    free(t->pair_new_words);
    free(t->pair_touched_step);
    free(t->touched);
    for (size_t i = 0; i < t->heap_len; i++)
        if (t->heap[i].owned) free(t->heap[i].pos);
    free(t->heap);
    free(t->initial_pos);
    free(t->merges);
    free(t->merge_ids);
}

/* ---- counting words ---------------------------------------------------------- */

static lm_status count_word(trainer *t, const unsigned char *w, size_t n) {
    int32_t index = (int32_t)t->n_words;
    int inserted = 0;
    LM_TRY(bpe_strmap_intern(&t->word_index, w, n, &index, &inserted));
    if (inserted) {
        GROW(t->word_count, t->words_cap, t->n_words + 1, "word counts");
        t->word_count[t->n_words++] = 0;
    }
    t->word_count[index]++;
    return LM_OK;
}

static lm_status count_words(trainer *t, const lm_text_source *rows, int add_prefix_space) {
    lm_progress *progress = lm_progress_begin("BPE training: counting words", rows->count);
    lm_buffer prefixed = {0};
    lm_status status = LM_OK;
    for (size_t r = 0; r < rows->count && status == LM_OK; r++) {
        const char *text = NULL;
        size_t len = 0;
        status = rows->row(rows->ctx, r, &text, &len);
        if (status != LM_OK) break;
        if (!text) len = 0;
        const unsigned char *s = (const unsigned char *)text;
        if (add_prefix_space && len > 0 && s[0] != ' ') {
            lm_buffer_clear(&prefixed);
            status = lm_buffer_append(&prefixed, " ", 1);
            if (status == LM_OK && len) status = lm_buffer_append(&prefixed, text, len);
            s = (const unsigned char *)prefixed.data;
            len = prefixed.len;
        }
        for (size_t pos = 0; pos < len && status == LM_OK;) {
            size_t end = bpe_pretok_next(s, len, pos);
            status = count_word(t, s + pos, end - pos);
            pos = end;
        }
        if ((r & 1023) == 0) {
            lm_progress_update(progress, r);
            if (lm_interrupted()) status = lm_error_set(LM_ERR_INTERRUPTED, "BPE training interrupted while counting words");
        }
    }
    lm_progress_update(progress, rows->count);
    lm_progress_end(progress);
    lm_buffer_free(&prefixed);
    return status;
}

/* ---- vocabulary ---------------------------------------------------------------- */

/* HF's word_to_id.entry: returns the id of token, adding it when new. */
static lm_status add_token(trainer *t, const char *s, size_t len, int32_t *id) {
    int32_t value = (int32_t)t->n_tokens;
    int inserted = 0;
    LM_TRY(bpe_strmap_intern(&t->token_index, s, len, &value, &inserted));
    if (inserted) {
        GROW(t->token_off, t->tokens_cap, t->n_tokens + 1, "tokens");
        t->token_len = realloc(t->token_len, t->tokens_cap * sizeof(*t->token_len));
        if (!t->token_len) return lm_error_set(LM_ERR_NOMEM, "BPE training: out of memory for tokens");
        t->token_off[t->n_tokens] = t->token_text.len;
        t->token_len[t->n_tokens] = (uint32_t)len;
        LM_TRY(lm_buffer_append(&t->token_text, s, len));
        t->n_tokens++;
    }
    *id = value;
    return LM_OK;
}

/* Specials first, then the 256 byte characters in code point order. */
static lm_status initial_vocab(trainer *t, const bpe_train_options *opt, int32_t byte_id[256]) {
    int32_t id;
    for (size_t i = 0; i < opt->n_specials; i++) LM_TRY(add_token(t, opt->specials[i], strlen(opt->specials[i]), &id));
    /* code point order: byte_codepoint is increasing except that the 68
     * non-printable bytes come after U+00FF, so sort 256 (cp, byte) pairs. */
    uint32_t order[256];
    for (int b = 0; b < 256; b++) order[b] = (bpe_byte_to_codepoint((unsigned char)b) << 8) | (uint32_t)b;
    for (int i = 1; i < 256; i++) { /* insertion sort, 256 items */
        uint32_t v = order[i];
        int j = i - 1;
        while (j >= 0 && order[j] > v) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
    for (int i = 0; i < 256; i++) {
        unsigned char b = (unsigned char)(order[i] & 0xFF);
        char utf8[2];
        size_t n = bpe_byte_to_utf8(b, utf8);
        LM_TRY(add_token(t, utf8, n, &byte_id[b]));
    }
    return LM_OK;
}

static lm_status words_to_symbols(trainer *t, const int32_t byte_id[256]) {
    size_t total = 0;
    t->word_start = malloc((t->n_words + 1) * sizeof(*t->word_start));
    t->word_len = malloc((t->n_words + 1) * sizeof(*t->word_len));
    if (!t->word_start || !t->word_len) return lm_error_set(LM_ERR_NOMEM, "BPE training: out of memory for words");
    for (size_t i = 0; i < t->word_index.cap; i++) {
        const bpe_strmap_slot *s = &t->word_index.slots[i];
        if (!s->used) continue;
        t->word_start[s->value] = 0;
        t->word_len[s->value] = s->key_len;
        total += s->key_len;
    }
    t->symbols = malloc((total + 1) * sizeof(*t->symbols));
    if (!t->symbols) return lm_error_set(LM_ERR_NOMEM, "BPE training: out of memory for %zu symbols", total);
    size_t at = 0;
    for (size_t w = 0; w < t->n_words; w++) {
        t->word_start[w] = at;
        at += t->word_len[w];
    }
    for (size_t i = 0; i < t->word_index.cap; i++) {
        const bpe_strmap_slot *s = &t->word_index.slots[i];
        if (!s->used) continue;
        const unsigned char *bytes = (const unsigned char *)bpe_strmap_slot_key(&t->word_index, s);
        int32_t *sym = t->symbols + t->word_start[s->value];
        for (uint32_t k = 0; k < s->key_len; k++) sym[k] = byte_id[bytes[k]];
    }
    return LM_OK;
}

/* ---- pairs and the heap -------------------------------------------------------- */

static inline uint64_t make_pair(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

static lm_status pair_lookup(trainer *t, uint64_t pair, size_t *index) {
    uint64_t v = 0;
    if (bpe_u64map_get(&t->pair_index, pair, &v)) {
        *index = (size_t)v;
        return LM_OK;
    }
    size_t i = t->n_pairs;
    size_t cap = t->pairs_cap;
    GROW(t->pair_count, cap, i + 1, "pair counts");
    if (cap != t->pairs_cap) {
        int_vec *nw = realloc(t->pair_new_words, cap * sizeof(*nw));
        if (nw) t->pair_new_words = nw;
        int32_t *step = realloc(t->pair_touched_step, cap * sizeof(*step));
        if (step) t->pair_touched_step = step;
        uint64_t *keys = realloc(t->pair_key, cap * sizeof(*keys));
        if (keys) t->pair_key = keys;
        if (!nw || !step || !keys) return lm_error_set(LM_ERR_NOMEM, "BPE training: out of memory for pairs");
        t->pairs_cap = cap;
    }
    t->pair_count[i] = 0;
    t->pair_key[i] = pair;
    memset(&t->pair_new_words[i], 0, sizeof(int_vec));
    t->pair_touched_step[i] = -1;
    t->n_pairs++;
    *index = i;
    return bpe_u64map_put(&t->pair_index, pair, i);
}

/* HF's Merge ordering: the larger count first, then the smaller pair. */
static inline int entry_before(const heap_entry *a, const heap_entry *b) {
    return a->count != b->count ? a->count > b->count : a->pair < b->pair;
}

static void sift_down(heap_entry *h, size_t n, size_t i) {
    heap_entry item = h[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && entry_before(&h[child + 1], &h[child])) child++;
        if (!entry_before(&h[child], &item)) break;
        h[i] = h[child];
        i = child;
    }
    h[i] = item;
}

static lm_status heap_push(trainer *t, heap_entry e) {
    GROW(t->heap, t->heap_cap, t->heap_len + 1, "the merge queue");
    size_t i = t->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_before(&e, &t->heap[parent])) break;
        t->heap[i] = t->heap[parent];
        i = parent;
    }
    t->heap[i] = e;
    return LM_OK;
}

static heap_entry heap_pop(trainer *t) {
    heap_entry top = t->heap[0];
    t->heap[0] = t->heap[--t->heap_len];
    if (t->heap_len) sift_down(t->heap, t->heap_len, 0);
    return top;
}

/* HF's count_pairs: every adjacent pair's total count and the words it is
 * in; one heap entry per pair. */
static lm_status count_pairs(trainer *t) {
    uint32_t *n_words_with = NULL;
    int32_t *last_word = NULL;
    lm_status status = LM_OK;
    for (size_t w = 0; w < t->n_words && status == LM_OK; w++) {
        const int32_t *sym = t->symbols + t->word_start[w];
        for (uint32_t k = 0; k + 1 < t->word_len[w] && status == LM_OK; k++) {
            size_t p;
            status = pair_lookup(t, make_pair(sym[k], sym[k + 1]), &p);
            if (status == LM_OK) t->pair_count[p] += (int64_t)t->word_count[w];
        }
    }
    if (status != LM_OK) return status;
    n_words_with = calloc(t->n_pairs + 1, sizeof(*n_words_with));
    last_word = malloc((t->n_pairs + 1) * sizeof(*last_word));
    size_t *first = malloc((t->n_pairs + 1) * sizeof(*first));
    if (!n_words_with || !last_word || !first) {
        status = lm_error_set(LM_ERR_NOMEM, "BPE training: out of memory counting pairs");
        goto fail;
    }
    /* Two passes: how many distinct words per pair, then the words. */
    for (int pass = 0; pass < 2; pass++) {
        memset(last_word, 0xFF, (t->n_pairs + 1) * sizeof(*last_word));
        if (pass == 1) {
            size_t total = 0;
            for (size_t p = 0; p < t->n_pairs; p++) {
                first[p] = total;
                total += n_words_with[p];
                n_words_with[p] = 0;
            }
            t->initial_pos = malloc((total + 1) * sizeof(*t->initial_pos));
            if (!t->initial_pos) {
                status = lm_error_set(LM_ERR_NOMEM, "BPE training: out of memory for %zu pair positions", total);
                goto fail;
            }
        }
        for (size_t w = 0; w < t->n_words; w++) {
            const int32_t *sym = t->symbols + t->word_start[w];
            for (uint32_t k = 0; k + 1 < t->word_len[w]; k++) {
                uint64_t v = 0;
                bpe_u64map_get(&t->pair_index, make_pair(sym[k], sym[k + 1]), &v);
                if (last_word[v] == (int32_t)w) continue;
                last_word[v] = (int32_t)w;
                if (pass == 1) t->initial_pos[first[v] + n_words_with[v]] = (int32_t)w;
                n_words_with[v]++;
            }
        }
    }
    GROW(t->heap, t->heap_cap, t->n_pairs + 1, "the merge queue");
    for (size_t p = 0; p < t->n_pairs; p++) {
        if (t->pair_count[p] <= 0) continue;
        heap_entry e = {(uint64_t)t->pair_count[p], t->pair_key[p], t->initial_pos + first[p], n_words_with[p], 0};
        t->heap[t->heap_len++] = e;
    }
    for (size_t i = t->heap_len / 2; i-- > 0;) sift_down(t->heap, t->heap_len, i);
fail:
    free(n_words_with);
    free(last_word);
    free(first);
    return status;
}

/* ---- merging ------------------------------------------------------------------- */

/* A change of `delta` occurrences (times the word's count) of pair (x, y). */
static lm_status change_pair(trainer *t, int32_t x, int32_t y, int64_t delta, int32_t word, int32_t step) {
    size_t p;
    LM_TRY(pair_lookup(t, make_pair(x, y), &p));
    t->pair_count[p] += delta;
    if (delta <= 0) return LM_OK;
    int_vec *v = &t->pair_new_words[p];
    if (t->pair_touched_step[p] != step) {
        t->pair_touched_step[p] = step;
        v->len = 0;
        GROW(t->touched, t->touched_cap, t->n_touched + 1, "touched pairs");
        t->touched[t->n_touched++] = (int32_t)p;
    }
    if (v->len && v->data[v->len - 1] == word) return LM_OK;
    if (v->len == v->cap) { /* most pairs are new in a few words: start small */
        uint32_t cap = v->cap ? v->cap * 2 : 4;
        int32_t *data = realloc(v->data, cap * sizeof(*data));
        if (!data) return lm_error_set(LM_ERR_NOMEM, "BPE training: out of memory for pair positions");
        v->data = data;
        v->cap = cap;
    }
    v->data[v->len++] = word;
    return LM_OK;
}

/* HF's Word::merge: every (a, b) becomes `merged`, left to right, and each
 * neighbour pair loses one occurrence and gains its merged twin. */
static lm_status merge_word(trainer *t, int32_t w, int32_t a, int32_t b, int32_t merged, int32_t step) {
    int32_t *sym = t->symbols + t->word_start[w];
    uint32_t n = t->word_len[w], r = 0, out = 0;
    int64_t count = (int64_t)t->word_count[w];
    while (r < n) {
        if (sym[r] == a && r + 1 < n && sym[r + 1] == b) {
            if (out > 0) {
                LM_TRY(change_pair(t, sym[out - 1], a, -count, w, step));
                LM_TRY(change_pair(t, sym[out - 1], merged, count, w, step));
            }
            sym[out++] = merged;
            r += 2;
            if (r < n) {
                LM_TRY(change_pair(t, b, sym[r], -count, w, step));
                LM_TRY(change_pair(t, merged, sym[r], count, w, step));
            }
        } else {
            sym[out++] = sym[r++];
        }
    }
    t->word_len[w] = out;
    return LM_OK;
}

static lm_status record_merge(trainer *t, uint64_t pair, int32_t id) {
    size_t cap = t->merges_cap;
    GROW(t->merges, cap, t->n_merges + 1, "merges");
    if (cap != t->merges_cap) {
        int32_t *ids = realloc(t->merge_ids, cap * sizeof(*ids));
        if (!ids) return lm_error_set(LM_ERR_NOMEM, "BPE training: out of memory for merges");
        t->merge_ids = ids;
        t->merges_cap = cap;
    }
    t->merges[t->n_merges] = pair;
    t->merge_ids[t->n_merges++] = id;
    return LM_OK;
}

static lm_status do_merges(trainer *t, const bpe_train_options *opt) {
    size_t initial = t->token_index.count;
    size_t target = (size_t)opt->vocab_size;
    lm_progress *progress = lm_progress_begin("BPE training: merges", target > initial ? target - initial : 0);
    lm_buffer joined = {0};
    lm_status status = LM_OK;
    int32_t step = 0;
    while (t->token_index.count < target && t->heap_len > 0) {
        heap_entry top = heap_pop(t);
        uint64_t v = 0;
        bpe_u64map_get(&t->pair_index, top.pair, &v);
        uint64_t current = (uint64_t)t->pair_count[v];
        if (top.count != current) { /* stale: requeue with today's count */
            top.count = current;
            status = heap_push(t, top);
            if (status != LM_OK) {
                if (top.owned) free(top.pos);
                break;
            }
            continue;
        }
        if (top.count < 1 || (uint64_t)opt->min_frequency > top.count) {
            if (top.owned) free(top.pos);
            break;
        }
        int32_t a = (int32_t)(top.pair >> 32), b = (int32_t)(uint32_t)top.pair, merged;
        lm_buffer_clear(&joined);
        status = lm_buffer_append(&joined, t->token_text.data + t->token_off[a], t->token_len[a]);
        if (status == LM_OK) status = lm_buffer_append(&joined, t->token_text.data + t->token_off[b], t->token_len[b]);
        if (status == LM_OK) status = add_token(t, joined.data, joined.len, &merged);
        if (status == LM_OK) status = record_merge(t, top.pair, merged);
        t->n_touched = 0;
        for (uint32_t i = 0; i < top.n_pos && status == LM_OK; i++)
            status = merge_word(t, top.pos[i], a, b, merged, step);
        for (size_t i = 0; i < t->n_touched; i++) {
            size_t p = (size_t)t->touched[i];
            int_vec *nw = &t->pair_new_words[p];
            if (status == LM_OK && t->pair_count[p] > 0) {
                heap_entry e = {(uint64_t)t->pair_count[p], t->pair_key[p], nw->data, nw->len, 1};
                status = heap_push(t, e);
                if (status == LM_OK) memset(nw, 0, sizeof(*nw)); /* the entry owns the words now */
            } else {
                nw->len = 0;
            }
        }
        if (top.owned) free(top.pos);
        if (status != LM_OK) break;
        step++;
        if ((step & 255) == 0) {
            lm_progress_update(progress, t->token_index.count - initial);
            if (lm_interrupted()) status = lm_error_set(LM_ERR_INTERRUPTED, "BPE training interrupted after %d merges", step);
        }
        if (status != LM_OK) break;
    }
    lm_progress_update(progress, t->token_index.count > initial ? t->token_index.count - initial : 0);
    lm_progress_end(progress);
    lm_buffer_free(&joined);
    return status;
}

static lm_status build_model(trainer *t, const bpe_train_options *opt, bpe_model **out) {
    bpe_model *m = NULL;
    LM_TRY(bpe_model_create(&m));
    lm_status status = LM_OK;
    const char *where = "BPE training";
    for (size_t id = 0; id < t->n_tokens && status == LM_OK; id++)
        status = bpe_model_set_token(m, (int32_t)id, t->token_text.data + t->token_off[id], t->token_len[id], where);
    for (size_t i = 0; i < t->n_merges && status == LM_OK; i++)
        status = bpe_model_add_merge_ids(m, (int32_t)(t->merges[i] >> 32), (int32_t)(uint32_t)t->merges[i],
                                         t->merge_ids[i]);
    for (size_t i = 0; i < opt->n_specials && status == LM_OK; i++)
        status = bpe_model_add_added(m, opt->specials[i], strlen(opt->specials[i]), -1, 1, where);
    m->add_prefix_space = opt->add_prefix_space;
    if (status == LM_OK) status = bpe_model_finish(m, where);
    if (status != LM_OK) {
        bpe_model_destroy(m);
        return status;
    }
    *out = m;
    return LM_OK;
}

lm_status bpe_train(const bpe_train_options *opt, const lm_text_source *rows, bpe_model **out) {
    if (!rows || !rows->row)
        return lm_error_set(LM_ERR_INVALID, "BPE training: no text source given (rows is NULL)");
    trainer t;
    memset(&t, 0, sizeof(t));
    int32_t byte_id[256];
    lm_status status;
    LM_CHECK(count_words(&t, rows, opt->add_prefix_space));
    if (t.n_words == 0) {
        status = lm_error_set(LM_ERR_INVALID,
                              "BPE training: the training text is empty (%zu rows, no words): give a dataset split with text",
                              rows->count);
        goto fail;
    }
    LM_CHECK(initial_vocab(&t, opt, byte_id));
    LM_CHECK(words_to_symbols(&t, byte_id));
    LM_CHECK(count_pairs(&t));
    LM_CHECK(do_merges(&t, opt));
    lm_log(LM_LOG_INFO, "BPE training: %zu distinct words, %zu merges, vocabulary of %zu tokens", t.n_words,
           t.n_merges, t.n_tokens);
    LM_CHECK(build_model(&t, opt, out));
fail:
    trainer_free(&t);
    return status;
}
