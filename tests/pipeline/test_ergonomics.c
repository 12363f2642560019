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

#include "cli_run.h"
#include "test_main.h"

#define EXE LM_TEST_LMCORE_EXE
#define SRC LM_TEST_SOURCE_DIR
#define DATA LM_TEST_SHARED_DATA_DIR "/wikitext-2-raw"
/* A tiny GPT-2 run on the test split: seconds on one thread. */
#define TINY_GPT2                                                                                                     \
    EXE " run scripts/gpt2_clm.lua preset=tiny data=" DATA " train_split=test threads=1 eval_max_batches=2 "

static int path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

#define ASSERT_HAS(haystack, needle)                                                                                  \
    ck_assert_msg(strstr((haystack), (needle)) != NULL, "'%s' not found in:\n%s", (needle), (haystack))

START_TEST(help_forms_print_the_options) {
    ck_assert_msg(cli_run(EXE " run --help") == 0, "%s", cli_output);
    ASSERT_HAS(cli_output, "usage: lmcore run SCRIPT [key=value ...]");
    ck_assert_msg(strstr(cli_output, "cannot open script") == NULL, "%s", cli_output);

    ck_assert_msg(cli_run(EXE " run scripts/gpt2_clm.lua --help") == 0, "%s", cli_output);
    ASSERT_HAS(cli_output, "usage: lmcore run gpt2_clm.lua");
    ASSERT_HAS(cli_output, "learning_rate=2e-05");
    ASSERT_HAS(cli_output, "alias: lr");
    ASSERT_HAS(cli_output, "num_train_epochs=3");
    ASSERT_HAS(cli_output, "save_total_limit=2");
    ASSERT_HAS(cli_output, "n_layer=12");
    ASSERT_HAS(cli_output, "presets (preset=NAME");
    ck_assert_msg(strstr(cli_output, "data:") != NULL && strstr(cli_output, "tokenizer:") == NULL, "help trained?\n%s",
                  cli_output);

    /* -h anywhere after the script, other arguments kept; nothing is written */
    char dir[64], cmd[512];
    cli_temp_dir(dir, sizeof dir, "ergo");
    snprintf(cmd, sizeof cmd, EXE " run scripts/bert_mlm.lua preset=tiny -h output_dir=%s/run", dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    snprintf(cmd, sizeof cmd, "%s/run", dir);
    ck_assert_msg(!path_exists(cmd), "--help created %s", cmd);
    ASSERT_HAS(cli_output, "num_hidden_layers=12");
    ASSERT_HAS(cli_output, "mlm_probability=0.15");

    /* lmcore help SCRIPT: the shipped script by its bare name */
    ck_assert_msg(cli_run(EXE " help gpt2_clm") == 0, "%s", cli_output);
    ASSERT_HAS(cli_output, "per_device_train_batch_size=8");
    ck_assert_msg(cli_run(EXE " help generate") == 0, "%s", cli_output);
    ASSERT_HAS(cli_output, "max_new_tokens=50");
    ck_assert_msg(cli_run(EXE " help run") == 0, "%s", cli_output);
    ASSERT_HAS(cli_output, "lmcore run SCRIPT --help");
}
END_TEST

/* Cuts a training_args.json before the keys the script adds after the
 * trainer's (output_dir, logging_dir, report_to, bf16, tf32: they name the
 * run's folders) and returns where they began. */
static char *cut_script_args(char *json) {
    char *script_part = strstr(json, "\"output_dir\"");
    ck_assert_msg(script_part != NULL, "no output_dir in training_args.json:\n%s", json);
    script_part[-1] = '\0';
    return script_part;
}

/* The older short names train exactly what the Hugging Face names train. */
START_TEST(aliases_and_hf_names_agree) {
    char dir[64], cmd[2048];
    cli_temp_dir(dir, sizeof dir, "ergo");
    snprintf(cmd, sizeof cmd,
             TINY_GPT2 "max_steps=4 lr=2e-3 epochs=1 batch_size=4 grad_accum=2 log_every=2 keep_last=1 save_every=2 "
                       "output_dir=%s/short cache_dir=%s/cache",
             dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    snprintf(cmd, sizeof cmd,
             TINY_GPT2 "max_steps=4 learning_rate=2e-3 num_train_epochs=1 per_device_train_batch_size=4 "
                       "gradient_accumulation_steps=2 logging_steps=2 save_total_limit=1 save_steps=2 "
                       "output_dir=%s/hf cache_dir=%s/cache",
             dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);

    char path[256];
    snprintf(path, sizeof path, "%s/short/training_args.json", dir);
    char *short_args = cli_read_file(path);
    snprintf(path, sizeof path, "%s/hf/training_args.json", dir);
    char *hf_args = cli_read_file(path);
    ck_assert_ptr_nonnull(short_args);
    ck_assert_ptr_nonnull(hf_args);
    char *hf_script_args = cut_script_args(hf_args);
    ASSERT_HAS(hf_script_args, "/hf\"");
    cut_script_args(short_args);
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
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ASSERT_HAS(cli_output, "OK options");
}
END_TEST

static void results_eval_loss(const char *dir, char *out, size_t cap);

/* Trainer habits through lm.trainer: a fractional num_train_epochs, optim
 * names and adam_* settings (tests/pipeline/scripts/hf_args_check.lua says
 * what each asserts); and the same names on the command line. */
START_TEST(hf_trainer_arguments_behave_as_in_transformers) {
    ck_assert_msg(cli_run(EXE " run tests/pipeline/scripts/hf_args_check.lua data=" DATA) == 0, "%s", cli_output);
    ASSERT_HAS(cli_output, "OK hf args");

    char dir[64], cmd[2048];
    cli_temp_dir(dir, sizeof dir, "ergo");
    snprintf(cmd, sizeof cmd,
             TINY_GPT2 "max_steps=2 optim=adamw_torch adam_beta2=0.95 output_dir=%s/hf cache_dir=%s/cache "
                       "logging_dir=%s/tb",
             dir, dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    snprintf(cmd, sizeof cmd,
             TINY_GPT2 "max_steps=2 optimizer=adamw optimizer.beta2=0.95 output_dir=%s/own cache_dir=%s/cache "
                       "logging_dir=%s/tb",
             dir, dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    char path[256];
    snprintf(path, sizeof path, "%s/hf/training_args.json", dir);
    char *hf_args = cli_read_file(path);
    snprintf(path, sizeof path, "%s/own/training_args.json", dir);
    char *own_args = cli_read_file(path);
    ck_assert_ptr_nonnull(hf_args);
    ck_assert_ptr_nonnull(own_args);
    /* the script's own TrainingArguments follow the trainer's */
    cut_script_args(own_args);
    const char *hf_script_args = cut_script_args(hf_args);
    ASSERT_HAS(hf_script_args, "\"report_to\": [\"tensorboard\"]");
    ASSERT_HAS(hf_script_args, "\"bf16\": false");
    ASSERT_HAS(hf_script_args, "/tb\"");
    ck_assert_str_eq(hf_args, own_args);
    ASSERT_HAS(hf_args, "\"optim\": \"adamw_torch\"");
    ASSERT_HAS(hf_args, "\"adam_beta2\": 0.95");
    free(hf_args);
    free(own_args);
    char a[64], b[64];
    snprintf(path, sizeof path, "%s/hf", dir);
    results_eval_loss(path, a, sizeof a);
    snprintf(path, sizeof path, "%s/own", dir);
    results_eval_loss(path, b, sizeof b);
    ck_assert_str_eq(a, b);

    /* logging_dir took the TensorBoard events; report_to=none writes none */
    snprintf(cmd, sizeof cmd, "ls %s/tb | grep -c '^events.out.tfevents'", dir);
    ck_assert_msg(cli_run(cmd) == 0 && atoi(cli_output) == 2, "events in logging_dir: %s", cli_output);
    snprintf(cmd, sizeof cmd, TINY_GPT2 "max_steps=1 report_to=none output_dir=%s/quiet cache_dir=%s/cache", dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    snprintf(path, sizeof path, "%s/quiet/tb", dir);
    ck_assert_msg(!path_exists(path), "report_to=none wrote %s", path);
    snprintf(path, sizeof path, "%s/quiet/training_args.json", dir);
    char *quiet_args = cli_read_file(path);
    ck_assert_ptr_nonnull(quiet_args);
    ASSERT_HAS(quiet_args, "\"report_to\": []");
    free(quiet_args);
    ck_assert_int_eq(cli_run(EXE " run scripts/gpt2_clm.lua report_to=wandb"), 1);
    ASSERT_HAS(cli_output, "report_to 'wandb': lmcore's integration is TensorBoard");

    ck_assert_int_eq(cli_run(EXE " run scripts/gpt2_clm.lua optim=sgd optimizer=adamw"), 1);
    ASSERT_HAS(cli_output, "arguments 'optim' and 'optimizer' both set optimizer");
}
END_TEST

START_TEST(typos_and_bad_values_say_what_to_type) {
    ck_assert_int_eq(cli_run(EXE " run scripts/gpt2_clm.lua learnig_rate=1e-3"), 1);
    ASSERT_HAS(cli_output, "lmcore: error: unknown argument 'learnig_rate': did you mean 'learning_rate'?");
    ck_assert_int_eq(cli_run(EXE " run scripts/bert_mlm.lua num_train_epoch=1"), 1);
    ASSERT_HAS(cli_output, "did you mean 'num_train_epochs'?");
    ck_assert_int_eq(cli_run(EXE " run scripts/gpt2_clm.lua lr=1e-3 learning_rate=1e-3"), 1);
    ASSERT_HAS(cli_output, "arguments 'learning_rate' and 'lr' both set learning_rate");
    ck_assert_int_eq(cli_run(EXE " run scripts/gpt2_clm.lua eval_max_batches=-1"), 1);
    ASSERT_HAS(cli_output, "argument 'eval_max_batches' must be >= 0, got -1");
    ck_assert_int_eq(cli_run(EXE " run scripts/gpt2_clm.lua lr_scheduler_type=cosine_annealing"), 1);
    ASSERT_HAS(cli_output, "must be one of linear, cosine");
    ck_assert_int_eq(cli_run(EXE " run scripts/generate.lua max_new_token=5"), 1);
    ASSERT_HAS(cli_output, "did you mean 'max_new_tokens'?");
    /* A device that is not there fails before the tokenizer is trained, and
     * writes nothing. */
    char dir[64], cmd[512];
    cli_temp_dir(dir, sizeof dir, "ergo");
    snprintf(cmd, sizeof cmd, TINY_GPT2 "device=cuda:99 output_dir=%s/run", dir);
    ck_assert_int_eq(cli_run(cmd), 1);
    ck_assert_msg(strstr(cli_output, "tokenizer:") == NULL && strstr(cli_output, "BPE training") == NULL, "%s",
                  cli_output);
    snprintf(cmd, sizeof cmd, "%s/run", dir);
    ck_assert_msg(!path_exists(cmd), "a refused device left %s", cmd);
}
END_TEST


/* The "eval_loss" of a results.json, as written (same bits: same text). */
static void results_eval_loss(const char *dir, char *out, size_t cap) {
    char path[512];
    snprintf(path, sizeof path, "%s/results.json", dir);
    char *text = cli_read_file(path);
    ck_assert_msg(text != NULL, "no %s", path);
    const char *at = strstr(text, "\"eval_loss\": ");
    ck_assert_ptr_nonnull(at);
    at += strlen("\"eval_loss\": ");
    size_t n = strcspn(at, ",\n");
    snprintf(out, cap, "%.*s", (int)n, at);
    free(text);
}

#define RESUMABLE "max_steps=20 save_steps=5 save_total_limit=0 logging_steps=5 eval_strategy=steps eval_steps=5 "

/* A run of 20 steps with checkpoints every 5; then checkpoints 15 and 20
 * removed, as if it had stopped after step 10. */
static void stopped_run(const char *dir, char *final_loss, size_t cap) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, TINY_GPT2 RESUMABLE "output_dir=%s/base cache_dir=%s/cache", dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    snprintf(cmd, sizeof cmd, "%s/base", dir);
    results_eval_loss(cmd, final_loss, cap);
    snprintf(cmd, sizeof cmd, "rm -r %s/base/checkpoints/checkpoint-15 %s/base/checkpoints/checkpoint-20", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Each form of resume_from_checkpoint picks checkpoint-10 and finishes the
 * run to the same bits; the report and log.jsonl cover all 20 steps. */
START_TEST(resume_from_each_form) {
    char dir[64], cmd[2048], expected[64], got[64];
    cli_temp_dir(dir, sizeof dir, "ergo");
    stopped_run(dir, expected, sizeof expected);
    static const char *const forms[][2] = {
        {"same", "resume_from_checkpoint=true"},          /* Hugging Face's True: output_dir's newest */
        {"latest", "resume=latest"},                      /* the alias, lmcore's word */
        {"run", "resume_from_checkpoint=%s/run"},         /* a run folder */
        {"folder", "resume=%s/folder/checkpoints"},       /* the folder Ctrl-C names */
        {"exact", "resume=%s/exact/checkpoints/checkpoint-10"},
    };
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        const char *name = forms[i][0];
        snprintf(cmd, sizeof cmd, "cp -r %s/base %s/%s", dir, dir, name);
        ck_assert_int_eq(system(cmd), 0);
        char form[512];
        snprintf(form, sizeof form, forms[i][1], dir);
        /* run/folder/exact resume into a new output_dir; same/latest into their own */
        int elsewhere = strstr(form, dir) != NULL;
        snprintf(cmd, sizeof cmd, TINY_GPT2 RESUMABLE "%s output_dir=%s/%s%s cache_dir=%s/cache", form, dir, name,
                 elsewhere ? "_out" : "", dir);
        ck_assert_msg(cli_run(cmd) == 0, "%s: %s", name, cli_output);
        ASSERT_HAS(cli_output, "checkpoint-10 at step 10");
        char out_dir[256];
        snprintf(out_dir, sizeof out_dir, "%s/%s%s", dir, name, elsewhere ? "_out" : "");
        results_eval_loss(out_dir, got, sizeof got);
        ck_assert_msg(strcmp(got, expected) == 0, "%s: eval_loss %s, the uninterrupted run's %s", name, got, expected);

        /* the whole run: evaluations before the resume too */
        char path[512];
        snprintf(path, sizeof path, "%s/report.md", out_dir);
        char *md = cli_read_file(path);
        ck_assert_ptr_nonnull(md);
        ASSERT_HAS(md, "| Resumed | at step 10: this session ran 10 steps");
        ASSERT_HAS(md, " | 5 | ");
        ASSERT_HAS(md, " | 20 | ");
        free(md);
        snprintf(path, sizeof path, "%s/log.jsonl", out_dir);
        char *log = cli_read_file(path);
        ck_assert_ptr_nonnull(log);
        ASSERT_HAS(log, "{\"event\":\"eval\",\"step\":5,");
        ASSERT_HAS(log, "{\"event\":\"eval\",\"step\":20,");
        free(log);
    }
    /* Nothing to resume from: a clear error, naming what was looked for. */
    snprintf(cmd, sizeof cmd,
             TINY_GPT2 "max_steps=2 resume_from_checkpoint=true output_dir=%s/fresh cache_dir=%s/cache", dir, dir);
    ck_assert_int_eq(cli_run(cmd), 1);
    ASSERT_HAS(cli_output, "output_dir '");
    ASSERT_HAS(cli_output, "does not exist, so it has no checkpoint to continue from");
    snprintf(cmd, sizeof cmd, "%s/fresh", dir);
    ck_assert_msg(!path_exists(cmd), "a refused resume left %s", cmd);
    /* A folder without a checkpoint: the trainer says what it looked for. */
    snprintf(cmd, sizeof cmd, "mkdir %s/empty && " TINY_GPT2 "max_steps=2 resume=%s/empty output_dir=%s/empty_out "
             "cache_dir=%s/cache", dir, dir, dir, dir);
    ck_assert_int_eq(cli_run(cmd), 1);
    ASSERT_HAS(cli_output,
               "no checkpoint there (no trainer_state.json, and no complete checkpoint-N folder in it or in "
               "its checkpoints/)");
}
END_TEST

/* report.md explains the run: title, note, model, data, every
 * hyperparameter, every evaluation; loss.svg has the evaluation points and
 * the learning-rate panel; samples reach console and report. */
START_TEST(report_explains_the_run) {
    char dir[64], cmd[2048], path[512];
    cli_temp_dir(dir, sizeof dir, "ergo");
    snprintf(cmd, sizeof cmd,
             TINY_GPT2 "max_steps=12 logging_steps=3 eval_strategy=steps eval_steps=4 lr=2e-3 sample_every=6 "
                       "prompt=\"The game\" sample_tokens=5 output_dir=%s/run cache_dir=%s/cache",
             dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ASSERT_HAS(cli_output, "sample at step 6: The game");
    ASSERT_HAS(cli_output, "sample at step 12: The game");
    snprintf(path, sizeof path, "%s/run/report.md", dir);
    char *md = cli_read_file(path);
    ck_assert_ptr_nonnull(md);
    ASSERT_HAS(md, "# run: GPT-2 (1 layer, 2 heads, 64 wide), 0.2M parameters");
    ASSERT_HAS(md, "> **Note:** Trained on the 'test' split, evaluated on 'validation'");
    ASSERT_HAS(md, "| Model | GPT-2 (1 layer, 2 heads, 64 wide) |");
    ASSERT_HAS(md, "| Training | split 'test': ");
    ASSERT_HAS(md, "| Evaluation | split 'validation': ");
    ASSERT_HAS(md, "## Hyperparameters");
    ASSERT_HAS(md, "| learning_rate | **0.002** (as `lr`) |");
    ASSERT_HAS(md, "| per_device_train_batch_size | 8 |");
    ASSERT_HAS(md, "| weight_decay | 0.01 |");
    ASSERT_HAS(md, "| lr_scheduler_type | linear |");
    ASSERT_HAS(md, "| n_layer | **1** |");
    ASSERT_HAS(md, "| preset | tiny |");
    /* every evaluation a row */
    ASSERT_HAS(md, " | 4 | ");
    ASSERT_HAS(md, " | 8 | ");
    ASSERT_HAS(md, " | 12 | ");
    ASSERT_HAS(md, "## Samples");
    ASSERT_HAS(md, "| 6 | The game");
    free(md);
    snprintf(path, sizeof path, "%s/run/loss.svg", dir);
    char *svg = cli_read_file(path);
    ck_assert_ptr_nonnull(svg);
    int circles = 0;
    for (const char *c = strstr(svg, "<circle"); c; c = strstr(c + 1, "<circle")) circles++;
    ck_assert_int_eq(circles, 3 + 1); /* the evaluations at steps 4, 8, 12, and the legend's mark */
    ASSERT_HAS(svg, ">learning rate</text>");
    ASSERT_HAS(svg, ">run: GPT-2 (1 layer, 2 heads, 64 wide), 0.2M parameters</text>");
    ASSERT_HAS(svg, ">Trained on the 'test' split, evaluated on 'validation'");
    free(svg);

    /* Without cache_dir, the token cache goes beside output_dir, not into
     * the current folder's runs/cache. */
    snprintf(cmd, sizeof cmd, TINY_GPT2 "max_steps=1 output_dir=%s/elsewhere/run", dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    snprintf(path, sizeof path, "%s/elsewhere/cache", dir);
    ck_assert_msg(path_exists(path), "no token cache in %s", path);
}
END_TEST

/* init_from: a GPT2LMHeadModel saved by transformers (committed fixture,
 * tests/pipeline/fixtures/gen_hf_init_fixture.py) trains from its weights,
 * with its shape and its tokenizer. */
START_TEST(init_from_a_transformers_model) {
    char dir[64], cmd[2048];
    cli_temp_dir(dir, sizeof dir, "ergo");
    const char *fixture = "tests/pipeline/fixtures/hf_tiny_gpt2";
    snprintf(cmd, sizeof cmd,
             TINY_GPT2 "max_steps=3 logging_steps=1 init_from=%s output_dir=%s/init cache_dir=%s/cache", fixture,
             dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ASSERT_HAS(cli_output, "tokenizer: bpe, 512 tokens (from tests/pipeline/fixtures/hf_tiny_gpt2/tokenizer.json)");
    ASSERT_HAS(cli_output, "model: GPT-2 (1 layer, 2 heads, 32 wide)");
    ASSERT_HAS(cli_output, "weights from tests/pipeline/fixtures/hf_tiny_gpt2");
    const char *first = strstr(cli_output, "[1/3 ");
    ck_assert_ptr_nonnull(first);
    char from_fixture[32];
    ck_assert_int_eq(sscanf(strstr(first, "] loss ") + 7, "%31s", from_fixture), 1);

    /* The same shape and tokenizer from a fresh initialisation starts elsewhere. */
    snprintf(cmd, sizeof cmd,
             TINY_GPT2 "max_steps=3 logging_steps=1 tokenizer=%s/tokenizer.json n_layer=1 n_head=2 n_embd=32 "
                       "n_positions=128 output_dir=%s/fresh cache_dir=%s/cache",
             fixture, dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    first = strstr(cli_output, "[1/3 ");
    ck_assert_ptr_nonnull(first);
    char from_scratch[32];
    ck_assert_int_eq(sscanf(strstr(first, "] loss ") + 7, "%31s", from_scratch), 1);
    ck_assert_msg(strcmp(from_fixture, from_scratch) != 0, "init_from changed nothing: loss %s both", from_scratch);

    /* The shape comes from config.json: giving it too is refused. */
    snprintf(cmd, sizeof cmd, TINY_GPT2 "max_steps=3 init_from=%s n_layer=2 output_dir=%s/refused", fixture, dir);
    ck_assert_int_eq(cli_run(cmd), 1);
    ASSERT_HAS(cli_output, "n_layer is set by init_from's config.json (1): drop n_layer=2");
    /* a BERT script refuses a GPT-2 model */
    snprintf(cmd, sizeof cmd,
             EXE " run scripts/bert_mlm.lua preset=tiny data=" DATA " train_split=test init_from=%s output_dir=%s/bert",
             fixture, dir);
    ck_assert_int_eq(cli_run(cmd), 1);
    ASSERT_HAS(cli_output, "holds a 'gpt2' model, but bert_mlm.lua trains 'bert' models");
    snprintf(cmd, sizeof cmd, "%s/refused", dir);
    ck_assert_msg(!path_exists(cmd), "a refused init_from left %s", cmd);

    /* A BertForMaskedLM saved by transformers (tests/bert/fixtures/tiny: 512
     * tokens, 64 positions, no tokenizer.json), with a WordPiece tokenizer
     * of 512 tokens that a tiny run trains first. */
    snprintf(cmd, sizeof cmd,
             EXE " run scripts/bert_mlm.lua preset=tiny data=" DATA " train_split=test threads=1 eval_max_batches=2 "
                 "tokenizer_vocab_size=512 block_size=64 max_steps=1 output_dir=%s/wordpiece cache_dir=%s/cache",
             dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    snprintf(cmd, sizeof cmd,
             EXE " run scripts/bert_mlm.lua preset=tiny data=" DATA " train_split=test threads=1 eval_max_batches=2 "
                 "block_size=64 max_steps=2 init_from=tests/bert/fixtures/tiny output_dir=%s/bert_none "
                 "cache_dir=%s/cache",
             dir, dir);
    ck_assert_int_eq(cli_run(cmd), 1);
    ASSERT_HAS(cli_output, "has no tokenizer.json: pass tokenizer=PATH");
    snprintf(cmd, sizeof cmd,
             EXE " run scripts/bert_mlm.lua preset=tiny data=" DATA " train_split=test threads=1 eval_max_batches=2 "
                 "block_size=64 max_steps=2 init_from=tests/bert/fixtures/tiny tokenizer=%s/wordpiece/tokenizer.json "
                 "output_dir=%s/bert_init cache_dir=%s/cache",
             dir, dir, dir);
    ck_assert_msg(cli_run(cmd) == 0, "%s", cli_output);
    ASSERT_HAS(cli_output, "model: BERT (2 layers, 4 heads, 64 wide, FFN 128)");
    ASSERT_HAS(cli_output, "weights from tests/bert/fixtures/tiny");
}
END_TEST

static Suite *ergonomics_suite(void) {
    Suite *s = suite_create("ergonomics");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, help_forms_print_the_options);
    tcase_add_test(tc, aliases_and_hf_names_agree);
    tcase_add_test(tc, hf_trainer_arguments_behave_as_in_transformers);
    tcase_add_test(tc, typos_and_bad_values_say_what_to_type);
    tcase_add_test(tc, resume_from_each_form);
    tcase_add_test(tc, report_explains_the_run);
    tcase_add_test(tc, init_from_a_transformers_model);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_run_suites(ergonomics_suite(), NULL); }
