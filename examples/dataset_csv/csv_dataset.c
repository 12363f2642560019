/* Dataset plugin 'csv': one text column of CSV files (RFC 4180), an example
 * of a plugin built outside lmcore's tree against the installed SDK
 * (docs/writing-plugins.md walks through it).
 *
 * Settings:
 *   train, validation, test   a CSV file per split (only the splits given exist)
 *   column                    the header name of the text column (default "text")
 *   delimiter                 one character (default ",")
 *
 * The first record of each file is the header.  Fields may be quoted with
 * double quotes; a quoted field may hold delimiters, newlines and doubled
 * quotes ("").  Records end with \n or \r\n.  Every record must have as many
 * fields as the header; blank lines are skipped, empty text fields are kept
 * as empty rows.  Errors
 * name the file and the line.  A split's file is read on first use, so a
 * missing test file does not stop training. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmcore/lmcore.h>

enum { N_SPLITS = 3 };
static const char *const split_names[N_SPLITS] = {"train", "validation", "test"};

typedef struct csv_row_span {
    size_t offset, len; /* into the split's decoded text buffer */
} csv_row_span;

typedef struct csv_split {
    const char *name;
    char *path; /* NULL: this dataset has no such split */
    int loaded;
    lm_buffer text; /* the column's fields, unquoted, one after the other */
    csv_row_span *rows;
    size_t n_rows, cap_rows;
    lm_text_source source; /* what open_split hands out, once loaded: ctx is this split */
} csv_split;

typedef struct csv_dataset {
    csv_split splits[N_SPLITS];
    char *column;
    char delimiter;
} csv_dataset;

static char *copy_string(const char *s) {
    char *copy = malloc(strlen(s) + 1);
    if (copy) strcpy(copy, s);
    return copy;
}

static void csv_destroy(void *self) {
    csv_dataset *d = self;
    if (!d) return;
    for (int i = 0; i < N_SPLITS; i++) {
        free(d->splits[i].path);
        lm_buffer_free(&d->splits[i].text);
        free(d->splits[i].rows);
    }
    free(d->column);
    free(d);
}

static lm_status csv_create(void **self, lm_config *cfg) {
    csv_dataset *d = calloc(1, sizeof *d);
    if (!d) return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'csv'");
    int any = 0;
    for (int i = 0; i < N_SPLITS; i++) {
        d->splits[i].name = split_names[i];
        const char *path = lm_config_string(cfg, split_names[i], NULL);
        if (!path) continue;
        any = 1;
        if (!(d->splits[i].path = copy_string(path))) goto nomem;
    }
    const char *delimiter = lm_config_string(cfg, "delimiter", ",");
    if (!(d->column = copy_string(lm_config_string(cfg, "column", "text")))) goto nomem;
    if (!any) {
        csv_destroy(d);
        return lm_error_set(LM_ERR_INVALID, "dataset 'csv' needs at least one split: train=<file.csv>, "
                                            "validation=<file.csv> or test=<file.csv>");
    }
    if (strlen(delimiter) != 1 || delimiter[0] == '"' || delimiter[0] == '\n' || delimiter[0] == '\r') {
        csv_destroy(d);
        return lm_error_set(LM_ERR_INVALID,
                            "dataset 'csv': delimiter must be one character other than a quote or a newline, "
                            "got '%s'",
                            delimiter);
    }
    d->delimiter = delimiter[0];
    *self = d;
    return LM_OK;
nomem:
    csv_destroy(d);
    return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'csv'");
}

/* Checks that bytes are UTF-8 (tokenizers read text, not bytes). */
static size_t invalid_utf8_at(const unsigned char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > len || (n == 2 && c < 0xC2)) return i;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += n;
    }
    return len;
}

/* The parser's position in one file. */
typedef struct csv_cursor {
    const char *data, *path;
    size_t len, pos, line; /* line: 1-based, of pos */
    char delimiter;
} csv_cursor;

/* Reads one field into `field` (unquoted); *end_of_record tells whether a
 * newline or the end of the file followed it. */
