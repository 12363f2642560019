/* Runs every case of tests/bad_inputs/cases/ through the lmcore CLI.
 * A case is a Lua script whose first line is "-- expect: TEXT"; an optional
 * second line "-- run: COMMAND" replaces the default command
 *   {exe} run {case} data={data} tmp={tmp}
 * ({build} is the build folder).  Each must exit 1 with one line
 * "lmcore: error: ..." containing TEXT, print no sanitizer report, and leave
 * no temporary file behind (atomic writes).  Each "-- absent: PATH" line
 * (placeholders as above) names an output that the failed run must not have
 * created.  A case that runs longer than 60 s (a hang) fails. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_main.h"

#define CASES LM_TEST_SOURCE_DIR "/tests/bad_inputs/cases"
#define DATA LM_TEST_SHARED_DATA_DIR "/wikitext-2-raw"

static char names[512][256];
static int n_cases;

static void list_cases(void) {
    DIR *d = opendir(CASES);
    struct dirent *e;
    while (d && (e = readdir(d)) && n_cases < (int)(sizeof names / sizeof names[0])) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".lua") == 0) snprintf(names[n_cases++], sizeof names[0], "%s", e->d_name);
    }
    if (d) closedir(d);
    qsort(names, (size_t)n_cases, sizeof names[0], (int (*)(const void *, const void *))strcmp);
}

#define HEADER_LINES 8

/* The value of the nth (from 0) header line starting with prefix, or "". */
static void header_value_at(const char *path, const char *prefix, int nth, char *out, size_t cap) {
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    char line[1024];
    for (int i = 0; f && i < HEADER_LINES && fgets(line, sizeof line, f); i++) {
        if (strncmp(line, prefix, strlen(prefix)) == 0 && nth-- == 0) {
            snprintf(out, cap, "%s", line + strlen(prefix));
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    }
    if (f) fclose(f);
}

static void header_value(const char *path, const char *prefix, char *out, size_t cap) {
    header_value_at(path, prefix, 0, out, cap);
}

/* Replaces {key} placeholders. */
static void substitute(const char *in, char *out, size_t cap, const char *case_path, const char *tmp) {
    const char *keys[] = {"{exe}", "{case}", "{data}", "{tmp}", "{build}"};
    const char *values[] = {LM_TEST_LMCORE_EXE, case_path, DATA, tmp, LM_TEST_BINARY_DIR};
    size_t used = 0;
    while (*in && used + 1 < cap) {
        int replaced = 0;
        for (int k = 0; k < 5; k++) {
            size_t klen = strlen(keys[k]);
            if (strncmp(in, keys[k], klen) == 0) {
                used += (size_t)snprintf(out + used, cap - used, "%s", values[k]);
                in += klen;
                replaced = 1;
                break;
            }
        }
        if (!replaced) out[used++] = *in++;
    }
    out[used < cap ? used : cap - 1] = '\0';
}

/* 1 if a temporary file ("*.tmp.*") is left under dir (two levels). */
static int leftover_temporary(const char *dir, int depth) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d)) && !found) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || e->d_name[1] == '.')) continue;
        if (strstr(e->d_name, ".tmp.")) found = 1;
        else if (depth > 0 && e->d_type == DT_DIR) {
            char sub[2048];
            snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
            found = leftover_temporary(sub, depth - 1);
        }
    }
    if (d) closedir(d);
    return found;
}

static char output[1 << 16];

START_TEST(each_case_fails_clearly) {
    const char *name = names[_i];
    char case_path[512], expect[512], run_line[1024], command[4096], tmp[] = "/tmp/lm_bad_XXXXXX";
    snprintf(case_path, sizeof case_path, CASES "/%s", name);
    header_value(case_path, "-- expect: ", expect, sizeof expect);
    ck_assert_msg(expect[0] != '\0', "%s has no '-- expect:' line", name);
    header_value(case_path, "-- run: ", run_line, sizeof run_line);
    if (!run_line[0]) snprintf(run_line, sizeof run_line, "{exe} run {case} data={data} tmp={tmp}");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    char substituted[2048];
    substitute(run_line, substituted, sizeof substituted, case_path, tmp);
    snprintf(command, sizeof command, "cd %s && LMCORE_PLUGIN_PATH= OMP_NUM_THREADS=1 timeout -k 5 60 %s 2>&1",
             LM_TEST_SOURCE_DIR, substituted);
    FILE *p = popen(command, "r");
    size_t n = fread(output, 1, sizeof output - 1, p);
    output[n] = '\0';
    int status = pclose(p);
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    ck_assert_msg(rc != 124 && rc != 137, "%s: still running after 60 s (a hang)\n%s", name, output);
    ck_assert_msg(rc == 1, "%s: exit status %d (expected 1)\n%s", name, rc, output);
    const char *line = strstr(output, "lmcore: error: ");
    ck_assert_msg(line != NULL, "%s: no 'lmcore: error:' line\n%s", name, output);
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char error_line[4096];
    snprintf(error_line, sizeof error_line, "%.*s", (int)len, line);
    ck_assert_msg(strstr(error_line, expect) != NULL, "%s: '%s' not in the error line:\n%s", name, expect, error_line);
    ck_assert_msg(strstr(output + (line - output) + len, "lmcore: error: ") == NULL, "%s: several error lines", name);
    ck_assert_msg(strstr(output, "Sanitizer") == NULL && strstr(output, "runtime error:") == NULL,
                  "%s: sanitizer report\n%s", name, output);
    ck_assert_msg(!leftover_temporary(tmp, 2), "%s: a temporary file was left in %s", name, tmp);
    char absent[1024], absent_path[2048];
    for (int k = 0; header_value_at(case_path, "-- absent: ", k, absent, sizeof absent), absent[0]; k++) {
        substitute(absent, absent_path, sizeof absent_path, case_path, tmp);
        ck_assert_msg(access(absent_path, F_OK) != 0, "%s: the failed run left %s behind", name, absent_path);
    }
    char cleanup[600];
    snprintf(cleanup, sizeof cleanup, "rm -rf %s", tmp);
    ck_assert_int_eq(system(cleanup), 0);
}
END_TEST

int main(void) {
    list_cases();
    Suite *s = suite_create("bad_inputs");
    TCase *tc = tcase_create("catalogue");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, each_case_fails_clearly, 0, n_cases);
    suite_add_tcase(s, tc);
    int failed = lm_test_count_failures(CK_FORK_GETENV, s, NULL);
    printf("%d bad-input cases\n", n_cases);
    return failed || n_cases < 25 ? 1 : 0;
}
