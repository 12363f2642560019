/* The splits of datasets that read one file (or a list of files) per split
 * (wikitext, text, jsonl): their names, the settings that give them, and
 * what every such dataset does the same way once its own parser has cut a
 * file into rows: load a split on first use, keep its rows, hand them out as
 * one lm_text_source, refuse an unknown split or an index past the end.
 *
 * A dataset keeps one lm_file_splits, fills it in create (from the
 * train/validation/test settings, or split by split), and implements its
 * vtable entries split_count, split_name and open_split by calling
 * lm_file_splits_count, _name and _open; its own code is only the loader
 * that reads a split's files (lm_file_split_read) and appends their rows
 * (lm_file_split_push).  A loader that fails leaves nothing behind: the
 * split is loaded again, and fails again the same way, on the next open. */
#ifndef LMPLUGIN_FILE_SPLITS_H
#define LMPLUGIN_FILE_SPLITS_H

#include "lmcore/lmcore.h"

#define LM_FILE_SPLITS 3
extern const char *const lm_file_split_names[LM_FILE_SPLITS]; /* train, validation, test */

typedef struct lm_file_split {
    const char *dataset; /* the plugin's name, for messages */
    const char *name;    /* one of lm_file_split_names */
    char **paths;        /* the files, read one after the other */
    size_t n_paths;
    int loaded;
    lm_buffer text;      /* every row followed by a NUL, so rows are C strings too */
    size_t *offsets;     /* n_rows + 1 offsets into text */
    size_t n_rows, cap_offsets;
    lm_text_source source; /* what open_split hands out: ctx is this split */
} lm_file_split;

typedef struct lm_file_splits {
    const char *dataset; /* the plugin's name, for messages ("text") */
    int fixed;           /* 1: the format has every split (wikitext); 0: only the splits given in the settings */
    lm_file_split splits[LM_FILE_SPLITS];
    size_t n_splits;
} lm_file_splits;

/* Reads a split's files, appending its rows with lm_file_split_push.
 * `dataset` is the plugin's own instance (its parsing settings). */
typedef lm_status (*lm_file_split_loader)(void *dataset, lm_file_split *split);

/* An empty set for dataset `dataset` (a string that outlives the set). */
void lm_file_splits_init(lm_file_splits *s, const char *dataset, int fixed);
/* Adds split `name` (one of lm_file_split_names) read from n_paths files (copied). */
lm_status lm_file_splits_add(lm_file_splits *s, const char *name, const char *const *paths, size_t n_paths);
/* Adds the splits the settings train, validation and test give (each a
 * path or a list of paths); LM_ERR_INVALID when none is given. */
lm_status lm_file_splits_from_config(lm_file_splits *s, lm_config *cfg);
void lm_file_splits_free(lm_file_splits *s);

/* The vtable entries split_count and split_name. */
lm_status lm_file_splits_count(const lm_file_splits *s, size_t *n);
lm_status lm_file_splits_name(const lm_file_splits *s, size_t index, const char **name);
/* The vtable entry open_split: the split's source, loading it with `load`
 * on first use.  LM_ERR_NOT_FOUND for a split the set does not have, with
 * how to give it; the loader's status otherwise. */
lm_status lm_file_splits_open(lm_file_splits *s, const char *split, lm_file_split_loader load, void *dataset,
                              const lm_text_source **out);

/* For loaders: reads file `index` of the split into `out` (which it
 * replaces), chaining its bytes into the split's fingerprint
 * (lm_hash64 over the files in order, from LM_HASH_SEED: lm_hash64 folds in
 * each length, so moving a line from one file to the next changes it).  A
 * file that cannot be read is an error prefixed with the dataset and split. */
lm_status lm_file_split_read(lm_file_split *sp, size_t index, lm_buffer *out);
/* Room for `rows` more rows of `bytes` bytes in all (optional: push grows as needed). */
lm_status lm_file_split_reserve(lm_file_split *sp, size_t rows, size_t bytes);
/* Appends one row (copied; need not be NUL-terminated). */
lm_status lm_file_split_push(lm_file_split *sp, const char *text, size_t len);

#endif
