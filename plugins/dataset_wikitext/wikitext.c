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
#include "file_splits.h"
#include "unicode.h"

static const char *const split_files[LM_FILE_SPLITS] = {"wiki.train.raw", "wiki.valid.raw", "wiki.test.raw"};

typedef struct wikitext {
    lm_file_splits splits; /* all three, one file each, in lm_file_split_names order */
} wikitext;

static void wikitext_destroy(void *self) {
    wikitext *w = self;
    if (!w) return;
    lm_file_splits_free(&w->splits);
    free(w);
}

static lm_status wikitext_create(void **self, lm_config *cfg) {
    const char *dir = lm_config_string(cfg, "path", "data/wikitext-2-raw");
    const char *explicit_paths[LM_FILE_SPLITS];
    for (int i = 0; i < LM_FILE_SPLITS; i++) explicit_paths[i] = lm_config_string(cfg, lm_file_split_names[i], NULL);
    wikitext *w = calloc(1, sizeof *w);
    if (!w) return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'wikitext'");
    lm_file_splits_init(&w->splits, "wikitext", 1);
    for (int i = 0; i < LM_FILE_SPLITS; i++) {
        char *joined = NULL; /* <path>/<file>, when the split's file was not given */
        const char *path = explicit_paths[i];
        if (!path) {
            size_t n = strlen(dir) + strlen(split_files[i]) + 2;
            if (!(joined = malloc(n))) {
                wikitext_destroy(w);
                return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset 'wikitext'");
            }
            snprintf(joined, n, "%s/%s", dir, split_files[i]);
            path = joined;
        }
        lm_status status = lm_file_splits_add(&w->splits, lm_file_split_names[i], &path, 1);
        free(joined);
        if (status != LM_OK) {
            wikitext_destroy(w);
            return status;
        }
    }
    *self = w;
    return LM_OK;
}

static lm_status wikitext_split_count(void *self, size_t *n) {
    return lm_file_splits_count(&((wikitext *)self)->splits, n);
}

static lm_status wikitext_split_name(void *self, size_t index, const char **name) {
    return lm_file_splits_name(&((wikitext *)self)->splits, index, name);
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

/* Cuts the (newline-normalised) text into rows, each keeping its "\n";
 * a line str.strip() would empty becomes "". */
static lm_status build_rows(lm_file_split *sp, const char *text, size_t len) {
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    if (len && text[len - 1] != '\n') lines++;
    LM_TRY(lm_file_split_reserve(sp, lines, len)); /* one allocation each for rows and offsets */
    size_t row = 0;
    for (size_t begin = 0; begin < len; row++) {
        const char *nl = memchr(text + begin, '\n', len - begin);
        size_t end = nl ? (size_t)(nl - text) + 1 : len; /* the row keeps its "\n" */
        int blank;
        LM_TRY(check_line(sp->paths[0], row + 1, (const unsigned char *)text + begin, end - begin, &blank));
        LM_TRY(lm_file_split_push(sp, text + begin, blank ? 0 : end - begin));
        begin = end;
    }
    return LM_OK;
}

/* The split's loader: its one file, hashed as stored, then read as Python's
 * text mode reads it. */
static lm_status load_split(void *dataset, lm_file_split *sp) {
    (void)dataset;
    lm_buffer file = {0};
    lm_status status = lm_file_split_read(sp, 0, &file);
    if (status != LM_OK) {
        lm_buffer_free(&file);
        /* The message so far: "dataset 'wikitext', split 'x': cannot open ...". */
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", lm_error_message());
        return lm_error_set(LM_ERR_IO,
                            "%s; run scripts/fetch_wikitext2.sh to download WikiText-2, or pass %s=<file> (or "
                            "path=<folder>) to the dataset",
                            reason, sp->name);
    }
    size_t len = normalize_newlines(file.data, file.len);
    status = build_rows(sp, file.data, len);
    lm_buffer_free(&file);
    return status;
}

static lm_status wikitext_open_split(void *self, const char *split, const lm_text_source **out) {
    wikitext *w = self;
    return lm_file_splits_open(&w->splits, split, load_split, w, out);
}

static const lm_dataset_vtable wikitext_vtable = {
    .create = wikitext_create,
    .destroy = wikitext_destroy,
    .split_count = wikitext_split_count,
    .split_name = wikitext_split_name,
    .open_split = wikitext_open_split,
};

LM_PLUGIN_DEFINE(LM_KIND_DATASET, "wikitext", "1.0.0",
                 "WikiText raw files (wiki.{train,valid,test}.raw), one row per line as Hugging Face loads them",
                 lm_dataset_vtable, wikitext_vtable)
