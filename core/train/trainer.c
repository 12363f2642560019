/* The training step as parts (see trainer.h): batches from the shuffled
 * training blocks, forward and backward, clipping, the optimizer's update,
 * logging, evaluation, the end of the run.
 *
 * Every per-step scalar lives in an lm_step_state in the model's device
 * memory; the host uploads the few it decides (the micro-batch counter,
 * interval resets) and reads the struct back only to log, evaluate, save
 * or finish, so a step queues its work and never waits.  The arithmetic is
 * that of lmcore's earlier closed loop, operation for operation, so that a
 * seeded CPU run gives the same bits. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_io.h"
#include "schedule.h"
#include "trainer_internal.h"

static lm_status emit(lm_trainer *t, lm_event *ev) {
    if (t->rank != 0) return LM_OK; /* only rank 0 logs (docs/distributed.md) */
    ev->elapsed = t->begun ? lm_time_seconds() - t->start_time : 0.0;
    for (size_t i = 0; i < t->parts.n_loggers; i++)
        LM_TRY(t->loggers[i].plugin->vtable.logger.log(t->loggers[i].self, ev));
    return LM_OK;
}

/* Asks every logger with a flush slot to put what it has on disk: after each
 * checkpoint (so logs and checkpoint agree if the process dies) and at the
 * end of the run. */
static lm_status flush_loggers(lm_trainer *t) {
    if (t->rank != 0) return LM_OK;
    for (size_t i = 0; i < t->parts.n_loggers; i++) {
        const lm_logger_vtable *vt = &t->loggers[i].plugin->vtable.logger;
        if (vt->flush) LM_TRY(vt->flush(t->loggers[i].self));
    }
    return LM_OK;
}

lm_status lm_trainer_message(lm_trainer *t, lm_log_level level, const char *text) {
    lm_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = LM_EVENT_MESSAGE;
    ev.level = (int32_t)level;
    ev.text = text;
    return emit(t, &ev);
}

lm_status trainer_upload_field(lm_trainer *t, void *field_in_state, const void *value, size_t bytes) {
    return t->dev->ops->upload(t->dev, field_in_state, value, bytes);
}

static const char *bad_what_name(int32_t what) {
    return what == LM_BAD_LOSS ? "the loss" : what == LM_BAD_GRAD_NORM ? "the gradient norm" : "a value";
}

static const char *non_finite_name(float v) { return isnan(v) ? "NaN" : v > 0 ? "infinite" : "-infinite"; }

lm_status trainer_read_state(lm_trainer *t, lm_step_state *state) {
    LM_TRY(t->dev->ops->download(t->dev, state, t->state, sizeof *state));
    if (state->bad_step == 0) return LM_OK;
    return lm_error_set(LM_ERR_NUMERIC,
                        "training step %lld: %s is %s: training diverged; nothing was updated from that step on "
                        "(lower the learning rate, check the data, or use fp32)",
                        (long long)state->bad_step, bad_what_name(state->bad_what), non_finite_name(state->bad_value));
}

lm_status lm_trainer_check(lm_trainer *t) {
    lm_step_state state;
    return trainer_read_state(t, &state);
}

/* ---- creation ----------------------------------------------------------------- */

/* The optimizer's settings as training_args.json reports them (torch's
 * AdamW defaults for what it does not have). */
static lm_status read_optimizer_settings(lm_trainer *t) {
    trainer_settings *s = &t->s;
    s->weight_decay = 0.0;
    s->beta1 = 0.9;
    s->beta2 = 0.999;
    s->eps = 1e-8;
    lm_json *root = NULL;
    LM_TRY(trainer_optimizer_settings(t, &root));
    const lm_json *v = lm_json_get(root, "weight_decay");
    if (v && lm_json_type_of(v) == LM_JSON_NUMBER) s->weight_decay = lm_json_number(v);
    v = lm_json_get(root, "eps");
    if (v && lm_json_type_of(v) == LM_JSON_NUMBER) s->eps = lm_json_number(v);
    v = lm_json_get(root, "betas");
    if (v && lm_json_type_of(v) == LM_JSON_ARRAY && lm_json_size(v) == 2) {
        s->beta1 = lm_json_number(lm_json_at(v, 0));
        s->beta2 = lm_json_number(lm_json_at(v, 1));
    }
    lm_json_free(root);
    return LM_OK;
}

/* A fresh step state on the device: the run's seed, schedule and clipping;
 * everything else zero. */
