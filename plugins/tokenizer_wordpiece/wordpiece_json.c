/* Files: Hugging Face tokenizer.json (read and write) and BERT's vocab.txt
 * (read).  The reader accepts what HF writes for BERT-style WordPiece
 * tokenizers (BertNormalizer or none, BertPreTokenizer, TemplateProcessing,
 * BertProcessing or none, WordPiece decoder or none) and refuses anything
 * else by name rather than encoding differently from HF. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lmcore/json.h"
#include "lmcore/log.h"
#include "tokenizer_json.h"
#include "unicode.h"
#include "wordpiece.h"

#define FORMAT_ERROR(path, ...) format_error(path, __VA_ARGS__)

static lm_status format_error(const char *path, const char *fmt, ...) LM_PRINTF(2, 3);
static lm_status format_error(const char *path, const char *fmt, ...) {
    char problem[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return lm_error_set(LM_ERR_FORMAT, "tokenizer file '%s': %s", path, problem);
}

/* Optional boolean member: *out keeps its default when absent or null. */
static lm_status get_bool(const char *path, const lm_json *obj, const char *section, const char *key, int *out) {
    const lm_json *v = lm_json_get(obj, key);
    if (!v || lm_json_type_of(v) == LM_JSON_NULL) return LM_OK;
    if (lm_json_type_of(v) != LM_JSON_BOOL) return FORMAT_ERROR(path, "%s.%s must be true or false", section, key);
    *out = lm_json_bool(v);
    return LM_OK;
}

static lm_status get_string(const char *path, const lm_json *obj, const char *section, const char *key,
                            const char **out, size_t *len) {
    const lm_json *v = lm_json_get(obj, key);
    if (!v) return LM_OK;
    if (lm_json_type_of(v) != LM_JSON_STRING) return FORMAT_ERROR(path, "%s.%s must be a string", section, key);
    *out = lm_json_string(v, len);
    return LM_OK;
}

static lm_status read_normalizer(wp_tokenizer *t, const char *path, const lm_json *n) {
    if (!n || lm_json_type_of(n) == LM_JSON_NULL) { /* no normalizer at all */
        t->norm = (wp_normalizer){0, 0, 0, 0};
        return LM_OK;
    }
    const char *type = tokenizer_json_type(n);
    if (!type || strcmp(type, "BertNormalizer") != 0)
        return lm_error_set(LM_ERR_UNSUPPORTED, "tokenizer file '%s': normalizer type '%s' is not supported by the "
                            "wordpiece plugin (it reads BertNormalizer or null)", path, type ? type : "?");
    t->norm = (wp_normalizer){1, 1, -1, 1}; /* HF's defaults */
    LM_TRY(get_bool(path, n, "normalizer", "clean_text", &t->norm.clean_text));
    LM_TRY(get_bool(path, n, "normalizer", "handle_chinese_chars", &t->norm.handle_chinese_chars));
    LM_TRY(get_bool(path, n, "normalizer", "lowercase", &t->norm.lowercase));
    const lm_json *strip = lm_json_get(n, "strip_accents");
    t->norm.strip_accents = -1;
    if (strip && lm_json_type_of(strip) != LM_JSON_NULL) LM_TRY(get_bool(path, n, "normalizer", "strip_accents",
                                                                         &t->norm.strip_accents));
    return LM_OK;
}

/* A post-processor id, checked in 64 bits before it is narrowed (an id of
 * 4294967298 must not become 2); wp_finalize_model then checks that the
 * vocabulary has it. */
static lm_status template_id(const char *path, const lm_json *v, const char *where, int32_t *out) {
    if (!lm_json_is_integer(v) || lm_json_int(v) < 0 || lm_json_int(v) > INT32_MAX)
        return FORMAT_ERROR(path, "%s: %s is not a token id (an integer from 0 to %d)", where,
                            lm_json_is_integer(v) ? "the id" : "a non-integer", INT32_MAX);
    *out = (int32_t)lm_json_int(v);
    return LM_OK;
}

