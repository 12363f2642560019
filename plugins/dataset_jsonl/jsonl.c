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

typedef struct jsonl_split {
    const char *name;
    char **paths;
    size_t n_files;
    int loaded;
    lm_buffer strings; /* every row's text followed by a NUL */
    size_t *offsets;   /* n_rows + 1 offsets into strings */
    size_t n_rows, cap_offsets;
    uint64_t fingerprint;
} jsonl_split;

typedef struct jsonl_dataset {
    jsonl_split splits[LM_FILE_SPLITS];
    size_t n_splits;
    char *field;
} jsonl_dataset;

static void free_split_data(jsonl_split *sp) {
    lm_buffer_free(&sp->strings);
    free(sp->offsets);
    sp->offsets = NULL;
    sp->n_rows = sp->cap_offsets = 0;
}

static void jsonl_destroy(void *self) {
    jsonl_dataset *d = self;
    if (!d) return;
    for (size_t i = 0; i < d->n_splits; i++) {
        free_split_data(&d->splits[i]);
        for (size_t f = 0; f < d->splits[i].n_files; f++) free(d->splits[i].paths[f]);
        free(d->splits[i].paths);
    }
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
    for (int i = 0; i < LM_FILE_SPLITS; i++) {
        const char *const *files;
        size_t n = lm_config_list(cfg, lm_file_split_names[i], &files);
        if (n == 0) continue;
        jsonl_split *sp = &d->splits[d->n_splits++];
        sp->name = lm_file_split_names[i];
        sp->paths = calloc(n, sizeof *sp->paths);
        if (!sp->paths) {
            jsonl_destroy(d);
            return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'jsonl'");
        }
        sp->n_files = n;
        for (size_t f = 0; f < n; f++) {
            if (!(sp->paths[f] = copy_string(files[f]))) {
                jsonl_destroy(d);
                return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'jsonl'");
            }
        }
    }
    if (d->n_splits == 0) {
        jsonl_destroy(d);
        return lm_error_set(LM_ERR_INVALID,
                            "dataset 'jsonl' needs at least one split: train=<file>, validation=<file> or test=<file> "
                            "(a path or a list of paths)");
    }
    if (d->field[0] == '\0') {
        jsonl_destroy(d);
        return lm_error_set(LM_ERR_INVALID, "dataset 'jsonl': 'field' must name the JSON member holding the text");
    }
    *self = d;
    return LM_OK;
}

static lm_status jsonl_split_count(void *self, size_t *n) {
    *n = ((jsonl_dataset *)self)->n_splits;
    return LM_OK;
}

static lm_status jsonl_split_name(void *self, size_t index, const char **name) {
    jsonl_dataset *d = self;
    if (index >= d->n_splits)
        return lm_error_set(LM_ERR_INVALID, "dataset 'jsonl' has %zu splits, not %zu", d->n_splits, index + 1);
    *name = d->splits[index].name;
    return LM_OK;
}

static int is_blank(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

static lm_status push_row(jsonl_split *sp, const char *text, size_t len) {
    if (sp->n_rows + 2 > sp->cap_offsets) {
        size_t cap = sp->cap_offsets ? sp->cap_offsets * 2 : 1024;
        size_t *grown = realloc(sp->offsets, cap * sizeof *grown);
        if (!grown) return lm_error_set(LM_ERR_NOMEM, "out of memory indexing split '%s'", sp->name);
        sp->offsets = grown;
        sp->cap_offsets = cap;
    }
    sp->offsets[sp->n_rows] = sp->strings.len;
    LM_TRY(lm_buffer_append(&sp->strings, text, len));
    LM_TRY(lm_buffer_append(&sp->strings, "", 1));
    sp->n_rows++;
    sp->offsets[sp->n_rows] = sp->strings.len;
    return LM_OK;
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

static lm_status parse_line(jsonl_dataset *d, jsonl_split *sp, const char *path, size_t line, const char *s,
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
        status = push_row(sp, text, text_len);
    }
    lm_json_free(doc);
    return status;
}

static lm_status index_file(jsonl_dataset *d, jsonl_split *sp, const char *path, const lm_buffer *file) {
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

static lm_status load_split(jsonl_dataset *d, jsonl_split *sp) {
    uint64_t hash = LM_HASH_SEED;
    lm_status status = LM_OK;
    lm_buffer file = {0};
    for (size_t f = 0; f < sp->n_files && status == LM_OK; f++) {
        status = lm_file_read(sp->paths[f], &file);
        if (status != LM_OK) {
            lm_error_prefix("dataset 'jsonl', split '%s': ", sp->name);
            break;
        }
        hash = lm_hash64(file.data, file.len, hash);
        status = index_file(d, sp, sp->paths[f], &file);
    }
    lm_buffer_free(&file);
    if (status != LM_OK) {
        free_split_data(sp);
        return status;
    }
    sp->fingerprint = hash;
    sp->loaded = 1;
    return LM_OK;
}

static lm_status get_split(jsonl_dataset *d, const char *split, jsonl_split **out) {
    for (size_t i = 0; i < d->n_splits; i++) {
        if (split && strcmp(split, d->splits[i].name) == 0) {
            if (!d->splits[i].loaded) LM_TRY(load_split(d, &d->splits[i]));
            *out = &d->splits[i];
            return LM_OK;
        }
    }
    return lm_file_split_missing("jsonl", split);
}

static lm_status jsonl_row_count(void *self, const char *split, size_t *n) {
    jsonl_split *sp;
    LM_TRY(get_split(self, split, &sp));
    *n = sp->n_rows;
    return LM_OK;
}

static lm_status jsonl_row(void *self, const char *split, size_t index, const char **text, size_t *len) {
    jsonl_split *sp;
    LM_TRY(get_split(self, split, &sp));
    if (index >= sp->n_rows)
        return lm_error_set(LM_ERR_INVALID, "dataset 'jsonl', split '%s': row %zu out of range (%zu rows)", split,
                            index, sp->n_rows);
    *text = sp->strings.data + sp->offsets[index];
    *len = sp->offsets[index + 1] - sp->offsets[index] - 1;
    return LM_OK;
}

static lm_status jsonl_fingerprint(void *self, const char *split, uint64_t *hash) {
    jsonl_split *sp;
    LM_TRY(get_split(self, split, &sp));
    *hash = sp->fingerprint;
    return LM_OK;
}

static const lm_dataset_vtable jsonl_vtable = {
    .create = jsonl_create,
    .destroy = jsonl_destroy,
    .split_count = jsonl_split_count,
    .split_name = jsonl_split_name,
    .row_count = jsonl_row_count,
    .row = jsonl_row,
    .fingerprint = jsonl_fingerprint,
};

LM_PLUGIN_DEFINE(LM_KIND_DATASET, "jsonl", "1.0.0", "JSON Lines files, one object per line; a string field is the row",
                 lm_dataset_vtable, jsonl_vtable)
