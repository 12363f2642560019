/* BERT model behaviour beyond parity: token types and padding, weight
 * initialisation, gradient accumulation, the Hugging Face config round trip,
 * and the errors a user can provoke. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bert_test_util.h"
#include "grads_ready_check.h"
#include "lmcore/json.h"
#include "lmcore/tensor.h"
#include "model_steps.h"
#include "test_main.h"
#include "upload_batch_check.h"

#define V 512
static const char *const tiny_cpu[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, NULL};

/* An inference forward (the tiny model has no dropout: no step state). */
static float *forward_logits(void *model, const lm_batch *batch) {
    const lm_architecture_vtable *vt = bert_test_arch();
    ck_assert_msg(vt->forward(model, batch, NULL) == LM_OK, "%s", lm_error_message());
    size_t n = (size_t)batch->B * (size_t)batch->T * V;
    float *logits = malloc(n * sizeof(float));
    ck_assert_int_eq(vt->logits(model, logits, n), LM_OK);
    return logits;
}

/* Token types change the output; no token types means all type 0. */
START_TEST(test_token_type_ids_matter) {
    void *model = bert_test_create_ok(tiny_cpu);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    const size_t n = (size_t)fb.batch.B * (size_t)fb.batch.T, n_logits = n * V;
    float *with_types = forward_logits(model, &fb.batch);
    fb.batch.token_type_ids = NULL;
    float *without = forward_logits(model, &fb.batch);
    int32_t *zeros = calloc(n, sizeof *zeros);
    fb.batch.token_type_ids = zeros;
    float *explicit_zeros = forward_logits(model, &fb.batch);
    double err, mag;
    bert_test_compare(without, with_types, n_logits, &err, &mag);
    ck_assert_msg(err / mag > 1e-2, "token_type_ids changed the logits by %g only", err);
    ck_assert_msg(memcmp(without, explicit_zeros, n_logits * sizeof(float)) == 0,
                  "NULL token_type_ids must equal all zeros");
    /* Rows 1 and 2 have no type-1 token: their logits must not move. */
    const size_t row = (size_t)fb.batch.T * V;
    bert_test_compare(without + row, with_types + row, 2 * row, &err, &mag);
    ck_assert_msg(err < 1e-6, "rows without type-1 tokens changed by %g", err);
    free(with_types);
    free(without);
    free(explicit_zeros);
    free(zeros);
    bert_test_free_batch(&fb);
    bert_test_arch()->destroy(model);
}
END_TEST

/* Keys with attention_mask 0 are invisible: what sits there does not change
 * the real positions' logits, while without the mask it does. */
START_TEST(test_padding_is_invisible) {
    void *model = bert_test_create_ok(tiny_cpu);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    const int T = fb.batch.T;
    const size_t n = (size_t)fb.batch.B * (size_t)T;
    float *before = forward_logits(model, &fb.batch);
    for (size_t i = 0; i < n; i++)
        if (fb.attention_mask[i] == 0) fb.input_ids[i] = (int32_t)(7 + i % 300);
    float *after = forward_logits(model, &fb.batch);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (fb.attention_mask[i] == 0) continue;
        double err, mag;
        bert_test_compare(after + i * V, before + i * V, V, &err, &mag);
        if (err > worst) worst = err;
    }
    ck_assert_msg(worst < 1e-6, "padding tokens leaked into real positions (%g)", worst);
    fb.batch.attention_mask = NULL;
    float *unmasked = forward_logits(model, &fb.batch);
    double err, mag;
    bert_test_compare(unmasked + (size_t)T * V, after + (size_t)T * V, (size_t)(T - 5) * V, &err, &mag);
    ck_assert_msg(err / mag > 1e-3, "without attention_mask the padded row should change (%g)", err);
    free(before);
    free(after);
    free(unmasked);
    bert_test_free_batch(&fb);
    bert_test_arch()->destroy(model);
}
END_TEST

static void tensor_stats(const float *x, size_t n, double *mean, double *std) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
}

/* Hugging Face _init_weights: N(0, initializer_range) weights, zero biases,
 * LayerNorm 1/0, zero padding row; a pure function of the seed. */
