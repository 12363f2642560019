/* What guards a run from the outside world, through the real CLI:
 *   - SIGTERM (what Slurm and Kubernetes send before they kill) is handled
 *     like Ctrl-C: a checkpoint, the report, then exit status 143;
 *   - one run per output_dir: a second run is refused at its start, naming
 *     the first run's process; a run killed outright (SIGKILL: no chance
 *     to clean up) leaves no lock that blocks the next. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "test_main.h"

#define EXE LM_TEST_LMCORE_EXE
#define SRC LM_TEST_SOURCE_DIR
#define DATA LM_TEST_SHARED_DATA_DIR "/wikitext-2-raw"

/* A long tiny run into <dir>/run, in the background; the shell variable
 * $pid is its process, and the script waits until it trains (a "[" step
 * line on its output). */
#define LONG_RUN                                                                                                     \
    EXE " run scripts/gpt2_clm.lua preset=tiny data=" DATA " train_split=test max_steps=100000 threads=1 "            \
        "log_every=1 output_dir=%s/run cache_dir=%s/cache > %s/out.txt 2>&1 & pid=$!; "                               \
        "for i in $(seq 1 300); do grep -q '^\\[' %s/out.txt 2>/dev/null && break; sleep 0.1; done; "

static void read_text(const char *dir, const char *file, char *out, size_t cap) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no %s", path);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

START_TEST(sigterm_saves_a_checkpoint_and_the_report_then_exits_143) {
    char dir[64], cmd[4096], text[1 << 15];
    cli_temp_dir(dir, sizeof dir, "guards");
    snprintf(cmd, sizeof cmd, LONG_RUN "kill -TERM $pid; wait $pid; echo exit=$?", dir, dir, dir, dir);
    cli_run(cmd);
    ck_assert_msg(strstr(cli_output, "exit=143") != NULL, "%s", cli_output);
    read_text(dir, "out.txt", text, sizeof text);
    ck_assert_msg(strstr(text, "lmcore: error: training interrupted by SIGTERM after step ") != NULL, "%s", text);
    const char *saved = strstr(text, "saved checkpoint ");
    ck_assert_msg(saved != NULL, "%s", text);
    char checkpoint[512];
    ck_assert_int_eq(sscanf(saved, "saved checkpoint %511s", checkpoint), 1);
    ck_assert(cli_nonempty_file(checkpoint, "trainer_state.json") &&
              cli_nonempty_file(checkpoint, "optimizer.safetensors") &&
              cli_nonempty_file(checkpoint, "model.safetensors"));
    char run_dir[128];
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    /* The report of the unfinished run, and the logs up to the signal. */
    ck_assert(cli_nonempty_file(run_dir, "report.md") && cli_nonempty_file(run_dir, "loss.svg") &&
              cli_nonempty_file(run_dir, "log.jsonl"));
    /* The lock went with the run. */
    ck_assert(access(strcat(run_dir, "/.lmcore.lock"), F_OK) != 0);
}
END_TEST

START_TEST(a_second_run_in_one_output_dir_is_refused_naming_the_first) {
    char dir[64], cmd[4096];
    cli_temp_dir(dir, sizeof dir, "guards");
    snprintf(cmd, sizeof cmd,
             LONG_RUN "echo first=$pid; " EXE " run scripts/gpt2_clm.lua preset=tiny data=" DATA
                      " train_split=test max_steps=2 threads=1 output_dir=%s/run cache_dir=%s/cache2; "
                      "echo second=$?; kill -TERM $pid; wait $pid",
             dir, dir, dir, dir, dir, dir);
    cli_run(cmd);
    ck_assert_msg(strstr(cli_output, "second=1") != NULL, "%s", cli_output);
    long first = 0;
    const char *line = strstr(cli_output, "first=");
    ck_assert_ptr_nonnull(line);
    ck_assert_int_eq(sscanf(line, "first=%ld", &first), 1);
    char needle[256];
    snprintf(needle, sizeof needle, "output_dir '%s/run' is in use by another run: lmcore process %ld holds", dir,
             first);
    ck_assert_msg(strstr(cli_output, needle) != NULL, "'%s' not in\n%s", needle, cli_output);
    /* Refused before it tokenized anything. */
    char cache[128];
    snprintf(cache, sizeof cache, "%s/cache2", dir);
    ck_assert_int_ne(access(cache, F_OK), 0);
}
END_TEST

START_TEST(a_killed_run_leaves_no_lock_that_blocks) {
    char dir[64], cmd[4096];
    cli_temp_dir(dir, sizeof dir, "guards");
    snprintf(cmd, sizeof cmd,
             LONG_RUN "kill -KILL $pid; wait $pid; test -f %s/run/.lmcore.lock && echo lock-file-left; " EXE
                      " run scripts/gpt2_clm.lua preset=tiny data=" DATA
                      " train_split=test max_steps=2 eval_max_batches=1 threads=1 output_dir=%s/run "
                      "cache_dir=%s/cache; echo second=$?",
             dir, dir, dir, dir, dir, dir, dir);
    cli_run(cmd);
    /* SIGKILL left the file (no cleanup ran), but not the lock: the kernel
     * released it with the process. */
    ck_assert_msg(strstr(cli_output, "lock-file-left") != NULL, "%s", cli_output);
    ck_assert_msg(strstr(cli_output, "second=0") != NULL, "%s", cli_output);
    char run_dir[128];
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    ck_assert(cli_nonempty_file(run_dir, "results.json"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("run_guards");
    TCase *tc = tcase_create("run_guards");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, sigterm_saves_a_checkpoint_and_the_report_then_exits_143);
    tcase_add_test(tc, a_second_run_in_one_output_dir_is_refused_naming_the_first);
    tcase_add_test(tc, a_killed_run_leaves_no_lock_that_blocks);
    suite_add_tcase(s, tc);
    return lm_test_count_failures(CK_FORK_GETENV, s, NULL) ? 1 : 0;
}