/* The post-processor becomes the ids put before and after the sequence. */
static lm_status read_post_processor(wp_tokenizer *t, const char *path, const lm_json *p) {
    if (!p || lm_json_type_of(p) == LM_JSON_NULL) return wp_set_template(t, NULL, 0, NULL, 0);
    const char *type = tokenizer_json_type(p);
    if (type && strcmp(type, "BertProcessing") == 0) {
        const lm_json *cls = lm_json_get(p, "cls"), *sep = lm_json_get(p, "sep");
        if (lm_json_size(cls) != 2 || lm_json_size(sep) != 2 || !lm_json_is_integer(lm_json_at(cls, 1)) ||
            !lm_json_is_integer(lm_json_at(sep, 1)))
            return FORMAT_ERROR(path, "post_processor BertProcessing needs cls and sep as [token, id]");
        int32_t before, after;
        LM_TRY(template_id(path, lm_json_at(cls, 1), "post_processor BertProcessing cls", &before));
        LM_TRY(template_id(path, lm_json_at(sep, 1), "post_processor BertProcessing sep", &after));
        return wp_set_template(t, &before, 1, &after, 1);
    }
    if (!type || strcmp(type, "TemplateProcessing") != 0)
        return lm_error_set(LM_ERR_UNSUPPORTED, "tokenizer file '%s': post_processor type '%s' is not supported by the "
                            "wordpiece plugin (it reads TemplateProcessing, BertProcessing or null)", path,
                            type ? type : "?");
    const lm_json *single = lm_json_get(p, "single"), *specials = lm_json_get(p, "special_tokens");
    if (lm_json_type_of(single) != LM_JSON_ARRAY)
        return FORMAT_ERROR(path, "post_processor.single must be an array");
    int32_t before[16], after[16];
    size_t n_before = 0, n_after = 0;
    int seen_sequence = 0;
    for (size_t i = 0; i < lm_json_size(single); i++) {
        const lm_json *piece = lm_json_at(single, i);
        const lm_json *special = lm_json_get(piece, "SpecialToken");
        if (lm_json_get(piece, "Sequence")) {
            if (seen_sequence) return FORMAT_ERROR(path, "post_processor.single holds two sequences");
            seen_sequence = 1;
            continue;
        }
        const char *name = NULL;
        LM_TRY(get_string(path, special, "post_processor.single[].SpecialToken", "id", &name, NULL));
        const lm_json *entry = name ? lm_json_get(lm_json_get(specials, name), "ids") : NULL;
        if (!entry || lm_json_type_of(entry) != LM_JSON_ARRAY)
            return FORMAT_ERROR(path, "post_processor.single[%zu] names special token '%s' without ids in "
                                "post_processor.special_tokens", i, name ? name : "?");
        for (size_t k = 0; k < lm_json_size(entry); k++) {
            if (!lm_json_is_integer(lm_json_at(entry, k)) || (seen_sequence ? n_after : n_before) == 16)
                return FORMAT_ERROR(path, "post_processor.special_tokens['%s'].ids is not a short list of integers",
                                    name);
            int32_t id;
            char where[160];
            snprintf(where, sizeof where, "post_processor.special_tokens['%.60s'].ids", name);
            LM_TRY(template_id(path, lm_json_at(entry, k), where, &id));
            if (seen_sequence) after[n_after++] = id;
            else before[n_before++] = id;
        }
    }
    if (!seen_sequence) return FORMAT_ERROR(path, "post_processor.single has no Sequence");
    return wp_set_template(t, before, n_before, after, n_after);
}

static lm_status read_decoder(wp_tokenizer *t, const char *path, const lm_json *d) {
    if (!d || lm_json_type_of(d) == LM_JSON_NULL) {
        t->decoder_wordpiece = 0;
        return LM_OK;
    }
    const char *type = tokenizer_json_type(d);
    if (!type || strcmp(type, "WordPiece") != 0)
        return lm_error_set(LM_ERR_UNSUPPORTED, "tokenizer file '%s': decoder type '%s' is not supported by the "
                            "wordpiece plugin (it reads WordPiece or null)", path, type ? type : "?");
    t->decoder_wordpiece = 1;
    t->decoder_cleanup = 1;
    LM_TRY(get_bool(path, d, "decoder", "cleanup", &t->decoder_cleanup));
    const char *prefix = "##";
    size_t len = 2;
    LM_TRY(get_string(path, d, "decoder", "prefix", &prefix, &len));
    if (len >= sizeof t->decoder_prefix) return FORMAT_ERROR(path, "decoder.prefix is longer than 15 bytes");
    memcpy(t->decoder_prefix, prefix, len);
    t->decoder_prefix[len] = '\0';
    t->decoder_prefix_len = len;
    return LM_OK;
}

