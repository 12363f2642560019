/* tokenizer plugin "bpe": GPT-2's byte-level BPE, compatible with Hugging
 * Face tokenizers (training, encoding and tokenizer.json).
 *
 * Config keys:
 *   path              tokenizer.json, or a directory with tokenizer.json or
 *                     vocab.json + merges.txt: load instead of training
 *   vocab, merges     explicit vocab.json and merges.txt paths
 *   vocab_size        training target, specials and 256 bytes included (30000)
 *   min_frequency     pairs seen fewer times are not merged (2, as HF's
 *                     ByteLevelBPETokenizer.train)
 *   special_tokens    list, default {"<|endoftext|>"}: first ids when training
 *   add_prefix_space  prepend a space to text that lacks one (false) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmcore/lmcore.h>

#include "bpe_io.h"
#include "bpe_model.h"
#include "bpe_pretok.h"
#include "bpe_train.h"
#include "unicode.h"

#define BPE_VERSION "1.0.0"

typedef struct bpe_tokenizer {
    bpe_model *model; /* NULL until trained */
    char *source;     /* the file it was loaded from, NULL when trained */
    bpe_train_options options;
    char **specials;
} bpe_tokenizer;

static const char *const default_specials[] = {"<|endoftext|>"};

static void bpe_destroy(void *self) {
    bpe_tokenizer *t = self;
    if (!t) return;
    bpe_model_destroy(t->model);
    free(t->source);
    for (size_t i = 0; i < t->options.n_specials; i++) free(t->specials[i]);
    free(t->specials);
    free(t);
}

static int is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Reads special_tokens (default <|endoftext|>) and add_prefix_space. */
static lm_status read_specials(bpe_tokenizer *t, lm_config *cfg) {
    const char *const *items = default_specials;
    size_t n = 1;
    if (lm_config_has(cfg, "special_tokens")) n = lm_config_list(cfg, "special_tokens", &items);
    t->specials = calloc(n + 1, sizeof(char *));
    if (!t->specials) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory for special tokens");
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(items[i]);
        if (len == 0 || !lm_utf8_valid((const unsigned char *)items[i], len))
            return lm_error_set(LM_ERR_INVALID, "tokenizer 'bpe': special_tokens[%zu] must be a non-empty UTF-8 string", i + 1);
        t->specials[i] = strdup(items[i]);
        if (!t->specials[i]) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory for special tokens");
        t->options.n_specials = i + 1;
    }
    t->options.specials = (const char *const *)t->specials;
    t->options.add_prefix_space = lm_config_bool(cfg, "add_prefix_space", 0);
    return LM_OK;
}

static lm_status load(bpe_tokenizer *t, lm_config *cfg, const char *path, const char *vocab, const char *merges) {
    char *json = NULL, *vocab_file = NULL, *merges_file = NULL;
    lm_status status = LM_OK;
    if (path && is_directory(path)) {
        json = join_path(path, "tokenizer.json");
        vocab_file = join_path(path, "vocab.json");
        merges_file = join_path(path, "merges.txt");
        if (!json || !vocab_file || !merges_file) {
            status = lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory");
        } else if (!is_file(json)) {
            free(json);
            json = NULL;
            if (!is_file(vocab_file) || !is_file(merges_file))
                status = lm_error_set(LM_ERR_IO, "tokenizer 'bpe': directory '%s' has neither tokenizer.json nor vocab.json + merges.txt",
                                      path);
        }
    } else if (path) {
        json = strdup(path);
        if (!json) status = lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory");
    } else {
        vocab_file = strdup(vocab);
        merges_file = strdup(merges);
        if (!vocab_file || !merges_file) status = lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory");
    }
    if (status == LM_OK && json) {
        status = bpe_load_tokenizer_json(json, &t->model);
        t->source = json;
        json = NULL;
    } else if (status == LM_OK) {
        status = read_specials(t, cfg);
        if (status == LM_OK)
            status = bpe_load_vocab_merges(vocab_file, merges_file, t->options.specials, t->options.n_specials,
                                           t->options.add_prefix_space, &t->model);
        t->source = vocab_file;
        vocab_file = NULL;
    }
    free(json);
    free(vocab_file);
    free(merges_file);
    return status;
}

