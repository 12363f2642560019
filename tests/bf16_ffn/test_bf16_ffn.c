/* GPT-2 and BERT with activation_dtype=bf16 against the same models in
 * fp32 (forced on the CPU, where auto keeps fp32): the feed-forward block's
 * stored activations (c_fc's / intermediate.dense's input, output and GELU)
 * and the attention block's (the Q/K/V GEMMs' input, q/k/v, the attention's
 * output) in bf16, their GEMMs on the model's BF16 params_copy
 * (plugins/arch_gpt2/gpt2_mlp_bf16.c, gpt2_attn_bf16.c,
 * plugins/arch_bert/bert_ffn_bf16.c, bert_attn_bf16.c), with the eager
 * attention and the fused one (attn_implementation=sdpa, forced on the
 * CPU).
 *
 * bf16 is not fp32 (a relative rounding of up to 2^-9 on every stored
 * value, and on the weights the block reads), so the numbers are compared
 * within tolerances measured here and stated below, with logits fp32 and
 * with logits bf16 too (both settings together), against the model with
 * everything fp32.  The worst values seen are printed; measured on the CPU
 * (GPT-2 and BERT, either logits dtype, eager and sdpa attention, with the
 * feed-forward and attention blocks in bf16; the bounds 2.3x to 2.9x that):
 *
 *   TOL_LOSS         the loss, relative (forward, and forward_train's fused
 *                    op): measured 3.6e-5, bound 1e-4;
 *   TOL_GRADS        every parameter gradient, relative to the largest
 *                    gradient over all tensors: measured 4.4e-3, bound 1e-2;
 *   TOL_TENSOR_GRADS the feed-forward block's gradients, each relative to
 *                    its tensor's largest (compare_blocks): measured
 *                    5.5e-3, bound 1.5e-2;
 *   TOL_ATTENTION_TENSOR_GRADS  the attention block's, likewise: measured
 *                    9.3e-3 (BERT, sdpa), bound 2.5e-2;
 *   TOL_TRAIN        20 AdamW steps from the same weights on the same
 *                    batches: the bf16 run's loss at every step, relative
 *                    to fp32's: measured 2.2e-4 (GPT-2, bf16 logits), bound
 *                    5e-4.
 *
 * What must be exact is checked exactly: BERT under recompute=activations
 * (and =attention), eager and sdpa, trains with bf16 activations to the
 * bits of the run without (backward rebuilds inter_gelu and the attention
 * block's rounded input with the forward's ops); GPT-2's
 * recompute cases agree with each other to the bit and with the kept path
 * within a stated bound (gpt2_recompute_agrees says why not to the bit);
 * the params_copy is the parameters rounded after every step; the
 * activation arena shrinks by exactly the bytes the bf16 buffers save (the
 * model's own accounting, the arena's size, for the small models here; for
 * GPT-2 124M and BERT-base at 8 x 128 with LMCORE_TEST_REPORT_124M=1, which
 * allocates up to 1 GB per model and is not run by default); activation_dtype is refused
 * by name when unknown.  test_bf16_ffn_resume and test_bf16_ffn_ddp
 * (CMakeLists.txt) check a checkpoint resume and data parallel through
 * the CLI.
 *
 * The same source builds test_bf16_ffn_cuda (label gpu): the models on the
 * CUDA backend (precision fp32; the block's GEMMs cuBLASLt's CUDA_R_16BF),
 * against fp32 on the GPU, within the same tolerances; it exits 77 without
 * a GPU.  Never run yet (no GPU; kernels/cuda/NOTES_bf16_storage.md). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16_compare.h"
#include "cuda_probe.h"
#include "lmcore/lmcore.h"
#include "model_plugin.h" /* model_base.act_capacity: the arena's size, the model's own accounting */
#include "model_steps.h"
#include "small_models.h"
#include "test_main.h"

#ifndef FFN_TEST_DEVICE
#define FFN_TEST_DEVICE "cpu"
#endif

