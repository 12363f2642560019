/* The training loop.  Same recipe as the Hugging Face Trainer: AdamW with
 * decoupled weight decay (not on biases and LayerNorm weights: the model
 * marks them), linear decay to 0 after optional warmup, clipping at global
 * norm 1.0, training blocks reshuffled every epoch from the seed, an
 * evaluation after every epoch, perplexity = exp(eval loss).  Every random
 * choice is a function of (seed, counters), so a seeded CPU run is
 * bit-for-bit reproducible. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "sysmetrics.h"
#include "trainer.h"

struct lm_trainer {
    lm_handle model, objective, tokenizer;
    lm_handle *loggers;
    size_t n_loggers;
    const lm_blocks *train, *eval;
    lm_arch_info arch;
    /* settings */
    double lr, weight_decay, beta1, beta2, eps, max_grad_norm;
    int64_t epochs, max_steps, batch_size, eval_batch_size, grad_accum, warmup_steps, log_every, eval_max_batches;
    uint64_t seed;
    int linear_schedule, eval_every_epoch;
    /* checkpoints */
    char checkpoint_dir[1024], resume[1024];
    int64_t save_every, keep_last;
    /* buffers for one batch */
    int32_t *tokens, *input_ids, *labels, *attention_mask, *token_type_ids;
    size_t *order;
    uint64_t micro_batches; /* counts every batch made, for dropout and masking */
    double start_time;
    /* System metrics, sampled every log_every steps and repeated in every
     * STEP event in between (loggers with fixed columns see them all). */
    lm_sysmetrics *sysmetrics;
    lm_scalar system[LM_SYSMETRICS_MAX];
    size_t n_system;
    int system_sampled;
};

static const lm_architecture_vtable *arch_of(const lm_trainer *t) { return &t->model.plugin->vtable.architecture; }

