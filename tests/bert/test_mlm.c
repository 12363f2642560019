/* The mlm objective: DataCollatorForLanguageModeling semantics checked
 * statistically (selection rate, 80/10/10 split, uniform random ids over the
 * tokenizer's vocabulary, specials never touched), determinism per batch
 * index, bind() refusals, and a batch run through the BERT plugin. */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bert_test_util.h"
#include "lmcore/tensor.h"
#include "test_main.h"

/* A BERT-like vocabulary: [PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103. */
#define TOKENIZER_VOCAB 1000
#define MODEL_VOCAB 1024
static const int32_t specials[] = {0, 100, 101, 102, 103};
static const lm_vocab_info bert_vocab = {.vocab_size = TOKENIZER_VOCAB, .unk_id = 100, .pad_id = 0, .bos_id = -1,
                                         .eos_id = -1, .cls_id = 101, .sep_id = 102, .mask_id = 103,
                                         .special_ids = specials, .n_special = 5};
static const lm_arch_info bert_arch = {.model_type = "bert", .causal = 0, .uses_token_types = 1,
                                       .vocab_size = MODEL_VOCAB, .max_positions = 512};

static int is_special(int32_t id) {
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        if (specials[i] == id) return 1;
    return 0;
}

static void *make_bound(const char *const *settings) {
    void *o = NULL;
    ck_assert_msg(bert_test_create_mlm(&o, settings) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(bert_test_mlm()->bind(o, &bert_arch, &bert_vocab) == LM_OK, "%s", lm_error_message());
    return o;
}

/* B blocks of T ids: [CLS] ... [SEP] with a few [UNK] and [PAD] inside. */
static void fill_blocks(int32_t *tokens, int B, int T, uint32_t salt) {
    uint32_t x = 2463534242u ^ salt;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            int32_t id = (int32_t)(x % TOKENIZER_VOCAB);
            if (t == 0) id = 101;
            else if (t == T - 1) id = 102;
            else if (t % 37 == 0) id = 100;
            else if (t % 53 == 0) id = 0;
            tokens[b * T + t] = id;
        }
}

/* A copy of a batch's arrays: the objective owns its batch and rewrites it
 * on the next make_batch, and the tests compare batches made one after the
 * other.  `batch` is the objective's own, valid until its next make_batch. */
typedef struct batch_arrays {
    int32_t *input_ids, *labels;
    size_t capacity;
    lm_batch batch;
} batch_arrays;

static void alloc_batch(batch_arrays *a, size_t n) {
    a->input_ids = malloc(n * sizeof(int32_t));
    a->labels = malloc(n * sizeof(int32_t));
    ck_assert(a->input_ids && a->labels);
    a->capacity = n;
}

static void make(void *o, const int32_t *tokens, int B, int T, uint64_t index, batch_arrays *a) {
    const lm_batch *made = NULL;
    ck_assert_msg(bert_test_mlm()->make_batch(o, tokens, B, T, index, &made) == LM_OK, "%s", lm_error_message());
    ck_assert_ptr_nonnull(made);
    ck_assert_ptr_nonnull(made->input_ids);
    ck_assert_ptr_nonnull(made->labels);
    ck_assert_uint_le((size_t)B * (size_t)T, a->capacity);
    memcpy(a->input_ids, made->input_ids, (size_t)B * (size_t)T * sizeof(int32_t));
    memcpy(a->labels, made->labels, (size_t)B * (size_t)T * sizeof(int32_t));
    a->batch = *made;
}

static void free_batch(batch_arrays *a) {
    free(a->input_ids);
    free(a->labels);
}

