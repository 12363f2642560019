/* Parameter gradients written on the first micro-batch (issue #16 item 6).
 *
 * backward(loss_scale, accumulate = 0) no longer memsets the whole gradient
 * buffer before adding into it: each tensor's first writer stores its
 * gradient with LM_GRAD_WRITE, the tables the embedding lookup only
 * scatter-adds into are zeroed first, and the skeleton zeroes what lies
 * outside every tensor.  A tensor (or an element) nobody writes would keep
 * whatever the buffer held, so the coverage is checked here rather than
 * hoped for: the whole buffer is filled with NaN, forward + backward(0)
 * run, and every element must equal, bit for bit, what the old path gives
 * (the buffer zeroed, then the same forward + backward(1), which adds
 * everywhere).  Any element a writer missed stays NaN; any writer that
 * still added would read a NaN; a write that changed the bits of a sum
 * (0 + x against x) fails the comparison.
 *
 * GPT-2 (its head is always tied to wte: two writers, the head's GEMM then
 * the lookup; positions beyond T get no lookup gradient) with and without
 * dropout, under each recompute mode and both attentions; BERT (MLM) with
 * padding in the batch (the padding row of the word embeddings is kept
 * across the lookup), token types with an unused type row, dropout, the
 * exact and the padded MLM head, and recompute.  Then the gaps: the flat
 * buffer need not be tiled by the descriptors (padding rows, a gap), and
 * model_buffers_prepare_grads zeroes exactly what lies outside them.
 *
 * The CUDA build compiles the suite a second time with WPG_DEVICE "cuda"
 * (label gpu): there the written and the added GEMMs (beta 0 or 1) may be
 * different cuBLASLt algorithms, so the comparison allows a GEMM's rounding
 * (2e-5 of the tensor's largest gradient); a missed element is still NaN. */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cuda_probe.h"
#include "lmcore/lmcore.h"
#include "lmcore/plugin.h"
#include "model_params.h"
#include "model_steps.h"
#include "test_main.h"

#ifndef WPG_DEVICE
#define WPG_DEVICE "cpu"
#endif
/* On the CPU the two paths give the same bits; on a GPU within this
 * fraction of the tensor's largest |gradient|. */
static const int bit_for_bit = WPG_DEVICE[0] == 'c' && WPG_DEVICE[1] == 'p';
#define WPG_GPU_TOL 2e-5

static const lm_architecture_vtable *load_arch(const char *file) {
    return lm_test_plugin(file, LM_KIND_ARCHITECTURE)->vtable;
}

static void *create_model(const lm_architecture_vtable *vt, const char *const *settings) {
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, "architecture"), LM_OK);
    for (size_t i = 0; settings[i]; i++) ck_assert_int_eq(lm_config_set_parsed(cfg, settings[i]), LM_OK);
    void *model = NULL;
    ck_assert_msg(vt->create(&model, cfg) == LM_OK, "create: %s", lm_error_message());
    ck_assert_msg(lm_config_validate(cfg) == LM_OK, "%s", lm_error_message());
    lm_config_destroy(cfg);
    ck_assert_int_eq(vt->init_weights(model, 11), LM_OK);
    return model;
}

/* The tensor holding flat element i, or NULL (outside every tensor). */
static int64_t desc_numel(const lm_param_desc *d) {
    int64_t numel = 1;
    for (int32_t j = 0; j < d->ndim; j++) numel *= d->shape[j];
    return numel;
}

static const lm_param_desc *tensor_of(const lm_param_set *set, size_t i) {
    for (size_t k = 0; k < set->n_descs; k++) {
        const lm_param_desc *d = &set->descs[k];
        if (i >= d->offset && i < d->offset + (size_t)desc_numel(d)) return d;
    }
    return NULL;
}

/* One forward (forward_train when fused, as the trainer runs it) and
 * backward(loss_scale, accumulate) from a gradient buffer filled with
 * `fill`; returns a host copy of the gradients (lm_free it). */
