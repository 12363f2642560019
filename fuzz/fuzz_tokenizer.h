/* Shared checks for tokenizer plugins loaded from fuzzed files. */
#ifndef LMCORE_FUZZ_TOKENIZER_H
#define LMCORE_FUZZ_TOKENIZER_H

#include "lmcore/lmcore.h"

/* Creates a tokenizer with the config items "key=value" (NULL-terminated;
 * path, vocab and merges are strings, the rest typed by
 * lm_config_set_parsed).
 * Returns the status; on success *out holds the tokenizer.  A refusal must
 * come with a message and leave nothing behind (LeakSanitizer checks). */
lm_status fuzz_tokenizer_create(const lm_tokenizer_vtable *vt, const char *const *items, void **out);

/* Checks that the vocabulary is no larger than `max_ids`: ids are dense, so
 * a file of n bytes cannot hold more than about n of them (finding F6: a
 * huge id once made the BPE plugin allocate tables for every id below it). */
void fuzz_tokenizer_check_size(const lm_tokenizer_vtable *vt, void *tok, size_t max_ids);

/* Exercises a loaded tokenizer: info, fingerprint, id <-> token for every
 * id, encode of sample texts (ids in range, decodable, deterministic), and
 * when `save_name` is given, save + reload through path= with the same
 * encodings and fingerprint. */
void fuzz_tokenizer_exercise(const lm_tokenizer_vtable *vt, void *tok, const char *save_name);

#endif