static lm_status upload_fresh_state(lm_trainer *t) {
    lm_step_state fresh;
    memset(&fresh, 0, sizeof fresh);
    fresh.seed = t->s.seed;
    fresh.schedule = t->schedule;
    fresh.max_grad_norm = t->s.max_grad_norm;
    fresh.lr = t->schedule.base_lr;
    fresh.clip_scale = 1.0f;
    fresh.grad_norm = NAN;
    return t->dev->ops->upload(t->dev, t->state, &fresh, sizeof fresh);
}

lm_status lm_trainer_create(lm_trainer **out, lm_config *settings, lm_config *schedule_kwargs, int host_schedule,
                            const lm_trainer_parts *parts) {
    *out = NULL;
    lm_trainer *t = calloc(1, sizeof *t);
    if (!t) return lm_error_set(LM_ERR_NOMEM, "out of memory creating the trainer");
    lm_status status = LM_OK;
    t->parts = *parts;
    t->parts.loggers = NULL;
    if (parts->n_loggers) {
        t->loggers = calloc(parts->n_loggers, sizeof *t->loggers);
        if (!t->loggers) {
            status = lm_error_set(LM_ERR_NOMEM, "out of memory creating the trainer");
            goto fail;
        }
        memcpy(t->loggers, parts->loggers, parts->n_loggers * sizeof *t->loggers);
        t->parts.loggers = t->loggers;
    }
    t->last_eval_loss = NAN;
    t->resumed_extra = calloc(1, 1);
    if (!t->resumed_extra) {
        status = lm_error_set(LM_ERR_NOMEM, "out of memory creating the trainer");
        goto fail;
    }
    LM_CHECK(trainer_dist_init(t, parts));
    LM_CHECK(trainer_read_settings(t, settings, schedule_kwargs, host_schedule));
    /* Two runs saving into one checkpoint_dir would prune and rename each
     * other's checkpoints: the second is refused here, before any work.
     * Across ranks only rank 0 writes checkpoints, so only it locks. */
    if (t->plan.has_checkpoint_dir && t->rank == 0)
        LM_CHECK(lm_dir_lock_acquire(t->s.checkpoint_dir, "checkpoint_dir", &t->checkpoint_lock));
    LM_CHECK(trainer_arch(t)->info(parts->model.self, &t->arch));
    LM_CHECK(trainer_arch(t)->parameters(parts->model.self, &t->params));
    /* The step state lives on the device: hold it until that is freed. */
    t->dev = t->params.device;
    t->dev->ops->retain(t->dev);

    lm_vocab_info vocab;
    memset(&vocab, 0, sizeof vocab);
    if (parts->tokenizer.plugin) LM_CHECK(parts->tokenizer.plugin->vtable.tokenizer.info(parts->tokenizer.self, &vocab));
    if (parts->tokenizer.plugin) {
        char fix[96];
        snprintf(fix, sizeof fix, "set the model's vocab_size to at least %d", vocab.vocab_size);
        LM_CHECK(lm_vocab_check(&vocab, t->arch.vocab_size, fix));
    }
    const int32_t T = t->plan.block_size;
    if (T > t->arch.max_positions) {
        status = lm_error_set(LM_ERR_INVALID,
                              "block_size %d is larger than the model's %d positions: lower block_size or raise "
                              "the model's n_positions / max_position_embeddings",
                              T, t->arch.max_positions);
        goto fail;
    }
    if (parts->eval && lm_blocks_block_size(parts->eval) != T) {
        status = lm_error_set(LM_ERR_INVALID, "training blocks have %d tokens but evaluation blocks %d", T,
                              lm_blocks_block_size(parts->eval));
        goto fail;
    }
    LM_CHECK(parts->objective.plugin->vtable.objective.bind(parts->objective.self, &t->arch,
                                                            parts->tokenizer.plugin ? &vocab : NULL));
    /* An optimizer's messages name it (docs/plugin-abi.md). */
    LM_CHECK(trainer_dist_bind_optimizer(t)); /* its parameters, or this rank's ZeRO-1 shard */
    LM_CHECK(read_optimizer_settings(t));

    int64_t B = t->s.batch_size > t->s.eval_batch_size ? t->s.batch_size : t->s.eval_batch_size;
    LM_CHECK(lm_alloc((void **)&t->tokens, (size_t)B * (size_t)T * sizeof(int32_t), "batch tokens"));
    LM_CHECK(lm_alloc((void **)&t->order, t->plan.train_blocks * sizeof(size_t), "the shuffle order"));
    LM_CHECK(lm_sysmetrics_create(&t->sysmetrics, NULL, 0));
    LM_CHECK(t->dev->ops->alloc(t->dev, (void **)&t->state, sizeof *t->state, "the training step's state"));
    LM_CHECK(t->dev->ops->alloc(t->dev, (void **)&t->eval_state, sizeof *t->eval_state, "the evaluation's state"));
    LM_CHECK(upload_fresh_state(t));
    LM_CHECK(trainer_dist_setup(t));
    if (t->s.resume[0]) LM_CHECK(trainer_resume(t, t->s.resume));
    else trainer_shuffle(t, 0);
    /* A resumed run's log and evaluation intervals continue the checkpoint's. */
    t->first_step = t->step;
    trainer_graphs_setup(t);
    *out = t;
    return LM_OK;
fail:
    lm_trainer_destroy(t);
    return status;
}

