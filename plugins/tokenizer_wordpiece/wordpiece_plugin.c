/* tokenizer_wordpiece — BERT's WordPiece tokenizer as Hugging Face
 * `tokenizers` builds it (BertWordPieceTokenizer / bert-base-cased):
 * BertNormalizer, BertPreTokenizer, WordPiece model with "##", [CLS] A [SEP]
 * and the WordPiece decoder.  Loads tokenizer.json or vocab.txt, trains like
 * HF's WordPieceTrainer, saves tokenizer.json that HF loads unchanged.
 *
 * Config keys:
 *   path                      tokenizer.json, vocab.txt or a folder holding one
 *   vocab_size                training target (28996, like bert-base-cased)
 *   min_frequency             pairs seen fewer times are not merged (0)
 *   special_tokens            list (["[PAD]","[UNK]","[CLS]","[SEP]","[MASK]"])
 *   limit_alphabet            keep only the most frequent characters (off)
 *   continuation_order        "##c" id order (see wordpiece_train.c)
 *   lowercase                 uncased BERT: lowercase and strip accents (false)
 *   max_input_chars_per_word  longer words become [UNK] (100) */
#include <stdlib.h>
#include <string.h>

#include "lmcore/hash.h"
#include "lmcore/log.h"
#include "lmcore/plugin.h"
#include "wordpiece.h"
#include "wordpiece_train.h"

static const char *const default_specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

static void free_strings(char **items, size_t n) {
    for (size_t i = 0; i < n; i++) free(items[i]);
    free(items);
}

static lm_status copy_strings(const char *const *items, size_t n, char ***out) {
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out) return lm_error_set(LM_ERR_NOMEM, "out of memory copying a config list");
    for (size_t i = 0; i < n; i++) {
        (*out)[i] = wp_strndup(items[i], strlen(items[i]));
        if (!(*out)[i]) return lm_error_set(LM_ERR_NOMEM, "out of memory copying a config list");
    }
    return LM_OK;
}

static void wp_destroy(void *self) {
    wp_tokenizer *t = self;
    if (!t) return;
    wp_clear_model(t);
    free(t->unk_token);
    free_strings(t->train_specials, t->n_train_specials);
    free_strings(t->continuation_order, t->n_continuation_order);
    free(t);
}

static const char *const training_keys[] = {"vocab_size", "min_frequency", "special_tokens", "limit_alphabet",
                                            "continuation_order"};

static lm_status read_config(wp_tokenizer *t, lm_config *cfg, const char **path) {
    *path = lm_config_string(cfg, "path", NULL);
    t->train_vocab_size = lm_config_int(cfg, "vocab_size", 28996);
    t->min_frequency = lm_config_int(cfg, "min_frequency", 0);
    t->limit_alphabet = lm_config_int(cfg, "limit_alphabet", -1);
    const char *const *specials = default_specials;
    size_t n_specials = lm_config_list(cfg, "special_tokens", &specials);
    if (!lm_config_has(cfg, "special_tokens")) {
        specials = default_specials;
        n_specials = sizeof default_specials / sizeof default_specials[0];
    }
    LM_TRY(copy_strings(specials, n_specials, &t->train_specials));
    t->n_train_specials = n_specials;
    const char *const *order = NULL;
    size_t n_order = lm_config_list(cfg, "continuation_order", &order);
    LM_TRY(copy_strings(order, n_order, &t->continuation_order));
    t->n_continuation_order = n_order;
    t->norm.lowercase = lm_config_bool(cfg, "lowercase", 0);
    int64_t max_chars = lm_config_int(cfg, "max_input_chars_per_word", 100);
    LM_TRY(lm_config_require_range(cfg, "max_input_chars_per_word", (double)max_chars, 1, 1e9));
    t->max_input_chars_per_word = (size_t)max_chars;

    if (*path) {
        if (!**path) return lm_error_set(LM_ERR_INVALID, "config key 'path' for tokenizer 'wordpiece' is empty");
        for (size_t k = 0; k < sizeof training_keys / sizeof training_keys[0]; k++)
            if (lm_config_has(cfg, training_keys[k]))
                return lm_error_set(LM_ERR_INVALID,
                                    "config key '%s' for tokenizer 'wordpiece' is a training setting: it cannot be "
                                    "combined with path='%s' (drop it, or drop path to train a new vocabulary)",
                                    training_keys[k], *path);
        return LM_OK;
    }
    LM_TRY(lm_config_require_range(cfg, "vocab_size", (double)t->train_vocab_size, 1, 1e8));
    LM_TRY(lm_config_require_range(cfg, "min_frequency", (double)t->min_frequency, 0, 9e15));
    if (lm_config_has(cfg, "limit_alphabet"))
        LM_TRY(lm_config_require_range(cfg, "limit_alphabet", (double)t->limit_alphabet, 0, 1e8));
    int has_unk = 0;
    for (size_t i = 0; i < n_specials; i++) {
        if (!specials[i][0]) {
            lm_config_reject(cfg, "special_tokens", "item %zu is an empty string", i + 1);
            return lm_error_set(LM_ERR_INVALID, "config key 'special_tokens' for tokenizer 'wordpiece': item %zu is "
                                "an empty string", i + 1);
        }
        if (strcmp(specials[i], t->unk_token) == 0) has_unk = 1;
    }
    if (!has_unk) {
        lm_config_reject(cfg, "special_tokens", "must contain '%s'", t->unk_token);
        return lm_error_set(LM_ERR_INVALID, "config key 'special_tokens' for tokenizer 'wordpiece' must contain '%s' "
                            "(the token of words the vocabulary cannot spell)", t->unk_token);
    }
    return LM_OK;
}

