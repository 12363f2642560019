/* The small GPT-2 and BERT models and batches that tests comparing two
 * settings of one model use (tests/bf16_logits: logits_dtype,
 * tests/vocab_padding: pad_vocab_to_multiple_of): each test creates the
 * same tiny model twice, once per value of the setting under test, and
 * feeds both the same seeded batches.  Header-only, like the rest of
 * tests/common; the architecture plugins are found through lm_test_plugin
 * (model_steps.h). */
#ifndef LMCORE_TESTS_SMALL_MODELS_H
#define LMCORE_TESTS_SMALL_MODELS_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lmcore/lmcore.h"
#include "model_steps.h"
#include "registry.h" /* lm_plugin */

/* The models' shape: V tokens (not a multiple of 128, so padding changes
 * it), batches of B rows of T tokens.  Must match the settings below. */
enum {
    LM_TEST_SMALL_V = 300,
    LM_TEST_SMALL_B = 2,
    LM_TEST_SMALL_T = 16,
    LM_TEST_SMALL_N = LM_TEST_SMALL_B * LM_TEST_SMALL_T
};

/* Loop tests' _i % 2 picks the architecture, and with it the name of its
 * tied word embeddings (the tensor that the head reads). */
static const char *const lm_test_small_archs[] = {"gpt2", "bert"};
static const char *const lm_test_small_wte_names[] = {"transformer.wte.weight",
                                                      "bert.embeddings.word_embeddings.weight"};

/* The vtable of the arch_<arch> plugin. */
static inline const lm_architecture_vtable *lm_test_arch_vtable(const char *arch) {
    char file[64];
    snprintf(file, sizeof file, "arch_%s", arch);
    return lm_test_plugin(file, LM_KIND_ARCHITECTURE)->vtable;
}

/* An architecture plugin record around a vtable, for the core's functions
 * that take one (lm_model_save, lm_model_load_weights, generation). */
static inline lm_plugin lm_test_arch_plugin(const char *name, const lm_architecture_vtable *vt) {
    lm_plugin plugin;
    memset(&plugin, 0, sizeof plugin);
    plugin.kind = LM_KIND_ARCHITECTURE;
    plugin.name = name;
    plugin.vtable.architecture = *vt;
    return plugin;
}

/* A small model of LM_TEST_SMALL_V tokens on `device`, with the setting
 * under test `key` = `value` (value NULL: the key not given, so its
 * default applies) and `extra` settings after it (NULL-ended).  An extra
 * list that starts with hf_config= replaces the small model's settings.
 * Returns create's (or the config's validation's) status, with *model NULL
 * on failure, so that tests can check refusals. */
static inline lm_status lm_test_small_model_try_create(const char *arch, const char *device, const char *key,
                                                       const char *value, const char *const *extra, void **model) {
    static const char *const gpt2[] = {"vocab_size=300", "n_layer=2", "n_head=2", "n_embd=32", "n_positions=16",
                                       NULL};
    static const char *const bert[] = {"vocab_size=300",          "num_hidden_layers=2",
                                       "num_attention_heads=2",   "hidden_size=32",
                                       "intermediate_size=64",    "max_position_embeddings=16",
                                       NULL};
    const int is_gpt2 = strcmp(arch, "gpt2") == 0;
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    char device_setting[64];
    snprintf(device_setting, sizeof device_setting, "device=%s", device);
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, is_gpt2 ? "architecture 'gpt2'" : "architecture 'bert'"), LM_OK);
    ck_assert_int_eq(lm_config_set_parsed(cfg, device_setting), LM_OK);
    if (!extra || !extra[0] || strncmp(extra[0], "hf_config=", 10) != 0)
        for (const char *const *s = is_gpt2 ? gpt2 : bert; *s; s++)
            ck_assert_int_eq(lm_config_set_parsed(cfg, *s), LM_OK);
    if (value) ck_assert_int_eq(lm_config_set_string(cfg, key, value), LM_OK);
    for (const char *const *s = extra; s && *s; s++) ck_assert_int_eq(lm_config_set_parsed(cfg, *s), LM_OK);
    *model = NULL;
    lm_status status = vt->create(model, cfg);
    if (status == LM_OK) status = lm_config_validate(cfg); /* what the core does after create() */
    if (status != LM_OK && *model) {
        vt->destroy(*model);
        *model = NULL;
    }
    lm_config_destroy(cfg);
    return status;
}

