/* A dataset plugin compiled against the frozen ABI 2.0 headers
 * (tests/abi/include-2.0): every later 2.x core must load and run it
 * unchanged (tests/abi/test_abi_compat.c).  Two splits of numbered lines,
 * opened lazily through open_split (2.0's lm_text_source). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmcore/lmcore.h>

#if LM_ABI_MAJOR != 2 || LM_ABI_MINOR != 0
#error "tests/abi/abi20 must be built against tests/abi/include-2.0"
#endif

static const char *const split_names[] = {"train", "validation"};
enum { N_SPLITS = 2 };

typedef struct lines_split {
    lm_text_source source;
    char (*text)[32];
    int opened;
} lines_split;

typedef struct lines_dataset {
    int64_t rows; /* per split */
    lines_split splits[N_SPLITS];
} lines_dataset;

static lm_status lines_create(void **self, lm_config *cfg) {
    lines_dataset *d = calloc(1, sizeof *d);
    if (!d) return lm_error_set(LM_ERR_NOMEM, "dataset 'abi20_lines': out of memory");
    const int64_t rows = lm_config_int(cfg, "rows", 3);
    if (rows < 1 || rows > 1000) {
        free(d);
        return lm_error_set(LM_ERR_INVALID, "dataset 'abi20_lines': rows=%lld, use 1 to 1000", (long long)rows);
    }
    d->rows = rows;
    *self = d;
    return LM_OK;
}

static void lines_destroy(void *self) {
    lines_dataset *d = self;
    for (int s = 0; s < N_SPLITS; s++) free(d->splits[s].text);
    free(d);
}

static lm_status lines_split_count(void *self, size_t *n) {
    (void)self;
    *n = N_SPLITS;
    return LM_OK;
}

static lm_status lines_split_name(void *self, size_t index, const char **name) {
    (void)self;
    if (index >= N_SPLITS) return lm_error_set(LM_ERR_INVALID, "dataset 'abi20_lines': split %zu of 2", index);
    *name = split_names[index];
    return LM_OK;
}

static lm_status lines_row(void *ctx, size_t index, const char **text, size_t *len) {
    lines_split *s = ctx;
    if (index >= s->source.count)
        return lm_error_set(LM_ERR_INVALID, "dataset 'abi20_lines': row %zu of %zu", index, s->source.count);
    *text = s->text[index];
    *len = strlen(s->text[index]);
    return LM_OK;
}

static lm_status lines_open_split(void *self, const char *split, const lm_text_source **out) {
    lines_dataset *d = self;
    for (int i = 0; i < N_SPLITS; i++) {
        if (strcmp(split, split_names[i]) != 0) continue;
        lines_split *s = &d->splits[i];
        if (!s->opened) { /* lazily, once: the same source every time */
            s->text = calloc((size_t)d->rows, sizeof *s->text);
            if (!s->text) return lm_error_set(LM_ERR_NOMEM, "dataset 'abi20_lines': out of memory");
            uint64_t hash = LM_HASH_SEED;
            for (int64_t r = 0; r < d->rows; r++) {
                snprintf(s->text[r], sizeof s->text[r], "%s line %lld", split, (long long)r);
                hash = lm_hash64(s->text[r], strlen(s->text[r]) + 1, hash);
            }
            s->source.struct_size = sizeof(lm_text_source);
            s->source.ctx = s;
            s->source.count = (size_t)d->rows;
            s->source.row = lines_row;
            s->source.fingerprint = hash;
            s->source.name = split_names[i];
            s->opened = 1;
        }
        *out = &s->source;
        return LM_OK;
    }
    return lm_error_set(LM_ERR_NOT_FOUND, "dataset 'abi20_lines': no split '%s' (train, validation)", split);
}

static const lm_dataset_vtable lines_vtable = {
    .create = lines_create,
    .destroy = lines_destroy,
    .split_count = lines_split_count,
    .split_name = lines_split_name,
    .open_split = lines_open_split,
};
LM_PLUGIN_DEFINE(LM_KIND_DATASET, "abi20_lines", "2.0.0", "numbered lines, for ABI 2.0 (tests/abi)",
                 lm_dataset_vtable, lines_vtable)
