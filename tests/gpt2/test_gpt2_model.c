/* GPT-2 plugin behaviour other than numerical parity: initialisation
 * statistics, configuration checks and errors, the config.json it writes,
 * batch limits, and the clm objective. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2_test_util.h"
#include "lmcore/json.h"
#include "lmcore/tensor.h"
#include "test_main.h"

static const char *const tiny_cpu[] = {"device=cpu", "hf_config=" GPT2_TINY_CONFIG, NULL};

static const lm_param_desc *find_param(void *model, const char *name) {
    const lm_param_desc *descs;
    size_t count;
    ck_assert_int_eq(gpt2_test_arch()->params(model, &descs, &count), LM_OK);
    for (size_t i = 0; i < count; i++)
        if (strcmp(descs[i].name, name) == 0) return &descs[i];
    ck_abort_msg("no parameter %s", name);
    return NULL;
}

static size_t numel(const lm_param_desc *d) {
    size_t n = 1;
    for (int i = 0; i < d->ndim; i++) n *= (size_t)d->shape[i];
    return n;
}

static void mean_std(const float *x, size_t n, double *mean, double *std) {
    double s = 0.0, ss = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *std = sqrt(ss / (double)n);
}

START_TEST(test_init_weights_statistics) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    const char *const settings[] = {"device=cpu", "vocab_size=1000", "n_positions=128", "n_embd=96", "n_layer=3",
                                    "n_head=4", NULL};
    void *model = gpt2_test_create_ok(settings);
    size_t n = (size_t)gpt2_test_n_params(model);
    float *a = NULL, *b = NULL;
    ck_assert_int_eq(lm_alloc((void **)&a, n * sizeof(float), "a"), LM_OK);
    ck_assert_int_eq(lm_alloc((void **)&b, n * sizeof(float), "b"), LM_OK);
    ck_assert_int_eq(vt->init_weights(model, 42), LM_OK);
    ck_assert_int_eq(vt->read_buffer(model, LM_BUFFER_PARAMS, a), LM_OK);

    struct {
        const char *name;
        double std;
    } normals[] = {{"transformer.wte.weight", 0.02},
                   {"transformer.wpe.weight", 0.02},
                   {"transformer.h.0.attn.c_attn.weight", 0.02},
                   {"transformer.h.2.mlp.c_fc.weight", 0.02},
                   {"transformer.h.0.attn.c_proj.weight", 0.02 / sqrt(6.0)},
                   {"transformer.h.1.mlp.c_proj.weight", 0.02 / sqrt(6.0)}};
    for (size_t k = 0; k < sizeof normals / sizeof normals[0]; k++) {
        const lm_param_desc *d = find_param(model, normals[k].name);
        double mean, std;
        mean_std(a + d->offset, numel(d), &mean, &std);
        /* 6 standard errors of the sample mean and of the sample std. */
        double se_mean = normals[k].std / sqrt((double)numel(d)), se_std = normals[k].std / sqrt(2.0 * numel(d));
        printf("gpt2 init %s: mean %.2e std %.5f (expected %.5f)\n", normals[k].name, mean, std, normals[k].std);
        ck_assert_msg(fabs(mean) < 6.0 * se_mean, "%s mean %g", normals[k].name, mean);
        ck_assert_msg(fabs(std - normals[k].std) < 6.0 * se_std, "%s std %g, expected %g", normals[k].name, std,
                      normals[k].std);
    }
    const char *ones[] = {"transformer.h.0.ln_1.weight", "transformer.h.2.ln_2.weight", "transformer.ln_f.weight"};
    const char *zeros[] = {"transformer.h.0.ln_1.bias", "transformer.h.1.attn.c_attn.bias",
                           "transformer.h.2.mlp.c_proj.bias", "transformer.ln_f.bias"};
    for (size_t k = 0; k < 3; k++) {
        const lm_param_desc *d = find_param(model, ones[k]);
        ck_assert_int_eq(d->weight_decay, 0);
        for (size_t i = 0; i < numel(d); i++) ck_assert_float_eq(a[d->offset + i], 1.0f);
    }
    for (size_t k = 0; k < 4; k++) {
        const lm_param_desc *d = find_param(model, zeros[k]);
        ck_assert_int_eq(d->weight_decay, 0);
        for (size_t i = 0; i < numel(d); i++) ck_assert_float_eq(a[d->offset + i], 0.0f);
    }
    /* Decayed tensors form one prefix of the flat buffer. */
    const lm_param_desc *descs;
    size_t count, decayed_end = 0, first_plain = n;
    ck_assert_int_eq(vt->params(model, &descs, &count), LM_OK);
    for (size_t i = 0; i < count; i++) {
        if (descs[i].weight_decay && descs[i].offset + numel(&descs[i]) > decayed_end)
            decayed_end = descs[i].offset + numel(&descs[i]);
        if (!descs[i].weight_decay && descs[i].offset < first_plain) first_plain = descs[i].offset;
    }
    ck_assert_uint_eq(decayed_end, first_plain);

    /* A pure function of the seed. */
    ck_assert_int_eq(vt->init_weights(model, 42), LM_OK);
    ck_assert_int_eq(vt->read_buffer(model, LM_BUFFER_PARAMS, b), LM_OK);
    ck_assert(memcmp(a, b, n * sizeof(float)) == 0);
    ck_assert_int_eq(vt->init_weights(model, 43), LM_OK);
    ck_assert_int_eq(vt->read_buffer(model, LM_BUFFER_PARAMS, b), LM_OK);
    ck_assert(memcmp(a, b, n * sizeof(float)) != 0);
    lm_free(a);
    lm_free(b);
    vt->destroy(model);
}
END_TEST

