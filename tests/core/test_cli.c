/* The lmcore executable: exit codes (0 ok, 1 runtime, 2 usage), args
 * parsing, plugin listing and refusal reasons, one-line errors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "test_main.h"

#define EXE LM_TEST_LMCORE_EXE
#define SRC LM_TEST_SOURCE_DIR
#define TP LM_TEST_BINARY_DIR "/tests/plugins/"

static char output[65536];

/* Runs a shell command line, captures stdout+stderr, returns the exit code. */
static int run(const char *cmdline) {
    char full[4096];
    snprintf(full, sizeof full, "LMCORE_PLUGIN_PATH= %s 2>&1", cmdline);
    FILE *p = popen(full, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(output, 1, sizeof output - 1, p);
    output[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

START_TEST(version_and_help) {
    ck_assert_int_eq(run(EXE " --version"), 0);
    ck_assert(strstr(output, "lmcore 0.2.0") != NULL);
    ck_assert_int_eq(run(EXE " help"), 0);
    ck_assert(strstr(output, "run SCRIPT [key=value ...]") != NULL);
    ck_assert(strstr(output, "new-plugin KIND NAME [DIR]") != NULL);
    ck_assert_int_eq(run(EXE " help new-plugin"), 0);
    ck_assert(strstr(output, "docs/writing-plugins.md") != NULL);
    ck_assert_int_eq(run(EXE " help run"), 0);
    ck_assert(strstr(output, "key=value") != NULL);
    ck_assert_int_eq(run(EXE " help plugins"), 0);
}
END_TEST

START_TEST(usage_errors_exit_2) {
    ck_assert_int_eq(run(EXE), 2);
    ck_assert_int_eq(run(EXE " frobnicate"), 2);
    ck_assert(strstr(output, "unknown command 'frobnicate'") != NULL);
    ck_assert_int_eq(run(EXE " --bogus"), 2);
    ck_assert_int_eq(run(EXE " help bogus"), 2);
    ck_assert_int_eq(run(EXE " run"), 2);
    ck_assert_int_eq(run(EXE " run " SRC "/tests/core/scripts/cli_args.lua notapair"), 2);
    ck_assert(strstr(output, "'notapair' is not of the form key=value") != NULL);
    ck_assert_int_eq(run(EXE " plugins --kind bogus"), 2);
    ck_assert_int_eq(run(EXE " --log-level loud plugins"), 2);
}
END_TEST

START_TEST(args_reach_the_script_typed) {
    ck_assert_int_eq(run(EXE " run " SRC "/tests/core/scripts/cli_args.lua n=3 lr=2e-5 flag=true off=false "
                             "name=gpt2 path=../shared/data"),
                     0);
    ck_assert(strstr(output, "n=3 (integer)") != NULL);
    ck_assert(strstr(output, "lr=2e-05 (float)") != NULL);
    ck_assert(strstr(output, "flag=true (boolean)") != NULL);
    ck_assert(strstr(output, "off=false (boolean)") != NULL);
    ck_assert(strstr(output, "name=gpt2 (string)") != NULL);
    ck_assert(strstr(output, "path=../shared/data (string)") != NULL);
}
END_TEST

/* Hugging Face's HfArgumentParser forms reach the script as key=value. */
START_TEST(hf_argument_forms_reach_the_script) {
    ck_assert_int_eq(run(EXE " run " SRC "/tests/core/scripts/cli_args.lua --n 3 --lr=2e-5 --flag --name gpt2 "
                             "off=false --neg -1 --last"),
                     0);
    ck_assert_msg(strstr(output, "n=3 (integer)") != NULL, "%s", output);
    ck_assert(strstr(output, "lr=2e-05 (float)") != NULL);
    ck_assert(strstr(output, "flag=true (boolean)") != NULL);
    ck_assert(strstr(output, "name=gpt2 (string)") != NULL);
    ck_assert(strstr(output, "off=false (boolean)") != NULL);
    ck_assert(strstr(output, "neg=-1 (integer)") != NULL);
    ck_assert(strstr(output, "last=true (boolean)") != NULL);
    /* a single-dash word is neither form */
    ck_assert_int_eq(run(EXE " run " SRC "/tests/core/scripts/cli_args.lua -lr 3"), 2);
    ck_assert_msg(strstr(output, "'-lr' is not of the form key=value (or --key value)") != NULL, "%s", output);
}
END_TEST

START_TEST(runtime_errors_exit_1_with_one_line) {
    ck_assert_int_eq(run(EXE " run /nonexistent/script.lua"), 1);
    ck_assert(strstr(output, "lmcore: error: cannot open /nonexistent/script.lua") != NULL);
    ck_assert_int_eq(run(EXE " --plugin-path " TP "good_logger run " SRC "/tests/core/scripts/error_line.lua"), 1);
    ck_assert(strstr(output, "error_line.lua:3: attempt to index a nil value") != NULL);
    ck_assert(strstr(output, "LMCORE_TRACEBACK") != NULL); /* an internal error: the traceback hint */
    ck_assert_uint_le(count_lines(output), 2);              /* the error and the traceback hint */
    /* A user's mistake: its message alone, one line, no Lua position, no hint. */
    ck_assert_int_eq(run(EXE " --plugin-path " TP "good_logger run " SRC "/tests/core/scripts/user_error.lua"), 1);
    ck_assert(strstr(output, "lmcore: error: unknown key 'pth' for logger 'test_logger'") != NULL);
    ck_assert_uint_eq(count_lines(output), 1);
}
END_TEST

START_TEST(plugins_lists_shipped_and_refused) {
    ck_assert_int_eq(run(EXE " plugins"), 0);
    ck_assert(strstr(output, "console") != NULL);
    ck_assert(strstr(output, "jsonl") != NULL);
    ck_assert_int_eq(run(EXE " plugins --kind logger"), 0);
    ck_assert(strstr(output, "console") != NULL);
    ck_assert_int_eq(run(EXE " plugins --kind tokenizer"), 0);
    ck_assert(strstr(output, "console") == NULL);
    ck_assert_int_eq(run(EXE " --plugin-path " TP "bad_major:" TP "missing_slot plugins"), 0);
    ck_assert(strstr(output, "refused:") != NULL);
    ck_assert(strstr(output, "major versions differ") != NULL);
    ck_assert(strstr(output, "lacks the required function 'log'") != NULL);
}
END_TEST

START_TEST(shipped_hello_script_logs_through_console) {
    ck_assert_int_eq(run(EXE " run " SRC "/scripts/hello.lua"), 0);
    ck_assert(strstr(output, "hello from lmcore") != NULL);
    /* Even the smallest script answers --help and catches a typo. */
    ck_assert_int_eq(run(EXE " run " SRC "/scripts/hello.lua --help"), 0);
    ck_assert_msg(strstr(output, "usage: lmcore run hello.lua") && strstr(output, "name=world"), "%s", output);
    ck_assert_int_eq(run(EXE " run " SRC "/scripts/hello.lua nmae=you"), 1);
    ck_assert_msg(strstr(output, "unknown argument 'nmae': did you mean 'name'?") != NULL, "%s", output);
}
END_TEST

/* A bare name that is not a file here runs the shipped script of that name
 * (found next to the executable), from any directory. */
START_TEST(shipped_scripts_run_by_name) {
    ck_assert_int_eq(run("cd / && " EXE " run hello name=by_name"), 0);
    ck_assert(strstr(output, "hello from lmcore 0.2.0, by_name") != NULL);
    ck_assert_int_eq(run("cd / && " EXE " run hello.lua"), 0);
    ck_assert(strstr(output, "hello from lmcore") != NULL);
    ck_assert_int_eq(run("cd / && " EXE " run helo"), 1);
    ck_assert(strstr(output, "cannot open script 'helo': no such file here, and no shipped script of that name") !=
              NULL);
    ck_assert(strstr(output, "gpt2_clm") != NULL && strstr(output, "bert_mlm") != NULL);
}
END_TEST

/* new-plugin refuses bad kinds and names (usage, 2) and never writes into a
 * folder that holds something (1, folder untouched). */
START_TEST(new_plugin_refuses_bad_requests) {
    ck_assert_int_eq(run(EXE " new-plugin"), 2);
    ck_assert_int_eq(run(EXE " new-plugin tokeniser mytok /tmp/x"), 2);
    ck_assert(strstr(output, "unknown plugin kind 'tokeniser'") != NULL);
    ck_assert_int_eq(run(EXE " new-plugin dataset My-Data /tmp/x"), 2);
    ck_assert(strstr(output, "invalid plugin name 'My-Data'") != NULL);
    char dir[] = "/tmp/lmcore-new-plugin-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], cmd[512];
    snprintf(path, sizeof path, "%s/keep.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("mine\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, EXE " new-plugin dataset mydata %s", dir);
    ck_assert_int_eq(run(cmd), 1);
    ck_assert(strstr(output, "already exists and is not an empty folder") != NULL);
    snprintf(cmd, sizeof cmd, "ls -A %s", dir);
    ck_assert_int_eq(run(cmd), 0);
    ck_assert_str_eq(output, "keep.txt\n");
    remove(path);
    /* an empty folder is filled */
    snprintf(cmd, sizeof cmd, EXE " new-plugin logger mylog %s", dir);
    ck_assert_int_eq(run(cmd), 0);
    ck_assert(strstr(output, "entries still to write: log") != NULL);
    snprintf(cmd, sizeof cmd, "ls %s && rm -r %s", dir, dir);
    ck_assert_int_eq(run(cmd), 0);
    ck_assert_str_eq(output, "CMakeLists.txt\nREADME.md\nmylog.c\ntest_mylog.c\n");
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("exe");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, version_and_help);
    tcase_add_test(tc, usage_errors_exit_2);
    tcase_add_test(tc, args_reach_the_script_typed);
    tcase_add_test(tc, hf_argument_forms_reach_the_script);
    tcase_add_test(tc, runtime_errors_exit_1_with_one_line);
    tcase_add_test(tc, plugins_lists_shipped_and_refused);
    tcase_add_test(tc, shipped_hello_script_logs_through_console);
    tcase_add_test(tc, shipped_scripts_run_by_name);
    tcase_add_test(tc, new_plugin_refuses_bad_requests);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}
