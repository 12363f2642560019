#include "file_splits.h"

#include <string.h>

const char *const lm_file_split_names[LM_FILE_SPLITS] = {"train", "validation", "test"};

lm_status lm_file_split_missing(const char *dataset, const char *split) {
    for (int i = 0; split && i < LM_FILE_SPLITS; i++)
        if (strcmp(split, lm_file_split_names[i]) == 0)
            return lm_error_set(LM_ERR_NOT_FOUND, "dataset '%s' has no split '%s': give its files with %s=<file>",
                                dataset, split, split);
    return lm_error_set(LM_ERR_NOT_FOUND,
                        "dataset '%s' has no split '%s' (it knows train, validation and test, each given as "
                        "<split>=<file>)",
                        dataset, split ? split : "(null)");
}
