/* Dataset 'text': plain UTF-8 text files, one row per line, the newline
 * ("\n" or "\r\n") removed; empty lines are kept as empty rows (like Hugging
 * Face's "text" loader with keep_linebreaks=False).
 *
 * Config: `train`, `validation`, `test`, each a file path or a list of paths
 * read one after the other.  Only the splits given exist.  Files are read on
 * the first use of their split; invalid UTF-8 is an error naming file and
 * line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcore/lmcore.h"
#include "file_splits.h"
#include "unicode.h"

typedef struct row_span {
    const char *text; /* NUL-terminated, inside one of the file buffers */
    size_t len;
} row_span;

typedef struct text_split {
    const char *name;
    char **paths;
    size_t n_files;
    int loaded;
    lm_buffer *contents; /* one buffer per file */
    row_span *rows;
    size_t n_rows, cap_rows;
    uint64_t fingerprint;
} text_split;

typedef struct text_dataset {
    text_split splits[LM_FILE_SPLITS];
    size_t n_splits;
} text_dataset;

static void free_split_data(text_split *sp) {
    for (size_t f = 0; sp->contents && f < sp->n_files; f++) lm_buffer_free(&sp->contents[f]);
    free(sp->contents);
    free(sp->rows);
    sp->contents = NULL;
    sp->rows = NULL;
    sp->n_rows = sp->cap_rows = 0;
}

static void text_destroy(void *self) {
    text_dataset *d = self;
    if (!d) return;
    for (size_t i = 0; i < d->n_splits; i++) {
        free_split_data(&d->splits[i]);
        for (size_t f = 0; f < d->splits[i].n_files; f++) free(d->splits[i].paths[f]);
        free(d->splits[i].paths);
    }
    free(d);
}

static lm_status text_create(void **self, lm_config *cfg) {
    text_dataset *d = calloc(1, sizeof *d);
    if (!d) return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'text'");
    for (int i = 0; i < LM_FILE_SPLITS; i++) {
        const char *const *files;
        size_t n = lm_config_list(cfg, lm_file_split_names[i], &files);
        if (n == 0) continue;
        text_split *sp = &d->splits[d->n_splits++];
        sp->name = lm_file_split_names[i];
        sp->paths = calloc(n, sizeof *sp->paths);
        if (!sp->paths) {
            text_destroy(d);
            return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'text'");
        }
        sp->n_files = n;
        for (size_t f = 0; f < n; f++) {
            sp->paths[f] = malloc(strlen(files[f]) + 1);
            if (!sp->paths[f]) {
                text_destroy(d);
                return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'text'");
            }
            strcpy(sp->paths[f], files[f]);
        }
    }
    if (d->n_splits == 0) {
        text_destroy(d);
        return lm_error_set(LM_ERR_INVALID,
                            "dataset 'text' needs at least one split: train=<file>, validation=<file> or test=<file> "
                            "(a path or a list of paths)");
    }
    *self = d;
    return LM_OK;
}

static lm_status text_split_count(void *self, size_t *n) {
    *n = ((text_dataset *)self)->n_splits;
    return LM_OK;
}

static lm_status text_split_name(void *self, size_t index, const char **name) {
    text_dataset *d = self;
    if (index >= d->n_splits)
        return lm_error_set(LM_ERR_INVALID, "dataset 'text' has %zu splits, not %zu", d->n_splits, index + 1);
    *name = d->splits[index].name;
    return LM_OK;
}

static lm_status push_row(text_split *sp, const char *text, size_t len) {
    if (sp->n_rows == sp->cap_rows) {
        size_t cap = sp->cap_rows ? sp->cap_rows * 2 : 1024;
        row_span *grown = realloc(sp->rows, cap * sizeof *grown);
        if (!grown) return lm_error_set(LM_ERR_NOMEM, "out of memory indexing split '%s'", sp->name);
        sp->rows = grown;
        sp->cap_rows = cap;
    }
    sp->rows[sp->n_rows++] = (row_span){text, len};
    return LM_OK;
}

