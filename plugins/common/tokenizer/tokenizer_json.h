/* What the tokenizer plugins (bpe, wordpiece) share of Hugging Face's
 * tokenizer.json: the top of the file, an added token, the file written
 * out, and a component's "type" when reading.  Part of lmplugin_common. */
#ifndef LMPLUGIN_TOKENIZER_JSON_H
#define LMPLUGIN_TOKENIZER_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/json.h"
#include "lmcore/lmcore.h"

/* A component's "type" string (normalizer, model, decoder ...), or NULL
 * when obj is not an object or has no string "type". */
const char *tokenizer_json_type(const lm_json *obj);

/* Opens the top-level object with what tokenizers writes first:
 * "version": "1.0", "truncation": null, "padding": null. */
void tokenizer_json_begin(lm_json_writer *w);

/* The flags of an added token, as tokenizers' AddedToken has them. */
typedef struct tokenizer_json_token_flags {
    int single_word, lstrip, rstrip, normalized, special;
} tokenizer_json_token_flags;

/* One entry of "added_tokens": {"id", "content", the flags}. */
void tokenizer_json_added_token(lm_json_writer *w, int64_t id, const char *content, size_t len,
                                tokenizer_json_token_flags flags);

/* Ends the writer's JSON with a newline (as tokenizers' save does) and
 * replaces the file at path with it, atomically. */
lm_status tokenizer_json_save(lm_json_writer *w, lm_buffer *text, const char *path);

#endif
