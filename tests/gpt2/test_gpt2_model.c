/* GPT-2 plugin behaviour other than numerical parity: initialisation
 * statistics, configuration checks and errors, the config.json it writes,
 * batch limits, and the clm objective. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2_test_util.h"
#include "grads_ready_check.h"
#include "lmcore/json.h"
#include "lmcore/tensor.h"
#include "model_steps.h"
#include "test_main.h"
#include "upload_batch_check.h"

static const char *const tiny_cpu[] = {"device=cpu", "hf_config=" GPT2_TINY_CONFIG, NULL};

static const lm_param_desc *find_param(void *model, const char *name) {
    return lm_test_find_desc(gpt2_test_arch(), model, name);
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
    ck_assert_int_eq(vt->init_weights(model, 42), LM_OK);
    float *a = lm_test_read_params(vt, model), *b = NULL;

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
    const lm_param_set set = lm_test_params(vt, model);
    const lm_param_desc *descs = set.descs;
    size_t count = set.n_descs, decayed_end = 0, first_plain = n;
    for (size_t i = 0; i < count; i++) {
        if (descs[i].weight_decay && descs[i].offset + numel(&descs[i]) > decayed_end)
            decayed_end = descs[i].offset + numel(&descs[i]);
        if (!descs[i].weight_decay && descs[i].offset < first_plain) first_plain = descs[i].offset;
    }
    ck_assert_uint_eq(decayed_end, first_plain);

    /* A pure function of the seed. */
    ck_assert_int_eq(vt->init_weights(model, 42), LM_OK);
    b = lm_test_read_params(vt, model);
    ck_assert(memcmp(a, b, n * sizeof(float)) == 0);
    lm_free(b);
    ck_assert_int_eq(vt->init_weights(model, 43), LM_OK);
    b = lm_test_read_params(vt, model);
    ck_assert(memcmp(a, b, n * sizeof(float)) != 0);
    lm_free(b);
    lm_free(a);
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
    lm_step_state *state = lm_test_state_new(vt, model, 1, 0);
    int32_t ids[2 * 65], labels[2 * 65];
    for (int i = 0; i < 2 * 65; i++) {
        ids[i] = i % 512;
        labels[i] = (i + 1) % 512;
    }
    lm_batch batch = {.B = 2, .T = 65, .input_ids = ids, .labels = labels, .n_targets = 130};
    float loss;
    ck_assert_int_eq(lm_test_forward(vt, model, &batch, state, &loss), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "n_positions=64") != NULL, "%s", lm_error_message());

    batch.T = 64;
    ids[70] = 512;
    ck_assert_int_eq(lm_test_forward(vt, model, &batch, state, &loss), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "512") && strstr(lm_error_message(), "position 6"), "%s",
                  lm_error_message());
    ids[70] = 3;
    labels[5] = -7;
    ck_assert_int_eq(lm_test_forward(vt, model, &batch, state, &loss), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "label -7 at batch row 0, position 5"), "%s", lm_error_message());
    labels[5] = 4;
    /* A padding mask holds 1 (token) or 0 (padding), nothing else. */
    int32_t mask[2 * 65];
    for (int i = 0; i < 2 * 65; i++) mask[i] = 1;
    mask[64 + 9] = 2;
    batch.attention_mask = mask;
    ck_assert_int_eq(lm_test_forward(vt, model, &batch, state, &loss), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "attention_mask value 2 at batch row 1, position 9"), "%s",
                  lm_error_message());
    batch.attention_mask = NULL;
    /* Labels that score nothing: the mean loss would be 0/0. */
    for (int i = 0; i < 2 * 64; i++) labels[i] = LM_IGNORE_INDEX;
    ck_assert_int_eq(lm_test_forward(vt, model, &batch, state, &loss), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "none is scored"), "%s", lm_error_message());
    /* A refused batch leaves nothing to run backward on. */
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_ERR_INVALID);
    for (int i = 0; i < 2 * 65; i++) labels[i] = (i + 1) % 512;
    labels[5] = 4;
    ck_assert_msg(lm_test_forward(vt, model, &batch, state, &loss) == LM_OK, "%s", lm_error_message());
    ck_assert(isfinite(loss) && loss > 0.0f);

    /* Without labels: logits only, the state's loss untouched, and backward is refused. */
    batch.labels = NULL;
    ck_assert_int_eq(vt->forward(model, &batch, state), LM_OK);
    ck_assert(lm_test_state_read(vt, model, state).loss == loss);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_ERR_INVALID);
    ck_assert_int_eq(vt->forward(model, &batch, NULL), LM_OK); /* no dropout: no state needed */
    float *logits = malloc(sizeof(float) * 2 * 64 * 512);
    ck_assert_int_eq(vt->logits(model, logits, 2 * 64 * 512), LM_OK);
    ck_assert_int_eq(vt->logits(model, logits, 10), LM_ERR_INVALID);
    free(logits);

    /* A smaller batch after a bigger one reuses the activations. */
    batch.B = 1;
    batch.T = 5;
    batch.labels = labels;
    ck_assert_int_eq(lm_test_forward(vt, model, &batch, state, &loss), LM_OK);
    ck_assert(isfinite(loss) && loss > 0.0f);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);
    /* Once per forward. */
    ck_assert_int_eq(vt->backward(model, 1.0f, 1), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "once per forward"), "%s", lm_error_message());
    lm_test_state_free(vt, model, state);
    vt->destroy(model);
}
END_TEST

