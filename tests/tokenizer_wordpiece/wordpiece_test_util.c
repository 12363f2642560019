/* Helpers shared by the WordPiece suites (see wordpiece_test_util.h). */
#include "wordpiece_test_util.h"

#include <check.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const lm_tokenizer_vtable *wp_plugin(void) {
    static const lm_tokenizer_vtable *vt;
    if (vt) return vt;
    const char *path = LM_TEST_PLUGIN_DIR "/lm_tokenizer_wordpiece.so";
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(handle != NULL, "dlopen %s: %s", path, dlerror());
    lm_plugin_describe_fn describe = (lm_plugin_describe_fn)dlsym(handle, LM_PLUGIN_DESCRIBE_SYMBOL);
    ck_assert_ptr_nonnull(describe);
    const lm_plugin_descriptor *d = describe();
    ck_assert_int_eq(d->abi_major, LM_ABI_MAJOR);
    ck_assert_int_eq(d->kind, LM_KIND_TOKENIZER);
    ck_assert_str_eq(d->name, "wordpiece");
    ck_assert_uint_eq(d->vtable_size, sizeof(lm_tokenizer_vtable));
    vt = d->vtable;
    return vt;
}

lm_status wp_create_kv(void **tok, const char *const *pairs) {
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, "tokenizer 'wordpiece'"), LM_OK);
    for (size_t i = 0; pairs && pairs[i]; i++) ck_assert_int_eq(lm_config_set_parsed(cfg, pairs[i]), LM_OK);
    lm_status status = wp_plugin()->create(tok, cfg);
    if (status == LM_OK) {
        status = lm_config_validate(cfg);
        if (status != LM_OK) wp_plugin()->destroy(*tok);
    }
    lm_config_destroy(cfg);
    return status;
}

void *wp_open(const char *const *pairs) {
    void *tok = NULL;
    lm_status status = wp_create_kv(&tok, pairs);
    ck_assert_msg(status == LM_OK, "create failed: %s", lm_error_message());
    return tok;
}

void *wp_open_path(const char *path) {
    char kv[1024];
    snprintf(kv, sizeof kv, "path=%s", path);
    const char *pairs[] = {kv, NULL};
    return wp_open(pairs);
}

static const lm_json *fixture_root(void) {
    static lm_json *root; /* parsed once, reachable until exit */
    if (!root) {
        lm_status status = lm_json_parse_file(WP_CASES, &root);
        ck_assert_msg(status == LM_OK, "%s", lm_error_message());
    }
    return root;
}

const lm_json *wp_cases(void) { return lm_json_get(fixture_root(), "cases"); }

const lm_json *wp_settings(const char *kind) {
    const lm_json *s = lm_json_get(lm_json_get(fixture_root(), "settings"), kind);
    ck_assert_ptr_nonnull(s);
    return s;
}

unsigned char *wp_case_input(const lm_json *c, size_t *len) {
    size_t hex_len;
    const char *hex = lm_json_string(lm_json_get(c, "input_hex"), &hex_len);
    ck_assert_ptr_nonnull(hex);
    unsigned char *out = malloc(hex_len / 2 + 1);
    for (size_t i = 0; i < hex_len / 2; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
    out[hex_len / 2] = 0;
    *len = hex_len / 2;
    return out;
}

size_t wp_case_ids(const lm_json *c, const char *kind, int32_t *ids, size_t cap) {
    const lm_json *list = lm_json_get(lm_json_get(c, kind), "ids");
    ck_assert_ptr_nonnull(list);
    size_t n = lm_json_size(list);
    ck_assert_uint_le(n, cap);
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)lm_json_int(lm_json_at(list, i));
    return n;
}

typedef struct wiki_rows {
    lm_buffer text;
    size_t *start, *len, n;
} wiki_rows;

static lm_status wiki_row(void *ctx, size_t index, const char **text, size_t *len) {
    wiki_rows *r = ctx;
    *text = r->text.data + r->start[index];
    *len = r->len[index];
    return LM_OK;
}