static float *gradients_after(const lm_architecture_vtable *vt, void *model, const lm_batch *batch,
                              lm_step_state *state, int fused, float fill, int accumulate) {
    const lm_param_set set = lm_test_params(vt, model);
    float *host = NULL;
    ck_assert_int_eq(lm_alloc((void **)&host, set.n_params * sizeof(float), "test grads"), LM_OK);
    for (size_t i = 0; i < set.n_params; i++) host[i] = fill;
    ck_assert_int_eq(set.device->ops->upload(set.device, set.grads, host, set.n_params * sizeof(float)), LM_OK);
    lm_free(host);
    const float loss_scale = 0.5f; /* 1 / gradient_accumulation_steps */
    const lm_status status =
        fused ? vt->forward_train(model, batch, state, loss_scale) : vt->forward(model, batch, state);
    ck_assert_msg(status == LM_OK, "forward: %s", lm_error_message());
    ck_assert_msg(vt->backward(model, loss_scale, accumulate) == LM_OK, "backward: %s", lm_error_message());
    return lm_test_read_grads(vt, model);
}

static void check_written_is_zeroed_then_added(const lm_architecture_vtable *vt, const char *const *settings,
                                               const lm_batch *batch, int fused, const char *what) {
    void *model = create_model(vt, settings);
    const lm_param_set set = lm_test_params(vt, model);
    /* The same key for both: the same dropout masks. */
    lm_step_state *state = lm_test_state_new(vt, model, 5, 3);
    float *want = gradients_after(vt, model, batch, state, fused, 0.0f, 1); /* zeroed, then added */
    float *got = gradients_after(vt, model, batch, state, fused, NAN, 0);   /* written over NaN */
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < set.n_params; i++) {
        if (memcmp(&got[i], &want[i], sizeof(float)) == 0) continue;
        if (!bit_for_bit && !isnan(got[i])) {
            const lm_param_desc *d = tensor_of(&set, i);
            double largest = 0.0;
            const size_t begin = d ? d->offset : i, end = d ? d->offset + (size_t)desc_numel(d) : i + 1;
            for (size_t j = begin; j < end; j++) largest = fmax(largest, fabs((double)want[j]));
            if (fabs((double)got[i] - (double)want[i]) <= WPG_GPU_TOL * largest) continue;
        }
        if (differ++ == 0) first = i;
    }
    if (differ) {
        const lm_param_desc *d = tensor_of(&set, first);
        ck_abort_msg("%s: %zu of %zu gradient elements differ from zeroing then adding; the first, element %zu of "
                     "%s (flat %zu), is %g, want %g",
                     what, differ, set.n_params, d ? first - d->offset : first, d ? d->name : "no tensor", first,
                     (double)got[first], (double)want[first]);
    }
    /* Not vacuous: the gradients are there, and the batch left some table
     * rows untouched (all zero) that the NaN would have shown. */
    size_t nonzero = 0, zero = 0;
    for (size_t i = 0; i < set.n_params; i++) want[i] != 0.0f ? nonzero++ : zero++;
    ck_assert_msg(nonzero > set.n_params / 2 && zero > 0, "%s: %zu nonzero, %zu zero gradients", what, nonzero, zero);
    lm_free(want);
    lm_free(got);
    lm_test_state_free(vt, model, state);
    vt->destroy(model);
}

/* ---- GPT-2 ---- */

enum { GB = 2, GT = 8 };

typedef struct gpt2_batch {
    int32_t ids[GB * GT], labels[GB * GT];
    lm_batch batch;
} gpt2_batch;

static void gpt2_batch_make(gpt2_batch *g) {
    int64_t targets = 0;
    for (int i = 0; i < GB * GT; i++) {
        g->ids[i] = (i * 7) % 40 + (i % 5 == 0); /* repeats: rows summed by the lookup; ids 41+ unseen */
        g->labels[i] = i % GT == GT - 1 ? LM_IGNORE_INDEX : (i * 13 + 5) % 61; /* clm: the last position ignored */
        targets += g->labels[i] != LM_IGNORE_INDEX;
    }
    g->batch = (lm_batch){.B = GB, .T = GT, .input_ids = g->ids, .labels = g->labels, .n_targets = targets};
}

