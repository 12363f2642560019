/* tokenizer.json / vocab.json / merges.txt for the BPE plugin. */
#include "bpe_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmcore/json.h>
#include <lmcore/status.h>

#include "tokenizer_json.h"
#include "unicode.h"

/* ---- small JSON helpers ---------------------------------------------------------- */

static int json_is_null(const lm_json *v) { return !v || lm_json_type_of(v) == LM_JSON_NULL; }

/* A boolean member; absent or null gives def.  Anything else is an error. */
static lm_status get_bool(const char *path, const lm_json *obj, const char *where, const char *key, int def,
                          int *out) {
    const lm_json *v = lm_json_get(obj, key);
    if (json_is_null(v)) {
        *out = def;
        return LM_OK;
    }
    if (lm_json_type_of(v) != LM_JSON_BOOL)
        return lm_error_set(LM_ERR_FORMAT, "%s: %s.%s must be true or false", path, where, key);
    *out = lm_json_bool(v);
    return LM_OK;
}

/* ---- tokenizer.json ------------------------------------------------------------------ */

/* A token lmcore can write back: save writes vocabulary keys as C strings,
 * which U+0000 would cut short (HF accepts it, but no real vocabulary holds
 * one; trained tokens never do, byte 0 being "Ā" in the byte-level alphabet). */
static lm_status check_token_text(const char *path, const char *where, const char *token, size_t len,
                                  long long id) {
    const char *nul = memchr(token, '\0', len);
    if (!nul) return LM_OK;
    size_t before = (size_t)(nul - token), after = len - before - 1;
    return lm_error_set(LM_ERR_FORMAT,
                        "%s: %s: token '%.*s\\u0000%.*s' (id %lld) holds U+0000 (a NUL character), which lmcore "
                        "cannot save: remove it from the file",
                        path, where, (int)(before > 60 ? 60 : before), token, (int)(after > 60 ? 60 : after), nul + 1,
                        id);
}

/* Ids must be dense: below `id_limit`, the number of tokens the file holds
 * (plus its added tokens).  Every Hugging Face vocabulary is; refusing the
 * rest keeps the per-id tables proportional to the file instead of to the
 * largest id (one token with id 2e9 would need a 16 GiB table). */
static lm_status check_dense_id(const char *path, const char *where, const char *token, size_t len, int64_t id,
                                int64_t id_limit) {
    if (id < id_limit && id < INT32_MAX - 1) return LM_OK;
    return lm_error_set(LM_ERR_FORMAT,
                        "%s: %s: token '%.*s' has id %lld, but the file lists %lld token(s), so ids must be 0..%lld "
                        "(Hugging Face vocabularies are dense)",
                        path, where, (int)(len > 100 ? 100 : len), token, (long long)id, (long long)id_limit,
                        (long long)id_limit - 1);
}

static lm_status read_vocab(const char *path, const lm_json *vocab, const char *where, int64_t id_limit,
                            bpe_model *m) {
    if (!vocab || lm_json_type_of(vocab) != LM_JSON_OBJECT)
        return lm_error_set(LM_ERR_FORMAT, "%s: %s must be an object mapping token strings to ids", path, where);
    size_t n = lm_json_size(vocab);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *token = lm_json_key_at(vocab, i, &len);
        const lm_json *id = lm_json_at(vocab, i);
        if (lm_json_type_of(id) != LM_JSON_NUMBER || !lm_json_is_integer(id) || lm_json_int(id) < 0)
            return lm_error_set(LM_ERR_FORMAT, "%s: %s: the id of token '%.*s' must be a non-negative integer", path,
                                where, (int)(len > 100 ? 100 : len), token);
        LM_TRY(check_dense_id(path, where, token, len, lm_json_int(id), id_limit));
        LM_TRY(check_token_text(path, where, token, len, (long long)lm_json_int(id)));
        LM_TRY(bpe_model_set_token(m, (int32_t)lm_json_int(id), token, len, path));
    }
    return LM_OK;
}

