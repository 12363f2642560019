/* The objective_mlm plugin: masked language modelling (BERT pre-training).
 *
 * Hugging Face DataCollatorForLanguageModeling(mlm_probability=0.15)
 * semantics, over the B x T tokens of a batch:
 *   - every token that is not special (the vocabulary's special ids, padding
 *     included) is selected with probability mlm_probability;
 *   - a selected token becomes [MASK] with probability mask_replace_prob
 *     (0.8), else a random id drawn uniformly from the whole vocabulary
 *     (specials included, as torch.randint(len(tokenizer)) does) with
 *     probability random_replace_prob / (1 - mask_replace_prob) (0.1 / 0.2),
 *     else stays unchanged;
 *   - labels are the original ids at selected positions and -100 elsewhere.
 * Blocks are full (group_texts), so attention_mask and token_type_ids are
 * NULL (all tokens, all type 0), as the collator's inputs would be.
 *
 * Randomness: the four numbers a position needs come from one Philox block
 * keyed by `seed`, with counter (batch_index, position << 8 |
 * LM_RNG_STREAM_MASKING).  Lane 0 of that block is exactly
 * lm_rng_uniform(seed, position << 8 | LM_RNG_STREAM_MASKING, batch_index).
 * The masks are therefore a pure function of (seed, batch_index, position):
 * the same batch index gives the same masks and every batch index (the
 * trainer passes its micro-batch counter) draws new ones, which is the
 * "masks redrawn every batch" of the collator, and a resumed run redraws the
 * very same masks.  The whole 64-bit batch index is used, so the
 * evaluation's counter range (2^62 + i) never collides with training.
 *
 * A batch in which nothing was selected (possible only for tiny batches)
 * gets n_targets = 0 and every label -100; Hugging Face would compute a NaN
 * loss for it, lmcore's trainer skips it.
 *
 * The batch is the objective's own (ABI 2.0): two arrays grown to the
 * largest B*T seen and reused, so a training loop allocates nothing per
 * step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcore/log.h"
#include "lmcore/objective.h"
#include "lmcore/plugin.h"
#include "lmcore/rng.h"
#include "lmcore/tensor.h"
#include "objective_batch.h"

typedef struct mlm_objective {
    double mlm_probability, mask_replace_prob, random_replace_prob;
    uint64_t seed;
    int debug_masking; /* print one block before/after masking, once */
    int debug_done;

    /* From bind(). */
    int bound;
    int32_t model_vocab_size; /* ids must be below this */
    int32_t vocab_size;       /* random replacements are drawn below this */
    int32_t mask_id;
    unsigned char *is_special; /* [model_vocab_size] */
    /* Probabilities as 24-bit thresholds on the Philox lanes (uniform < p
     * is exactly (lane >> 8) < ceil(p * 2^24)). */
    uint32_t select_threshold, mask_threshold, random_threshold;

    objective_batch out; /* handed out by make_batch, valid until the next one */
} mlm_objective;

static uint32_t threshold_of(double p) {
    double t = p * 16777216.0;
    uint32_t k = (uint32_t)t;
    return (double)k < t ? k + 1 : k; /* ceil */
}

