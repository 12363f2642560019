/* lmcore — rows of text by index: one split of a dataset.
 *
 * A dataset plugin hands out one source per split (lm_dataset_vtable's
 * open_split); a tokenizer trains on one (lm_tokenizer_vtable's train), and
 * the core cuts one into token blocks. */
#ifndef LMCORE_TEXT_SOURCE_H
#define LMCORE_TEXT_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_text_source {
    uint32_t struct_size; /* sizeof(lm_text_source) of the dataset's build: fields past it are absent */
    void *ctx;
    size_t count; /* rows */
    /* *text stays valid until the source's owner is destroyed; rows have no
     * trailing newline unless the format keeps it (wikitext keeps it, as
     * Hugging Face does).  LM_ERR_INVALID for an index >= count. */
    lm_status (*row)(void *ctx, size_t index, const char **text, size_t *len);
    uint64_t fingerprint; /* a 64-bit hash of the source's bytes (token caches are keyed by it) */
    const char *name;     /* the split's name ("train"), for messages; may be NULL */
} lm_text_source;

#ifdef __cplusplus
}
#endif
#endif
