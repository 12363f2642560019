/* fuzz_checkpoint_state: a checkpoint's trainer_state.json or checksums.json
 * made of the fuzzer's bytes, through the checks a resume runs before it
 * trusts either (core/train/trainer_state_check.c, checkpoint_manifest.c).
 *
 *   byte 0  bit 0: the bytes are checksums.json, checked against a scratch
 *                  checkpoint folder of four small files (else
 *                  trainer_state.json, checked against a fixed run: the tiny
 *                  GPT-2 of tests/bad_inputs/model_checkpoint.lua)
 *   rest    the JSON text
 *
 * Invariants: the parser or the check refuses with a message, or the check
 * accepts and every field it hands out is one the trainer can resume from
 * (step before the run's end and consistent with the epoch, the data cursor
 * where the batches put it, finite non-negative loss sums, a positive
 * learning rate); an accepted checksums.json covers the files a resume
 * reads, and each matches it. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "fuzz_util.h"
#include "trainer_state_check.h"

static const trainer_state_run run = {
    .model_type = "gpt2",
    .vocab_size = 300,
    .n_params = 8368,
    .optimizer = "adamw",
    .schedule = "linear",
    .host_schedule = 0,
    .train_blocks = 49978,
    .batch_size = 8,
    .grad_accum = 1,
    .total_steps = 4,
    .total_epochs = 1,
    .steps_per_epoch = 6247,
    .seed = 42,
    .world_size = 1,
};

static void check_state(const lm_json *root) {
    trainer_state_fields f;
    if (trainer_state_check(root, "trainer_state.json", &run, &f) != LM_OK) {
        FUZZ_CHECK(lm_error_message()[0] != '\0', "state refused without a message");
        return;
    }
    FUZZ_CHECK(f.step >= 0 && f.step < run.total_steps, "accepted global_step %lld", (long long)f.step);
    FUZZ_CHECK(f.step == f.epoch * run.steps_per_epoch + f.steps_in_epoch, "accepted an inconsistent epoch");
    FUZZ_CHECK(f.steps_in_epoch >= 0 && f.steps_in_epoch < run.steps_per_epoch, "accepted steps_in_epoch");
    FUZZ_CHECK(f.cursor == f.steps_in_epoch * run.grad_accum * run.batch_size, "accepted cursor %lld",
               (long long)f.cursor);
    FUZZ_CHECK(f.micro_batches >= f.step * run.grad_accum, "accepted micro_batches");
    FUZZ_CHECK(f.last_log_step >= 0 && f.last_log_step <= f.step, "accepted last_log_step");
    FUZZ_CHECK(f.last_eval_step >= 0 && f.last_eval_step <= f.step, "accepted last_eval_step");
    for (int i = 0; i < LM_LOSS_SUMS; i++)
        FUZZ_CHECK(isfinite(f.loss_sums[i]) && f.loss_sums[i] >= 0, "accepted loss sum %d = %g", i, f.loss_sums[i]);
    FUZZ_CHECK(isnan(f.eval_loss) || (isfinite(f.eval_loss) && f.eval_loss >= 0), "accepted eval loss");
    FUZZ_CHECK(f.base_lr == 0 || (isfinite(f.base_lr) && f.base_lr > 0), "accepted learning rate %g", f.base_lr);
}

/* The scratch checkpoint: the files a resume reads, with fixed contents
 * (the seeds' checksums.json records their sizes and hashes). */
static const char *checkpoint_dir(void) {
    static char dir[512];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s/checkpoint-2", fuzz_dir());
    mkdir(dir, 0700);
    static const char *const names[] = {"model.safetensors", "config.json", "optimizer.safetensors",
                                        "trainer_state.json"};
    char path[600];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        fuzz_write_file(path, names[i], strlen(names[i])); /* each file holds its own name */
    }
    return dir;
}

static void check_manifest(const lm_json *root) {
    const char *dir = checkpoint_dir();
    if (lm_checkpoint_check_manifest(dir, "checksums.json", root) != LM_OK) {
        FUZZ_CHECK(lm_error_message()[0] != '\0', "checksums refused without a message");
        return;
    }
    const lm_json *files = lm_json_get(root, "files");
    FUZZ_CHECK(files && lm_json_get(files, "model.safetensors") && lm_json_get(files, LM_CHECKPOINT_STATE_FILE) &&
                   lm_json_get(files, LM_CHECKPOINT_OPTIMIZER_FILE),
               "accepted checksums that do not cover the files a resume reads");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    lm_json *root = NULL;
    if (lm_json_parse((const char *)data + 1, size - 1, "fuzzed", &root) != LM_OK) return 0;
    if (data[0] & 1) check_manifest(root);
    else check_state(root);
    lm_json_free(root);
    return 0;
}
