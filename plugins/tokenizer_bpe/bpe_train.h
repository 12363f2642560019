/* Training a byte-level BPE model exactly as HF tokenizers' BpeTrainer
 * (bpe/trainer.rs) does with ByteLevel pre-tokenization and
 * initial_alphabet = ByteLevel.alphabet(). */
#ifndef BPE_TRAIN_H
#define BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include <lmcore/tokenizer.h>

#include "bpe_model.h"

typedef struct bpe_train_options {
    int64_t vocab_size;     /* specials + 256 bytes + merges, at most */
    int64_t min_frequency;  /* pairs seen fewer times are never merged */
    const char *const *specials;
    size_t n_specials;
    int add_prefix_space;
} bpe_train_options;

/* Trains on every row of `rows` and returns a finished model. */
lm_status bpe_train(const bpe_train_options *opt, const lm_text_source *rows, bpe_model **out);

#endif
