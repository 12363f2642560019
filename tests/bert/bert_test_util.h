/* Helpers shared by the BERT and MLM suites: plugin loading, model creation,
 * fixture loading and tensor comparison. */
#ifndef LM_TEST_BERT_UTIL_H
#define LM_TEST_BERT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/architecture.h"
#include "lmcore/config.h"
#include "lmcore/objective.h"
#include "lmcore/safetensors.h"

#define BERT_FIXTURE_DIR LM_TEST_SOURCE_DIR "/tests/bert/fixtures"
#define BERT_TINY_CONFIG BERT_FIXTURE_DIR "/tiny/config.json"
#define BERT_TINY_WEIGHTS BERT_FIXTURE_DIR "/tiny/model.safetensors"
#define BERT_REF_PATH BERT_FIXTURE_DIR "/reference.safetensors"
#define BERT_GRADS_PATH BERT_FIXTURE_DIR "/grads.safetensors"

/* dlopens plugins/lm_<file>.so and returns its vtable (ck_assert on failure). */
const void *bert_test_vtable(const char *file, int kind, const char *expected_name);
const lm_architecture_vtable *bert_test_arch(void);
const lm_objective_vtable *bert_test_mlm(void);

/* Creates a plugin from "key=value" strings (NULL-terminated) the way the
 * core does (create, then lm_config_validate); returns the status and leaves
 * the message in lm_error_message(). */
lm_status bert_test_create(void **model, const char *const *settings);
void *bert_test_create_ok(const char *const *settings);
lm_status bert_test_create_mlm(void **objective, const char *const *settings);

/* Reads every parameter of `model` from a safetensors file (HF names) into a
 * host copy of the flat buffer (n_params floats, lm_free it). */
float *bert_test_read_named(void *model, const char *path);
void bert_test_load_weights(void *model, const char *path);
int64_t bert_test_n_params(void *model);
const lm_param_desc *bert_test_find_param(void *model, const char *name);

/* max |a - ref| (NaN wins) and max |ref| over n floats. */
void bert_test_compare(const float *a, const float *ref, size_t n, double *max_abs_err, double *max_abs_ref);

/* The fixture's batch (input_ids, attention_mask, token_type_ids, labels). */
typedef struct bert_fixture_batch {
    int32_t *input_ids, *attention_mask, *token_type_ids, *labels;
    int64_t n_targets;
    lm_batch batch;
} bert_fixture_batch;
void bert_test_load_batch(bert_fixture_batch *fb);
void bert_test_free_batch(bert_fixture_batch *fb);
float bert_test_ref_scalar(const char *name, size_t index);

#endif