/* vocab 61, 24 positions (T = 8 of them used), 2 layers. */
#define GPT2_SHAPE "device=" WPG_DEVICE, "vocab_size=61", "n_positions=24", "n_embd=32", "n_layer=2", "n_head=4"
#define GPT2_DROPOUT "resid_pdrop=0.1", "embd_pdrop=0.1", "attn_pdrop=0.1"

START_TEST(test_gpt2_written_gradients_cover_every_parameter) {
    const lm_architecture_vtable *vt = load_arch("arch_gpt2");
    gpt2_batch g;
    gpt2_batch_make(&g);
    const char *const plain[] = {GPT2_SHAPE, "resid_pdrop=0", "embd_pdrop=0", "attn_pdrop=0", NULL};
    check_written_is_zeroed_then_added(vt, plain, &g.batch, 0, "gpt2, no dropout");
    check_written_is_zeroed_then_added(vt, plain, &g.batch, 1, "gpt2, no dropout, forward_train");
    const char *const dropout[] = {GPT2_SHAPE, GPT2_DROPOUT, NULL};
    check_written_is_zeroed_then_added(vt, dropout, &g.batch, 1, "gpt2, dropout");
    const char *const activations[] = {GPT2_SHAPE, GPT2_DROPOUT, "recompute=activations", NULL};
    check_written_is_zeroed_then_added(vt, activations, &g.batch, 1, "gpt2, dropout, recompute=activations");
    const char *const attention[] = {GPT2_SHAPE, GPT2_DROPOUT, "recompute=attention", NULL};
    check_written_is_zeroed_then_added(vt, attention, &g.batch, 0, "gpt2, dropout, recompute=attention");
    const char *const sdpa[] = {GPT2_SHAPE, GPT2_DROPOUT, "attn_implementation=sdpa", NULL};
    check_written_is_zeroed_then_added(vt, sdpa, &g.batch, 1, "gpt2, dropout, sdpa");
    /* 61 rows padded to 64: the padding rows (in wte's storage, outside
     * its shape) are compared too, the whole flat buffer being. */
    const char *const padded[] = {GPT2_SHAPE, GPT2_DROPOUT, "pad_vocab_to_multiple_of=16", NULL};
    check_written_is_zeroed_then_added(vt, padded, &g.batch, 1, "gpt2, dropout, vocabulary padded to 64");
    /* The MLP and attention blocks' bf16 ops (gpt2_mlp_bf16.c: c_fc's bias
     * from gelu_matmul_backward_bf16; gpt2_attn_bf16.c), eager and sdpa. */
    const char *const bf16[] = {GPT2_SHAPE, GPT2_DROPOUT, "activation_dtype=bf16", NULL};
    check_written_is_zeroed_then_added(vt, bf16, &g.batch, 1, "gpt2, dropout, activation_dtype=bf16");
    const char *const bf16_recompute[] = {GPT2_SHAPE, GPT2_DROPOUT, "activation_dtype=bf16", "recompute=activations",
                                          NULL};
    check_written_is_zeroed_then_added(vt, bf16_recompute, &g.batch, 0,
                                       "gpt2, dropout, activation_dtype=bf16, recompute=activations");
    const char *const bf16_sdpa[] = {GPT2_SHAPE, GPT2_DROPOUT, "activation_dtype=bf16", "attn_implementation=sdpa",
                                     NULL};
    check_written_is_zeroed_then_added(vt, bf16_sdpa, &g.batch, 1, "gpt2, dropout, activation_dtype=bf16, sdpa");
}
END_TEST

/* ---- BERT ---- */

enum { BB = 2, BT = 12 };

typedef struct bert_batch {
    int32_t ids[BB * BT], labels[BB * BT], types[BB * BT], mask[BB * BT];
    lm_batch batch;
} bert_batch;