void lm_trainer_destroy(lm_trainer *t) {
    if (!t) return;
    if (t->dev) {
        trainer_graphs_destroy(t); /* they read the state: before it goes */
        if (t->state) t->dev->ops->free(t->dev, t->state);
        if (t->eval_state) t->dev->ops->free(t->dev, t->eval_state);
        t->dev->ops->release(t->dev);
    }
    lm_free(t->tokens);
    lm_free(t->order);
    lm_sysmetrics_destroy(t->sysmetrics);
    free(t->shard_start);
    free(t->shard_descs);
    lm_grad_buckets_free(t->buckets);
    free(t->loggers);
    free(t->resumed_extra);
    lm_dir_lock_release(t->checkpoint_lock);
    free(t);
}

/* ---- accessors ------------------------------------------------------------------ */

const lm_trainer_plan *lm_trainer_plan_of(const lm_trainer *t) { return &t->plan; }
int64_t lm_trainer_step(const lm_trainer *t) { return t->step; }
double lm_trainer_epoch(const lm_trainer *t) { return (double)t->step / (double)t->plan.steps_per_epoch; }
int lm_trainer_epoch_done(const lm_trainer *t) {
    return t->step > 0 && t->micro_in_step == 0 && t->steps_in_epoch == t->plan.steps_per_epoch;
}
int64_t lm_trainer_micro_batches_in_step(const lm_trainer *t) { return t->micro_in_step; }
const char *lm_trainer_resumed_from(const lm_trainer *t) { return t->resumed_from; }
const char *lm_trainer_resumed_extra(const lm_trainer *t) { return t->resumed_extra; }
const char *lm_trainer_checkpoint_dir(const lm_trainer *t) { return t->s.checkpoint_dir; }
uint64_t lm_trainer_batch_serial(const lm_trainer *t) { return t->batch_serial; }

lm_status lm_trainer_device_counters(lm_trainer *t, lm_device_counters *out) {
    t->dev->ops->counters(t->dev, out);
    return LM_OK;
}

double lm_trainer_learning_rate(const lm_trainer *t) { return lm_schedule_lr(&t->schedule, t->step); }

lm_status lm_trainer_set_learning_rate(lm_trainer *t, double base_lr) {
    if (t->plan.host_schedule)
        return lm_error_set(LM_ERR_INVALID, "set_learning_rate: the schedule is a Lua function, which gives the "
                                            "learning rate itself: change what it returns");
    if (!(base_lr > 0) || !isfinite(base_lr))
        return lm_error_set(LM_ERR_INVALID, "set_learning_rate: the learning rate must be a positive number, got %g",
                            base_lr);
    if (t->schedule.kind == LM_SCHEDULE_POLYNOMIAL && !(base_lr > t->schedule.lr_end))
        return lm_error_set(LM_ERR_INVALID, "set_learning_rate: the polynomial schedule decays to lr_end (%g): the "
                                            "learning rate must stay above it, got %g",
                            t->schedule.lr_end, base_lr);
    t->schedule.base_lr = base_lr;
    return trainer_upload_field(t, &t->state->schedule.base_lr, &base_lr, sizeof base_lr);
}

/* ---- the step --------------------------------------------------------------------- */