/* The same, asserting that the model was created. */
static inline void *lm_test_small_model_create(const char *arch, const char *device, const char *key,
                                               const char *value, const char *const *extra) {
    void *model = NULL;
    lm_status status = lm_test_small_model_try_create(arch, device, key, value, extra, &model);
    ck_assert_msg(status == LM_OK, "create %s %s %s: %s", arch, key, value ? value : "(unset)", lm_error_message());
    return model;
}

/* A small seeded generator (a 64-bit LCG's high bits): the same batches on
 * every platform, unlike rand(). */
static inline uint32_t lm_test_random_next(uint64_t *state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}

/* A batch of the small models' shape with its own storage. */
typedef struct lm_test_small_batch {
    int32_t ids[LM_TEST_SMALL_N], labels[LM_TEST_SMALL_N];
    lm_batch batch;
} lm_test_small_batch;

/* Which ids a batch holds: all random, or with every 7th id (i % 7 == 3)
 * one of the last three of the vocabulary instead, so that the last real
 * rows of the head are used (what a padded vocabulary must keep apart from
 * its padding). */
typedef enum lm_test_small_ids { LM_TEST_SMALL_IDS_RANDOM, LM_TEST_SMALL_IDS_WITH_TOP } lm_test_small_ids;

/* Ids from `seed` as `ids` says.  causal (GPT-2): labels are the next ids
 * (the last of each row unscored); otherwise (BERT) about a quarter of the
 * positions are scored, with random labels.  Each test's batches depend on
 * these choices: changing them changes the numbers it measures. */
static inline void lm_test_small_batch_make(lm_test_small_batch *b, int causal, uint64_t seed, lm_test_small_ids ids) {
    const int with_top_ids = ids == LM_TEST_SMALL_IDS_WITH_TOP;
    const uint32_t vocab = LM_TEST_SMALL_V;
    uint64_t state = seed;
    for (int i = 0; i < LM_TEST_SMALL_N; i++)
        b->ids[i] = with_top_ids && i % 7 == 3 ? LM_TEST_SMALL_V - 1 - i % 3
                                               : (int32_t)(lm_test_random_next(&state) % vocab);
    int64_t scored = 0;
    for (int i = 0; i < LM_TEST_SMALL_N; i++) {
        if (causal) b->labels[i] = (i + 1) % LM_TEST_SMALL_T == 0 ? LM_IGNORE_INDEX : b->ids[i + 1];
        else
            b->labels[i] = lm_test_random_next(&state) % 4 == 0 || i == 5
                               ? (int32_t)(lm_test_random_next(&state) % vocab)
                               : LM_IGNORE_INDEX;
        scored += b->labels[i] != LM_IGNORE_INDEX;
    }
    memset(&b->batch, 0, sizeof b->batch);
    b->batch.struct_size = sizeof b->batch;
    b->batch.B = LM_TEST_SMALL_B;
    b->batch.T = LM_TEST_SMALL_T;
    b->batch.input_ids = b->ids;
    b->batch.labels = b->labels;
    b->batch.n_targets = scored;
}

/* The number of elements of a tensor (its shape; storage may hold more,
 * the padding rows). */
static inline size_t lm_test_desc_numel(const lm_param_desc *d) {
    size_t n = 1;
    for (int32_t k = 0; k < d->ndim; k++) n *= (size_t)d->shape[k];
    return n;
}

#endif