/* Row 1 ends in padding (id 0 = pad_token_id, attention_mask 0); token
 * types 0 and 1 of the 3; about a third of the real positions scored. */
static void bert_batch_make(bert_batch *g) {
    int64_t targets = 0;
    for (int i = 0; i < BB * BT; i++) {
        const int b = i / BT, t = i % BT, padding = b == 1 && t >= 8;
        g->ids[i] = padding ? 0 : 5 + (i * 11) % 70;
        g->mask[i] = !padding;
        g->types[i] = t >= 6;
        g->labels[i] = !padding && t % 3 == 1 ? 5 + (i * 17) % 80 : LM_IGNORE_INDEX;
        targets += g->labels[i] != LM_IGNORE_INDEX;
    }
    g->batch = (lm_batch){.B = BB, .T = BT, .input_ids = g->ids, .labels = g->labels, .token_type_ids = g->types,
                          .attention_mask = g->mask, .n_targets = targets};
}

/* vocab 97, 20 positions (12 used), 3 token types (2 used), pad id 0. */
#define BERT_SHAPE                                                                                                 \
    "device=" WPG_DEVICE, "vocab_size=97", "hidden_size=32", "num_hidden_layers=2", "num_attention_heads=4",       \
        "intermediate_size=48", "max_position_embeddings=20", "type_vocab_size=3", "pad_token_id=0"
#define BERT_DROPOUT "hidden_dropout_prob=0.1", "attention_probs_dropout_prob=0.1"
#define BERT_NO_DROPOUT "hidden_dropout_prob=0", "attention_probs_dropout_prob=0"

START_TEST(test_bert_written_gradients_cover_every_parameter) {
    const lm_architecture_vtable *vt = load_arch("arch_bert");
    bert_batch g;
    bert_batch_make(&g);
    const char *const exact[] = {BERT_SHAPE, BERT_NO_DROPOUT, "mlm_head_rows=exact", NULL};
    check_written_is_zeroed_then_added(vt, exact, &g.batch, 0, "bert, exact head");
    const char *const dropout[] = {BERT_SHAPE, BERT_DROPOUT, "mlm_head_rows=exact", NULL};
    check_written_is_zeroed_then_added(vt, dropout, &g.batch, 1, "bert, dropout, exact head");
    const char *const padded[] = {BERT_SHAPE, BERT_DROPOUT, "mlm_head_rows=padded", NULL};
    check_written_is_zeroed_then_added(vt, padded, &g.batch, 1, "bert, dropout, padded head");
    const char *const recompute[] = {BERT_SHAPE, BERT_DROPOUT, "recompute=activations", NULL};
    check_written_is_zeroed_then_added(vt, recompute, &g.batch, 0, "bert, dropout, recompute=activations");
    const char *const sdpa[] = {BERT_SHAPE, BERT_DROPOUT, "attn_implementation=sdpa", NULL};
    check_written_is_zeroed_then_added(vt, sdpa, &g.batch, 1, "bert, dropout, sdpa");
    /* 97 rows padded to 128, and the decoder bias with them. */
    const char *const padded_vocab[] = {BERT_SHAPE, BERT_DROPOUT, "pad_vocab_to_multiple_of=32", NULL};
    check_written_is_zeroed_then_added(vt, padded_vocab, &g.batch, 1, "bert, dropout, vocabulary padded to 128");
    /* The feed-forward and attention blocks' bf16 ops (bert_ffn_bf16.c, bert_attn_bf16.c), eager and sdpa. */
    const char *const bf16[] = {BERT_SHAPE, BERT_DROPOUT, "activation_dtype=bf16", "recompute=activations", NULL};
    check_written_is_zeroed_then_added(vt, bf16, &g.batch, 0, "bert, dropout, activation_dtype=bf16, recompute");
    const char *const bf16_sdpa[] = {BERT_SHAPE, BERT_DROPOUT, "activation_dtype=bf16", "attn_implementation=sdpa",
                                     NULL};
    check_written_is_zeroed_then_added(vt, bf16_sdpa, &g.batch, 1, "bert, dropout, activation_dtype=bf16, sdpa");
    /* No token types given: every position reads type row 0. */
    g.batch.token_type_ids = NULL;
    check_written_is_zeroed_then_added(vt, exact, &g.batch, 0, "bert, no token types");
}
END_TEST

