/* The byte-level BPE model: vocabulary, merges, added tokens, and the
 * encoder/decoder that use them (bpe_model.c, bpe_encode.c). */
#ifndef BPE_MODEL_H
#define BPE_MODEL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bpe_word_cache.h"

#include <lmcore/tensor.h>

#include "bpe_hash.h"

/* An entry of HF's "added_tokens": matched in raw text before the
 * pre-tokenizer.  Specials are skipped by decode(skip_special). */
typedef struct bpe_added_token {
    char *content;
    size_t len;
    int32_t id;
    int special, lstrip, rstrip, normalized, single_word;
} bpe_added_token;

typedef struct bpe_model {
    /* Vocabulary: id -> token string (HF's byte-level alphabet, UTF-8), and
     * the bytes the token decodes to.  Ids may have holes (tok_len < 0). */
    int32_t n_ids;
    int64_t *tok_off;
    int32_t *tok_len;
    lm_buffer tok_text;
    int64_t *dec_off;
    int32_t *dec_len;
    lm_buffer dec_bytes;
    bpe_strmap vocab; /* token string -> id (the model's vocab, not added tokens) */

    /* Merges: (left id << 32 | right id) -> (rank << 32 | merged id), and the
     * pairs in rank order for saving (a pair listed twice keeps its last
     * rank, as HF's HashMap does; the earlier slot is marked dead). */
    bpe_u64map merges;
    uint64_t *merge_pairs;
    uint8_t *merge_dead;
    size_t n_merges, merges_cap;

    int32_t byte_id[256]; /* id of each byte's one-character token, -1 absent */

    bpe_added_token *added;
    size_t n_added;
    int32_t *special_ids; /* sorted */
    size_t n_special;
    uint8_t added_first_byte[256]; /* 1 if some added token starts with it */

    /* Options mirrored from tokenizer.json. */
    int add_prefix_space; /* pre_tokenizer ByteLevel.add_prefix_space */
    int trim_offsets;     /* pre_tokenizer ByteLevel.trim_offsets (saved only) */
    int use_regex;        /* pre_tokenizer ByteLevel.use_regex */
    int post_processor;   /* 0: null, 1: ByteLevel */
    int post_add_prefix_space, post_trim_offsets, post_use_regex;
    int has_decoder;
    int ignore_merges;
    int32_t unk_id; /* model.unk_token, -1 if none */
    int fuse_unk;

    bpe_word_cache cache;
} bpe_model;

lm_status bpe_model_create(bpe_model **out);
void bpe_model_destroy(bpe_model *m);

/* Building (loaders and the trainer): tokens first, then merges, then added
 * tokens, then bpe_model_finish().  `where` names the source in errors. */
lm_status bpe_model_set_token(bpe_model *m, int32_t id, const char *token, size_t len, const char *where);
/* Merge of two token strings; the merged string must be in the vocabulary. */
lm_status bpe_model_add_merge(bpe_model *m, const char *a, size_t a_len, const char *b, size_t b_len,
                              const char *where);
lm_status bpe_model_add_merge_ids(bpe_model *m, int32_t a, int32_t b, int32_t merged);
/* Adds an added token; when id < 0 it takes the model id of the same string,
 * else the next free id. */
lm_status bpe_model_add_added(bpe_model *m, const char *content, size_t len, int32_t id, int special,
                              const char *where);
lm_status bpe_model_finish(bpe_model *m, const char *where);

/* Token string of an id (NULL when the id is not in the vocabulary). */
const char *bpe_model_token(const bpe_model *m, int32_t id, size_t *len);
int32_t bpe_model_find(const bpe_model *m, const char *token, size_t len); /* -1 absent */

lm_status bpe_model_encode(bpe_model *m, const char *text, size_t len, lm_ids *out);
lm_status bpe_model_decode(const bpe_model *m, const int32_t *ids, size_t n, int skip_special, lm_buffer *out);

/* The token string of raw bytes in the byte-level alphabet, appended to out. */
lm_status bpe_bytes_to_token(const void *bytes, size_t len, lm_buffer *out);

#endif
