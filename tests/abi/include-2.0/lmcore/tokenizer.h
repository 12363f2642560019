/* lmcore — the tokenizer plugin interface (kind LM_KIND_TOKENIZER). */
#ifndef LMCORE_TOKENIZER_H
#define LMCORE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"
#include "tensor.h"
#include "text_source.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What objectives and architectures need to know about a vocabulary.
 * Ids of absent special tokens are -1. */
typedef struct lm_vocab_info {
    int32_t vocab_size;
    int32_t unk_id, pad_id, bos_id, eos_id, cls_id, sep_id, mask_id;
    const int32_t *special_ids; /* every special (added) token id, sorted */
    size_t n_special;
} lm_vocab_info;

typedef struct lm_tokenizer_vtable {
    /* Required.  cfg holds either `path` (a tokenizer.json, or the plugin's
     * native files) to load, or training settings (vocab_size, ...). */
    lm_status (*create)(void **self, lm_config *cfg);
    void (*destroy)(void *self);
    /* Appends the ids of `text` to out; add_special adds the sequence's
     * special tokens ([CLS] ... [SEP] for BERT; nothing for GPT-2). */
    lm_status (*encode)(void *self, const char *text, size_t len, int add_special, lm_ids *out);
    /* Appends the text of ids to out; unknown ids are an LM_ERR_INVALID. */
    lm_status (*decode)(void *self, const int32_t *ids, size_t n, int skip_special, lm_buffer *out);
    lm_status (*info)(void *self, lm_vocab_info *out);
    /* Writes a Hugging Face tokenizer.json (atomically). */
    lm_status (*save)(void *self, const char *path);
    /* A 64-bit hash of everything that changes encoding (vocab, merges,
     * normalisation, specials): token caches are rebuilt when it changes. */
    lm_status (*fingerprint)(void *self, uint64_t *hash);

    /* Optional. Trains from rows (a dataset split), with the settings given to create(). */
    lm_status (*train)(void *self, const lm_text_source *rows);
    /* Optional. The token's string (in the plugin's own alphabet). */
    lm_status (*id_to_token)(void *self, int32_t id, const char **token, size_t *len);
    lm_status (*token_to_id)(void *self, const char *token, size_t len, int32_t *id);
} lm_tokenizer_vtable;

#ifdef __cplusplus
}
#endif
#endif
