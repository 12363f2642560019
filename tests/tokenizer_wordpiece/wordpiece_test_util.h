/* Shared helpers of the WordPiece suites: the plugin, the HF fixtures and the
 * shared wikitext rows. */
#ifndef LM_TEST_WORDPIECE_UTIL_H
#define LM_TEST_WORDPIECE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/lmcore.h"

#define WP_FIXTURES LM_TEST_SOURCE_DIR "/tests/tokenizer_wordpiece/fixtures"
#define WP_HF_CASED WP_FIXTURES "/hf_cased_tokenizer.json"
#define WP_HF_UNCASED WP_FIXTURES "/hf_uncased_tokenizer.json"
#define WP_HF_LIMITED WP_FIXTURES "/hf_limited_tokenizer.json"
#define WP_CASES WP_FIXTURES "/wordpiece_cases.json"
#define WP_WIKI_TEST LM_TEST_SHARED_DATA_DIR "/wikitext-2-raw/wiki.test.raw"

/* The plugin's vtable (dlopen + lm_plugin_describe, checked). */
const lm_tokenizer_vtable *wp_plugin(void);

/* Creates a tokenizer from key=value pairs (NULL-terminated); the status is
 * returned, the config validated on success. */
lm_status wp_create_kv(void **tok, const char *const *pairs);
/* Same, asserting success. */
void *wp_open(const char *const *pairs);
void *wp_open_path(const char *path);

/* The fixture file of held-out cases (parsed once per process) and the
 * generator's training settings of one kind ("cased", "uncased", "limited"). */
const lm_json *wp_cases(void);
const lm_json *wp_settings(const char *kind);
/* Case i's input bytes (malloc'd) and its expected ids for "cased"/"uncased". */
unsigned char *wp_case_input(const lm_json *c, size_t *len);
size_t wp_case_ids(const lm_json *c, const char *kind, int32_t *ids, size_t cap);

/* The first n lines of wiki.test.raw as a text source (without the '\n'). */
lm_text_source wp_wiki_rows(size_t n);
void wp_wiki_rows_free(lm_text_source *rows);

/* Asserts that tok encodes and decodes every case as HF does. */
void wp_check_cases(void *tok, const char *kind);

/* HF's "##c" order: the single-character continuation tokens of a
 * vocabulary, in id order (malloc'd array of malloc'd strings). */
size_t wp_continuation_order(void *tok, char ***out);
void wp_strings_free(char **items, size_t n);

#endif
