/* What the end-to-end tests of tests/pipeline share: run the real lmcore
 * CLI through a shell from the source tree and keep what it printed. */
#ifndef LM_TESTS_CLI_RUN_H
#define LM_TESTS_CLI_RUN_H

#include <stddef.h>

/* Everything the last cli_run printed (stdout and stderr), NUL-terminated;
 * cut at the buffer's size. */
extern char cli_output[1 << 20];

/* Runs `cmdline` with /bin/sh in the source tree, with no user plugin path
 * and one OpenMP thread; every command of the line (not only its last)
 * reports into cli_output.  Returns the exit status, 128 for a signal. */
int cli_run(const char *cmdline);

/* A fresh folder /tmp/lm_<name>_XXXXXX into out (the test fails if it
 * cannot be made). */
void cli_temp_dir(char *out, size_t cap, const char *name);

/* 1 when <dir>/<file> exists and is not empty. */
int cli_nonempty_file(const char *dir, const char *file);

/* The whole file, malloc'd and NUL-terminated; NULL when it cannot be read. */
char *cli_read_file(const char *path);

#endif
