/* Shared by the JSON reader and writer; not part of the public API (the
 * library is built with hidden visibility, so this symbol is not exported). */
#ifndef LMCORE_JSON_INTERNAL_H
#define LMCORE_JSON_INTERNAL_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (1 to 4 bytes, at most `avail`), or
 * 0 if invalid: no overlong forms, no surrogates, nothing above U+10FFFF. */
size_t lm_json_utf8_sequence_length(const unsigned char *s, size_t avail);

#endif
