/* Encoding: added tokens, the GPT-2 split, and BPE merges per word, the way
 * HF tokenizers' BPE::merge_word + Word::merge_all do it, with a word cache. */
#include <stdlib.h>
#include <string.h>

#include <lmcore/status.h>

#include "bpe_model.h"
#include "bpe_pretok.h"
#include "bpe_word_cache.h"
#include "unicode.h"

/* ---- one word -------------------------------------------------------------- */

typedef struct symbol {
    int32_t id, prev, next, len; /* len 0: merged into its left neighbour */
} symbol;

typedef struct queued_merge {
    uint32_t rank, pos;
    int32_t new_id;
} queued_merge;

typedef struct scratch {
    symbol *symbols;
    queued_merge *heap;
    size_t cap, heap_cap;
    lm_buffer token; /* the word in the byte-level alphabet (ignore_merges) */
    lm_ids word_ids;
} scratch;

static lm_status scratch_reserve(scratch *s, size_t n) {
    if (n <= s->cap) return LM_OK;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n) cap *= 2;
    symbol *sym = realloc(s->symbols, cap * sizeof(*sym));
    if (!sym) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory for a %zu-byte word", n);
    s->symbols = sym;
    s->cap = cap;
    return LM_OK;
}

/* Min-heap on (rank, pos), HF's Merge ordering. */
static inline int merge_less(const queued_merge *a, const queued_merge *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static lm_status heap_push(scratch *s, size_t *n, queued_merge item) {
    if (*n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        queued_merge *h = realloc(s->heap, cap * sizeof(*h));
        if (!h) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory for the merge queue");
        s->heap = h;
        s->heap_cap = cap;
    }
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_less(&item, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = item;
    return LM_OK;
}

static queued_merge heap_pop(scratch *s, size_t *n) {
    queued_merge top = s->heap[0], last = s->heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && merge_less(&s->heap[child + 1], &s->heap[child])) child++;
        if (!merge_less(&s->heap[child], &last)) break;
        s->heap[i] = s->heap[child];
        i = child;
    }
    if (*n) s->heap[i] = last;
    return top;
}

static inline int lookup_merge(const bpe_model *m, int32_t a, int32_t b, uint32_t *rank, int32_t *new_id) {
    uint64_t v;
    if (!bpe_u64map_get(&m->merges, ((uint64_t)(uint32_t)a << 32) | (uint32_t)b, &v)) return 0;
    *rank = (uint32_t)(v >> 32);
    *new_id = (int32_t)(uint32_t)v;
    return 1;
}

/* Appends the ids of one pre-tokenized word (raw bytes) to out. */
static lm_status encode_word(const bpe_model *m, scratch *s, const unsigned char *w, size_t n, lm_ids *out) {
    if (m->ignore_merges) { /* HF: a word that is a token is taken whole */
        lm_buffer_clear(&s->token);
        LM_TRY(bpe_bytes_to_token(w, n, &s->token));
        int32_t id = bpe_strmap_get(&m->vocab, s->token.data, s->token.len);
        if (id >= 0) return lm_ids_push(out, id);
    }
    LM_TRY(scratch_reserve(s, n));
    symbol *sym = s->symbols;
    size_t count = 0;
    int pending_unk = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = m->byte_id[w[i]];
        if (id < 0) { /* HF without byte_fallback: unk_token, else dropped */
            if (m->unk_id < 0) continue;
            if (m->fuse_unk && pending_unk) {
                sym[count - 1].len++;
                continue;
            }
            id = m->unk_id;
            pending_unk = 1;
        } else {
            pending_unk = 0;
        }
        sym[count] = (symbol){id, (int32_t)count - 1, (int32_t)count + 1, 1};
        count++;
    }
    if (count == 0) return LM_OK;
    sym[count - 1].next = -1;

    size_t heap_n = 0;
    for (size_t i = 0; i + 1 < count; i++) {
        queued_merge q = {0, (uint32_t)i, 0};
        if (lookup_merge(m, sym[i].id, sym[i + 1].id, &q.rank, &q.new_id)) LM_TRY(heap_push(s, &heap_n, q));
    }
    while (heap_n) {
        queued_merge top = heap_pop(s, &heap_n);
        symbol *cur = &sym[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        symbol right = sym[cur->next];
        uint32_t rank;
        int32_t new_id;
        /* A stale entry: the pair at pos changed since it was queued. */
        if (!lookup_merge(m, cur->id, right.id, &rank, &new_id) || new_id != top.new_id) continue;
        sym[cur->next].len = 0;
        cur->id = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        if (right.next >= 0) sym[right.next].prev = (int32_t)top.pos;
        queued_merge q;
        if (cur->prev >= 0 && lookup_merge(m, sym[cur->prev].id, cur->id, &q.rank, &q.new_id)) {
            q.pos = (uint32_t)cur->prev;
            LM_TRY(heap_push(s, &heap_n, q));
            cur = &sym[top.pos];
        }
        if (cur->next >= 0 && lookup_merge(m, cur->id, sym[cur->next].id, &q.rank, &q.new_id)) {
            q.pos = top.pos;
            LM_TRY(heap_push(s, &heap_n, q));
        }
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) LM_TRY(lm_ids_push(out, sym[i].id));
    return LM_OK;
}