lm_status lm_trainer_create(lm_trainer **out, lm_config *cfg, lm_handle model, lm_handle objective,
                            lm_handle tokenizer, const lm_vocab_info *vocab, const lm_blocks *train, const lm_blocks *eval,
                            const lm_handle *loggers, size_t n_loggers) {
    *out = NULL;
    lm_trainer *t = calloc(1, sizeof *t);
    if (!t) return lm_error_set(LM_ERR_NOMEM, "out of memory creating the trainer");
    lm_status status = LM_OK;
    t->model = model;
    t->objective = objective;
    t->tokenizer = tokenizer;
    t->train = train;
    t->eval = eval;
    t->lr = lm_config_number(cfg, "lr", 2e-5);
    t->weight_decay = lm_config_number(cfg, "weight_decay", 0.01);
    t->beta1 = lm_config_number(cfg, "beta1", 0.9);
    t->beta2 = lm_config_number(cfg, "beta2", 0.999);
    t->eps = lm_config_number(cfg, "eps", 1e-8);
    t->max_grad_norm = lm_config_number(cfg, "max_grad_norm", 1.0);
    t->epochs = lm_config_int(cfg, "epochs", 3);
    t->max_steps = lm_config_int(cfg, "max_steps", -1);
    t->batch_size = lm_config_int(cfg, "batch_size", 8);
    t->eval_batch_size = lm_config_int(cfg, "eval_batch_size", t->batch_size);
    t->grad_accum = lm_config_int(cfg, "grad_accum", 1);
    t->warmup_steps = lm_config_int(cfg, "warmup_steps", 0);
    t->log_every = lm_config_int(cfg, "log_every", 50);
    t->eval_max_batches = lm_config_int(cfg, "eval_max_batches", 0);
    t->seed = (uint64_t)lm_config_int(cfg, "seed", 42);
    const char *schedule = lm_config_string(cfg, "schedule", "linear");
    t->eval_every_epoch = lm_config_bool(cfg, "eval_every_epoch", 1);
    const char *checkpoint_dir = lm_config_string(cfg, "checkpoint_dir", "");
    const char *resume = lm_config_string(cfg, "resume", "");
    t->save_every = lm_config_int(cfg, "save_every", 0);
    t->keep_last = lm_config_int(cfg, "keep_last", 2);
    LM_CHECK(lm_config_validate(cfg));
    if (strlen(checkpoint_dir) >= sizeof t->checkpoint_dir || strlen(resume) >= sizeof t->resume) {
        status = lm_error_set(LM_ERR_INVALID, "trainer: checkpoint_dir or resume path is too long");
        goto fail;
    }
    snprintf(t->checkpoint_dir, sizeof t->checkpoint_dir, "%s", checkpoint_dir);
    snprintf(t->resume, sizeof t->resume, "%s", resume);
    if (t->save_every < 0 || t->keep_last < 0) {
        status = lm_error_set(LM_ERR_INVALID, "trainer: save_every and keep_last must be >= 0");
        goto fail;
    }
    if (strcmp(schedule, "linear") == 0) t->linear_schedule = 1;
    else if (strcmp(schedule, "constant") != 0) {
        status = lm_error_set(LM_ERR_INVALID, "trainer: schedule must be 'linear' or 'constant', got '%s'", schedule);
        goto fail;
    }
    if (!(t->lr > 0) || t->batch_size < 1 || t->eval_batch_size < 1 || t->grad_accum < 1 || t->epochs < 0 ||
        t->warmup_steps < 0 || t->weight_decay < 0 || !(t->max_grad_norm >= 0) || t->log_every < 1) {
        status = lm_error_set(LM_ERR_INVALID,
                              "trainer: lr must be > 0; batch_size, eval_batch_size, grad_accum, log_every >= 1; "
                              "epochs, warmup_steps, weight_decay, max_grad_norm >= 0");
        goto fail;
    }
    LM_CHECK(arch_of(t)->info(model.self, &t->arch));
    if (vocab->vocab_size > t->arch.vocab_size) {
        status = lm_error_set(LM_ERR_INVALID,
                              "the tokenizer has %d tokens but the model's vocab_size is %d: set the model's "
                              "vocab_size to at least %d",
                              vocab->vocab_size, t->arch.vocab_size, vocab->vocab_size);
        goto fail;
    }
    int32_t T = lm_blocks_block_size(train);
    if (T > t->arch.max_positions) {
        status = lm_error_set(LM_ERR_INVALID,
                              "block_size %d is larger than the model's %d positions: lower block_size or raise "
                              "the model's n_positions / max_position_embeddings",
                              T, t->arch.max_positions);
        goto fail;
    }
    if (eval && lm_blocks_block_size(eval) != T) {
        status = lm_error_set(LM_ERR_INVALID, "training blocks have %d tokens but evaluation blocks %d", T,
                              lm_blocks_block_size(eval));
        goto fail;
    }
    size_t n_train = lm_blocks_count(train);
    if (n_train == 0) {
        status = lm_error_set(LM_ERR_INVALID, "the training split gave no block of %d tokens: use more text or a "
                                              "smaller block_size", T);
        goto fail;
    }
    if ((size_t)t->batch_size > n_train) {
        status = lm_error_set(LM_ERR_INVALID,
                              "batch_size %lld is larger than the %zu training blocks: lower batch_size or add data",
                              (long long)t->batch_size, n_train);
        goto fail;
    }
    if (t->epochs == 0 && t->max_steps <= 0) {
        status = lm_error_set(LM_ERR_INVALID, "nothing to train: epochs is 0 and max_steps is not set");
        goto fail;
    }
    LM_CHECK(objective.plugin->vtable.objective.bind(objective.self, &t->arch, vocab));
    int64_t B = t->batch_size > t->eval_batch_size ? t->batch_size : t->eval_batch_size;
    size_t n = (size_t)B * (size_t)T;
    LM_CHECK(lm_alloc((void **)&t->tokens, n * sizeof(int32_t), "batch tokens"));
    LM_CHECK(lm_alloc((void **)&t->input_ids, n * sizeof(int32_t), "batch inputs"));
    LM_CHECK(lm_alloc((void **)&t->labels, n * sizeof(int32_t), "batch labels"));
    LM_CHECK(lm_alloc((void **)&t->attention_mask, n * sizeof(int32_t), "batch attention mask"));
    LM_CHECK(lm_alloc((void **)&t->token_type_ids, n * sizeof(int32_t), "batch token types"));
    LM_CHECK(lm_alloc((void **)&t->order, n_train * sizeof(size_t), "the shuffle order"));
    LM_CHECK(lm_sysmetrics_create(&t->sysmetrics, NULL, 0));
    if (n_loggers) {
        t->loggers = calloc(n_loggers, sizeof *t->loggers);
        if (!t->loggers) {
            status = lm_error_set(LM_ERR_NOMEM, "out of memory creating the trainer");
            goto fail;
        }
        memcpy(t->loggers, loggers, n_loggers * sizeof *loggers);
        t->n_loggers = n_loggers;
    }
    *out = t;
    return LM_OK;
fail:
    lm_trainer_destroy(t);
    return status;
}