/* Save writes vocabulary keys and the unknown token as C strings, which
 * U+0000 would cut short: such a token is refused on loading (HF accepts it,
 * but no real vocabulary holds one; BertNormalizer's clean_text removes it). */
static lm_status refuse_nul(const char *path, const char *what, const char *token, size_t len) {
    const char *nul = memchr(token, '\0', len);
    if (!nul) return LM_OK;
    size_t before = (size_t)(nul - token), after = len - before - 1;
    return FORMAT_ERROR(path, "%s '%.*s\\u0000%.*s' holds U+0000 (a NUL character), which lmcore cannot save: remove it",
                        what, (int)(before > 60 ? 60 : before), token, (int)(after > 60 ? 60 : after), nul + 1);
}

/* Ids are dense in every real file: an id beyond the number of tokens in the
 * file is refused rather than allocating a table for it. */
static lm_status read_model(wp_tokenizer *t, const char *path, const lm_json *m, int64_t id_limit) {
    if (lm_json_type_of(m) != LM_JSON_OBJECT)
        return FORMAT_ERROR(path, "no \"model\" object: this is not a Hugging Face tokenizer.json");
    const char *type = tokenizer_json_type(m);
    if (type && strcmp(type, "WordPiece") != 0)
        return lm_error_set(LM_ERR_UNSUPPORTED, "tokenizer file '%s' holds a %s model, not WordPiece: use the tokenizer "
                            "plugin for %s", path, type, type);
    const lm_json *vocab = lm_json_get(m, "vocab");
    if (lm_json_type_of(vocab) != LM_JSON_OBJECT) return FORMAT_ERROR(path, "model.vocab is missing or not an object");
    if (lm_json_size(vocab) == 0) return FORMAT_ERROR(path, "model.vocab is empty");
    for (size_t i = 0; i < lm_json_size(vocab); i++) {
        size_t len;
        const char *tok = lm_json_key_at(vocab, i, &len);
        const lm_json *id = lm_json_at(vocab, i);
        if (!lm_json_is_integer(id))
            return FORMAT_ERROR(path, "model.vocab['%.*s'] is not a valid token id (0..%lld): ids are integers",
                                (int)(len > 60 ? 60 : len), tok, (long long)id_limit - 1);
        if (lm_json_int(id) < 0 || lm_json_int(id) >= id_limit)
            return FORMAT_ERROR(path, "model.vocab['%.*s'] has id %lld, which is not a valid token id (0..%lld: the "
                                "file lists %lld token(s))", (int)(len > 60 ? 60 : len), tok, (long long)lm_json_int(id),
                                (long long)id_limit - 1, (long long)id_limit);
        LM_TRY(refuse_nul(path, "model.vocab token", tok, len));
        if (wp_vocab_put(&t->vocab, tok, len, (int32_t)lm_json_int(id)) != LM_OK) {
            if (lm_error_status() == LM_ERR_NOMEM) return LM_ERR_NOMEM;
            return FORMAT_ERROR(path, "model.vocab: %s", lm_error_message());
        }
    }
    const char *unk = "[UNK]", *prefix = "##";
    size_t unk_len = 5, prefix_len = 2;
    LM_TRY(get_string(path, m, "model", "unk_token", &unk, &unk_len));
    LM_TRY(refuse_nul(path, "model.unk_token", unk, unk_len));
    LM_TRY(get_string(path, m, "model", "continuing_subword_prefix", &prefix, &prefix_len));
    if (prefix_len >= sizeof t->prefix) return FORMAT_ERROR(path, "model.continuing_subword_prefix is too long");
    memcpy(t->prefix, prefix, prefix_len);
    t->prefix[prefix_len] = '\0';
    t->prefix_len = prefix_len;
    char *unk_copy = wp_strndup(unk, unk_len);
    if (!unk_copy) return lm_error_set(LM_ERR_NOMEM, "out of memory");
    free(t->unk_token);
    t->unk_token = unk_copy;
    const lm_json *max_chars = lm_json_get(m, "max_input_chars_per_word");
    t->max_input_chars_per_word = 100;
    if (max_chars) {
        if (!lm_json_is_integer(max_chars) || lm_json_int(max_chars) < 1)
            return FORMAT_ERROR(path, "model.max_input_chars_per_word must be a positive integer");
        t->max_input_chars_per_word = (size_t)lm_json_int(max_chars);
    }
    return LM_OK;
}