START_TEST(test_init_weights_follow_hugging_face) {
    const char *const settings[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, "initializer_range=0.05", NULL};
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(settings);
    size_t n = (size_t)bert_test_n_params(model);
    ck_assert_int_eq(vt->init_weights(model, 5), LM_OK);
    float *a = lm_test_read_params(vt, model);
    ck_assert_int_eq(vt->init_weights(model, 5), LM_OK);
    float *b = lm_test_read_params(vt, model);
    ck_assert(memcmp(a, b, n * sizeof(float)) == 0);
    lm_free(b);
    ck_assert_int_eq(vt->init_weights(model, 6), LM_OK);
    b = lm_test_read_params(vt, model);
    ck_assert(memcmp(a, b, n * sizeof(float)) != 0);

    const lm_param_set set = lm_test_params(vt, model);
    const lm_param_desc *descs = set.descs;
    size_t count = set.n_descs;
    for (size_t i = 0; i < count; i++) {
        const lm_param_desc *d = &descs[i];
        size_t numel = 1;
        for (int j = 0; j < d->ndim; j++) numel *= (size_t)d->shape[j];
        const float *x = a + d->offset;
        double mean, std;
        tensor_stats(x, numel, &mean, &std);
        int is_ln_weight = strstr(d->name, "LayerNorm.weight") != NULL;
        int is_bias = strstr(d->name, "bias") != NULL;
        if (is_ln_weight) {
            ck_assert_msg(mean == 1.0 && std < 1e-6, "%s should be ones", d->name);
            ck_assert_int_eq(d->weight_decay, 0);
        } else if (is_bias) {
            ck_assert_msg(mean == 0.0 && std == 0.0, "%s should be zeros", d->name);
            ck_assert_int_eq(d->weight_decay, 0);
        } else {
            ck_assert_int_eq(d->ndim, 2);
            ck_assert_int_eq(d->weight_decay, 1);
            ck_assert_msg(fabs(std - 0.05) < 0.05 * 0.1 && fabs(mean) < 0.01, "%s: mean %g std %g", d->name, mean,
                          std);
        }
    }
    const lm_param_desc *word = bert_test_find_param(model, "bert.embeddings.word_embeddings.weight");
    for (int c = 0; c < 64; c++) ck_assert(a[word->offset + (size_t)c] == 0.0f); /* pad_token_id 0 */
    ck_assert(a[word->offset + 64] != 0.0f);
    lm_free(a);
    lm_free(b);
    vt->destroy(model);
}
END_TEST

/* backward(..., accumulate = 1) adds to the gradients: two passes at
 * loss_scale 0.5 give what one at 1.0 gives.  accumulate = 0 writes them,
 * whatever the buffer held. */
START_TEST(test_gradient_accumulation) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(tiny_cpu);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    size_t n = (size_t)bert_test_n_params(model);
    lm_step_state *state = lm_test_state_new(vt, model, 0, 0);
    float loss;
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);
    float *once = lm_test_read_grads(vt, model);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &loss), LM_OK);
        ck_assert_int_eq(vt->backward(model, 0.5f, i > 0), LM_OK); /* the first one overwrites `once` */
    }
    float *twice = lm_test_read_grads(vt, model);
    double err, mag;
    bert_test_compare(twice, once, n, &err, &mag);
    ck_assert_msg(err <= 1e-6 * mag, "accumulated gradients differ by %g (max %g)", err, mag);
    /* accumulate = 0 over those: the single pass again, bit for bit. */
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);
    float *again = lm_test_read_grads(vt, model);
    ck_assert_msg(memcmp(again, once, n * sizeof(float)) == 0, "backward(accumulate = 0) did not overwrite");
    /* accumulate = 1 over them: twice the single pass. */
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f, 1), LM_OK);
    lm_free(again);
    again = lm_test_read_grads(vt, model);
    for (size_t i = 0; i < n; i++) once[i] *= 2.0f;
    bert_test_compare(again, once, n, &err, &mag);
    ck_assert_msg(err <= 1e-6 * mag, "accumulate = 1 gave %g off twice the gradients (max %g)", err, mag);
    /* init_weights zeroes the gradients. */
    ck_assert_int_eq(vt->init_weights(model, 3), LM_OK);
    lm_free(again);
    again = lm_test_read_grads(vt, model);
    for (size_t i = 0; i < n; i++) ck_assert_msg(again[i] == 0.0f, "gradient %zu is %g after init_weights", i, again[i]);
    /* Inference: no labels, logits only, and no backward. */
    fb.batch.labels = NULL;
    ck_assert_int_eq(vt->forward(model, &fb.batch, state), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_ERR_INVALID);
    lm_free(once);
    lm_free(twice);
    lm_free(again);
    lm_test_state_free(vt, model, state);
    bert_test_free_batch(&fb);
    vt->destroy(model);
}
END_TEST

