/* The Lua runtime: runs pipeline scripts with the `lm` module loaded. */
#ifndef LMCORE_RUNTIME_H
#define LMCORE_RUNTIME_H

#include "lmcore/lmcore.h"
#include "registry.h"

typedef struct lm_runtime_options {
    const char *script;            /* path of the Lua script */
    const char *const *args;       /* key=value pairs for the `args` table */
    int n_args;
    lm_registry *registry;         /* plugins available to the script */
} lm_runtime_options;

/* Runs the script.  Returns LM_OK, or the failure with lm_error_message()
 * holding "script.lua:12: what went wrong" and *traceback (malloc'd, may be
 * NULL) the Lua traceback.  Installs SIGINT and SIGTERM handlers for the
 * duration: either sets the interrupt flag (the trainer saves a checkpoint
 * and stops); a second one kills the process. */
lm_status lm_runtime_run(const lm_runtime_options *options, char **traceback);

/* The signal that interrupted the last run (SIGINT or SIGTERM), or 0: a
 * run stopped by it exits with 128 + the signal, as the shell reports a
 * process killed by it (130, 143), after its checkpoint and report. */
int lm_runtime_interrupt_signal(void);

/* The script arguments as key=value strings: key=value as given, and
 * Hugging Face's --key value, --key=value and --flag (key=true); --help and
 * -h become help=true.  *out holds *n_out strings, freed with
 * lm_runtime_free_args. */
lm_status lm_runtime_normalize_args(const char *const *argv, int n, char ***out, int *n_out);
void lm_runtime_free_args(char **args, int n);

/* Parses key=value pairs into a config (numbers as numbers, true/false as
 * booleans, the rest strings); usage errors name the bad argument. */
lm_status lm_runtime_parse_args(const char *const *args, int n, lm_config *out);

#endif
