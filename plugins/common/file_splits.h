/* The splits of datasets that take one file (or list of files) per split
 * (text, jsonl): their names, and the error for a split that was not given. */
#ifndef LMPLUGIN_FILE_SPLITS_H
#define LMPLUGIN_FILE_SPLITS_H

#include "lmcore/lmcore.h"

#define LM_FILE_SPLITS 3
extern const char *const lm_file_split_names[LM_FILE_SPLITS]; /* train, validation, test */

/* LM_ERR_NOT_FOUND for `split` of dataset `dataset`: how to give it when it
 * is one of the known names, else which names exist. */
lm_status lm_file_split_missing(const char *dataset, const char *split);

#endif