/* hf_config() writes a BertConfig that this plugin (and transformers) reads
 * back to the same model. */
START_TEST(test_hf_config_round_trip) {
    const lm_architecture_vtable *vt = bert_test_arch();
    const char *const settings[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, "hidden_act=gelu_new",
                                    "hidden_dropout_prob=0.25", NULL};
    void *model = bert_test_create_ok(settings);
    lm_buffer text = {0};
    ck_assert_int_eq(vt->hf_config(model, &text), LM_OK);
    lm_json *root = NULL;
    ck_assert_int_eq(lm_json_parse(text.data, text.len, "hf_config()", &root), LM_OK);
    ck_assert_str_eq(lm_json_string(lm_json_get(root, "model_type"), NULL), "bert");
    ck_assert_str_eq(lm_json_string(lm_json_at(lm_json_get(root, "architectures"), 0), NULL), "BertForMaskedLM");
    ck_assert_str_eq(lm_json_string(lm_json_get(root, "hidden_act"), NULL), "gelu_new");
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "hidden_size")), 64);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "num_hidden_layers")), 2);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "num_attention_heads")), 4);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "intermediate_size")), 128);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "max_position_embeddings")), 64);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "type_vocab_size")), 2);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "vocab_size")), 512);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "pad_token_id")), 0);
    ck_assert(lm_json_number(lm_json_get(root, "hidden_dropout_prob")) == 0.25);
    ck_assert(lm_json_number(lm_json_get(root, "attention_probs_dropout_prob")) == 0.0);
    ck_assert(lm_json_number(lm_json_get(root, "layer_norm_eps")) == 1e-12);
    ck_assert(lm_json_bool(lm_json_get(root, "tie_word_embeddings")));
    lm_json_free(root);

    char path[] = "/tmp/lm_bert_config_XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    ck_assert_int_eq(lm_file_write_atomic(path, text.data, text.len), LM_OK);
    char key[600];
    snprintf(key, sizeof key, "hf_config=%s", path);
    const char *const again_settings[] = {"device=cpu", key, NULL};
    void *again = bert_test_create_ok(again_settings);
    lm_buffer text2 = {0};
    ck_assert_int_eq(vt->hf_config(again, &text2), LM_OK);
    ck_assert_uint_eq(text.len, text2.len);
    ck_assert(memcmp(text.data, text2.data, text.len) == 0);
    ck_assert_int_eq(bert_test_n_params(again), bert_test_n_params(model));
    unlink(path);
    lm_buffer_free(&text);
    lm_buffer_free(&text2);
    vt->destroy(again);
    vt->destroy(model);
}
END_TEST

static void expect_create_error(const char *const *settings, lm_status expected, const char *needle) {
    void *model = NULL;
    lm_status status = bert_test_create(&model, settings);
    ck_assert_msg(status == expected, "expected %d, got %d (%s)", expected, status, lm_error_message());
    ck_assert_ptr_null(model);
    ck_assert_msg(strstr(lm_error_message(), needle), "message '%s' lacks '%s'", lm_error_message(), needle);
}