/* 2000 blocks x 128 tokens, in batches of 8 with batch indices 0..249. */
START_TEST(test_masking_statistics) {
    enum { B = 8, T = 128, BATCHES = 250 };
    void *o = make_bound(NULL);
    int32_t tokens[B * T];
    batch_arrays a;
    alloc_batch(&a, B * T);
    long eligible = 0, selected = 0, masked = 0, randomised = 0, kept = 0, random_sum = 0;
    int32_t random_min = TOKENIZER_VOCAB, random_max = -1;
    long random_specials = 0;
    for (int k = 0; k < BATCHES; k++) {
        fill_blocks(tokens, B, T, (uint32_t)k);
        make(o, tokens, B, T, (uint64_t)k, &a);
        ck_assert_int_eq(a.batch.B, B);
        ck_assert_int_eq(a.batch.T, T);
        ck_assert_ptr_null(a.batch.attention_mask);
        ck_assert_ptr_null(a.batch.token_type_ids);
        long targets = 0;
        for (int i = 0; i < B * T; i++) {
            int32_t original = tokens[i], input = a.input_ids[i], label = a.labels[i];
            if (is_special(original)) {
                ck_assert_msg(label == LM_IGNORE_INDEX && input == original, "special token %d was selected",
                              original);
                continue;
            }
            eligible++;
            if (label == LM_IGNORE_INDEX) {
                ck_assert_int_eq(input, original);
                continue;
            }
            ck_assert_int_eq(label, original);
            targets++;
            if (input == 103) masked++;
            else if (input == original) kept++;
            else {
                randomised++;
                ck_assert(input >= 0 && input < TOKENIZER_VOCAB); /* the tokenizer's ids, not the model's */
                random_sum += input;
                if (input < random_min) random_min = input;
                if (input > random_max) random_max = input;
                random_specials += is_special(input);
            }
        }
        ck_assert_int_eq(a.batch.n_targets, targets);
        selected += targets;
    }
    double rate = (double)selected / (double)eligible;
    double p_mask = (double)masked / (double)selected, p_random = (double)randomised / (double)selected;
    double p_kept = (double)kept / (double)selected, random_mean = (double)random_sum / (double)randomised;
    printf("mlm masking: %ld eligible tokens, %.4f selected; of those %.4f [MASK], %.4f random, %.4f unchanged; "
           "random ids in [%d, %d], mean %.1f, %ld specials\n",
           eligible, rate, p_mask, p_random, p_kept, (int)random_min, (int)random_max, random_mean, random_specials);
    ck_assert_msg(fabs(rate - 0.15) < 0.005, "selection rate %.4f", rate);
    ck_assert_msg(fabs(p_mask - 0.80) < 0.01, "[MASK] share %.4f", p_mask);
    /* A random id equals the original (or [MASK]) 1 time in 1000: counted as kept (masked). */
    ck_assert_msg(fabs(p_random - 0.10) < 0.01, "random share %.4f", p_random);
    ck_assert_msg(fabs(p_kept - 0.10) < 0.01, "unchanged share %.4f", p_kept);
    /* Uniform over [0, 1000): mean 499.5, std 289 / sqrt(n) ~ 5. */
    ck_assert_msg(fabs(random_mean - 499.5) < 20.0, "random ids mean %.1f", random_mean);
    ck_assert(random_min < 20 && random_max > 980);
    ck_assert_msg(random_specials > 0, "Hugging Face draws random ids from the whole vocabulary, specials included");
    free_batch(&a);
    bert_test_mlm()->destroy(o);
}
END_TEST

START_TEST(test_masks_are_a_function_of_the_batch_index) {
    enum { B = 4, T = 128 };
    void *o = make_bound(NULL);
    const char *const other_seed[] = {"seed=7", NULL};
    void *o7 = make_bound(other_seed);
    int32_t tokens[B * T];
    fill_blocks(tokens, B, T, 99);
    batch_arrays a, b;
    alloc_batch(&a, B * T);
    alloc_batch(&b, B * T);
    const size_t bytes = B * T * sizeof(int32_t);
    make(o, tokens, B, T, 12, &a);
    make(o, tokens, B, T, 13, &b); /* another batch in between must not matter */
    make(o, tokens, B, T, 12, &b);
    ck_assert(memcmp(a.input_ids, b.input_ids, bytes) == 0 && memcmp(a.labels, b.labels, bytes) == 0);
    make(o, tokens, B, T, 13, &b);
    ck_assert(memcmp(a.labels, b.labels, bytes) != 0);
    make(o, tokens, B, T, (1ull << 62) + 12, &b); /* the trainer's evaluation range */
    ck_assert(memcmp(a.labels, b.labels, bytes) != 0);
    make(o7, tokens, B, T, 12, &b);
    ck_assert(memcmp(a.labels, b.labels, bytes) != 0);
    /* Two blocks with the same tokens in one batch get different masks. */
    int32_t same[2 * T];
    memcpy(same, tokens, T * sizeof(int32_t));
    memcpy(same + T, tokens, T * sizeof(int32_t));
    make(o, same, 2, T, 0, &b);
    ck_assert(memcmp(b.labels, b.labels + T, T * sizeof(int32_t)) != 0);
    free_batch(&a);
    free_batch(&b);
    bert_test_mlm()->destroy(o);
    bert_test_mlm()->destroy(o7);
}
END_TEST

