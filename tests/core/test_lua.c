/* The Lua runtime: a script that uses every binding; errors with file:line;
 * Ctrl-C ends even a pure-Lua loop. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "registry.h"
#include "runtime.h"
#include "test_main.h"

#define SCRIPTS LM_TEST_SOURCE_DIR "/tests/core/scripts/"
#define TP LM_TEST_BINARY_DIR "/tests/plugins/"

static lm_registry *registry(void) {
    lm_registry *r;
    ck_assert_int_eq(lm_registry_create(&r), LM_OK);
    lm_registry_scan_dir(r, LM_TEST_PLUGIN_DIR);
    lm_registry_scan_dir(r, TP "good_logger");
    return r;
}

/* A fresh empty file for a script's output (path in out, which holds a
 * mkstemp template) and the "out=PATH" argument that names it. */
static void make_output_file(char *out, char *out_arg, size_t arg_size) {
    int fd = mkstemp(out);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(out_arg, arg_size, "out=%s", out);
}

/* Runs a script that must succeed; its traceback is in the failure message. */
static void run_script_ok(const char *script, const char *const *args, int n_args, lm_registry *r) {
    lm_runtime_options o = {script, args, n_args, r};
    char *tb = NULL;
    lm_status s = lm_runtime_run(&o, &tb);
    ck_assert_msg(s == LM_OK, "script failed: %s\n%s", lm_error_message(), tb ? tb : "");
    free(tb);
}

START_TEST(bindings_script_runs) {
    char out[] = "/tmp/lm_test_lua_XXXXXX", out_arg[64];
    make_output_file(out, out_arg, sizeof out_arg);
    const char *args[] = {out_arg, "n=12", "f=0.5", "b=true", "nb=false", "s=hello world"};
    lm_registry *r = registry();
    run_script_ok(SCRIPTS "bindings.lua", args, 6, r);
    FILE *f = fopen(out, "r");
    char content[512] = {0};
    size_t n = fread(content, 1, sizeof content - 1, f);
    fclose(f);
    content[n] = '\0';
    unlink(out);
    ck_assert_msg(strstr(content, "5 0 hello from lua") != NULL, "log content: %s", content);
    ck_assert(strstr(content, "script finished") != NULL);
    lm_registry_destroy(r);
}
END_TEST

/* The trainer calls a logger's optional flush after every checkpoint and at
 * the end of the run (tests/core/scripts/logger_flush.lua); saving a
 * checkpoint removes the half-written ones of killed runs. */
START_TEST(trainer_flushes_loggers) {
    char out[] = "/tmp/lm_test_flush_XXXXXX", out_arg[64];
    make_output_file(out, out_arg, sizeof out_arg);
    const char *args[] = {out_arg};
    /* Half-written checkpoint folders: one of a process that is gone (a
     * child that exited) is cleaned up by the next save; one of a live
     * process (pid 1) is left alone. */
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    char stale[128], live[128], cmd[1024];
    snprintf(stale, sizeof stale, "%s.ckpt/.checkpoint-7.tmp.%ld", out, (long)child);
    snprintf(live, sizeof live, "%s.ckpt/.checkpoint-9.tmp.1", out);
    snprintf(cmd, sizeof cmd, "mkdir -p %s %s && touch %s/model.safetensors %s/model.safetensors", stale, live, stale,
             live);
    ck_assert_int_eq(system(cmd), 0);
    lm_registry *r = registry();
    run_script_ok(SCRIPTS "logger_flush.lua", args, 1, r);
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    char line[512], last[512] = "";
    int flushes = 0, after_step_2 = 0, previous_was_step_2 = 0;
    while (fgets(line, sizeof line, f)) {
        if (strcmp(line, "flush\n") == 0) {
            flushes++;
            after_step_2 |= previous_was_step_2;
        }
        previous_was_step_2 = strncmp(line, "2 2 ", 4) == 0; /* the STEP event of step 2 */
        strcpy(last, line);
    }
    fclose(f);
    ck_assert_msg(access(stale, F_OK) != 0, "%s was not cleaned up", stale);
    ck_assert_msg(access(live, F_OK) == 0, "%s (a live process's) was removed", live);
    snprintf(cmd, sizeof cmd, "rm -rf %s %s.txt %s.ckpt", out, out, out);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_ge(flushes, 3);         /* checkpoints at steps 2 and 4, and the end */
    ck_assert(after_step_2);              /* the step-2 checkpoint was followed by a flush */
    ck_assert_str_eq(last, "flush\n");   /* after RUN_END */
    lm_registry_destroy(r);
}
END_TEST

