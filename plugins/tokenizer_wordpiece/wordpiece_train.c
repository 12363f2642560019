/* Training, reproducing Hugging Face's WordPieceTrainer.
 *
 * HF's WordPieceTrainer is its BPE trainer run with
 * continuing_subword_prefix "##" (tokenizers/src/models/bpe/trainer.rs),
 * whose vocabulary then becomes the WordPiece vocabulary:
 *   1. special tokens get the first ids;
 *   2. the alphabet (every character of the words, limited to the
 *      `limit_alphabet` most frequent if set) follows in code point order;
 *   3. each word becomes symbols: its first character, then "##c" for each
 *      following one; new "##c" tokens get the next ids as they are met;
 *   4. pairs of adjacent symbols are counted (weighted by word frequency) and
 *      merged greedily: highest count first, ties to the smallest
 *      (left id, right id) pair; the new token is left + right without its
 *      "##"; training stops at vocab_size, or when the best count is below
 *      min_frequency.
 * The queue is lazy like HF's: an entry holds a count and the words where the
 * pair was seen; a popped entry whose count is stale is pushed back with the
 * current count, and a merge only rewrites the words of the entry popped.
 *
 * One deliberate difference: in step 3 HF walks its word HashMap, whose
 * order is random per process, so the ids of the "##c" tokens (and through
 * them the merge tie-breaks) differ from one HF run to the next.  lmcore
 * gives "##c" ids in code point order, or in the order of the config list
 * `continuation_order` (e.g. taken from an HF-trained vocabulary), which
 * reproduces that HF run exactly. */
#include <stdlib.h>
#include <string.h>

#include "lmcore/log.h"
#include "unicode.h"
#include "wordpiece.h"
#include "wordpiece_train.h"

/* ---- step 1: counting words ---------------------------------------------- */

static lm_status count_word(void *ctx, const char *word, size_t len, size_t n_chars) {
    wp_trainer *tr = ctx;
    int32_t id = wp_vocab_find(&tr->words, word, len);
    if (id < 0) {
        LM_TRY(wp_vocab_push(&tr->words, word, len, &id));
        if ((size_t)id >= tr->counts_cap) {
            size_t cap = tr->counts_cap ? tr->counts_cap * 2 : 4096;
            uint64_t *c = realloc(tr->counts, cap * sizeof *c);
            if (!c) return lm_error_set(LM_ERR_NOMEM, "out of memory counting training words");
            tr->counts = c;
            tr->counts_cap = cap;
        }
        tr->counts[id] = 0;
    }
    tr->counts[id]++;
    (void)n_chars;
    return LM_OK;
}

static lm_status count_words(wp_tokenizer *t, wp_trainer *tr, const lm_text_source *rows) {
    wp_pretok pretok;
    LM_TRY(wp_pretok_init(&pretok, &t->norm, SIZE_MAX)); /* training counts whole words, however long */
    lm_progress *progress = lm_progress_begin("wordpiece: counting words", rows->count);
    lm_status status = LM_OK;
    for (size_t r = 0; r < rows->count; r++) {
        const char *text = NULL;
        size_t len = 0;
        status = rows->row(rows->ctx, r, &text, &len);
        if (status != LM_OK) {
            lm_error_prefix("wordpiece training, reading row %zu: ", r);
            break;
        }
        if ((r & 1023) == 0) {
            if (lm_interrupted()) {
                status = lm_error_set(LM_ERR_INTERRUPTED, "wordpiece training interrupted while counting words");
                break;
            }
            lm_progress_update(progress, r);
        }
        if (len) LM_CHECK(wp_pretokenize(&pretok, text, len, count_word, tr));
    }
    lm_progress_update(progress, rows->count);
fail:
    lm_progress_end(progress);
    wp_pretok_free(&pretok);
    return status;
}

/* ---- step 2: the alphabet -------------------------------------------------- */

typedef struct char_count {
    uint32_t cp;
    uint64_t count;
} char_count;

static int by_count_then_cp(const void *a, const void *b) {
    const char_count *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? -1 : 1;
    return x->cp > y->cp ? -1 : x->cp < y->cp; /* HF's ties are in hash order; ours drop high code points first */
}

static int by_cp(const void *a, const void *b) {
    const char_count *x = a, *y = b;
    return x->cp < y->cp ? -1 : x->cp > y->cp;
}