static lm_status begin_run(lm_trainer *t) {
    t->begun = 1;
    t->start_time = t->log_time = lm_time_seconds();
    char ranks[192] = "";
    if (t->comm.plugin)
        snprintf(ranks, sizeof ranks, ", data parallel over %d rank%s (communicator %s)", t->world,
                 t->world == 1 ? "" : "s", t->comm.plugin->name);
    if (t->zero_stage && t->shard_start)
        snprintf(ranks + strlen(ranks), sizeof ranks - strlen(ranks),
                 ", ZeRO-1: rank 0's optimizer state covers %zu of the %zu parameters", t->shard_start[1],
                 t->params.n_params);
    char description[768];
    snprintf(description, sizeof description,
             "%s (%lld parameters) on %s, %zu training blocks of %d tokens, batch %lld x %lld accumulation, "
             "%lld steps, optimizer %s, %s schedule%s",
             t->arch.model_type, (long long)t->arch.n_params, t->arch.device, t->plan.train_blocks,
             t->plan.block_size, (long long)t->s.batch_size, (long long)t->s.grad_accum,
             (long long)t->plan.total_steps, t->parts.optimizer.plugin->name,
             t->plan.host_schedule ? "a Lua function" : t->s.schedule, ranks);
    lm_scalar scalars[] = {{"n_params", (double)t->arch.n_params},
                           {"train_blocks", (double)t->plan.train_blocks},
                           {"eval_blocks", t->parts.eval ? (double)lm_blocks_count(t->parts.eval) : 0},
                           {"block_size", t->plan.block_size},
                           {"batch_size", (double)t->s.batch_size}};
    lm_event ev = {LM_EVENT_RUN_BEGIN, 0, t->step, t->plan.total_steps, lm_trainer_epoch(t),
                   (int32_t)t->plan.total_epochs, 0, description, scalars, 5};
    LM_TRY(emit(t, &ev));
    if (t->resumed_from[0])
        /* The epochs done, as the progress bar counts them (0.21 after a
         * fifth of the first): "epoch 1" read as one epoch done. */
        lm_log(LM_LOG_INFO, "resuming from %s at step %lld (epoch %.2f)", t->resumed_from, (long long)t->step,
               lm_trainer_epoch(t));
    return trainer_arch(t)->set_training(t->parts.model.self, 1);
}

/* A batch next_batch() handed out has not gone through forward_backward():
 * it belongs to the objective until its next make_batch, so nothing may
 * make another batch (next_batch, evaluate) or end the step meanwhile. */
static lm_status refuse_pending_batch(const lm_trainer *t, const char *what) {
    if (t->batch && !t->batch_used)
        return lm_error_set(LM_ERR_INVALID, "%s: the batch next_batch() returned has not gone through "
                                            "forward_backward() yet: pass it to forward_backward() first",
                            what);
    return LM_OK;
}

lm_status lm_trainer_next_batch(lm_trainer *t, const lm_batch **batch, uint64_t *serial) {
    *batch = NULL;
    if (t->finished) return lm_error_set(LM_ERR_INVALID, "next_batch: the run is finished");
    LM_TRY(refuse_pending_batch(t, "next_batch"));
    if (t->step >= t->plan.total_steps && t->micro_in_step == 0)
        return lm_error_set(LM_ERR_INVALID, "next_batch: all %lld steps of the run are done",
                            (long long)t->plan.total_steps);
    if (t->micro_in_step >= t->s.grad_accum)
        return lm_error_set(LM_ERR_INVALID, "next_batch: this step already has its %lld micro-batches "
                                            "(gradient_accumulation_steps): call optimizer_step() first",
                            (long long)t->s.grad_accum);
    if (!t->begun) LM_TRY(begin_run(t));
    if (t->micro_in_step == 0 && t->steps_in_epoch >= t->plan.steps_per_epoch) {
        t->epoch++;
        t->steps_in_epoch = 0;
        t->cursor = 0;
        trainer_shuffle(t, t->epoch);
        LM_TRY(trainer_upload_field(t, &t->state->loss_sums[LM_LOSS_SUM_EPOCH], &(double){0.0}, sizeof(double)));
    }
    const size_t n_train = t->plan.train_blocks;
    /* Wraps only when an epoch has fewer batches than grad_accum (its one
     * step then takes blocks of the same shuffled order again). */
    if (t->cursor >= n_train) t->cursor = 0;
    const int32_t T = t->plan.block_size;
    int32_t B = (int32_t)((n_train - t->cursor) < (size_t)t->s.batch_size ? (n_train - t->cursor)
                                                                            : (size_t)t->s.batch_size);
    size_t first = t->cursor, taken = (size_t)B;
    uint64_t index = t->micro_batches;
    if (t->world > 1) {
        /* Rank r's shard of the global batch, the next world x batch_size
         * blocks of the shared order: blocks [r B, (r + 1) B).  The plan
         * counts whole global batches only (an epoch's remainder is
         * dropped), so every rank's shard is full.  Each rank's batch has
         * its own index (dropout, MLM masks). */
        taken = (size_t)t->s.batch_size * (size_t)t->world;
        if (t->cursor + taken > n_train) t->cursor = 0;
        B = (int32_t)t->s.batch_size;
        first = t->cursor + (size_t)t->rank * (size_t)B;
        index = t->micro_batches * (uint64_t)t->world + (uint64_t)t->rank;
    }
    for (int32_t b = 0; b < B; b++) lm_blocks_get(t->parts.train, t->order[first + (size_t)b], t->tokens + b * T);
    const lm_batch *made = NULL;
    LM_TRY(t->parts.objective.plugin->vtable.objective.make_batch(t->parts.objective.self, t->tokens, B, T, index,
                                                                  &made));
    t->batch = made;
    t->batch_index = index;
    t->batch_serial++;
    t->batch_used = 0;
    t->micro_batches++;
    t->micro_in_step++;
    t->cursor += taken;
    t->tokens_since_log += (uint64_t)taken * (uint64_t)T; /* every rank's: the global throughput */
    *batch = made;
    *serial = t->batch_serial;
    return LM_OK;
}