static lm_status read_merges(const char *path, const lm_json *merges, bpe_model *m) {
    if (!merges || lm_json_type_of(merges) != LM_JSON_ARRAY)
        return lm_error_set(LM_ERR_FORMAT, "%s: model.merges must be an array", path);
    size_t n = lm_json_size(merges);
    for (size_t i = 0; i < n; i++) {
        const lm_json *item = lm_json_at(merges, i);
        const char *a = NULL, *b = NULL;
        size_t a_len = 0, b_len = 0;
        if (lm_json_type_of(item) == LM_JSON_STRING) { /* "a b" (tokenizers < 0.20) */
            size_t len;
            const char *s = lm_json_string(item, &len);
            const char *space = memchr(s, ' ', len);
            if (space && !memchr(space + 1, ' ', len - (size_t)(space - s) - 1)) {
                a = s;
                a_len = (size_t)(space - s);
                b = space + 1;
                b_len = len - a_len - 1;
            }
        } else if (lm_json_type_of(item) == LM_JSON_ARRAY && lm_json_size(item) == 2 &&
                   lm_json_type_of(lm_json_at(item, 0)) == LM_JSON_STRING &&
                   lm_json_type_of(lm_json_at(item, 1)) == LM_JSON_STRING) { /* ["a", "b"] */
            a = lm_json_string(lm_json_at(item, 0), &a_len);
            b = lm_json_string(lm_json_at(item, 1), &b_len);
        }
        if (!a)
            return lm_error_set(LM_ERR_FORMAT, "%s: model.merges[%zu] must be \"left right\" or [\"left\", \"right\"]",
                                path, i);
        LM_TRY(bpe_model_add_merge(m, a, a_len, b, b_len, path));
    }
    return LM_OK;
}

static lm_status read_model(const char *path, const lm_json *model, int64_t id_limit, bpe_model *m) {
    if (!model || lm_json_type_of(model) != LM_JSON_OBJECT)
        return lm_error_set(LM_ERR_FORMAT, "%s: no \"model\" object: is this a Hugging Face tokenizer.json?", path);
    const char *type = tokenizer_json_type(model);
    if (type && strcmp(type, "BPE") != 0)
        return lm_error_set(LM_ERR_UNSUPPORTED, "%s: model type is '%s', not 'BPE': use the tokenizer plugin for %s",
                            path, type, type);
    const lm_json *v = lm_json_get(model, "dropout");
    if (!json_is_null(v) && !(lm_json_type_of(v) == LM_JSON_NUMBER && lm_json_number(v) == 0.0))
        return lm_error_set(LM_ERR_UNSUPPORTED, "%s: model.dropout (BPE-dropout) is not supported: set it to null", path);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        v = lm_json_get(model, affixes[i]);
        size_t len = 0;
        if (!json_is_null(v) && (lm_json_type_of(v) != LM_JSON_STRING || (lm_json_string(v, &len), len != 0)))
            return lm_error_set(LM_ERR_UNSUPPORTED, "%s: model.%s is not supported by the byte-level BPE plugin", path,
                                affixes[i]);
    }
    int byte_fallback;
    LM_TRY(get_bool(path, model, "model", "byte_fallback", 0, &byte_fallback));
    if (byte_fallback)
        return lm_error_set(LM_ERR_UNSUPPORTED, "%s: model.byte_fallback=true (SentencePiece-style BPE) is not supported",
                            path);
    LM_TRY(get_bool(path, model, "model", "fuse_unk", 0, &m->fuse_unk));
    LM_TRY(get_bool(path, model, "model", "ignore_merges", 0, &m->ignore_merges));
    LM_TRY(read_vocab(path, lm_json_get(model, "vocab"), "model.vocab", id_limit, m));
    LM_TRY(read_merges(path, lm_json_get(model, "merges"), m));
    v = lm_json_get(model, "unk_token");
    if (!json_is_null(v)) {
        size_t len;
        const char *unk = lm_json_type_of(v) == LM_JSON_STRING ? lm_json_string(v, &len) : NULL;
        if (!unk) return lm_error_set(LM_ERR_FORMAT, "%s: model.unk_token must be a string or null", path);
        m->unk_id = bpe_strmap_get(&m->vocab, unk, len);
        if (m->unk_id < 0)
            return lm_error_set(LM_ERR_FORMAT, "%s: model.unk_token '%s' is not in the vocabulary", path, unk);
    }
    return LM_OK;
}

static int is_byte_level(const lm_json *v) {
    const char *type = tokenizer_json_type(v);
    return type && strcmp(type, "ByteLevel") == 0;
}

/* A component's type for messages: "?" when it has none. */
static const char *type_for_message(const lm_json *v) {
    const char *type = tokenizer_json_type(v);
    return type ? type : "?";
}

/* pre_tokenizer, post_processor and decoder must be ByteLevel (or null for
 * the last two); the normalizer must be null. */
