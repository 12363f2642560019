/* An objective's own batch memory and argument checks (see objective_batch.h). */
#include "objective_batch.h"

#include <stdlib.h>
#include <string.h>

lm_status objective_batch_reserve(objective_batch *b, size_t n, const char *objective) {
    if (n <= b->capacity) return LM_OK;
    int32_t *input_ids = malloc(n * sizeof *input_ids), *labels = malloc(n * sizeof *labels);
    if (!input_ids || !labels) {
        free(input_ids);
        free(labels);
        return lm_error_set(LM_ERR_NOMEM, "objective '%s': out of memory for a batch of %zu tokens (%zu bytes)",
                            objective, n, 2 * n * sizeof(int32_t));
    }
    objective_batch_free(b);
    b->input_ids = input_ids;
    b->labels = labels;
    b->capacity = n;
    return LM_OK;
}

const lm_batch *objective_batch_finish(objective_batch *b, int32_t B, int32_t T, int64_t n_targets) {
    b->batch = (lm_batch){.struct_size = sizeof(lm_batch),
                          .B = B,
                          .T = T,
                          .input_ids = b->input_ids,
                          .labels = b->labels,
                          .attention_mask = NULL,
                          .token_type_ids = NULL,
                          .n_targets = n_targets};
    return &b->batch;
}

void objective_batch_free(objective_batch *b) {
    free(b->input_ids);
    free(b->labels);
    b->input_ids = b->labels = NULL;
    b->capacity = 0;
}

lm_status objective_batch_check_call(const char *objective, int bound, const int32_t *tokens,
                                     const lm_batch *const *out) {
    if (!bound)
        return lm_error_set(LM_ERR_INVALID, "objective '%s': bind() must be called before make_batch()", objective);
    if (!tokens || !out)
        return lm_error_set(LM_ERR_INVALID, "objective '%s': make_batch needs the tokens and where to put the "
                                            "batch (tokens and out must not be NULL)",
                            objective);
    return LM_OK;
}

lm_status objective_batch_check_tokens(const char *objective, const int32_t *tokens, int32_t B, int32_t T,
                                       int32_t vocab_size) {
    const size_t n = (size_t)B * (size_t)T;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab_size)
            return lm_error_set(LM_ERR_INVALID, "objective '%s': token id %d (block %zu, position %zu) is outside "
                                                "the model's vocabulary [0, %d)",
                                objective, (int)tokens[i], i / (size_t)T, i % (size_t)T, (int)vocab_size);
    return LM_OK;
}
