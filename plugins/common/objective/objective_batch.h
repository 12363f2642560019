/* The batch an objective owns (lm_objective_vtable.make_batch): input ids
 * and labels arrays grown to the largest batch seen and reused, and the
 * lm_batch that points at them; and the checks of make_batch's arguments.
 * Shared by objective_clm and objective_mlm. */
#ifndef LMPLUGIN_OBJECTIVE_BATCH_H
#define LMPLUGIN_OBJECTIVE_BATCH_H

#include "lmcore/lmcore.h"

typedef struct objective_batch {
    int32_t *input_ids, *labels;
    size_t capacity; /* entries of each array */
    lm_batch batch;
} objective_batch;

/* Room for n entries in each array (the old contents need not survive);
 * LM_ERR_NOMEM names `objective` and the size. */
lm_status objective_batch_reserve(objective_batch *b, size_t n, const char *objective);
/* Points b->batch at the arrays for B x T tokens with no mask and no token
 * types, and returns it. */
const lm_batch *objective_batch_finish(objective_batch *b, int32_t B, int32_t T, int64_t n_targets);
void objective_batch_free(objective_batch *b);

/* What every make_batch checks first: bind() was called (`bound`), tokens
 * and out are not NULL.  LM_ERR_INVALID naming `objective` otherwise. */
lm_status objective_batch_check_call(const char *objective, int bound, const int32_t *tokens,
                                     const lm_batch *const *out);
/* Every id of the B x T tokens inside the model's vocabulary [0,
 * vocab_size): LM_ERR_INVALID naming the first outside, its block and
 * position otherwise. */
lm_status objective_batch_check_tokens(const char *objective, const int32_t *tokens, int32_t B, int32_t T,
                                       int32_t vocab_size);

#endif
