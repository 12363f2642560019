/* fuzz_dataset_rows: the 'text' and 'jsonl' dataset plugins reading files
 * made of the fuzzer's bytes.
 *
 * Input: byte 0 picks the plugin and options, the rest is split into one or
 * two files at "\n@@file@@\n" (a split made of two files):
 *   bit 0 = 0: text,  bit 0 = 1: jsonl
 *   bit 1: jsonl reads field=content instead of the default "text"
 * Both plugins' sources are compiled in (describe functions renamed by the
 * build).  Invariants: the split opens or fails with a message (and fails
 * again on the next open); opening again gives the same source; every row
 * is NUL-terminated at its length; text rows hold no newline; the
 * fingerprint is the chained hash of the files; out-of-range rows and
 * unknown splits are errors. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "lmcore/lmcore.h"

const lm_plugin_descriptor *fuzz_describe_dataset_text(void);
const lm_plugin_descriptor *fuzz_describe_dataset_jsonl(void);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++, size--;
    int is_jsonl = mode & 1;
    const lm_dataset_vtable *vt =
        (is_jsonl ? fuzz_describe_dataset_jsonl() : fuzz_describe_dataset_text())->vtable;
    size_t first_len, second_len;
    const uint8_t *second;
    int two_files = fuzz_split(data, size, "\n@@file@@\n", &first_len, &second, &second_len);
    const char *files[2];
    size_t n_files = 1;
    files[0] = fuzz_file(0, is_jsonl ? "a.jsonl" : "a.txt", data, first_len);
    if (two_files) files[n_files++] = fuzz_file(1, is_jsonl ? "b.jsonl" : "b.txt", second, second_len);

    lm_config *cfg;
    FUZZ_CHECK(lm_config_create(&cfg, "dataset under fuzzing") == LM_OK, "config");
    FUZZ_CHECK(lm_config_set_list(cfg, "train", files, n_files) == LM_OK, "config");
    FUZZ_CHECK(lm_config_set_string(cfg, "validation", files[0]) == LM_OK, "config");
    if (is_jsonl && (mode & 2)) FUZZ_CHECK(lm_config_set_string(cfg, "field", "content") == LM_OK, "config");
    void *ds = NULL;
    if (vt->create(&ds, cfg) != LM_OK) fuzz_fail("create failed with valid settings: %s", lm_error_message());
    lm_config_destroy(cfg);

    size_t n_splits = 0;
    FUZZ_CHECK(vt->split_count(ds, &n_splits) == LM_OK && n_splits == 2, "expected 2 splits, got %zu", n_splits);
    for (size_t s = 0; s < n_splits; s++) {
        const char *split;
        FUZZ_CHECK(vt->split_name(ds, s, &split) == LM_OK, "split_name(%zu)", s);
        const lm_text_source *rows = NULL;
        if (vt->open_split(ds, split, &rows) != LM_OK) {
            FUZZ_CHECK(lm_error_message()[0] != '\0', "open_split failed without a message");
            fuzz_note("split '%s' refused: %s", split, lm_error_message());
            /* A failed load must fail again, the same way, on the next use. */
            FUZZ_CHECK(vt->open_split(ds, split, &rows) != LM_OK, "a failed split loaded on the second try");
            continue;
        }
        const lm_text_source *again = NULL;
        FUZZ_CHECK(vt->open_split(ds, split, &again) == LM_OK && again == rows,
                   "opening split '%s' again gave another source", split);
        FUZZ_CHECK(rows->row != NULL && rows->name != NULL && strcmp(rows->name, split) == 0,
                   "the source of split '%s' has no row() or another name", split);
        const size_t n_rows = rows->count;
        size_t total = 0;
        for (size_t i = 0; i < n_rows; i++) {
            const char *text;
            size_t len;
            FUZZ_CHECK(rows->row(rows->ctx, i, &text, &len) == LM_OK, "row %zu of %zu failed", i, n_rows);
            FUZZ_CHECK(text != NULL && text[len] == '\0', "row %zu not NUL-terminated at its length %zu", i, len);
            if (!is_jsonl) FUZZ_CHECK(memchr(text, '\n', len) == NULL, "text row %zu holds a newline", i);
            total += len;
        }
        FUZZ_CHECK(total <= size, "rows hold %zu bytes, more than the %zu bytes of input", total, size);
        const char *text;
        size_t len;
        FUZZ_CHECK(rows->row(rows->ctx, n_rows, &text, &len) == LM_ERR_INVALID, "row past the end succeeded");
        /* train reads both files, validation the first: the hash chains over them in order. */
        uint64_t expected = lm_hash64(data, first_len, LM_HASH_SEED);
        if (two_files && strcmp(split, "train") == 0) expected = lm_hash64(second, second_len, expected);
        FUZZ_CHECK(rows->fingerprint == expected, "split '%s': fingerprint is not the hash of its files", split);
    }
    const lm_text_source *unknown = NULL;
    FUZZ_CHECK(vt->open_split(ds, "test", &unknown) == LM_ERR_NOT_FOUND, "unknown split 'test' did not fail");
    vt->destroy(ds);
    return 0;
}