static lm_status read_pipeline(const char *path, const lm_json *root, bpe_model *m) {
    const lm_json *v = lm_json_get(root, "normalizer");
    if (!json_is_null(v))
        return lm_error_set(LM_ERR_UNSUPPORTED, "%s: normalizer '%s' is not supported by the byte-level BPE plugin",
                            path, type_for_message(v));
    v = lm_json_get(root, "pre_tokenizer");
    if (!is_byte_level(v))
        return lm_error_set(LM_ERR_UNSUPPORTED, "%s: pre_tokenizer must be ByteLevel (found %s)", path,
                            json_is_null(v) ? "null" : tokenizer_json_type(v) ? tokenizer_json_type(v) : "no type");
    LM_TRY(get_bool(path, v, "pre_tokenizer", "add_prefix_space", 1, &m->add_prefix_space));
    LM_TRY(get_bool(path, v, "pre_tokenizer", "trim_offsets", 1, &m->trim_offsets));
    LM_TRY(get_bool(path, v, "pre_tokenizer", "use_regex", 1, &m->use_regex));
    v = lm_json_get(root, "post_processor");
    m->post_processor = 0;
    if (!json_is_null(v)) {
        if (!is_byte_level(v))
            return lm_error_set(LM_ERR_UNSUPPORTED, "%s: post_processor '%s' is not supported (only ByteLevel or null)",
                                path, type_for_message(v));
        m->post_processor = 1;
        LM_TRY(get_bool(path, v, "post_processor", "add_prefix_space", 1, &m->post_add_prefix_space));
        LM_TRY(get_bool(path, v, "post_processor", "trim_offsets", 1, &m->post_trim_offsets));
        LM_TRY(get_bool(path, v, "post_processor", "use_regex", 1, &m->post_use_regex));
    }
    v = lm_json_get(root, "decoder");
    m->has_decoder = !json_is_null(v);
    if (m->has_decoder && !is_byte_level(v))
        return lm_error_set(LM_ERR_UNSUPPORTED, "%s: decoder '%s' is not supported (only ByteLevel or null)", path,
                            type_for_message(v));
    return LM_OK;
}

static lm_status read_added(const char *path, const lm_json *added, int64_t id_limit, bpe_model *m) {
    if (json_is_null(added)) return LM_OK;
    if (lm_json_type_of(added) != LM_JSON_ARRAY)
        return lm_error_set(LM_ERR_FORMAT, "%s: added_tokens must be an array", path);
    for (size_t i = 0; i < lm_json_size(added); i++) {
        const lm_json *t = lm_json_at(added, i);
        const lm_json *id = lm_json_get(t, "id");
        const lm_json *content = lm_json_get(t, "content");
        if (lm_json_type_of(t) != LM_JSON_OBJECT || !id || lm_json_type_of(id) != LM_JSON_NUMBER ||
            !lm_json_is_integer(id) || lm_json_int(id) < 0 || !content || lm_json_type_of(content) != LM_JSON_STRING)
            return lm_error_set(LM_ERR_FORMAT, "%s: added_tokens[%zu] needs an integer \"id\" and a string \"content\"",
                                path, i);
        size_t len;
        const char *text = lm_json_string(content, &len);
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        LM_TRY(check_dense_id(path, where, text, len, lm_json_int(id), id_limit));
        LM_TRY(check_token_text(path, "added_tokens", text, len, (long long)lm_json_int(id)));
        int special;
        LM_TRY(get_bool(path, t, "added_tokens[]", "special", 0, &special));
        size_t before = m->n_added;
        LM_TRY(bpe_model_add_added(m, text, len, (int32_t)lm_json_int(id), special, path));
        if (m->n_added == before) continue;
        bpe_added_token *a = &m->added[m->n_added - 1];
        LM_TRY(get_bool(path, t, "added_tokens[]", "normalized", !special, &a->normalized));
        LM_TRY(get_bool(path, t, "added_tokens[]", "lstrip", 0, &a->lstrip));
        LM_TRY(get_bool(path, t, "added_tokens[]", "rstrip", 0, &a->rstrip));
        LM_TRY(get_bool(path, t, "added_tokens[]", "single_word", 0, &a->single_word));
    }
    return LM_OK;
}

/* The end of a load: the parsed file freed, and the model handed out on
 * success or destroyed on failure. */
