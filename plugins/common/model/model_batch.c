/* Batch checks shared by the architectures (model_batch.h). */
#include "model_batch.h"

#include <stddef.h>

lm_status model_batch_check(const model_batch_limits *limits, const lm_batch *batch, int64_t *n_targets) {
    const char *arch = limits->arch;
    *n_targets = 0;
    if (!batch || !batch->input_ids)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': forward needs a batch with input_ids", arch);
    if (batch->B < 1 || batch->T < 1)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': batch shape B=%d, T=%d must be positive", arch,
                            (int)batch->B, (int)batch->T);
    if (batch->T > limits->max_positions)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': the batch has T=%d positions but the model has "
                                            "%s=%d: use a block_size of at most %d",
                            arch, (int)batch->T, limits->positions_key, (int)limits->max_positions,
                            (int)limits->max_positions);
    if ((int64_t)batch->B * batch->T > (int64_t)1 << 28)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': batch of %d x %d tokens is too large", arch,
                            (int)batch->B, (int)batch->T);
    const size_t n = (size_t)batch->B * (size_t)batch->T, T = (size_t)batch->T;
    for (size_t i = 0; i < n; i++) {
        int32_t id = batch->input_ids[i];
        if (id < 0 || id >= limits->vocab_size)
            return lm_error_set(LM_ERR_INVALID, "architecture '%s': input id %d at batch row %zu, position %zu is "
                                                "outside the vocabulary [0, %d): the tokenizer and vocab_size disagree",
                                arch, (int)id, i / T, i % T, (int)limits->vocab_size);
    }
    if (batch->token_type_ids && limits->type_vocab_size > 0)
        for (size_t i = 0; i < n; i++) {
            int32_t type = batch->token_type_ids[i];
            if (type < 0 || type >= limits->type_vocab_size)
                return lm_error_set(LM_ERR_INVALID, "architecture '%s': token_type_id %d at batch row %zu, position "
                                                    "%zu is outside [0, type_vocab_size=%d)",
                                    arch, (int)type, i / T, i % T, (int)limits->type_vocab_size);
        }
    if (batch->attention_mask)
        for (size_t i = 0; i < n; i++)
            if (batch->attention_mask[i] != 0 && batch->attention_mask[i] != 1)
                return lm_error_set(LM_ERR_INVALID, "architecture '%s': attention_mask value %d at batch row %zu, "
                                                    "position %zu must be 1 (token) or 0 (padding)",
                                    arch, (int)batch->attention_mask[i], i / T, i % T);
    if (!batch->labels) return LM_OK;
    int64_t scored = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t label = batch->labels[i];
        if (label == LM_IGNORE_INDEX) continue;
        if (label < 0 || label >= limits->vocab_size)
            return lm_error_set(LM_ERR_INVALID, "architecture '%s': label %d at batch row %zu, position %zu is "
                                                "outside the vocabulary [0, %d) and not %d (ignored)",
                                arch, (int)label, i / T, i % T, (int)limits->vocab_size, LM_IGNORE_INDEX);
        scored++;
    }
    /* Hugging Face would return NaN (0/0); callers skip such batches (the
     * mlm objective reports n_targets = 0 when it selected nothing). */
    if (scored == 0)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': the batch has labels but none is scored (all are "
                                            "%d): the loss would be undefined; skip batches with n_targets 0",
                            arch, LM_IGNORE_INDEX);
    *n_targets = scored;
    return LM_OK;
}