START_TEST(test_config_errors) {
    const char *const gpt2_file[] = {"device=cpu", "hf_config=" LM_TEST_SOURCE_DIR "/tests/gpt2/fixtures/tiny/config.json",
                                     NULL};
    expect_create_error(gpt2_file, LM_ERR_INVALID, "'gpt2' model, not 'bert'");
    const char *const missing[] = {"device=cpu", "hf_config=/nonexistent/config.json", NULL};
    expect_create_error(missing, LM_ERR_IO, "/nonexistent/config.json");
    const char *const heads[] = {"device=cpu", "hidden_size=66", "num_attention_heads=4", "num_hidden_layers=1",
                                 "vocab_size=32", NULL};
    expect_create_error(heads, LM_ERR_INVALID, "multiple of num_attention_heads");
    const char *const act[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, "hidden_act=relu", NULL};
    expect_create_error(act, LM_ERR_UNSUPPORTED, "hidden_act 'relu'");
    const char *const typo[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, "n_layer=2", NULL};
    expect_create_error(typo, LM_ERR_INVALID, "n_layer");
    const char *const drop[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, "hidden_dropout_prob=1.5", NULL};
    expect_create_error(drop, LM_ERR_INVALID, "hidden_dropout_prob");
    const char *const precision[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, "precision=fp8", NULL};
    expect_create_error(precision, LM_ERR_INVALID, "fp8");
}
END_TEST

static void expect_forward_error(void *model, const lm_batch *batch, lm_status expected, const char *needle) {
    lm_status status = bert_test_arch()->forward(model, batch, NULL);
    ck_assert_msg(status == expected, "expected %d, got %d (%s)", expected, status, lm_error_message());
    ck_assert_msg(strstr(lm_error_message(), needle), "message '%s' lacks '%s'", lm_error_message(), needle);
}

START_TEST(test_batch_errors) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(tiny_cpu);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);

    lm_batch too_long = fb.batch;
    too_long.B = 1;
    too_long.T = 65;
    int32_t ids[65] = {0};
    too_long.input_ids = ids;
    too_long.labels = NULL;
    too_long.attention_mask = NULL;
    too_long.token_type_ids = NULL;
    expect_forward_error(model, &too_long, LM_ERR_INVALID, "max_position_embeddings=64");

    fb.input_ids[37] = 512;
    expect_forward_error(model, &fb.batch, LM_ERR_INVALID, "input id 512 at batch row 1, position 5");
    fb.input_ids[37] = 9;
    fb.token_type_ids[40] = 2;
    expect_forward_error(model, &fb.batch, LM_ERR_INVALID, "token_type_id 2");
    fb.token_type_ids[40] = 0;
    fb.attention_mask[3] = 5;
    expect_forward_error(model, &fb.batch, LM_ERR_INVALID, "attention_mask value 5");
    fb.attention_mask[3] = 1;

    const int32_t *labels = fb.batch.labels;
    int32_t none[128];
    for (int i = 0; i < 128; i++) none[i] = LM_IGNORE_INDEX;
    fb.batch.labels = none;
    expect_forward_error(model, &fb.batch, LM_ERR_INVALID, "none is scored");
    /* A refused batch leaves nothing to run backward on. */
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_ERR_INVALID);
    fb.batch.labels = labels;
    ck_assert_msg(vt->forward(model, &fb.batch, NULL) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(vt->backward(model, 1.0f, 0) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(vt->backward(model, 1.0f, 1), LM_ERR_INVALID); /* once per forward */
    ck_assert_msg(strstr(lm_error_message(), "once per forward"), "%s", lm_error_message());
    bert_test_free_batch(&fb);
    vt->destroy(model);
}
END_TEST

/* A NaN weight makes the loss NaN: forward still succeeds (it never reads
 * the device) and writes it to the step state, where step_micro_batch_end
 * flags the step (bad_step = step + 1, bad_what = LM_BAD_LOSS). */
START_TEST(test_nan_loss_is_flagged_on_the_device) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(tiny_cpu);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    lm_device *dev = lm_test_device(vt, model);
    lm_step_state *state = lm_test_state_new(vt, model, 0, 0);
    lm_step_state host = lm_test_state_read(vt, model, state);
    host.step = 6;
    lm_test_state_write(vt, model, state, &host);
    float loss;
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &loss), LM_OK);
    ck_assert(isfinite(loss));
    ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, state, 1.0, 1.0, 1), LM_OK);
    host = lm_test_state_read(vt, model, state);
    ck_assert_int_eq(host.bad_step, 0);
    ck_assert_int_eq(host.bad_what, LM_BAD_NONE);
    ck_assert(host.loss_sum == (double)loss);

    float *params = lm_test_read_params(vt, model);
    params[bert_test_find_param(model, "cls.predictions.bias")->offset + 3] = NAN;
    lm_test_write_params(vt, model, params);
    ck_assert_msg(lm_test_forward(vt, model, &fb.batch, state, &loss) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(isnan(loss), "loss %g", loss);
    ck_assert_int_eq(lm_test_state_read(vt, model, state).bad_step, 0); /* forward only writes the loss */
    ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, state, 1.0, 1.0, 1), LM_OK);
    host = lm_test_state_read(vt, model, state);
    ck_assert_int_eq(host.bad_step, 7);
    ck_assert_int_eq(host.bad_what, LM_BAD_LOSS);
    ck_assert(isnan(host.bad_value));
    ck_assert_int_eq(host.scored, 2);
    /* A batch with nothing scored (scored = 0) changes nothing. */
    lm_step_state fresh_host;
    memset(&fresh_host, 0, sizeof fresh_host);
    lm_test_state_write(vt, model, state, &fresh_host);
    ck_assert_int_eq(lm_test_forward(vt, model, &fb.batch, state, &loss), LM_OK);
    ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, state, 1.0, 1.0, 0), LM_OK);
    host = lm_test_state_read(vt, model, state);
    ck_assert_int_eq(host.bad_step, 0);
    ck_assert_int_eq(host.scored, 0);
    lm_free(params);
    lm_test_state_free(vt, model, state);
    bert_test_free_batch(&fb);
    vt->destroy(model);
}
END_TEST

