/* lmcore — a small strict JSON reader and writer (RFC 8259).
 *
 * Used for Hugging Face files (config.json, tokenizer.json), safetensors
 * headers and JSONL logs.  The parser is bounds-checked, rejects trailing
 * garbage, depth > 256 and invalid UTF-8/escapes, and reports line:column. */
#ifndef LMCORE_JSON_H
#define LMCORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lm_json_type {
    LM_JSON_NULL = 0,
    LM_JSON_BOOL,
    LM_JSON_NUMBER,
    LM_JSON_STRING,
    LM_JSON_ARRAY,
    LM_JSON_OBJECT
} lm_json_type;

typedef struct lm_json lm_json;

/* Parses `len` bytes.  `source` names the input in error messages. */
LM_API lm_status lm_json_parse(const char *text, size_t len, const char *source, lm_json **out);
LM_API lm_status lm_json_parse_file(const char *path, lm_json **out);
LM_API void lm_json_free(lm_json *root);

LM_API lm_json_type lm_json_type_of(const lm_json *v);
LM_API int lm_json_bool(const lm_json *v);
LM_API double lm_json_number(const lm_json *v);
/* Whether the number was written without fraction/exponent and fits int64. */
LM_API int lm_json_is_integer(const lm_json *v);
LM_API int64_t lm_json_int(const lm_json *v);
/* UTF-8, may contain NUL bytes: use the length. */
LM_API const char *lm_json_string(const lm_json *v, size_t *len);
LM_API size_t lm_json_size(const lm_json *v); /* array or object element count */
LM_API const lm_json *lm_json_at(const lm_json *v, size_t index);
/* Object members in document order. */
LM_API const char *lm_json_key_at(const lm_json *v, size_t index, size_t *key_len);
LM_API const lm_json *lm_json_get(const lm_json *object, const char *key); /* NULL if absent */

/* Writer: appends compact or indented JSON to a buffer.  Keys and strings
 * are escaped; invalid UTF-8 is written as \ufffd. */
typedef struct lm_json_writer {
    lm_buffer *out;
    int indent;     /* 0 = compact */
    int depth;
    int need_comma; /* bit per depth level */
    uint64_t comma_bits;
    lm_status status;
} lm_json_writer;

LM_API void lm_json_writer_init(lm_json_writer *w, lm_buffer *out, int indent);
LM_API void lm_json_begin_object(lm_json_writer *w);
LM_API void lm_json_end_object(lm_json_writer *w);
LM_API void lm_json_begin_array(lm_json_writer *w);
LM_API void lm_json_end_array(lm_json_writer *w);
LM_API void lm_json_key(lm_json_writer *w, const char *key);
LM_API void lm_json_write_string(lm_json_writer *w, const char *s, size_t len);
LM_API void lm_json_write_cstr(lm_json_writer *w, const char *s);
LM_API void lm_json_write_int(lm_json_writer *w, int64_t v);
/* Shortest representation that round-trips a double; NaN/Inf become null. */
LM_API void lm_json_write_number(lm_json_writer *w, double v);
LM_API void lm_json_write_bool(lm_json_writer *w, int v);
LM_API void lm_json_write_null(lm_json_writer *w);
/* Writes a parsed value (and everything inside it) as it was. */
LM_API void lm_json_write_value(lm_json_writer *w, const lm_json *value);
/* LM_OK or the first failure (out of memory, unbalanced nesting). */
LM_API lm_status lm_json_writer_finish(lm_json_writer *w);

#ifdef __cplusplus
}
#endif
#endif
