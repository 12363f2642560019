/* Dataset 'wikitext': the raw WikiText files (wiki.{train,valid,test}.raw),
 * row for row as Hugging Face's load_dataset("wikitext", "wikitext-2-raw-v1")
 * gives them.  That loader reads the file in Python text mode (UTF-8,
 * universal newlines) and yields one row per line: a line with nothing but
 * whitespace (str.strip() empty) becomes "", every other line keeps its
 * trailing "\n".  Reproducing this exactly matters: group_texts concatenates
 * the tokenized rows, so a missing "\n" shifts every training block.
 *
 * Config: `path` (folder holding the three files; default
 * data/wikitext-2-raw, where scripts/fetch_wikitext2.sh puts them) and/or
 * `train`, `validation`, `test` (explicit file paths).  Files are read on the
 * first use of their split, so evaluating without the train file works. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcore/lmcore.h"
#include "unicode.h"

#define SPLIT_COUNT 3

static const char *const split_names[SPLIT_COUNT] = {"train", "validation", "test"};
static const char *const split_files[SPLIT_COUNT] = {"wiki.train.raw", "wiki.valid.raw", "wiki.test.raw"};

typedef struct wikitext_split {
    char *path;
    int loaded;
    char *rows;      /* every row followed by a NUL */
    size_t *offsets; /* n_rows + 1 offsets into rows */
    size_t n_rows;
    uint64_t fingerprint;
} wikitext_split;

typedef struct wikitext {
    wikitext_split splits[SPLIT_COUNT];
} wikitext;

static char *join_path(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static char *copy_string(const char *s) {
    char *p = malloc(strlen(s) + 1);
    if (p) strcpy(p, s);
    return p;
}

static void wikitext_destroy(void *self) {
    wikitext *w = self;
    if (!w) return;
    for (int i = 0; i < SPLIT_COUNT; i++) {
        free(w->splits[i].path);
        free(w->splits[i].rows);
        free(w->splits[i].offsets);
    }
    free(w);
}

static lm_status wikitext_create(void **self, lm_config *cfg) {
    const char *dir = lm_config_string(cfg, "path", "data/wikitext-2-raw");
    const char *explicit_paths[SPLIT_COUNT];
    for (int i = 0; i < SPLIT_COUNT; i++) explicit_paths[i] = lm_config_string(cfg, split_names[i], NULL);
    wikitext *w = calloc(1, sizeof *w);
    if (!w) return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'wikitext'");
    for (int i = 0; i < SPLIT_COUNT; i++) {
        w->splits[i].path = explicit_paths[i] ? copy_string(explicit_paths[i]) : join_path(dir, split_files[i]);
        if (!w->splits[i].path) {
            wikitext_destroy(w);
            return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'wikitext'");
        }
    }
    *self = w;
    return LM_OK;
}

static lm_status wikitext_split_count(void *self, size_t *n) {
    *n = SPLIT_COUNT;
    return LM_OK;
}

static lm_status wikitext_split_name(void *self, size_t index, const char **name) {
    if (index >= SPLIT_COUNT)
        return lm_error_set(LM_ERR_INVALID, "dataset 'wikitext' has %d splits, not %zu", SPLIT_COUNT, index + 1);
    *name = split_names[index];
    return LM_OK;
}

/* Python's str.isspace(): Unicode White_Space plus U+001C..U+001F. */
static int python_isspace(uint32_t cp) { return lm_unicode_is_whitespace(cp) || (cp >= 0x1C && cp <= 0x1F); }

/* Validates the UTF-8 of one line and says whether str.strip() would empty it. */
static lm_status check_line(const char *path, size_t line_no, const unsigned char *s, size_t len, int *blank) {
    *blank = 1;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int n = lm_utf8_decode(s + i, len - i, &cp);
        if (n <= 0)
            return lm_error_set(LM_ERR_FORMAT,
                                "%s:%zu: invalid UTF-8 byte 0x%02X at byte %zu of the line (WikiText "
                                "files are UTF-8; is the file damaged?)",
                                path, line_no, s[i], i + 1);
        if (*blank && !python_isspace(cp)) *blank = 0;
        i += (size_t)n;
    }
    return LM_OK;
}

/* Python's universal newlines: "\r\n" and a lone "\r" both read as "\n". */
static size_t normalize_newlines(char *text, size_t len) {
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\r') {
            text[out++] = '\n';
            if (i + 1 < len && text[i + 1] == '\n') i++;
        } else {
            text[out++] = text[i];
        }
    }
    return out;
}

