/* The output file of a logger that writes one line per event (csv,
 * jsonl): its settings `path` (required) and `every` (at least 1), and
 * each line written and flushed, so that a crash loses at most the line
 * being written.  The file is created at the first line, not at create():
 * a run that fails before its first event leaves no empty log behind.
 * create() still checks what it can without writing (the folder exists
 * and is writable, the path is no FIFO), so a wrong path fails early.
 * Messages name the logger ("logger 'csv' cannot open ...").  Part of
 * lmplugin_common. */
#ifndef LMPLUGIN_FILE_LOGGER_H
#define LMPLUGIN_FILE_LOGGER_H

#include <stdint.h>
#include <stdio.h>

#include "lmcore/lmcore.h"

typedef struct file_logger {
    const char *name; /* the logger's ("csv"), for messages */
    FILE *file;       /* NULL until the first line */
    char *path;
    char mode[4];  /* fopen's, used at the first line */
    int64_t every; /* a STEP line at multiples of this step (and at the last) */
} file_logger;

/* Reads `path` and `every` (default 1) from cfg and checks that the file
 * can be created with fopen's `mode` ("w" replaces it, "a" appends) at the
 * first line.  LM_ERR_INVALID for a missing path or an `every` below 1,
 * LM_ERR_IO when its folder is missing or not writable or the path is not
 * a regular file; nothing is left to close then. */
lm_status file_logger_open(file_logger *f, const char *name, lm_config *cfg, const char *mode);
/* Writes len bytes (whole lines) and flushes them; creates the file first. */
lm_status file_logger_write(file_logger *f, const void *data, size_t len);
lm_status file_logger_flush(file_logger *f);
void file_logger_close(file_logger *f);

#endif