static lm_status read_added_tokens(wp_tokenizer *t, const char *path, const lm_json *list, int64_t id_limit) {
    if (!list || lm_json_type_of(list) == LM_JSON_NULL) return LM_OK;
    if (lm_json_type_of(list) != LM_JSON_ARRAY) return FORMAT_ERROR(path, "added_tokens must be an array");
    for (size_t i = 0; i < lm_json_size(list); i++) {
        const lm_json *a = lm_json_at(list, i), *id = lm_json_get(a, "id");
        const char *content = NULL;
        size_t len = 0;
        LM_TRY(get_string(path, a, "added_tokens[]", "content", &content, &len));
        if (!content || !lm_json_is_integer(id))
            return FORMAT_ERROR(path, "added_tokens[%zu] needs a content string and an integer id", i);
        if (lm_json_int(id) < 0 || lm_json_int(id) >= id_limit)
            return FORMAT_ERROR(path, "added_tokens[%zu] '%.*s' has id %lld, which is not a valid token id (0..%lld: "
                                "the file lists %lld token(s))", i, (int)(len > 60 ? 60 : len), content,
                                (long long)lm_json_int(id), (long long)id_limit - 1, (long long)id_limit);
        LM_TRY(refuse_nul(path, "added token", content, len));
        int special = 0, normalized = 0, lstrip = 0, rstrip = 0, single_word = 0;
        LM_TRY(get_bool(path, a, "added_tokens[]", "special", &special));
        LM_TRY(get_bool(path, a, "added_tokens[]", "normalized", &normalized));
        LM_TRY(get_bool(path, a, "added_tokens[]", "lstrip", &lstrip));
        LM_TRY(get_bool(path, a, "added_tokens[]", "rstrip", &rstrip));
        LM_TRY(get_bool(path, a, "added_tokens[]", "single_word", &single_word));
        if (normalized || lstrip || rstrip || single_word)
            return lm_error_set(LM_ERR_UNSUPPORTED, "tokenizer file '%s': added token '%.*s' uses normalized, lstrip, "
                                "rstrip or single_word, which the wordpiece plugin does not support", path,
                                (int)(len > 60 ? 60 : len), content);
        int32_t tok_id = (int32_t)lm_json_int(id);
        size_t have_len;
        const char *have = wp_vocab_token(&t->vocab, tok_id, &have_len);
        if (have && (have_len != len || memcmp(have, content, len) != 0))
            return FORMAT_ERROR(path, "added token '%.*s' has id %d, which model.vocab gives to '%.*s'",
                                (int)(len > 60 ? 60 : len), content, (int)tok_id, (int)(have_len > 60 ? 60 : have_len),
                                have);
        if (!have && wp_vocab_put(&t->vocab, content, len, tok_id) != LM_OK)
            return FORMAT_ERROR(path, "added_tokens[%zu]: %s", i, lm_error_message());
        LM_TRY(wp_add_added_token(t, content, len, tok_id, special));
    }
    return LM_OK;
}

