/* BERT parity with PyTorch / Hugging Face (llm.c's test_gpt2.c, for BERT).
 *
 * The fixture (fixtures/gen_bert_fixture.py) is a tiny BertForMaskedLM saved
 * by save_pretrained, one batch with padding, token types and MLM labels,
 * and what transformers computed: the logits, the loss, every gradient, and
 * 10 AdamW steps with clipping.  The plugin reads the same config.json
 * (hf_config) and model.safetensors and must agree. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert_test_util.h"
#include "lmcore/tensor.h"
#include "forward_train_check.h"
#include "model_steps.h"
#include "test_main.h"

/* The CUDA build compiles this suite a second time with BERT_TEST_DEVICE
 * "cuda" (label gpu): same fixture, same tolerances, plus a CPU/GPU check. */
#ifndef BERT_TEST_DEVICE
#define BERT_TEST_DEVICE "cpu"
#endif
/* The CUDA build also compiles it with BERT_TEST_PRECISION "bf16": the
 * same fixture with the looser bf16 tolerances of parity_tolerances.h. */
#ifndef BERT_TEST_PRECISION
#define BERT_TEST_PRECISION "fp32"
#else
#define LM_PARITY_BF16 /* only the bf16 build names a precision */
#endif
#include "parity_tolerances.h"

static const char *const tiny_model[] = {"device=" BERT_TEST_DEVICE, "precision=" BERT_TEST_PRECISION,
                                         "hf_config=" BERT_TINY_CONFIG, NULL};
static const char *const tiny_model_sdpa[] = {"device=" BERT_TEST_DEVICE, "precision=" BERT_TEST_PRECISION,
                                              "hf_config=" BERT_TINY_CONFIG, "attn_implementation=sdpa", NULL};
static const char *const tiny_model_dropout[] = {"device=" BERT_TEST_DEVICE, "hf_config=" BERT_TINY_CONFIG,
                                               "hidden_dropout_prob=0.1", "attention_probs_dropout_prob=0.1", NULL};

