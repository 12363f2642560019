/* GPT-2 incremental decoding with a key/value cache (ABI 1.1 slots
 * generate_reset / generate_step).
 *
 * A full forward over t tokens costs O(t) GEMM rows; generating N tokens
 * that way costs O(N²).  Keys and values of a position never change once
 * computed (causal attention), so each layer keeps them in a cache and a
 * step only runs the new positions through the network:
 *
 *   x = wte[ids] + wpe[pos .. pos+n-1]
 *   per block: a = ln_1(x); q,k,v = c_attn(a); cache[pos .. pos+n-1] = k, v
 *              h = x + c_proj(attention of the n queries over the pos+n cached
 *                            keys, causal inside the new block)
 *              x = h + mlp.c_proj(gelu_new(c_fc(ln_2(h))))
 *   logits = ln_f(x[last]) · wteᵀ   (only the last position is sampled from)
 *
 * This is the forward of gpt2_forward.c in eval mode (no dropout), row for
 * row, with the attention of the old positions read from the cache.  The
 * memory is separate from the training activations: a forward() between
 * steps leaves the cache intact.  The cache holds keys and values of the
 * weights at generate_reset: whoever changes the weights (an optimizer,
 * loading a file) resets before generating again, as lm_generate always
 * does; init_weights invalidates it. */
#include <stdio.h>
#include <string.h>

#include "gpt2.h"
#include "model_arena.h"

/* Lays out the caches and row activations for max_tokens positions from
 * `base` (only counts when base is NULL); returns the floats needed. */
static size_t carve_generation(gpt2_model *m, float *base, size_t max_tokens) {
    const gpt2_config *c = &m->config;
    const size_t C = (size_t)c->n_embd, H = (size_t)c->n_inner, L = (size_t)c->n_layer, T = max_tokens;
    gpt2_generation *g = &m->gen;
    model_arena arena = {base, 0};
    /* Counting leaves the fields as they are (the old buffers may still be live). */
#define TAKE(field, count)                                  \
    do {                                                    \
        float *slice = model_arena_take(&arena, (count));   \
        if (base) g->field = slice;                         \
    } while (0)
    TAKE(k_cache, L * T * C);
    TAKE(v_cache, L * T * C);
    TAKE(x, T * C);
    TAKE(h, T * C);
    TAKE(ln, T * C);
    TAKE(mean, T);
    TAKE(rstd, T);
    TAKE(qkv, T * 3 * C);
    TAKE(atty, T * C);
    TAKE(proj, T * C);
    TAKE(fch, T * H);
    TAKE(fch_gelu, T * H);
    TAKE(logits, (size_t)c->vocab_size);
#undef TAKE
    return arena.used;
}

void gpt2_generate_invalidate(model_base *m) {
    gpt2_of(m)->gen.max_tokens = 0;
    gpt2_of(m)->gen.pos = 0;
}

void gpt2_generate_free(model_base *m) {
    gpt2_generation *g = &gpt2_of(m)->gen;
    lm_backend *be = m->backend;
    if (be) {
        if (g->memory) be->ops->free(be, g->memory);
        if (g->att) be->ops->free(be, g->att);
        if (g->ids) be->ops->free(be, g->ids);
    }
    memset(g, 0, sizeof *g);
}

/* The attention probabilities of a step of n queries at position pos. */
static lm_status ensure_att(gpt2_model *m, int32_t pos, int32_t n) {
    gpt2_generation *g = &m->gen;
    size_t need = (size_t)m->config.n_head * (size_t)n * ((size_t)pos + (size_t)n);
    char what[128];
    snprintf(what, sizeof what, "GPT-2 generation attention scores for %d new tokens after %d", (int)n, (int)pos);
    return model_buffer_grow(m->base.backend, (void **)&g->att, &g->att_capacity, need, sizeof(float), what);
}

lm_status gpt2_generate_reset(void *self, int32_t max_tokens) {
    gpt2_model *m = self;
    const gpt2_config *c = &m->config;
    gpt2_generation *g = &m->gen;
    gpt2_generate_invalidate(&m->base);
    if (max_tokens < 1 || max_tokens > c->n_positions)
        return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': generate_reset(max_tokens=%d) must be between 1 "
                                            "and the model's n_positions=%d",
                            (int)max_tokens, (int)c->n_positions);
    lm_backend *be = m->base.backend;
    LM_TRY(model_buffers_ensure_params(&m->base.buffers)); /* allocated on first use */
    size_t need = carve_generation(m, NULL, (size_t)max_tokens);
    char what[128];
    snprintf(what, sizeof what, "the GPT-2 key/value cache and activations for %d tokens", (int)max_tokens);
    LM_TRY(model_buffer_grow(be, (void **)&g->memory, &g->capacity, need, sizeof(float), what));
    carve_generation(m, g->memory, (size_t)max_tokens);
    LM_TRY(model_buffer_grow(be, (void **)&g->ids, &g->ids_capacity, (size_t)max_tokens, sizeof(int32_t),
                "GPT-2 generation token ids"));
    /* Enough for one-token steps up to max_tokens; a long prompt grows it. */
    LM_TRY(ensure_att(m, max_tokens - 1, 1));
    g->pos = 0;
    g->max_tokens = max_tokens;
    return LM_OK;
}