lm_status lm_trainer_forward_backward(lm_trainer *t, const lm_batch *batch, uint64_t serial) {
    if (!batch || batch != t->batch || serial != t->batch_serial)
        return lm_error_set(LM_ERR_INVALID, "forward_backward: this batch is not the trainer's latest: pass the batch "
                                            "next_batch() just returned");
    if (t->batch_used)
        return lm_error_set(LM_ERR_INVALID, "forward_backward: this batch was already used: get the next one with "
                                            "next_batch()");
    t->batch_used = 1;
    /* MLM can select no token in a tiny batch: nothing to learn from it
     * (Hugging Face would produce a NaN loss). */
    if (batch->n_targets == 0) return LM_OK;
    LM_TRY(trainer_upload_field(t, &t->state->micro_batch, &t->batch_index, sizeof t->batch_index));
    const lm_status status =
        t->graphs.enabled ? trainer_graph_micro_batch(t, batch) : trainer_run_micro_batch(t, batch);
    if (status != LM_OK) {
        lm_error_prefix("training step %lld: ", (long long)t->step + 1);
        return status;
    }
    t->grads_written = 1;
    return LM_OK;
}

/* A step whose micro-batches all had nothing to predict still updates (the
 * weight decay), from gradients of zero, as the earlier loop did. */
static void ensure_gradients(lm_trainer *t) {
    if (t->grads_written) return;
    t->dev->ops->zero(t->dev, t->params.grads, t->params.n_params * lm_dtype_size((lm_dtype)t->params.grad_dtype));
    t->grads_written = 1;
}

lm_status lm_trainer_clip_grad_norm(lm_trainer *t) {
    ensure_gradients(t);
    if (t->comm.plugin) LM_TRY(trainer_dist_reduce_gradients(t)); /* the norm of the averaged gradients */
    return t->dev->ops->step_clip(t->dev, t->state, t->params.grads, (lm_dtype)t->params.grad_dtype,
                                  t->params.n_params);
}

lm_status lm_trainer_optimizer_step(lm_trainer *t, const double *host_lr) {
    LM_TRY(refuse_pending_batch(t, "optimizer_step"));
    if (t->micro_in_step != t->s.grad_accum)
        return lm_error_set(LM_ERR_INVALID, "optimizer_step: this step has %lld of its %lld micro-batches "
                                            "(gradient_accumulation_steps): call next_batch() and "
                                            "forward_backward() for the rest first",
                            (long long)t->micro_in_step, (long long)t->s.grad_accum);
    const int zeroes_gradients = !t->grads_written; /* host work inside the step: not a graph's */
    ensure_gradients(t);
    if (t->comm.plugin) LM_TRY(trainer_dist_reduce_gradients(t));
    if (t->plan.host_schedule) {
        if (!host_lr)
            return lm_error_set(LM_ERR_INTERNAL, "optimizer_step: the schedule is the caller's but no learning rate "
                                                 "was given");
        if (!(*host_lr >= 0) || !isfinite(*host_lr))
            return lm_error_set(LM_ERR_INVALID, "lr_scheduler_type: the schedule function returned %g at step %lld: "
                                                "it must return a finite learning rate >= 0",
                                *host_lr, (long long)t->step);
        LM_TRY(trainer_upload_field(t, &t->state->lr, host_lr, sizeof *host_lr));
    }
    LM_TRY(t->graphs.enabled ? trainer_graph_update(t, zeroes_gradients) : trainer_run_update(t, NULL));
    t->step++;
    t->steps_in_epoch++;
    t->micro_in_step = 0;
    t->grads_written = 0;
    t->grads_reduced = 0;
    lm_event ev = {LM_EVENT_PROGRESS, 0, t->step, t->plan.total_steps, lm_trainer_epoch(t),
                   (int32_t)t->plan.total_epochs, 0, NULL, NULL, 0};
    return emit(t, &ev);
}

