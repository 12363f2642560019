/* The arch_gpt2 plugin: GPT2LMHeadModel with Hugging Face names and layouts.
 *
 * This file declares the parameter table and fills the architecture
 * descriptor and vtable: the slots every architecture shares are the
 * skeleton's (model_plugin.c); the config is in gpt2_config.c, the math in
 * gpt2_forward.c, gpt2_backward.c and gpt2_generate.c (incremental
 * decoding). */
#include <math.h>

#include "gpt2.h"
#include "lmcore/plugin.h"

/* Declares every tensor in Hugging Face GPT2LMHeadModel.named_parameters()
 * order.  Weight decay follows the Trainer: every tensor but biases and
 * LayerNorm weights (embeddings included).  The LM head is tied to wte. */
static lm_status declare_params(model_base *m) {
    const gpt2_config *c = &gpt2_of(m)->config;
    param_table *t = &m->table;
    const int64_t C = c->n_embd, V = c->vocab_size, P = c->n_positions, H = c->n_inner;
    const float std = (float)c->initializer_range;
    /* GPT-2 paper: residual projections scaled by 1/sqrt(number of residual layers). */
    const float proj_std = (float)(c->initializer_range / sqrt(2.0 * c->n_layer));

    LM_TRY(param_table_add_matrix(t, std, V, C, "transformer.wte.weight"));
    param_table_pad_rows(t, m->vocab_rows); /* the head's GEMM over vocab_rows (model_plugin.h) */
    LM_TRY(param_table_add_matrix(t, std, P, C, "transformer.wpe.weight"));
    for (int l = 0; l < c->n_layer; l++) {
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ONES, C, "transformer.h.%d.ln_1.weight", l));
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, C, "transformer.h.%d.ln_1.bias", l));
        LM_TRY(param_table_add_matrix(t, std, C, 3 * C, "transformer.h.%d.attn.c_attn.weight", l));
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, 3 * C, "transformer.h.%d.attn.c_attn.bias", l));
        LM_TRY(param_table_add_matrix(t, proj_std, C, C, "transformer.h.%d.attn.c_proj.weight", l));
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, C, "transformer.h.%d.attn.c_proj.bias", l));
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ONES, C, "transformer.h.%d.ln_2.weight", l));
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, C, "transformer.h.%d.ln_2.bias", l));
        LM_TRY(param_table_add_matrix(t, std, C, H, "transformer.h.%d.mlp.c_fc.weight", l));
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, H, "transformer.h.%d.mlp.c_fc.bias", l));
        LM_TRY(param_table_add_matrix(t, proj_std, H, C, "transformer.h.%d.mlp.c_proj.weight", l));
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, C, "transformer.h.%d.mlp.c_proj.bias", l));
    }
    LM_TRY(param_table_add_vector(t, PARAM_INIT_ONES, C, "transformer.ln_f.weight"));
    return param_table_add_vector(t, PARAM_INIT_ZEROS, C, "transformer.ln_f.bias");
}

static const model_arch gpt2_arch = {
    .name = "gpt2",
    .label = "GPT-2",
    .causal = 1,
    .uses_token_types = 0,
    .model_size = sizeof(gpt2_model),
    .layer_acts_size = sizeof(gpt2_layer_acts),
    .extra_batch_arrays = 1, /* the labels */
    .read_config = gpt2_read_config,
    .declare_params = declare_params,
    .carve_acts = gpt2_carve_acts,
    .forward = gpt2_forward,
    .upload_batch = gpt2_upload_batch,
    .backward = gpt2_backward,
    .write_hf_config = gpt2_write_hf_config,
    .weights_replaced = gpt2_generate_invalidate,
    .free_extra = gpt2_generate_free,
};

static lm_status gpt2_create(void **self, lm_config *cfg) { return model_create(&gpt2_arch, self, cfg); }

static const lm_architecture_vtable gpt2_vtable = {
    .create = gpt2_create,
    MODEL_VTABLE_SLOTS,
    .generate_reset = gpt2_generate_reset,
    .generate_step = gpt2_generate_step,
};

LM_PLUGIN_DEFINE(LM_KIND_ARCHITECTURE, "gpt2", "2.0.0",
                 "GPT-2 causal language model (Hugging Face GPT2LMHeadModel names, tied head, KV-cache "
                 "generation), CPU or CUDA",
                 lm_architecture_vtable, gpt2_vtable)