void lm_trainer_destroy(lm_trainer *t) {
    if (!t) return;
    lm_free(t->tokens);
    lm_free(t->input_ids);
    lm_free(t->labels);
    lm_free(t->attention_mask);
    lm_free(t->token_type_ids);
    lm_free(t->order);
    lm_sysmetrics_destroy(t->sysmetrics);
    free(t->loggers);
    free(t);
}

static lm_status emit(lm_trainer *t, lm_event *ev) {
    ev->elapsed = lm_time_seconds() - t->start_time;
    for (size_t i = 0; i < t->n_loggers; i++)
        LM_TRY(t->loggers[i].plugin->vtable.logger.log(t->loggers[i].self, ev));
    return LM_OK;
}

/* Asks every logger with a flush slot to put what it has on disk: after each
 * checkpoint (so logs and checkpoint agree if the process dies) and at the
 * end of the run. */
static lm_status flush_loggers(lm_trainer *t) {
    for (size_t i = 0; i < t->n_loggers; i++) {
        const lm_logger_vtable *vt = &t->loggers[i].plugin->vtable.logger;
        if (vt->flush) LM_TRY(vt->flush(t->loggers[i].self));
    }
    return LM_OK;
}

/* Fills the batch for blocks order[first .. first+B) through the objective. */
static lm_status make_batch(lm_trainer *t, const lm_blocks *blocks, const size_t *order, size_t first, int32_t B,
                            lm_batch *batch) {
    int32_t T = lm_blocks_block_size(blocks);
    for (int32_t b = 0; b < B; b++) lm_blocks_get(blocks, order ? order[first + b] : first + b, t->tokens + b * T);
    memset(batch, 0, sizeof *batch);
    batch->B = B;
    batch->T = T;
    batch->input_ids = t->input_ids;
    batch->labels = t->labels;
    batch->attention_mask = t->attention_mask;
    batch->token_type_ids = t->token_type_ids;
    batch->seed = t->seed;
    batch->step = t->micro_batches;
    LM_TRY(t->objective.plugin->vtable.objective.make_batch(t->objective.self, t->tokens, B, T, t->micro_batches,
                                                              batch));
    t->micro_batches++;
    return LM_OK;
}