/* ---- reading the device -------------------------------------------------------------- */

lm_status lm_trainer_log(lm_trainer *t, lm_train_logs *out) {
    memset(out, 0, sizeof *out);
    lm_step_state state;
    LM_TRY(trainer_read_state(t, &state));
    const double now = lm_time_seconds();
    const int64_t steps = t->step - t->last_log_step;
    /* The mean over ranks of each rank's loss: the loss of the global batch. */
    LM_TRY(trainer_dist_reduce(t, &state.loss_sums[LM_LOSS_SUM_LOG], 1, LM_REDUCE_AVG));
    out->step = t->step;
    out->epoch = lm_trainer_epoch(t);
    out->loss = steps > 0 ? state.loss_sums[LM_LOSS_SUM_LOG] / (double)steps : NAN;
    out->learning_rate = state.lr;
    out->grad_norm = state.grad_norm;
    out->tokens_per_second = now > t->log_time ? (double)t->tokens_since_log / (now - t->log_time) : 0.0;
    if (steps == 0) return LM_OK; /* nothing new since the last log */
    size_t n = 0;
    if (lm_sysmetrics_sample(t->sysmetrics, t->system, LM_SYSMETRICS_MAX, &n) == LM_OK) t->n_system = n;
    lm_scalar scalars[4 + LM_SYSMETRICS_MAX] = {{"loss", out->loss},
                                                {"learning_rate", out->learning_rate},
                                                {"grad_norm", out->grad_norm},
                                                {"tokens_per_second", out->tokens_per_second}};
    memcpy(scalars + 4, t->system, t->n_system * sizeof *scalars);
    lm_event ev = {LM_EVENT_STEP, 0, t->step, t->plan.total_steps, out->epoch, (int32_t)t->plan.total_epochs,
                   0, NULL, scalars, 4 + t->n_system};
    LM_TRY(emit(t, &ev));
    t->last_log_step = t->step;
    t->log_time = now;
    t->tokens_since_log = 0;
    return trainer_upload_field(t, &t->state->loss_sums[LM_LOSS_SUM_LOG], &(double){0.0}, sizeof(double));
}

