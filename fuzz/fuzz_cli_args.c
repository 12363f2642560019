/* fuzz_cli_args: command-line key=value arguments (lm_runtime_parse_args,
 * the CLI's parser for script arguments, after lm_runtime_normalize_args
 * for the --key value forms) and lm_config_set_parsed on arbitrary
 * strings.
 *
 * Input: arguments separated by newlines (a NUL ends an argument early,
 * as on a real command line).  Invariants: parsing succeeds or fails with a
 * message; every parsed key reads back with the getter of its type, is
 * found by lm_config_has, survives lm_config_clone; lm_config_validate
 * passes once every key was read; the integer/number/bool/string typing
 * matches what strtoll/strtod say about the value. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "runtime.h"

#define MAX_ARGS 64

/* What lm_config_set_parsed should make of a value (its documented rule). */
static lm_config_type expected_type(const char *value) {
    if (!strcmp(value, "true") || !strcmp(value, "false")) return LM_CONFIG_BOOL;
    if (!*value) return LM_CONFIG_STRING;
    char *end;
    errno = 0;
    (void)strtoll(value, &end, 10);
    if (*end == '\0' && errno == 0) return LM_CONFIG_INT;
    errno = 0;
    double d = strtod(value, &end);
    if (*end == '\0' && errno == 0 && isfinite(d)) return LM_CONFIG_NUMBER;
    return LM_CONFIG_STRING;
}

static void read_all(lm_config *cfg) {
    for (size_t i = 0; i < lm_config_count(cfg); i++) {
        const char *key = lm_config_key_at(cfg, i);
        FUZZ_CHECK(key && *key, "empty key stored at %zu", i);
        FUZZ_CHECK(lm_config_has(cfg, key), "key '%s' not found", key);
        switch (lm_config_type_at(cfg, i)) {
        case LM_CONFIG_BOOL: (void)lm_config_bool(cfg, key, 0); break;
        case LM_CONFIG_INT: (void)lm_config_int(cfg, key, 0); break;
        case LM_CONFIG_NUMBER: (void)lm_config_number(cfg, key, 0); break;
        case LM_CONFIG_STRING: FUZZ_CHECK(lm_config_string(cfg, key, NULL) != NULL, "string '%s' lost", key); break;
        case LM_CONFIG_LIST: fuzz_fail("parsed argument '%s' became a list", key);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size + 1);
    FUZZ_CHECK(copy != NULL, "oom");
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *args[MAX_ARGS];
    int n = 0;
    for (char *p = copy; n < MAX_ARGS;) {
        args[n++] = p;
        char *nl = memchr(p, '\n', (size_t)(copy + size - p));
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }

    /* The CLI path: key characters checked, then typed. */
    lm_config *cfg, *clone = NULL;
    FUZZ_CHECK(lm_config_create(&cfg, "script arguments") == LM_OK, "config");
    if (lm_runtime_parse_args(args, n, cfg) == LM_OK) {
        FUZZ_CHECK(lm_config_count(cfg) <= (size_t)n, "%zu keys from %d arguments", lm_config_count(cfg), n);
        for (int i = 0; i < n; i++) {
            const char *eq = strchr(args[i], '=');
            FUZZ_CHECK(eq && eq != args[i], "argument '%s' accepted without key=value", args[i]);
        }
        /* The last argument's key has the last value and its type. */
        const char *last = args[n - 1], *eq = strchr(last, '=');
        char key[256];
        size_t klen = (size_t)(eq - last);
        if (klen < sizeof key) {
            memcpy(key, last, klen);
            key[klen] = '\0';
            size_t index = SIZE_MAX;
            for (size_t i = 0; i < lm_config_count(cfg); i++)
                if (!strcmp(lm_config_key_at(cfg, i), key)) index = i;
            FUZZ_CHECK(index != SIZE_MAX, "key '%s' missing after parsing", key);
            FUZZ_CHECK(lm_config_type_at(cfg, index) == expected_type(eq + 1), "'%s' typed %d, expected %d", last,
                       (int)lm_config_type_at(cfg, index), (int)expected_type(eq + 1));
            if (expected_type(eq + 1) == LM_CONFIG_STRING)
                FUZZ_CHECK(!strcmp(lm_config_string(cfg, key, ""), eq + 1), "string value of '%s' changed", key);
        }
        FUZZ_CHECK(lm_config_clone(cfg, "clone", &clone) == LM_OK, "clone failed");
        FUZZ_CHECK(lm_config_count(clone) == lm_config_count(cfg), "clone lost keys");
        read_all(cfg);
        read_all(clone);
        FUZZ_CHECK(lm_config_validate(cfg) == LM_OK, "validate failed after every key was read: %s",
                   lm_error_message());
        lm_config_destroy(clone);
    } else {
        FUZZ_CHECK(lm_error_message()[0] != '\0', "parse_args failed without a message");
        fuzz_note("refused: %s", lm_error_message());
    }
    /* A wrong-typed read is remembered and reported by validate. */
    if (lm_config_count(cfg) > 0) {
        const char *key = lm_config_key_at(cfg, 0);
        if (lm_config_type_at(cfg, 0) != LM_CONFIG_BOOL) {
            (void)lm_config_bool(cfg, key, 0);
            FUZZ_CHECK(lm_config_validate(cfg) != LM_OK, "wrong-typed read of '%s' not reported", key);
        }
    }
    lm_config_destroy(cfg);

    /* Hugging Face's forms (--key value, --key=value, --flag) turned into
     * key=value: each argument is one output or two fold into one; every
     * output from a --key form has a key before its '='. */
    char **normal = NULL;
    int n_normal = 0;
    if (lm_runtime_normalize_args(args, n, &normal, &n_normal) == LM_OK) {
        FUZZ_CHECK(n_normal <= n && 2 * n_normal >= n, "%d arguments became %d", n, n_normal);
        for (int i = 0; i < n_normal; i++) {
            FUZZ_CHECK(normal[i] != NULL, "argument %d lost", i);
            if (strncmp(normal[i], "--", 2) == 0 && normal[i][2] != '\0' && strchr(normal[i], '=') == NULL)
                fuzz_fail("'%s' left as an option without a value", normal[i]);
        }
        FUZZ_CHECK(lm_config_create(&cfg, "normalized") == LM_OK, "config");
        if (lm_runtime_parse_args((const char *const *)normal, n_normal, cfg) != LM_OK)
            FUZZ_CHECK(lm_error_message()[0] != '\0', "parse_args failed without a message");
        lm_config_destroy(cfg);
        lm_runtime_free_args(normal, n_normal);
    } else {
        FUZZ_CHECK(lm_error_message()[0] != '\0', "normalize_args failed without a message");
    }

    /* The library entry point, without the CLI's key check. */
    FUZZ_CHECK(lm_config_create(&cfg, "parsed") == LM_OK, "config");
    for (int i = 0; i < n; i++)
        if (lm_config_set_parsed(cfg, args[i]) != LM_OK)
            FUZZ_CHECK(lm_error_message()[0] != '\0', "set_parsed failed without a message");
    read_all(cfg);
    FUZZ_CHECK(lm_config_validate(cfg) == LM_OK, "validate failed after every key was read: %s", lm_error_message());
    lm_config_destroy(cfg);
    free(copy);
    return 0;
}