/* Decodes a word (valid UTF-8: it came out of the pre-tokenizer). */
static size_t next_char(const char *s, size_t len, size_t i, uint32_t *cp) {
    int n = lm_utf8_decode((const unsigned char *)s + i, len - i, cp);
    return n > 0 ? (size_t)n : 1;
}

static lm_status build_alphabet(wp_tokenizer *t, wp_trainer *tr) {
    LM_TRY(wp_cpmap_init(&tr->chars, 1024));
    for (int32_t w = 0; w < tr->words.count; w++) {
        size_t len;
        const char *word = wp_vocab_token(&tr->words, w, &len);
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            i += next_char(word, len, i, &cp);
            uint32_t *slot;
            LM_TRY(wp_cpmap_get(&tr->chars, cp, &slot));
            tr->chars.counts[*slot] += tr->counts[w];
        }
    }
    size_t n = tr->chars.n;
    char_count *all = malloc((n ? n : 1) * sizeof *all);
    if (!all) return lm_error_set(LM_ERR_NOMEM, "out of memory building the alphabet");
    for (size_t i = 0; i < n; i++) all[i] = (char_count){tr->chars.cps[i], tr->chars.counts[i]};
    size_t keep_from = 0;
    if (t->limit_alphabet >= 0 && n > (size_t)t->limit_alphabet) {
        qsort(all, n, sizeof *all, by_count_then_cp);
        keep_from = n - (size_t)t->limit_alphabet;
    }
    qsort(all + keep_from, n - keep_from, sizeof *all, by_cp);
    lm_status status = LM_OK;
    for (size_t i = keep_from; i < n; i++) {
        char buf[4];
        size_t blen = lm_utf8_encode(all[i].cp, buf);
        if (wp_vocab_find(&t->vocab, buf, blen) < 0) LM_CHECK(wp_vocab_push(&t->vocab, buf, blen, NULL));
    }
fail:
    free(all);
    return status;
}

/* ---- step 3: words as symbols ---------------------------------------------- */

static lm_status symbol_of(wp_tokenizer *t, uint32_t cp, int first, int32_t *id) {
    char buf[4 + sizeof t->prefix];
    char one[4];
    size_t n = lm_utf8_encode(cp, one);
    *id = -1;
    if (wp_vocab_find(&t->vocab, one, n) < 0) return LM_OK; /* not in the kept alphabet: HF drops it */
    size_t len = 0;
    if (!first) {
        memcpy(buf, t->prefix, t->prefix_len);
        len = t->prefix_len;
    }
    memcpy(buf + len, one, n);
    len += n;
    *id = wp_vocab_find(&t->vocab, buf, len);
    if (*id < 0) return lm_error_set(LM_ERR_INTERNAL, "wordpiece training: symbol for U+%04X missing", (unsigned)cp);
    return LM_OK;
}

/* Adds the "##c" tokens: those of `continuation_order` first (when the
 * corpus needs them), then the others in code point order. */
static lm_status add_continuations(wp_tokenizer *t, wp_trainer *tr) {
    wp_cpmap needed;
    LM_TRY(wp_cpmap_init(&needed, 256));
    lm_status status = LM_OK;
    char_count *list = NULL;
    for (int32_t w = 0; w < tr->words.count; w++) {
        size_t len;
        const char *word = wp_vocab_token(&tr->words, w, &len);
        int first = 1;
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            i += next_char(word, len, i, &cp);
            char one[4];
            size_t n = lm_utf8_encode(cp, one);
            /* "First" is the position in the word, even when the first
             * character was dropped by limit_alphabet (as in HF). */
            if (!first && wp_vocab_find(&t->vocab, one, n) >= 0) {
                uint32_t *slot;
                LM_CHECK(wp_cpmap_get(&needed, cp, &slot));
            }
            first = 0;
        }
    }
    for (size_t k = 0; k < t->n_continuation_order; k++) {
        const char *tok = t->continuation_order[k];
        size_t len = strlen(tok);
        uint32_t cp;
        if (len <= t->prefix_len || memcmp(tok, t->prefix, t->prefix_len) != 0 ||
            lm_utf8_decode((const unsigned char *)tok + t->prefix_len, len - t->prefix_len, &cp) !=
                (int)(len - t->prefix_len)) {
            status = lm_error_set(LM_ERR_INVALID, "continuation_order[%zu] = '%s' is not '%s' followed by one character",
                                  k + 1, tok, t->prefix);
            goto fail;
        }
        if (wp_cpmap_find(&needed, cp) >= 0 && wp_vocab_find(&t->vocab, tok, len) < 0)
            LM_CHECK(wp_vocab_push(&t->vocab, tok, len, NULL));
    }
    list = malloc((needed.n ? needed.n : 1) * sizeof *list);
    if (!list) {
        status = lm_error_set(LM_ERR_NOMEM, "out of memory listing continuation characters");
        goto fail;
    }
    for (size_t i = 0; i < needed.n; i++) list[i] = (char_count){needed.cps[i], 0};
    qsort(list, needed.n, sizeof *list, by_cp);
    for (size_t i = 0; i < needed.n; i++) {
        char buf[4 + sizeof t->prefix];
        memcpy(buf, t->prefix, t->prefix_len);
        size_t len = t->prefix_len + lm_utf8_encode(list[i].cp, buf + t->prefix_len);
        if (wp_vocab_find(&t->vocab, buf, len) < 0) LM_CHECK(wp_vocab_push(&t->vocab, buf, len, NULL));
    }