static lm_status encode_word_cached(bpe_model *m, scratch *s, int use_cache, const unsigned char *w, size_t n,
                                    lm_ids *out) {
    if (n == 1 && m->byte_id[w[0]] >= 0) return lm_ids_push(out, m->byte_id[w[0]]);
    if (!use_cache || n >= BPE_CACHE_MAX_WORD) return encode_word(m, s, w, n, out);
    bpe_word_cache *c = &m->cache;
    uint64_t h = bpe_hash_bytes(w, n) | 1; /* 0 marks empty slots */
    size_t slot = bpe_word_cache_find(c, w, n, h);
    if (c->hashes[slot] != 0) return lm_ids_append(out, c->ids + c->ids_off[slot], c->ids_len[slot]);
    size_t first = out->len;
    LM_TRY(encode_word(m, s, w, n, out));
    /* A word may encode to no ids (unknown bytes without an unk_token are
     * dropped, as HF does), and out->data may then still be NULL. */
    size_t n_ids = out->len - first;
    bpe_word_cache_store(c, slot, h, w, n, n_ids ? out->data + first : NULL, n_ids);
    return LM_OK;
}

/* ---- a segment between added tokens ---------------------------------------- */

static lm_status encode_segment(bpe_model *m, scratch *s, int use_cache, const unsigned char *text, size_t len,
                                lm_ids *out) {
    lm_buffer prefixed = {0};
    if (len == 0) return LM_OK; /* HF: an empty segment gets no prefix space */
    if (m->add_prefix_space && text[0] != ' ') {
        /* HF prepends the space to each segment that lacks one. */
        lm_status status = lm_buffer_append(&prefixed, " ", 1);
        if (status == LM_OK && len) status = lm_buffer_append(&prefixed, text, len);
        if (status != LM_OK) {
            lm_buffer_free(&prefixed);
            return status;
        }
        text = (const unsigned char *)prefixed.data;
        len = prefixed.len;
    }
    lm_status status = LM_OK;
    if (!m->use_regex) {
        status = encode_word_cached(m, s, use_cache, text, len, out);
    } else {
        for (size_t pos = 0; pos < len && status == LM_OK;) {
            size_t end = bpe_pretok_next(text, len, pos);
            status = encode_word_cached(m, s, use_cache, text + pos, end - pos, out);
            pos = end;
        }
    }
    lm_buffer_free(&prefixed);
    return status;
}

/* ---- added tokens ------------------------------------------------------------ */

static int is_word_char(const unsigned char *s, size_t len, size_t i, int backwards) {
    /* Rust's char::is_alphanumeric, approximated by \p{L} and \p{N}. */
    uint32_t cp = 0;
    if (backwards) {
        size_t k = i;
        while (k > 0 && i - k < 4 && (s[k - 1] & 0xC0) == 0x80) k--;
        if (k > 0) k--;
        if (lm_utf8_decode(s + k, len - k, &cp) <= 0) return 0;
    } else if (lm_utf8_decode(s + i, len - i, &cp) <= 0) {
        return 0;
    }
    return lm_unicode_is_letter(cp) || lm_unicode_is_number(cp);
}

