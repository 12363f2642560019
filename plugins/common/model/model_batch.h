/* The host-side checks an architecture runs on a batch before anything
 * reaches a kernel: a bad id or label would otherwise index past an
 * embedding table on the device, where it is a crash or silent garbage
 * instead of an error that names the row and position. */
#ifndef LM_PLUGIN_MODEL_BATCH_H
#define LM_PLUGIN_MODEL_BATCH_H

#include <stdint.h>

#include "lmcore/architecture.h"

typedef struct model_batch_limits {
    const char *arch;          /* "gpt2": messages start with "architecture 'gpt2': " */
    const char *positions_key; /* the config key that bounds T ("n_positions") */
    int32_t max_positions;
    int32_t vocab_size;
    int32_t type_vocab_size; /* 0: the model has no token types (token_type_ids are ignored) */
} model_batch_limits;

/* Checks the shape, every input id, token type (when the model has them),
 * attention mask value (0 or 1) and label (LM_IGNORE_INDEX or a vocabulary
 * id), and counts the scored labels into *n_targets (0 without labels; a
 * batch whose labels score nothing is refused, its loss being 0/0). */
lm_status model_batch_check(const model_batch_limits *limits, const lm_batch *batch, int64_t *n_targets);

#endif
