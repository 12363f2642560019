/* Reading Hugging Face config.json files in architecture plugins: typed
 * lookups that remember the first problem (like lm_config's getters), and
 * the few helpers GPT-2 and BERT share for their configs. */
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

/* Writes key: value, or key: null for a negative value. */
void hf_write_nullable(lm_json_writer *w, const char *key, int64_t value);

#endif