static size_t strip_left(const unsigned char *s, size_t from, size_t start) {
    while (start > from) {
        size_t k = start - 1;
        while (k > from && (s[k] & 0xC0) == 0x80) k--;
        uint32_t cp;
        if (lm_utf8_decode(s + k, start - k, &cp) <= 0 || !lm_unicode_is_whitespace(cp)) break;
        start = k;
    }
    return start;
}

static size_t strip_right(const unsigned char *s, size_t len, size_t stop) {
    while (stop < len) {
        uint32_t cp;
        int k = lm_utf8_decode(s + stop, len - stop, &cp);
        if (k <= 0 || !lm_unicode_is_whitespace(cp)) break;
        stop += (size_t)k;
    }
    return stop;
}

/* Leftmost-longest match of an added token of the given pass (HF matches
 * the non-normalized tokens first, then the normalized ones in what is left)
 * in text[from, len).  Returns the token index or -1. */
static long find_added(const bpe_model *m, int normalized, const unsigned char *text, size_t from, size_t len,
                       size_t *at) {
    for (size_t i = from; i < len; i++) {
        if (!m->added_first_byte[text[i]]) continue;
        long best = -1;
        for (size_t k = 0; k < m->n_added; k++) {
            const bpe_added_token *t = &m->added[k];
            if (t->normalized != normalized || t->len > len - i || (best >= 0 && t->len <= m->added[best].len))
                continue;
            if (memcmp(text + i, t->content, t->len) == 0) best = (long)k;
        }
        if (best >= 0) {
            *at = i;
            return best;
        }
    }
    return -1;
}

static lm_status encode_pass(bpe_model *m, scratch *s, int use_cache, int normalized, const unsigned char *text,
                             size_t len, lm_ids *out) {
    if (m->n_added == 0 || (normalized && len == 0)) return encode_segment(m, s, use_cache, text, len, out);
    size_t done = 0, search = 0;
    int any = 0;
    while (search < len) {
        size_t at;
        long k = find_added(m, normalized, text, search, len, &at);
        if (k < 0) break;
        const bpe_added_token *t = &m->added[k];
        size_t start = at, stop = at + t->len;
        search = stop;
        if (t->single_word && ((start > 0 && is_word_char(text, len, start, 1)) ||
                               (stop < len && is_word_char(text, len, stop, 0))))
            continue;
        if (t->lstrip) start = strip_left(text, done, start);
        if (t->rstrip) stop = strip_right(text, len, stop);
        if (start > done) {
            if (!normalized) LM_TRY(encode_pass(m, s, use_cache, 1, text + done, start - done, out));
            else LM_TRY(encode_segment(m, s, use_cache, text + done, start - done, out));
        }
        LM_TRY(lm_ids_push(out, t->id));
        done = stop;
        any = 1;
    }
    if (done < len || !any) {
        if (!normalized) return encode_pass(m, s, use_cache, 1, text + done, len - done, out);
        return encode_segment(m, s, use_cache, text + done, len - done, out);
    }
    return LM_OK;
}

lm_status bpe_model_encode(bpe_model *m, const char *text, size_t len, lm_ids *out) {
    if (!text && len) return lm_error_set(LM_ERR_INVALID, "BPE tokenizer: encode() got NULL text of length %zu", len);
    int use_cache = pthread_mutex_trylock(&m->cache.lock) == 0;
    if (use_cache && !bpe_word_cache_init(&m->cache)) {
        pthread_mutex_unlock(&m->cache.lock);
        use_cache = 0;
    }
    scratch s = {0};
    lm_status status = encode_pass(m, &s, use_cache, 0, (const unsigned char *)(text ? text : ""), len, out);
    if (use_cache) pthread_mutex_unlock(&m->cache.lock);
    free(s.symbols);
    free(s.heap);
    lm_buffer_free(&s.token);
    lm_ids_free(&s.word_ids);
    return status;
}
