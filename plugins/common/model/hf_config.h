/* Reading Hugging Face config.json files in architecture plugins: typed
 * lookups that remember the first problem (like lm_config's getters), and
 * the few helpers GPT-2 and BERT share for their configs: precision names,
 * and writing config.json. */
#ifndef LM_PLUGIN_HF_CONFIG_H
#define LM_PLUGIN_HF_CONFIG_H

#include <stdint.h>

#include "backend.h"
#include "lmcore/lmcore.h"

typedef struct hf_file {
    const char *path; /* NULL: no hf_config */
    lm_json *root;
    lm_status status; /* first problem found in the file */
} hf_file;

/* Opens the config.json named by cfg's "hf_config" key, if any (f->root
 * stays NULL without one); owner ("gpt2") prefixes errors.  On failure
 * nothing is left open. */
lm_status hf_open(hf_file *f, lm_config *cfg, const char *owner);
/* Frees what hf_open read. */
void hf_close(hf_file *f);

const lm_json *hf_get(hf_file *f, const char *key);
/* Records "key must be <wanted>" (first problem wins). */
void hf_fail(hf_file *f, const char *key, const char *wanted);
/* An integer from the file (or def); null gives null_value; a list gives its
 * first item (eos_token_id may be a list in recent configs). */
int64_t hf_int(hf_file *f, const char *key, int64_t def, int64_t null_value);
double hf_number(hf_file *f, const char *key, double def);
int hf_bool(hf_file *f, const char *key, int def);
const char *hf_string(hf_file *f, const char *key, const char *def);

/* "fp32" | "tf32" | "bf16"; owner names the plugin in the error. */
lm_status hf_parse_precision(const char *owner, const char *name, lm_precision *out);
const char *hf_precision_name(lm_precision p);

/* Writing config.json, one key and its value a call, in the order given
 * (transformers writes the keys sorted).  hf_write_begin starts the object
 * in `out`; hf_write_end closes it and ends the text with a newline. */
void hf_write_begin(lm_json_writer *w, lm_buffer *out);
lm_status hf_write_end(lm_json_writer *w, lm_buffer *out);
void hf_write_int(lm_json_writer *w, const char *key, int64_t value);
void hf_write_number(lm_json_writer *w, const char *key, double value);
void hf_write_bool(lm_json_writer *w, const char *key, int value);
void hf_write_string(lm_json_writer *w, const char *key, const char *value);
/* "architectures": [model_class] */
void hf_write_architectures(lm_json_writer *w, const char *model_class);
/* Writes key: value, or key: null for a negative value. */
void hf_write_nullable(lm_json_writer *w, const char *key, int64_t value);

#endif