static lm_status bpe_create(void **self, lm_config *cfg) {
    bpe_tokenizer *t = calloc(1, sizeof(*t));
    if (!t) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory");
    lm_status status = LM_OK;
    const char *path = lm_config_string(cfg, "path", NULL);
    const char *vocab = lm_config_string(cfg, "vocab", NULL);
    const char *merges = lm_config_string(cfg, "merges", NULL);
    if (path && (vocab || merges)) {
        status = lm_error_set(LM_ERR_INVALID, "tokenizer 'bpe': give either path or vocab + merges, not both");
    } else if (!path && (!vocab) != (!merges)) {
        status = lm_error_set(LM_ERR_INVALID, "tokenizer 'bpe': %s is set but %s is missing (give both vocab.json and merges.txt)",
                              vocab ? "vocab" : "merges", vocab ? "merges" : "vocab");
    } else if (path || vocab) {
        status = load(t, cfg, path, vocab, merges);
    } else {
        /* Ids are int32: the upper bound is checked (and named) in 64 bits. */
        t->options.vocab_size = lm_config_int_range(cfg, "vocab_size", 30000, INT64_MIN, INT32_MAX / 2);
        t->options.min_frequency = lm_config_int(cfg, "min_frequency", 2);
        status = read_specials(t, cfg);
        if (status == LM_OK && t->options.min_frequency < 0)
            status = lm_error_set(LM_ERR_INVALID, "tokenizer 'bpe': min_frequency must be >= 0 (got %lld)",
                                  (long long)t->options.min_frequency);
        /* Specials and the 256 byte tokens come first: a smaller target
         * would leave no room (HF would silently return them alone). */
        size_t distinct = 256;
        for (size_t i = 0; status == LM_OK && i < t->options.n_specials; i++) {
            int repeated = 0;
            for (size_t j = 0; j < i; j++) repeated |= strcmp(t->specials[i], t->specials[j]) == 0;
            size_t n = strlen(t->specials[i]);
            uint32_t cp;
            int is_byte_char = lm_utf8_decode((const unsigned char *)t->specials[i], n, &cp) == (int)n &&
                               bpe_codepoint_to_byte(cp) >= 0;
            distinct += !repeated && !is_byte_char;
        }
        if (status == LM_OK && t->options.vocab_size < (int64_t)distinct)
            status = lm_error_set(LM_ERR_INVALID,
                                  "tokenizer 'bpe': vocab_size=%lld is too small: the 256 byte tokens and %zu special token(s) need %zu",
                                  (long long)t->options.vocab_size, t->options.n_specials, distinct);
    }
    if (status != LM_OK) {
        if (t->source && status != LM_ERR_NOMEM && strstr(lm_error_message(), t->source) == NULL)
            lm_error_prefix("loading tokenizer '%s': ", t->source);
        bpe_destroy(t);
        return status;
    }
    *self = t;
    return LM_OK;
}

static lm_status need_model(const bpe_tokenizer *t) {
    if (t->model) return LM_OK;
    return lm_error_set(LM_ERR_INVALID, "tokenizer 'bpe' has no vocabulary yet: train it first, or create it with path=<tokenizer.json>");
}

static lm_status bpe_train_vt(void *self, const lm_text_source *rows) {
    bpe_tokenizer *t = self;
    if (t->source)
        return lm_error_set(LM_ERR_INVALID, "tokenizer 'bpe' was loaded from '%s': create it without path to train a new one",
                            t->source);
    bpe_model *m = NULL;
    LM_TRY(bpe_train(&t->options, rows, &m));
    bpe_model_destroy(t->model);
    t->model = m;
    return LM_OK;
}

static lm_status bpe_encode_vt(void *self, const char *text, size_t len, int add_special, lm_ids *out) {
    bpe_tokenizer *t = self;
    (void)add_special; /* GPT-2 adds nothing around a sequence */
    LM_TRY(need_model(t));
    return bpe_model_encode(t->model, text, len, out);
}

static lm_status bpe_decode_vt(void *self, const int32_t *ids, size_t n, int skip_special, lm_buffer *out) {
    bpe_tokenizer *t = self;
    LM_TRY(need_model(t));
    return bpe_model_decode(t->model, ids, n, skip_special, out);
}

