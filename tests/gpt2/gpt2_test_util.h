/* Helpers shared by the GPT-2 suites: plugin loading, fixture loading and
 * tensor comparison. */
#ifndef LM_TEST_GPT2_UTIL_H
#define LM_TEST_GPT2_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/architecture.h"
#include "lmcore/config.h"
#include "lmcore/objective.h"
#include "lmcore/safetensors.h"

#define GPT2_FIXTURE_DIR LM_TEST_SOURCE_DIR "/tests/gpt2/fixtures"
#define GPT2_TINY_CONFIG GPT2_FIXTURE_DIR "/tiny/config.json"
#define GPT2_TINY_WEIGHTS GPT2_FIXTURE_DIR "/tiny/model.safetensors"

/* dlopens plugins/lm_<file>.so and returns its vtable (ck_assert on failure). */
const void *gpt2_test_vtable(const char *file, int kind);
const lm_architecture_vtable *gpt2_test_arch(void);
const lm_objective_vtable *gpt2_test_clm(void);

/* Creates the architecture from "key=value" strings (NULL-terminated);
 * returns the status and leaves the message in lm_error_message(). */
lm_status gpt2_test_create(void **model, const char *const *settings);
/* The same, ck_assert-ing success. */
void *gpt2_test_create_ok(const char *const *settings);

/* Reads every parameter of `model` from a safetensors file (HF names) into a
 * host copy of the flat buffer (n_params floats, lm_free it). */
float *gpt2_test_read_named(void *model, const char *path);
void gpt2_test_load_weights(void *model, const char *path);

/* max |a - ref| and max |ref| over n floats. */
void gpt2_test_compare(const float *a, const float *ref, size_t n, double *max_abs_err, double *max_abs_ref);

int64_t gpt2_test_n_params(void *model);

#endif