enum { N = LM_TEST_SMALL_N, TRAIN_STEPS = 20 };

#define TOL_LOSS 1e-4
#define TOL_GRADS 1e-2
#define TOL_TENSOR_GRADS 1.5e-2
#define TOL_ATTENTION_TENSOR_GRADS 2.5e-2
#define TOL_TRAIN 5e-4
static double worst_loss, worst_grads, worst_train, worst_blocks[2];

/* (_i / 2) % 2 of the comparison tests: the logits' dtype beside bf16 activations. */
static const char *const logits_settings[] = {"logits_dtype=fp32", "logits_dtype=bf16"};
/* _i / 4 of the comparison tests: the attention (both models). */
static const char *const attention_settings[] = {"attn_implementation=eager", "attn_implementation=sdpa"};
enum { COMPARISON_CASES = 8 }; /* 2 architectures x 2 logits dtypes x 2 attentions */

/* A small model (tests/common/small_models.h) on the CPU with
 * `activation_dtype` (NULL: the key not given) and `extra` settings. */
static void *create(const char *arch, const char *activation_dtype, const char *const *extra) {
    return lm_test_small_model_create(arch, FFN_TEST_DEVICE, "activation_dtype", activation_dtype, extra);
}

/* The comparison tests' two models, all fp32 (logits too) and bf16
 * activations with logits_settings[(_i / 2) % 2], both with
 * attention_settings[_i / 4], of lm_test_small_archs[_i % 2] (returned);
 * `label` gets the architecture and the two settings. */
static const char *create_pair(int i, void *models[2], char *label, size_t label_cap) {
    const char *arch = lm_test_small_archs[i % 2];
    const char *const fp32[] = {"logits_dtype=fp32", attention_settings[i / 4], NULL};
    const char *const bf16[] = {logits_settings[(i / 2) % 2], attention_settings[i / 4], NULL};
    models[0] = create(arch, "fp32", fp32);
    models[1] = create(arch, "bf16", bf16);
    snprintf(label, label_cap, "%s %s %s", arch, logits_settings[(i / 2) % 2], attention_settings[i / 4]);
    return arch;
}

/* Whether a tensor is the feed-forward block's (GPT-2's mlp.*, BERT's
 * intermediate.dense and output.dense, not attention.output.dense). */
static int is_ffn_tensor(const char *name) {
    return strstr(name, ".mlp.") || strstr(name, ".intermediate.dense.") ||
           (strstr(name, ".output.dense.") && !strstr(name, ".attention."));
}

/* Whether a tensor is the attention block's GEMMs' (GPT-2's attn.c_attn
 * and attn.c_proj, BERT's query, key, value and attention.output.dense),
 * but BERT's key bias: its gradient is 0 but for rounding noise (a shift
 * of every score of a query, which the softmax cancels). */
static int is_attention_tensor(const char *name) {
    return strstr(name, ".attn.c_attn.") || strstr(name, ".attn.c_proj.") || strstr(name, ".self.query.") ||
           strstr(name, ".self.key.weight") || strstr(name, ".self.value.") || strstr(name, ".attention.output.dense.");
}

/* The tensors of a (bf16) against b (fp32) that `in_block` picks, each
 * within tol of its own largest |b|: the blocks' gradients are small beside
 * the head's at initialisation (BERT's by 50x), so lm_test_compare_tensors
 * (the largest over all tensors) alone would not see them go wrong.  (Not
 * every tensor: some gradients are 0 but for rounding noise, BERT's
 * attention key bias.)  Asserts that `expected` tensors were compared;
 * returns the worst. */