static void check_forward_backward_match_pytorch(const char *const *config) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(config);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);

    lm_arch_info info;
    ck_assert_int_eq(vt->info(model, &info), LM_OK);
    ck_assert_str_eq(info.model_type, "bert");
    ck_assert_int_eq(info.causal, 0);
    ck_assert_int_eq(info.uses_token_types, 1);
    ck_assert_int_eq(info.vocab_size, 512);
    ck_assert_int_eq(info.max_positions, 64);
    /* embeddings (word, position, type, LN) + 2 layers + head (bias, dense, LN); decoder tied */
    const int64_t H = 64, I = 128;
    const int64_t layer = 4 * (H * H + H) + 2 * H + (I * H + I) + (H * I + H) + 2 * H;
    ck_assert_int_eq(info.n_params, 512 * H + 64 * H + 2 * H + 2 * H + 2 * layer + 512 + H * H + H + 2 * H);

    float loss = 0.0f;
    lm_step_state *state = lm_test_state_new(vt, model, 0, 0);
    ck_assert_msg(lm_test_forward(vt, model, &fb.batch, state, &loss) == LM_OK, "%s", lm_error_message());
    float ref_loss = bert_test_ref_scalar("loss", 0);
    double loss_rel = fabs((double)loss - ref_loss) / fabs((double)ref_loss);
    printf("bert parity (" BERT_TEST_DEVICE ", " BERT_TEST_PRECISION "): loss %.7f (pytorch %.7f), relative error %.2e, %lld targets\n", loss, ref_loss, loss_rel,
           (long long)fb.n_targets);
    ck_assert_msg(loss_rel < TOL_LOSS, "loss %.7f vs pytorch %.7f", loss, ref_loss);

    size_t n_logits = (size_t)fb.batch.B * (size_t)fb.batch.T * 512;
    float *logits = malloc(n_logits * sizeof(float));
    ck_assert_msg(vt->logits(model, logits, n_logits) == LM_OK, "%s", lm_error_message());
    lm_safetensors *ref = NULL;
    ck_assert_int_eq(lm_safetensors_open(BERT_REF_PATH, &ref), LM_OK);
    lm_tensor ref_logits;
    ck_assert_int_eq(lm_safetensors_find(ref, "logits", &ref_logits), LM_OK);
    ck_assert_int_eq(lm_tensor_numel(&ref_logits), (int64_t)n_logits);
    double err, mag;
    bert_test_compare(logits, ref_logits.data, n_logits, &err, &mag);
    printf("bert parity (" BERT_TEST_DEVICE ", " BERT_TEST_PRECISION "): logits max abs error %.3e (max |logit| %.3f, relative %.2e)\n", err, mag, err / mag);
    ck_assert_msg(err / mag < TOL_LOGITS, "logits differ from pytorch: max abs error %g", err);
    free(logits);
    lm_safetensors_close(ref);

    ck_assert_msg(vt->backward(model, 1.0f, 0) == LM_OK, "%s", lm_error_message());
    float *grads = lm_test_read_grads(vt, model);
    float *ref_grads = bert_test_read_named(model, BERT_GRADS_PATH);
    const lm_param_set set = lm_test_params(vt, model);
    ck_assert_uint_eq(set.n_params, (size_t)info.n_params);
    ck_assert_int_eq(set.grad_dtype, LM_F32);
    ck_assert_ptr_nonnull(set.device);
    const lm_param_desc *descs = set.descs;
    size_t count = set.n_descs;
    ck_assert_int_eq(count, 5 + 2 * 16 + 5);
    double worst = 0.0;
    const char *worst_name = "";
    for (size_t i = 0; i < count; i++) {
        size_t n = 1;
        for (int d = 0; d < descs[i].ndim; d++) n *= (size_t)descs[i].shape[d];
        bert_test_compare(grads + descs[i].offset, ref_grads + descs[i].offset, n, &err, &mag);
        double rel = err / (mag > 0 ? mag : 1.0);
        if (strstr(descs[i].name, "attention.self.key.bias")) {
            /* Analytically zero: a key bias adds q·b to every score of a
             * query, which the softmax ignores.  Both sides are rounding noise. */
            ck_assert_msg(mag < 1e-8 && err < 1e-8, "%s: gradient %g (pytorch %g) should be ~0", descs[i].name, err,
                          mag);
            continue;
        }
        if (!(rel <= worst)) {
            worst = rel;
            worst_name = descs[i].name;
        }
        ck_assert_msg(mag > 0.0, "reference gradient of %s is all zeros: the fixture tests nothing", descs[i].name);
        ck_assert_msg(rel < TOL_GRADS, "gradient of %s: max abs error %g, max |grad| %g (relative %.2e)", descs[i].name,
                      err, mag, rel);
    }
    printf("bert parity (" BERT_TEST_DEVICE ", " BERT_TEST_PRECISION "): %zu gradients, worst relative error %.2e (%s)\n", count, worst, worst_name);

    /* The padding row (id 0, present at attended positions) gets the tied
     * decoder's gradient only: nn.Embedding(padding_idx=0) drops the lookup's. */
    const lm_param_desc *word = bert_test_find_param(model, "bert.embeddings.word_embeddings.weight");
    bert_test_compare(grads + word->offset, ref_grads + word->offset, 64, &err, &mag);
    ck_assert_msg(mag > 0.0 && err / mag < TOL_GRADS, "padding row gradient: error %g of %g", err, mag);
    /* The next backward without a forward is refused: dlogits are spent. */
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_ERR_INVALID);
    ck_assert_int_eq(vt->backward(model, 1.0f, 1), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "once per forward"), "%s", lm_error_message());

    lm_free(grads);
    lm_free(ref_grads);
    lm_test_state_free(vt, model, state);
    bert_test_free_batch(&fb);
    vt->destroy(model);
}

START_TEST(test_forward_backward_match_pytorch) { check_forward_backward_match_pytorch(tiny_model); }
END_TEST

/* The same with the fused attention (attn_implementation=sdpa). */
START_TEST(test_forward_backward_match_pytorch_sdpa) { check_forward_backward_match_pytorch(tiny_model_sdpa); }
END_TEST

/* 10 Trainer-style steps on the same batch: AdamW (decay on all but biases and
 * LayerNorm weights) after clipping the global norm to 1.0. */