lm_status lm_trainer_evaluate(lm_trainer *t, const lm_blocks *blocks, double *loss) {
    *loss = NAN;
    size_t n = lm_blocks_count(blocks);
    if (n == 0) return lm_error_set(LM_ERR_INVALID, "the evaluation split gave no block: use more text");
    /* The batch buffers were sized for the training blocks. */
    if (lm_blocks_block_size(blocks) != lm_blocks_block_size(t->train))
        return lm_error_set(LM_ERR_INVALID,
                            "evaluate: these blocks have %d tokens but the trainer's training blocks %d: make them "
                            "with the same block_size",
                            lm_blocks_block_size(blocks), lm_blocks_block_size(t->train));
    LM_TRY(arch_of(t)->set_training(t->model.self, 0));
    /* Evaluation masks (MLM) come from their own counter range so that
     * evaluating does not change the training stream. */
    uint64_t saved = t->micro_batches;
    t->micro_batches = (1ull << 62) + saved;
    double sum = 0;
    size_t counted = 0, batches = 0;
    lm_status status = LM_OK;
    lm_progress *progress = lm_progress_begin("evaluating", n);
    for (size_t first = 0; first < n; first += (size_t)t->eval_batch_size) {
        if (t->eval_max_batches > 0 && batches >= (size_t)t->eval_max_batches) break;
        int32_t B = (int32_t)((n - first) < (size_t)t->eval_batch_size ? (n - first) : (size_t)t->eval_batch_size);
        lm_batch batch;
        float batch_loss;
        LM_CHECK(make_batch(t, blocks, NULL, first, B, &batch));
        if (batch.n_targets == 0) continue; /* MLM may select nothing in a tiny batch */
        LM_CHECK(arch_of(t)->forward(t->model.self, &batch, &batch_loss));
        /* Hugging Face repeats each batch's mean loss batch-size times and
         * averages: a mean over batches weighted by their size. */
        sum += (double)batch_loss * B;
        counted += (size_t)B;
        batches++;
        lm_progress_update(progress, first + (size_t)B);
        if (lm_interrupted()) {
            status = lm_error_set(LM_ERR_INTERRUPTED, "interrupted during evaluation");
            goto fail;
        }
    }
    *loss = counted ? sum / (double)counted : NAN;
fail:
    lm_progress_end(progress);
    t->micro_batches = saved;
    lm_status restore = arch_of(t)->set_training(t->model.self, 1);
    return status != LM_OK ? status : restore;
}

static double learning_rate(const lm_trainer *t, int64_t step, int64_t total) {
    if (t->warmup_steps > 0 && step < t->warmup_steps) return t->lr * (double)step / (double)t->warmup_steps;
    if (!t->linear_schedule) return t->lr;
    double remaining = (double)(total - step), span = (double)(total - t->warmup_steps);
    return span > 0 ? t->lr * (remaining > 0 ? remaining : 0) / span : 0.0;
}

static void shuffle(lm_trainer *t, size_t n, int64_t epoch) {
    for (size_t i = 0; i < n; i++) t->order[i] = i;
    uint64_t stream = LM_RNG_STREAM_SHUFFLE | ((uint64_t)epoch << 8);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = lm_rng_below(t->seed, stream, i, (uint32_t)(i + 1));
        size_t tmp = t->order[i];
        t->order[i] = t->order[j];
        t->order[j] = tmp;
    }
}

/* Writes a checkpoint of the run as it stands (when checkpoint_dir is set). */
static lm_status save_checkpoint(lm_trainer *t, int64_t step, int64_t total_steps, int64_t epoch,
                                 int64_t steps_in_epoch, size_t cursor, double loss_sum_run, double loss_sum_epoch) {
    if (!t->checkpoint_dir[0]) return LM_OK;
    lm_checkpoint_state st;
    memset(&st, 0, sizeof st);
    st.step = step;
    st.total_steps = total_steps;
    st.epoch = epoch;
    st.steps_in_epoch = steps_in_epoch;
    st.cursor = cursor;
    st.micro_batches = t->micro_batches;
    st.seed = t->seed;
    st.loss_sum_run = loss_sum_run;
    st.loss_sum_epoch = loss_sum_epoch;
    st.train_blocks = lm_blocks_count(t->train);
    st.batch_size = t->batch_size;
    st.grad_accum = t->grad_accum;
    lm_buffer args = {0};
    lm_status status = lm_trainer_args_json(t, &args);
    if (status == LM_OK)
        status = lm_checkpoint_save(t->checkpoint_dir, (int)t->keep_last, &st, t->model, t->tokenizer, args.data);
    lm_buffer_free(&args);
    if (status == LM_OK) status = flush_loggers(t);
    return status;
}