START_TEST(test_probabilities_are_configurable) {
    enum { B = 2, T = 128 };
    int32_t tokens[B * T];
    fill_blocks(tokens, B, T, 5);
    batch_arrays a;
    alloc_batch(&a, B * T);
    const char *const all_masked[] = {"mlm_probability=1.0", "mask_replace_prob=1.0", "random_replace_prob=0", NULL};
    void *o = make_bound(all_masked);
    make(o, tokens, B, T, 0, &a);
    for (int i = 0; i < B * T; i++) {
        if (is_special(tokens[i])) ck_assert_int_eq(a.labels[i], LM_IGNORE_INDEX);
        else ck_assert(a.labels[i] == tokens[i] && a.input_ids[i] == 103);
    }
    bert_test_mlm()->destroy(o);
    /* Nothing eligible: nothing selected, n_targets 0 (the trainer skips the batch). */
    int32_t only_specials[4] = {101, 0, 0, 102};
    o = make_bound(NULL);
    make(o, only_specials, 1, 4, 0, &a);
    ck_assert_int_eq(a.batch.n_targets, 0);
    for (int i = 0; i < 4; i++) ck_assert(a.labels[i] == LM_IGNORE_INDEX && a.input_ids[i] == only_specials[i]);
    int32_t outside[2] = {5, MODEL_VOCAB};
    const lm_batch *refused = NULL;
    ck_assert_int_eq(bert_test_mlm()->make_batch(o, outside, 1, 2, 0, &refused), LM_ERR_INVALID);
    bert_test_mlm()->destroy(o);
    free_batch(&a);
}
END_TEST

static void expect_mlm_config_error(const char *const *settings, const char *needle) {
    void *o = NULL;
    lm_status status = bert_test_create_mlm(&o, settings);
    ck_assert_int_eq(status, LM_ERR_INVALID);
    ck_assert_ptr_null(o);
    ck_assert_msg(strstr(lm_error_message(), needle), "message '%s' lacks '%s'", lm_error_message(), needle);
}

START_TEST(test_bind_and_config_refusals) {
    const lm_objective_vtable *vt = bert_test_mlm();
    void *o = NULL;
    ck_assert_int_eq(bert_test_create_mlm(&o, NULL), LM_OK);
    int32_t tokens[4] = {5, 6, 7, 8};
    const lm_batch *batch = NULL;
    ck_assert_int_eq(vt->make_batch(o, tokens, 1, 4, 0, &batch), LM_ERR_INVALID);
    ck_assert(strstr(lm_error_message(), "bind()"));

    lm_arch_info gpt2 = {.model_type = "gpt2", .causal = 1, .vocab_size = 50257};
    ck_assert_int_eq(vt->bind(o, &gpt2, &bert_vocab), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(),
                     "objective 'mlm' needs a bidirectional architecture, but 'gpt2' is causal: use objective 'clm'");
    lm_vocab_info no_mask = bert_vocab;
    no_mask.mask_id = -1;
    ck_assert_int_eq(vt->bind(o, &bert_arch, &no_mask), LM_ERR_INVALID);
    ck_assert(strstr(lm_error_message(), "no mask token"));
    lm_vocab_info too_big = bert_vocab;
    too_big.vocab_size = MODEL_VOCAB + 1;
    ck_assert_int_eq(vt->bind(o, &bert_arch, &too_big), LM_ERR_INVALID);
    ck_assert(strstr(lm_error_message(), "vocab_size"));
    vt->destroy(o);

    const char *const zero[] = {"mlm_probability=0", NULL};
    expect_mlm_config_error(zero, "mlm_probability");
    const char *const sum[] = {"mask_replace_prob=0.9", "random_replace_prob=0.2", NULL};
    expect_mlm_config_error(sum, "must not exceed 1");
    const char *const typo[] = {"mlm_prob=0.2", NULL};
    expect_mlm_config_error(typo, "mlm_prob");
}
END_TEST

/* debug_masking prints one block before and after masking, once. */
START_TEST(test_debug_masking_logs_once) {
    enum { B = 2, T = 16 };
    const char *const debug[] = {"debug_masking=true", "mlm_probability=0.5", NULL};
    void *o = make_bound(debug);
    int32_t tokens[B * T];
    fill_blocks(tokens, B, T, 3);
    batch_arrays a;
    alloc_batch(&a, B * T);
    char path[] = "/tmp/lm_mlm_log_XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    make(o, tokens, B, T, 0, &a);
    make(o, tokens, B, T, 1, &a);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    lm_buffer log = {0};
    ck_assert_int_eq(lm_file_read(path, &log), LM_OK);
    unlink(path);
    ck_assert_int_eq(lm_buffer_append(&log, "", 1), LM_OK);
    ck_assert_msg(strstr(log.data, "before masking: 101 "), "log: %s", log.data);
    ck_assert_msg(strstr(log.data, "after masking:  101 "), "log: %s", log.data);
    ck_assert_msg(strstr(log.data, "[MASK]"), "log: %s", log.data);
    const char *first = strstr(log.data, "before masking");
    ck_assert_msg(strstr(first + 1, "before masking") == NULL, "logged more than once: %s", log.data);
    lm_buffer_free(&log);
    free_batch(&a);
    bert_test_mlm()->destroy(o);
}
END_TEST