static void check_adamw_steps_match_pytorch(const char *const *config) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(config);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    float ref_losses[LM_TEST_PARITY_STEPS], ref_norms[LM_TEST_PARITY_STEPS];
    for (size_t step = 0; step < LM_TEST_PARITY_STEPS; step++) {
        ref_losses[step] = bert_test_ref_scalar("step_losses", step);
        ref_norms[step] = bert_test_ref_scalar("step_grad_norms", step);
    }
    lm_test_check_adamw_parity(vt, model, &fb.batch, ref_losses, ref_norms, bert_test_ref_scalar("final_loss", 0),
                               TOL_LOSS, TOL_NORM, "bert parity (" BERT_TEST_DEVICE ", " BERT_TEST_PRECISION ")");
    bert_test_free_batch(&fb);
    vt->destroy(model);
}

START_TEST(test_adamw_steps_match_pytorch) { check_adamw_steps_match_pytorch(tiny_model); }
END_TEST

/* The same with the fused attention (attn_implementation=sdpa). */
START_TEST(test_adamw_steps_match_pytorch_sdpa) { check_adamw_steps_match_pytorch(tiny_model_sdpa); }
END_TEST

/* Dropout configured but the model in eval mode: deterministic and exactly
 * the reference, whatever the seed and step. */
START_TEST(test_eval_mode_is_deterministic) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(tiny_model_dropout);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    float ref_loss = bert_test_ref_scalar("loss", 0);

    float train_a, train_b, eval_a, eval_b;
    size_t n_logits = (size_t)fb.batch.B * (size_t)fb.batch.T * 512;
    float *logits_a = malloc(n_logits * sizeof(float)), *logits_b = malloc(n_logits * sizeof(float));
    float *ref_logits = malloc(n_logits * sizeof(float));
    lm_safetensors *ref = NULL;
    lm_tensor t;
    ck_assert_int_eq(lm_safetensors_open(BERT_REF_PATH, &ref), LM_OK);
    ck_assert_int_eq(lm_safetensors_find(ref, "logits", &t), LM_OK);
    memcpy(ref_logits, t.data, n_logits * sizeof(float));
    lm_safetensors_close(ref);
    double err, mag;
    lm_step_state *state = lm_test_state_new(vt, model, 7, 0);
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &train_a), LM_OK);
    ck_assert_int_eq(vt->logits(model, logits_a, n_logits), LM_OK);
    bert_test_compare(logits_a, ref_logits, n_logits, &err, &mag);
    /* A random model's loss barely moves with dropout; its logits do. */
    ck_assert_msg(err / mag > 1e-2, "dropout 0.1 in training changed the logits by %g only", err);
    lm_test_state_key(vt, model, state, 7, 1);
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &train_b), LM_OK);
    ck_assert_int_eq(vt->logits(model, logits_b, n_logits), LM_OK);
    ck_assert_msg(train_a != train_b && memcmp(logits_a, logits_b, n_logits * sizeof(float)) != 0,
                  "another micro-batch must draw other dropout masks");
    ck_assert_int_eq(vt->set_training(model, 0), LM_OK);
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &eval_a), LM_OK);
    ck_assert_int_eq(vt->logits(model, logits_a, n_logits), LM_OK);
    lm_test_state_key(vt, model, state, 8, 123);
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &eval_b), LM_OK);
    ck_assert_int_eq(vt->logits(model, logits_b, n_logits), LM_OK);
    ck_assert(eval_a == eval_b);
    ck_assert(memcmp(logits_a, logits_b, n_logits * sizeof(float)) == 0);
    /* In eval mode inference needs no step state: the same logits, and the
     * loss is written nowhere. */
    ck_assert_msg(vt->forward(model, &fb.batch, NULL) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(vt->logits(model, logits_b, n_logits), LM_OK);
    ck_assert(memcmp(logits_a, logits_b, n_logits * sizeof(float)) == 0);
    ck_assert(lm_test_state_read(vt, model, state).loss == eval_b);
    /* Back in training mode, a forward without its dropout key is refused. */
    ck_assert_int_eq(vt->set_training(model, 1), LM_OK);
    ck_assert_int_eq(vt->forward(model, &fb.batch, NULL), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "step state"), "%s", lm_error_message());
    ck_assert_int_eq(vt->set_training(model, 0), LM_OK);
    ck_assert_msg(fabs((double)eval_a - ref_loss) / ref_loss < 1e-5, "eval loss %f vs %f", eval_a, ref_loss);
    bert_test_compare(logits_a, ref_logits, n_logits, &err, &mag);
    ck_assert_msg(err / mag < 1e-4, "eval logits differ from the reference by %g", err);
    free(ref_logits);
    free(logits_a);
    free(logits_b);
    lm_test_state_free(vt, model, state);
    bert_test_free_batch(&fb);
    vt->destroy(model);
}
END_TEST

