/* tokenizer_wordpiece — internal declarations shared by the plugin's files.
 *
 *   wordpiece_plugin.c   vtable: create/destroy, config, info, fingerprint
 *   wordpiece_vocab.c    token <-> id tables (string hash map)
 *   bert_pretok.c        BertNormalizer + BertPreTokenizer (text -> words)
 *   wordpiece_encode.c   special-token split, greedy WordPiece, decode
 *   wordpiece_train.c    HF WordPieceTrainer (BPE with "##") reproduction
 *   wordpiece_json.c     tokenizer.json read/write, vocab.txt */
#ifndef LM_WORDPIECE_H
#define LM_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/config.h"
#include "lmcore/status.h"
#include "lmcore/tensor.h"
#include "lmcore/tokenizer.h"

/* ---- vocabulary: an append-only table of distinct strings with ids --------- */

typedef struct wp_vocab {
    char *arena; /* token bytes, back to back */
    size_t arena_len, arena_cap;
    uint64_t *spans; /* per id: offset << 24 | length; UINT64_MAX for a hole */
    int32_t count;   /* ids are 0..count-1 */
    int32_t cap;
    int32_t *slots; /* open addressing: id or -1 */
    size_t slot_mask;
    int32_t distinct; /* non-hole ids */
} wp_vocab;

#define WP_MAX_TOKEN_BYTES ((1u << 24) - 1)

void wp_vocab_free(wp_vocab *v);
/* id of token or -1. */
int32_t wp_vocab_find(const wp_vocab *v, const char *token, size_t len);
/* Appends token with the next id (it must not be present). */
lm_status wp_vocab_push(wp_vocab *v, const char *token, size_t len, int32_t *id);
/* Sets token at a given id (loading files with explicit ids); the id must be
 * free and the token absent. */
lm_status wp_vocab_put(wp_vocab *v, const char *token, size_t len, int32_t id);
/* The token of id or NULL (hole / out of range). */
const char *wp_vocab_token(const wp_vocab *v, int32_t id, size_t *len);

/* ---- normalisation and pre-tokenisation ---------------------------------- */

typedef struct wp_normalizer {
    int clean_text;
    int handle_chinese_chars;
    int strip_accents; /* -1: follow lowercase (HF's null) */
    int lowercase;
} wp_normalizer;

/* Receives each word (UTF-8, not NUL-terminated) with its length in
 * characters; words longer than `max_chars` characters are reported with
 * their true character count but only the first bytes up to the cap are
 * guaranteed (they become [UNK] anyway). */
typedef lm_status (*wp_word_fn)(void *ctx, const char *word, size_t len, size_t n_chars);

typedef struct wp_pretok {
    wp_normalizer norm;
    size_t max_chars; /* words with more characters are only counted */
    char *word;       /* scratch: max_chars * 4 + 4 bytes */
    size_t word_cap, word_len, word_chars;
} wp_pretok;

lm_status wp_pretok_init(wp_pretok *p, const wp_normalizer *norm, size_t max_chars);
void wp_pretok_free(wp_pretok *p);
/* Normalizes text and calls fn for every word, in order.  Invalid UTF-8 is
 * decoded as Python's bytes.decode("utf-8", "replace") does (one U+FFFD per
 * maximal invalid subsequence); see wordpiece_encode.c for why. */
lm_status wp_pretokenize(wp_pretok *p, const char *text, size_t len, wp_word_fn fn, void *ctx);

/* ---- the tokenizer ------------------------------------------------------- */

typedef struct wp_added_token {
    char *content;
    size_t len;
    int32_t id;
    int special;
} wp_added_token;

typedef struct wp_tokenizer {
    /* settings */
    wp_normalizer norm;
    size_t max_input_chars_per_word;
    char prefix[16]; /* continuing_subword_prefix, "##" */
    size_t prefix_len;
    char *unk_token;
    int decoder_cleanup;  /* decoders.WordPiece(cleanup=...) */
    int decoder_wordpiece; /* 0: no decoder in the file: tokens joined by ' ' */
    char decoder_prefix[16];
    size_t decoder_prefix_len;

    /* training settings (before train()) */
    int64_t train_vocab_size, min_frequency, limit_alphabet;
    char **train_specials;
    size_t n_train_specials;
    char **continuation_order; /* optional "##x" ids order, see wordpiece_train.c */
    size_t n_continuation_order;

    /* model */
    int trained;
    int from_path;
    wp_vocab vocab;
    wp_vocab continuation; /* tokens with the prefix, stored without it */
    int32_t *continuation_ids; /* continuation id -> vocab id */
    size_t max_token_len, max_continuation_len;
    int32_t unk_id;

    /* added (special) tokens, matched on the raw text before normalisation */
    wp_added_token *added;
    size_t n_added;
    uint8_t added_first_byte[256];
    int32_t *special_ids; /* sorted */
    size_t n_special;

    /* post-processor: ids before and after the sequence */
    int32_t *template_before, *template_after;
    size_t n_before, n_after;
    int32_t cls_id, sep_id, pad_id, mask_id;
} wp_tokenizer;

/* wordpiece_model.c */
lm_status wp_finalize_model(wp_tokenizer *t, const char *source);
void wp_clear_model(wp_tokenizer *t);
lm_status wp_add_added_token(wp_tokenizer *t, const char *content, size_t len, int32_t id, int special);
lm_status wp_set_template(wp_tokenizer *t, const int32_t *before, size_t n_before, const int32_t *after,
                          size_t n_after);
char *wp_strndup(const char *s, size_t len);

/* wordpiece_encode.c */
lm_status wp_encode(wp_tokenizer *t, const char *text, size_t len, int add_special, lm_ids *out);
lm_status wp_decode(wp_tokenizer *t, const int32_t *ids, size_t n, int skip_special, lm_buffer *out);

/* wordpiece_train.c */
lm_status wp_train(wp_tokenizer *t, const lm_text_source *rows);

/* wordpiece_json.c */
/* Loads path (tokenizer.json, vocab.txt or a folder with one); *is_json tells which. */
lm_status wp_load_path(wp_tokenizer *t, const char *path, int *is_json);
lm_status wp_save_json(wp_tokenizer *t, const char *path);

#endif
