/* fuzz_tokenizer_json_bpe / fuzz_tokenizer_json_wordpiece: a tokenizer.json
 * made of the fuzzer's bytes, loaded by the plugin's create(path=...).
 *
 * The plugin's sources are compiled into the fuzzer (coverage of the
 * loader); the build renames its lm_plugin_describe to FUZZ_DESCRIBE so
 * that several plugins can live in one binary.  An accepted file goes
 * through fuzz_tokenizer_exercise (encode/decode/save/reload). */
#include <stdint.h>
#include <stdio.h>

#include "fuzz_tokenizer.h"
#include "fuzz_util.h"

#ifndef FUZZ_DESCRIBE
#error "build with -DFUZZ_DESCRIBE=<the plugin's renamed lm_plugin_describe>"
#endif

const lm_plugin_descriptor *FUZZ_DESCRIBE(void);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const lm_tokenizer_vtable *vt = FUZZ_DESCRIBE()->vtable;
    char item[600];
    snprintf(item, sizeof item, "path=%s", fuzz_file(0, "tokenizer.json", data, size));
    const char *items[] = {item, NULL};
    void *tok = NULL;
    if (fuzz_tokenizer_create(vt, items, &tok) != LM_OK) return 0;
    fuzz_tokenizer_check_size(vt, tok, size);
    fuzz_tokenizer_exercise(vt, tok, "saved.json");
    vt->destroy(tok);
    return 0;
}