static void expect_create_error(const char *const *settings, lm_status expected, const char *needle) {
    void *model = NULL;
    lm_status status = gpt2_test_create(&model, settings);
    ck_assert_msg(status == expected, "expected status %d, got %d (%s)", expected, status, lm_error_message());
    ck_assert_ptr_null(model);
    ck_assert_msg(strstr(lm_error_message(), needle) != NULL, "message '%s' lacks '%s'", lm_error_message(), needle);
}

START_TEST(test_config_errors) {
    const char *const wrong_type[] = {"device=cpu", "n_layer=two", NULL};
    expect_create_error(wrong_type, LM_ERR_INVALID, "n_layer");
    const char *const unknown[] = {"device=cpu", "n_layers=2", NULL};
    expect_create_error(unknown, LM_ERR_INVALID, "n_layers");
    const char *const heads[] = {"device=cpu", "n_embd=100", "n_head=12", NULL};
    expect_create_error(heads, LM_ERR_INVALID, "n_head");
    const char *const dropout[] = {"device=cpu", "attn_pdrop=1.0", NULL};
    expect_create_error(dropout, LM_ERR_INVALID, "attn_pdrop");
    const char *const negative[] = {"device=cpu", "n_layer=0", NULL};
    expect_create_error(negative, LM_ERR_INVALID, "n_layer");
    const char *const activation[] = {"device=cpu", "activation_function=relu", NULL};
    expect_create_error(activation, LM_ERR_UNSUPPORTED, "gelu_new");
    const char *const precision[] = {"device=cpu", "precision=fp8", NULL};
    expect_create_error(precision, LM_ERR_INVALID, "fp8");
    const char *const missing[] = {"device=cpu", "hf_config=/nonexistent/config.json", NULL};
    expect_create_error(missing, LM_ERR_IO, "/nonexistent/config.json");
    const char *const bos_outside[] = {"device=cpu", "vocab_size=500", "bos_token_id=600", NULL};
    expect_create_error(bos_outside, LM_ERR_INVALID, "bos_token_id 600");
}
END_TEST

/* Hugging Face's default ids (50256) do not fit a smaller vocabulary: with
 * none given, config.json says null, so transformers' generate works. */
