/* Near-miss names for "did you mean" hints (liblmcore, shared with the Lua
 * runtime). */
#ifndef LMCORE_NAMES_H
#define LMCORE_NAMES_H

#include <stddef.h>

#include "lmcore/status.h"

/* The name of known[0..n) within a typo or two of `given` (edit distance 1
 * for names of up to 4 characters, 2 up to 8, else 3), the nearest first;
 * NULL when none is that near.  n may be (size_t)-1 for a NULL-terminated
 * list. */
LM_API const char *lm_nearest_name(const char *given, const char *const *known, size_t n);

#endif
