/* Reading and writing BPE tokenizers: HF tokenizer.json, and GPT-2's
 * vocab.json + merges.txt. */
#ifndef BPE_IO_H
#define BPE_IO_H

#include <stddef.h>

#include "bpe_model.h"

/* Loads a HF tokenizer.json whose model is BPE with a ByteLevel
 * pre-tokenizer.  Errors are LM_ERR_IO/LM_ERR_FORMAT naming the file, or
 * LM_ERR_UNSUPPORTED for valid files this plugin cannot reproduce. */
lm_status bpe_load_tokenizer_json(const char *path, bpe_model **out);

/* Loads vocab.json + merges.txt (GPT-2 files); `specials` become special
 * added tokens (their vocabulary id, or new ids at the end). */
lm_status bpe_load_vocab_merges(const char *vocab_path, const char *merges_path, const char *const *specials,
                                size_t n_specials, int add_prefix_space, bpe_model **out);

/* Writes a tokenizer.json that HF's Tokenizer.from_file() loads (atomically). */
lm_status bpe_save_tokenizer_json(const bpe_model *m, const char *path);

#endif