static lm_status load_json(wp_tokenizer *t, const char *path) {
    lm_json *root = NULL;
    LM_TRY(lm_json_parse_file(path, &root));
    lm_status status = LM_OK;
    if (lm_json_type_of(root) != LM_JSON_OBJECT) {
        status = FORMAT_ERROR(path, "the top level is not a JSON object");
        goto fail;
    }
    const lm_json *model = lm_json_get(root, "model"), *added = lm_json_get(root, "added_tokens");
    int64_t id_limit = (int64_t)(lm_json_size(lm_json_get(model, "vocab")) + lm_json_size(added));
    LM_CHECK(read_model(t, path, model, id_limit));
    LM_CHECK(read_added_tokens(t, path, added, id_limit));
    LM_CHECK(read_normalizer(t, path, lm_json_get(root, "normalizer")));
    const lm_json *pre = lm_json_get(root, "pre_tokenizer");
    const char *pre_type = pre ? tokenizer_json_type(pre) : NULL;
    if (!pre_type || strcmp(pre_type, "BertPreTokenizer") != 0) {
        status = lm_error_set(LM_ERR_UNSUPPORTED, "tokenizer file '%s': pre_tokenizer '%s' is not supported by the "
                              "wordpiece plugin (it reads BertPreTokenizer)", path, pre_type ? pre_type : "null");
        goto fail;
    }
    LM_CHECK(read_post_processor(t, path, lm_json_get(root, "post_processor")));
    LM_CHECK(read_decoder(t, path, lm_json_get(root, "decoder")));
    for (size_t i = 0; i < t->n_before + t->n_after; i++) {
        int32_t id = i < t->n_before ? t->template_before[i] : t->template_after[i - t->n_before];
        if (!wp_vocab_token(&t->vocab, id, NULL)) {
            status = FORMAT_ERROR(path, "post_processor uses id %d, which is not in the vocabulary", (int)id);
            goto fail;
        }
    }
    if (lm_json_type_of(lm_json_get(root, "truncation")) > LM_JSON_NULL ||
        lm_json_type_of(lm_json_get(root, "padding")) > LM_JSON_NULL)
        lm_log(LM_LOG_INFO, "wordpiece: '%s' sets truncation/padding; lmcore ignores them (blocks are cut later)", path);
    LM_CHECK(wp_finalize_model(t, path));
fail:
    lm_json_free(root);
    return status;
}

/* BERT's vocab.txt: one token per line, id = line number (HF trims trailing
 * whitespace); the usual special tokens are special when present. */
static lm_status load_vocab_txt(wp_tokenizer *t, const char *path) {
    lm_buffer text = {0};
    LM_TRY(lm_file_read(path, &text));
    lm_status status = LM_OK;
    size_t line = 0, start = 0;
    while (start < text.len) {
        const char *nl = memchr(text.data + start, '\n', text.len - start);
        size_t end = nl ? (size_t)(nl - text.data) : text.len;
        size_t len = end - start;
        while (len && isspace((unsigned char)text.data[start + len - 1])) len--;
        if (memchr(text.data + start, '\0', len)) {
            status = FORMAT_ERROR(path, "line %zu holds a NUL byte: this is not a vocab.txt", line + 1);
            goto fail;
        }
        /* HF cannot read such a file either; accepting it would save the bad
         * bytes as U+FFFD, a different tokenizer. */
        if (!lm_utf8_valid((const unsigned char *)text.data + start, len)) {
            status = FORMAT_ERROR(path, "line %zu is not valid UTF-8: a vocab.txt is UTF-8 text", line + 1);
            goto fail;
        }
        if (wp_vocab_put(&t->vocab, text.data + start, len, (int32_t)line) != LM_OK) {
            status = FORMAT_ERROR(path, "line %zu: %s", line + 1, lm_error_message());
            goto fail;
        }
        line++;
        start = end + 1;
    }
    if (line == 0) {
        status = FORMAT_ERROR(path, "the file is empty");
        goto fail;
    }
    static const char *const specials[] = {"[UNK]", "[SEP]", "[CLS]", "[PAD]", "[MASK]"};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        int32_t id = wp_vocab_find(&t->vocab, specials[i], strlen(specials[i]));
        if (id >= 0) LM_CHECK(wp_add_added_token(t, specials[i], strlen(specials[i]), id, 1));
    }
    int32_t cls = wp_vocab_find(&t->vocab, "[CLS]", 5), sep = wp_vocab_find(&t->vocab, "[SEP]", 5);
    if (cls >= 0 && sep >= 0) LM_CHECK(wp_set_template(t, &cls, 1, &sep, 1));
    else LM_CHECK(wp_set_template(t, NULL, 0, NULL, 0));
    t->norm.clean_text = 1;
    t->norm.handle_chinese_chars = 1;
    t->norm.strip_accents = -1;
    LM_CHECK(wp_finalize_model(t, path));