static double compare_block_tensors(const lm_param_set *set, const float *a, const float *b, double tol,
                                    const char *what, int (*in_block)(const char *), int expected) {
    double worst = 0.0;
    int seen = 0;
    for (size_t i = 0; i < set->n_descs; i++) {
        const lm_param_desc *d = &set->descs[i];
        if (!in_block(d->name)) continue;
        seen++;
        const size_t n = lm_test_desc_numel(d);
        double largest = 0.0;
        for (size_t j = 0; j < n; j++) largest = fmax(largest, fabs((double)b[d->offset + j]));
        ck_assert_msg(largest > 0.0, "%s: %s all zero", what, d->name);
        for (size_t j = 0; j < n; j++) {
            const double e = fabs((double)a[d->offset + j] - (double)b[d->offset + j]) / largest;
            ck_assert_msg(e <= tol, "%s: %s[%zu] = %.9g, fp32 %.9g (%.3g of the tensor's largest, tolerance %g)",
                          what, d->name, j, (double)a[d->offset + j], (double)b[d->offset + j], e, tol);
            worst = fmax(worst, e);
        }
    }
    ck_assert_int_eq(seen, expected);
    return worst;
}

/* The feed-forward block's tensors (2 layers x 2 GEMMs x weight and bias),
 * then the attention block's (GPT-2: 2 layers x 2 GEMMs x 2; BERT: 2 x 4
 * GEMMs x 2, less the key bias), each within tol of its own largest:
 * worst[0] and worst[1] get their worst. */
static void compare_blocks(const lm_param_set *set, const float *a, const float *b, int is_bert, double tol_ffn,
                           double tol_attention, const char *what, double worst[2]) {
    worst[0] = fmax(worst[0], compare_block_tensors(set, a, b, tol_ffn, what, is_ffn_tensor, 8));
    worst[1] = fmax(worst[1], compare_block_tensors(set, a, b, tol_attention, what, is_attention_tensor,
                                                    is_bert ? 14 : 8));
}

/* ---- the setting ---- */

START_TEST(setting) {
    const char *arch = lm_test_small_archs[_i];
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    /* Unset (auto) and fp32: no copy on the CPU; bf16: a BF16 copy of the
     * whole flat buffer (the block's GEMMs read their weights there), with
     * fp32 logits too. */
    const char *const values[] = {NULL, "auto", "fp32", "bf16"};
    const char *const fp32_logits[] = {"logits_dtype=fp32", NULL};
    for (int k = 0; k < 4; k++) {
        void *model = create(arch, values[k], fp32_logits);
        lm_param_set set = lm_test_params(vt, model);
        ck_assert_int_eq(set.params_copy != NULL, k == 3);
        ck_assert_int_eq(set.copy_dtype, set.params_copy ? LM_BF16 : LM_F32);
        ck_assert_int_eq(((model_base *)model)->activations_bf16, k == 3);
        vt->destroy(model);
    }
    /* An unknown value: one error naming the key and the values. */
    void *model = NULL;
    ck_assert_int_eq(lm_test_small_model_try_create(arch, FFN_TEST_DEVICE, "activation_dtype", "fp16", NULL, &model),
                     LM_ERR_INVALID);
    ck_assert_ptr_null(model);
    const char *msg = lm_error_message();
    ck_assert_msg(strstr(msg, "activation_dtype 'fp16'") && strstr(msg, "auto") && strstr(msg, "fp32") &&
                      strstr(msg, "bf16") && strstr(msg, "feed-forward") && strstr(msg, "attention") &&
                      !strchr(msg, '\n'),
                  "%s", msg);
    /* auto follows the device: bf16 on CUDA with precision=bf16; the CPU
     * computes in fp32 whatever the precision. */
    const char *const bf16_precision[] = {"precision=bf16", NULL};
    model = create(arch, NULL, bf16_precision);
#ifdef FFN_TEST_CUDA
    ck_assert_int_eq(((model_base *)model)->activations_bf16, 1);
#else
    ck_assert_int_eq(((model_base *)model)->activations_bf16, 0);
#endif
    vt->destroy(model);
}
END_TEST

/* ---- against fp32 ---- */

/* The loss of forward then backward, and of forward_train (the fused op),
 * and every gradient: bf16 activations (create_pair: logits fp32 or bf16,
 * eager or fused attention) against all fp32 (the same attention), from
 * the same weights, with dropout (the small models' default 0.1: the same
 * masks, drawn from the same key). */
