#include "file_splits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const lm_file_split_names[LM_FILE_SPLITS] = {"train", "validation", "test"};

void lm_file_splits_init(lm_file_splits *s, const char *dataset, int fixed) {
    memset(s, 0, sizeof *s);
    s->dataset = dataset;
    s->fixed = fixed;
}

static void free_rows(lm_file_split *sp) {
    lm_buffer_free(&sp->text);
    free(sp->offsets);
    sp->offsets = NULL;
    sp->n_rows = sp->cap_offsets = 0;
}

void lm_file_splits_free(lm_file_splits *s) {
    for (size_t i = 0; i < s->n_splits; i++) {
        lm_file_split *sp = &s->splits[i];
        free_rows(sp);
        for (size_t f = 0; f < sp->n_paths; f++) free(sp->paths[f]);
        free(sp->paths);
    }
    s->n_splits = 0;
}

lm_status lm_file_splits_add(lm_file_splits *s, const char *name, const char *const *paths, size_t n_paths) {
    const char *known = NULL;
    for (int i = 0; i < LM_FILE_SPLITS; i++)
        if (strcmp(name, lm_file_split_names[i]) == 0) known = lm_file_split_names[i];
    if (!known || s->n_splits == LM_FILE_SPLITS || n_paths == 0)
        return lm_error_set(LM_ERR_INVALID, "dataset '%s': cannot add split '%s' with %zu files (a split is train, "
                                            "validation or test, given once, with at least one file)",
                            s->dataset, name, n_paths);
    lm_file_split *sp = &s->splits[s->n_splits];
    memset(sp, 0, sizeof *sp);
    sp->dataset = s->dataset;
    sp->name = known; /* static storage: lives as long as the plugin */
    sp->paths = calloc(n_paths, sizeof *sp->paths);
    if (!sp->paths) return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset '%s'", s->dataset);
    s->n_splits++; /* counted now, so lm_file_splits_free frees the paths copied so far */
    for (size_t f = 0; f < n_paths; f++) {
        sp->paths[f] = malloc(strlen(paths[f]) + 1);
        if (!sp->paths[f]) return lm_error_set(LM_ERR_NOMEM, "out of memory creating dataset '%s'", s->dataset);
        strcpy(sp->paths[f], paths[f]);
        sp->n_paths++;
    }
    return LM_OK;
}

lm_status lm_file_splits_from_config(lm_file_splits *s, lm_config *cfg) {
    for (int i = 0; i < LM_FILE_SPLITS; i++) {
        const char *const *files;
        size_t n = lm_config_list(cfg, lm_file_split_names[i], &files);
        if (n > 0) LM_TRY(lm_file_splits_add(s, lm_file_split_names[i], files, n));
    }
    if (s->n_splits == 0)
        return lm_error_set(LM_ERR_INVALID,
                            "dataset '%s' needs at least one split: train=<file>, validation=<file> or test=<file> "
                            "(a path or a list of paths)",
                            s->dataset);
    return LM_OK;
}

lm_status lm_file_splits_count(const lm_file_splits *s, size_t *n) {
    *n = s->n_splits;
    return LM_OK;
}

lm_status lm_file_splits_name(const lm_file_splits *s, size_t index, const char **name) {
    if (index >= s->n_splits)
        return lm_error_set(LM_ERR_INVALID, "dataset '%s' has %zu splits, not %zu", s->dataset, s->n_splits,
                            index + 1);
    *name = s->splits[index].name;
    return LM_OK;
}

/* The source's row(): rows are stored back to back, each followed by a NUL. */
static lm_status split_row(void *ctx, size_t index, const char **text, size_t *len) {
    const lm_file_split *sp = ctx;
    if (index >= sp->n_rows)
        return lm_error_set(LM_ERR_INVALID, "dataset '%s', split '%s': row %zu out of range (%zu rows)", sp->dataset,
                            sp->name, index, sp->n_rows);
    *text = sp->text.data + sp->offsets[index];
    *len = sp->offsets[index + 1] - sp->offsets[index] - 1;
    return LM_OK;
}

/* A split the set does not have: a fixed set lists its splits; a set made
 * from settings says how to give a known name, else which names exist. */
