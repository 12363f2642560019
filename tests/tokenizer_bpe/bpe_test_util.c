/* Helpers shared by the BPE tokenizer suites. */
#include "bpe_test_util.h"

#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const lm_tokenizer_vtable *bpe_vtable(void) {
    static const lm_tokenizer_vtable *vt;
    if (vt) return vt;
    const char *path = LM_TEST_PLUGIN_DIR "/lm_tokenizer_bpe.so";
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* kept open: the vtable lives in it */
    ck_assert_msg(handle != NULL, "dlopen %s: %s", path, dlerror());
    lm_plugin_describe_fn describe = (lm_plugin_describe_fn)dlsym(handle, LM_PLUGIN_DESCRIBE_SYMBOL);
    ck_assert_msg(describe != NULL, "%s exports no %s", path, LM_PLUGIN_DESCRIBE_SYMBOL);
    const lm_plugin_descriptor *d = describe();
    ck_assert_int_eq(d->abi_major, LM_ABI_MAJOR);
    ck_assert_int_eq(d->kind, LM_KIND_TOKENIZER);
    ck_assert_str_eq(d->name, "bpe");
    ck_assert_uint_eq(d->vtable_size, sizeof(lm_tokenizer_vtable));
    vt = d->vtable;
    return vt;
}

lm_status bpe_create_status(const char *const *kv, const char *const *specials, size_t n_specials, void **out) {
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, "tokenizer 'bpe'"), LM_OK);
    for (size_t i = 0; kv && kv[i]; i++) ck_assert_int_eq(lm_config_set_parsed(cfg, kv[i]), LM_OK);
    if (specials) ck_assert_int_eq(lm_config_set_list(cfg, "special_tokens", specials, n_specials), LM_OK);
    void *tok = NULL;
    lm_status s = bpe_vtable()->create(&tok, cfg);
    if (s == LM_OK) {
        s = lm_config_validate(cfg);
        if (s != LM_OK) bpe_vtable()->destroy(tok);
    }
    lm_config_destroy(cfg);
    *out = s == LM_OK ? tok : NULL;
    return s;
}

void *bpe_create_ok(const char *const *kv, const char *const *specials, size_t n_specials) {
    void *tok = NULL;
    lm_status s = bpe_create_status(kv, specials, n_specials, &tok);
    ck_assert_msg(s == LM_OK, "creating the BPE tokenizer failed: %s", lm_error_message());
    return tok;
}

void bpe_destroy(void *tok) { bpe_vtable()->destroy(tok); }

void lines_read(text_lines *lines, const char *path, size_t max_lines) {
    memset(lines, 0, sizeof(*lines));
    lm_status s = lm_file_read(path, &lines->file);
    ck_assert_msg(s == LM_OK, "reading %s (the shared wikitext-2 data) failed: %s", path, lm_error_message());
    lines->start = malloc((max_lines + 1) * sizeof(size_t));
    lines->len = malloc((max_lines + 1) * sizeof(size_t));
    size_t pos = 0;
    while (pos < lines->file.len && lines->count < max_lines) {
        const char *nl = memchr(lines->file.data + pos, '\n', lines->file.len - pos);
        size_t end = nl ? (size_t)(nl - lines->file.data) + 1 : lines->file.len;
        lines->start[lines->count] = pos;
        lines->len[lines->count++] = end - pos;
        pos = end;
    }
    ck_assert_uint_eq(lines->count, max_lines);
}

void lines_free(text_lines *lines) {
    lm_buffer_free(&lines->file);
    free(lines->start);
    free(lines->len);
}

static lm_status line_row(void *ctx, size_t index, const char **text, size_t *len) {
    text_lines *lines = ctx;
    *text = lines->file.data + lines->start[index];
    *len = lines->len[index];
    return LM_OK;
}

lm_text_source lines_source(text_lines *lines) {
    lm_text_source src = {sizeof(lm_text_source), lines, lines->count, line_row, 0, NULL};
    return src;
}

lm_ids bpe_encode_ok(void *tok, const char *text, size_t len) {
    lm_ids ids = {0};
    lm_status s = bpe_vtable()->encode(tok, text, len, 1, &ids);
    ck_assert_msg(s == LM_OK, "encode failed: %s", lm_error_message());
    return ids;
}

void assert_ids_eq_json(const lm_ids *ids, const lm_json *expected, const char *label, size_t case_index) {
    size_t n = lm_json_size(expected);
    size_t first_diff = 0;
    while (first_diff < n && first_diff < ids->len && ids->data[first_diff] == lm_json_int(lm_json_at(expected, first_diff)))
        first_diff++;
    ck_assert_msg(ids->len == n && first_diff == n,
                  "%s case %zu: %zu ids, HF has %zu; first difference at %zu (lmcore %d, HF %lld)", label, case_index,
                  ids->len, n, first_diff, first_diff < ids->len ? ids->data[first_diff] : -1,
                  first_diff < n ? (long long)lm_json_int(lm_json_at(expected, first_diff)) : -1LL);
}

lm_json *fixture_json(const char *name) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", BPE_FIXTURES, name);
    lm_json *root = NULL;
    ck_assert_msg(lm_json_parse_file(path, &root) == LM_OK, "%s", lm_error_message());
    return root;
}

char *temp_dir(void) {
    char *dir = strdup("/tmp/lm_bpe_test_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

void rm_tree(const char *dir) { /* one level: the suites write plain files */
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[1200];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}