/* A training step's forward and backward queue their work and never wait:
 * on the CPU device, no download and no sync, with dropout, padding and
 * token types (the MLM head's scored rows come from the host's labels). */
START_TEST(test_training_step_never_waits) {
    const lm_architecture_vtable *vt = bert_test_arch();
    const char *const settings[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, "hidden_dropout_prob=0.1",
                                    "attention_probs_dropout_prob=0.1", NULL};
    void *model = bert_test_create_ok(settings);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    lm_device *dev = lm_test_device(vt, model);
    ck_assert_int_eq(dev->type, LM_DEVICE_CPU);
    lm_step_state *state = lm_test_state_new(vt, model, 5, 0);
    const lm_param_set set = lm_test_params(vt, model);
    for (int step = 0; step < 2; step++) { /* the first allocates the activations */
        lm_device_counters before = lm_test_counters(vt, model);
        ck_assert_msg(vt->forward(model, &fb.batch, state) == LM_OK, "%s", lm_error_message());
        ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, state, 1.0, 1.0, 1), LM_OK);
        ck_assert_msg(vt->backward(model, 1.0f, step > 0) == LM_OK, "%s", lm_error_message());
        ck_assert_int_eq(dev->ops->step_clip(dev, state, set.grads, LM_F32, set.n_params), LM_OK);
        ck_assert_int_eq(dev->ops->step_finish(dev, state), LM_OK);
        lm_device_counters after = lm_test_counters(vt, model);
        printf("bert training step %d on the cpu: %llu downloads, %llu syncs, %llu uploads\n", step,
               (unsigned long long)(after.downloads - before.downloads),
               (unsigned long long)(after.syncs - before.syncs), (unsigned long long)(after.uploads - before.uploads));
        ck_assert_msg(after.downloads == before.downloads, "a training step downloaded %llu times",
                      (unsigned long long)(after.downloads - before.downloads));
        ck_assert_msg(after.syncs == before.syncs, "a training step waited %llu times",
                      (unsigned long long)(after.syncs - before.syncs));
        ck_assert(after.uploads > before.uploads); /* the batch went up */
    }
    lm_step_state host = lm_test_state_read(vt, model, state);
    ck_assert_int_eq(host.step, 2);
    ck_assert(isfinite(host.step_loss) && host.step_loss > 0.0);
    ck_assert(host.grad_norm > 0.0f);
    lm_test_state_free(vt, model, state);
    bert_test_free_batch(&fb);
    vt->destroy(model);
}
END_TEST

/* Training mode with dropout reads its key from the step state: without
 * one, forward is refused with a message saying what to do; eval mode, or a
 * model without dropout, needs none. */