fail:
    lm_buffer_free(&text);
    return status;
}

static int is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int looks_like_json(const char *path) {
    size_t n = strlen(path);
    return n >= 5 && strcmp(path + n - 5, ".json") == 0;
}

lm_status wp_load_path(wp_tokenizer *t, const char *path, int *is_json) {
    t->from_path = 1;
    lm_buffer file = {0};
    lm_status status = LM_OK;
    if (is_directory(path)) {
        LM_TRY(lm_buffer_appendf(&file, "%s/tokenizer.json", path));
        if (!exists(file.data)) {
            lm_buffer_clear(&file);
            LM_CHECK(lm_buffer_appendf(&file, "%s/vocab.txt", path));
            if (!exists(file.data)) {
                status = lm_error_set(LM_ERR_IO, "tokenizer folder '%s' holds neither tokenizer.json nor vocab.txt",
                                      path);
                goto fail;
            }
        }
    } else {
        LM_CHECK(lm_buffer_append(&file, path, strlen(path)));
    }
    *is_json = looks_like_json(file.data);
    status = *is_json ? load_json(t, file.data) : load_vocab_txt(t, file.data);
fail:
    lm_buffer_free(&file);
    return status;
}

/* ---- writing ------------------------------------------------------------------ */

static void write_template_piece(lm_json_writer *w, const char *kind, const char *id, int type_id) {
    lm_json_begin_object(w);
    lm_json_key(w, kind);
    lm_json_begin_object(w);
    lm_json_key(w, "id");
    lm_json_write_cstr(w, id);
    lm_json_key(w, "type_id");
    lm_json_write_int(w, type_id);
    lm_json_end_object(w);
    lm_json_end_object(w);
}

static void write_post_processor(lm_json_writer *w, const wp_tokenizer *t) {
    lm_json_key(w, "post_processor");
    if (t->n_before + t->n_after == 0) {
        lm_json_write_null(w);
        return;
    }
    lm_json_begin_object(w);
    lm_json_key(w, "type");
    lm_json_write_cstr(w, "TemplateProcessing");
    for (int pair = 0; pair < 2; pair++) {
        lm_json_key(w, pair ? "pair" : "single");
        lm_json_begin_array(w);
        for (size_t i = 0; i < t->n_before; i++)
            write_template_piece(w, "SpecialToken", wp_vocab_token(&t->vocab, t->template_before[i], NULL), 0);
        write_template_piece(w, "Sequence", "A", 0);
        for (int part = 0; part <= pair; part++) {
            if (part == 1) write_template_piece(w, "Sequence", "B", 1);
            for (size_t i = 0; i < t->n_after; i++)
                write_template_piece(w, "SpecialToken", wp_vocab_token(&t->vocab, t->template_after[i], NULL), part);
        }
        lm_json_end_array(w);
    }
    lm_json_key(w, "special_tokens");
    lm_json_begin_object(w);
    for (size_t i = 0; i < t->n_before + t->n_after; i++) {
        int32_t id = i < t->n_before ? t->template_before[i] : t->template_after[i - t->n_before];
        size_t len;
        const char *tok = wp_vocab_token(&t->vocab, id, &len);
        int repeated = 0;
        for (size_t k = 0; k < i; k++)
            if ((k < t->n_before ? t->template_before[k] : t->template_after[k - t->n_before]) == id) repeated = 1;
        if (repeated) continue;
        lm_json_key(w, tok);
        lm_json_begin_object(w);
        lm_json_key(w, "id");
        lm_json_write_string(w, tok, len);
        lm_json_key(w, "ids");
        lm_json_begin_array(w);
        lm_json_write_int(w, id);
        lm_json_end_array(w);
        lm_json_key(w, "tokens");
        lm_json_begin_array(w);
        lm_json_write_string(w, tok, len);
        lm_json_end_array(w);
        lm_json_end_object(w);
    }
    lm_json_end_object(w);
    lm_json_end_object(w);
}

