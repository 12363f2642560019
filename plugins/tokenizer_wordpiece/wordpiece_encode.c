/* Encoding (special-token split, BERT normalisation and pre-tokenisation,
 * greedy longest-match-first WordPiece, [CLS] ... [SEP]) and decoding
 * (HF's decoders.WordPiece), as Hugging Face tokenizers does them.
 *
 * Invalid UTF-8: HF's encode() takes a Python str, lmcore gets bytes.  We
 * decode bytes as Python's bytes.decode("utf-8", errors="replace") would
 * (one U+FFFD per maximal invalid subsequence), so that lmcore on bytes
 * equals HF on that decoded string.  With clean_text (BERT's default) U+FFFD
 * is then removed like any control character: invalid bytes vanish without
 * splitting the word they sit in ("ab\xffcd" encodes like "abcd"). */
#include <stdlib.h>
#include <string.h>

#include "wordpiece.h"

typedef struct encode_ctx {
    wp_tokenizer *t;
    lm_ids *out;
} encode_ctx;

static inline int is_continuation_byte(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

/* The WordPiece model on one word: longest vocabulary prefix first, then the
 * longest "##" continuation, and so on; [UNK] for the whole word if some
 * position has no match or the word has too many characters. */
static lm_status encode_word(void *ctx_, const char *word, size_t len, size_t n_chars) {
    encode_ctx *ctx = ctx_;
    wp_tokenizer *t = ctx->t;
    lm_ids *out = ctx->out;
    if (n_chars > t->max_input_chars_per_word) return lm_ids_push(out, t->unk_id);
    size_t rollback = out->len;
    size_t start = 0;
    while (start < len) {
        size_t limit = start == 0 ? t->max_token_len : t->max_continuation_len;
        size_t end = len - start > limit ? start + limit : len;
        while (end > start && end < len && is_continuation_byte(word[end])) end--;
        int32_t id = -1;
        while (end > start) {
            if (start == 0) {
                id = wp_vocab_find(&t->vocab, word, end);
            } else {
                int32_t c = wp_vocab_find(&t->continuation, word + start, end - start);
                if (c >= 0) id = t->continuation_ids[c];
            }
            if (id >= 0) break;
            end--;
            while (end > start && is_continuation_byte(word[end])) end--;
        }
        if (id < 0) {
            out->len = rollback;
            return lm_ids_push(out, t->unk_id);
        }
        LM_TRY(lm_ids_push(out, id));
        start = end;
    }
    return LM_OK;
}

/* The longest added token that starts at text[pos], or NULL. */
static const wp_added_token *match_added(const wp_tokenizer *t, const char *text, size_t len, size_t pos) {
    const wp_added_token *best = NULL;
    for (size_t k = 0; k < t->n_added; k++) {
        const wp_added_token *a = &t->added[k];
        if (a->len == 0 || a->len > len - pos || (best && a->len <= best->len)) continue;
        if (memcmp(text + pos, a->content, a->len) == 0) best = a;
    }
    return best;
}

lm_status wp_encode(wp_tokenizer *t, const char *text, size_t len, int add_special, lm_ids *out) {
    if (!t->trained)
        return lm_error_set(LM_ERR_INVALID,
                            "the wordpiece tokenizer has no vocabulary yet: train it or create it with path=...");
    if (!text && len) return lm_error_set(LM_ERR_INVALID, "wordpiece encode: text is NULL");
    if (add_special) LM_TRY(lm_ids_append(out, t->template_before, t->n_before));
    wp_pretok pretok;
    LM_TRY(wp_pretok_init(&pretok, &t->norm, t->max_input_chars_per_word));
    encode_ctx ctx = {t, out};
    lm_status status = LM_OK;
    /* Added tokens are found in the raw text first (HF's AddedVocabulary,
     * leftmost-longest); the text between them is normalized and split. */
    size_t segment = 0, pos = 0;
    while (pos < len) {
        const wp_added_token *a = NULL;
        if (t->added_first_byte[(unsigned char)text[pos]]) a = match_added(t, text, len, pos);
        if (!a) {
            pos++;
            continue;
        }
        LM_CHECK(wp_pretokenize(&pretok, text + segment, pos - segment, encode_word, &ctx));
        LM_CHECK(lm_ids_push(out, a->id));
        pos += a->len;
        segment = pos;
    }
    LM_CHECK(wp_pretokenize(&pretok, text + segment, len - segment, encode_word, &ctx));
    if (add_special) LM_CHECK(lm_ids_append(out, t->template_after, t->n_after));
fail:
    wp_pretok_free(&pretok);
    return status;
}

static int is_special(const wp_tokenizer *t, int32_t id) {
    size_t lo = 0, hi = t->n_special;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->special_ids[mid] < id) lo = mid + 1;
        else if (t->special_ids[mid] > id) hi = mid;
        else return 1;
    }
    return 0;
}

