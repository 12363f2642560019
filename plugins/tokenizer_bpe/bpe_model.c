/* Building the BPE model: vocabulary, merges, added tokens, decoding. */
#include "bpe_model.h"

#include <stdlib.h>
#include <string.h>

#include <lmcore/status.h>

#include "bpe_pretok.h"
#include "bpe_word_cache.h"
#include "unicode.h"

lm_status bpe_model_create(bpe_model **out) {
    bpe_model *m = calloc(1, sizeof(*m));
    if (!m) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory creating the model");
    m->unk_id = -1;
    m->use_regex = 1;
    m->trim_offsets = 1;
    m->post_processor = 1;
    m->post_add_prefix_space = 1;
    m->post_trim_offsets = 1;
    m->post_use_regex = 1;
    m->has_decoder = 1;
    for (int b = 0; b < 256; b++) m->byte_id[b] = -1;
    if (pthread_mutex_init(&m->cache.lock, NULL) != 0) {
        free(m);
        return lm_error_set(LM_ERR_INTERNAL, "BPE tokenizer: pthread_mutex_init failed");
    }
    *out = m;
    return LM_OK;
}

void bpe_model_destroy(bpe_model *m) {
    if (!m) return;
    free(m->tok_off);
    free(m->tok_len);
    lm_buffer_free(&m->tok_text);
    free(m->dec_off);
    free(m->dec_len);
    lm_buffer_free(&m->dec_bytes);
    bpe_strmap_free(&m->vocab);
    bpe_u64map_free(&m->merges);
    free(m->merge_pairs);
    free(m->merge_dead);
    for (size_t i = 0; i < m->n_added; i++) free(m->added[i].content);
    free(m->added);
    free(m->special_ids);
    bpe_word_cache_free(&m->cache);
    pthread_mutex_destroy(&m->cache.lock);
    free(m);
}

/* Makes ids 0..id valid indices of the per-id arrays (new slots are holes). */
static lm_status ensure_id(bpe_model *m, int32_t id) {
    if (id < m->n_ids) return LM_OK;
    size_t n = (size_t)id + 1, cap = 16;
    while (cap < n) cap *= 2;
    int64_t *off = realloc(m->tok_off, cap * sizeof(*off));
    if (off) m->tok_off = off;
    int32_t *len = realloc(m->tok_len, cap * sizeof(*len));
    if (len) m->tok_len = len;
    if (!off || !len) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory for %zu token ids", n);
    for (size_t i = (size_t)m->n_ids; i < cap; i++) {
        m->tok_off[i] = 0;
        m->tok_len[i] = -1;
    }
    m->n_ids = (int32_t)n;
    return LM_OK;
}

lm_status bpe_model_set_token(bpe_model *m, int32_t id, const char *token, size_t len, const char *where) {
    if (id < 0 || id >= INT32_MAX - 1)
        return lm_error_set(LM_ERR_FORMAT, "%s: token id %ld is out of range", where, (long)id);
    if (len >= INT32_MAX) return lm_error_set(LM_ERR_FORMAT, "%s: token of %zu bytes is too long", where, len);
    LM_TRY(ensure_id(m, id));
    if (m->tok_len[id] >= 0)
        return lm_error_set(LM_ERR_FORMAT, "%s: id %d is given to two tokens ('%.*s' and '%.*s')", where, id,
                            m->tok_len[id], m->tok_text.data + m->tok_off[id], (int)len, token);
    int32_t stored = id;
    int inserted = 0;
    LM_TRY(bpe_strmap_intern(&m->vocab, token, len, &stored, &inserted));
    if (!inserted)
        return lm_error_set(LM_ERR_FORMAT, "%s: token '%.*s' appears twice in the vocabulary (ids %d and %d)",
                            where, (int)len, token, stored, id);
    m->tok_off[id] = (int64_t)m->tok_text.len;
    m->tok_len[id] = (int32_t)len;
    return lm_buffer_append(&m->tok_text, token, len);
}

lm_status bpe_model_add_merge_ids(bpe_model *m, int32_t a, int32_t b, int32_t merged) {
    if (m->n_merges == m->merges_cap) {
        size_t cap = m->merges_cap ? m->merges_cap * 2 : 1024;
        uint64_t *pairs = realloc(m->merge_pairs, cap * sizeof(*pairs));
        if (pairs) m->merge_pairs = pairs;
        uint8_t *dead = realloc(m->merge_dead, cap);
        if (dead) m->merge_dead = dead;
        if (!pairs || !dead) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory for %zu merges", cap);
        m->merges_cap = cap;
    }
    uint64_t pair = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t previous;
    if (bpe_u64map_get(&m->merges, pair, &previous)) m->merge_dead[previous >> 32] = 1;
    size_t rank = m->n_merges++;
    m->merge_pairs[rank] = pair;
    m->merge_dead[rank] = 0;
    return bpe_u64map_put(&m->merges, pair, ((uint64_t)rank << 32) | (uint32_t)merged);
}

