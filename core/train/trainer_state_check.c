/* trainer_state.json checked against the resuming run (trainer_state_check.h).
 *
 * Counters that need 64 bits are written as strings (JSON numbers are
 * doubles for many readers) and sums as the exact bits of their doubles.
 * Format 2 adds the optimizer and the schedule; format 1 (lmcore 0.1,
 * always AdamW) is still read. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_state_check.h"

#define STATE_FORMAT "lmcore-trainer-state-2"
#define STATE_FORMAT_1 "lmcore-trainer-state-1"

typedef struct state_reader {
    const lm_json *root;
    const char *path;
} state_reader;

static lm_status get_int(const state_reader *r, const char *key, int64_t *out) {
    const lm_json *v = lm_json_get(r->root, key);
    if (v && lm_json_type_of(v) == LM_JSON_NUMBER && lm_json_is_integer(v)) {
        *out = lm_json_int(v);
        return LM_OK;
    }
    if (v && lm_json_type_of(v) == LM_JSON_STRING) {
        size_t len;
        const char *s = lm_json_string(v, &len);
        char *end;
        errno = 0;
        unsigned long long u = len > 0 && len < 32 ? strtoull(s, &end, 10) : 0;
        if (len > 0 && len < 32 && end == s + len && errno == 0 && s[0] >= '0' && s[0] <= '9') {
            memcpy(out, &u, sizeof *out);
            return LM_OK;
        }
    }
    return lm_error_set(LM_ERR_FORMAT, "%s: \"%s\" is missing or not an integer", r->path, key);
}

/* A sum or loss written as the bits of a double: finite and not negative
 * (a loss), or NaN where `nan_ok` (no evaluation yet). */
static lm_status get_loss(const state_reader *r, const char *key, int nan_ok, double *out) {
    int64_t bits;
    LM_TRY(get_int(r, key, &bits));
    memcpy(out, &bits, sizeof *out);
    if ((nan_ok && isnan(*out)) || (isfinite(*out) && *out >= 0)) return LM_OK;
    return lm_error_set(LM_ERR_FORMAT, "%s: \"%s\" is %g, not a loss (finite, >= 0): the file is damaged", r->path,
                        key, *out);
}

/* A string member, required, as a NUL-terminated copy in `out`. */
static lm_status get_string(const state_reader *r, const char *key, char *out, size_t cap) {
    out[0] = '\0';
    const lm_json *v = lm_json_get(r->root, key);
    if (!v || lm_json_type_of(v) != LM_JSON_STRING)
        return lm_error_set(LM_ERR_FORMAT, "%s: \"%s\" is missing or not a string: the file is damaged or not an "
                                           "lmcore trainer state",
                            r->path, key);
    size_t len;
    const char *s = lm_json_string(v, &len);
    if (len >= cap || memchr(s, '\0', len))
        return lm_error_set(LM_ERR_FORMAT, "%s: \"%s\" is not a name this run could have written", r->path, key);
    memcpy(out, s, len);
    out[len] = '\0';
    return LM_OK;
}

static lm_status check_range(const state_reader *r, const char *key, int64_t value, int64_t lo, int64_t hi) {
    if (value >= lo && value <= hi) return LM_OK;
    return lm_error_set(LM_ERR_FORMAT, "%s: \"%s\" is %lld, outside [%lld, %lld] for this run: the file is damaged "
                                       "or belongs to another run",
                        r->path, key, (long long)value, (long long)lo, (long long)hi);
}

/* Blocks the data cursor has passed after `micro` micro-batches of an
 * epoch, as next_batch takes them.  Alone, a batch is cut short at the
 * epoch's end, and the cursor wraps when an epoch has fewer batches than
 * grad_accum; across `world` ranks each micro-batch takes a whole global
 * batch (world x batch_size blocks), wrapping before one would not fit. */
static int64_t expected_cursor(uint64_t blocks, int64_t batch_size, int64_t world, int64_t micro) {
    uint64_t cursor = 0;
    const uint64_t global = (uint64_t)batch_size * (uint64_t)world;
    for (int64_t i = 0; i < micro; i++) {
        if (world > 1) {
            if (cursor + global > blocks) cursor = 0;
            cursor += global;
            continue;
        }
        if (cursor >= blocks) cursor = 0;
        uint64_t left = blocks - cursor;
        cursor += left < (uint64_t)batch_size ? left : (uint64_t)batch_size;
    }
    return (int64_t)cursor;
}

/* The loop's own state ("fit", written by trainer.lua): an object whose
 * known members have the types the loop reads. */
static lm_status check_fit(const state_reader *r) {
    const lm_json *fit = lm_json_get(r->root, "fit");
    if (!fit) return LM_OK;
    if (lm_json_type_of(fit) != LM_JSON_OBJECT)
        return lm_error_set(LM_ERR_FORMAT, "%s: \"fit\" is not an object: the file is damaged", r->path);
    const struct {
        const char *key;
        lm_json_type type;
        const char *what;
    } members[] = {{"best_metric", LM_JSON_NUMBER, "a number"},
                   {"best_model_checkpoint", LM_JSON_STRING, "a string"},
                   {"callbacks", LM_JSON_OBJECT, "an object"}};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        const lm_json *v = lm_json_get(fit, members[i].key);
        if (v && lm_json_type_of(v) != LM_JSON_NULL && lm_json_type_of(v) != members[i].type)
            return lm_error_set(LM_ERR_FORMAT, "%s: \"fit\".\"%s\" is not %s: the file is damaged", r->path,
                                members[i].key, members[i].what);
    }
    return LM_OK;
}