/* ---- what lies outside every tensor ---- */

/* A table that does not tile its buffer: a gap before the first tensor,
 * padding rows in a tensor's storage, a gap between two, and a tail. */
START_TEST(test_prepare_grads_zeroes_what_no_tensor_holds) {
    param_table t;
    memset(&t, 0, sizeof t);
    ck_assert_int_eq(param_table_add_matrix(&t, 0.02f, 3, 4, "a"), LM_OK);  /* 12 elements at 2, storage 16 */
    ck_assert_int_eq(param_table_add_vector(&t, PARAM_INIT_ZEROS, 5, "b"), LM_OK); /* 5 elements at 20 */
    ck_assert_int_eq(param_table_add_vector(&t, PARAM_INIT_ZEROS, 0, "empty"), LM_OK);
    t.descs[0].offset = 2, t.descs[0].storage = 16;
    t.descs[1].offset = 20;
    t.descs[2].offset = 25;
    t.n_params = 31;
    const param_range expected[] = {{0, 2}, {14, 20}, {25, 31}};
    param_range got[4];
    ck_assert_uint_eq(param_table_uncovered(&t, t.n_params, got, 4), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(got[i].begin, expected[i].begin);
        ck_assert_uint_eq(got[i].end, expected[i].end);
    }
    ck_assert_uint_eq(param_table_uncovered(&t, t.n_params, got, 1), 3); /* counts past cap */

    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, 1), LM_OK);
    model_buffers b;
    model_buffers_init(&b, be, &t);
    ck_assert_int_eq(model_buffers_ensure_grads(&b), LM_OK);
    for (size_t i = 0; i < t.n_params; i++) b.grads[i] = NAN;
    model_buffers_prepare_grads(&b, LM_GRAD_ADD); /* accumulating: nothing is touched */
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    for (size_t i = 0; i < t.n_params; i++) ck_assert_msg(isnan(b.grads[i]), "element %zu touched by ADD", i);
    model_buffers_prepare_grads(&b, LM_GRAD_WRITE);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    for (size_t i = 0; i < t.n_params; i++) {
        const int in_tensor = (i >= 2 && i < 14) || (i >= 20 && i < 25);
        if (in_tensor)
            ck_assert_msg(isnan(b.grads[i]), "element %zu of a tensor was zeroed (its writer writes it)", i);
        else
            ck_assert_msg(b.grads[i] == 0.0f && !signbit(b.grads[i]), "element %zu outside the tensors is %g", i,
                          (double)b.grads[i]);
    }
    model_buffers_free(&b);
    param_table_free(&t);
    lm_backend_release(be);

    /* A table that tiles its buffer has nothing to zero. */
    memset(&t, 0, sizeof t);
    ck_assert_int_eq(param_table_add_matrix(&t, 0.02f, 3, 4, "a"), LM_OK);
    ck_assert_int_eq(param_table_add_vector(&t, PARAM_INIT_ZEROS, 5, "b"), LM_OK);
    param_table_layout(&t);
    ck_assert_uint_eq(param_table_uncovered(&t, t.n_params, NULL, 0), 0);
    param_table_free(&t);
}
END_TEST

static Suite *written_param_grads_suite(void) {
    Suite *s = suite_create("parameter gradients written");
    TCase *tc = tcase_create("coverage");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gpt2_written_gradients_cover_every_parameter);
    tcase_add_test(tc, test_bert_written_gradients_cover_every_parameter);
    tcase_add_test(tc, test_prepare_grads_zeroes_what_no_tensor_holds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_main_for_device(WPG_DEVICE, written_param_grads_suite); }