lm_text_source wp_wiki_rows(size_t n) {
    wiki_rows *r = calloc(1, sizeof *r);
    lm_status status = lm_file_read(WP_WIKI_TEST, &r->text);
    ck_assert_msg(status == LM_OK, "the shared wikitext data is required: %s", lm_error_message());
    r->start = malloc(n * sizeof *r->start);
    r->len = malloc(n * sizeof *r->len);
    size_t pos = 0;
    while (r->n < n && pos < r->text.len) {
        const char *nl = memchr(r->text.data + pos, '\n', r->text.len - pos);
        size_t end = nl ? (size_t)(nl - r->text.data) : r->text.len;
        r->start[r->n] = pos;
        r->len[r->n] = end - pos;
        r->n++;
        pos = end + 1;
    }
    ck_assert_uint_eq(r->n, n);
    return (lm_text_source){sizeof(lm_text_source), r, r->n, wiki_row, 0, NULL};
}

void wp_wiki_rows_free(lm_text_source *rows) {
    wiki_rows *r = rows->ctx;
    lm_buffer_free(&r->text);
    free(r->start);
    free(r->len);
    free(r);
    rows->ctx = NULL;
}

void wp_check_cases(void *tok, const char *kind) {
    const lm_tokenizer_vtable *vt = wp_plugin();
    const lm_json *cases = wp_cases();
    ck_assert_uint_ge(lm_json_size(cases), 25);
    for (size_t i = 0; i < lm_json_size(cases); i++) {
        const lm_json *c = lm_json_at(cases, i);
        const char *name = lm_json_string(lm_json_get(c, "name"), NULL);
        size_t len;
        unsigned char *input = wp_case_input(c, &len);
        static int32_t want[4096];
        size_t n_want = wp_case_ids(c, kind, want, 4096);
        lm_ids got = {0};
        ck_assert_int_eq(vt->encode(tok, (const char *)input, len, 1, &got), LM_OK);
        ck_assert_msg(got.len == n_want, "case %s (%s): %zu ids, HF has %zu", name, kind, got.len, n_want);
        for (size_t k = 0; k < n_want; k++)
            ck_assert_msg(got.data[k] == want[k], "case %s (%s): id %zu is %d, HF has %d", name, kind, k, got.data[k],
                          want[k]);
        /* Without specials: the same minus [CLS] and [SEP]. */
        lm_ids bare = {0};
        ck_assert_int_eq(vt->encode(tok, (const char *)input, len, 0, &bare), LM_OK);
        ck_assert_uint_eq(bare.len + 2, got.len);
        if (bare.len) ck_assert_int_eq(memcmp(bare.data, got.data + 1, bare.len * sizeof(int32_t)), 0);
        for (int skip = 0; skip < 2; skip++) {
            lm_buffer text = {0};
            ck_assert_int_eq(vt->decode(tok, got.data, got.len, skip, &text), LM_OK);
            const char *expect = lm_json_string(lm_json_get(lm_json_get(c, kind), skip ? "decode" : "decode_special"),
                                                NULL);
            ck_assert_msg(strcmp(text.data ? text.data : "", expect) == 0, "case %s (%s) decode(skip=%d): '%s' != HF '%s'",
                          name, kind, skip, text.data ? text.data : "", expect);
            lm_buffer_free(&text);
        }
        lm_ids_free(&got);
        lm_ids_free(&bare);
        free(input);
    }
}

size_t wp_continuation_order(void *tok, char ***out) {
    const lm_tokenizer_vtable *vt = wp_plugin();
    lm_vocab_info info;
    ck_assert_int_eq(vt->info(tok, &info), LM_OK);
    char **list = calloc((size_t)info.vocab_size, sizeof *list);
    size_t n = 0;
    for (int32_t id = 0; id < info.vocab_size; id++) {
        const char *t;
        size_t len;
        ck_assert_int_eq(vt->id_to_token(tok, id, &t, &len), LM_OK);
        if (len < 3 || memcmp(t, "##", 2) != 0) continue;
        unsigned char lead = (unsigned char)t[2];
        size_t char_len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        if (len != 2 + char_len) continue;
        list[n] = malloc(len + 1);
        memcpy(list[n], t, len);
        list[n][len] = 0;
        n++;
    }
    *out = list;
    return n;
}

void wp_strings_free(char **items, size_t n) {
    for (size_t i = 0; i < n; i++) free(items[i]);
    free(items);
}
