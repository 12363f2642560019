/* Dataset 'jsonl': JSON Lines files, one JSON object per line; the string
 * member named by `field` (default "text") is the row.  Lines holding only
 * whitespace are skipped (a trailing blank line is common); any other line
 * that is not an object with that string member is an error naming
 * file:line and the problem.
 *
 * Config: `train`, `validation`, `test` (a file path or a list of paths, read
 * one after the other; only the splits given exist) and `field`.  Files are
 * read and parsed on the first use of their split. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcore/lmcore.h"
#include "file_splits.h"

typedef struct jsonl_dataset {
    lm_file_splits splits;
    char *field;
} jsonl_dataset;

static void jsonl_destroy(void *self) {
    jsonl_dataset *d = self;
    if (!d) return;
    lm_file_splits_free(&d->splits);
    free(d->field);
    free(d);
}

static char *copy_string(const char *s) {
    char *p = malloc(strlen(s) + 1);
    if (p) strcpy(p, s);
    return p;
}

static lm_status jsonl_create(void **self, lm_config *cfg) {
    jsonl_dataset *d = calloc(1, sizeof *d);
    if (!d || !(d->field = copy_string(lm_config_string(cfg, "field", "text")))) {
        free(d);
        return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'jsonl'");
    }
    lm_file_splits_init(&d->splits, "jsonl", 0);
    lm_status status = lm_file_splits_from_config(&d->splits, cfg);
    if (status == LM_OK && d->field[0] == '\0')
        status = lm_error_set(LM_ERR_INVALID, "dataset 'jsonl': 'field' must name the JSON member holding the text");
    if (status != LM_OK) {
        jsonl_destroy(d);
        return status;
    }
    *self = d;
    return LM_OK;
}

static lm_status jsonl_split_count(void *self, size_t *n) {
    return lm_file_splits_count(&((jsonl_dataset *)self)->splits, n);
}

static lm_status jsonl_split_name(void *self, size_t index, const char **name) {
    return lm_file_splits_name(&((jsonl_dataset *)self)->splits, index, name);
}

static int is_blank(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

/* The JSON parser reports "<path>:1:<column>: <problem>" for a one-line
 * document; rewrite it as "<path>:<line>:<column>: <problem>". */
static lm_status line_parse_error(lm_status status, const char *path, size_t line) {
    char message[2048];
    const char *msg = lm_error_message();
    size_t prefix = strlen(path) + 3; /* path ":1:" */
    if (strncmp(msg, path, strlen(path)) == 0 && strncmp(msg + strlen(path), ":1:", 3) == 0)
        snprintf(message, sizeof message, "%s:%zu:%s (not a valid JSON line)", path, line, msg + prefix);
    else
        snprintf(message, sizeof message, "%s:%zu: %s", path, line, msg);
    return lm_error_set(status, "%s", message);
}

static lm_status parse_line(const jsonl_dataset *d, lm_file_split *sp, const char *path, size_t line, const char *s,
                            size_t len) {
    lm_json *doc = NULL;
    lm_status status = lm_json_parse(s, len, path, &doc);
    if (status != LM_OK) return line_parse_error(status, path, line);
    const lm_json *value = lm_json_get(doc, d->field);
    static const char *const type_names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    if (lm_json_type_of(doc) != LM_JSON_OBJECT)
        status = lm_error_set(LM_ERR_FORMAT, "%s:%zu: expected a JSON object, found %s", path, line,
                              type_names[lm_json_type_of(doc)]);
    else if (!value)
        status = lm_error_set(LM_ERR_FORMAT, "%s:%zu: the object has no member \"%s\" (choose another with field=...)",
                              path, line, d->field);
    else if (lm_json_type_of(value) != LM_JSON_STRING)
        status = lm_error_set(LM_ERR_FORMAT, "%s:%zu: member \"%s\" is %s, expected a string", path, line, d->field,
                              type_names[lm_json_type_of(value)]);
    else {
        size_t text_len;
        const char *text = lm_json_string(value, &text_len);
        status = lm_file_split_push(sp, text, text_len);
    }
    lm_json_free(doc);
    return status;
}

static lm_status index_file(const jsonl_dataset *d, lm_file_split *sp, const char *path, const lm_buffer *file) {
    size_t line = 0;
    for (size_t begin = 0; begin < file->len; line++) {
        const char *nl = memchr(file->data + begin, '\n', file->len - begin);
        size_t end = nl ? (size_t)(nl - file->data) : file->len;
        if (!is_blank(file->data + begin, end - begin))
            LM_TRY(parse_line(d, sp, path, line + 1, file->data + begin, end - begin));
        begin = nl ? end + 1 : end;
    }
    return LM_OK;
}

/* The split's loader: its files one after the other, rows in file order. */
static lm_status load_split(void *dataset, lm_file_split *sp) {
    lm_buffer file = {0};
    lm_status status = LM_OK;
    for (size_t f = 0; f < sp->n_paths && status == LM_OK; f++) {
        status = lm_file_split_read(sp, f, &file);
        if (status == LM_OK) status = index_file(dataset, sp, sp->paths[f], &file);
    }
    lm_buffer_free(&file);
    return status;
}

static lm_status jsonl_open_split(void *self, const char *split, const lm_text_source **out) {
    jsonl_dataset *d = self;
    return lm_file_splits_open(&d->splits, split, load_split, d, out);
}

static const lm_dataset_vtable jsonl_vtable = {
    .create = jsonl_create,
    .destroy = jsonl_destroy,
    .split_count = jsonl_split_count,
    .split_name = jsonl_split_name,
    .open_split = jsonl_open_split,
};

LM_PLUGIN_DEFINE(LM_KIND_DATASET, "jsonl", "1.0.0", "JSON Lines files, one object per line; a string field is the row",
                 lm_dataset_vtable, jsonl_vtable)