/* A loss that is not finite does not fail forward (which never reads the
 * device): forward writes it to the step state, and step_micro_batch_end
 * flags the step there (bad_step = step + 1, bad_what = LM_BAD_LOSS, the
 * first one wins) for the trainer to raise when it next reads the state. */
START_TEST(test_nan_loss_is_flagged_on_the_device) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    void *model = gpt2_test_create_ok(tiny_cpu);
    ck_assert_int_eq(vt->init_weights(model, 1), LM_OK);
    lm_device *dev = lm_test_device(vt, model);
    int32_t ids[8] = {1, 2, 3, 4, 5, 6, 7, 8}, labels[8] = {2, 3, 4, -100, 6, 7, 8, -100};
    lm_batch batch = {.B = 2, .T = 4, .input_ids = ids, .labels = labels, .n_targets = 6};
    lm_step_state *state = lm_test_state_new(vt, model, 1, 0);
    lm_step_state host = lm_test_state_read(vt, model, state);
    host.step = 313;
    lm_test_state_write(vt, model, state, &host);

    /* A finite loss first: summed, nothing flagged. */
    float loss;
    ck_assert_int_eq(lm_test_forward(vt, model, &batch, state, &loss), LM_OK);
    ck_assert(isfinite(loss));
    ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, state, 1.0, 2.0, 1), LM_OK);
    host = lm_test_state_read(vt, model, state);
    ck_assert_int_eq(host.bad_step, 0);
    ck_assert_int_eq(host.bad_what, LM_BAD_NONE);
    ck_assert_int_eq(host.scored, 1);
    ck_assert(host.loss_sum == (double)loss * 1.0 / 2.0);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);

    /* A NaN weight: forward succeeds and writes a NaN loss. */
    float *params = lm_test_read_params(vt, model);
    params[find_param(model, "transformer.ln_f.bias")->offset] = NAN;
    lm_test_write_params(vt, model, params);
    ck_assert_msg(lm_test_forward(vt, model, &batch, state, &loss) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(isnan(loss), "loss %g", loss);
    host = lm_test_state_read(vt, model, state);
    ck_assert_int_eq(host.bad_step, 0); /* forward only writes the loss */
    ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, state, 1.0, 2.0, 1), LM_OK);
    host = lm_test_state_read(vt, model, state);
    ck_assert_int_eq(host.bad_step, 314);
    ck_assert_int_eq(host.bad_what, LM_BAD_LOSS);
    ck_assert(isnan(host.bad_value));
    ck_assert_int_eq(host.scored, 2);
    /* Backward still runs (its gradients are NaN; the optimizers skip a bad step). */
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);
    /* The first flag wins: a later non-finite loss does not move it. */
    host.step = 400;
    lm_test_state_write(vt, model, state, &host);
    ck_assert_int_eq(lm_test_forward(vt, model, &batch, state, &loss), LM_OK);
    ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, state, 1.0, 2.0, 1), LM_OK);
    host = lm_test_state_read(vt, model, state);
    ck_assert_int_eq(host.bad_step, 314);
    ck_assert_int_eq(host.bad_what, LM_BAD_LOSS);
    /* An infinite loss is flagged too (a fresh state). */
    params[find_param(model, "transformer.ln_f.bias")->offset] = 0.0f;
    params[find_param(model, "transformer.ln_f.weight")->offset] = INFINITY;
    lm_test_write_params(vt, model, params);
    lm_step_state *fresh = lm_test_state_new(vt, model, 1, 0);
    ck_assert_int_eq(lm_test_forward(vt, model, &batch, fresh, &loss), LM_OK);
    ck_assert_msg(!isfinite(loss), "loss %g", loss);
    ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, fresh, 1.0, 1.0, 1), LM_OK);
    host = lm_test_state_read(vt, model, fresh);
    ck_assert_int_eq(host.bad_step, 1);
    ck_assert_int_eq(host.bad_what, LM_BAD_LOSS);
    lm_test_state_free(vt, model, fresh);
    lm_test_state_free(vt, model, state);
    lm_free(params);
    vt->destroy(model);
}
END_TEST

