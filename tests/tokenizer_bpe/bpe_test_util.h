/* Helpers shared by the BPE tokenizer suites. */
#ifndef BPE_TEST_UTIL_H
#define BPE_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/lmcore.h"

#define BPE_FIXTURES LM_TEST_SOURCE_DIR "/tests/tokenizer_bpe/fixtures"
#define WIKITEXT_DIR LM_TEST_SHARED_DATA_DIR "/wikitext-2-raw"

/* The plugin's vtable (dlopen + lm_plugin_describe, checked). */
const lm_tokenizer_vtable *bpe_vtable(void);

/* Creates a tokenizer from "key=value" strings (NULL-terminated) and an
 * optional list-valued special_tokens; asserts success and validates. */
void *bpe_create_ok(const char *const *kv, const char *const *specials, size_t n_specials);
/* Same, returning the status (the config error included) instead. */
lm_status bpe_create_status(const char *const *kv, const char *const *specials, size_t n_specials, void **out);
void bpe_destroy(void *tok);

/* The first n lines of a wikitext file, each with its '\n' (as HF's
 * datasets rows and Python's splitlines(keepends=True)). */
typedef struct text_lines {
    lm_buffer file;
    size_t *start, *len;
    size_t count;
} text_lines;
void lines_read(text_lines *lines, const char *path, size_t max_lines);
void lines_free(text_lines *lines);
lm_text_source lines_source(text_lines *lines);

/* Encodes and returns the ids (caller frees with lm_ids_free). */
lm_ids bpe_encode_ok(void *tok, const char *text, size_t len);
/* Asserts ids equal the JSON array `expected`, naming the case. */
void assert_ids_eq_json(const lm_ids *ids, const lm_json *expected, const char *label, size_t case_index);

lm_json *fixture_json(const char *name);
/* A fresh temporary directory (removed by rm_tree). */
char *temp_dir(void);
void rm_tree(const char *dir);

#endif