/* Dropout on: backward must use the forward's masks (attention
 * probabilities, attention output, feed-forward output, embeddings).  For a
 * few tensors, the derivative of the (deterministic for a fixed seed and
 * step) training loss along the tensor's own gradient direction g/|g|, by
 * central differences, must equal |g|.  A directional derivative is far
 * above float32 noise even where single entries are small. */
START_TEST(test_dropout_gradients_finite_differences) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(tiny_model_dropout);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    lm_step_state *state = lm_test_state_new(vt, model, 99, 5);
    size_t n = (size_t)bert_test_n_params(model);
    float *params = lm_test_read_params(vt, model), *moved = NULL;
    ck_assert_int_eq(lm_alloc((void **)&moved, n * sizeof(float), "moved"), LM_OK);

    float loss, again;
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);
    float *grads = lm_test_read_grads(vt, model);
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &again), LM_OK);
    ck_assert_msg(loss == again, "same seed and micro-batch must give the same masks");
    lm_test_state_key(vt, model, state, 100, 5);
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &again), LM_OK);
    ck_assert_msg(loss != again, "another seed must draw other masks");
    lm_test_state_key(vt, model, state, 99, 5);

    const char *names[] = {"bert.embeddings.word_embeddings.weight",
                           "bert.embeddings.position_embeddings.weight",
                           "bert.embeddings.LayerNorm.weight",
                           "bert.encoder.layer.0.attention.self.query.weight",
                           "bert.encoder.layer.0.attention.self.value.weight",
                           "bert.encoder.layer.0.attention.output.dense.bias",
                           "bert.encoder.layer.1.attention.self.value.bias",
                           "bert.encoder.layer.1.intermediate.dense.weight",
                           "bert.encoder.layer.1.output.LayerNorm.weight",
                           "cls.predictions.transform.dense.weight"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const lm_param_desc *d = bert_test_find_param(model, names[k]);
        size_t numel = 1;
        for (int j = 0; j < d->ndim; j++) numel *= (size_t)d->shape[j];
        double norm = 0.0;
        for (size_t j = 0; j < numel; j++) norm += (double)grads[d->offset + j] * grads[d->offset + j];
        norm = sqrt(norm);
        const double h = 1e-2;
        float plus, minus;
        for (int sign = 1; sign >= -1; sign -= 2) {
            memcpy(moved, params, n * sizeof(float));
            for (size_t j = 0; j < numel; j++)
                moved[d->offset + j] += (float)(sign * h * grads[d->offset + j] / norm);
            lm_test_write_params(vt, model, moved);
            ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, sign > 0 ? &plus : &minus), LM_OK);
        }
        double numeric = ((double)plus - (double)minus) / (2.0 * h);
        double rel = fabs(numeric - norm) / norm;
        printf("bert dropout gradient %s: |g| %.6e, directional finite difference %.6e (relative %.2e)\n", names[k],
               norm, numeric, rel);
        ck_assert_msg(norm > 1e-3, "gradient of %s too small to check", names[k]);
        ck_assert_msg(rel < 1e-2, "%s: |g| %g vs finite difference %g", names[k], norm, numeric);
    }
    lm_free(params);
    lm_free(grads);
    lm_free(moved);
    lm_test_state_free(vt, model, state);
    bert_test_free_batch(&fb);
    vt->destroy(model);
}
END_TEST

/* Device builds only: with dropout on, the CPU and the device draw the same
 * masks (counter-based RNG), so a training step agrees across backends. */
