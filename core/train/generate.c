/* Generation loop and token sampling (see generate.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"

typedef struct scored {
    float logit;
    int32_t id;
} scored;

static int by_logit_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id - y->id; /* ties: lower id first, deterministic */
}

int32_t lm_sample_token(float *logits, int32_t V, const lm_generate_options *o, uint64_t draw_index) {
    int32_t best = 0;
    for (int32_t v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (o->temperature <= 0) return best;
    /* Candidates sorted by logit; top-k then top-p (nucleus) cut them. */
    scored *c = malloc((size_t)V * sizeof *c);
    if (!c) return best; /* out of memory: fall back to greedy rather than fail mid-text */
    for (int32_t v = 0; v < V; v++) {
        c[v].logit = logits[v];
        c[v].id = v;
    }
    qsort(c, (size_t)V, sizeof *c, by_logit_desc);
    int32_t n = (o->top_k > 0 && o->top_k < V) ? o->top_k : V;
    double max = c[0].logit, sum = 0;
    for (int32_t i = 0; i < n; i++) sum += exp(((double)c[i].logit - max) / o->temperature);
    if (o->top_p > 0 && o->top_p < 1) {
        double cumulative = 0;
        int32_t keep = n;
        for (int32_t i = 0; i < n; i++) {
            cumulative += exp(((double)c[i].logit - max) / o->temperature) / sum;
            if (cumulative >= o->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0;
        for (int32_t i = 0; i < n; i++) sum += exp(((double)c[i].logit - max) / o->temperature);
    }
    double u = (double)lm_rng_uniform(o->seed, LM_RNG_STREAM_SAMPLING, draw_index) * sum, acc = 0;
    int32_t chosen = c[n - 1].id;
    for (int32_t i = 0; i < n; i++) {
        acc += exp(((double)c[i].logit - max) / o->temperature);
        if (u < acc) {
            chosen = c[i].id;
            break;
        }
    }
    free(c);
    return chosen;
}

void lm_process_logits(float *logits, int32_t V, const int32_t *seq, size_t n, const lm_generate_options *o) {
    const double penalty = o->repetition_penalty;
    if (penalty > 0 && penalty != 1) {
        /* Each seen id once, however often it occurs (transformers gathers
         * the scores of the ids and scatters them back).  A bit per id
         * makes it linear in the sequence; without the memory for one, the
         * earlier occurrences are searched instead (same result). */
        unsigned char *seen_ids = calloc(((size_t)V + 7) / 8, 1);
        for (size_t i = 0; i < n; i++) {
            const int32_t id = seq[i];
            if (id < 0 || id >= V) continue;
            int seen = 0;
            if (seen_ids) {
                seen = (seen_ids[id >> 3] >> (id & 7)) & 1;
                seen_ids[id >> 3] |= (unsigned char)(1u << (id & 7));
            } else {
                for (size_t j = 0; j < i && !seen; j++) seen = seq[j] == id;
            }
            if (seen) continue;
            const float x = logits[id];
            logits[id] = x < 0 ? (float)((double)x * penalty) : (float)((double)x / penalty);
        }
        free(seen_ids);
    }
    const int32_t size = o->no_repeat_ngram_size;
    if (size > 0 && n + 1 >= (size_t)size) {
        /* The last size-1 ids start an n-gram: every earlier n-gram with the
         * same start bans the id that ended it. */
        const size_t prefix = (size_t)size - 1, start = n - prefix;
        for (size_t i = 0; i + prefix < n; i++) {
            if (memcmp(seq + i, seq + start, prefix * sizeof *seq) != 0) continue;
            const int32_t banned = seq[i + prefix];
            if (banned >= 0 && banned < V) logits[banned] = -INFINITY;
        }
    }
}

/* Without a KV cache: run the whole sequence and keep the last logits. */
static lm_status full_forward_last_logits(lm_handle model, const lm_ids *seq, float *all, int32_t V, float *last) {
    lm_batch batch;
    memset(&batch, 0, sizeof batch);
    batch.struct_size = sizeof batch;
    batch.B = 1;
    batch.T = (int32_t)seq->len;
    batch.input_ids = seq->data;
    LM_TRY(model.plugin->vtable.architecture.forward(model.self, &batch, NULL));
    LM_TRY(model.plugin->vtable.architecture.logits(model.self, all, seq->len * (size_t)V));
    memcpy(last, all + (seq->len - 1) * (size_t)V, (size_t)V * sizeof *last);
    return LM_OK;
}

lm_status lm_generate(lm_handle model, const int32_t *prompt, int32_t n_prompt, const lm_generate_options *o,
                      lm_ids *out, lm_generate_stats *stats) {
    const lm_architecture_vtable *vt = &model.plugin->vtable.architecture;
    memset(stats, 0, sizeof *stats);
    lm_arch_info info;
    LM_TRY(vt->info(model.self, &info));
    if (!info.causal)
        return lm_error_set(LM_ERR_INVALID, "generation needs a causal model, and '%s' is bidirectional: use "
                                            "scripts/fill_mask.lua for masked models", info.model_type);
    if (n_prompt < 1) return lm_error_set(LM_ERR_INVALID, "the prompt encodes to no token: give some text");
    if (o->max_new_tokens < 0)
        return lm_error_set(LM_ERR_INVALID, "max_new_tokens must be >= 0, got %d", (int)o->max_new_tokens);
    if (!(o->temperature >= 0) || !isfinite(o->temperature))
        return lm_error_set(LM_ERR_INVALID, "temperature must be a number >= 0 (0: greedy), got %g", o->temperature);
    if (!(o->top_p > 0 && o->top_p <= 1))
        return lm_error_set(LM_ERR_INVALID, "top_p must be in (0, 1], got %g", o->top_p);
    if (o->top_k < 0) return lm_error_set(LM_ERR_INVALID, "top_k must be >= 0 (0: all), got %d", (int)o->top_k);
    if (!(o->repetition_penalty >= 0) || !isfinite(o->repetition_penalty))
        return lm_error_set(LM_ERR_INVALID, "repetition_penalty must be a number > 0 (1: off; above 1 discourages "
                                            "repeating), got %g",
                            o->repetition_penalty);
    if (o->no_repeat_ngram_size < 0)
        return lm_error_set(LM_ERR_INVALID, "no_repeat_ngram_size must be >= 0 (0: off), got %d",
                            (int)o->no_repeat_ngram_size);
    int32_t total = n_prompt + o->max_new_tokens;
    if (total > info.max_positions)
        return lm_error_set(LM_ERR_INVALID,
                            "prompt (%d tokens) + max_new_tokens (%d) exceed the model's %d positions", n_prompt,
                            o->max_new_tokens, info.max_positions);
    int32_t V = info.vocab_size;
    for (int32_t i = 0; i < n_prompt; i++) /* the embedding lookup trusts its ids */
        if (prompt[i] < 0 || prompt[i] >= V)
            /* The usual cause is a tokenizer that is not the model's (its
             * vocabulary is larger): say so, not only which id is wrong. */
            return lm_error_set(LM_ERR_INVALID, "prompt token %d is %d, not an id of the model's vocabulary (0..%d): %s",
                                i + 1, prompt[i], V - 1,
                                prompt[i] < 0 ? "token ids are never negative"
                                              : "the prompt was encoded by a tokenizer that does not match this model "
                                                "(use the tokenizer.json saved beside it)");
    int cached = vt->generate_reset && vt->generate_step;
    stats->used_kv_cache = cached;
    stats->prompt_tokens = n_prompt;
    double start = lm_time_seconds();
    float *last = malloc((size_t)V * sizeof *last);
    float *all = cached ? NULL : malloc((size_t)total * (size_t)V * sizeof *all);
    lm_ids seq = {0};
    lm_status status = LM_OK;
    if (!last || (!cached && !all)) {
        status = lm_error_set(LM_ERR_NOMEM, "out of memory for the logits of %d tokens", total);
        goto fail;
    }
    LM_CHECK(vt->set_training(model.self, 0));
    LM_CHECK(lm_ids_append(&seq, prompt, (size_t)n_prompt));
    if (cached) {
        LM_CHECK(vt->generate_reset(model.self, total));
        LM_CHECK(vt->generate_step(model.self, prompt, n_prompt, last));
    } else {
        LM_CHECK(full_forward_last_logits(model, &seq, all, V, last));
    }
    const int32_t n_sampled = o->n_decodable > 0 && o->n_decodable < V ? o->n_decodable : V;
    for (int32_t i = 0; i < o->max_new_tokens; i++) {
        lm_process_logits(last, n_sampled, seq.data, seq.len, o);
        int32_t next = lm_sample_token(last, n_sampled, o, (uint64_t)i);
        LM_CHECK(lm_ids_push(out, next));
        LM_CHECK(lm_ids_push(&seq, next));
        stats->new_tokens++;
        if (next == o->eos_id || i + 1 == o->max_new_tokens) break;
        if (lm_interrupted()) {
            status = lm_error_set(LM_ERR_INTERRUPTED, "generation interrupted (Ctrl-C or SIGTERM)");
            goto fail;
        }
        if (cached) LM_CHECK(vt->generate_step(model.self, &next, 1, last));
        else LM_CHECK(full_forward_last_logits(model, &seq, all, V, last));
    }
fail:
    stats->seconds = lm_time_seconds() - start;
    vt->set_training(model.self, 1);
    lm_ids_free(&seq);
    free(all);
    free(last);
    return status;
}
