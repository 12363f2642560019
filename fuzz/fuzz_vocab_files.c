/* fuzz_vocab_files: the tokenizer plugins' native vocabulary files made of
 * the fuzzer's bytes.
 *
 * Input: byte 0 picks the format and options, the rest is the file(s):
 *   bit 0 = 0: BPE vocab.json + merges.txt, split at "\n@@merges@@\n"
 *              (bit 1: add_prefix_space=true)
 *   bit 0 = 1: WordPiece vocab.txt (bit 1: lowercase=true)
 * Both plugins' sources are compiled in (their describe functions renamed
 * by the build).  An accepted vocabulary goes through
 * fuzz_tokenizer_exercise, including save as tokenizer.json and reload. */
#include <stdint.h>
#include <stdio.h>

#include "fuzz_tokenizer.h"
#include "fuzz_util.h"

const lm_plugin_descriptor *fuzz_describe_tokenizer_bpe(void);
const lm_plugin_descriptor *fuzz_describe_tokenizer_wordpiece(void);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++, size--;
    char first[600], second[600];
    const char *items[4] = {first, NULL, NULL, NULL};
    const lm_tokenizer_vtable *vt;
    if ((mode & 1) == 0) {
        vt = fuzz_describe_tokenizer_bpe()->vtable;
        size_t vocab_len, merges_len;
        const uint8_t *merges;
        fuzz_split(data, size, "\n@@merges@@\n", &vocab_len, &merges, &merges_len);
        snprintf(first, sizeof first, "vocab=%s", fuzz_file(0, "vocab.json", data, vocab_len));
        snprintf(second, sizeof second, "merges=%s", fuzz_file(1, "merges.txt", merges, merges_len));
        items[1] = second;
        if (mode & 2) items[2] = "add_prefix_space=true";
    } else {
        vt = fuzz_describe_tokenizer_wordpiece()->vtable;
        snprintf(first, sizeof first, "path=%s", fuzz_file(0, "vocab.txt", data, size));
        if (mode & 2) items[1] = "lowercase=true";
    }
    void *tok = NULL;
    if (fuzz_tokenizer_create(vt, items, &tok) != LM_OK) return 0;
    fuzz_tokenizer_check_size(vt, tok, size + 1); /* + BPE's default <|endoftext|> */
    fuzz_tokenizer_exercise(vt, tok, "saved.json");
    vt->destroy(tok);
    return 0;
}
