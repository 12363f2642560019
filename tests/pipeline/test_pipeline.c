/* End-to-end through the real CLI: tiny GPT-2 and BERT runs (loss falls,
 * seeded runs identical, saved models reload to the same logits), the
 * shipped pipeline scripts, and bad inputs failing with one clear line. */
#include <check.h>
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

START_TEST(gpt2_trains_reproducibly_and_reloads) {
    char dir[64], cmd[1024];
    cli_temp_dir(dir, sizeof dir, "pipeline");
    snprintf(cmd, sizeof cmd, EXE " run tests/pipeline/scripts/train_check.lua model=gpt2 data=" DATA " out=%s/model",
             dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ck_assert(strstr(cli_output, "OK gpt2") != NULL);
    ck_assert(cli_nonempty_file(dir, "model/model.safetensors") && cli_nonempty_file(dir, "model/config.json") &&
              cli_nonempty_file(dir, "model/tokenizer.json"));
}
END_TEST

START_TEST(bert_trains_reproducibly_and_reloads) {
    char dir[64], cmd[1024];
    cli_temp_dir(dir, sizeof dir, "pipeline");
    snprintf(cmd, sizeof cmd, EXE " run tests/pipeline/scripts/train_check.lua model=bert data=" DATA " out=%s/model",
             dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ck_assert(strstr(cli_output, "OK bert") != NULL);
}
END_TEST

static void resume_check(const char *model) {
    char dir[64], cmd[1024];
    cli_temp_dir(dir, sizeof dir, "pipeline");
    snprintf(cmd, sizeof cmd, EXE " run tests/pipeline/scripts/resume_check.lua model=%s data=" DATA " out=%s", model,
             dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ck_assert(strstr(cli_output, "OK resume") != NULL);
}

START_TEST(gpt2_resume_is_bit_exact) { resume_check("gpt2"); }
END_TEST

START_TEST(bert_resume_is_bit_exact) { resume_check("bert"); }
END_TEST

static void step_api_check(const char *model) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, EXE " run tests/pipeline/scripts/step_api_check.lua model=%s data=" DATA, model);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ck_assert(strstr(cli_output, "OK step api") != NULL);
}

/* A loop written in Lua trains bit-identically to fit(); no read per step. */
START_TEST(gpt2_step_api_matches_fit) { step_api_check("gpt2"); }
END_TEST

START_TEST(bert_step_api_matches_fit) { step_api_check("bert"); }
END_TEST

START_TEST(callbacks_and_cadence) {
    char dir[64], cmd[1024];
    cli_temp_dir(dir, sizeof dir, "pipeline");
    snprintf(cmd, sizeof cmd, EXE " run tests/pipeline/scripts/callbacks_check.lua data=" DATA " out=%s", dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ck_assert(strstr(cli_output, "OK callbacks") != NULL);
}
END_TEST

START_TEST(shipped_scripts_run_tiny_presets) {
    char dir[64], cmd[1024];
    cli_temp_dir(dir, sizeof dir, "pipeline");
    snprintf(cmd, sizeof cmd,
             EXE " run scripts/gpt2_clm.lua preset=tiny data=" DATA " train_split=test max_steps=6 "
                 "eval_max_batches=2 threads=1 output_dir=%s/gpt2 cache_dir=%s/cache",
             dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ck_assert(strstr(cli_output, "Epoch  | Training Loss | Validation Loss | Perplexity") != NULL);
    ck_assert(strstr(cli_output, "Perplexity: ") != NULL);
    snprintf(cmd, sizeof cmd, "%s/gpt2", dir);
    ck_assert(cli_nonempty_file(cmd, "model.safetensors") && cli_nonempty_file(cmd, "results.json") &&
              cli_nonempty_file(cmd, "log.jsonl") && cli_nonempty_file(cmd, "report.md") &&
              cli_nonempty_file(cmd, "loss.svg") && cli_nonempty_file(cmd, "training_args.json"));
    snprintf(cmd, sizeof cmd,
             EXE " run scripts/bert_mlm.lua preset=tiny data=" DATA " train_split=test max_steps=6 "
                 "eval_max_batches=2 threads=1 output_dir=%s/bert cache_dir=%s/cache",
             dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    snprintf(cmd, sizeof cmd,
             EXE " run scripts/fill_mask.lua model=%s/bert text=\"The game began development in [MASK] .\" top_k=3",
             dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ck_assert(strstr(cli_output, "[MASK] #1:") != NULL && strstr(cli_output, "  3. ") != NULL);
    /* A causal model given to fill_mask.lua: the script to use instead. */
    snprintf(cmd, sizeof cmd, EXE " run scripts/fill_mask.lua model=%s/gpt2 text=\"The [MASK] .\"", dir);
    ck_assert_int_eq(cli_run(cmd), 1);
    ck_assert_msg(strstr(cli_output, "holds a causal 'gpt2' model: use scripts/generate.lua") != NULL, "%s",
                  cli_output);
    /* generate.lua's Hugging Face names: do_sample=false is greedy (the
     * output of temperature=0), num_return_sequences draws that many. */
    static char greedy[sizeof cli_output];
    snprintf(cmd, sizeof cmd, EXE " run scripts/generate.lua model=%s/gpt2 prompt=The max_new_tokens=6 temperature=0 "
             "2>/dev/null", dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    memcpy(greedy, cli_output, sizeof greedy);
    snprintf(cmd, sizeof cmd, EXE " run scripts/generate.lua model=%s/gpt2 prompt=The max_new_tokens=6 "
             "do_sample=false 2>/dev/null", dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ck_assert_str_eq(cli_output, greedy);
    snprintf(cmd, sizeof cmd, EXE " run scripts/generate.lua model=%s/gpt2 prompt=The max_new_tokens=6 "
             "num_return_sequences=3 2>/dev/null", dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ck_assert_msg(strstr(cli_output, "--- sequence 1 (seed 42)") && strstr(cli_output, "--- sequence 3 (seed 44)") &&
                      !strstr(cli_output, "--- sequence 4"),
                  "%s", cli_output);
    snprintf(cmd, sizeof cmd, EXE " run scripts/generate.lua model=%s/gpt2 num_return_sequences=2 do_sample=false",
             dir);
    ck_assert_int_eq(cli_run(cmd), 1);
    ck_assert_msg(strstr(cli_output, "num_return_sequences=2 needs sampling") != NULL, "%s", cli_output);
    snprintf(cmd, sizeof cmd, EXE " run scripts/compare_runs.lua runs=\"%s/gpt2 %s/bert\" out_svg=%s/cmp.svg", dir,
             dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ck_assert(strstr(cli_output, "| GPT-2 | causal") != NULL && strstr(cli_output, "| BERT | bidirectional") != NULL);
}
END_TEST

START_TEST(ctrl_c_saves_a_checkpoint) {
    char dir[64], cmd[2048];
    cli_temp_dir(dir, sizeof dir, "pipeline");
    /* A long run, interrupted with SIGINT once it is training. */
    snprintf(cmd, sizeof cmd,
             EXE " run scripts/gpt2_clm.lua preset=tiny data=" DATA " train_split=test max_steps=100000 "
             "threads=1 log_every=1 output_dir=%s/run cache_dir=%s/cache > %s/out.txt 2>&1 & pid=$!; "
             "for i in $(seq 1 300); do grep -q '^\\[' %s/out.txt 2>/dev/null && break; sleep 0.1; done; "
             "kill -INT $pid; wait $pid; echo exit=$?",
             dir, dir, dir, dir);
    cli_run(cmd);
    ck_assert_msg(strstr(cli_output, "exit=130") != NULL, "%s", cli_output);
    char path[512];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    FILE *f = fopen(path, "r");
    size_t n = fread(cli_output, 1, sizeof cli_output - 1, f);
    cli_output[n] = '\0';
    fclose(f);
    ck_assert_msg(strstr(cli_output, "interrupted by Ctrl-C after step") != NULL, "%s", cli_output);
    const char *saved = strstr(cli_output, "saved checkpoint ");
    ck_assert_msg(saved != NULL, "%s", cli_output);
    char checkpoint[512];
    ck_assert_int_eq(sscanf(saved, "saved checkpoint %511s", checkpoint), 1);
    ck_assert(cli_nonempty_file(checkpoint, "trainer_state.json") &&
              cli_nonempty_file(checkpoint, "optimizer.safetensors"));
    /* Resuming from such a checkpoint is tested bit-exactly by resume_check.lua. */
}
END_TEST

START_TEST(inspect_data_prints_the_four_figures) {
    ck_assert_msg(cli_run(EXE " run scripts/inspect_data.lua data=" DATA " train_split=test vocab_size=1000") == 0,
                  "%s", cli_output);
    ck_assert(strstr(cli_output, "Figure 1:") && strstr(cli_output, "Figure 2:") && strstr(cli_output, "Figure 3:") &&
              strstr(cli_output, "Figure 4:"));
    ck_assert(strstr(cli_output, "'attention_mask': [1, 1") != NULL);
}
END_TEST

static void expect_failure(const char *case_name, const char *needle) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, EXE " run tests/pipeline/scripts/bad_input.lua case=%s data=" DATA, case_name);
    int rc = cli_run(cmd);
    ck_assert_msg(rc == 1, "case %s: exit %d\n%s", case_name, rc, cli_output);
    ck_assert_msg(strstr(cli_output, needle) != NULL, "case %s: '%s' not in\n%s", case_name, needle, cli_output);
    ck_assert_msg(strstr(cli_output, "lmcore: error: ") != NULL, "case %s: %s", case_name, cli_output);
}

START_TEST(bad_inputs_fail_clearly) {
    expect_failure("key_typo", "unknown key 'n_layers' for architecture 'gpt2' (known: ");
    expect_failure("small_vocab", "the tokenizer has 512 tokens but the model's vocab_size is 300");
    expect_failure("block_size", "block_size 128 is larger than the model's 64 positions");
    expect_failure("big_batch", "batch_size 1000000 is larger than the");
    expect_failure("nan", "step");
    ck_assert(strstr(cli_output, "NaN") != NULL || strstr(cli_output, "nan") != NULL ||
              strstr(cli_output, "inf") != NULL);
    ck_assert_int_eq(cli_run(EXE " run scripts/gpt2_clm.lua n_layers=2"), 1);
    ck_assert(strstr(cli_output, "unknown argument 'n_layers': did you mean 'n_layer'?") != NULL);
    ck_assert_int_eq(cli_run(EXE " run scripts/gpt2_clm.lua preset=huge"), 1);
    ck_assert(strstr(cli_output, "unknown preset 'huge'") != NULL);
    ck_assert_int_eq(cli_run(EXE " run scripts/gpt2_clm.lua data=/nonexistent preset=tiny"), 1);
    ck_assert(strstr(cli_output, "wiki.train.raw") != NULL);
}
END_TEST

/* The trainer runs a micro-batch through forward_train, whose loss op
 * also writes dlogits (the fused classifier): the op profile of a short
 * run lists crossentropy_forward_backward (training) and
 * crossentropy_forward (evaluation), and no crossentropy_backward. */
START_TEST(training_uses_the_fused_classifier) {
    static const char *const scripts[] = {"gpt2_clm", "bert_mlm"};
    for (int i = 0; i < 2; i++) {
        char dir[64], cmd[1024];
        cli_temp_dir(dir, sizeof dir, "pipeline");
        snprintf(cmd, sizeof cmd,
                 EXE " run scripts/%s.lua preset=tiny data=" DATA " train_split=test max_steps=2 eval_max_batches=1 "
                     "profile_ops=true output_dir=%s/run cache_dir=%s/cache",
                 scripts[i], dir, dir);
        ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
        ck_assert_msg(strstr(cli_output, " crossentropy_forward_backward ") != NULL, "%s: no fused op in\n%s",
                      scripts[i], cli_output);
        ck_assert_msg(strstr(cli_output, " crossentropy_forward ") != NULL, "%s: evaluation ran no loss op",
                      scripts[i]);
        ck_assert_msg(strstr(cli_output, " crossentropy_backward ") == NULL, "%s: backward still ran the loss op",
                      scripts[i]);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

START_TEST(debug_masking_shows_a_block) {
    ck_assert_msg(cli_run(EXE " run tests/pipeline/scripts/bert_debug_masking.lua data=" DATA) == 0, "%s", cli_output);
    ck_assert(strstr(cli_output, "[MASK]") != NULL);
    ck_assert(strstr(cli_output, "objective:batch ok") != NULL);
    /* The shipped script shows the block as text, then masked (section 5.3). */
    ck_assert_msg(cli_run(EXE " --log-level warn run scripts/bert_mlm.lua preset=tiny data=" DATA
                          " train_split=test max_steps=1 debug_masking=true output_dir=" LM_TEST_BINARY_DIR
                          "/debug_masking cache_dir=" LM_TEST_BINARY_DIR "/debug_masking_cache") == 0,
                  "%s", cli_output);
    ck_assert_msg(strstr(cli_output, "block 0 of the training blocks, as text:") != NULL, "%s", cli_output);
    ck_assert(strstr(cli_output, "the same block as the model sees it in batch 0") != NULL);
    ck_assert(strstr(cli_output, "-> [MASK]") != NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, gpt2_trains_reproducibly_and_reloads);
    tcase_add_test(tc, bert_trains_reproducibly_and_reloads);
    tcase_add_test(tc, gpt2_resume_is_bit_exact);
    tcase_add_test(tc, bert_resume_is_bit_exact);
    tcase_add_test(tc, gpt2_step_api_matches_fit);
    tcase_add_test(tc, bert_step_api_matches_fit);
    tcase_add_test(tc, callbacks_and_cadence);
    tcase_add_test(tc, shipped_scripts_run_tiny_presets);
    tcase_add_test(tc, ctrl_c_saves_a_checkpoint);
    tcase_add_test(tc, inspect_data_prints_the_four_figures);
    tcase_add_test(tc, bad_inputs_fail_clearly);
    tcase_add_test(tc, debug_masking_shows_a_block);
    tcase_add_test(tc, training_uses_the_fused_classifier);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}
