/* trainer_state.json: what a checkpoint records of the run besides the
 * tensors, and resuming from it.
 *
 * Counters that need 64 bits are written as strings (JSON numbers are
 * doubles for many readers) and sums as the exact bits of their doubles, so
 * that a resumed run continues bit for bit.  Format 2 adds the optimizer
 * and the schedule; format 1 (lmcore 0.1, always AdamW) is still read. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"
#include "trainer_internal.h"
#include "trainer_state_check.h"

#define STATE_FORMAT "lmcore-trainer-state-2"

static void write_u64(lm_json_writer *w, const char *key, uint64_t v) {
    char text[32];
    snprintf(text, sizeof text, "%" PRIu64, v);
    lm_json_key(w, key);
    lm_json_write_cstr(w, text);
}

static void write_bits(lm_json_writer *w, const char *key, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    write_u64(w, key, bits);
}

static void write_int(lm_json_writer *w, const char *key, int64_t v) {
    lm_json_key(w, key);
    lm_json_write_int(w, v);
}

/* Appends a JSON object's text as the value of `key` (parsed first: what
 * goes into the file is always valid JSON). */
static lm_status write_object_text(lm_json_writer *w, const char *key, const char *text, const char *what) {
    lm_json *value = NULL;
    LM_TRY(lm_json_parse(text, strlen(text), what, &value));
    if (lm_json_type_of(value) != LM_JSON_OBJECT) {
        lm_json_free(value);
        return lm_error_set(LM_ERR_INVALID, "%s must be a JSON object", what);
    }
    lm_json_key(w, key);
    lm_json_write_value(w, value);
    lm_json_free(value);
    return LM_OK;
}

lm_status trainer_state_json(lm_trainer *t, const lm_step_state *state, const char *extra_json, lm_buffer *out) {
    /* At an epoch's end the checkpoint starts the next one (a resume
     * shuffles for it), as lmcore has always written them. */
    int64_t epoch = t->epoch, steps_in_epoch = t->steps_in_epoch;
    uint64_t cursor = t->cursor;
    double epoch_loss_sum = state->loss_sums[LM_LOSS_SUM_EPOCH];
    if (steps_in_epoch >= t->plan.steps_per_epoch) {
        epoch++;
        steps_in_epoch = 0;
        cursor = 0;
        epoch_loss_sum = 0.0; /* what next_batch would have set when starting it */
    }
    lm_json_writer w;
    lm_json_writer_init(&w, out, 2);
    lm_json_begin_object(&w);
    lm_json_key(&w, "format");
    lm_json_write_cstr(&w, STATE_FORMAT);
    lm_json_key(&w, "model_type");
    lm_json_write_cstr(&w, t->arch.model_type);
    write_int(&w, "vocab_size", t->arch.vocab_size);
    write_int(&w, "n_params", t->arch.n_params);
    lm_json_key(&w, "optimizer");
    lm_json_write_cstr(&w, t->parts.optimizer.plugin->name);
    if (t->plan.save_only_model) { /* read back by the resume check, which refuses it */
        lm_json_key(&w, "save_only_model");
        lm_json_write_bool(&w, 1);
    }
    lm_json *settings = NULL;
    LM_TRY(trainer_optimizer_settings(t, &settings));
    lm_json_key(&w, "optimizer_settings");
    lm_json_write_value(&w, settings);
    lm_json_free(settings);
    lm_json_key(&w, "lr_scheduler_type");
    lm_json_write_cstr(&w, lm_schedule_name(t->schedule.kind));
    write_bits(&w, "learning_rate_bits", t->schedule.base_lr);
    write_int(&w, "warmup_steps", t->schedule.warmup_steps);
    write_int(&w, "global_step", t->step);
    write_int(&w, "total_steps", t->plan.total_steps);
    write_int(&w, "epoch", epoch);
    write_int(&w, "steps_in_epoch", steps_in_epoch);
    write_int(&w, "cursor", (int64_t)cursor);
    write_int(&w, "train_blocks", (int64_t)t->plan.train_blocks);
    write_int(&w, "batch_size", t->s.batch_size);
    write_int(&w, "grad_accum", t->s.grad_accum);
    write_u64(&w, "micro_batches", t->micro_batches);
    /* The ranks' data order depends on their number (absent: one process). */
    if (t->world > 1) write_int(&w, "world_size", t->world);
    write_u64(&w, "seed", t->s.seed);
    write_bits(&w, "loss_sum_run_bits", state->loss_sums[LM_LOSS_SUM_RUN]);
    write_bits(&w, "loss_sum_epoch_bits", epoch_loss_sum);
    write_bits(&w, "loss_sum_log_bits", state->loss_sums[LM_LOSS_SUM_LOG]);
    write_bits(&w, "loss_sum_eval_bits", state->loss_sums[LM_LOSS_SUM_EVAL]);
    write_int(&w, "last_log_step", t->last_log_step);
    write_int(&w, "last_eval_step", t->last_eval_step);
    write_bits(&w, "eval_loss_bits", t->last_eval_loss);
    if (extra_json && *extra_json) LM_TRY(write_object_text(&w, "fit", extra_json, "the loop's state"));
    lm_json_end_object(&w);
    return lm_json_writer_finish(&w);
}