lm_status lm_trainer_fit(lm_trainer *t, lm_train_result *result) {
    memset(result, 0, sizeof *result);
    result->eval_loss = result->perplexity = NAN;
    const lm_architecture_vtable *arch = arch_of(t);
    size_t n_train = lm_blocks_count(t->train);
    int32_t T = lm_blocks_block_size(t->train);
    int64_t batches_per_epoch = (int64_t)((n_train + (size_t)t->batch_size - 1) / (size_t)t->batch_size);
    int64_t steps_per_epoch = batches_per_epoch / t->grad_accum;
    if (steps_per_epoch < 1) steps_per_epoch = 1;
    int64_t total_steps = t->max_steps > 0 ? t->max_steps : steps_per_epoch * t->epochs;
    int64_t total_epochs = t->max_steps > 0 ? (total_steps + steps_per_epoch - 1) / steps_per_epoch : t->epochs;

    t->start_time = lm_time_seconds();
    char description[512];
    snprintf(description, sizeof description,
             "%s (%lld parameters) on %s, %zu training blocks of %d tokens, batch %lld x %lld accumulation, "
             "%lld steps",
             t->arch.model_type, (long long)t->arch.n_params, t->arch.device, n_train, T, (long long)t->batch_size,
             (long long)t->grad_accum, (long long)total_steps);
    lm_scalar begin_scalars[] = {{"n_params", (double)t->arch.n_params},
                                 {"train_blocks", (double)n_train},
                                 {"eval_blocks", t->eval ? (double)lm_blocks_count(t->eval) : 0},
                                 {"block_size", T},
                                 {"batch_size", (double)t->batch_size}};
    lm_event ev = {LM_EVENT_RUN_BEGIN, 0, 0, total_steps, 0, (int32_t)total_epochs, 0, description, begin_scalars,
                   5};
    LM_TRY(emit(t, &ev));
    LM_TRY(arch->set_training(t->model.self, 1));

    int64_t step = 0, first_epoch = 0, resume_steps_in_epoch = 0;
    size_t resume_cursor = 0;
    double loss_sum_run = 0, loss_sum_epoch = 0, resume_loss_sum_epoch = 0;
    int64_t steps_in_epoch = 0;
    lm_status status = LM_OK;
    if (t->resume[0]) {
        lm_checkpoint_state st;
        LM_TRY(lm_checkpoint_load(t->resume, t->model, &st));
        if (st.train_blocks != n_train || st.batch_size != t->batch_size || st.grad_accum != t->grad_accum ||
            st.seed != t->seed || st.total_steps != total_steps)
            return lm_error_set(LM_ERR_INVALID,
                                "resume from '%s': the checkpoint's run had %llu training blocks, batch_size %lld, "
                                "grad_accum %lld, seed %llu and %lld steps; this run has %zu, %lld, %lld, %llu and "
                                "%lld: resume with the same data and settings",
                                t->resume, (unsigned long long)st.train_blocks, (long long)st.batch_size,
                                (long long)st.grad_accum, (unsigned long long)st.seed, (long long)st.total_steps,
                                n_train, (long long)t->batch_size, (long long)t->grad_accum,
                                (unsigned long long)t->seed, (long long)total_steps);
        step = st.step;
        first_epoch = st.epoch;
        resume_steps_in_epoch = st.steps_in_epoch;
        resume_cursor = (size_t)st.cursor;
        t->micro_batches = st.micro_batches;
        loss_sum_run = st.loss_sum_run;
        resume_loss_sum_epoch = st.loss_sum_epoch;
        lm_log(LM_LOG_INFO, "resuming from %s at step %lld (epoch %lld)", t->resume, (long long)step,
               (long long)first_epoch + 1);
    }
    for (int64_t epoch = first_epoch; epoch < total_epochs && step < total_steps; epoch++) {
        shuffle(t, n_train, epoch);
        int resuming = epoch == first_epoch && t->resume[0];
        loss_sum_epoch = resuming ? resume_loss_sum_epoch : 0;
        steps_in_epoch = resuming ? resume_steps_in_epoch : 0;
        size_t cursor = resuming ? resume_cursor : 0;
        for (int64_t s = steps_in_epoch; s < steps_per_epoch && step < total_steps; s++) {
            double step_start = lm_time_seconds();
            LM_TRY(arch->zero_grad(t->model.self));
            double step_loss = 0;
            int64_t tokens = 0;
            for (int64_t micro = 0; micro < t->grad_accum; micro++) {
                if (cursor >= n_train) cursor = 0; /* only when grad_accum does not divide the epoch */
                int32_t B = (int32_t)((n_train - cursor) < (size_t)t->batch_size ? (n_train - cursor)
                                                                                 : (size_t)t->batch_size);
                lm_batch batch;
                float loss;
                LM_TRY(make_batch(t, t->train, t->order, cursor, B, &batch));
                cursor += (size_t)B;
                tokens += (int64_t)B * T;
                /* MLM can select no token in a tiny batch: nothing to learn
                 * from it (Hugging Face would produce a NaN loss). */
                if (batch.n_targets == 0) continue;
                status = arch->forward(t->model.self, &batch, &loss);
                if (status != LM_OK) {
                    lm_error_prefix("training step %lld: ", (long long)step + 1);
                    return status;
                }
                LM_TRY(arch->backward(t->model.self, 1.0f / (float)t->grad_accum));
                step_loss += loss / (double)t->grad_accum;
            }
            float norm;
            LM_TRY(arch->grad_norm(t->model.self, &norm));
            if (!isfinite(norm))
                return lm_error_set(LM_ERR_NUMERIC,
                                    "training step %lld: the gradient norm is %f (loss %g): lower lr, or check the "
                                    "data; nothing was updated",
                                    (long long)step + 1, (double)norm, step_loss);
            double lr = learning_rate(t, step, total_steps);
            lm_optim_params p;
            p.lr = (float)lr;
            p.beta1 = (float)t->beta1;
            p.beta2 = (float)t->beta2;
            p.eps = (float)t->eps;
            p.weight_decay = (float)t->weight_decay;
            p.grad_scale = (t->max_grad_norm > 0 && norm > t->max_grad_norm)
                               ? (float)(t->max_grad_norm / ((double)norm + 1e-6))
                               : 1.0f;
            p.t = step + 1;
            LM_TRY(arch->optimizer_step(t->model.self, &p));
            step++;
            steps_in_epoch++;
            loss_sum_run += step_loss;
            loss_sum_epoch += step_loss;
            double seconds = lm_time_seconds() - step_start;
            /* The first step of this process too (a resumed run starts at
             * step N + 1): loggers with fixed columns see every metric. */
            if (!t->system_sampled || step % t->log_every == 0) {
                t->system_sampled = 1;
                size_t n = 0;
                if (lm_sysmetrics_sample(t->sysmetrics, t->system, LM_SYSMETRICS_MAX, &n) == LM_OK) t->n_system = n;
            }
            lm_scalar scalars[4 + LM_SYSMETRICS_MAX] = {{"loss", step_loss},
                                                        {"learning_rate", lr},
                                                        {"grad_norm", norm},
                                                        {"tokens_per_second", seconds > 0 ? (double)tokens / seconds : 0}};
            memcpy(scalars + 4, t->system, t->n_system * sizeof *scalars);
            lm_event step_ev = {LM_EVENT_STEP, 0, step, total_steps, (double)step / (double)steps_per_epoch,
                                (int32_t)total_epochs, 0, NULL, scalars, 4 + t->n_system};
            LM_TRY(emit(t, &step_ev));
            if (lm_interrupted()) {
                LM_TRY(save_checkpoint(t, step, total_steps, epoch, steps_in_epoch, cursor, loss_sum_run,
                                       loss_sum_epoch));
                return lm_error_set(LM_ERR_INTERRUPTED, "training interrupted by Ctrl-C after step %lld%s%s",
                                    (long long)step, t->checkpoint_dir[0] ? "; resume from the checkpoint in " : "",
                                    t->checkpoint_dir);
            }
            if (t->save_every > 0 && step % t->save_every == 0)
                LM_TRY(save_checkpoint(t, step, total_steps, epoch, steps_in_epoch, cursor, loss_sum_run,
                                       loss_sum_epoch));
        }
        double train_loss = steps_in_epoch ? loss_sum_epoch / (double)steps_in_epoch : NAN;
        double eval_loss = NAN;
        if (t->eval && t->eval_every_epoch) {
            LM_TRY(lm_trainer_evaluate(t, t->eval, &eval_loss));
            result->eval_loss = eval_loss;
            result->perplexity = exp(eval_loss);
        }
        lm_scalar eval_scalars[] = {{"train_loss", train_loss}, {"eval_loss", eval_loss}, {"perplexity", exp(eval_loss)},
                                    {"epoch_index", (double)(epoch + 1)}};
        lm_event eval_ev = {LM_EVENT_EVAL, 0, step, total_steps, (double)step / (double)steps_per_epoch,
                            (int32_t)total_epochs, 0, NULL, eval_scalars, 4};
        LM_TRY(emit(t, &eval_ev));
        LM_TRY(save_checkpoint(t, step, total_steps, epoch + 1, 0, 0, loss_sum_run, 0));
    }
    result->steps = step;
    result->epochs = (double)step / (double)steps_per_epoch;
    result->runtime = lm_time_seconds() - t->start_time;
    result->train_loss = step ? loss_sum_run / (double)step : NAN;
    double samples = (double)step * (double)t->batch_size * (double)t->grad_accum;
    result->samples_per_second = result->runtime > 0 ? samples / result->runtime : 0;
    result->steps_per_second = result->runtime > 0 ? (double)step / result->runtime : 0;
    result->tokens_per_second = result->samples_per_second * T;
    lm_scalar end_scalars[] = {{"train_runtime", result->runtime},
                               {"train_samples_per_second", result->samples_per_second},
                               {"train_steps_per_second", result->steps_per_second},
                               {"train_loss", result->train_loss},
                               {"eval_loss", result->eval_loss},
                               {"perplexity", result->perplexity}};
    lm_event end_ev = {LM_EVENT_RUN_END, 0, step, total_steps, result->epochs, (int32_t)total_epochs, 0, NULL,
                       end_scalars, 6};
    LM_TRY(emit(t, &end_ev));
    return flush_loggers(t);
}