static lm_status bpe_info(void *self, lm_vocab_info *out) {
    bpe_tokenizer *t = self;
    LM_TRY(need_model(t));
    const bpe_model *m = t->model;
    memset(out, 0, sizeof(*out));
    out->vocab_size = m->n_ids;
    out->unk_id = m->unk_id;
    out->pad_id = out->bos_id = out->eos_id = out->cls_id = out->sep_id = out->mask_id = -1;
    for (size_t i = 0; i < m->n_added; i++) { /* in id order (bpe_model_finish): not the file's order */
        const bpe_added_token *a = &m->added[i];
        if (strcmp(a->content, "<|endoftext|>") == 0) out->bos_id = out->eos_id = a->id;
        if (strcmp(a->content, "<pad>") == 0 || strcmp(a->content, "<|pad|>") == 0 ||
            strcmp(a->content, "[PAD]") == 0 || strcmp(a->content, "<|padding|>") == 0)
            out->pad_id = a->id;
    }
    out->special_ids = m->special_ids;
    out->n_special = m->n_special;
    return LM_OK;
}

static lm_status bpe_save(void *self, const char *path) {
    bpe_tokenizer *t = self;
    LM_TRY(need_model(t));
    return bpe_save_tokenizer_json(t->model, path);
}

static lm_status bpe_fingerprint(void *self, uint64_t *hash) {
    bpe_tokenizer *t = self;
    LM_TRY(need_model(t));
    const bpe_model *m = t->model;
    uint64_t h = lm_hash64("lmcore-bpe-" BPE_VERSION, strlen("lmcore-bpe-" BPE_VERSION), LM_HASH_SEED);
    int32_t options[] = {m->n_ids, m->add_prefix_space, m->use_regex, m->ignore_merges, m->unk_id, m->fuse_unk};
    h = lm_hash64(options, sizeof(options), h);
    for (int32_t id = 0; id < m->n_ids; id++) { /* by id: independent of the file's key order */
        size_t len = 0;
        const char *token = bpe_model_token(m, id, &len);
        int32_t n = token ? (int32_t)len : -1;
        h = lm_hash64(&n, sizeof(n), h);
        if (token) h = lm_hash64(token, len, h);
    }
    for (size_t r = 0; r < m->n_merges; r++)
        if (!m->merge_dead[r]) h = lm_hash64(&m->merge_pairs[r], sizeof(uint64_t), h);
    for (size_t i = 0; i < m->n_added; i++) { /* in id order (bpe_model_finish): not the file's order */
        const bpe_added_token *a = &m->added[i];
        int32_t flags[] = {a->id, a->special, a->lstrip, a->rstrip, a->normalized, a->single_word};
        h = lm_hash64(flags, sizeof(flags), h);
        h = lm_hash64(a->content, a->len, h);
    }
    *hash = h;
    return LM_OK;
}

static lm_status bpe_id_to_token(void *self, int32_t id, const char **token, size_t *len) {
    bpe_tokenizer *t = self;
    LM_TRY(need_model(t));
    *token = bpe_model_token(t->model, id, len);
    if (!*token) return lm_error_set(LM_ERR_NOT_FOUND, "tokenizer 'bpe': id %d is not in the vocabulary", id);
    return LM_OK;
}

static lm_status bpe_token_to_id(void *self, const char *token, size_t len, int32_t *id) {
    bpe_tokenizer *t = self;
    LM_TRY(need_model(t));
    *id = bpe_model_find(t->model, token, len);
    if (*id < 0)
        return lm_error_set(LM_ERR_NOT_FOUND, "tokenizer 'bpe': token '%.*s' is not in the vocabulary",
                            (int)(len > 100 ? 100 : len), token);
    return LM_OK;
}

static const lm_tokenizer_vtable bpe_vtable = {
    .create = bpe_create,
    .destroy = bpe_destroy,
    .encode = bpe_encode_vt,
    .decode = bpe_decode_vt,
    .info = bpe_info,
    .save = bpe_save,
    .fingerprint = bpe_fingerprint,
    .train = bpe_train_vt,
    .id_to_token = bpe_id_to_token,
    .token_to_id = bpe_token_to_id,
};

LM_PLUGIN_DEFINE(LM_KIND_TOKENIZER, "bpe", BPE_VERSION,
                 "GPT-2 byte-level BPE (Hugging Face tokenizers compatible: training, encoding, tokenizer.json)",
                 lm_tokenizer_vtable, bpe_vtable)