START_TEST(test_device_matches_cpu_with_dropout) {
    const lm_architecture_vtable *vt = bert_test_arch();
    const char *const on_cpu[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, "hidden_dropout_prob=0.1",
                                  "attention_probs_dropout_prob=0.1", NULL};
    void *models[2] = {bert_test_create_ok(on_cpu), bert_test_create_ok(tiny_model_dropout)};
    size_t n = (size_t)bert_test_n_params(models[0]);
    float *grads[2], losses[2];
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    for (int k = 0; k < 2; k++) {
        bert_test_load_weights(models[k], BERT_TINY_WEIGHTS);
        lm_step_state *state = lm_test_state_new(vt, models[k], 1234, 77);
        ck_assert_msg(lm_test_forward(vt, models[k], &fb.batch, state, &losses[k]) == LM_OK, "%s",
                      lm_error_message());
        ck_assert_msg(vt->backward(models[k], 1.0f, 0) == LM_OK, "%s", lm_error_message());
        grads[k] = lm_test_read_grads(vt, models[k]);
        lm_test_state_free(vt, models[k], state);
    }
    double err, mag;
    bert_test_compare(grads[1], grads[0], n, &err, &mag);
    printf("bert %s vs cpu with dropout: loss %.7f vs %.7f, gradients max abs error %.2e (max %.2e)\n",
           BERT_TEST_DEVICE, losses[1], losses[0], err, mag);
    ck_assert_msg(fabs((double)losses[1] - losses[0]) / losses[0] < 1e-5, "loss %f vs %f", losses[1], losses[0]);
    ck_assert_msg(err / mag < 1e-4, "gradients differ: %g", err);
    for (int k = 0; k < 2; k++) {
        lm_free(grads[k]);
        vt->destroy(models[k]);
    }
    bert_test_free_batch(&fb);
}
END_TEST

/* A setting that changes how the model computes but not what: three AdamW
 * steps with dropout, token types and a padding mask must agree bit for bit
 * with the model without it, on the same device.  attention_dropout: the
 * attention probabilities' dropout (the hidden dropout is 0.1). */
static void check_setting_changes_nothing(const char *setting, const char *attention_dropout) {
    const lm_architecture_vtable *vt = bert_test_arch();
    char attn[64];
    snprintf(attn, sizeof attn, "attention_probs_dropout_prob=%s", attention_dropout);
    const char *const plain[] = {"device=" BERT_TEST_DEVICE, "precision=" BERT_TEST_PRECISION,
                                 "hf_config=" BERT_TINY_CONFIG, "hidden_dropout_prob=0.1", attn, NULL};
    const char *const varied[] = {"device=" BERT_TEST_DEVICE, "precision=" BERT_TEST_PRECISION,
                                  "hf_config=" BERT_TINY_CONFIG, "hidden_dropout_prob=0.1", attn, setting, NULL};
    void *models[2] = {bert_test_create_ok(plain), bert_test_create_ok(varied)};
    const size_t n = (size_t)bert_test_n_params(models[0]);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    ck_assert_ptr_nonnull(fb.batch.attention_mask); /* the fixture pads: the recomputed mask path runs */
    float losses[2][3], norms[2][3], *params[2];
    for (int k = 0; k < 2; k++) {
        bert_test_load_weights(models[k], BERT_TINY_WEIGHTS);
        lm_test_train_steps(vt, models[k], &fb.batch, 3, losses[k], norms[k]);
        params[k] = lm_test_read_params(vt, models[k]);
    }
    ck_assert_msg(memcmp(losses[0], losses[1], sizeof losses[0]) == 0, "%s: losses differ", setting);
    ck_assert_msg(memcmp(norms[0], norms[1], sizeof norms[0]) == 0, "%s: gradient norms differ", setting);
    ck_assert_msg(memcmp(params[0], params[1], n * sizeof(float)) == 0, "%s: parameters differ after 3 steps",
                  setting);
    for (int k = 0; k < 2; k++) {
        lm_free(params[k]);
        vt->destroy(models[k]); /* a profiled model logs its table here */
    }
    bert_test_free_batch(&fb);
}

/* profile_ops=true times every op through a wrapping backend. */
START_TEST(test_op_profile_changes_nothing) { check_setting_changes_nothing("profile_ops=true", "0.1"); }
END_TEST

/* recompute=activations and recompute=attention keep one buffer for all
 * layers of what backward can rebuild, and rebuild it. */
START_TEST(test_recompute_changes_nothing) {
    for (size_t i = 0; i < LM_TEST_RECOMPUTE_CASES; i++)
        check_setting_changes_nothing(lm_test_recompute_cases[i].setting,
                                         lm_test_recompute_cases[i].attention_dropout);
}
END_TEST

/* The fused classifier on the sparse MLM head (the scored rows only):
 * training through forward_train (the trainer's call: loss and dlogits in
 * one op) gives the weights of forward + backward, bit for bit on the CPU,
 * within the last ulps on a GPU.  With dropout, padding and token types,
 * two micro-batches per step. */
