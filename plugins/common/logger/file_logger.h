/* The output file of a logger that writes one line per event (csv,
 * jsonl): its settings `path` (required) and `every` (at least 1), the
 * file opened at create(), and each line written and flushed, so that a
 * crash loses at most the line being written.  Messages name the logger
 * ("logger 'csv' cannot open ...").  Part of lmplugin_common. */
#ifndef LMPLUGIN_FILE_LOGGER_H
#define LMPLUGIN_FILE_LOGGER_H

#include <stdint.h>
#include <stdio.h>

#include "lmcore/lmcore.h"

typedef struct file_logger {
    const char *name; /* the logger's ("csv"), for messages */
    FILE *file;
    char *path;
    int64_t every; /* a STEP line at multiples of this step (and at the last) */
} file_logger;

/* Reads `path` and `every` (default 1) from cfg and opens the file with
 * fopen's `mode` ("w" replaces it, "a" appends).  LM_ERR_INVALID for a
 * missing path or an `every` below 1, LM_ERR_IO when it cannot be opened;
 * nothing is left to close then. */
lm_status file_logger_open(file_logger *f, const char *name, lm_config *cfg, const char *mode);
/* Writes len bytes (whole lines) and flushes them. */
lm_status file_logger_write(file_logger *f, const void *data, size_t len);
lm_status file_logger_flush(file_logger *f);
void file_logger_close(file_logger *f);

#endif
