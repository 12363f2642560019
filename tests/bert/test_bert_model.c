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
#include "lmcore/json.h"
#include "lmcore/tensor.h"
#include "test_main.h"

#define V 512
static const char *const tiny_cpu[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, NULL};

static float *forward_logits(void *model, const lm_batch *batch) {
    const lm_architecture_vtable *vt = bert_test_arch();
    float loss;
    ck_assert_msg(vt->forward(model, batch, &loss) == LM_OK, "%s", lm_error_message());
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
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    ck_assert_int_eq(vt->init_weights(model, 5), LM_OK);
    ck_assert_int_eq(vt->read_buffer(model, LM_BUFFER_PARAMS, a), LM_OK);
    ck_assert_int_eq(vt->init_weights(model, 5), LM_OK);
    ck_assert_int_eq(vt->read_buffer(model, LM_BUFFER_PARAMS, b), LM_OK);
    ck_assert(memcmp(a, b, n * sizeof(float)) == 0);
    ck_assert_int_eq(vt->init_weights(model, 6), LM_OK);
    ck_assert_int_eq(vt->read_buffer(model, LM_BUFFER_PARAMS, b), LM_OK);
    ck_assert(memcmp(a, b, n * sizeof(float)) != 0);

    const lm_param_desc *descs;
    size_t count;
    ck_assert_int_eq(vt->params(model, &descs, &count), LM_OK);
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
    free(a);
    free(b);
    vt->destroy(model);
}
END_TEST

/* Two backward passes at loss_scale 0.5 accumulate what one at 1.0 gives. */
START_TEST(test_gradient_accumulation) {
    const lm_architecture_vtable *vt = bert_test_arch();
    void *model = bert_test_create_ok(tiny_cpu);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    bert_fixture_batch fb;
    bert_test_load_batch(&fb);
    size_t n = (size_t)bert_test_n_params(model);
    float *once = malloc(n * sizeof(float)), *twice = malloc(n * sizeof(float));
    float loss;
    ck_assert_int_eq(vt->zero_grad(model), LM_OK);
    ck_assert_int_eq(vt->forward(model, &fb.batch, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f), LM_OK);
    ck_assert_int_eq(vt->read_buffer(model, LM_BUFFER_GRADS, once), LM_OK);
    ck_assert_int_eq(vt->zero_grad(model), LM_OK);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(vt->forward(model, &fb.batch, &loss), LM_OK);
        ck_assert_int_eq(vt->backward(model, 0.5f), LM_OK);
    }
    ck_assert_int_eq(vt->read_buffer(model, LM_BUFFER_GRADS, twice), LM_OK);
    double err, mag;
    bert_test_compare(twice, once, n, &err, &mag);
    ck_assert_msg(err <= 1e-6 * mag, "accumulated gradients differ by %g (max %g)", err, mag);
    /* Inference: no labels, logits only, and no backward. */
    fb.batch.labels = NULL;
    ck_assert_int_eq(vt->forward(model, &fb.batch, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f), LM_ERR_INVALID);
    free(once);
    free(twice);
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
    float loss;
    lm_status status = bert_test_arch()->forward(model, batch, &loss);
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

    int32_t *labels = fb.batch.labels, none[128];
    for (int i = 0; i < 128; i++) none[i] = LM_IGNORE_INDEX;
    fb.batch.labels = none;
    expect_forward_error(model, &fb.batch, LM_ERR_INVALID, "none is scored");
    fb.batch.labels = labels;

    /* A NaN weight makes the loss NaN: a numeric error naming the step. */
    size_t n = (size_t)bert_test_n_params(model);
    float *params = malloc(n * sizeof(float));
    ck_assert_int_eq(vt->read_buffer(model, LM_BUFFER_PARAMS, params), LM_OK);
    params[bert_test_find_param(model, "cls.predictions.bias")->offset + 3] = NAN;
    ck_assert_int_eq(vt->write_buffer(model, LM_BUFFER_PARAMS, params), LM_OK);
    fb.batch.step = 7;
    expect_forward_error(model, &fb.batch, LM_ERR_NUMERIC, "NaN at step 7");
    free(params);
    bert_test_free_batch(&fb);
    vt->destroy(model);
}
END_TEST

static Suite *bert_model_suite(void) {
    Suite *s = suite_create("bert_model");
    TCase *tc = tcase_create("behaviour");
    tcase_add_test(tc, test_token_type_ids_matter);
    tcase_add_test(tc, test_padding_is_invisible);
    tcase_add_test(tc, test_init_weights_follow_hugging_face);
    tcase_add_test(tc, test_gradient_accumulation);
    tcase_add_test(tc, test_hf_config_round_trip);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_batch_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(bert_model_suite(), NULL);
}