START_TEST(errors_carry_file_and_line) {
    lm_registry *r = registry();
    lm_runtime_options o = {SCRIPTS "error_line.lua", NULL, 0, r};
    char *tb = NULL;
    ck_assert_int_ne(lm_runtime_run(&o, &tb), LM_OK);
    ck_assert_msg(strstr(lm_error_message(), "error_line.lua:3:") != NULL, "message: %s", lm_error_message());
    ck_assert(strstr(lm_error_message(), "attempt to index a nil value") != NULL);
    ck_assert_ptr_nonnull(tb);
    ck_assert(strstr(tb, "stack traceback") != NULL);
    free(tb);
    lm_registry_destroy(r);
}
END_TEST

/* A script's mistake caught by an lm.* check is not an internal error: its
 * message alone, without the Lua position of the binding's caller, and no
 * traceback (unless LMCORE_TRACEBACK asks for one). */
START_TEST(user_errors_carry_no_position) {
    lm_registry *r = registry();
    lm_runtime_options o = {SCRIPTS "user_error.lua", NULL, 0, r};
    char *tb = NULL;
    unsetenv("LMCORE_TRACEBACK");
    ck_assert_int_ne(lm_runtime_run(&o, &tb), LM_OK);
    ck_assert_str_eq(lm_error_message(), "unknown key 'pth' for logger 'test_logger' (known: path, fail): did you mean 'path'?");
    ck_assert_ptr_null(tb);
    setenv("LMCORE_TRACEBACK", "1", 1);
    ck_assert_int_ne(lm_runtime_run(&o, &tb), LM_OK);
    ck_assert_ptr_nonnull(tb);
    ck_assert(strstr(tb, "user_error.lua:3") != NULL);
    free(tb);
    unsetenv("LMCORE_TRACEBACK");
    lm_registry_destroy(r);
}
END_TEST

START_TEST(missing_script_is_an_io_error) {
    lm_registry *r = registry();
    lm_runtime_options o = {SCRIPTS "does_not_exist.lua", NULL, 0, r};
    char *tb = NULL;
    ck_assert_int_eq(lm_runtime_run(&o, &tb), LM_ERR_IO);
    ck_assert(strstr(lm_error_message(), "does_not_exist.lua") != NULL);
    free(tb);
    lm_registry_destroy(r);
}
END_TEST

/* Presses Ctrl-C every 100 ms until the run is over: lm_runtime_run clears
 * the flag when the script starts, which on a slow machine can come after
 * a first press. */
static void *press_ctrl_c(void *arg) {
    atomic_int *run_over = arg;
    while (!atomic_load(run_over)) {
        usleep(100 * 1000);
        lm_interrupt_request();
    }
    return NULL;
}

START_TEST(ctrl_c_stops_a_lua_loop) {
    lm_registry *r = registry();
    lm_runtime_options o = {SCRIPTS "interrupt.lua", NULL, 0, r};
    atomic_int run_over = 0;
    pthread_t thread;
    pthread_create(&thread, NULL, press_ctrl_c, &run_over);
    char *tb = NULL;
    lm_status s = lm_runtime_run(&o, &tb);
    atomic_store(&run_over, 1);
    pthread_join(thread, NULL);
    ck_assert_int_eq(s, LM_ERR_INTERRUPTED);
    ck_assert(strstr(lm_error_message(), "interrupted") != NULL);
    free(tb);
    lm_interrupt_clear();
    lm_registry_destroy(r);
}
END_TEST

START_TEST(args_parsing_rejects_bad_pairs) {
    lm_config *cfg;
    lm_config_create(&cfg, "args");
    const char *bad1[] = {"novalue"};
    ck_assert_int_eq(lm_runtime_parse_args(bad1, 1, cfg), LM_ERR_INVALID);
    ck_assert(strstr(lm_error_message(), "key=value") != NULL);
    const char *bad2[] = {"a b=1"};
    ck_assert_int_eq(lm_runtime_parse_args(bad2, 1, cfg), LM_ERR_INVALID);
    const char *good[] = {"lr=2e-5", "data=../x=y"};
    ck_assert_int_eq(lm_runtime_parse_args(good, 2, cfg), LM_OK);
    ck_assert_str_eq(lm_config_string(cfg, "data", ""), "../x=y");
    lm_config_destroy(cfg);
}
END_TEST

int main(void) {
    Suite *s = suite_create("lua");
    TCase *tc = tcase_create("runtime");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, bindings_script_runs);
    tcase_add_test(tc, errors_carry_file_and_line);
    tcase_add_test(tc, user_errors_carry_no_position);
    tcase_add_test(tc, missing_script_is_an_io_error);
    tcase_add_test(tc, trainer_flushes_loggers);
    tcase_add_test(tc, ctrl_c_stops_a_lua_loop);
    tcase_add_test(tc, args_parsing_rejects_bad_pairs);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}
