/* A complete dataset plugin written for plugin ABI 1.0 and compiled against
 * the frozen 1.0 headers (tests/abi/include-1.0): three rows in one split,
 * handed out through 1.0's row_count / row / fingerprint.  ABI 2.0 replaced
 * those slots by open_split, so the 2.0 core must refuse it — by its major
 * version, with a message that says what to change — and never call into
 * it.  (Nothing here is wrong for 1.0: built against include/lmcore it
 * would not compile, which is the point of a major version.) */
#include <string.h>

#include <lmcore/lmcore.h>

#if LM_ABI_MAJOR != 1 || LM_ABI_MINOR != 0
#error "tests/abi/abi10 must be built against tests/abi/include-1.0"
#endif

static const char *const rows[] = {"one", "two", "three"};

static lm_status rows_create(void **self, lm_config *cfg) {
    (void)cfg;
    *self = (void *)rows;
    return LM_OK;
}

static void rows_destroy(void *self) { (void)self; }

static lm_status rows_split_count(void *self, size_t *n) {
    (void)self;
    *n = 1;
    return LM_OK;
}

static lm_status rows_split_name(void *self, size_t index, const char **name) {
    (void)self;
    if (index != 0) return lm_error_set(LM_ERR_INVALID, "abi10_rows: split %zu of 1", index);
    *name = "train";
    return LM_OK;
}

static lm_status rows_row_count(void *self, const char *split, size_t *n) {
    (void)self;
    if (strcmp(split, "train") != 0) return lm_error_set(LM_ERR_NOT_FOUND, "abi10_rows: no split '%s'", split);
    *n = 3;
    return LM_OK;
}

static lm_status rows_row(void *self, const char *split, size_t index, const char **text, size_t *len) {
    size_t n;
    LM_TRY(rows_row_count(self, split, &n));
    if (index >= n) return lm_error_set(LM_ERR_INVALID, "abi10_rows: row %zu of %zu", index, n);
    *text = rows[index];
    *len = strlen(rows[index]);
    return LM_OK;
}

static lm_status rows_fingerprint(void *self, const char *split, uint64_t *hash) {
    size_t n;
    LM_TRY(rows_row_count(self, split, &n));
    *hash = 0x0123456789abcdefull;
    return LM_OK;
}

static const lm_dataset_vtable rows_vtable = {rows_create,    rows_destroy, rows_split_count, rows_split_name,
                                              rows_row_count, rows_row,     rows_fingerprint};
LM_PLUGIN_DEFINE(LM_KIND_DATASET, "abi10_rows", "1.0.0", "three rows, for ABI 1.0 (tests/abi)", lm_dataset_vtable,
                 rows_vtable)