START_TEST(loss_and_gradients_match_fp32) {
    void *models[2];
    char label[64];
    const char *arch = create_pair(_i, models, label, sizeof label);
    const int is_bert = _i % 2 == 1;
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    lm_step_state *states[2];
    lm_test_pair_init(vt, models, 77, 3, states);
    lm_test_assert_copy_is_rounded(vt, models[1], "after init");
    double worst_l = 0.0, worst_g = 0.0, worst_t[2] = {0.0, 0.0};
    for (int fused = 0; fused < 2; fused++) {
        worst_l = fmax(worst_l, lm_test_pair_loss_and_backward(vt, models, states, !is_bert, 40 + (uint64_t)fused, 3,
                                                               (uint64_t)fused, fused, TOL_LOSS, label));
        float *g0 = lm_test_read_grads(vt, models[0]), *g1 = lm_test_read_grads(vt, models[1]);
        lm_param_set set = lm_test_params(vt, models[1]);
        worst_g = fmax(worst_g, lm_test_compare_tensors(&set, g1, g0, TOL_GRADS, "gradients"));
        compare_blocks(&set, g1, g0, is_bert, TOL_TENSOR_GRADS, TOL_ATTENTION_TENSOR_GRADS, "gradients, per tensor",
                       worst_t);
        lm_free(g0);
        lm_free(g1);
    }
    printf("%s activation_dtype=bf16: loss within %.3g (relative), gradients within %.3g of the largest, each "
           "tensor's largest: feed-forward %.3g, attention %.3g\n",
           label, worst_l, worst_g, worst_t[0], worst_t[1]);
    worst_loss = fmax(worst_loss, worst_l);
    worst_grads = fmax(worst_grads, worst_g);
    for (int k = 0; k < 2; k++) worst_blocks[k] = fmax(worst_blocks[k], worst_t[k]);
    lm_test_pair_destroy(vt, models, states);
}
END_TEST

/* BERT's tanh GELU (hidden_act=gelu_new) takes the other branch of
 * gelu_forward_bf16 / gelu_backward_bf16: the same comparison. */
START_TEST(bert_tanh_gelu_matches_fp32) {
    const lm_architecture_vtable *vt = lm_test_arch_vtable("bert");
    const char *const fp32[] = {"hidden_act=gelu_new", NULL};
    void *models[2] = {create("bert", "fp32", fp32), create("bert", "bf16", fp32)};
    lm_step_state *states[2];
    lm_test_pair_init(vt, models, 78, 3, states);
    const double loss_err =
        lm_test_pair_loss_and_backward(vt, models, states, 0, 41, 3, 0, 0, TOL_LOSS, "bert gelu_new");
    float *g0 = lm_test_read_grads(vt, models[0]), *g1 = lm_test_read_grads(vt, models[1]);
    lm_param_set set = lm_test_params(vt, models[1]);
    const double err = lm_test_compare_tensors(&set, g1, g0, TOL_GRADS, "gradients (gelu_new)");
    double worst_t[2] = {0.0, 0.0};
    compare_blocks(&set, g1, g0, 1, TOL_TENSOR_GRADS, TOL_ATTENTION_TENSOR_GRADS, "gradients (gelu_new), per tensor",
                   worst_t);
    printf("bert hidden_act=gelu_new activation_dtype=bf16: loss within %.3g, gradients within %.3g of the largest, "
           "each tensor's largest: feed-forward %.3g, attention %.3g\n",
           loss_err, err, worst_t[0], worst_t[1]);
    lm_free(g0);
    lm_free(g1);
    lm_test_pair_destroy(vt, models, states);
}
END_TEST

/* 20 AdamW steps, all fp32 and bf16 activations (create_pair: logits fp32
 * or bf16, eager or fused attention) from the same weights on the same batches (the step's usual path:
 * forward_train, backward, clip, update): the losses track, the loss
 * falls, and after every step the copy the optimizer rewrote is the new
 * parameters rounded (the block's GEMMs read the updated weights). */
