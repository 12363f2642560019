/* A script's command-line arguments in the forms people type: lmcore's
 * key=value, and the --key value / --key=value / --flag of Hugging Face's
 * HfArgumentParser (run_clm.py --learning_rate 2e-5 --bf16), so that a
 * Trainer command line works after `lmcore run SCRIPT` as it is. */
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

static int is_long_option(const char *arg) { return arg[0] == '-' && arg[1] == '-' && arg[2] != '\0'; }

static char *joined(const char *key, size_t key_len, const char *value) {
    const size_t value_len = strlen(value);
    char *s = malloc(key_len + 1 + value_len + 1);
    if (!s) return NULL;
    memcpy(s, key, key_len);
    s[key_len] = '=';
    memcpy(s + key_len + 1, value, value_len + 1);
    return s;
}

lm_status lm_runtime_normalize_args(const char *const *argv, int n, char ***out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    char **args = calloc((size_t)(n > 0 ? n : 1), sizeof *args);
    if (!args) return lm_error_set(LM_ERR_NOMEM, "out of memory for %d script arguments", n);
    int count = 0;
    for (int i = 0; i < n; i++) {
        const char *arg = argv[i];
        char *s;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            s = joined("help", 4, "true"); /* the shipped scripts print their options */
        } else if (is_long_option(arg) && strchr(arg, '=')) {
            s = strdup(arg + 2); /* --key=value */
        } else if (is_long_option(arg) && i + 1 < n && !is_long_option(argv[i + 1]) &&
                   strcmp(argv[i + 1], "-h") != 0) {
            s = joined(arg + 2, strlen(arg + 2), argv[i + 1]); /* --key value */
            i++;
        } else if (is_long_option(arg)) {
            s = joined(arg + 2, strlen(arg + 2), "true"); /* --flag: a boolean set, as --bf16 */
        } else {
            s = strdup(arg); /* key=value, or whatever the parser will refuse by name */
        }
        if (!s) {
            lm_runtime_free_args(args, count);
            return lm_error_set(LM_ERR_NOMEM, "out of memory for the script arguments");
        }
        args[count++] = s;
    }
    *out = args;
    *n_out = count;
    return LM_OK;
}

void lm_runtime_free_args(char **args, int n) {
    if (!args) return;
    for (int i = 0; i < n; i++) free(args[i]);
    free(args);
}