/* backward(..., accumulate = 0) writes the gradients of the batch whatever
 * the buffer held; accumulate = 1 adds them: two passes give the sum. */
START_TEST(test_backward_writes_or_accumulates) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    void *model = gpt2_test_create_ok(tiny_cpu);
    gpt2_test_load_weights(model, GPT2_TINY_WEIGHTS);
    const size_t n = (size_t)gpt2_test_n_params(model);
    lm_step_state *state = lm_test_state_new(vt, model, 1, 0);
    int32_t ids_a[2 * 16], ids_b[3 * 9], labels_a[2 * 16], labels_b[3 * 9];
    for (int i = 0; i < 2 * 16; i++) {
        ids_a[i] = (i * 37 + 5) % 512;
        labels_a[i] = (i * 11 + 3) % 512;
    }
    for (int i = 0; i < 3 * 9; i++) {
        ids_b[i] = (i * 53 + 1) % 512;
        labels_b[i] = i % 4 == 0 ? LM_IGNORE_INDEX : (i * 29 + 7) % 512;
    }
    const lm_batch a = {.B = 2, .T = 16, .input_ids = ids_a, .labels = labels_a, .n_targets = 32};
    const lm_batch b = {.B = 3, .T = 9, .input_ids = ids_b, .labels = labels_b, .n_targets = 20};
    float loss;

    ck_assert_int_eq(lm_test_forward(vt, model, &b, state, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);
    float *grads_b = lm_test_read_grads(vt, model);
    ck_assert_int_eq(lm_test_forward(vt, model, &a, state, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);
    float *grads_a = lm_test_read_grads(vt, model);
    /* Over a's gradients, accumulate = 0 gives b's again, bit for bit. */
    ck_assert_int_eq(lm_test_forward(vt, model, &b, state, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);
    float *again = lm_test_read_grads(vt, model);
    ck_assert_msg(memcmp(again, grads_b, n * sizeof(float)) == 0, "backward(accumulate = 0) did not overwrite");
    lm_free(again);
    /* a then b with accumulate = 1: the sum. */
    ck_assert_int_eq(lm_test_forward(vt, model, &a, state, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_OK);
    ck_assert_int_eq(lm_test_forward(vt, model, &b, state, &loss), LM_OK);
    ck_assert_int_eq(vt->backward(model, 1.0f, 1), LM_OK);
    float *both = lm_test_read_grads(vt, model), *sum = NULL;
    ck_assert_int_eq(lm_alloc((void **)&sum, n * sizeof(float), "sum"), LM_OK);
    for (size_t i = 0; i < n; i++) sum[i] = grads_a[i] + grads_b[i];
    double err, mag, moved, mag_b;
    gpt2_test_compare(both, sum, n, &err, &mag);
    gpt2_test_compare(both, grads_b, n, &moved, &mag_b);
    printf("gpt2 gradient accumulation: |(a then b) - (a + b)| %.2e of %.2e; a's share %.2e\n", err, mag, moved);
    ck_assert_msg(err <= 1e-6 * mag, "accumulated gradients differ from the sum by %g (max %g)", err, mag);
    ck_assert_msg(moved > 1e-3 * mag_b, "accumulate = 1 dropped the first batch's gradients");
    /* init_weights zeroes the gradients. */
    ck_assert_int_eq(vt->init_weights(model, 3), LM_OK);
    lm_free(both);
    both = lm_test_read_grads(vt, model);
    for (size_t i = 0; i < n; i++) ck_assert_msg(both[i] == 0.0f, "gradient %zu is %g after init_weights", i, both[i]);
    lm_free(both);
    lm_free(sum);
    lm_free(grads_a);
    lm_free(grads_b);
    lm_test_state_free(vt, model, state);
    vt->destroy(model);
}
END_TEST

/* Backward reports each layer's gradients final as it finishes them (ABI
 * 2.1, for data-parallel buckets): ln_f first, the tied wte last. */
START_TEST(test_grads_ready_during_backward) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    void *model = gpt2_test_create_ok(tiny_cpu);
    gpt2_test_load_weights(model, GPT2_TINY_WEIGHTS);
    lm_step_state *state = lm_test_state_new(vt, model, 1, 0);
    int32_t ids[2 * 16], labels[2 * 16];
    for (int i = 0; i < 2 * 16; i++) {
        ids[i] = (i * 37 + 5) % 512;
        labels[i] = (i * 11 + 3) % 512;
    }
    const lm_batch batch = {.B = 2, .T = 16, .input_ids = ids, .labels = labels, .n_targets = 32};
    lm_test_check_grads_ready(vt, model, &batch, state, 2, "transformer.ln_f.bias", "transformer.wte.weight");
    lm_test_state_free(vt, model, state);
    vt->destroy(model);
}
END_TEST

/* A training step's forward and backward queue their work and never wait:
 * on the CPU device, no download and no sync between them, dropout on
 * (its key read from the state) and the step's device side included. */
START_TEST(test_training_step_never_waits) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    const char *const settings[] = {"device=cpu", "hf_config=" GPT2_TINY_CONFIG, "embd_pdrop=0.1", "attn_pdrop=0.1",
                                    "resid_pdrop=0.1", NULL};
    void *model = gpt2_test_create_ok(settings);
    gpt2_test_load_weights(model, GPT2_TINY_WEIGHTS);
    lm_device *dev = lm_test_device(vt, model);
    ck_assert_int_eq(dev->type, LM_DEVICE_CPU);
    lm_step_state *state = lm_test_state_new(vt, model, 5, 0);
    int32_t ids[2 * 32], labels[2 * 32];
    for (int i = 0; i < 2 * 32; i++) {
        ids[i] = (i * 37 + 5) % 512;
        labels[i] = (i * 11 + 3) % 512;
    }
    const lm_batch batch = {.B = 2, .T = 32, .input_ids = ids, .labels = labels, .n_targets = 64};
    const lm_param_set set = lm_test_params(vt, model);
    for (int step = 0; step < 2; step++) { /* the first allocates the activations */
        lm_device_counters before = lm_test_counters(vt, model);
        ck_assert_msg(vt->forward(model, &batch, state) == LM_OK, "%s", lm_error_message());
        ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, state, 1.0, 1.0, 1), LM_OK);
        ck_assert_msg(vt->backward(model, 1.0f, step > 0) == LM_OK, "%s", lm_error_message());
        ck_assert_int_eq(dev->ops->step_clip(dev, state, set.grads, LM_F32, set.n_params), LM_OK);
        ck_assert_int_eq(dev->ops->step_finish(dev, state), LM_OK);
        lm_device_counters after = lm_test_counters(vt, model);
        printf("gpt2 training step %d on the cpu: %llu downloads, %llu syncs, %llu uploads\n", step,
               (unsigned long long)(after.downloads - before.downloads),
               (unsigned long long)(after.syncs - before.syncs), (unsigned long long)(after.uploads - before.uploads));
        ck_assert_msg(after.downloads == before.downloads, "a training step downloaded %llu times",
                      (unsigned long long)(after.downloads - before.downloads));
        ck_assert_msg(after.syncs == before.syncs, "a training step waited %llu times",
                      (unsigned long long)(after.syncs - before.syncs));
        ck_assert(after.uploads > before.uploads); /* the batch went up */
    }
    /* The host reads the state when it logs: that is a download (and a wait). */
    lm_device_counters before = lm_test_counters(vt, model);
    lm_step_state host = lm_test_state_read(vt, model, state);
    lm_device_counters after = lm_test_counters(vt, model);
    ck_assert_uint_eq(after.downloads, before.downloads + 1);
    ck_assert_uint_ge(after.syncs, before.syncs + 1);
    ck_assert_int_eq(host.step, 2);
    ck_assert(isfinite(host.step_loss) && host.step_loss > 0.0);
    ck_assert(host.grad_norm > 0.0f);
    lm_test_state_free(vt, model, state);
    vt->destroy(model);
}
END_TEST