START_TEST(training_tracks_fp32) {
    void *models[2];
    char label[64];
    const char *arch = create_pair(_i, models, label, sizeof label);
    const int is_bert = _i % 2 == 1;
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    const lm_test_pair_training run = lm_test_pair_train(vt, models, !is_bert, TRAIN_STEPS, TOL_TRAIN, label);
    printf("%s activation_dtype=bf16: %d steps, losses within %.3g (relative) of fp32's; %.4f -> %.4f\n", label,
           TRAIN_STEPS, run.worst, (double)run.first, (double)run.last);
    worst_train = fmax(worst_train, run.worst);
    lm_test_pair_destroy(vt, models, NULL);
}
END_TEST

/* ---- recompute ---- */

/* Two bf16 models (bf16 logits too), identical but for `settings[1]`,
 * trained 3 steps from the same weights on one batch: losses, gradient
 * norms and weights bit for bit. */
static void check_same_bits(const char *arch, const char *const *settings[2], const char *label) {
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    void *models[2] = {create(arch, "bf16", settings[0]), create(arch, "bf16", settings[1])};
    lm_test_small_batch batch;
    lm_test_small_batch_make(&batch, strcmp(arch, "gpt2") == 0, 7, LM_TEST_SMALL_IDS_RANDOM);
    float losses[2][3], norms[2][3];
    float *params[2];
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq(vt->init_weights(models[m], 11), LM_OK);
        lm_test_train_steps(vt, models[m], &batch.batch, 3, losses[m], norms[m]);
        params[m] = lm_test_read_params(vt, models[m]);
    }
    const size_t n = lm_test_params(vt, models[0]).n_params;
    ck_assert_msg(memcmp(losses[0], losses[1], sizeof losses[0]) == 0, "%s %s: losses %.9g %.9g %.9g vs %.9g %.9g %.9g",
                  arch, label, (double)losses[0][0], (double)losses[0][1], (double)losses[0][2],
                  (double)losses[1][0], (double)losses[1][1], (double)losses[1][2]);
    ck_assert_msg(memcmp(norms[0], norms[1], sizeof norms[0]) == 0, "%s %s: gradient norms differ", arch, label);
    ck_assert_msg(memcmp(params[0], params[1], n * sizeof(float)) == 0, "%s %s: weights differ after 3 steps", arch,
                  label);
    for (int m = 0; m < 2; m++) {
        lm_free(params[m]);
        vt->destroy(models[m]);
    }
}

/* The attention dropout setting of a recompute case. */
static void attention_dropout_setting(char *out, size_t cap, const char *arch, const lm_test_recompute_case *rc) {
    snprintf(out, cap, "%s=%s", strcmp(arch, "bert") == 0 ? "attention_probs_dropout_prob" : "attn_pdrop",
             rc->attention_dropout);
}

/* The recompute tests' _i: the case (_i % LM_TEST_RECOMPUTE_CASES) and the
 * attention (_i / LM_TEST_RECOMPUTE_CASES: eager, sdpa). */
#define RECOMPUTE_LOOPS (2 * (int)LM_TEST_RECOMPUTE_CASES)
#define RECOMPUTE_CASE(i) (&lm_test_recompute_cases[(size_t)(i) % LM_TEST_RECOMPUTE_CASES])
#define RECOMPUTE_ATTENTION(i) (attention_settings[(size_t)(i) / LM_TEST_RECOMPUTE_CASES])

/* BERT: each recompute case (with attention dropout and without, eager and
 * fused attention) trains with bf16 activations to the bits of the run
 * that keeps every layer's (backward rebuilds inter_gelu with the forward's
 * gelu_forward_bf16 on the layer's own inter, the attention's input_bf16
 * with the forward's conversion of the layer's own input, and the eager
 * attention's probabilities with its forward on the same bf16 q/k/v). */