static lm_status read_field(csv_cursor *c, lm_buffer *field, int *end_of_record) {
    lm_buffer_clear(field);
    size_t start_line = c->line;
    if (c->pos < c->len && c->data[c->pos] == '"') {
        c->pos++;
        for (;;) {
            if (c->pos >= c->len)
                return lm_error_set(LM_ERR_FORMAT,
                                    "%s:%zu: a quoted field is never closed (a \" without its closing \"; "
                                    "quotes inside a field are written \"\")",
                                    c->path, start_line);
            char ch = c->data[c->pos++];
            if (ch == '"') {
                if (c->pos < c->len && c->data[c->pos] == '"') {
                    c->pos++;
                    LM_TRY(lm_buffer_append(field, "\"", 1));
                    continue;
                }
                break;
            }
            if (ch == '\n') c->line++;
            LM_TRY(lm_buffer_append(field, &ch, 1));
        }
        if (c->pos < c->len && c->data[c->pos] != c->delimiter && c->data[c->pos] != '\n' &&
            c->data[c->pos] != '\r')
            return lm_error_set(LM_ERR_FORMAT,
                                "%s:%zu: text after the closing quote of a field (write a quote inside a quoted "
                                "field as \"\")",
                                c->path, c->line);
    } else {
        size_t begin = c->pos;
        while (c->pos < c->len && c->data[c->pos] != c->delimiter && c->data[c->pos] != '\n' &&
               c->data[c->pos] != '\r') {
            if (c->data[c->pos] == '"')
                return lm_error_set(LM_ERR_FORMAT,
                                    "%s:%zu: a quote inside an unquoted field (quote the whole field: "
                                    "\"say \"\"hi\"\"\")",
                                    c->path, c->line);
            c->pos++;
        }
        LM_TRY(lm_buffer_append(field, c->data + begin, c->pos - begin));
    }
    if (c->pos < c->len && c->data[c->pos] == c->delimiter) {
        c->pos++;
        *end_of_record = 0;
        return LM_OK;
    }
    if (c->pos < c->len && c->data[c->pos] == '\r') c->pos++;
    if (c->pos < c->len && c->data[c->pos] == '\n') {
        c->pos++;
        c->line++;
    }
    *end_of_record = 1;
    return LM_OK;
}

static lm_status push_row(csv_split *sp, size_t offset, size_t len) {
    if (sp->n_rows == sp->cap_rows) {
        size_t cap = sp->cap_rows ? 2 * sp->cap_rows : 256;
        csv_row_span *grown = realloc(sp->rows, cap * sizeof *grown);
        if (!grown) return lm_error_set(LM_ERR_NOMEM, "out of memory reading split '%s'", sp->name);
        sp->rows = grown;
        sp->cap_rows = cap;
    }
    sp->rows[sp->n_rows++] = (csv_row_span){offset, len};
    return LM_OK;
}

/* Parses the whole file: the header, then each record's text column. */
static lm_status parse_file(csv_dataset *d, csv_split *sp, const lm_buffer *file) {
    csv_cursor c = {file->data, sp->path, file->len, 0, 1, d->delimiter};
    if (file->len >= 3 && memcmp(file->data, "\xEF\xBB\xBF", 3) == 0) c.pos = 3; /* a UTF-8 byte order mark */
    size_t bad = invalid_utf8_at((const unsigned char *)file->data, file->len);
    if (bad < file->len) {
        size_t line = 1;
        for (size_t i = 0; i < bad; i++) line += file->data[i] == '\n';
        return lm_error_set(LM_ERR_FORMAT, "%s:%zu: invalid UTF-8 (byte 0x%02X); convert the file, e.g. with iconv",
                            sp->path, line, (unsigned char)file->data[bad]);
    }
    lm_buffer field = {0};
    lm_status status = LM_OK;
    size_t n_columns = 0, text_column = (size_t)-1;
    lm_buffer header_names = {0};
    for (int end = 0; !end && status == LM_OK;) {
        status = read_field(&c, &field, &end);
        if (status != LM_OK) break;
        if (field.len == strlen(d->column) && (field.len == 0 || memcmp(field.data, d->column, field.len) == 0))
            text_column = n_columns;
        status = lm_buffer_appendf(&header_names, "%s%.*s", n_columns ? ", " : "", (int)field.len,
                                   field.data ? field.data : "");
        n_columns++;
    }
    if (status == LM_OK && file->len == 0)
        status = lm_error_set(LM_ERR_FORMAT, "%s: the file is empty (a CSV file starts with a header line)", sp->path);
    /* LM_ERR_FORMAT, not NOT_FOUND: open_split keeps NOT_FOUND for an unknown split. */
    if (status == LM_OK && text_column == (size_t)-1)
        status = lm_error_set(LM_ERR_FORMAT, "%s:1: no column '%s' in the header (columns: %s); set column=<name>",
                              sp->path, d->column, header_names.data ? header_names.data : "");
    lm_buffer_free(&header_names);
    while (status == LM_OK && c.pos < c.len) {
        if (c.data[c.pos] == '\n' || (c.data[c.pos] == '\r' && c.pos + 1 < c.len && c.data[c.pos + 1] == '\n')) {
            c.pos += c.data[c.pos] == '\r' ? 2 : 1; /* a blank line: no record (as Python's csv and pandas) */
            c.line++;
            continue;
        }
        size_t record_line = c.line, column = 0;
        int end = 0;
        while (!end && status == LM_OK) {
            status = read_field(&c, &field, &end);
            if (status != LM_OK) break;
            if (column == text_column) {
                size_t offset = sp->text.len;
                status = lm_buffer_append(&sp->text, field.data ? field.data : "", field.len);
                if (status == LM_OK) status = push_row(sp, offset, field.len);
            }
            column++;
        }
        if (status == LM_OK && column != n_columns)
            status = lm_error_set(LM_ERR_FORMAT, "%s:%zu: a record with %zu fields; the header has %zu", sp->path,
                                  record_line, column, n_columns);
    }
    lm_buffer_free(&field);
    return status;
}