START_TEST(test_forward_train_changes_nothing) {
    const lm_architecture_vtable *vt = bert_test_arch();
    const char *const settings[] = {"device=" BERT_TEST_DEVICE, "precision=" BERT_TEST_PRECISION,
                                    "hf_config=" BERT_TINY_CONFIG, "hidden_dropout_prob=0.1",
                                    "attention_probs_dropout_prob=0.1", NULL};
    void *models[2] = {bert_test_create_ok(settings), bert_test_create_ok(settings)};
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    for (int k = 0; k < 2; k++) bert_test_load_weights(models[k], BERT_TINY_WEIGHTS);
    const int on_cpu = strcmp(BERT_TEST_DEVICE, "cpu") == 0, fp32 = strcmp(BERT_TEST_PRECISION, "fp32") == 0;
    lm_test_check_forward_train(vt, models, &fb.batch, on_cpu ? -1.0 : fp32 ? 1e-5 : 1e-2,
                                "bert " BERT_TEST_DEVICE " " BERT_TEST_PRECISION);
    for (int k = 0; k < 2; k++) vt->destroy(models[k]);
    bert_test_free_batch(&fb);
}
END_TEST

/* attn_implementation=eager and =sdpa train alike on the fixture's padded
 * batch: three AdamW steps with both dropouts at 0.1, the same dropout key
 * (the same attention probabilities dropped), within the tolerances of
 * lm_test_check_implementations_agree (tests/common/model_steps.h). */
START_TEST(test_attention_implementations_agree) {
    const lm_architecture_vtable *vt = bert_test_arch();
    const char *const eager[] = {"device=" BERT_TEST_DEVICE, "precision=" BERT_TEST_PRECISION,
                                 "hf_config=" BERT_TINY_CONFIG, "hidden_dropout_prob=0.1",
                                 "attention_probs_dropout_prob=0.1", "attn_implementation=eager", NULL};
    const char *const sdpa[] = {"device=" BERT_TEST_DEVICE, "precision=" BERT_TEST_PRECISION,
                                "hf_config=" BERT_TINY_CONFIG, "hidden_dropout_prob=0.1",
                                "attention_probs_dropout_prob=0.1", "attn_implementation=sdpa", NULL};
    void *models[2] = {bert_test_create_ok(eager), bert_test_create_ok(sdpa)};
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    ck_assert_ptr_nonnull(fb.batch.attention_mask); /* the fixture pads */
    float losses[2][3], norms[2][3], *params[2];
    float *initial = NULL;
    for (int k = 0; k < 2; k++) {
        bert_test_load_weights(models[k], BERT_TINY_WEIGHTS);
        if (k == 0) initial = lm_test_read_params(vt, models[k]);
        lm_test_train_steps(vt, models[k], &fb.batch, 3, losses[k], norms[k]);
        params[k] = lm_test_read_params(vt, models[k]);
    }
    lm_test_check_implementations_agree("bert", losses, norms, initial, params,
                                        (size_t)bert_test_n_params(models[0]));
    for (int k = 0; k < 2; k++) {
        lm_free(params[k]);
        vt->destroy(models[k]);
    }
    lm_free(initial);
    bert_test_free_batch(&fb);
}
END_TEST

static Suite *bert_parity_suite(void) {
    Suite *s = suite_create("bert_parity_" BERT_TEST_DEVICE "_" BERT_TEST_PRECISION);
    TCase *tc = tcase_create("pytorch");
    tcase_add_test(tc, test_forward_backward_match_pytorch);
    tcase_add_test(tc, test_adamw_steps_match_pytorch);
    tcase_add_test(tc, test_forward_backward_match_pytorch_sdpa);
    tcase_add_test(tc, test_adamw_steps_match_pytorch_sdpa);
    tcase_add_test(tc, test_op_profile_changes_nothing);
    tcase_add_test(tc, test_recompute_changes_nothing);
    tcase_add_test(tc, test_forward_train_changes_nothing);
    if (strcmp(BERT_TEST_PRECISION, "fp32") == 0) {
        /* fp32 only: with bf16 the eager attention's products round to bf16, the fused kernels do not */
        tcase_add_test(tc, test_attention_implementations_agree);
        tcase_add_test(tc, test_eval_mode_is_deterministic);
        tcase_add_test(tc, test_dropout_gradients_finite_differences);
        if (strcmp(BERT_TEST_DEVICE, "cpu") != 0) tcase_add_test(tc, test_device_matches_cpu_with_dropout);
    }
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(bert_parity_suite(), NULL);
}