static lm_status wp_create(void **self, lm_config *cfg) {
    *self = NULL;
    wp_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return lm_error_set(LM_ERR_NOMEM, "out of memory creating the wordpiece tokenizer");
    t->norm = (wp_normalizer){1, 1, -1, 0};
    memcpy(t->prefix, "##", 3);
    t->prefix_len = 2;
    memcpy(t->decoder_prefix, "##", 3);
    t->decoder_prefix_len = 2;
    t->decoder_wordpiece = 1;
    t->decoder_cleanup = 1;
    t->unk_token = wp_strndup("[UNK]", 5);
    t->unk_id = t->cls_id = t->sep_id = t->pad_id = t->mask_id = -1;
    const char *path = NULL;
    lm_status status = t->unk_token ? LM_OK : lm_error_set(LM_ERR_NOMEM, "out of memory");
    if (status == LM_OK) status = read_config(t, cfg, &path);
    if (status == LM_OK && path) {
        int explicit_norm = lm_config_has(cfg, "lowercase") || lm_config_has(cfg, "max_input_chars_per_word");
        int is_json = 0;
        status = wp_load_path(t, path, &is_json);
        if (status == LM_OK && is_json && explicit_norm)
            status = lm_error_set(LM_ERR_INVALID, "config keys 'lowercase' and 'max_input_chars_per_word' apply to "
                                  "vocab.txt only: '%s' is a tokenizer.json, which defines them", path);
    }
    if (status != LM_OK) {
        wp_destroy(t);
        return status;
    }
    *self = t;
    return LM_OK;
}

static lm_status require_model(const wp_tokenizer *t, const char *what) {
    if (t->trained) return LM_OK;
    return lm_error_set(LM_ERR_INVALID, "wordpiece %s: the tokenizer has no vocabulary yet: train it or create it with "
                        "path=...", what);
}

static lm_status wp_encode_entry(void *self, const char *text, size_t len, int add_special, lm_ids *out) {
    return wp_encode(self, text, len, add_special, out);
}

static lm_status wp_decode_entry(void *self, const int32_t *ids, size_t n, int skip_special, lm_buffer *out) {
    return wp_decode(self, ids, n, skip_special, out);
}

static lm_status wp_info(void *self, lm_vocab_info *out) {
    wp_tokenizer *t = self;
    LM_TRY(require_model(t, "info"));
    memset(out, 0, sizeof *out);
    out->vocab_size = t->vocab.count;
    out->unk_id = t->unk_id;
    out->pad_id = t->pad_id;
    out->bos_id = -1;
    out->eos_id = -1;
    out->cls_id = t->cls_id;
    out->sep_id = t->sep_id;
    out->mask_id = t->mask_id;
    out->special_ids = t->special_ids;
    out->n_special = t->n_special;
    return LM_OK;
}

