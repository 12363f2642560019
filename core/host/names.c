/* Near-miss names (names.h): Levenshtein distance over short names. */
#include "names.h"

#include <string.h>

/* Edit distance of two names of at most 63 bytes; (size_t)-1 for longer ones. */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return (size_t)-1;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best) best = above + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

const char *lm_nearest_name(const char *given, const char *const *known, size_t n) {
    const char *best = NULL;
    size_t best_distance = (size_t)-1;
    for (size_t i = 0; i < n && known[i]; i++) {
        size_t d = edit_distance(given, known[i]);
        if (d < best_distance) {
            best_distance = d;
            best = known[i];
        }
    }
    /* A near miss: a typo or two, not another word. */
    const size_t len = strlen(given), limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    return best_distance <= limit ? best : NULL;
}
