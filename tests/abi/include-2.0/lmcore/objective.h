/* lmcore — the objective plugin interface (kind LM_KIND_OBJECTIVE).
 *
 * An objective turns blocks of token ids into a training batch: inputs,
 * labels (LM_IGNORE_INDEX where no prediction is scored), masks.  The batch
 * and its arrays belong to the objective. */
#ifndef LMCORE_OBJECTIVE_H
#define LMCORE_OBJECTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "architecture.h"
#include "config.h"
#include "status.h"
#include "tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_objective_vtable {
    /* All required. */
    lm_status (*create)(void **self, lm_config *cfg);
    void (*destroy)(void *self);
    /* Checks that the objective fits the model and vocabulary (a causal LM
     * objective refuses a bidirectional model and vice versa) and keeps what
     * it needs (mask id, special ids, vocab size).  Called before make_batch. */
    lm_status (*bind)(void *self, const lm_arch_info *arch, const lm_vocab_info *vocab);
    /* tokens: B blocks of T ids, row-major.  Makes the batch in the
     * objective's own memory (grown as needed) and points *out at it; the
     * batch and its arrays stay valid until the next make_batch or destroy.
     * input_ids, labels and n_targets are always set; attention_mask and
     * token_type_ids may be NULL (all tokens, all type 0).  Random choices
     * (MLM masking) must be a pure function of the objective's own seed
     * setting and batch_index, so that runs are reproducible and resume
     * exactly; the trainer passes its micro-batch counter. */
    lm_status (*make_batch)(void *self, const int32_t *tokens, int32_t B, int32_t T, uint64_t batch_index,
                            const lm_batch **out);
} lm_objective_vtable;

#ifdef __cplusplus
}
#endif
#endif
