/* lmcore plugins — the generated Unicode tables behind unicode.c. */
#ifndef LMPLUGIN_UNICODE_TABLES_H
#define LMPLUGIN_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

typedef struct lm_unicode_category_range {
    uint32_t first, last; /* inclusive */
    uint8_t category;     /* lm_unicode_category_id */
} lm_unicode_category_range;

extern const char lm_unicode_tables_version[];
extern const uint8_t lm_unicode_latin1_category[256];
extern const size_t lm_unicode_category_range_count;
extern const lm_unicode_category_range lm_unicode_category_ranges[];

#endif