static uint64_t hash_i64(uint64_t h, int64_t v) { return lm_hash64(&v, sizeof v, h); }

static lm_status wp_fingerprint(void *self, uint64_t *hash) {
    wp_tokenizer *t = self;
    LM_TRY(require_model(t, "fingerprint"));
    uint64_t h = lm_hash64("lmcore.wordpiece.v1", 19, LM_HASH_SEED);
    h = hash_i64(h, t->norm.clean_text);
    h = hash_i64(h, t->norm.handle_chinese_chars);
    h = hash_i64(h, t->norm.strip_accents);
    h = hash_i64(h, t->norm.lowercase);
    h = hash_i64(h, (int64_t)t->max_input_chars_per_word);
    h = lm_hash64(t->prefix, t->prefix_len, h);
    h = hash_i64(h, t->unk_id);
    h = hash_i64(h, t->vocab.count);
    for (int32_t id = 0; id < t->vocab.count; id++) {
        size_t len = 0;
        const char *tok = wp_vocab_token(&t->vocab, id, &len);
        h = hash_i64(h, tok ? (int64_t)len : -1);
        if (tok) h = lm_hash64(tok, len, h);
    }
    for (size_t i = 0; i < t->n_added; i++) {
        h = hash_i64(h, t->added[i].id);
        h = hash_i64(h, t->added[i].special);
        h = lm_hash64(t->added[i].content, t->added[i].len, h);
    }
    h = hash_i64(h, (int64_t)t->n_before);
    h = lm_hash64(t->template_before, t->n_before * sizeof(int32_t), h);
    h = hash_i64(h, (int64_t)t->n_after);
    h = lm_hash64(t->template_after, t->n_after * sizeof(int32_t), h);
    *hash = h;
    return LM_OK;
}

static lm_status wp_save(void *self, const char *path) {
    wp_tokenizer *t = self;
    LM_TRY(require_model(t, "save"));
    return wp_save_json(t, path);
}

static lm_status wp_train_entry(void *self, const lm_text_source *rows) {
    wp_tokenizer *t = self;
    if (!t->train_specials || t->from_path)
        return lm_error_set(LM_ERR_INVALID, "wordpiece train: this tokenizer was loaded from a file; create it "
                            "without 'path' to train a new vocabulary");
    return wp_train(t, rows);
}

static lm_status wp_id_to_token(void *self, int32_t id, const char **token, size_t *len) {
    wp_tokenizer *t = self;
    LM_TRY(require_model(t, "id_to_token"));
    *token = wp_vocab_token(&t->vocab, id, len);
    if (!*token)
        return lm_error_set(LM_ERR_INVALID, "wordpiece: id %d is not in the vocabulary (ids are 0..%d)", (int)id,
                            (int)t->vocab.count - 1);
    return LM_OK;
}

static lm_status wp_token_to_id(void *self, const char *token, size_t len, int32_t *id) {
    wp_tokenizer *t = self;
    LM_TRY(require_model(t, "token_to_id"));
    *id = wp_vocab_find(&t->vocab, token, len);
    if (*id < 0)
        return lm_error_set(LM_ERR_NOT_FOUND, "wordpiece: token '%.*s' is not in the vocabulary",
                            (int)(len > 80 ? 80 : len), token);
    return LM_OK;
}

static const lm_tokenizer_vtable wordpiece_vtable = {
    wp_create,   wp_destroy,     wp_encode_entry, wp_decode_entry, wp_info,        wp_save,
    wp_fingerprint, wp_train_entry, wp_id_to_token,  wp_token_to_id,
};

LM_PLUGIN_DEFINE(LM_KIND_TOKENIZER, "wordpiece", "1.0.0",
                 "BERT WordPiece (Hugging Face BertWordPieceTokenizer): train, encode, decode, tokenizer.json",
                 lm_tokenizer_vtable, wordpiece_vtable)