/* Splits one file's buffer into NUL-terminated rows, in place. */
static lm_status index_file(text_split *sp, const char *path, lm_buffer *file) {
    size_t line = 0;
    for (size_t begin = 0; begin < file->len; line++) {
        char *nl = memchr(file->data + begin, '\n', file->len - begin);
        size_t end = nl ? (size_t)(nl - file->data) : file->len;
        size_t next = nl ? end + 1 : end;
        if (end > begin && file->data[end - 1] == '\r') end--;
        const unsigned char *s = (const unsigned char *)file->data + begin;
        for (size_t i = 0; i < end - begin;) {
            uint32_t cp;
            int n = lm_utf8_decode(s + i, end - begin - i, &cp);
            if (n <= 0)
                return lm_error_set(LM_ERR_FORMAT,
                                    "%s:%zu: invalid UTF-8 byte 0x%02X at byte %zu of the line (dataset 'text' "
                                    "reads UTF-8; convert the file, e.g. with iconv)",
                                    path, line + 1, s[i], i + 1);
            i += (size_t)n;
        }
        file->data[end] = '\0';
        LM_TRY(push_row(sp, file->data + begin, end - begin));
        begin = next;
    }
    return LM_OK;
}

static lm_status load_split(text_split *sp) {
    sp->contents = calloc(sp->n_files, sizeof *sp->contents);
    if (!sp->contents) return lm_error_set(LM_ERR_NOMEM, "out of memory loading split '%s'", sp->name);
    uint64_t hash = LM_HASH_SEED;
    lm_status status = LM_OK;
    for (size_t f = 0; f < sp->n_files && status == LM_OK; f++) {
        status = lm_file_read(sp->paths[f], &sp->contents[f]);
        if (status != LM_OK) {
            lm_error_prefix("dataset 'text', split '%s': ", sp->name);
            break;
        }
        /* Chained over the files; lm_hash64 folds in each length, so moving
         * a line from one file to the next changes the fingerprint. */
        hash = lm_hash64(sp->contents[f].data, sp->contents[f].len, hash);
        status = index_file(sp, sp->paths[f], &sp->contents[f]);
    }
    if (status != LM_OK) {
        free_split_data(sp);
        return status;
    }
    sp->fingerprint = hash;
    sp->loaded = 1;
    return LM_OK;
}

static lm_status get_split(text_dataset *d, const char *split, text_split **out) {
    for (size_t i = 0; i < d->n_splits; i++) {
        if (split && strcmp(split, d->splits[i].name) == 0) {
            if (!d->splits[i].loaded) LM_TRY(load_split(&d->splits[i]));
            *out = &d->splits[i];
            return LM_OK;
        }
    }
    return lm_file_split_missing("text", split);
}

static lm_status text_row_count(void *self, const char *split, size_t *n) {
    text_split *sp;
    LM_TRY(get_split(self, split, &sp));
    *n = sp->n_rows;
    return LM_OK;
}

static lm_status text_row(void *self, const char *split, size_t index, const char **text, size_t *len) {
    text_split *sp;
    LM_TRY(get_split(self, split, &sp));
    if (index >= sp->n_rows)
        return lm_error_set(LM_ERR_INVALID, "dataset 'text', split '%s': row %zu out of range (%zu rows)", split, index,
                            sp->n_rows);
    *text = sp->rows[index].text;
    *len = sp->rows[index].len;
    return LM_OK;
}

static lm_status text_fingerprint(void *self, const char *split, uint64_t *hash) {
    text_split *sp;
    LM_TRY(get_split(self, split, &sp));
    *hash = sp->fingerprint;
    return LM_OK;
}

static const lm_dataset_vtable text_vtable = {
    .create = text_create,
    .destroy = text_destroy,
    .split_count = text_split_count,
    .split_name = text_split_name,
    .row_count = text_row_count,
    .row = text_row,
    .fingerprint = text_fingerprint,
};

LM_PLUGIN_DEFINE(LM_KIND_DATASET, "text", "1.0.0", "Plain UTF-8 text files, one row per line", lm_dataset_vtable,
                 text_vtable)
