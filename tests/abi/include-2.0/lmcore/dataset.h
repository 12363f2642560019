/* lmcore — the dataset plugin interface (kind LM_KIND_DATASET).
 *
 * A dataset is a set of named splits ("train", "validation", "test"), each a
 * sequence of text rows handed out as one lm_text_source.  Splits are opened
 * lazily: a missing split file is an error only when that split is opened,
 * with a message naming the file and how to obtain it. */
#ifndef LMCORE_DATASET_H
#define LMCORE_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"
#include "text_source.h"

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
    /* Opens `split` (reading its files on first use) and points *out at its
     * rows; the source and its rows live until destroy, and opening a split
     * again returns the same source.  LM_ERR_NOT_FOUND for a split the
     * dataset does not know, LM_ERR_IO for a missing file, LM_ERR_FORMAT for
     * a file it cannot read as its format. */
    lm_status (*open_split)(void *self, const char *split, const lm_text_source **out);
} lm_dataset_vtable;

#ifdef __cplusplus
}
#endif
#endif