START_TEST(bert_recompute_gives_the_same_bits) {
    const lm_test_recompute_case *rc = RECOMPUTE_CASE(_i);
    char dropout[64];
    attention_dropout_setting(dropout, sizeof dropout, "bert", rc);
    const char *const kept[] = {"logits_dtype=bf16", dropout, RECOMPUTE_ATTENTION(_i), NULL};
    const char *const rebuilt[] = {"logits_dtype=bf16", dropout, RECOMPUTE_ATTENTION(_i), rc->setting, NULL};
    const char *const *settings[2] = {kept, rebuilt};
    char label[96];
    snprintf(label, sizeof label, "%s %s", rc->setting, RECOMPUTE_ATTENTION(_i));
    check_same_bits("bert", settings, label);
}
END_TEST

/* GPT-2 under recompute runs c_fc and its GELU as two ops (the GELU of the
 * rounded product: the one backward can rebuild from fch_bf16), where the
 * kept path runs the fused op (the GELU of the unrounded product, as
 * cuBLASLt's epilogue computes it): the two differ by up to one bf16 step
 * of fch_gelu, by design (backend_ops.def).  So the recompute cases agree
 * with each other to the bit (the forward's split ops and backward's
 * rebuild are the same whichever buffers are shared), and with the kept
 * path within TOL_RECOMPUTE_*: measured 4.5e-6 (loss, relative), 2.4e-3
 * (gradients, of the largest) and 4.6e-3 (each feed-forward or attention
 * tensor's, of its own largest), bounds 2e-5, 5e-3 and 1e-2; a stale
 * rebuild (another layer's fch_gelu, or ln_2's or ln_1's rounding: the
 * latter gives c_attn 0.37 of its largest) fails them.  The attention adds
 * nothing inexact here: its rebuilds (recompute=attention's probabilities,
 * recompute=activations' dropout, ln_1 and its rounding) are the forward's
 * ops on the same inputs. */
#define TOL_RECOMPUTE_LOSS 2e-5
#define TOL_RECOMPUTE_GRADS 5e-3
#define TOL_RECOMPUTE_TENSOR_GRADS 1e-2
START_TEST(gpt2_recompute_agrees) {
    const lm_test_recompute_case *rc = RECOMPUTE_CASE(_i);
    const char *attention = RECOMPUTE_ATTENTION(_i);
    char dropout[64];
    attention_dropout_setting(dropout, sizeof dropout, "gpt2", rc);
    const char *const kept[] = {"logits_dtype=bf16", dropout, attention, NULL};
    const char *const rebuilt[] = {"logits_dtype=bf16", dropout, attention, rc->setting, NULL};
    if (strcmp(rc->setting, "recompute=attention") == 0) {
        const char *const activations[] = {"logits_dtype=bf16", dropout, attention, "recompute=activations", NULL};
        const char *const *settings[2] = {activations, rebuilt};
        check_same_bits("gpt2", settings, "recompute=activations and =attention");
    }
    const lm_architecture_vtable *vt = lm_test_arch_vtable("gpt2");
    void *models[2] = {create("gpt2", "bf16", kept), create("gpt2", "bf16", rebuilt)};
    lm_step_state *states[2];
    lm_test_pair_init(vt, models, 11, 5, states);
    char label[96];
    snprintf(label, sizeof label, "gpt2 %s %s against kept", rc->setting, attention);
    const double loss_err =
        lm_test_pair_loss_and_backward(vt, models, states, 1, 7, 5, 0, 0, TOL_RECOMPUTE_LOSS, label);
    float *g0 = lm_test_read_grads(vt, models[0]), *g1 = lm_test_read_grads(vt, models[1]);
    lm_param_set set = lm_test_params(vt, models[1]);
    const double err = lm_test_compare_tensors(&set, g1, g0, TOL_RECOMPUTE_GRADS, "gradients under recompute");
    double worst_t[2] = {0.0, 0.0};
    compare_blocks(&set, g1, g0, 0, TOL_RECOMPUTE_TENSOR_GRADS, TOL_RECOMPUTE_TENSOR_GRADS,
                   "gradients under recompute, per tensor", worst_t);
    printf("gpt2 activation_dtype=bf16 %s %s, attention dropout %s: loss within %.3g, gradients within %.3g of the "
           "kept path's largest, each tensor's largest: feed-forward %.3g, attention %.3g\n",
           rc->setting, attention, rc->attention_dropout, loss_err, err, worst_t[0], worst_t[1]);
    lm_free(g0);
    lm_free(g1);
    lm_test_pair_destroy(vt, models, states);
}
END_TEST