static lm_status no_such_split(const lm_file_splits *s, const char *split) {
    const char *shown = split ? split : "(null)";
    if (s->fixed) {
        char names[64] = "";
        for (size_t i = 0; i < s->n_splits; i++) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", s->splits[i].name);
        }
        return lm_error_set(LM_ERR_NOT_FOUND, "dataset '%s' has no split '%s' (its splits: %s)", s->dataset, shown,
                            names);
    }
    for (int i = 0; split && i < LM_FILE_SPLITS; i++)
        if (strcmp(split, lm_file_split_names[i]) == 0)
            return lm_error_set(LM_ERR_NOT_FOUND, "dataset '%s' has no split '%s': give its files with %s=<file>",
                                s->dataset, split, split);
    return lm_error_set(LM_ERR_NOT_FOUND,
                        "dataset '%s' has no split '%s' (it knows train, validation and test, each given as "
                        "<split>=<file>)",
                        s->dataset, shown);
}

lm_status lm_file_splits_open(lm_file_splits *s, const char *split, lm_file_split_loader load, void *dataset,
                              const lm_text_source **out) {
    for (size_t i = 0; split && i < s->n_splits; i++) {
        lm_file_split *sp = &s->splits[i];
        if (strcmp(split, sp->name) != 0) continue;
        if (!sp->loaded) {
            sp->source.fingerprint = LM_HASH_SEED; /* lm_file_split_read chains each file into it */
            lm_status status = load(dataset, sp);
            if (status != LM_OK) {
                /* Nothing half-loaded stays: the next open reads the files again. */
                free_rows(sp);
                return status;
            }
            sp->source.struct_size = (uint32_t)sizeof sp->source;
            sp->source.ctx = sp;
            sp->source.count = sp->n_rows;
            sp->source.row = split_row;
            sp->source.name = sp->name;
            sp->loaded = 1;
        }
        *out = &sp->source;
        return LM_OK;
    }
    return no_such_split(s, split);
}

lm_status lm_file_split_read(lm_file_split *sp, size_t index, lm_buffer *out) {
    if (index >= sp->n_paths)
        return lm_error_set(LM_ERR_INVALID, "dataset '%s', split '%s': file %zu of %zu asked for", sp->dataset,
                            sp->name, index + 1, sp->n_paths);
    lm_status status = lm_file_read(sp->paths[index], out);
    if (status != LM_OK) {
        lm_error_prefix("dataset '%s', split '%s': ", sp->dataset, sp->name);
        return status;
    }
    sp->source.fingerprint = lm_hash64(out->data, out->len, sp->source.fingerprint);
    return LM_OK;
}

static lm_status grow_offsets(lm_file_split *sp, size_t rows) {
    size_t need = sp->n_rows + rows + 1; /* offsets[n_rows] ends the last row */
    if (need <= sp->cap_offsets) return LM_OK;
    size_t cap = sp->cap_offsets ? sp->cap_offsets : 1024;
    while (cap < need) cap *= 2;
    size_t *grown = realloc(sp->offsets, cap * sizeof *grown);
    if (!grown)
        return lm_error_set(LM_ERR_NOMEM, "out of memory indexing split '%s' of dataset '%s' (%zu rows)", sp->name,
                            sp->dataset, need - 1);
    sp->offsets = grown;
    sp->cap_offsets = cap;
    if (sp->n_rows == 0) sp->offsets[0] = 0;
    return LM_OK;
}

lm_status lm_file_split_reserve(lm_file_split *sp, size_t rows, size_t bytes) {
    LM_TRY(grow_offsets(sp, rows));
    return lm_buffer_reserve(&sp->text, sp->text.len + bytes + rows);
}

lm_status lm_file_split_push(lm_file_split *sp, const char *text, size_t len) {
    LM_TRY(grow_offsets(sp, 1));
    LM_TRY(lm_buffer_reserve(&sp->text, sp->text.len + len + 1));
    if (len) memcpy(sp->text.data + sp->text.len, text, len);
    sp->text.len += len;
    sp->text.data[sp->text.len++] = '\0';
    sp->offsets[++sp->n_rows] = sp->text.len;
    return LM_OK;
}