static lm_status finish_load(lm_status status, lm_json *file, bpe_model *m, bpe_model **out) {
    lm_json_free(file);
    if (status != LM_OK) {
        bpe_model_destroy(m);
        return status;
    }
    *out = m;
    return LM_OK;
}

lm_status bpe_load_tokenizer_json(const char *path, bpe_model **out) {
    lm_json *root = NULL;
    bpe_model *m = NULL;
    lm_status status;
    LM_CHECK(lm_json_parse_file(path, &root));
    if (lm_json_type_of(root) != LM_JSON_OBJECT) {
        status = lm_error_set(LM_ERR_FORMAT, "%s: a tokenizer.json must hold a JSON object", path);
        goto fail;
    }
    LM_CHECK(bpe_model_create(&m));
    const lm_json *model = lm_json_get(root, "model"), *added = lm_json_get(root, "added_tokens");
    /* lm_json_size is 0 for a missing or mistyped member (reported below). */
    int64_t id_limit = (int64_t)(lm_json_size(lm_json_get(model, "vocab")) + lm_json_size(added));
    LM_CHECK(read_model(path, model, id_limit, m));
    LM_CHECK(read_pipeline(path, root, m));
    LM_CHECK(read_added(path, added, id_limit, m));
    LM_CHECK(bpe_model_finish(m, path));
fail:
    return finish_load(status, root, m, out);
}

/* ---- vocab.json + merges.txt ------------------------------------------------------------ */

static lm_status read_merges_txt(const char *path, bpe_model *m) {
    lm_buffer text = {0};
    LM_TRY(lm_file_read(path, &text));
    lm_status status = LM_OK;
    size_t line_no = 0;
    for (size_t pos = 0; pos < text.len && status == LM_OK;) {
        const char *line = text.data + pos;
        const char *nl = memchr(line, '\n', text.len - pos);
        size_t len = nl ? (size_t)(nl - line) : text.len - pos;
        pos += len + (nl ? 1 : 0);
        line_no++;
        if (len && line[len - 1] == '\r') len--;
        if (len == 0 || (len >= 8 && memcmp(line, "#version", 8) == 0)) continue;
        const char *space = memchr(line, ' ', len);
        if (!space || memchr(space + 1, ' ', len - (size_t)(space - line) - 1) || space == line ||
            space == line + len - 1) {
            status = lm_error_set(LM_ERR_FORMAT, "%s:%zu: a merge line must be two tokens separated by one space",
                                  path, line_no);
            break;
        }
        status = bpe_model_add_merge(m, line, (size_t)(space - line), space + 1, len - (size_t)(space - line) - 1, path);
    }
    lm_buffer_free(&text);
    return status;
}

lm_status bpe_load_vocab_merges(const char *vocab_path, const char *merges_path, const char *const *specials,
                                size_t n_specials, int add_prefix_space, bpe_model **out) {
    lm_json *vocab = NULL;
    bpe_model *m = NULL;
    lm_status status;
    LM_CHECK(lm_json_parse_file(vocab_path, &vocab));
    LM_CHECK(bpe_model_create(&m));
    LM_CHECK(read_vocab(vocab_path, vocab, "the vocabulary", (int64_t)lm_json_size(vocab), m));
    LM_CHECK(read_merges_txt(merges_path, m));
    for (size_t i = 0; i < n_specials; i++)
        LM_CHECK(bpe_model_add_added(m, specials[i], strlen(specials[i]), -1, 1, vocab_path));
    m->add_prefix_space = add_prefix_space;
    m->post_add_prefix_space = 1;
    m->post_trim_offsets = 1;
    LM_CHECK(bpe_model_finish(m, vocab_path));
fail:
    return finish_load(status, vocab, m, out);
}

/* ---- writing ----------------------------------------------------------------------------- */

static void write_byte_level(lm_json_writer *w, int add_prefix_space, int trim_offsets, int use_regex) {
    lm_json_begin_object(w);
    lm_json_key(w, "type");
    lm_json_write_cstr(w, "ByteLevel");
    lm_json_key(w, "add_prefix_space");
    lm_json_write_bool(w, add_prefix_space);
    lm_json_key(w, "trim_offsets");
    lm_json_write_bool(w, trim_offsets);
    lm_json_key(w, "use_regex");
    lm_json_write_bool(w, use_regex);
    lm_json_end_object(w);
}