/* An mlm batch trains the tiny BERT: bind to its info, forward, backward. */
START_TEST(test_mlm_batch_runs_through_bert) {
    const lm_architecture_vtable *arch = bert_test_arch();
    const char *const tiny[] = {"device=cpu", "hf_config=" BERT_TINY_CONFIG, NULL};
    void *model = bert_test_create_ok(tiny);
    bert_test_load_weights(model, BERT_TINY_WEIGHTS);
    lm_arch_info info;
    ck_assert_int_eq(arch->info(model, &info), LM_OK);
    void *o = NULL;
    ck_assert_int_eq(bert_test_create_mlm(&o, NULL), LM_OK);
    const int32_t tiny_specials[] = {0, 1, 2, 3, 4};
    lm_vocab_info vocab = {.vocab_size = 512, .unk_id = 1, .pad_id = 0, .bos_id = -1, .eos_id = -1, .cls_id = 2,
                           .sep_id = 3, .mask_id = 4, .special_ids = tiny_specials, .n_special = 5};
    ck_assert_msg(bert_test_mlm()->bind(o, &info, &vocab) == LM_OK, "%s", lm_error_message());
    enum { B = 4, T = 32 };
    int32_t tokens[B * T];
    for (int i = 0; i < B * T; i++) tokens[i] = 5 + (i * 37) % 500;
    batch_arrays a;
    alloc_batch(&a, B * T);
    make(o, tokens, B, T, 3, &a);
    ck_assert(a.batch.n_targets > 0);
    /* One training step's device side, as the trainer runs it: forward
     * writes the loss into the step state, backward the gradients, and
     * step_clip their norm; the host reads the state once, at the end. */
    lm_param_set params;
    memset(&params, 0, sizeof params);
    params.struct_size = sizeof params;
    ck_assert_msg(arch->parameters(model, &params) == LM_OK, "%s", lm_error_message());
    lm_device *dev = params.device;
    lm_step_state host, *state = NULL;
    memset(&host, 0, sizeof host);
    host.seed = 1;
    host.clip_scale = 1.0f;
    ck_assert_int_eq(dev->ops->alloc(dev, (void **)&state, sizeof *state, "the test's step state"), LM_OK);
    ck_assert_int_eq(dev->ops->upload(dev, state, &host, sizeof host), LM_OK);
    ck_assert_msg(arch->forward(model, &a.batch, state) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(arch->backward(model, 1.0f, 0) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(dev->ops->step_clip(dev, state, params.grads, (lm_dtype)params.grad_dtype, params.n_params), LM_OK);
    ck_assert_msg(dev->ops->download(dev, &host, state, sizeof host) == LM_OK, "%s", lm_error_message());
    dev->ops->free(dev, state);
    ck_assert_msg(isfinite(host.loss) && host.loss > 4.0f && host.loss < 9.0f, "loss %f (log 512 = 6.24)", host.loss);
    ck_assert(host.grad_norm > 0.0f && isfinite(host.grad_norm));
    free_batch(&a);
    bert_test_mlm()->destroy(o);
    arch->destroy(model);
}
END_TEST

/* The batch is the objective's: the same struct every time, its arrays
 * grown for a larger batch and reused for a smaller one. */
START_TEST(test_batch_belongs_to_the_objective) {
    void *o = make_bound(NULL);
    enum { T = 16 };
    int32_t tokens[8 * T];
    fill_blocks(tokens, 8, T, 11);
    const lm_batch *small = NULL, *large = NULL, *again = NULL;
    ck_assert_int_eq(bert_test_mlm()->make_batch(o, tokens, 1, T, 0, &small), LM_OK);
    ck_assert_int_eq(bert_test_mlm()->make_batch(o, tokens, 8, T, 1, &large), LM_OK);
    ck_assert_ptr_eq(small, large);
    ck_assert_int_eq(large->B, 8);
    for (int i = 0; i < 8 * T; i++)
        ck_assert(large->labels[i] == LM_IGNORE_INDEX || large->labels[i] == tokens[i]);
    const int32_t *grown = large->input_ids;
    ck_assert_int_eq(bert_test_mlm()->make_batch(o, tokens, 2, T, 2, &again), LM_OK);
    ck_assert_ptr_eq(again->input_ids, grown); /* no allocation for a batch that fits */
    ck_assert_int_eq(again->B, 2);
    bert_test_mlm()->destroy(o);
}
END_TEST

static Suite *mlm_suite(void) {
    Suite *s = suite_create("mlm");
    TCase *tc = tcase_create("masking");
    tcase_add_test(tc, test_masking_statistics);
    tcase_add_test(tc, test_masks_are_a_function_of_the_batch_index);
    tcase_add_test(tc, test_probabilities_are_configurable);
    tcase_add_test(tc, test_bind_and_config_refusals);
    tcase_add_test(tc, test_debug_masking_logs_once);
    tcase_add_test(tc, test_mlm_batch_runs_through_bert);
    tcase_add_test(tc, test_batch_belongs_to_the_objective);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(mlm_suite(), NULL);
}
