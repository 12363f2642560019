/* An objective's own batch memory (see objective_batch.h). */
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