static int compare_added(const void *a, const void *b) {
    const bpe_added_token *x = *(const bpe_added_token *const *)a, *y = *(const bpe_added_token *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

static lm_status write_added(lm_json_writer *w, const bpe_model *m) {
    const bpe_added_token **sorted = malloc((m->n_added + 1) * sizeof(*sorted));
    if (!sorted) return lm_error_set(LM_ERR_NOMEM, "BPE tokenizer: out of memory saving added tokens");
    for (size_t i = 0; i < m->n_added; i++) sorted[i] = &m->added[i];
    qsort(sorted, m->n_added, sizeof(*sorted), compare_added);
    lm_json_begin_array(w);
    for (size_t i = 0; i < m->n_added; i++) {
        const bpe_added_token *t = sorted[i];
        tokenizer_json_added_token(w, t->id, t->content, t->len,
                                   (tokenizer_json_token_flags){t->single_word, t->lstrip, t->rstrip, t->normalized,
                                                                t->special});
    }
    lm_json_end_array(w);
    free(sorted);
    return LM_OK;
}

static lm_status write_model(lm_json_writer *w, const bpe_model *m, lm_buffer *key) {
    lm_json_begin_object(w);
    lm_json_key(w, "type");
    lm_json_write_cstr(w, "BPE");
    static const char *const nulls[] = {"dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 4; k++) {
        lm_json_key(w, nulls[k]);
        size_t len;
        const char *unk = k == 1 ? bpe_model_token(m, m->unk_id, &len) : NULL;
        if (unk) lm_json_write_string(w, unk, len);
        else lm_json_write_null(w);
    }
    lm_json_key(w, "fuse_unk");
    lm_json_write_bool(w, m->fuse_unk);
    lm_json_key(w, "byte_fallback");
    lm_json_write_bool(w, 0);
    lm_json_key(w, "ignore_merges");
    lm_json_write_bool(w, m->ignore_merges);
    lm_json_key(w, "vocab");
    lm_json_begin_object(w);
    for (int32_t id = 0; id < m->n_ids; id++) {
        size_t len;
        const char *token = bpe_model_token(m, id, &len);
        if (!token || bpe_strmap_get(&m->vocab, token, len) != id) continue; /* holes, added-only ids */
        lm_buffer_clear(key);
        LM_TRY(lm_buffer_append(key, token, len)); /* a C string: loaders refuse NUL */
        lm_json_key(w, key->data);
        lm_json_write_int(w, id);
    }
    lm_json_end_object(w);
    lm_json_key(w, "merges");
    lm_json_begin_array(w);
    for (size_t r = 0; r < m->n_merges; r++) {
        if (m->merge_dead[r]) continue;
        size_t a_len, b_len;
        const char *a = bpe_model_token(m, (int32_t)(m->merge_pairs[r] >> 32), &a_len);
        const char *b = bpe_model_token(m, (int32_t)(uint32_t)m->merge_pairs[r], &b_len);
        lm_json_begin_array(w);
        lm_json_write_string(w, a, a_len);
        lm_json_write_string(w, b, b_len);
        lm_json_end_array(w);
    }
    lm_json_end_array(w);
    lm_json_end_object(w);
    return LM_OK;
}

lm_status bpe_save_tokenizer_json(const bpe_model *m, const char *path) {
    lm_buffer out = {0}, key = {0};
    lm_json_writer w;
    lm_json_writer_init(&w, &out, 2);
    lm_status status;
    tokenizer_json_begin(&w);
    lm_json_key(&w, "added_tokens");
    LM_CHECK(write_added(&w, m));
    lm_json_key(&w, "normalizer");
    lm_json_write_null(&w);
    lm_json_key(&w, "pre_tokenizer");
    write_byte_level(&w, m->add_prefix_space, m->trim_offsets, m->use_regex);
    lm_json_key(&w, "post_processor");
    if (m->post_processor) write_byte_level(&w, m->post_add_prefix_space, m->post_trim_offsets, m->post_use_regex);
    else lm_json_write_null(&w);
    lm_json_key(&w, "decoder");
    if (m->has_decoder) write_byte_level(&w, 1, 1, 1);
    else lm_json_write_null(&w);
    lm_json_key(&w, "model");
    LM_CHECK(write_model(&w, m, &key));
    lm_json_end_object(&w);
    status = tokenizer_json_save(&w, &out, path);
fail:
    if (status != LM_OK) lm_error_prefix("saving tokenizer '%s': ", path);
    lm_buffer_free(&out);
    lm_buffer_free(&key);
    return status;
}
