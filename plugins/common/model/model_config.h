/* Reading an architecture's configuration: every key from the lmcore
 * config, else from the hf_config file (config.json), else the Hugging Face
 * default; then the checks that every transformer configuration makes.
 *
 * The order follows lm_config's rules: read every key first (reading is
 * what makes a key known), then model_config_validate (a wrong type or an
 * unknown key is reported by its name before any value is judged), then
 * the value checks, whose messages say where a value came from. */
#ifndef LM_PLUGIN_MODEL_CONFIG_H
#define LM_PLUGIN_MODEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "hf_config.h"
#include "lmcore/config.h"
#include "model_device.h"

typedef struct model_config_reader {
    lm_config *cfg;
    hf_file file;
    const char *arch; /* "gpt2": messages start with "architecture 'gpt2': " */
    char source[600]; /* " (hf_config 'PATH')" when a file was given, else "": ends value messages */
} model_config_reader;

/* What an architecture computes, as config.json describes it: the
 * model_type, and booleans that must have one value (the variants of the
 * model this plugin would compute differently are refused). */
typedef struct model_config_variant {
    const char *model_type; /* "gpt2"; also the architecture's name in messages */
    const char *standard;   /* what is supported, for messages: "the standard GPT-2" */
    struct {
        const char *key; /* NULL: the end of the list */
        int expected;
    } flags[6];
} model_config_variant;

/* Opens the hf_config file when the config names one, and refuses a file
 * that describes another model_type or variant.  On failure nothing is
 * left open. */
lm_status model_config_open(model_config_reader *r, lm_config *cfg, const model_config_variant *variant);
void model_config_close(model_config_reader *r);

/* A key's value: the lmcore config's, else the file's, else def.  Integers
 * must lie in [lo, hi] (checked in 64 bits, so that the caller may narrow
 * them): otherwise the key and the value as given are reported (by
 * model_config_validate) and def is returned.  _or_null: a null in the file
 * reads as null_value, which needs no range. */
int64_t model_config_int(model_config_reader *r, const char *key, int64_t def, int64_t lo, int64_t hi);
int64_t model_config_int_or_null(model_config_reader *r, const char *key, int64_t def, int64_t null_value,
                                 int64_t lo, int64_t hi);
double model_config_number(model_config_reader *r, const char *key, double def);
const char *model_config_string(model_config_reader *r, const char *key, const char *def);

/* After the architecture's own keys: reads the device keys (model_device.h)
 * into *device, then reports the file's first problem, wrong types and
 * unknown keys. */
lm_status model_config_validate(model_config_reader *r, model_device *device);

typedef struct model_config_size {
    const char *key; /* NULL: the end of a list */
    int64_t value, min, max;
} model_config_size;

typedef struct model_config_fraction {
    const char *key; /* NULL: the end of a list */
    double value;
} model_config_fraction;

/* The value checks every transformer configuration makes, in this order:
 * each size within [min, max]; the width a multiple of the number of heads
 * (both named by their keys among the sizes); each dropout probability in
 * [0, 1); the LayerNorm epsilon in (0, 1); the initializer range in
 * [0, 10).  Lists end at the first entry without a key. */
typedef struct model_config_checks {
    model_config_size sizes[8];
    const char *width_key, *heads_key;
    model_config_fraction dropouts[4];
    model_config_fraction layer_norm_eps;
    double initializer_range;
} model_config_checks;

/* Checks the device keys (model_device_check), then `checks`; messages end
 * with r->source. */
lm_status model_config_check(model_config_reader *r, model_device *device, const model_config_checks *checks);

#endif