START_TEST(test_default_token_ids_fit_the_vocabulary) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    const char *const small[] = {"device=cpu", "vocab_size=500", "n_layer=1", "n_embd=32", "n_head=2", NULL};
    void *model = gpt2_test_create_ok(small);
    lm_buffer text = {0};
    ck_assert_int_eq(vt->hf_config(model, &text), LM_OK);
    lm_json *root = NULL;
    ck_assert_int_eq(lm_json_parse(text.data, text.len, "hf_config", &root), LM_OK);
    ck_assert_int_eq(lm_json_type_of(lm_json_get(root, "bos_token_id")), LM_JSON_NULL);
    ck_assert_int_eq(lm_json_type_of(lm_json_get(root, "eos_token_id")), LM_JSON_NULL);
    lm_json_free(root);
    lm_buffer_free(&text);
    vt->destroy(model);
    const char *const full[] = {"device=cpu", "n_layer=1", "n_embd=32", "n_head=2", NULL}; /* 50,257 tokens */
    model = gpt2_test_create_ok(full);
    ck_assert_int_eq(vt->hf_config(model, &text), LM_OK);
    ck_assert_int_eq(lm_json_parse(text.data, text.len, "hf_config", &root), LM_OK);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "eos_token_id")), 50256);
    lm_json_free(root);
    lm_buffer_free(&text);
    vt->destroy(model);
}
END_TEST

START_TEST(test_hf_config_refuses_other_models) {
    char path[1024];
    snprintf(path, sizeof path, "%s/test_gpt2_bert_config.json", LM_TEST_BINARY_DIR);
    const char *bert = "{\"model_type\": \"bert\", \"hidden_size\": 768, \"architectures\": [\"BertForMaskedLM\"]}";
    ck_assert_int_eq(lm_file_write_atomic(path, bert, strlen(bert)), LM_OK);
    char setting[1100];
    snprintf(setting, sizeof setting, "hf_config=%s", path);
    const char *const settings[] = {"device=cpu", setting, NULL};
    expect_create_error(settings, LM_ERR_INVALID, "'bert'");
    const char *bad_type = "{\"model_type\": \"gpt2\", \"n_layer\": \"two\"}";
    ck_assert_int_eq(lm_file_write_atomic(path, bad_type, strlen(bad_type)), LM_OK);
    expect_create_error(settings, LM_ERR_FORMAT, "n_layer");
}
END_TEST

/* config.json written by the plugin reads back as the same model, and has the
 * fields transformers needs to build GPT2LMHeadModel. */
START_TEST(test_hf_config_round_trip) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    const char *const settings[] = {"device=cpu", "hf_config=" GPT2_TINY_CONFIG, "resid_pdrop=0.05", NULL};
    void *model = gpt2_test_create_ok(settings);
    lm_buffer text = {0};
    ck_assert_int_eq(vt->hf_config(model, &text), LM_OK);
    lm_json *root = NULL;
    ck_assert_msg(lm_json_parse(text.data, text.len, "hf_config", &root) == LM_OK, "%s", lm_error_message());
    ck_assert_str_eq(lm_json_string(lm_json_get(root, "model_type"), NULL), "gpt2");
    const lm_json *arch = lm_json_get(root, "architectures");
    ck_assert_int_eq(lm_json_size(arch), 1);
    ck_assert_str_eq(lm_json_string(lm_json_at(arch, 0), NULL), "GPT2LMHeadModel");
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "n_embd")), 64);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "n_layer")), 2);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "n_ctx")), 64);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "vocab_size")), 512);
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "bos_token_id")), 511);
    ck_assert_int_eq(lm_json_type_of(lm_json_get(root, "n_inner")), LM_JSON_NULL);
    ck_assert_double_eq_tol(lm_json_number(lm_json_get(root, "resid_pdrop")), 0.05, 1e-15);
    ck_assert_double_eq_tol(lm_json_number(lm_json_get(root, "layer_norm_epsilon")), 1e-5, 1e-20);
    ck_assert_str_eq(lm_json_string(lm_json_get(root, "activation_function"), NULL), "gelu_new");
    ck_assert_str_eq(lm_json_string(lm_json_get(root, "torch_dtype"), NULL), "float32");
    lm_json_free(root);

    char path[1024];
    snprintf(path, sizeof path, "%s/test_gpt2_round_trip_config.json", LM_TEST_BINARY_DIR);
    ck_assert_int_eq(lm_file_write_atomic(path, text.data, text.len), LM_OK);
    char setting[1100];
    snprintf(setting, sizeof setting, "hf_config=%s", path);
    const char *const again[] = {"device=cpu", setting, NULL};
    void *copy = gpt2_test_create_ok(again);
    lm_buffer text2 = {0};
    ck_assert_int_eq(vt->hf_config(copy, &text2), LM_OK);
    ck_assert_str_eq(text.data, text2.data);
    lm_buffer_free(&text);
    lm_buffer_free(&text2);
    vt->destroy(copy);
    vt->destroy(model);
}
END_TEST