lm_status lm_trainer_evaluate(lm_trainer *t, const lm_blocks *blocks, int report, lm_eval_result *out) {
    memset(out, 0, sizeof *out);
    out->loss = out->perplexity = out->train_loss = NAN;
    if (!blocks) blocks = t->parts.eval;
    if (!blocks) return lm_error_set(LM_ERR_INVALID, "evaluate: the trainer has no eval blocks: pass some");
    LM_TRY(refuse_pending_batch(t, "evaluate")); /* its batches would overwrite the pending one */
    size_t n = lm_blocks_count(blocks);
    if (n == 0) return lm_error_set(LM_ERR_INVALID, "the evaluation split gave no block: use more text");
    /* The batch buffers were sized for the training blocks. */
    if (lm_blocks_block_size(blocks) != t->plan.block_size)
        return lm_error_set(LM_ERR_INVALID,
                            "evaluate: these blocks have %d tokens but the trainer's training blocks %d: make them "
                            "with the same block_size",
                            lm_blocks_block_size(blocks), t->plan.block_size);
    /* An evaluation reported before the first step (eval_on_start) comes
     * after the run's begin in the logs, as every other event does. */
    if (report && !t->begun) LM_TRY(begin_run(t));
    const double start = lm_time_seconds();
    const lm_architecture_vtable *arch = trainer_arch(t);
    LM_TRY(arch->set_training(t->parts.model.self, 0));
    t->dev->ops->zero(t->dev, t->eval_state, sizeof *t->eval_state);
    /* Evaluation masks (MLM) come from their own counter range so that
     * evaluating does not change the training stream. */
    const uint64_t counter = (1ull << 62) + t->micro_batches;
    const int32_t T = t->plan.block_size;
    size_t counted = 0, batches = 0, index = 0;
    lm_status status = LM_OK;
    /* The bar's end is what this evaluation will read: eval_max_batches caps it. */
    size_t planned = n;
    if (t->s.eval_max_batches > 0 && (size_t)t->s.eval_max_batches * (size_t)t->s.eval_batch_size < n)
        planned = (size_t)t->s.eval_max_batches * (size_t)t->s.eval_batch_size;
    lm_progress *progress = lm_progress_begin("evaluating", planned);
    for (size_t first = 0; first < n; first += (size_t)t->s.eval_batch_size, index++) {
        /* Across ranks, batch i is rank (i mod world)'s and eval_max_batches
         * counts every rank's. */
        if (t->s.eval_max_batches > 0 &&
            (t->world > 1 ? index / (size_t)t->world : batches) >= (size_t)t->s.eval_max_batches)
            break;
        if (t->world > 1 && (int)(index % (size_t)t->world) != t->rank) continue;
        int32_t B = (int32_t)((n - first) < (size_t)t->s.eval_batch_size ? (n - first) : (size_t)t->s.eval_batch_size);
        for (int32_t b = 0; b < B; b++) lm_blocks_get(blocks, first + (size_t)b, t->tokens + b * T);
        const lm_batch *batch = NULL;
        LM_CHECK(t->parts.objective.plugin->vtable.objective.make_batch(t->parts.objective.self, t->tokens, B, T,
                                                                        counter + index, &batch));
        if (batch->n_targets == 0) continue; /* MLM may select nothing in a tiny batch */
        LM_CHECK(arch->forward(t->parts.model.self, batch, t->eval_state));
        /* Hugging Face repeats each batch's mean loss batch-size times and
         * averages: a mean over batches weighted by their size. */
        LM_CHECK(t->dev->ops->step_micro_batch_end(t->dev, t->eval_state, (double)B, 1.0, 1));
        counted += (size_t)B;
        batches++;
        lm_progress_update(progress, first + (size_t)B);
        if (lm_interrupted()) {
            status = lm_error_set(LM_ERR_INTERRUPTED, "interrupted during evaluation");
            goto fail;
        }
    }
    lm_step_state eval;
    LM_CHECK(t->dev->ops->download(t->dev, &eval, t->eval_state, sizeof eval));
    if (t->world > 1) {
        /* Every rank's sums: the loss over all the batches evaluated. */
        double sums[3] = {eval.loss_sum, (double)counted, eval.bad_step != 0};
        LM_CHECK(trainer_dist_reduce(t, sums, 3, LM_REDUCE_SUM));
        eval.loss_sum = sums[0];
        counted = (size_t)sums[1];
        if (sums[2] != 0 && eval.bad_step == 0) {
            eval.bad_step = 1;
            eval.bad_value = NAN;
        }
    }
    if (eval.bad_step != 0) {
        status = lm_error_set(LM_ERR_NUMERIC, "evaluation at step %lld: the loss is %s: the model diverged (lower "
                                              "the learning rate, check the data, or use fp32)",
                              (long long)t->step, non_finite_name(eval.bad_value));
        goto fail;
    }
    out->loss = counted ? eval.loss_sum / (double)counted : NAN;
    out->perplexity = exp(out->loss);
    out->step = t->step;
    out->epoch = lm_trainer_epoch(t);
    out->runtime = lm_time_seconds() - start;
    out->samples_per_second = out->runtime > 0 ? (double)counted / out->runtime : 0.0;
fail:
    lm_progress_end(progress);
    lm_status restore = arch->set_training(t->parts.model.self, 1);
    if (status != LM_OK) return status;
    LM_TRY(restore);
    if (!report) return LM_OK;

    lm_step_state state;
    LM_TRY(trainer_read_state(t, &state));
    const int64_t steps = t->step - t->last_eval_step;
    LM_TRY(trainer_dist_reduce(t, &state.loss_sums[LM_LOSS_SUM_EVAL], 1, LM_REDUCE_AVG));
    out->train_loss = steps > 0 ? state.loss_sums[LM_LOSS_SUM_EVAL] / (double)steps : NAN;
    t->last_eval_loss = out->loss;
    t->last_eval_step = t->step;
    LM_TRY(trainer_upload_field(t, &t->state->loss_sums[LM_LOSS_SUM_EVAL], &(double){0.0}, sizeof(double)));
    lm_scalar scalars[] = {{"train_loss", out->train_loss},  {"eval_loss", out->loss},
                           {"perplexity", out->perplexity}, {"epoch_index", out->epoch},
                           {"eval_runtime", out->runtime},  {"eval_samples_per_second", out->samples_per_second}};
    lm_event ev = {LM_EVENT_EVAL, 0, t->step, t->plan.total_steps, out->epoch, (int32_t)t->plan.total_epochs,
                   0, NULL, scalars, sizeof scalars / sizeof *scalars};
    return emit(t, &ev);
}