fail:
    free(list);
    wp_cpmap_free(&needed);
    return status;
}

static lm_status build_symbols(wp_tokenizer *t, wp_trainer *tr) {
    size_t total = 0;
    for (int32_t w = 0; w < tr->words.count; w++) {
        size_t len;
        wp_vocab_token(&tr->words, w, &len);
        total += len; /* an upper bound on the characters */
    }
    size_t n_words = (size_t)tr->words.count;
    tr->syms = malloc((total ? total : 1) * sizeof *tr->syms);
    tr->word_off = malloc((n_words ? n_words : 1) * sizeof *tr->word_off);
    tr->word_len = malloc((n_words ? n_words : 1) * sizeof *tr->word_len);
    if (!tr->syms || !tr->word_off || !tr->word_len)
        return lm_error_set(LM_ERR_NOMEM, "out of memory for %zu training symbols", total);
    size_t pos = 0;
    for (int32_t w = 0; w < tr->words.count; w++) {
        size_t len;
        const char *word = wp_vocab_token(&tr->words, w, &len);
        tr->word_off[w] = pos;
        int first = 1;
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            i += next_char(word, len, i, &cp);
            int32_t id;
            LM_TRY(symbol_of(t, cp, first, &id));
            first = 0;
            if (id >= 0) tr->syms[pos++] = id;
        }
        tr->word_len[w] = (uint32_t)(pos - tr->word_off[w]);
    }
    return LM_OK;
}

/* ---- step 4: merges --------------------------------------------------------- */

/* HF's Word::merge on one word: every non-overlapping (c1, c2), left to
 * right, becomes `rep`; the pair-count changes are reported in HF's order. */
static lm_status merge_word(wp_trainer *tr, uint32_t w, int32_t c1, int32_t c2, int32_t rep) {
    int32_t *s = tr->syms + tr->word_off[w];
    uint32_t n = tr->word_len[w];
    for (uint32_t i = 0; i < n; i++) {
        if (s[i] != c1 || i + 1 >= n || s[i + 1] != c2) continue;
        if (i > 0) {
            LM_TRY(wp_change(tr, s[i - 1], c1, -1, w));
            LM_TRY(wp_change(tr, s[i - 1], rep, 1, w));
        }
        s[i] = rep;
        memmove(s + i + 1, s + i + 2, (n - i - 2) * sizeof *s);
        n--;
        if (i + 1 < n) {
            LM_TRY(wp_change(tr, c2, s[i + 1], -1, w));
            LM_TRY(wp_change(tr, rep, s[i + 1], 1, w));
        }
    }
    tr->word_len[w] = n;
    return LM_OK;
}