START_TEST(test_batch_limits) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    void *model = gpt2_test_create_ok(tiny_cpu);
    ck_assert_int_eq(vt->init_weights(model, 1), LM_OK);
    int32_t ids[2 * 65], labels[2 * 65];
    for (int i = 0; i < 2 * 65; i++) {
        ids[i] = i % 512;
        labels[i] = (i + 1) % 512;
    }
    lm_batch batch = {.B = 2, .T = 65, .input_ids = ids, .labels = labels, .n_targets = 130};
    float loss;
    ck_assert_int_eq(vt->forward(model, &batch, &loss), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "n_positions=64") != NULL, "%s", lm_error_message());

    batch.T = 64;
    ids[70] = 512;
    ck_assert_int_eq(vt->forward(model, &batch, &loss), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "512") && strstr(lm_error_message(), "position 6"), "%s",
                  lm_error_message());
    ids[70] = 3;
    labels[5] = -7;
    ck_assert_int_eq(vt->forward(model, &batch, &loss), LM_ERR_INVALID);
    labels[5] = 4;
    /* A padding mask holds 1 (token) or 0 (padding), nothing else. */
    int32_t mask[2 * 65];
    for (int i = 0; i < 2 * 65; i++) mask[i] = 1;
    mask[64 + 9] = 2;
    batch.attention_mask = mask;
    ck_assert_int_eq(vt->forward(model, &batch, &loss), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "attention_mask value 2 at batch row 1, position 9"), "%s",
                  lm_error_message());
    batch.attention_mask = NULL;
    /* Labels that score nothing: the mean loss would be 0/0. */
    for (int i = 0; i < 2 * 64; i++) labels[i] = LM_IGNORE_INDEX;
    ck_assert_int_eq(vt->forward(model, &batch, &loss), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "none is scored"), "%s", lm_error_message());
    for (int i = 0; i < 2 * 65; i++) labels[i] = (i + 1) % 512;
    labels[5] = 4;
    ck_assert_msg(vt->forward(model, &batch, &loss) == LM_OK, "%s", lm_error_message());
    ck_assert(isfinite(loss) && loss > 0.0f);

    /* Without labels: logits only, and backward is refused. */
    batch.labels = NULL;
    ck_assert_int_eq(vt->forward(model, &batch, NULL), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f), LM_ERR_INVALID);
    float *logits = malloc(sizeof(float) * 2 * 64 * 512);
    ck_assert_int_eq(vt->logits(model, logits, 2 * 64 * 512), LM_OK);
    ck_assert_int_eq(vt->logits(model, logits, 10), LM_ERR_INVALID);
    free(logits);

    /* A smaller batch after a bigger one reuses the activations. */
    batch.B = 1;
    batch.T = 5;
    batch.labels = labels;
    ck_assert_int_eq(vt->forward(model, &batch, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f), LM_OK);
    vt->destroy(model);
}
END_TEST