static lm_status mlm_create(void **self, lm_config *cfg) {
    *self = NULL;
    mlm_objective *o = calloc(1, sizeof *o);
    if (!o) return lm_error_set(LM_ERR_NOMEM, "out of memory creating objective 'mlm'");
    o->mlm_probability = lm_config_number(cfg, "mlm_probability", 0.15);
    o->mask_replace_prob = lm_config_number(cfg, "mask_replace_prob", 0.8);
    o->random_replace_prob = lm_config_number(cfg, "random_replace_prob", 0.1);
    int64_t seed = lm_config_int_range(cfg, "seed", 42, 0, INT64_MAX); /* a negative seed would wrap */
    o->debug_masking = lm_config_bool(cfg, "debug_masking", 0);
    lm_status status = LM_OK;
    if (!(o->mlm_probability > 0.0 && o->mlm_probability <= 1.0))
        status = lm_error_set(LM_ERR_INVALID, "objective 'mlm': mlm_probability must be in (0, 1], got %g",
                              o->mlm_probability);
    else if (!(o->mask_replace_prob >= 0.0 && o->mask_replace_prob <= 1.0))
        status = lm_error_set(LM_ERR_INVALID, "objective 'mlm': mask_replace_prob must be in [0, 1], got %g",
                              o->mask_replace_prob);
    else if (!(o->random_replace_prob >= 0.0 && o->random_replace_prob <= 1.0))
        status = lm_error_set(LM_ERR_INVALID, "objective 'mlm': random_replace_prob must be in [0, 1], got %g",
                              o->random_replace_prob);
    else if (o->mask_replace_prob + o->random_replace_prob > 1.0 + 1e-12)
        status = lm_error_set(LM_ERR_INVALID, "objective 'mlm': mask_replace_prob (%g) + random_replace_prob (%g) "
                                              "must not exceed 1",
                              o->mask_replace_prob, o->random_replace_prob);
    else if (seed < 0)
        status = lm_error_set(LM_ERR_INVALID, "objective 'mlm': seed must be non-negative, got %lld", (long long)seed);
    if (status != LM_OK) {
        free(o);
        return status;
    }
    o->seed = (uint64_t)seed;
    o->select_threshold = threshold_of(o->mlm_probability);
    o->mask_threshold = threshold_of(o->mask_replace_prob);
    /* Of the selected tokens not masked, the share replaced by a random id
     * (Hugging Face's random_replace_prob_scaled). */
    double remaining = 1.0 - o->mask_replace_prob;
    double scaled = remaining > 0.0 ? o->random_replace_prob / remaining : 0.0;
    o->random_threshold = threshold_of(scaled > 1.0 ? 1.0 : scaled);
    *self = o;
    return LM_OK;
}

static void mlm_destroy(void *self) {
    mlm_objective *o = self;
    if (!o) return;
    free(o->is_special);
    objective_batch_free(&o->out);
    free(o);
}

static void mark_special(mlm_objective *o, int32_t id) {
    if (id >= 0 && id < o->model_vocab_size) o->is_special[id] = 1;
}

static lm_status mlm_bind(void *self, const lm_arch_info *arch, const lm_vocab_info *vocab) {
    mlm_objective *o = self;
    if (!arch) return lm_error_set(LM_ERR_INVALID, "objective 'mlm': bind needs the architecture's info");
    const char *model = arch->model_type ? arch->model_type : "the model";
    if (arch->causal)
        return lm_error_set(LM_ERR_INVALID,
                            "objective 'mlm' needs a bidirectional architecture, but '%s' is causal: use objective "
                            "'clm'",
                            model);
    if (!vocab)
        return lm_error_set(LM_ERR_INVALID, "objective 'mlm': bind needs the tokenizer's vocabulary (its [MASK] id)");
    if (vocab->mask_id < 0)
        return lm_error_set(LM_ERR_INVALID, "objective 'mlm': the tokenizer has no mask token: masked language "
                                            "modelling needs one (train or load a tokenizer with a [MASK] token)");
    if (vocab->vocab_size < 1 || vocab->vocab_size > arch->vocab_size)
        return lm_error_set(LM_ERR_INVALID,
                            "objective 'mlm': the tokenizer has %d tokens but '%s' has vocab_size %d: set the "
                            "model's vocab_size to at least %d",
                            (int)vocab->vocab_size, model, (int)arch->vocab_size, (int)vocab->vocab_size);
    if (vocab->mask_id >= vocab->vocab_size)
        return lm_error_set(LM_ERR_INVALID, "objective 'mlm': the mask id %d is outside the tokenizer's %d tokens",
                            (int)vocab->mask_id, (int)vocab->vocab_size);
    unsigned char *is_special = calloc((size_t)arch->vocab_size, 1);
    if (!is_special) return lm_error_set(LM_ERR_NOMEM, "out of memory binding objective 'mlm'");
    free(o->is_special);
    o->is_special = is_special;
    o->model_vocab_size = arch->vocab_size;
    o->vocab_size = vocab->vocab_size;
    o->mask_id = vocab->mask_id;
    /* The collator's special_tokens_mask: every special token of the
     * tokenizer ([PAD], [UNK], [CLS], [SEP], [MASK] for BERT). */
    for (size_t i = 0; i < vocab->n_special; i++) mark_special(o, vocab->special_ids[i]);
    const int32_t named[] = {vocab->unk_id, vocab->pad_id, vocab->bos_id, vocab->eos_id,
                             vocab->cls_id, vocab->sep_id, vocab->mask_id};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) mark_special(o, named[i]);
    o->bound = 1;
    return LM_OK;
}