/* ---- resume ---------------------------------------------------------------------- */

/* The "fit" member back as JSON text, for the loop that wrote it. */
static lm_status keep_extra(lm_trainer *t, const lm_json *root) {
    const lm_json *fit = lm_json_get(root, "fit");
    if (!fit) return LM_OK;
    lm_buffer text = {0};
    lm_json_writer w;
    lm_json_writer_init(&w, &text, 0);
    lm_json_write_value(&w, fit);
    lm_status status = lm_json_writer_finish(&w);
    if (status == LM_OK) {
        free(t->resumed_extra);
        t->resumed_extra = text.data;
        text.data = NULL;
        if (!t->resumed_extra) t->resumed_extra = calloc(1, 1);
        if (!t->resumed_extra) status = lm_error_set(LM_ERR_NOMEM, "out of memory resuming");
    }
    lm_buffer_free(&text);
    return status;
}

static lm_status resume_from(lm_trainer *t, const char *dir, const lm_json *root, const char *path) {
    const trainer_state_run run = {
        .model_type = t->arch.model_type,
        .vocab_size = t->arch.vocab_size,
        .n_params = t->arch.n_params,
        .optimizer = t->parts.optimizer.plugin->name,
        .schedule = lm_schedule_name(t->schedule.kind),
        .host_schedule = t->plan.host_schedule,
        .train_blocks = t->plan.train_blocks,
        .batch_size = t->s.batch_size,
        .grad_accum = t->s.grad_accum,
        .total_steps = t->plan.total_steps,
        .total_epochs = t->plan.total_epochs,
        .steps_per_epoch = t->plan.steps_per_epoch,
        .seed = t->s.seed,
        .world_size = t->world,
    };
    trainer_state_fields f;
    LM_TRY(trainer_state_check(root, path, &run, &f));
    const int64_t step = f.step, epoch = f.epoch, steps_in_epoch = f.steps_in_epoch, cursor = f.cursor;
    const int64_t micro = f.micro_batches, last_log = f.last_log_step, last_eval = f.last_eval_step;
    const double eval_loss = f.eval_loss;
    lm_step_state state;
    memset(&state, 0, sizeof state);
    for (int i = 0; i < LM_LOSS_SUMS; i++) state.loss_sums[i] = f.loss_sums[i];
    if (f.base_lr > 0) { /* format 2 records it */
        if (f.base_lr != t->schedule.base_lr)
            lm_log(LM_LOG_INFO, "resume: the learning rate continues from the checkpoint's %g (this run's setting: %g)",
                   f.base_lr, t->schedule.base_lr);
        t->schedule.base_lr = f.base_lr;
    }
    LM_TRY(keep_extra(t, root));

    /* under ZeRO-1, each rank reads its shard of the optimizer state */
    lm_checkpoint_parts parts = {t->parts.model, t->parts.optimizer, t->parts.tokenizer,
                                 trainer_dist_checkpoint_shards(t), 0};
    LM_TRY(lm_checkpoint_load_tensors(dir, &parts));

    t->step = step;
    t->epoch = epoch;
    t->steps_in_epoch = steps_in_epoch;
    t->cursor = (size_t)cursor;
    t->micro_batches = (uint64_t)micro;
    t->last_log_step = last_log;
    t->last_eval_step = last_eval;
    t->last_eval_loss = eval_loss;
    trainer_shuffle(t, epoch);
    state.seed = t->s.seed;
    state.micro_batch = (uint64_t)micro;
    state.step = step;
    state.schedule = t->schedule;
    state.max_grad_norm = t->s.max_grad_norm;
    state.lr = lm_schedule_lr(&t->schedule, step);
    state.clip_scale = 1.0f;
    state.grad_norm = NAN;
    LM_TRY(t->dev->ops->upload(t->dev, t->state, &state, sizeof state));
    LM_TRY(t->dev->ops->sync(t->dev));
    snprintf(t->resumed_from, sizeof t->resumed_from, "%s", dir);
    return LM_OK;
}

lm_status trainer_resume(lm_trainer *t, const char *given) {
    /* A checkpoints folder or a run folder stands for its newest checkpoint. */
    char dir[PATH_MAX];
    LM_TRY(lm_checkpoint_resolve(given, dir, sizeof dir));
    lm_json *root = NULL;
    /* A save_only_model checkpoint has no optimizer state by design: say so
     * before the checksums would call the missing file damage. */
    if (lm_checkpoint_read_state(dir, &root) == LM_OK) {
        lm_status refused = trainer_state_refuse_model_only(root);
        lm_json_free(root);
        root = NULL;
        if (refused != LM_OK) {
            lm_error_prefix("resume from '%s': ", dir);
            return refused;
        }
    }
    /* Every file against the checksums recorded when it was written, before
     * any of them is read. */
    lm_status status = lm_checkpoint_verify(dir);
    if (status != LM_OK) return status;
    status = lm_checkpoint_read_state(dir, &root);
    if (status != LM_OK) return status;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, LM_CHECKPOINT_STATE_FILE);
    status = resume_from(t, dir, root, path);
    lm_json_free(root);
    if (status != LM_OK && !strstr(lm_error_message(), dir)) lm_error_prefix("resume from '%s': ", dir);
    return status;
}