START_TEST(test_nan_loss_is_reported) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    void *model = gpt2_test_create_ok(tiny_cpu);
    ck_assert_int_eq(vt->init_weights(model, 1), LM_OK);
    size_t n = (size_t)gpt2_test_n_params(model);
    float *params = NULL;
    ck_assert_int_eq(lm_alloc((void **)&params, n * sizeof(float), "params"), LM_OK);
    ck_assert_int_eq(vt->read_buffer(model, LM_BUFFER_PARAMS, params), LM_OK);
    params[find_param(model, "transformer.ln_f.bias")->offset] = NAN;
    ck_assert_int_eq(vt->write_buffer(model, LM_BUFFER_PARAMS, params), LM_OK);
    int32_t ids[8] = {1, 2, 3, 4, 5, 6, 7, 8}, labels[8] = {2, 3, 4, -100, 6, 7, 8, -100};
    lm_batch batch = {.B = 2, .T = 4, .input_ids = ids, .labels = labels, .n_targets = 6, .step = 314};
    float loss;
    ck_assert_int_eq(vt->forward(model, &batch, &loss), LM_ERR_NUMERIC);
    ck_assert_msg(strstr(lm_error_message(), "NaN at step 314") != NULL, "%s", lm_error_message());
    ck_assert_int_eq(vt->backward(model, 1.0f), LM_ERR_INVALID);
    lm_free(params);
    vt->destroy(model);
}
END_TEST

START_TEST(test_clm_objective) {
    const lm_objective_vtable *clm = gpt2_test_clm();
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, "objective 'clm'"), LM_OK);
    void *objective = NULL;
    ck_assert_int_eq(clm->create(&objective, cfg), LM_OK);
    int32_t tokens[2 * 4] = {5, 6, 7, 8, 9, 10, 11, 12};
    int32_t ids[8], labels[8];
    lm_batch batch = {.input_ids = ids, .labels = labels};
    ck_assert_int_eq(clm->make_batch(objective, tokens, 2, 4, 0, &batch), LM_ERR_INVALID); /* not bound */

    lm_arch_info bert = {.model_type = "bert", .causal = 0, .vocab_size = 100};
    ck_assert_int_eq(clm->bind(objective, &bert, NULL), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(),
                     "objective 'clm' needs a causal architecture, but 'bert' is bidirectional: use objective 'mlm'");
    lm_arch_info gpt2 = {.model_type = "gpt2", .causal = 1, .vocab_size = 100};
    lm_vocab_info big = {.vocab_size = 200};
    ck_assert_int_eq(clm->bind(objective, &gpt2, &big), LM_ERR_INVALID);
    lm_vocab_info vocab = {.vocab_size = 100};
    ck_assert_int_eq(clm->bind(objective, &gpt2, &vocab), LM_OK);

    ck_assert_int_eq(clm->make_batch(objective, tokens, 2, 4, 0, &batch), LM_OK);
    const int32_t want_labels[8] = {6, 7, 8, -100, 10, 11, 12, -100};
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(ids[i], tokens[i]);
        ck_assert_int_eq(labels[i], want_labels[i]);
    }
    ck_assert_int_eq(batch.B, 2);
    ck_assert_int_eq(batch.T, 4);
    ck_assert_int_eq(batch.n_targets, 6);
    ck_assert_ptr_null(batch.attention_mask);
    ck_assert_ptr_null(batch.token_type_ids);
    ck_assert_int_eq(clm->make_batch(objective, tokens, 8, 1, 0, &batch), LM_ERR_INVALID); /* T = 1 */
    tokens[3] = 100;
    ck_assert_int_eq(clm->make_batch(objective, tokens, 2, 4, 0, &batch), LM_ERR_INVALID);
    clm->destroy(objective);
    lm_config_destroy(cfg);
}
END_TEST

static Suite *gpt2_model_suite(void) {
    Suite *s = suite_create("gpt2_model");
    TCase *tc = tcase_create("model");
    tcase_add_test(tc, test_init_weights_statistics);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_hf_config_refuses_other_models);
    tcase_add_test(tc, test_hf_config_round_trip);
    tcase_add_test(tc, test_default_token_ids_fit_the_vocabulary);
    tcase_add_test(tc, test_batch_limits);
    tcase_add_test(tc, test_nan_loss_is_reported);
    tcase_add_test(tc, test_clm_objective);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(gpt2_model_suite(), NULL);
}
