/* BertNormalizer + BertPreTokenizer, fused into one pass over the text.
 *
 * HF applies, in order: clean_text (drop controls / U+FFFD / NUL, whitespace
 * -> ' '), handle_chinese_chars (" c " around CJK ideographs), strip_accents
 * (NFD, drop Mn), lowercase; then BertPreTokenizer splits on whitespace and
 * isolates each punctuation character.  Each input character maps to 0..3
 * normalized characters, each of which feeds the word splitter. */
#include <stdlib.h>
#include <string.h>

#include "bert_unicode.h"
#include "unicode.h"
#include "wordpiece.h"

lm_status wp_pretok_init(wp_pretok *p, const wp_normalizer *norm, size_t max_chars) {
    memset(p, 0, sizeof *p);
    p->norm = *norm;
    p->max_chars = max_chars;
    p->word_cap = 256;
    p->word = malloc(p->word_cap);
    if (!p->word) return lm_error_set(LM_ERR_NOMEM, "out of memory for the WordPiece word buffer");
    return LM_OK;
}

void wp_pretok_free(wp_pretok *p) {
    free(p->word);
    p->word = NULL;
}

/* Length of the maximal invalid subsequence at s (Unicode's "maximal subpart"
 * rule, which Python's "replace" error handler follows): the longest prefix
 * that could still start a valid sequence, at least one byte. */
static size_t utf8_invalid_span(const unsigned char *s, size_t len) {
    unsigned char b = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else return 1;
    size_t i = 1;
    while (i <= need && i < len && s[i] >= lo && s[i] <= hi) {
        lo = 0x80;
        hi = 0xBF;
        i++;
    }
    return i;
}

static lm_status flush(wp_pretok *p, wp_word_fn fn, void *ctx) {
    if (p->word_chars == 0) return LM_OK;
    lm_status status = fn(ctx, p->word, p->word_len, p->word_chars);
    p->word_len = 0;
    p->word_chars = 0;
    return status;
}

static lm_status append(wp_pretok *p, uint32_t cp) {
    p->word_chars++;
    if (p->word_chars > p->max_chars) return LM_OK; /* too long: becomes [UNK], only counted */
    if (p->word_len + 4 > p->word_cap) {
        size_t cap = p->word_cap * 2;
        char *w = realloc(p->word, cap);
        if (!w) return lm_error_set(LM_ERR_NOMEM, "out of memory for a %zu-byte word", cap);
        p->word = w;
        p->word_cap = cap;
    }
    if (cp < 0x80) p->word[p->word_len++] = (char)cp;
    else p->word_len += lm_utf8_encode(cp, p->word + p->word_len);
    return LM_OK;
}

/* The pre-tokenizer on one normalized character. */
static lm_status split_char(wp_pretok *p, uint32_t cp, wp_word_fn fn, void *ctx) {
    unsigned cls = bert_char_class(cp);
    if (cls & BERT_WS_SPLIT) return flush(p, fn, ctx);
    if (cls & BERT_PUNCT) {
        LM_TRY(flush(p, fn, ctx));
        LM_TRY(append(p, cp));
        return flush(p, fn, ctx);
    }
    return append(p, cp);
}

/* strip_accents and lowercase on one character, then the pre-tokenizer. */
static lm_status map_char(wp_pretok *p, uint32_t cp, int strip, wp_word_fn fn, void *ctx) {
    uint32_t stripped[3], lowered[3];
    size_t n = 1;
    stripped[0] = cp;
    if (strip) n = bert_strip_accents(cp, stripped);
    for (size_t i = 0; i < n; i++) {
        if (!p->norm.lowercase) {
            LM_TRY(split_char(p, stripped[i], fn, ctx));
            continue;
        }
        size_t m = bert_lowercase(stripped[i], lowered);
        for (size_t j = 0; j < m; j++) LM_TRY(split_char(p, lowered[j], fn, ctx));
    }
    return LM_OK;
}

lm_status wp_pretokenize(wp_pretok *p, const char *text, size_t len, wp_word_fn fn, void *ctx) {
    const unsigned char *s = (const unsigned char *)text;
    const int strip = p->norm.strip_accents < 0 ? p->norm.lowercase : p->norm.strip_accents;
    const int plain = !strip && !p->norm.lowercase;
    p->word_len = 0;
    p->word_chars = 0;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        if (s[i] < 0x80) {
            cp = s[i++];
        } else {
            int n = lm_utf8_decode(s + i, len - i, &cp);
            if (n > 0) {
                i += (size_t)n;
            } else {
                cp = 0xFFFD;
                i += utf8_invalid_span(s + i, len - i);
            }
        }
        unsigned cls = bert_char_class(cp);
        if (p->norm.clean_text) {
            if (cls & BERT_REMOVED) continue;
            if (cls & BERT_WS_NORM) {
                LM_TRY(flush(p, fn, ctx));
                continue;
            }
        }
        if (p->norm.handle_chinese_chars && (cls & BERT_CJK)) {
            LM_TRY(flush(p, fn, ctx));
            LM_TRY(map_char(p, cp, strip, fn, ctx));
            LM_TRY(flush(p, fn, ctx));
            continue;
        }
        if (plain) {
            /* Fast path of the cased model: the class is already known. */
            if (cls & BERT_WS_SPLIT) {
                LM_TRY(flush(p, fn, ctx));
            } else if (cls & BERT_PUNCT) {
                LM_TRY(flush(p, fn, ctx));
                LM_TRY(append(p, cp));
                LM_TRY(flush(p, fn, ctx));
            } else {
                LM_TRY(append(p, cp));
            }
            continue;
        }
        LM_TRY(map_char(p, cp, strip, fn, ctx));
    }
    return flush(p, fn, ctx);
}