/* upload_batch stages a batch for the forward after it (CUDA graphs):
 * token types, the padding mask and the sparse head's scored rows too
 * (tests/common/upload_batch_check.h says what is checked). */
START_TEST(test_upload_batch_stages_the_next_forward) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(tiny_cpu);
    ck_assert_int_eq(vt->init_weights(model, 1), LM_OK);
    lm_step_state *state = lm_test_state_new(vt, model, 1, 0);
    int32_t ids[2 * 8], labels[2 * 8], types[2 * 8], mask[2 * 8];
    for (int i = 0; i < 16; i++) {
        ids[i] = 5 + (i * 37) % 500;
        labels[i] = i % 3 == 1 ? (i * 11 + 3) % 512 : LM_IGNORE_INDEX;
        types[i] = i % 8 >= 4;
        mask[i] = i != 15;
    }
    lm_batch batch = {.B = 2, .T = 8, .input_ids = ids, .labels = labels, .token_type_ids = types,
                      .attention_mask = mask, .n_targets = 5};
    lm_test_check_upload_batch(vt, model, &batch, state, 512);
    lm_test_state_free(vt, model, state);
    vt->destroy(model);
}
END_TEST

START_TEST(test_training_forward_needs_a_state) {
    const lm_architecture_vtable *vt = bert_test_arch();
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    const char *const drops[] = {"hidden_dropout_prob=0.1", "attention_probs_dropout_prob=0.1"};
    for (size_t k = 0; k < 2; k++) {
        const char *const settings[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, drops[k], NULL};
        void *model = bert_test_create_ok(settings);
        ck_assert_int_eq(vt->init_weights(model, 1), LM_OK);
        lm_status status = vt->forward(model, &fb.batch, NULL);
        ck_assert_msg(status == LM_ERR_INVALID, "%s: forward without a state gave %d", drops[k], status);
        ck_assert_msg(strstr(lm_error_message(), "training mode needs a step state") &&
                          strstr(lm_error_message(), "set_training(0)"),
                      "%s", lm_error_message());
        ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_ERR_INVALID);
        ck_assert_int_eq(vt->set_training(model, 0), LM_OK);
        ck_assert_msg(vt->forward(model, &fb.batch, NULL) == LM_OK, "%s", lm_error_message());
        vt->destroy(model);
    }
    void *plain = bert_test_create_ok(tiny_cpu); /* no dropout */
    ck_assert_int_eq(vt->init_weights(plain, 1), LM_OK);
    ck_assert_msg(vt->forward(plain, &fb.batch, NULL) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(vt->backward(plain, 1.0f, 0) == LM_OK, "%s", lm_error_message());
    vt->destroy(plain);
    bert_test_free_batch(&fb);
}
END_TEST

/* Backward reports each layer's gradients final as it finishes them (ABI
 * 2.1, for data-parallel buckets): the MLM head first, the embeddings
 * (with the tied word embeddings) last. */
START_TEST(test_grads_ready_during_backward) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(tiny_cpu);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    lm_step_state *state = lm_test_state_new(vt, model, 0, 0);
    lm_test_check_grads_ready(vt, model, &fb.batch, state, 2, "cls.predictions.transform.dense.weight",
                              "bert.embeddings.LayerNorm.weight");
    lm_test_state_free(vt, model, state);
    bert_test_free_batch(&fb);
    vt->destroy(model);
}
END_TEST

static Suite *bert_model_suite(void) {
    Suite *s = suite_create("bert_model");
    TCase *tc = tcase_create("behaviour");
    tcase_add_test(tc, test_token_type_ids_matter);
    tcase_add_test(tc, test_upload_batch_stages_the_next_forward);
    tcase_add_test(tc, test_padding_is_invisible);
    tcase_add_test(tc, test_init_weights_follow_hugging_face);
    tcase_add_test(tc, test_gradient_accumulation);
    tcase_add_test(tc, test_grads_ready_during_backward);
    tcase_add_test(tc, test_hf_config_round_trip);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_batch_errors);
    tcase_add_test(tc, test_nan_loss_is_flagged_on_the_device);
    tcase_add_test(tc, test_training_step_never_waits);
    tcase_add_test(tc, test_training_forward_needs_a_state);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(bert_model_suite(), NULL);
}