static lm_status build_rows(wikitext_split *sp, char *text, size_t len) {
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    if (len && text[len - 1] != '\n') lines++;
    sp->rows = malloc(len + lines + 1);
    sp->offsets = malloc((lines + 1) * sizeof *sp->offsets);
    if (!sp->rows || !sp->offsets)
        return lm_error_set(LM_ERR_NOMEM, "out of memory indexing '%s' (%zu lines)", sp->path, lines);
    size_t out = 0, row = 0;
    for (size_t begin = 0; begin < len; row++) {
        const char *nl = memchr(text + begin, '\n', len - begin);
        size_t end = nl ? (size_t)(nl - text) + 1 : len; /* the row keeps its "\n" */
        int blank;
        LM_TRY(check_line(sp->path, row + 1, (const unsigned char *)text + begin, end - begin, &blank));
        sp->offsets[row] = out;
        if (!blank) {
            memcpy(sp->rows + out, text + begin, end - begin);
            out += end - begin;
        }
        sp->rows[out++] = '\0';
        begin = end;
    }
    sp->offsets[row] = out;
    sp->n_rows = row;
    return LM_OK;
}

static lm_status load_split(wikitext_split *sp, const char *name) {
    lm_buffer file = {0};
    lm_status status = lm_file_read(sp->path, &file);
    if (status != LM_OK) {
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", lm_error_message());
        return lm_error_set(LM_ERR_IO,
                            "dataset 'wikitext', split '%s': %s; run scripts/fetch_wikitext2.sh to download "
                            "WikiText-2, or pass %s=<file> (or path=<folder>) to the dataset",
                            name, reason, name);
    }
    sp->fingerprint = lm_hash64(file.data, file.len, LM_HASH_SEED);
    size_t len = normalize_newlines(file.data, file.len);
    status = build_rows(sp, file.data, len);
    lm_buffer_free(&file);
    if (status != LM_OK) {
        free(sp->rows);
        free(sp->offsets);
        sp->rows = NULL;
        sp->offsets = NULL;
        return status;
    }
    sp->loaded = 1;
    return LM_OK;
}

static lm_status get_split(wikitext *w, const char *split, wikitext_split **out) {
    for (int i = 0; i < SPLIT_COUNT; i++) {
        if (split && strcmp(split, split_names[i]) == 0) {
            if (!w->splits[i].loaded) LM_TRY(load_split(&w->splits[i], split_names[i]));
            *out = &w->splits[i];
            return LM_OK;
        }
    }
    return lm_error_set(LM_ERR_NOT_FOUND, "dataset 'wikitext' has no split '%s' (its splits: train, validation, test)",
                        split ? split : "(null)");
}

static lm_status wikitext_row_count(void *self, const char *split, size_t *n) {
    wikitext_split *sp;
    LM_TRY(get_split(self, split, &sp));
    *n = sp->n_rows;
    return LM_OK;
}

static lm_status wikitext_row(void *self, const char *split, size_t index, const char **text, size_t *len) {
    wikitext_split *sp;
    LM_TRY(get_split(self, split, &sp));
    if (index >= sp->n_rows)
        return lm_error_set(LM_ERR_INVALID, "dataset 'wikitext', split '%s': row %zu out of range (%zu rows)", split,
                            index, sp->n_rows);
    *text = sp->rows + sp->offsets[index];
    *len = sp->offsets[index + 1] - sp->offsets[index] - 1;
    return LM_OK;
}

static lm_status wikitext_fingerprint(void *self, const char *split, uint64_t *hash) {
    wikitext_split *sp;
    LM_TRY(get_split(self, split, &sp));
    *hash = sp->fingerprint;
    return LM_OK;
}

static const lm_dataset_vtable wikitext_vtable = {
    .create = wikitext_create,
    .destroy = wikitext_destroy,
    .split_count = wikitext_split_count,
    .split_name = wikitext_split_name,
    .row_count = wikitext_row_count,
    .row = wikitext_row,
    .fingerprint = wikitext_fingerprint,
};

LM_PLUGIN_DEFINE(LM_KIND_DATASET, "wikitext", "1.0.0",
                 "WikiText raw files (wiki.{train,valid,test}.raw), one row per line as Hugging Face loads them",
                 lm_dataset_vtable, wikitext_vtable)