lm_status lm_trainer_args_json(const lm_trainer *t, lm_buffer *out) {
    lm_json_writer w;
    lm_json_writer_init(&w, out, 2);
    lm_json_begin_object(&w);
    lm_json_key(&w, "learning_rate");
    lm_json_write_number(&w, t->lr);
    lm_json_key(&w, "weight_decay");
    lm_json_write_number(&w, t->weight_decay);
    lm_json_key(&w, "adam_beta1");
    lm_json_write_number(&w, t->beta1);
    lm_json_key(&w, "adam_beta2");
    lm_json_write_number(&w, t->beta2);
    lm_json_key(&w, "adam_epsilon");
    lm_json_write_number(&w, t->eps);
    lm_json_key(&w, "max_grad_norm");
    lm_json_write_number(&w, t->max_grad_norm);
    lm_json_key(&w, "num_train_epochs");
    lm_json_write_int(&w, t->epochs);
    lm_json_key(&w, "max_steps");
    lm_json_write_int(&w, t->max_steps);
    lm_json_key(&w, "per_device_train_batch_size");
    lm_json_write_int(&w, t->batch_size);
    lm_json_key(&w, "per_device_eval_batch_size");
    lm_json_write_int(&w, t->eval_batch_size);
    lm_json_key(&w, "gradient_accumulation_steps");
    lm_json_write_int(&w, t->grad_accum);
    lm_json_key(&w, "warmup_steps");
    lm_json_write_int(&w, t->warmup_steps);
    lm_json_key(&w, "lr_scheduler_type");
    lm_json_write_cstr(&w, t->linear_schedule ? "linear" : "constant");
    lm_json_key(&w, "seed");
    lm_json_write_int(&w, (int64_t)t->seed);
    lm_json_end_object(&w);
    return lm_json_writer_finish(&w);
}