lm_status wp_save_json(wp_tokenizer *t, const char *path) {
    lm_buffer out = {0};
    lm_json_writer w;
    lm_json_writer_init(&w, &out, 2);
    tokenizer_json_begin(&w);
    lm_json_key(&w, "added_tokens");
    lm_json_begin_array(&w);
    for (size_t i = 0; i < t->n_added; i++) {
        const wp_added_token *a = &t->added[i];
        tokenizer_json_added_token(&w, a->id, a->content, a->len, (tokenizer_json_token_flags){.special = a->special});
    }
    lm_json_end_array(&w);
    lm_json_key(&w, "normalizer");
    if (t->norm.clean_text || t->norm.handle_chinese_chars || t->norm.strip_accents > 0 || t->norm.lowercase) {
        lm_json_begin_object(&w);
        lm_json_key(&w, "type");
        lm_json_write_cstr(&w, "BertNormalizer");
        lm_json_key(&w, "clean_text");
        lm_json_write_bool(&w, t->norm.clean_text);
        lm_json_key(&w, "handle_chinese_chars");
        lm_json_write_bool(&w, t->norm.handle_chinese_chars);
        lm_json_key(&w, "strip_accents");
        if (t->norm.strip_accents < 0) lm_json_write_null(&w);
        else lm_json_write_bool(&w, t->norm.strip_accents);
        lm_json_key(&w, "lowercase");
        lm_json_write_bool(&w, t->norm.lowercase);
        lm_json_end_object(&w);
    } else {
        lm_json_write_null(&w);
    }
    lm_json_key(&w, "pre_tokenizer");
    lm_json_begin_object(&w);
    lm_json_key(&w, "type");
    lm_json_write_cstr(&w, "BertPreTokenizer");
    lm_json_end_object(&w);
    write_post_processor(&w, t);
    lm_json_key(&w, "decoder");
    if (t->decoder_wordpiece) {
        lm_json_begin_object(&w);
        lm_json_key(&w, "type");
        lm_json_write_cstr(&w, "WordPiece");
        lm_json_key(&w, "prefix");
        lm_json_write_string(&w, t->decoder_prefix, t->decoder_prefix_len);
        lm_json_key(&w, "cleanup");
        lm_json_write_bool(&w, t->decoder_cleanup);
        lm_json_end_object(&w);
    } else {
        lm_json_write_null(&w);
    }
    lm_json_key(&w, "model");
    lm_json_begin_object(&w);
    lm_json_key(&w, "type");
    lm_json_write_cstr(&w, "WordPiece");
    lm_json_key(&w, "unk_token");
    lm_json_write_cstr(&w, t->unk_token);
    lm_json_key(&w, "continuing_subword_prefix");
    lm_json_write_string(&w, t->prefix, t->prefix_len);
    lm_json_key(&w, "max_input_chars_per_word");
    lm_json_write_int(&w, (int64_t)t->max_input_chars_per_word);
    lm_json_key(&w, "vocab");
    lm_json_begin_object(&w);
    for (int32_t id = 0; id < t->vocab.count; id++) {
        const char *tok = wp_vocab_token(&t->vocab, id, NULL);
        if (!tok) continue;
        lm_json_key(&w, tok); /* NUL-terminated in the arena */
        lm_json_write_int(&w, id);
    }
    lm_json_end_object(&w);
    lm_json_end_object(&w);
    lm_json_end_object(&w);
    lm_status status = tokenizer_json_save(&w, &out, path);
    if (status != LM_OK) lm_error_prefix("saving wordpiece tokenizer to '%s': ", path);
    lm_buffer_free(&out);
    return status;
}
