/* Text generation with causal models: sampling (temperature, top-k,
 * top-p) from a counter-based RNG, greedy when temperature is 0. */
#ifndef LMCORE_GENERATE_H
#define LMCORE_GENERATE_H

#include "registry.h"

typedef struct lm_generate_options {
    int32_t max_new_tokens;
    double temperature; /* 0: greedy */
    int32_t top_k;      /* 0: all */
    double top_p;       /* 1: all */
    uint64_t seed;
    int32_t eos_id;     /* stop after it; -1: never */
    int32_t n_decodable; /* sample only ids below it (the tokenizer's size when the model's vocabulary is
                            padded beyond it); 0: every id of the model */
    /* Hugging Face's logits processors, applied before temperature, top-k
     * and top-p (and before greedy's argmax), in its order: */
    double repetition_penalty;    /* CTRL's: a seen token's logit / p if > 0, x p if not; 0 or 1: off */
    int32_t no_repeat_ngram_size; /* no n-gram of this size twice in prompt + text; 0: off */
} lm_generate_options;

typedef struct lm_generate_stats {
    int32_t prompt_tokens, new_tokens;
    double seconds;     /* generation time, prompt included */
    int used_kv_cache;  /* the model implements generate_step */
} lm_generate_stats;

/* Appends the generated ids (not the prompt) to out. */
LM_API lm_status lm_generate(lm_handle model, const int32_t *prompt, int32_t n_prompt,
                             const lm_generate_options *options, lm_ids *out, lm_generate_stats *stats);

/* Applies repetition_penalty and no_repeat_ngram_size of `options` to
 * logits[vocab] (in place) for the sequence seq[n] so far, prompt included,
 * as transformers' RepetitionPenaltyLogitsProcessor and
 * NoRepeatNGramLogitsProcessor do. */
LM_API void lm_process_logits(float *logits, int32_t vocab, const int32_t *seq, size_t n,
                              const lm_generate_options *options);

/* Picks the next token from logits[vocab] (modified in place). */
LM_API int32_t lm_sample_token(float *logits, int32_t vocab, const lm_generate_options *options, uint64_t draw_index);

#endif