/* Prints one block before and after masking (ids; masked positions as
 * [MASK], random replacements as ~id, selected-but-kept as =id). */
static void log_block(const mlm_objective *o, const int32_t *tokens, const int32_t *input_ids,
                      const int32_t *labels, int32_t T, uint64_t batch_index) {
    lm_buffer before = {0}, after = {0};
    int selected = 0, masked = 0, random = 0;
    for (int32_t t = 0; t < T; t++) {
        lm_buffer_appendf(&before, "%s%d", t ? " " : "", (int)tokens[t]);
        if (labels[t] == LM_IGNORE_INDEX) {
            lm_buffer_appendf(&after, "%s%d", t ? " " : "", (int)input_ids[t]);
            continue;
        }
        selected++;
        if (input_ids[t] == o->mask_id) {
            masked++;
            lm_buffer_appendf(&after, "%s[MASK]", t ? " " : "");
        } else if (input_ids[t] != tokens[t]) {
            random++;
            lm_buffer_appendf(&after, "%s~%d", t ? " " : "", (int)input_ids[t]);
        } else {
            lm_buffer_appendf(&after, "%s=%d", t ? " " : "", (int)input_ids[t]);
        }
    }
    lm_log(LM_LOG_INFO,
           "objective 'mlm': block 0 of batch %llu, %d tokens: %d selected (%d [MASK], %d random, %d unchanged)",
           (unsigned long long)batch_index, (int)T, selected, masked, random, selected - masked - random);
    lm_log(LM_LOG_INFO, "objective 'mlm': before masking: %s", before.data ? before.data : "");
    lm_log(LM_LOG_INFO, "objective 'mlm': after masking:  %s", after.data ? after.data : "");
    lm_buffer_free(&before);
    lm_buffer_free(&after);
}

static lm_status mlm_make_batch(void *self, const int32_t *tokens, int32_t B, int32_t T, uint64_t batch_index,
                                const lm_batch **out) {
    mlm_objective *o = self;
    LM_TRY(objective_batch_check_call("mlm", o->bound, tokens, out));
    if (B < 1 || T < 1)
        return lm_error_set(LM_ERR_INVALID, "objective 'mlm': blocks of %d x %d tokens: B and T must be positive",
                            (int)B, (int)T);
    LM_TRY(objective_batch_check_tokens("mlm", tokens, B, T, o->model_vocab_size));
    const size_t n = (size_t)B * (size_t)T;
    LM_TRY(objective_batch_reserve(&o->out, n, "mlm"));

    int32_t *input_ids = o->out.input_ids, *labels = o->out.labels;
    int64_t n_targets = 0;
    for (size_t i = 0; i < n; i++) {
        const int32_t token = tokens[i];
        input_ids[i] = token;
        labels[i] = LM_IGNORE_INDEX;
        if (o->is_special[token]) continue;
        const uint64_t stream = ((uint64_t)i << 8) | (uint64_t)LM_RNG_STREAM_MASKING;
        const lm_u32x4 r = lm_philox4x32(o->seed, batch_index, stream);
        if ((r.v[0] >> 8) >= o->select_threshold) continue;
        labels[i] = token;
        n_targets++;
        if ((r.v[1] >> 8) < o->mask_threshold) input_ids[i] = o->mask_id;
        else if ((r.v[2] >> 8) < o->random_threshold)
            input_ids[i] = (int32_t)(((uint64_t)r.v[3] * (uint64_t)o->vocab_size) >> 32);
    }
    if (o->debug_masking && !o->debug_done) {
        o->debug_done = 1;
        log_block(o, tokens, input_ids, labels, T, batch_index);
    }
    *out = objective_batch_finish(&o->out, B, T, n_targets);
    return LM_OK;
}

static const lm_objective_vtable mlm_vtable = {
    .create = mlm_create,
    .destroy = mlm_destroy,
    .bind = mlm_bind,
    .make_batch = mlm_make_batch,
};

LM_PLUGIN_DEFINE(LM_KIND_OBJECTIVE, "mlm", "2.0.0",
                 "Masked language modelling (Hugging Face DataCollatorForLanguageModeling: 15% selected, 80/10/10)",
                 lm_objective_vtable, mlm_vtable)