lm_status bpe_model_add_merge(bpe_model *m, const char *a, size_t a_len, const char *b, size_t b_len,
                              const char *where) {
    int32_t ia = bpe_strmap_get(&m->vocab, a, a_len);
    int32_t ib = bpe_strmap_get(&m->vocab, b, b_len);
    if (ia < 0 || ib < 0) {
        const char *missing = ia < 0 ? a : b;
        size_t missing_len = ia < 0 ? a_len : b_len;
        return lm_error_set(LM_ERR_FORMAT, "%s: merge %zu ('%.*s' '%.*s') uses '%.*s', which is not in the vocabulary",
                            where, m->n_merges + 1, (int)a_len, a, (int)b_len, b, (int)missing_len, missing);
    }
    lm_buffer joined = {0};
    lm_status status = lm_buffer_append(&joined, a, a_len);
    if (status == LM_OK) status = lm_buffer_append(&joined, b, b_len);
    int32_t merged = status == LM_OK ? bpe_strmap_get(&m->vocab, joined.data, joined.len) : -1;
    if (status == LM_OK && merged < 0)
        status = lm_error_set(LM_ERR_FORMAT, "%s: merge %zu ('%.*s' '%.*s') makes '%s', which is not in the vocabulary",
                              where, m->n_merges + 1, (int)a_len, a, (int)b_len, b, joined.data);
    lm_buffer_free(&joined);
    LM_TRY(status);
    return bpe_model_add_merge_ids(m, ia, ib, merged);
}

lm_status bpe_model_add_added(bpe_model *m, const char *content, size_t len, int32_t id, int special,
                              const char *where) {
    if (len == 0) return lm_error_set(LM_ERR_FORMAT, "%s: an added token has empty content", where);
    for (size_t i = 0; i < m->n_added; i++)
        if (m->added[i].len == len && memcmp(m->added[i].content, content, len) == 0) return LM_OK;
    if (id < 0) {
        id = bpe_strmap_get(&m->vocab, content, len);
        if (id < 0) {
            id = m->n_ids;
            for (size_t i = 0; i < m->n_added; i++)
                if (m->added[i].id >= id) id = m->added[i].id + 1;
        }
    }
    bpe_added_token *grown = realloc(m->added, (m->n_added + 1) * sizeof(*grown));
    if (!grown) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory for added tokens");
    m->added = grown;
    bpe_added_token *t = &m->added[m->n_added];
    memset(t, 0, sizeof(*t));
    t->content = malloc(len + 1);
    if (!t->content) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory for added tokens");
    memcpy(t->content, content, len);
    t->content[len] = '\0';
    t->len = len;
    t->id = id;
    t->special = special;
    t->normalized = !special; /* HF's AddedToken default */
    m->n_added++;
    return LM_OK;
}