/* Appends s with every occurrence of `from` replaced by `to` (Rust's
 * str::replace: left to right, non-overlapping). */
static lm_status replace_all(lm_buffer *out, const char *s, size_t len, const char *from, const char *to) {
    size_t from_len = strlen(from), to_len = strlen(to), i = 0, copied = 0;
    while (i + from_len <= len) {
        if (memcmp(s + i, from, from_len) == 0) {
            LM_TRY(lm_buffer_append(out, s + copied, i - copied));
            LM_TRY(lm_buffer_append(out, to, to_len));
            i += from_len;
            copied = i;
        } else {
            i++;
        }
    }
    return lm_buffer_append(out, s + copied, len - copied);
}

/* HF's decoders::wordpiece::cleanup, applied to each piece. */
static lm_status cleanup_piece(lm_buffer *out, const char *piece, size_t len, lm_buffer *a, lm_buffer *b) {
    static const char *const rules[][2] = {{" .", "."},         {" ?", "?"},     {" !", "!"},   {" ,", ","},
                                           {" ' ", "'"},        {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"},
                                           {" 's", "'s"},       {" 've", "'ve"}, {" 're", "'re"}};
    lm_buffer *src = a, *dst = b;
    lm_buffer_clear(src);
    LM_TRY(lm_buffer_append(src, piece, len));
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        lm_buffer_clear(dst);
        LM_TRY(replace_all(dst, src->data, src->len, rules[r][0], rules[r][1]));
        lm_buffer *tmp = src;
        src = dst;
        dst = tmp;
    }
    return lm_buffer_append(out, src->data, src->len);
}

lm_status wp_decode(wp_tokenizer *t, const int32_t *ids, size_t n, int skip_special, lm_buffer *out) {
    if (!t->trained)
        return lm_error_set(LM_ERR_INVALID,
                            "the wordpiece tokenizer has no vocabulary yet: train it or create it with path=...");
    for (size_t i = 0; i < n; i++)
        if (!wp_vocab_token(&t->vocab, ids[i], NULL))
            return lm_error_set(LM_ERR_INVALID, "wordpiece decode: id %d at position %zu is not in the vocabulary "
                                "(ids are 0..%d)", (int)ids[i], i, (int)t->vocab.count - 1);
    LM_TRY(lm_buffer_reserve(out, out->len + n * 8));
    out->data[out->len] = '\0'; /* text even when every id is skipped */
    lm_buffer piece = {0}, scratch_a = {0}, scratch_b = {0};
    lm_status status = LM_OK;
    size_t emitted = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip_special && is_special(t, ids[i])) continue;
        size_t len;
        const char *tok = wp_vocab_token(&t->vocab, ids[i], &len);
        if (!t->decoder_wordpiece) { /* no decoder: HF joins the tokens with spaces */
            if (emitted) LM_CHECK(lm_buffer_append(out, " ", 1));
            LM_CHECK(lm_buffer_append(out, tok, len));
            emitted++;
            continue;
        }
        lm_buffer_clear(&piece);
        if (emitted == 0) {
            LM_CHECK(lm_buffer_append(&piece, tok, len));
        } else if (len >= t->decoder_prefix_len && memcmp(tok, t->decoder_prefix, t->decoder_prefix_len) == 0) {
            LM_CHECK(lm_buffer_append(&piece, tok + t->decoder_prefix_len, len - t->decoder_prefix_len));
        } else {
            LM_CHECK(lm_buffer_append(&piece, " ", 1));
            LM_CHECK(lm_buffer_append(&piece, tok, len));
        }
        if (t->decoder_cleanup) LM_CHECK(cleanup_piece(out, piece.data, piece.len, &scratch_a, &scratch_b));
        else LM_CHECK(lm_buffer_append(out, piece.data, piece.len));
        emitted++;
    }
fail:
    lm_buffer_free(&piece);
    lm_buffer_free(&scratch_a);
    lm_buffer_free(&scratch_b);
    return status;
}