/* ---- memory: the arena's size ---- */

/* The activation arena's bytes (model_base.act_capacity) after staging a
 * B x T batch (upload_batch: the arena is carved, nothing computed). */
static size_t arena_bytes(const lm_architecture_vtable *vt, void *model, int B, int T, int32_t vocab) {
    int32_t *ids = calloc((size_t)B * (size_t)T, sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (int i = 0; i < B * T; i++) ids[i] = (i * 7) % vocab;
    lm_batch batch;
    memset(&batch, 0, sizeof batch);
    batch.struct_size = sizeof batch;
    batch.B = B;
    batch.T = T;
    batch.input_ids = ids;
    uint64_t signature = 0;
    ck_assert_msg(vt->upload_batch(model, &batch, &signature) == LM_OK, "%s", lm_error_message());
    free(ids);
    return ((model_base *)model)->act_capacity * sizeof(float);
}

/* bf16 activations save, per layer, what backward reads of the two blocks
 * less their bf16 copies: the feed-forward block's fp32 input and two
 * [N, 4C] buffers; the attention block's input (GPT-2's ln_1 output; BERT's
 * has none in fp32, the layer's input, but gains its bf16 copy), q, k, v
 * ([N, 3C] in GPT-2, three [N, C] in BERT) and its output; less, in BERT,
 * one fp32 LayerNorm-output scratch for all layers (ln1, res2's input;
 * GPT-2's ln_1 and ln_2 write their bf16 rounding only); and in
 * backward's scratch the fp32 [N, 4C] gradient less its bf16 copy, and the bf16 copies of the
 * branch gradient and of dqkv (gpt2_forward.c, bert_forward.c): exactly,
 * in the arena's 256-byte blocks, with either attention (the same
 * probabilities or log-sum-exp in both). */
START_TEST(arena_saves_the_bf16_bytes) {
    const char *arch = lm_test_small_archs[_i % 2];
    const int is_bert = _i % 2 == 1;
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    const char *const extra[] = {logits_settings[(_i / 2) % 2], attention_settings[_i / 4], NULL};
    void *models[2] = {create(arch, "fp32", extra), create(arch, "bf16", extra)};
    size_t bytes[2];
    for (int m = 0; m < 2; m++) bytes[m] = arena_bytes(vt, models[m], LM_TEST_SMALL_B, LM_TEST_SMALL_T, 300);
    /* The small models: 2 layers, width 32, GPT-2's 4C = 128, BERT's I = 64. */
    const size_t L = 2, NC = (size_t)N * 32, NH = (size_t)N * (is_bert ? 64 : 128);
#define R(n) model_arena_round(n)
    const size_t ffn = R(NC) + 2 * R(NH) - R(NC / 2) - 2 * R(NH / 2);
    const size_t attention =
        is_bert ? 4 * R(NC) - 5 * R(NC / 2) : 2 * R(NC) + R(3 * NC) - 2 * R(NC / 2) - R(3 * NC / 2);
    const size_t ln_scratch = is_bert ? R(NC) : 0;
    const size_t saved_floats = L * (ffn + attention) - ln_scratch + R(NH) - R(NC / 2) - R(NH / 2) - R(3 * NC / 2);
#undef R
    printf("%s %s %s: activation arena %zu bytes fp32, %zu bytes bf16 activations (%zu saved)\n", arch,
           logits_settings[(_i / 2) % 2], attention_settings[_i / 4], bytes[0], bytes[1], bytes[0] - bytes[1]);
    ck_assert_uint_eq(bytes[0] - bytes[1], saved_floats * sizeof(float));
    for (int m = 0; m < 2; m++) vt->destroy(models[m]);
}
END_TEST

/* The activation arena of a large model at 8 x 128 (`model_settings`
 * over the small model's: the later value of a key wins) with fp32 and bf16
 * activations, logits fp32 and bf16, eager and fused attention, with and
 * without recompute=activations, printed. */
static void report_arena(const char *arch, const char *label, const char *const *model_settings, int32_t vocab) {
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    for (int attention = 0; attention < 2; attention++)
        for (int recompute = 0; recompute < 2; recompute++)
            for (int logits = 0; logits < 2; logits++)
                for (int activations = 0; activations < 2; activations++) {
                    const char *settings[12];
                    int n = 0;
                    for (const char *const *k = model_settings; *k; k++) settings[n++] = *k;
                    settings[n++] = logits_settings[logits];
                    settings[n++] = attention_settings[attention];
                    settings[n++] = recompute ? "recompute=activations" : "recompute=none";
                    settings[n] = NULL;
                    void *model = create(arch, activations ? "bf16" : "fp32", settings);
                    const size_t bytes = arena_bytes(vt, model, 8, 128, vocab);
                    printf("%s 8 x 128, %s, recompute=%s, %s, activation_dtype=%s: %zu bytes (%.1f MiB)\n", label,
                           attention_settings[attention], recompute ? "activations" : "none", logits_settings[logits],
                           activations ? "bf16" : "fp32", bytes, (double)bytes / 1048576.0);
                    vt->destroy(model);
                }
}

/* GPT-2 124M (n_embd 768, 12 layers, 12 heads, vocabulary 50257, the
 * Hugging Face defaults' dropout) and BERT-base (hidden 768, 12 layers, 12
 * heads, intermediate 3072, vocabulary 30522; its logits have their own
 * allocation, outside the arena) at 8 x 128.  Only with
 * LMCORE_TEST_REPORT_124M=1 (up to 1 GB per model); the numbers are
 * docs/benchmarks.md's. */
START_TEST(report_gpt2_124m_and_bert_base) {
    if (!getenv("LMCORE_TEST_REPORT_124M")) return;
    const char *const gpt2[] = {"vocab_size=50257", "n_layer=12", "n_head=12", "n_embd=768", "n_positions=1024",
                                NULL};
    report_arena("gpt2", "GPT-2 124M", gpt2, 50257);
    const char *const bert[] = {"vocab_size=30522",      "num_hidden_layers=12",        "num_attention_heads=12",
                                "hidden_size=768",       "intermediate_size=3072",      "max_position_embeddings=512",
                                NULL};
    report_arena("bert", "BERT-base", bert, 30522);
}
END_TEST

static Suite *bf16_ffn_suite(void) {
    Suite *s = suite_create("bf16_ffn");
    TCase *tc = tcase_create("models");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, setting, 0, 2);
    tcase_add_loop_test(tc, loss_and_gradients_match_fp32, 0, COMPARISON_CASES);
    tcase_add_test(tc, bert_tanh_gelu_matches_fp32);
    tcase_add_loop_test(tc, training_tracks_fp32, 0, COMPARISON_CASES);
    tcase_add_loop_test(tc, bert_recompute_gives_the_same_bits, 0, RECOMPUTE_LOOPS);
    tcase_add_loop_test(tc, gpt2_recompute_agrees, 0, RECOMPUTE_LOOPS);
    tcase_add_loop_test(tc, arena_saves_the_bf16_bytes, 0, COMPARISON_CASES);
    tcase_add_test(tc, report_gpt2_124m_and_bert_base);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_main_for_device(FFN_TEST_DEVICE, bf16_ffn_suite); }