/* By id, then content (ids are unique once finish() has checked them). */
static int compare_added_tokens(const void *a, const void *b) {
    const bpe_added_token *x = a, *y = b;
    if (x->id != y->id) return (x->id > y->id) - (x->id < y->id);
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->content, y->content, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int compare_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* HF's ByteLevel decoder: a token whose characters all stand for bytes
 * becomes those bytes; any other token (an added "<my tok>") stays as is. */
static lm_status append_decoded(lm_buffer *out, const char *token, size_t len) {
    unsigned char bytes[256];
    size_t n = 0, i = 0;
    int all_bytes = 1;
    size_t start = out->len;
    while (i < len) {
        uint32_t cp;
        int k = lm_utf8_decode((const unsigned char *)token + i, len - i, &cp);
        int b = k > 0 ? bpe_codepoint_to_byte(cp) : -1;
        if (b < 0) {
            all_bytes = 0;
            break;
        }
        bytes[n++] = (unsigned char)b;
        if (n == sizeof(bytes)) {
            LM_TRY(lm_buffer_append(out, bytes, n));
            n = 0;
        }
        i += (size_t)k;
    }
    if (!all_bytes) {
        out->len = start;
        return lm_buffer_append(out, token, len);
    }
    return lm_buffer_append(out, bytes, n);
}

lm_status bpe_model_finish(bpe_model *m, const char *where) {
    for (int b = 0; b < 256; b++) {
        char utf8[2];
        size_t n = bpe_byte_to_utf8((unsigned char)b, utf8);
        m->byte_id[b] = bpe_strmap_get(&m->vocab, utf8, n);
    }
    for (size_t i = 0; i < m->n_added; i++) {
        bpe_added_token *t = &m->added[i];
        if (t->id >= m->n_ids || m->tok_len[t->id] < 0) {
            /* An added token outside the model vocabulary (HF allows it). */
            LM_TRY(ensure_id(m, t->id));
            m->tok_off[t->id] = (int64_t)m->tok_text.len;
            m->tok_len[t->id] = (int32_t)t->len;
            LM_TRY(lm_buffer_append(&m->tok_text, t->content, t->len));
        } else if ((size_t)m->tok_len[t->id] != t->len ||
                   memcmp(m->tok_text.data + m->tok_off[t->id], t->content, t->len) != 0) {
            return lm_error_set(LM_ERR_FORMAT, "%s: added token '%s' has id %d, which the vocabulary gives to '%.*s'",
                                where, t->content, t->id, m->tok_len[t->id], m->tok_text.data + m->tok_off[t->id]);
        }
    }
    if (m->n_ids == 0) return lm_error_set(LM_ERR_FORMAT, "%s: the vocabulary is empty", where);
    /* Added tokens in id order, whatever their order in the file: save writes
     * them so, and the fingerprint and info() (pad/eos) read them in this
     * order, so a saved and reloaded tokenizer is the same tokenizer.  Matching
     * does not depend on it (leftmost-longest; equal contents are merged). */
    if (m->n_added > 1) qsort(m->added, m->n_added, sizeof(*m->added), compare_added_tokens);

    free(m->dec_off);
    free(m->dec_len);
    m->dec_off = malloc((size_t)m->n_ids * sizeof(*m->dec_off));
    m->dec_len = malloc((size_t)m->n_ids * sizeof(*m->dec_len));
    if (!m->dec_off || !m->dec_len) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory for the decoder");
    lm_buffer_clear(&m->dec_bytes);
    for (int32_t id = 0; id < m->n_ids; id++) {
        m->dec_off[id] = (int64_t)m->dec_bytes.len;
        m->dec_len[id] = -1;
        if (m->tok_len[id] < 0) continue;
        LM_TRY(append_decoded(&m->dec_bytes, m->tok_text.data + m->tok_off[id], (size_t)m->tok_len[id]));
        m->dec_len[id] = (int32_t)(m->dec_bytes.len - (size_t)m->dec_off[id]);
    }

    free(m->special_ids);
    m->special_ids = NULL;
    m->n_special = 0;
    memset(m->added_first_byte, 0, sizeof(m->added_first_byte));
    if (m->n_added) {
        m->special_ids = malloc(m->n_added * sizeof(*m->special_ids));
        if (!m->special_ids) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory for special ids");
    }
    for (size_t i = 0; i < m->n_added; i++) {
        m->added_first_byte[(unsigned char)m->added[i].content[0]] = 1;
        if (m->added[i].special) m->special_ids[m->n_special++] = m->added[i].id;
    }
    if (m->n_special) qsort(m->special_ids, m->n_special, sizeof(int32_t), compare_i32);
    bpe_word_cache_clear(&m->cache);
    return LM_OK;
}

const char *bpe_model_token(const bpe_model *m, int32_t id, size_t *len) {
    if (id < 0 || id >= m->n_ids || m->tok_len[id] < 0) return NULL;
    *len = (size_t)m->tok_len[id];
    return m->tok_text.data + m->tok_off[id];
}

int32_t bpe_model_find(const bpe_model *m, const char *token, size_t len) {
    for (size_t i = 0; i < m->n_added; i++)
        if (m->added[i].len == len && memcmp(m->added[i].content, token, len) == 0) return m->added[i].id;
    return bpe_strmap_get(&m->vocab, token, len);
}

static int is_special(const bpe_model *m, int32_t id) {
    size_t lo = 0, hi = m->n_special;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->special_ids[mid] == id) return 1;
        if (m->special_ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* Lossless: the bytes of the tokens, even when they are not valid UTF-8
 * (HF's decode() would turn those into U+FFFD; lmcore keeps the bytes so
 * that decode(encode(x)) == x for any byte string x). */
lm_status bpe_model_decode(const bpe_model *m, const int32_t *ids, size_t n, int skip_special, lm_buffer *out) {
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= m->n_ids || m->dec_len[id] < 0)
            return lm_error_set(LM_ERR_INVALID, "BPE tokenizer: cannot decode id %d (position %zu): not in the vocabulary of %d ids",
                                id, i, m->n_ids);
        if (skip_special && m->n_special && is_special(m, id)) continue;
        LM_TRY(lm_buffer_append(out, m->dec_bytes.data + m->dec_off[id], (size_t)m->dec_len[id]));
    }
    return LM_OK;
}

lm_status bpe_bytes_to_token(const void *bytes, size_t len, lm_buffer *out) {
    const unsigned char *p = (const unsigned char *)bytes;
    for (size_t i = 0; i < len; i++) {
        char utf8[2];
        size_t n = bpe_byte_to_utf8(p[i], utf8);
        LM_TRY(lm_buffer_append(out, utf8, n));
    }
    return LM_OK;
}
