/* A newcomer's path through the shipped scripts, end to end through the
 * real CLI: --help and `lmcore help SCRIPT`, Hugging Face option names with
 * the older short names as aliases (same training_args.json), "did you
 * mean", resume from each form of resume_from_checkpoint, init_from a
 * saved model, and a report that explains the run. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_main.h"

#define EXE LM_TEST_LMCORE_EXE
#define SRC LM_TEST_SOURCE_DIR
#define DATA LM_TEST_SHARED_DATA_DIR "/wikitext-2-raw"
/* A tiny GPT-2 run on the test split: seconds on one thread. */
#define TINY_GPT2 EXE " run scripts/gpt2_clm.lua preset=tiny data=" DATA " train_split=test threads=1 eval_max_batches=2 "

static char output[1 << 20];

static int run(const char *cmdline) {
    char full[8192];
    snprintf(full, sizeof full, "cd %s && LMCORE_PLUGIN_PATH= OMP_NUM_THREADS=1 %s 2>&1", SRC, cmdline);
    FILE *p = popen(full, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(output, 1, sizeof output - 1, p);
    output[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void temp_dir(char *out, size_t cap) {
    snprintf(out, cap, "/tmp/lm_ergo_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(out));
}

static int path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* The whole file, malloc'd (NULL when it cannot be read). */
static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(text);
    size_t got = fread(text, 1, (size_t)n, f);
    text[got] = '\0';
    fclose(f);
    return text;
}

#define ASSERT_HAS(haystack, needle)                                                                                  \
    ck_assert_msg(strstr((haystack), (needle)) != NULL, "'%s' not found in:\n%s", (needle), (haystack))

START_TEST(help_forms_print_the_options) {
    ck_assert_msg(run(EXE " run --help") == 0, "%s", output);
    ASSERT_HAS(output, "usage: lmcore run SCRIPT [key=value ...]");
    ck_assert_msg(strstr(output, "cannot open script") == NULL, "%s", output);

    ck_assert_msg(run(EXE " run scripts/gpt2_clm.lua --help") == 0, "%s", output);
    ASSERT_HAS(output, "usage: lmcore run gpt2_clm.lua");
    ASSERT_HAS(output, "learning_rate=2e-05");
    ASSERT_HAS(output, "alias: lr");
    ASSERT_HAS(output, "num_train_epochs=3");
    ASSERT_HAS(output, "save_total_limit=2");
    ASSERT_HAS(output, "n_layer=12");
    ASSERT_HAS(output, "presets (preset=NAME");
    ck_assert_msg(strstr(output, "data:") != NULL && strstr(output, "tokenizer:") == NULL, "help trained?\n%s",
                  output);

    /* -h anywhere after the script, other arguments kept; nothing is written */
    char dir[64], cmd[512];
    temp_dir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd, EXE " run scripts/bert_mlm.lua preset=tiny -h output_dir=%s/run", dir);
    ck_assert_msg(run(cmd) == 0, "%s", output);
    snprintf(cmd, sizeof cmd, "%s/run", dir);
    ck_assert_msg(!path_exists(cmd), "--help created %s", cmd);
    ASSERT_HAS(output, "num_hidden_layers=12");
    ASSERT_HAS(output, "mlm_probability=0.15");

    /* lmcore help SCRIPT: the shipped script by its bare name */
    ck_assert_msg(run(EXE " help gpt2_clm") == 0, "%s", output);
    ASSERT_HAS(output, "per_device_train_batch_size=8");
    ck_assert_msg(run(EXE " help generate") == 0, "%s", output);
    ASSERT_HAS(output, "max_new_tokens=50");
    ck_assert_msg(run(EXE " help run") == 0, "%s", output);
    ASSERT_HAS(output, "lmcore run SCRIPT --help");
}
END_TEST

/* The older short names train exactly what the Hugging Face names train. */
START_TEST(aliases_and_hf_names_agree) {
    char dir[64], cmd[2048];
    temp_dir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd,
             TINY_GPT2 "max_steps=4 lr=2e-3 epochs=1 batch_size=4 grad_accum=2 log_every=2 keep_last=1 save_every=2 "
                       "output_dir=%s/short cache_dir=%s/cache",
             dir, dir);
    ck_assert_msg(run(cmd) == 0, "%s", output);
    snprintf(cmd, sizeof cmd,
             TINY_GPT2 "max_steps=4 learning_rate=2e-3 num_train_epochs=1 per_device_train_batch_size=4 "
                       "gradient_accumulation_steps=2 logging_steps=2 save_total_limit=1 save_steps=2 "
                       "output_dir=%s/hf cache_dir=%s/cache",
             dir, dir);
    ck_assert_msg(run(cmd) == 0, "%s", output);

    char path[256];
    snprintf(path, sizeof path, "%s/short/training_args.json", dir);
    char *short_args = read_text(path);
    snprintf(path, sizeof path, "%s/hf/training_args.json", dir);
    char *hf_args = read_text(path);
    ck_assert_ptr_nonnull(short_args);
    ck_assert_ptr_nonnull(hf_args);
    ck_assert_str_eq(short_args, hf_args);
    ASSERT_HAS(hf_args, "\"learning_rate\": 0.002");
    ASSERT_HAS(hf_args, "\"per_device_train_batch_size\": 4");
    ASSERT_HAS(hf_args, "\"gradient_accumulation_steps\": 2");
    ASSERT_HAS(hf_args, "\"logging_steps\": 2");
    ASSERT_HAS(hf_args, "\"save_steps\": 2");
    ASSERT_HAS(hf_args, "\"save_total_limit\": 1");
    free(short_args);
    free(hf_args);

    /* Every name training_args.json uses is an option of the script. */
    snprintf(cmd, sizeof cmd, EXE " run tests/pipeline/scripts/options_check.lua args_json=%s/hf/training_args.json",
             dir);
    ck_assert_msg(run(cmd) == 0, "%s", output);
    ASSERT_HAS(output, "OK options");
}
END_TEST

START_TEST(typos_and_bad_values_say_what_to_type) {
    ck_assert_int_eq(run(EXE " run scripts/gpt2_clm.lua learnig_rate=1e-3"), 1);
    ASSERT_HAS(output, "lmcore: error: unknown argument 'learnig_rate': did you mean 'learning_rate'?");
    ck_assert_int_eq(run(EXE " run scripts/bert_mlm.lua num_train_epoch=1"), 1);
    ASSERT_HAS(output, "did you mean 'num_train_epochs'?");
    ck_assert_int_eq(run(EXE " run scripts/gpt2_clm.lua lr=1e-3 learning_rate=1e-3"), 1);
    ASSERT_HAS(output, "arguments 'learning_rate' and 'lr' both set learning_rate");
    ck_assert_int_eq(run(EXE " run scripts/gpt2_clm.lua eval_max_batches=-1"), 1);
    ASSERT_HAS(output, "argument 'eval_max_batches' must be >= 0, got -1");
    ck_assert_int_eq(run(EXE " run scripts/gpt2_clm.lua lr_scheduler_type=cosine_annealing"), 1);
    ASSERT_HAS(output, "must be one of linear, cosine");
    ck_assert_int_eq(run(EXE " run scripts/generate.lua max_new_token=5"), 1);
    ASSERT_HAS(output, "did you mean 'max_new_tokens'?");
}
END_TEST

static Suite *ergonomics_suite(void) {
    Suite *s = suite_create("ergonomics");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, help_forms_print_the_options);
    tcase_add_test(tc, aliases_and_hf_names_agree);
    tcase_add_test(tc, typos_and_bad_values_say_what_to_type);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_run_suites(ergonomics_suite(), NULL); }
