/* lmcore — the dataset plugin interface (kind LM_KIND_DATASET).
 *
 * A dataset is a set of named splits ("train", "validation", "test"), each a
 * sequence of text rows.  Splits are opened lazily: a missing split file is
 * an error only when that split is used, with a message naming the file and
 * how to obtain it. */
#ifndef LMCORE_DATASET_H
#define LMCORE_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_dataset_vtable {
    /* All required. */
    lm_status (*create)(void **self, lm_config *cfg);
    void (*destroy)(void *self);
    /* The split names this dataset knows (whether or not their files exist). */
    lm_status (*split_count)(void *self, size_t *n);
    lm_status (*split_name)(void *self, size_t index, const char **name);
    /* LM_ERR_NOT_FOUND for an unknown split; LM_ERR_IO for a missing file. */
    lm_status (*row_count)(void *self, const char *split, size_t *n);
    /* *text stays valid until destroy; rows have no trailing newline unless
     * the format keeps it (wikitext keeps it, as Hugging Face does). */
    lm_status (*row)(void *self, const char *split, size_t index, const char **text, size_t *len);
    /* A 64-bit hash of the split's source bytes, for token caches. */
    lm_status (*fingerprint)(void *self, const char *split, uint64_t *hash);
} lm_dataset_vtable;

#ifdef __cplusplus
}
#endif
#endif