/* Training mode with dropout reads its key from the step state: without
 * one, forward is refused with a message saying what to do; eval mode, or a
 * model without dropout, needs none. */
/* upload_batch stages a batch for the forward after it (CUDA graphs):
 * tests/common/upload_batch_check.h says what is checked. */
START_TEST(test_upload_batch_stages_the_next_forward) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    void *model = gpt2_test_create_ok(tiny_cpu);
    ck_assert_int_eq(vt->init_weights(model, 1), LM_OK);
    lm_step_state *state = lm_test_state_new(vt, model, 1, 0);
    int32_t ids[2 * 8], labels[2 * 8];
    for (int i = 0; i < 16; i++) {
        ids[i] = (i * 37 + 5) % 500;
        labels[i] = i % 8 == 7 ? LM_IGNORE_INDEX : (i * 11 + 3) % 512;
    }
    lm_batch batch = {.B = 2, .T = 8, .input_ids = ids, .labels = labels, .n_targets = 14};
    lm_test_check_upload_batch(vt, model, &batch, state, 512);
    lm_test_state_free(vt, model, state);
    vt->destroy(model);
}
END_TEST

START_TEST(test_training_forward_needs_a_state) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    int32_t ids[2 * 8], labels[2 * 8];
    for (int i = 0; i < 16; i++) {
        ids[i] = (i * 37 + 5) % 512;
        labels[i] = (i * 11 + 3) % 512;
    }
    const lm_batch batch = {.B = 2, .T = 8, .input_ids = ids, .labels = labels, .n_targets = 16};
    const char *const drops[] = {"embd_pdrop=0.1", "attn_pdrop=0.1", "resid_pdrop=0.1"};
    for (size_t k = 0; k < 3; k++) {
        const char *const settings[] = {"device=cpu", "hf_config=" GPT2_TINY_CONFIG, drops[k], NULL};
        void *model = gpt2_test_create_ok(settings);
        ck_assert_int_eq(vt->init_weights(model, 1), LM_OK);
        lm_status status = vt->forward(model, &batch, NULL);
        ck_assert_msg(status == LM_ERR_INVALID, "%s: forward without a state gave %d", drops[k], status);
        ck_assert_msg(strstr(lm_error_message(), "training mode needs a step state") &&
                          strstr(lm_error_message(), "set_training(0)"),
                      "%s", lm_error_message());
        ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_ERR_INVALID);
        ck_assert_int_eq(vt->set_training(model, 0), LM_OK);
        ck_assert_msg(vt->forward(model, &batch, NULL) == LM_OK, "%s", lm_error_message());
        vt->destroy(model);
    }
    void *plain = gpt2_test_create_ok(tiny_cpu); /* no dropout */
    ck_assert_int_eq(vt->init_weights(plain, 1), LM_OK);
    ck_assert_msg(vt->forward(plain, &batch, NULL) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(vt->backward(plain, 1.0f, 0) == LM_OK, "%s", lm_error_message());
    vt->destroy(plain);
}
END_TEST

