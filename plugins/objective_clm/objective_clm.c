/* The objective_clm plugin: causal language modelling (next-token prediction).
 *
 * Hugging Face shifts the labels inside GPT2LMHeadModel: position t predicts
 * token t+1, the last position of a block predicts nothing.  lmcore's
 * architectures take labels already aligned with positions, so the shift is
 * done here: labels[b, t] = tokens[b, t+1] for t < T-1 and -100 at T-1,
 * which scores B*(T-1) predictions per batch (127 per 128-token block), the
 * same count and mean as the Hugging Face loss.  Blocks are full (no
 * padding), so there is no attention mask and no token types.
 *
 * The batch is the objective's own (ABI 2.0): two arrays grown to the
 * largest B*T seen and reused, so a training loop allocates nothing per
 * step. */
#include <stdlib.h>
#include <string.h>

#include "lmcore/objective.h"
#include "lmcore/plugin.h"
#include "objective_batch.h"

typedef struct clm_objective {
    int bound;
    int32_t vocab_size;
    objective_batch out; /* handed out by make_batch, valid until the next one */
} clm_objective;

static lm_status clm_create(void **self, lm_config *cfg) {
    (void)cfg; /* no settings: any key given is reported unknown by the core */
    clm_objective *o = calloc(1, sizeof *o);
    if (!o) return lm_error_set(LM_ERR_NOMEM, "out of memory creating objective 'clm'");
    *self = o;
    return LM_OK;
}

static void clm_destroy(void *self) {
    clm_objective *o = self;
    if (!o) return;
    objective_batch_free(&o->out);
    free(o);
}

static lm_status clm_bind(void *self, const lm_arch_info *arch, const lm_vocab_info *vocab) {
    clm_objective *o = self;
    if (!arch) return lm_error_set(LM_ERR_INVALID, "objective 'clm': bind needs the architecture's info");
    const char *model = arch->model_type ? arch->model_type : "the model";
    if (!arch->causal)
        return lm_error_set(LM_ERR_INVALID,
                            "objective 'clm' needs a causal architecture, but '%s' is bidirectional: use objective "
                            "'mlm'",
                            model);
    if (vocab && vocab->vocab_size > arch->vocab_size)
        return lm_error_set(LM_ERR_INVALID,
                            "objective 'clm': the tokenizer has %d tokens but '%s' has vocab_size %d: set the "
                            "model's vocab_size to at least %d",
                            (int)vocab->vocab_size, model, (int)arch->vocab_size, (int)vocab->vocab_size);
    o->vocab_size = arch->vocab_size;
    o->bound = 1;
    return LM_OK;
}

static lm_status clm_make_batch(void *self, const int32_t *tokens, int32_t B, int32_t T, uint64_t batch_index,
                                const lm_batch **out) {
    clm_objective *o = self;
    (void)batch_index; /* deterministic: nothing random in next-token prediction */
    LM_TRY(objective_batch_check_call("clm", o->bound, tokens, out));
    if (B < 1 || T < 2)
        return lm_error_set(LM_ERR_INVALID, "objective 'clm': blocks of %d x %d tokens: causal LM needs B >= 1 and "
                                            "at least 2 tokens per block (block_size >= 2)",
                            (int)B, (int)T);
    LM_TRY(objective_batch_check_tokens("clm", tokens, B, T, o->vocab_size));
    const size_t n = (size_t)B * (size_t)T;
    LM_TRY(objective_batch_reserve(&o->out, n, "clm"));
    memcpy(o->out.input_ids, tokens, n * sizeof *tokens);
    for (int32_t b = 0; b < B; b++) {
        const int32_t *row = tokens + (size_t)b * (size_t)T;
        int32_t *labels = o->out.labels + (size_t)b * (size_t)T;
        memcpy(labels, row + 1, (size_t)(T - 1) * sizeof *labels);
        labels[T - 1] = LM_IGNORE_INDEX;
    }
    *out = objective_batch_finish(&o->out, B, T, (int64_t)B * (int64_t)(T - 1));
    return LM_OK;
}

static const lm_objective_vtable clm_vtable = {
    .create = clm_create,
    .destroy = clm_destroy,
    .bind = clm_bind,
    .make_batch = clm_make_batch,
};

LM_PLUGIN_DEFINE(LM_KIND_OBJECTIVE, "clm", "2.0.0",
                 "Causal language modelling: each position predicts the next token (labels shifted, last ignored)",
                 lm_objective_vtable, clm_vtable)
