/* Token blocks: a dataset split tokenized, concatenated and cut into
 * fixed-size blocks (Hugging Face's group_texts), cached on disk. */
#ifndef LMCORE_BLOCKS_H
#define LMCORE_BLOCKS_H

#include "registry.h"

typedef struct lm_blocks lm_blocks;

typedef struct lm_blocks_options {
    int32_t block_size;   /* tokens per block (128 in the reference recipe) */
    int32_t group_lines;  /* 0: concatenate the whole split; N: group per N rows as HF's batched map (1000) */
    int add_special;      /* ask the tokenizer for per-row specials ([CLS] .. [SEP] for BERT) */
    const char *cache_dir;/* NULL: no cache file */
} lm_blocks_options;

/* Builds the blocks of one dataset split (a text source: its name names
 * the cache file, its fingerprint keys it), or maps them from a valid cache
 * file whose header matches the tokenizer, the source bytes and the
 * options; a truncated, foreign or stale cache is rebuilt (atomically),
 * never trusted. */
LM_API lm_status lm_blocks_build(lm_blocks **out, const lm_plugin *tokenizer_plugin, void *tokenizer,
                                 const lm_text_source *source, const lm_blocks_options *options);
LM_API void lm_blocks_free(lm_blocks *blocks);
LM_API size_t lm_blocks_count(const lm_blocks *blocks);
LM_API int32_t lm_blocks_block_size(const lm_blocks *blocks);
LM_API int32_t lm_blocks_vocab_size(const lm_blocks *blocks);
/* Copies block `index` (block_size ids) into out. */
LM_API void lm_blocks_get(const lm_blocks *blocks, size_t index, int32_t *out);
/* Whether the last build came from the cache file (for tests and logs). */
LM_API int lm_blocks_from_cache(const lm_blocks *blocks);
/* Tokens in the split before the remainder was dropped. */
LM_API uint64_t lm_blocks_source_tokens(const lm_blocks *blocks);

#endif