/* forward_train's contract (the skeleton's, shared by every built-in
 * architecture): labels required; the logits are gone afterwards (logits()
 * says why); backward must get the loss_scale forward_train was given, and
 * a refused backward leaves the forward usable; forward keeps working as
 * before, at any scale. */
START_TEST(test_forward_train_contract) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    int32_t ids[2 * 8], labels[2 * 8];
    for (int i = 0; i < 16; i++) {
        ids[i] = (i * 37 + 5) % 512;
        labels[i] = i % 5 == 0 ? LM_IGNORE_INDEX : (i * 11 + 3) % 512;
    }
    const lm_batch batch = {.B = 2, .T = 8, .input_ids = ids, .labels = labels, .n_targets = 12};
    const lm_batch unlabelled = {.B = 2, .T = 8, .input_ids = ids};
    void *model = gpt2_test_create_ok(tiny_cpu);
    ck_assert_int_eq(vt->init_weights(model, 1), LM_OK);
    lm_step_state *state = lm_test_state_new(vt, model, 1, 0);
    static float logits[2 * 8 * 512];
    const size_t n_logits = sizeof logits / sizeof logits[0];

    ck_assert_int_eq(vt->forward_train(model, &unlabelled, state, 1.0f), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "forward_train needs a batch with labels"), "%s", lm_error_message());

    ck_assert_msg(vt->forward_train(model, &batch, state, 0.25f) == LM_OK, "%s", lm_error_message());
    const float loss = lm_test_state_read(vt, model, state).loss;
    ck_assert_msg(isfinite(loss) && loss > 0.0f, "forward_train wrote the loss %g", (double)loss);
    ck_assert_int_eq(vt->logits(model, logits, n_logits), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "forward_train") && strstr(lm_error_message(), "run forward"), "%s",
                  lm_error_message());
    ck_assert_int_eq(vt->backward(model, 1.0f, 0), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "backward(loss_scale=1) after forward_train(loss_scale=0.25)") &&
                      strstr(lm_error_message(), "same loss_scale"),
                  "%s", lm_error_message());
    ck_assert_msg(vt->backward(model, 0.25f, 0) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(vt->backward(model, 0.25f, 0), LM_ERR_INVALID); /* once per forward */

    /* forward after it: the logits are there, and backward takes any scale. */
    ck_assert_msg(vt->forward(model, &batch, state) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(lm_test_state_read(vt, model, state).loss == loss, "forward's loss differs from forward_train's");
    ck_assert_msg(vt->logits(model, logits, n_logits) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(vt->backward(model, 3.0f, 0) == LM_OK, "%s", lm_error_message());
    lm_test_state_free(vt, model, state);
    vt->destroy(model);
}
END_TEST

/* The skeleton allocates its buffers on first use: in eval mode (a model
 * loaded for inference) parameters() hands out no gradients; in training
 * mode they exist, zeroed, and stay at one address (an optimizer keeps it). */
START_TEST(test_gradients_only_for_training) {
    const lm_architecture_vtable *vt = gpt2_test_arch();
    void *model = gpt2_test_create_ok(tiny_cpu);
    lm_param_set set;
    ck_assert_int_eq(vt->set_training(model, 0), LM_OK);
    ck_assert_int_eq(vt->parameters(model, &set), LM_OK);
    ck_assert_ptr_nonnull(set.params);
    ck_assert_ptr_null(set.grads);
    float *params = set.params;
    ck_assert_int_eq(vt->set_training(model, 1), LM_OK);
    ck_assert_int_eq(vt->parameters(model, &set), LM_OK);
    ck_assert_ptr_eq(set.params, params);
    ck_assert_ptr_nonnull(set.grads);
    void *grads = set.grads;
    float *host = malloc(set.n_params * sizeof *host);
    ck_assert_ptr_nonnull(host);
    ck_assert_int_eq(set.device->ops->download(set.device, host, set.grads, set.n_params * sizeof *host), LM_OK);
    for (size_t i = 0; i < set.n_params; i++) ck_assert_float_eq(host[i], 0.0f);
    free(host);
    ck_assert_int_eq(vt->set_training(model, 0), LM_OK);
    ck_assert_int_eq(vt->parameters(model, &set), LM_OK);
    ck_assert_ptr_eq(set.grads, grads); /* once allocated, always handed out */
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
    const lm_batch *batch = NULL;
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

    /* The batch is the objective's own memory. */
    ck_assert_int_eq(clm->make_batch(objective, tokens, 2, 4, 0, &batch), LM_OK);
    ck_assert_ptr_nonnull(batch);
    const int32_t want_labels[8] = {6, 7, 8, -100, 10, 11, 12, -100};
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(batch->input_ids[i], tokens[i]);
        ck_assert_int_eq(batch->labels[i], want_labels[i]);
    }
    ck_assert_ptr_ne(batch->input_ids, tokens); /* a copy, not the caller's tokens */
    ck_assert_int_eq(batch->B, 2);
    ck_assert_int_eq(batch->T, 4);
    ck_assert_int_eq(batch->n_targets, 6);
    ck_assert_ptr_null(batch->attention_mask);
    ck_assert_ptr_null(batch->token_type_ids);
    /* A smaller batch reuses the same struct and arrays. */
    const lm_batch *smaller = NULL;
    const int32_t *ids = batch->input_ids;
    ck_assert_int_eq(clm->make_batch(objective, tokens + 4, 1, 4, 1, &smaller), LM_OK);
    ck_assert_ptr_eq(smaller, batch);
    ck_assert_ptr_eq(smaller->input_ids, ids);
    ck_assert_int_eq(smaller->B, 1);
    ck_assert_int_eq(smaller->n_targets, 3);
    ck_assert_int_eq(smaller->labels[0], 10);
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
    tcase_add_test(tc, test_nan_loss_is_flagged_on_the_device);
    tcase_add_test(tc, test_backward_writes_or_accumulates);
    tcase_add_test(tc, test_grads_ready_during_backward);
    tcase_add_test(tc, test_training_step_never_waits);
    tcase_add_test(tc, test_training_forward_needs_a_state);
    tcase_add_test(tc, test_upload_batch_stages_the_next_forward);
    tcase_add_test(tc, test_clm_objective);
    tcase_add_test(tc, test_gradients_only_for_training);
    tcase_add_test(tc, test_forward_train_contract);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(gpt2_model_suite(), NULL);
}
