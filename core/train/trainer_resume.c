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

#define STATE_FORMAT "lmcore-trainer-state-2"
#define STATE_FORMAT_1 "lmcore-trainer-state-1"

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
        unsigned long long u = strtoull(s, &end, 10);
        if (len > 0 && end == s + len && errno == 0 && s[0] != '-') {
            memcpy(out, &u, sizeof *out);
            return LM_OK;
        }
    }
    return lm_error_set(LM_ERR_FORMAT, "%s: \"%s\" is missing or not an integer", r->path, key);
}

static lm_status get_bits(const state_reader *r, const char *key, double *out) {
    int64_t bits;
    LM_TRY(get_int(r, key, &bits));
    memcpy(out, &bits, sizeof *out);
    return LM_OK;
}

/* A string member as a NUL-terminated copy in `out` ("" when absent). */
static void get_string(const state_reader *r, const char *key, char *out, size_t cap) {
    out[0] = '\0';
    const lm_json *v = lm_json_get(r->root, key);
    if (!v || lm_json_type_of(v) != LM_JSON_STRING) return;
    size_t len;
    const char *s = lm_json_string(v, &len);
    snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), s);
}

static lm_status check_range(const state_reader *r, const char *key, int64_t value, int64_t lo, int64_t hi) {
    if (value >= lo && value <= hi) return LM_OK;
    return lm_error_set(LM_ERR_FORMAT, "%s: \"%s\" is %lld, outside [%lld, %lld] for this run: the file is damaged "
                                       "or belongs to another run",
                        r->path, key, (long long)value, (long long)lo, (long long)hi);
}

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
    state_reader r = {root, path};
    char format[64], text[128];
    get_string(&r, "format", format, sizeof format);
    const int v1 = strcmp(format, STATE_FORMAT_1) == 0;
    if (!v1 && strcmp(format, STATE_FORMAT) != 0)
        return lm_error_set(LM_ERR_FORMAT, "%s: \"format\" is '%s', not %s (nor %s): not an lmcore checkpoint this "
                                           "version reads",
                            path, format, STATE_FORMAT, STATE_FORMAT_1);
    get_string(&r, "model_type", text, sizeof text);
    if (strcmp(text, t->arch.model_type) != 0)
        return lm_error_set(LM_ERR_INVALID, "the checkpoint is a '%s' model, this run trains '%s'", text,
                            t->arch.model_type);
    int64_t vocab, n_params;
    LM_TRY(get_int(&r, "vocab_size", &vocab));
    LM_TRY(get_int(&r, "n_params", &n_params));
    if (vocab != t->arch.vocab_size || n_params != t->arch.n_params)
        return lm_error_set(LM_ERR_INVALID,
                            "the checkpoint has vocab_size %lld and %lld parameters, this model has vocab_size %d and "
                            "%lld parameters: use the same model settings",
                            (long long)vocab, (long long)n_params, t->arch.vocab_size, (long long)t->arch.n_params);
    const char *optimizer = t->parts.optimizer.plugin->name;
    if (v1) snprintf(text, sizeof text, "adamw");
    else get_string(&r, "optimizer", text, sizeof text);
    if (strcmp(text, optimizer) != 0)
        return lm_error_set(LM_ERR_INVALID, "the checkpoint was trained with optimizer '%s' and this run uses '%s': "
                                            "resume with optimizer = '%s' (its state cannot become another "
                                            "optimizer's)",
                            text, optimizer, text);
    int64_t step, total, epoch, steps_in_epoch, cursor, blocks, batch_size, grad_accum, micro, seed;
    LM_TRY(get_int(&r, "global_step", &step));
    LM_TRY(get_int(&r, "total_steps", &total));
    LM_TRY(get_int(&r, "epoch", &epoch));
    LM_TRY(get_int(&r, "steps_in_epoch", &steps_in_epoch));
    LM_TRY(get_int(&r, "cursor", &cursor));
    LM_TRY(get_int(&r, "train_blocks", &blocks));
    LM_TRY(get_int(&r, "batch_size", &batch_size));
    LM_TRY(get_int(&r, "grad_accum", &grad_accum));
    LM_TRY(get_int(&r, "micro_batches", &micro));
    LM_TRY(get_int(&r, "seed", &seed));
    if ((uint64_t)blocks != t->plan.train_blocks || batch_size != t->s.batch_size || grad_accum != t->s.grad_accum ||
        (uint64_t)seed != t->s.seed || total != t->plan.total_steps)
        return lm_error_set(LM_ERR_INVALID,
                            "the checkpoint's run had %lld training blocks, batch_size %lld, grad_accum %lld, seed "
                            "%llu and %lld steps; this run has %zu, %lld, %lld, %llu and %lld: resume with the same "
                            "data and settings",
                            (long long)blocks, (long long)batch_size, (long long)grad_accum,
                            (unsigned long long)seed, (long long)total, t->plan.train_blocks,
                            (long long)t->s.batch_size, (long long)t->s.grad_accum, (unsigned long long)t->s.seed,
                            (long long)t->plan.total_steps);
    LM_TRY(check_range(&r, "global_step", step, 0, total));
    LM_TRY(check_range(&r, "epoch", epoch, 0, t->plan.total_epochs));
    LM_TRY(check_range(&r, "steps_in_epoch", steps_in_epoch, 0, t->plan.steps_per_epoch));
    LM_TRY(check_range(&r, "cursor", cursor, 0, (int64_t)t->plan.train_blocks));
    LM_TRY(check_range(&r, "micro_batches", micro, step * grad_accum, (int64_t)1 << 61));

    lm_step_state state;
    memset(&state, 0, sizeof state);
    LM_TRY(get_bits(&r, "loss_sum_run_bits", &state.loss_sums[LM_LOSS_SUM_RUN]));
    LM_TRY(get_bits(&r, "loss_sum_epoch_bits", &state.loss_sums[LM_LOSS_SUM_EPOCH]));
    int64_t last_log = step, last_eval = step;
    double eval_loss = NAN;
    if (!v1) {
        LM_TRY(get_bits(&r, "loss_sum_log_bits", &state.loss_sums[LM_LOSS_SUM_LOG]));
        LM_TRY(get_bits(&r, "loss_sum_eval_bits", &state.loss_sums[LM_LOSS_SUM_EVAL]));
        LM_TRY(get_int(&r, "last_log_step", &last_log));
        LM_TRY(get_int(&r, "last_eval_step", &last_eval));
        LM_TRY(check_range(&r, "last_log_step", last_log, 0, step));
        LM_TRY(check_range(&r, "last_eval_step", last_eval, 0, step));
        LM_TRY(get_bits(&r, "eval_loss_bits", &eval_loss));
        /* The schedule continues from the checkpoint's (a callback may have
         * changed its learning rate), as Hugging Face restores its
         * scheduler's state. */
        get_string(&r, "lr_scheduler_type", text, sizeof text);
        const char *ours = lm_schedule_name(t->schedule.kind);
        if (strcmp(text, ours) != 0)
            return lm_error_set(LM_ERR_INVALID, "the checkpoint's run used lr_scheduler_type '%s' and this one '%s': "
                                                "resume with the same schedule",
                                text, t->plan.host_schedule ? "a Lua function" : ours);
        double base_lr;
        LM_TRY(get_bits(&r, "learning_rate_bits", &base_lr));
        if (!(base_lr > 0) || !isfinite(base_lr))
            return lm_error_set(LM_ERR_FORMAT, "%s: \"learning_rate_bits\" is not a positive number", path);
        if (base_lr != t->schedule.base_lr)
            lm_log(LM_LOG_INFO, "resume: the learning rate continues from the checkpoint's %g (this run's setting: %g)",
                   base_lr, t->schedule.base_lr);
        t->schedule.base_lr = base_lr;
    }
    LM_TRY(keep_extra(t, root));

    lm_checkpoint_parts parts = {t->parts.model, t->parts.optimizer, t->parts.tokenizer};
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
    lm_status status = lm_checkpoint_read_state(dir, &root);
    if (status != LM_OK) return status;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, LM_CHECKPOINT_STATE_FILE);
    status = resume_from(t, dir, root, path);
    lm_json_free(root);
    if (status != LM_OK && !strstr(lm_error_message(), dir)) lm_error_prefix("resume from '%s': ", dir);
    return status;
}
