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

typedef struct text_dataset {
    lm_file_splits splits;
} text_dataset;

static void text_destroy(void *self) {
    text_dataset *d = self;
    if (!d) return;
    lm_file_splits_free(&d->splits);
    free(d);
}

static lm_status text_create(void **self, lm_config *cfg) {
    text_dataset *d = calloc(1, sizeof *d);
    if (!d) return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'text'");
    lm_file_splits_init(&d->splits, "text", 0);
    lm_status status = lm_file_splits_from_config(&d->splits, cfg);
    if (status != LM_OK) {
        text_destroy(d);
        return status;
    }
    *self = d;
    return LM_OK;
}

static lm_status text_split_count(void *self, size_t *n) {
    return lm_file_splits_count(&((text_dataset *)self)->splits, n);
}

static lm_status text_split_name(void *self, size_t index, const char **name) {
    return lm_file_splits_name(&((text_dataset *)self)->splits, index, name);
}

/* Cuts one file into rows: each line without its "\n" or "\r\n". */
static lm_status index_file(lm_file_split *sp, const char *path, const lm_buffer *file) {
    size_t line = 0;
    for (size_t begin = 0; begin < file->len; line++) {
        const char *nl = memchr(file->data + begin, '\n', file->len - begin);
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
        LM_TRY(lm_file_split_push(sp, file->data + begin, end - begin));
        begin = next;
    }
    return LM_OK;
}

/* The split's loader: its files one after the other, rows in file order. */
static lm_status load_split(void *dataset, lm_file_split *sp) {
    (void)dataset; /* no parsing settings */
    lm_buffer file = {0};
    lm_status status = LM_OK;
    for (size_t f = 0; f < sp->n_paths && status == LM_OK; f++) {
        status = lm_file_split_read(sp, f, &file);
        /* The rows take at most the file's bytes plus one (each newline
         * becomes a NUL, the last line may lack one): one allocation. */
        if (status == LM_OK) status = lm_file_split_reserve(sp, 0, file.len + 1);
        if (status == LM_OK) status = index_file(sp, sp->paths[f], &file);
    }
    lm_buffer_free(&file);
    return status;
}

static lm_status text_open_split(void *self, const char *split, const lm_text_source **out) {
    text_dataset *d = self;
    return lm_file_splits_open(&d->splits, split, load_split, d, out);
}

static const lm_dataset_vtable text_vtable = {
    .create = text_create,
    .destroy = text_destroy,
    .split_count = text_split_count,
    .split_name = text_split_name,
    .open_split = text_open_split,
};

LM_PLUGIN_DEFINE(LM_KIND_DATASET, "text", "1.0.0", "Plain UTF-8 text files, one row per line", lm_dataset_vtable,
                 text_vtable)