lm_status lm_trainer_save(lm_trainer *t, const char *extra_json, const char *protect, char *dir, size_t cap) {
    if (dir && cap) dir[0] = '\0';
    if (!t->s.checkpoint_dir[0])
        return lm_error_set(LM_ERR_INVALID, "save: the trainer has no checkpoint_dir to save into");
    if (t->micro_in_step != 0)
        return lm_error_set(LM_ERR_INVALID, "save: a step is half done (%lld of %lld micro-batches): save between "
                                            "steps",
                            (long long)t->micro_in_step, (long long)t->s.grad_accum);
    lm_step_state state;
    LM_TRY(trainer_read_state(t, &state));
    /* ZeRO-1: every rank's shard of the optimizer state, sent to rank 0 as it writes */
    lm_checkpoint_parts parts = {t->parts.model, t->parts.optimizer, t->parts.tokenizer,
                                 trainer_dist_checkpoint_shards(t), t->plan.save_only_model};
    if (t->rank != 0) {
        /* Rank 0 writes the checkpoint (every rank holds the same state,
         * or under ZeRO-1 sends its shard of the optimizer's); the others
         * wait until it is complete, as one of them may read it next (the
         * best model at the end). */
        if (dir && cap) snprintf(dir, cap, "%s/checkpoint-%lld", t->s.checkpoint_dir, (long long)t->step);
        if (parts.shards && !parts.model_only) LM_TRY(lm_checkpoint_send_optimizer(&parts));
        return trainer_dist_barrier(t);
    }
    lm_buffer state_json = {0}, args = {0};
    lm_status status = trainer_state_json(t, &state, extra_json, &state_json);
    if (status == LM_OK) status = lm_trainer_args_json(t, &args);
    if (status == LM_OK)
        status = lm_checkpoint_save(t->s.checkpoint_dir, t->step, (int)t->plan.save_total_limit, protect, &parts,
                                    state_json.data, args.data, dir, cap);
    lm_buffer_free(&state_json);
    lm_buffer_free(&args);
    if (status == LM_OK) status = flush_loggers(t);
    if (status == LM_OK) status = trainer_dist_barrier(t);
    return status;
}

lm_status lm_trainer_finish(lm_trainer *t, lm_train_result *r) {
    memset(r, 0, sizeof *r);
    r->eval_loss = r->perplexity = NAN;
    if (t->finished) return lm_error_set(LM_ERR_INVALID, "finish: the run is already finished");
    if (!t->begun) LM_TRY(begin_run(t));
    lm_step_state state;
    LM_TRY(trainer_read_state(t, &state));
    t->finished = 1;
    const int64_t steps = t->step - t->first_step;
    LM_TRY(trainer_dist_reduce(t, &state.loss_sums[LM_LOSS_SUM_RUN], 1, LM_REDUCE_AVG));
    r->steps = t->step;
    r->epochs = lm_trainer_epoch(t);
    r->runtime = lm_time_seconds() - t->start_time;
    r->train_loss = t->step ? state.loss_sums[LM_LOSS_SUM_RUN] / (double)t->step : NAN;
    r->eval_loss = t->last_eval_loss;
    r->perplexity = exp(t->last_eval_loss);
    /* Throughput of this process's steps (a resumed run did the others). */
    double samples = (double)steps * (double)t->s.batch_size * (double)t->s.grad_accum * (double)t->world;
    r->samples_per_second = r->runtime > 0 ? samples / r->runtime : 0;
    r->steps_per_second = r->runtime > 0 ? (double)steps / r->runtime : 0;
    r->tokens_per_second = r->samples_per_second * t->plan.block_size;
    lm_scalar scalars[] = {{"train_runtime", r->runtime},
                           {"train_samples_per_second", r->samples_per_second},
                           {"train_steps_per_second", r->steps_per_second},
                           {"train_loss", r->train_loss},
                           {"eval_loss", r->eval_loss},
                           {"perplexity", r->perplexity}};
    lm_event ev = {LM_EVENT_RUN_END, 0, t->step, t->plan.total_steps, r->epochs, (int32_t)t->plan.total_epochs, 0,
                   NULL, scalars, 6};
    LM_TRY(emit(t, &ev));
    return flush_loggers(t);
}