lm_status trainer_state_refuse_model_only(const lm_json *root) {
    const lm_json *model_only = lm_json_type_of(root) == LM_JSON_OBJECT ? lm_json_get(root, "save_only_model") : NULL;
    if (model_only && lm_json_type_of(model_only) == LM_JSON_BOOL && lm_json_bool(model_only))
        return lm_error_set(LM_ERR_INVALID, "the checkpoint was saved with save_only_model=true: it holds the weights "
                                            "but not the optimizer state, so it cannot resume a run; start a new run "
                                            "from its weights with init_from=CHECKPOINT_FOLDER");
    return LM_OK;
}

lm_status trainer_state_check(const lm_json *root, const char *path, const trainer_state_run *run,
                              trainer_state_fields *out) {
    memset(out, 0, sizeof *out);
    state_reader r = {root, path};
    char format[64], text[128];
    if (lm_json_type_of(root) != LM_JSON_OBJECT)
        return lm_error_set(LM_ERR_FORMAT, "%s is not a JSON object: not an lmcore trainer state", path);
    LM_TRY(get_string(&r, "format", format, sizeof format));
    const int v1 = strcmp(format, STATE_FORMAT_1) == 0;
    if (!v1 && strcmp(format, STATE_FORMAT) != 0)
        return lm_error_set(LM_ERR_FORMAT, "%s: \"format\" is '%s', not %s (nor %s): not an lmcore checkpoint this "
                                           "version reads",
                            path, format, STATE_FORMAT, STATE_FORMAT_1);
    LM_TRY(trainer_state_refuse_model_only(root));
    LM_TRY(get_string(&r, "model_type", text, sizeof text));
    if (strcmp(text, run->model_type) != 0)
        return lm_error_set(LM_ERR_INVALID, "the checkpoint is a '%s' model, this run trains '%s'", text,
                            run->model_type);
    int64_t vocab, n_params;
    LM_TRY(get_int(&r, "vocab_size", &vocab));
    LM_TRY(get_int(&r, "n_params", &n_params));
    if (vocab != run->vocab_size || n_params != run->n_params)
        return lm_error_set(LM_ERR_INVALID,
                            "the checkpoint has vocab_size %lld and %lld parameters, this model has vocab_size %d and "
                            "%lld parameters: use the same model settings",
                            (long long)vocab, (long long)n_params, run->vocab_size, (long long)run->n_params);
    if (v1) snprintf(text, sizeof text, "adamw");
    else LM_TRY(get_string(&r, "optimizer", text, sizeof text));
    if (strcmp(text, run->optimizer) != 0)
        return lm_error_set(LM_ERR_INVALID, "the checkpoint was trained with optimizer '%s' and this run uses '%s': "
                                            "resume with optimizer = '%s' (its state cannot become another "
                                            "optimizer's)",
                            text, run->optimizer, text);
    int64_t total, blocks, batch_size, grad_accum, seed;
    trainer_state_fields *f = out;
    LM_TRY(get_int(&r, "global_step", &f->step));
    LM_TRY(get_int(&r, "total_steps", &total));
    LM_TRY(get_int(&r, "epoch", &f->epoch));
    LM_TRY(get_int(&r, "steps_in_epoch", &f->steps_in_epoch));
    LM_TRY(get_int(&r, "cursor", &f->cursor));
    LM_TRY(get_int(&r, "train_blocks", &blocks));
    LM_TRY(get_int(&r, "batch_size", &batch_size));
    LM_TRY(get_int(&r, "grad_accum", &grad_accum));
    LM_TRY(get_int(&r, "micro_batches", &f->micro_batches));
    LM_TRY(get_int(&r, "seed", &seed));
    /* Each setting that differs, by its option name: a user who changed
     * one needs to see which, not compare two lists of five numbers. */
    char why[1024] = "";
    size_t used = 0;
#define DIFFERS(...) used += (size_t)snprintf(why + used, used < sizeof why ? sizeof why - used : 0, __VA_ARGS__)
    if ((uint64_t)blocks != run->train_blocks)
        DIFFERS("; the training data gave %lld blocks then and %llu now (the same data, tokenizer and block_size "
                "make the same blocks)",
                (long long)blocks, (unsigned long long)run->train_blocks);
    if (batch_size != run->batch_size)
        DIFFERS("; per_device_train_batch_size was %lld, now %lld", (long long)batch_size, (long long)run->batch_size);
    if (grad_accum != run->grad_accum)
        DIFFERS("; gradient_accumulation_steps was %lld, now %lld", (long long)grad_accum, (long long)run->grad_accum);
    if ((uint64_t)seed != run->seed)
        DIFFERS("; seed was %llu, now %llu", (unsigned long long)seed, (unsigned long long)run->seed);
    if (total != run->total_steps)
        DIFFERS("; the run was %lld steps long, this one %lld (max_steps, num_train_epochs): the learning-rate "
                "schedule depends on it, so give the same length; to train further, start a new run from the "
                "checkpoint's weights with init_from=CHECKPOINT_FOLDER",
                (long long)total, (long long)run->total_steps);
#undef DIFFERS
    if (used > 0)
        return lm_error_set(LM_ERR_INVALID, "the checkpoint's run differs from this one: %s", why + 2);
    int64_t world = 1;
    if (lm_json_get(root, "world_size")) LM_TRY(get_int(&r, "world_size", &world));
    if (world != run->world_size)
        return lm_error_set(LM_ERR_INVALID,
                            "the checkpoint was written by a run of %lld rank%s and this run has %lld: resume with "
                            "the same number of ranks (mpirun -np %lld), as each rank's share of the data depends "
                            "on it",
                            (long long)world, world == 1 ? "" : "s", (long long)run->world_size, (long long)world);
    LM_TRY(check_range(&r, "global_step", f->step, 0, total));
    if (f->step == total)
        return lm_error_set(LM_ERR_INVALID, "%s: the checkpoint is at global_step %lld, the last step of this run "
                                            "(total_steps %lld): that run is finished and nothing is left to train; "
                                            "load its model (lm.load_model) instead of resuming it",
                            path, (long long)f->step, (long long)total);
    LM_TRY(check_range(&r, "epoch", f->epoch, 0, run->total_epochs));
    LM_TRY(check_range(&r, "steps_in_epoch", f->steps_in_epoch, 0, run->steps_per_epoch - 1));
    /* Each epoch has steps_per_epoch steps (a checkpoint at an epoch's end
     * is written as the start of the next). */
    if (f->step != f->epoch * run->steps_per_epoch + f->steps_in_epoch)
        return lm_error_set(LM_ERR_FORMAT,
                            "%s: \"global_step\" %lld does not follow from \"epoch\" %lld and \"steps_in_epoch\" "
                            "%lld (%lld steps per epoch): the file is damaged or belongs to another run",
                            path, (long long)f->step, (long long)f->epoch, (long long)f->steps_in_epoch,
                            (long long)run->steps_per_epoch);
    const int64_t cursor = expected_cursor(run->train_blocks, run->batch_size, run->world_size, f->steps_in_epoch * grad_accum);
    if (f->cursor != cursor)
        return lm_error_set(LM_ERR_FORMAT,
                            "%s: \"cursor\" is %lld, but %lld steps into an epoch the run has taken %lld blocks: the "
                            "file is damaged (resuming would change the batches)",
                            path, (long long)f->cursor, (long long)f->steps_in_epoch, (long long)cursor);
    LM_TRY(check_range(&r, "micro_batches", f->micro_batches, f->step * grad_accum, (int64_t)1 << 61));

    LM_TRY(get_loss(&r, "loss_sum_run_bits", 0, &f->loss_sums[LM_LOSS_SUM_RUN]));
    LM_TRY(get_loss(&r, "loss_sum_epoch_bits", 0, &f->loss_sums[LM_LOSS_SUM_EPOCH]));
    f->last_log_step = f->last_eval_step = f->step;
    f->eval_loss = NAN;
    if (!v1) {
        LM_TRY(get_loss(&r, "loss_sum_log_bits", 0, &f->loss_sums[LM_LOSS_SUM_LOG]));
        LM_TRY(get_loss(&r, "loss_sum_eval_bits", 0, &f->loss_sums[LM_LOSS_SUM_EVAL]));
        LM_TRY(get_int(&r, "last_log_step", &f->last_log_step));
        LM_TRY(get_int(&r, "last_eval_step", &f->last_eval_step));
        LM_TRY(check_range(&r, "last_log_step", f->last_log_step, 0, f->step));
        LM_TRY(check_range(&r, "last_eval_step", f->last_eval_step, 0, f->step));
        LM_TRY(get_loss(&r, "eval_loss_bits", 1, &f->eval_loss));
        /* The schedule continues from the checkpoint's (a callback may have
         * changed its learning rate), as Hugging Face restores its
         * scheduler's state. */
        LM_TRY(get_string(&r, "lr_scheduler_type", text, sizeof text));
        if (strcmp(text, run->schedule) != 0)
            return lm_error_set(LM_ERR_INVALID, "the checkpoint's run used lr_scheduler_type '%s' and this one '%s': "
                                                "resume with the same schedule",
                                text, run->host_schedule ? "a Lua function" : run->schedule);
        int64_t bits;
        LM_TRY(get_int(&r, "learning_rate_bits", &bits));
        memcpy(&f->base_lr, &bits, sizeof f->base_lr);
        if (!(f->base_lr > 0) || !isfinite(f->base_lr))
            return lm_error_set(LM_ERR_FORMAT, "%s: \"learning_rate_bits\" is not a positive number", path);
    }
    return check_fit(&r);
}