static lm_status merge_loop(wp_tokenizer *t, wp_trainer *tr) {
    int32_t start_size = t->vocab.distinct;
    uint64_t goal = t->train_vocab_size > start_size ? (uint64_t)(t->train_vocab_size - start_size) : 0;
    lm_progress *progress = lm_progress_begin("wordpiece: merges", goal);
    lm_status status = LM_OK;
    lm_buffer token = {0};
    wp_heap_entry top = {0};
    uint64_t steps = 0;
    while (t->vocab.distinct < t->train_vocab_size) {
        if (!wp_heap_pop(&tr->heap, &top)) break;
        int64_t current = wp_pairmap_get(&tr->pairs, top.pair);
        if (top.count != (uint64_t)current) { /* stale: requeue with today's count */
            top.count = (uint64_t)current;
            LM_CHECK(wp_heap_push(&tr->heap, &top));
            memset(&top, 0, sizeof top);
            continue;
        }
        if (top.count < 1 || (uint64_t)t->min_frequency > top.count) break;
        int32_t a = (int32_t)(top.pair >> 32), b = (int32_t)(top.pair & 0xFFFFFFFFu);
        size_t a_len, b_len;
        const char *a_tok = wp_vocab_token(&t->vocab, a, &a_len);
        const char *b_tok = wp_vocab_token(&t->vocab, b, &b_len);
        if (b_len >= t->prefix_len && memcmp(b_tok, t->prefix, t->prefix_len) == 0) {
            b_tok += t->prefix_len;
            b_len -= t->prefix_len;
        }
        lm_buffer_clear(&token);
        LM_CHECK(lm_buffer_append(&token, a_tok, a_len));
        LM_CHECK(lm_buffer_append(&token, b_tok, b_len));
        int32_t rep = wp_vocab_find(&t->vocab, token.data, token.len);
        if (rep < 0) LM_CHECK(wp_vocab_push(&t->vocab, token.data, token.len, &rep));
        wp_step_reset(tr);
        for (uint32_t k = 0; k < top.n_pos; k++) LM_CHECK(merge_word(tr, top.pos[k], a, b, rep));
        LM_CHECK(wp_step_flush(tr));
        wp_heap_entry_free(&top);
        if ((++steps & 63) == 0) {
            lm_progress_update(progress, (uint64_t)(t->vocab.distinct - start_size));
            if (lm_interrupted()) {
                status = lm_error_set(LM_ERR_INTERRUPTED, "wordpiece training interrupted during merges");
                goto fail;
            }
        }
    }
    lm_progress_update(progress, (uint64_t)(t->vocab.distinct - start_size));
fail:
    wp_heap_entry_free(&top);
    lm_buffer_free(&token);
    lm_progress_end(progress);
    return status;
}

lm_status wp_train(wp_tokenizer *t, const lm_text_source *rows) {
    if (!rows || !rows->row) return lm_error_set(LM_ERR_INVALID, "wordpiece train: no text source given");
    wp_clear_model(t);
    wp_trainer tr;
    memset(&tr, 0, sizeof tr);
    lm_status status = LM_OK;
    double started = lm_time_seconds();
    LM_CHECK(count_words(t, &tr, rows));
    if (tr.words.count == 0) {
        status = lm_error_set(LM_ERR_INVALID,
                              "wordpiece training data has no words (%zu rows, all empty or whitespace): "
                              "check the dataset split",
                              rows->count);
        goto fail;
    }
    for (size_t i = 0; i < t->n_train_specials; i++) {
        const char *s = t->train_specials[i];
        if (wp_vocab_find(&t->vocab, s, strlen(s)) < 0) LM_CHECK(wp_vocab_push(&t->vocab, s, strlen(s), NULL));
    }
    int32_t n_special = t->vocab.distinct;
    LM_CHECK(build_alphabet(t, &tr));
    int32_t n_alphabet = t->vocab.distinct - n_special;
    LM_CHECK(add_continuations(t, &tr));
    int32_t minimum = t->vocab.distinct;
    if (t->train_vocab_size < minimum) {
        status = lm_error_set(LM_ERR_INVALID,
                              "wordpiece vocab_size=%lld is too small for this training data: it needs at least %d "
                              "tokens before any merge (%d special tokens + %d characters + %d '%s' continuation "
                              "characters); use vocab_size >= %d",
                              (long long)t->train_vocab_size, (int)minimum, (int)n_special, (int)n_alphabet,
                              (int)(minimum - n_special - n_alphabet), t->prefix, (int)minimum);
        goto fail;
    }
    LM_CHECK(build_symbols(t, &tr));
    LM_CHECK(wp_count_pairs(&tr));
    LM_CHECK(merge_loop(t, &tr));
    lm_log(LM_LOG_INFO, "wordpiece: trained %d tokens from %d distinct words in %.1f s", (int)t->vocab.distinct,
           (int)tr.words.count, lm_time_seconds() - started);
    LM_CHECK(wp_finalize_trained(t));
fail:
    wp_trainer_free(&tr);
    if (status != LM_OK) wp_clear_model(t);
    return status;
}