/* The source's row(): a field of the split's text buffer. */
static lm_status csv_row(void *ctx, size_t index, const char **text, size_t *len) {
    const csv_split *sp = ctx;
    if (index >= sp->n_rows)
        return lm_error_set(LM_ERR_INVALID, "dataset 'csv', split '%s': row %zu of %zu", sp->name, index,
                            sp->n_rows);
    *text = sp->text.data ? sp->text.data + sp->rows[index].offset : ""; /* every field empty: no buffer */
    *len = sp->rows[index].len;
    return LM_OK;
}

static lm_status load_split(csv_dataset *d, csv_split *sp) {
    lm_buffer file = {0};
    lm_status status = lm_file_read(sp->path, &file);
    if (status != LM_OK) {
        lm_buffer_free(&file);
        lm_error_prefix("dataset 'csv', split '%s' (the %s=<file.csv> setting): ", sp->name, sp->name);
        return status;
    }
    status = parse_file(d, sp, &file);
    if (status == LM_OK) {
        /* Token caches are keyed by this: the file's bytes and the column read from them. */
        uint64_t hash = lm_hash64(file.data ? file.data : "", file.len, LM_HASH_SEED);
        sp->source = (lm_text_source){.struct_size = sizeof(lm_text_source),
                                      .ctx = sp,
                                      .count = sp->n_rows,
                                      .row = csv_row,
                                      .fingerprint = lm_hash64(d->column, strlen(d->column), hash),
                                      .name = sp->name};
        sp->loaded = 1;
    } else {
        /* Nothing half-read stays: the next open reads the file again. */
        lm_buffer_free(&sp->text);
        free(sp->rows);
        sp->rows = NULL;
        sp->n_rows = sp->cap_rows = 0;
    }
    lm_buffer_free(&file);
    return status;
}

/* open_split: the split of that name, read on first use; the same source
 * every time after. */
static lm_status csv_open_split(void *self, const char *name, const lm_text_source **out) {
    csv_dataset *d = self;
    if (!name) return lm_error_set(LM_ERR_INVALID, "dataset 'csv': open_split needs a split name (train, ...)");
    for (int i = 0; i < N_SPLITS; i++) {
        csv_split *sp = &d->splits[i];
        if (!sp->path || strcmp(sp->name, name) != 0) continue;
        if (!sp->loaded) LM_TRY(load_split(d, sp));
        *out = &sp->source;
        return LM_OK;
    }
    return lm_error_set(LM_ERR_NOT_FOUND, "dataset 'csv' has no split '%s' (give it a file: %s=<file.csv>)", name,
                        name);
}

static lm_status csv_split_count(void *self, size_t *n) {
    csv_dataset *d = self;
    *n = 0;
    for (int i = 0; i < N_SPLITS; i++) *n += d->splits[i].path != NULL;
    return LM_OK;
}

static lm_status csv_split_name(void *self, size_t index, const char **name) {
    csv_dataset *d = self;
    for (int i = 0; i < N_SPLITS; i++) {
        if (!d->splits[i].path) continue;
        if (index-- == 0) {
            *name = d->splits[i].name;
            return LM_OK;
        }
    }
    return lm_error_set(LM_ERR_INVALID, "dataset 'csv': split index out of range");
}

static const lm_dataset_vtable csv_vtable = {
    .create = csv_create,
    .destroy = csv_destroy,
    .split_count = csv_split_count,
    .split_name = csv_split_name,
    .open_split = csv_open_split,
};

LM_PLUGIN_DEFINE(LM_KIND_DATASET, "csv", "1.0.0", "One text column of CSV files (RFC 4180 quoting), split per file",
                 lm_dataset_vtable, csv_vtable)