static lm_status check_step(const gpt2_model *m, const int32_t *ids, int32_t n, const float *logits) {
    const gpt2_config *c = &m->config;
    const gpt2_generation *g = &m->gen;
    if (g->max_tokens == 0)
        return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': generate_step without a key/value cache: call "
                                            "generate_reset(max_tokens) first (and again after the weights change)");
    if (!ids || n < 1 || !logits)
        return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': generate_step needs n >= 1 token ids (got %d) "
                                            "and a logits buffer",
                            (int)n);
    if (n > g->max_tokens - g->pos)
        return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': generate_step of %d token(s) after %d would pass "
                                            "the max_tokens=%d given to generate_reset: reset with a larger "
                                            "max_tokens (at most n_positions=%d)",
                            (int)n, (int)g->pos, (int)g->max_tokens, (int)c->n_positions);
    for (int32_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': generate_step token id %d (item %d) is "
                                                "outside the vocabulary [0, %d)",
                                (int)ids[i], (int)i, (int)c->vocab_size);
    return LM_OK;
}

/* Steps of at most this many tokens multiply by the weights row by row
 * (matvec_forward): a GEMM of so few rows costs more in packing the weight
 * than in the product on the CPU.  Longer steps (a prompt) use the GEMM. */
#define GPT2_MATVEC_MAX_ROWS 4

static void linear(lm_backend *be, float *out, const float *inp, const float *weight, const float *bias, int n,
                   int IC, int OC, lm_weight_layout layout) {
    if (n <= GPT2_MATVEC_MAX_ROWS) be->ops->matvec_forward(be, out, inp, weight, bias, n, IC, OC, layout);
    else be->ops->matmul_forward(be, out, inp, weight, bias, n, IC, OC, layout);
}

lm_status gpt2_generate_step(void *self, const int32_t *ids, int32_t n, float *logits) {
    gpt2_model *m = self;
    LM_TRY(check_step(m, ids, n, logits));
    const gpt2_config *c = &m->config;
    gpt2_generation *g = &m->gen;
    lm_backend *be = m->base.backend;
    const lm_backend_ops *ops = be->ops;
    const int pos = g->pos, C = c->n_embd, H = c->n_inner, V = c->vocab_size, NH = c->n_head, L = c->n_layer;
    const size_t nC = (size_t)n * (size_t)C, cache_stride = (size_t)g->max_tokens * (size_t)C;
    const float eps = (float)c->layer_norm_epsilon;
    float *params = m->base.buffers.params;
    LM_TRY(ensure_att(m, pos, n));
    LM_TRY(ops->upload(be, g->ids, ids, (size_t)n * sizeof(int32_t)));

    const float *wte = model_tensor(&m->base, params, GPT2_WTE);
    ops->embedding_forward(be, g->x, g->ids, NULL, wte, model_tensor(&m->base, params, GPT2_WPE) + (size_t)pos * C, NULL, 1,
                           n, C);
    for (int l = 0; l < L; l++) {
#define W(k) model_tensor(&m->base, params, GPT2_LAYER_TENSOR(l, k))
        float *k_cache = g->k_cache + (size_t)l * cache_stride, *v_cache = g->v_cache + (size_t)l * cache_stride;
        ops->layernorm_forward(be, g->ln, g->mean, g->rstd, g->x, W(GPT2_LN1_W), W(GPT2_LN1_B), n, C, eps);
        linear(be, g->qkv, g->ln, W(GPT2_QKV_W), W(GPT2_QKV_B), n, C, 3 * C, LM_W_IN_OUT);
        ops->kv_cache_append(be, k_cache, v_cache, g->qkv + C, g->qkv + 2 * C, 3 * C, pos, n, C);
        ops->attention_cached_forward(be, g->atty, g->att, g->qkv, k_cache, v_cache, 3 * C, pos, n, C, NH);
        linear(be, g->proj, g->atty, W(GPT2_ATTPROJ_W), W(GPT2_ATTPROJ_B), n, C, C, LM_W_IN_OUT);
        ops->residual_forward(be, g->h, g->x, g->proj, nC);

        ops->layernorm_forward(be, g->ln, g->mean, g->rstd, g->h, W(GPT2_LN2_W), W(GPT2_LN2_B), n, C, eps);
        linear(be, g->fch, g->ln, W(GPT2_FC_W), W(GPT2_FC_B), n, C, H, LM_W_IN_OUT);
        ops->gelu_forward(be, g->fch_gelu, g->fch, (size_t)n * (size_t)H, 1);
        linear(be, g->proj, g->fch_gelu, W(GPT2_FCPROJ_W), W(GPT2_FCPROJ_B), n, H, C, LM_W_IN_OUT);
        ops->residual_forward(be, g->x, g->h, g->proj, nC);
#undef W
    }
    /* Only the last position is sampled from: ln_f and the tied head on it alone. */
    ops->layernorm_forward(be, g->ln, g->mean, g->rstd, g->x + (size_t)(n - 1) * C,
                           model_tensor(&m->base, params, GPT2_LNF_W(L)), model_tensor(&m->base, params, GPT2_LNF_B(L)), 1, C, eps);
    linear(be, g->logits, g->ln, wte, NULL, 1, C, V, LM_W_OUT_IN);
    LM_TRY(ops->download(be, logits, g->logits, (size_t)V * sizeof(float)));
    g->pos += n;
    return LM_OK;
}
