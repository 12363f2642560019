/* The trainer's settings: Hugging Face TrainingArguments names (lmcore's
 * older names still read), checked, turned into the run's plan and its
 * schedule; and training_args.json. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "schedule.h"
#include "trainer_internal.h"

/* The key a setting was given under: `name`, or `alias` (lmcore's older
 * name for it).  Both at once is recorded as an error of the config. */
static const char *pick(lm_config *cfg, const char *name, const char *alias) {
    int has_name = lm_config_has(cfg, name), has_alias = alias && lm_config_has(cfg, alias);
    if (has_name && has_alias) lm_config_reject(cfg, alias, "is another name for '%s': give only one of them", name);
    return has_alias && !has_name ? alias : name;
}

static lm_status parse_strategy(const char *key, const char *value, lm_strategy *out) {
    if (strcmp(value, "no") == 0) *out = LM_STRATEGY_NO;
    else if (strcmp(value, "steps") == 0) *out = LM_STRATEGY_STEPS;
    else if (strcmp(value, "epoch") == 0) *out = LM_STRATEGY_EPOCH;
    else
        return lm_error_set(LM_ERR_INVALID, "%s must be 'no', 'steps' or 'epoch', got '%s'", key, value);
    return LM_OK;
}

static const char *const strategy_names[] = {"no", "steps", "epoch"};

/* Lower is better for a loss and for perplexity; anything else (an
 * accuracy a callback reports) is better higher, as in Hugging Face. */
static int metric_is_a_loss(const char *metric) {
    return strstr(metric, "loss") != NULL || strstr(metric, "perplexity") != NULL;
}

static lm_status copy_string(char *dst, size_t cap, const char *key, const char *value) {
    if (strlen(value) >= cap)
        return lm_error_set(LM_ERR_INVALID, "%s is too long (%zu characters, at most %zu)", key, strlen(value),
                            cap - 1);
    memcpy(dst, value, strlen(value) + 1);
    return LM_OK;
}

lm_status lm_trainer_optimizer_settings(lm_config *settings, lm_config *optimizer_cfg) {
    static const char *const pairs[][2] = {
        {"adam_beta1", "beta1"}, {"adam_beta2", "beta2"}, {"adam_epsilon", "eps"}};
    static const char *const plugin_keys[] = {"beta1", "beta2", "eps"};
    LM_TRY(lm_config_set_number(optimizer_cfg, "weight_decay", lm_config_number(settings, "weight_decay", 0.01)));
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        const char *key = pick(settings, pairs[i][0], pairs[i][1]);
        if (lm_config_has(settings, key))
            LM_TRY(lm_config_set_number(optimizer_cfg, plugin_keys[i], lm_config_number(settings, key, 0.0)));
    }
    return LM_OK;
}

const char *lm_trainer_stray_optimizer_setting(lm_config *settings) {
    static const char *const keys[] = {"weight_decay", "adam_beta1", "beta1", "adam_beta2", "beta2", "adam_epsilon",
                                       "eps"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (lm_config_has(settings, keys[i])) return keys[i];
    return NULL;
}

/* The largest step, epoch or interval count (2^40: far more than any run,
 * and products of two stay within int64), and the largest batch. */
#define MAX_COUNT ((int64_t)1 << 40)
#define MAX_BATCH ((int64_t)1 << 20)

lm_status trainer_read_settings(lm_trainer *t, lm_config *cfg, lm_config *schedule_kwargs, int host_schedule) {
    trainer_settings *s = &t->s;
    lm_trainer_plan *p = &t->plan;
    s->lr = lm_config_number(cfg, pick(cfg, "learning_rate", "lr"), 2e-5);
    s->max_grad_norm = lm_config_number(cfg, "max_grad_norm", 1.0);
    /* Counts are read in 64 bits with an upper bound that keeps the plan's
     * products (steps x epochs, batch x block) far from overflowing; the
     * lower bounds are checked below, with messages that say what 0 means. */
    s->epochs = lm_config_number(cfg, pick(cfg, "num_train_epochs", "epochs"), 3.0);
    s->max_steps = lm_config_int_range(cfg, "max_steps", -1, -1, MAX_COUNT);
    s->batch_size = lm_config_int_range(cfg, pick(cfg, "per_device_train_batch_size", "batch_size"), 8, INT64_MIN,
                                        MAX_BATCH);
    s->eval_batch_size = lm_config_int_range(cfg, pick(cfg, "per_device_eval_batch_size", "eval_batch_size"),
                                             s->batch_size, INT64_MIN, MAX_BATCH);
    s->grad_accum = lm_config_int_range(cfg, pick(cfg, "gradient_accumulation_steps", "grad_accum"), 1, INT64_MIN,
                                        MAX_BATCH);
    /* transformers 5: a warmup_steps below 1 is a fraction of the steps
     * (warmup_ratio's meaning; warmup_ratio itself is deprecated there). */
    const double warmup_steps = lm_config_number(cfg, "warmup_steps", 0.0);
    s->warmup_ratio = lm_config_number(cfg, "warmup_ratio", 0.0);
    if (warmup_steps > 0 && warmup_steps < 1) {
        if (lm_config_has(cfg, "warmup_ratio") && s->warmup_ratio > 0)
            return lm_error_set(LM_ERR_INVALID, "warmup_steps %g is a fraction of the steps (warmup_ratio's meaning, "
                                                "as in transformers 5) and warmup_ratio %g is given too: keep one",
                                warmup_steps, s->warmup_ratio);
        s->warmup_ratio = warmup_steps;
        s->warmup_steps = 0;
    } else if (!(warmup_steps >= 0) || warmup_steps != floor(warmup_steps) || warmup_steps > (double)MAX_COUNT) {
        return lm_error_set(LM_ERR_INVALID, "warmup_steps must be a whole number of steps >= 0, or a fraction below 1 "
                                            "of the run's steps (0.1: the first tenth), got %g",
                            warmup_steps);
    } else {
        s->warmup_steps = (int64_t)warmup_steps;
    }
    const char *schedule_key = pick(cfg, "lr_scheduler_type", "schedule");
    const char *schedule = lm_config_string(cfg, schedule_key, "linear");
    s->seed = (uint64_t)lm_config_int_range(cfg, "seed", 42, 0, INT64_MAX); /* a negative seed would wrap */
    const char *logging_strategy = lm_config_string(cfg, "logging_strategy", "steps");
    p->logging_steps = lm_config_int_range(cfg, pick(cfg, "logging_steps", "log_every"), 50, INT64_MIN, MAX_COUNT);
    const int has_eval = t->parts.eval != NULL;
    const char *eval_strategy_key = pick(cfg, "eval_strategy", "eval_every_epoch");
    const char *eval_strategy = has_eval ? "epoch" : "no";
    if (strcmp(eval_strategy_key, "eval_every_epoch") == 0)
        eval_strategy = lm_config_bool(cfg, "eval_every_epoch", 1) ? eval_strategy : "no";
    else
        eval_strategy = lm_config_string(cfg, "eval_strategy", eval_strategy);
    const int eval_strategy_given = lm_config_has(cfg, "eval_strategy");
    p->eval_steps = lm_config_int_range(cfg, "eval_steps", p->logging_steps, INT64_MIN, MAX_COUNT);
    const int eval_steps_given = lm_config_has(cfg, "eval_steps");
    s->eval_max_batches = lm_config_int_range(cfg, "eval_max_batches", 0, INT64_MIN, MAX_COUNT);
    const char *checkpoint_dir = lm_config_string(cfg, "checkpoint_dir", "");
    p->save_steps = lm_config_int_range(cfg, pick(cfg, "save_steps", "save_every"), 0, INT64_MIN, MAX_COUNT);
    const char *save_strategy =
        lm_config_string(cfg, "save_strategy", !*checkpoint_dir ? "no" : p->save_steps > 0 ? "steps" : "epoch");
    p->save_total_limit = lm_config_int_range(cfg, pick(cfg, "save_total_limit", "keep_last"), 2, INT64_MIN,
                                              MAX_COUNT);
    const char *resume = lm_config_string(cfg, pick(cfg, "resume_from_checkpoint", "resume"), "");
    p->load_best_model_at_end = lm_config_bool(cfg, "load_best_model_at_end", 0);
    p->eval_on_start = lm_config_bool(cfg, "eval_on_start", 0);
    p->logging_first_step = lm_config_bool(cfg, "logging_first_step", 0);
    p->save_only_model = lm_config_bool(cfg, "save_only_model", 0);
    const char *metric = lm_config_string(cfg, "metric_for_best_model", "eval_loss");
    p->greater_is_better = lm_config_bool(cfg, "greater_is_better", !metric_is_a_loss(metric));
    p->early_stopping_patience = lm_config_int_range(cfg, "early_stopping_patience", 0, INT64_MIN, MAX_COUNT);
    p->early_stopping_threshold = lm_config_number(cfg, "early_stopping_threshold", 0.0);
    /* Data parallel (trainer_distributed.c): PyTorch DDP's bucket_cap_mb, named as TrainingArguments names it. */
    s->ddp_bucket_cap_mb = lm_config_number(cfg, "ddp_bucket_cap_mb", 25.0);
    s->ddp_overlap = lm_config_bool(cfg, "ddp_overlap", 1);
    const char *cuda_graph = lm_config_string(cfg, "cuda_graph", "auto");
    LM_TRY(lm_config_validate(cfg));
    if (strcmp(cuda_graph, "auto") != 0 && strcmp(cuda_graph, "off") != 0)
        return lm_error_set(LM_ERR_INVALID, "cuda_graph must be auto (the step as CUDA graphs where the device allows) "
                                            "or off (eager steps), got '%s'",
                            cuda_graph);
    s->cuda_graph = strcmp(cuda_graph, "auto") == 0;

    LM_TRY(copy_string(s->schedule, sizeof s->schedule, schedule_key, host_schedule ? "host" : schedule));
    LM_TRY(copy_string(s->checkpoint_dir, sizeof s->checkpoint_dir, "checkpoint_dir", checkpoint_dir));
    LM_TRY(copy_string(s->resume, sizeof s->resume, "resume_from_checkpoint", resume));
    LM_TRY(copy_string(p->metric_for_best_model, sizeof p->metric_for_best_model, "metric_for_best_model", metric));
    LM_TRY(parse_strategy("logging_strategy", logging_strategy, &p->logging_strategy));
    LM_TRY(parse_strategy("eval_strategy", eval_strategy, &p->eval_strategy));
    LM_TRY(parse_strategy("save_strategy", save_strategy, &p->save_strategy));
    p->has_checkpoint_dir = *checkpoint_dir != '\0';
    p->host_schedule = host_schedule;

    if (!(s->lr > 0) || !isfinite(s->lr))
        return lm_error_set(LM_ERR_INVALID, "learning_rate must be a positive number, got %g", s->lr);
    if (!(s->max_grad_norm >= 0) || !isfinite(s->max_grad_norm))
        return lm_error_set(LM_ERR_INVALID, "max_grad_norm must be >= 0 (0 turns clipping off), got %g",
                            s->max_grad_norm);
    if (!(s->ddp_bucket_cap_mb > 0) || !(s->ddp_bucket_cap_mb <= 1048576.0))
        return lm_error_set(LM_ERR_INVALID, "ddp_bucket_cap_mb must be a size in MiB above 0 (and at most 1048576), got "
                                            "%g: the gradients are all-reduced in buckets of that size (25, PyTorch's "
                                            "default), or give ddp_overlap=false for one all-reduce after backward",
                            s->ddp_bucket_cap_mb);
    if (s->batch_size < 1 || s->eval_batch_size < 1 || s->grad_accum < 1)
        return lm_error_set(LM_ERR_INVALID, "per_device_train_batch_size (%lld), per_device_eval_batch_size (%lld) "
                                            "and gradient_accumulation_steps (%lld) must be >= 1",
                            (long long)s->batch_size, (long long)s->eval_batch_size, (long long)s->grad_accum);
    if (!(s->epochs >= 0) || !(s->epochs <= (double)MAX_COUNT))
        return lm_error_set(LM_ERR_INVALID, "num_train_epochs must be a number >= 0 (2.5 ends halfway through the third "
                                            "epoch), got %g",
                            s->epochs);
    if (s->eval_max_batches < 0)
        return lm_error_set(LM_ERR_INVALID, "eval_max_batches must be >= 0 (0: all), got %lld",
                            (long long)s->eval_max_batches);
    if (p->logging_steps < 1)
        return lm_error_set(LM_ERR_INVALID, "logging_steps must be >= 1, got %lld", (long long)p->logging_steps);
    if (p->eval_steps < 1)
        return lm_error_set(LM_ERR_INVALID, "eval_steps must be >= 1 (steps between evaluations with "
                                            "eval_strategy 'steps'), got %lld",
                            (long long)p->eval_steps);
    if (p->save_steps < 0 || (p->save_strategy == LM_STRATEGY_STEPS && p->save_steps < 1))
        return lm_error_set(LM_ERR_INVALID, "save_steps must be >= 1 with save_strategy 'steps', got %lld",
                            (long long)p->save_steps);
    if (p->save_total_limit < 0)
        return lm_error_set(LM_ERR_INVALID, "save_total_limit must be >= 0 (0 keeps every checkpoint), got %lld",
                            (long long)p->save_total_limit);
    if (p->early_stopping_patience < 0 || !(p->early_stopping_threshold >= 0))
        return lm_error_set(LM_ERR_INVALID, "early_stopping_patience (%lld) and early_stopping_threshold (%g) must "
                                            "be >= 0",
                            (long long)p->early_stopping_patience, p->early_stopping_threshold);
    if (eval_steps_given && p->eval_strategy != LM_STRATEGY_STEPS && eval_strategy_given)
        return lm_error_set(LM_ERR_INVALID, "eval_steps is set but eval_strategy is '%s': use eval_strategy 'steps'",
                            strategy_names[p->eval_strategy]);
    if (eval_steps_given && !eval_strategy_given && has_eval) p->eval_strategy = LM_STRATEGY_STEPS;
    if (p->eval_strategy != LM_STRATEGY_NO && !has_eval)
        return lm_error_set(LM_ERR_INVALID, "eval_strategy '%s' needs blocks to evaluate: pass eval = <blocks>, or "
                                            "eval_strategy 'no'",
                            strategy_names[p->eval_strategy]);
    if (p->save_strategy != LM_STRATEGY_NO && !p->has_checkpoint_dir)
        return lm_error_set(LM_ERR_INVALID, "save_strategy '%s' needs a checkpoint_dir to save into",
                            strategy_names[p->save_strategy]);
    if (p->load_best_model_at_end) {
        if (p->eval_strategy == LM_STRATEGY_NO || p->save_strategy != p->eval_strategy)
            return lm_error_set(LM_ERR_INVALID, "load_best_model_at_end needs save_strategy and eval_strategy to be "
                                                "the same and not 'no' (they are '%s' and '%s')",
                                strategy_names[p->save_strategy], strategy_names[p->eval_strategy]);
        if (p->eval_strategy == LM_STRATEGY_STEPS && p->save_steps % p->eval_steps != 0)
            return lm_error_set(LM_ERR_INVALID, "load_best_model_at_end needs save_steps (%lld) to be a multiple of "
                                                "eval_steps (%lld)",
                                (long long)p->save_steps, (long long)p->eval_steps);
    }
    if (p->early_stopping_patience > 0 && p->eval_strategy == LM_STRATEGY_NO)
        return lm_error_set(LM_ERR_INVALID, "early_stopping_patience needs evaluations: set eval_strategy to 'steps' "
                                            "or 'epoch' and give eval blocks");
    if (p->eval_on_start && !has_eval)
        return lm_error_set(LM_ERR_INVALID, "eval_on_start needs eval blocks to evaluate: give the trainer eval");
    if ((p->load_best_model_at_end || p->early_stopping_patience > 0) && strcmp(metric, "eval_loss") != 0 &&
        strcmp(metric, "loss") != 0 && strcmp(metric, "perplexity") != 0 && strcmp(metric, "eval_perplexity") != 0)
        return lm_error_set(LM_ERR_INVALID, "metric_for_best_model '%s' is not a metric evaluations report: use "
                                            "eval_loss or perplexity",
                            metric);

    /* The plan: steps per epoch as the Hugging Face Trainer counts them. */
    const size_t n_train = lm_blocks_count(t->parts.train);
    const int32_t T = lm_blocks_block_size(t->parts.train);
    p->train_blocks = n_train;
    p->block_size = T;
    p->batch_size = s->batch_size;
    p->eval_batch_size = s->eval_batch_size;
    p->grad_accum = s->grad_accum;
    if (n_train == 0)
        return lm_error_set(LM_ERR_INVALID, "the training split gave no block of %d tokens: use more text or a "
                                            "smaller block_size", T);
    if ((size_t)s->batch_size > n_train)
        return lm_error_set(LM_ERR_INVALID,
                            "per_device_train_batch_size %lld is larger than the %zu training blocks: lower it or "
                            "add data",
                            (long long)s->batch_size, n_train);
    /* Across ranks, a batch is every rank's (trainer_distributed.c). */
    const size_t global_batch = (size_t)s->batch_size * (size_t)t->world;
    if (t->world > 1 && global_batch > n_train)
        return lm_error_set(LM_ERR_INVALID,
                            "%d ranks x per_device_train_batch_size %lld = %zu blocks per batch, more than the %zu "
                            "training blocks: lower the batch size or the number of ranks, or add data",
                            t->world, (long long)s->batch_size, global_batch, n_train);
    if (s->epochs == 0 && s->max_steps <= 0)
        return lm_error_set(LM_ERR_INVALID, "nothing to train: num_train_epochs is 0 and max_steps is not set");
    /* One process takes an epoch's last, partial batch; ranks drop it, so
     * that every rank's shard is whole. */
    const int64_t batches_per_epoch = t->world > 1 ? (int64_t)(n_train / global_batch)
                                                   : (int64_t)((n_train + (size_t)s->batch_size - 1) /
                                                               (size_t)s->batch_size);
    p->steps_per_epoch = batches_per_epoch / s->grad_accum;
    if (p->steps_per_epoch < 1) p->steps_per_epoch = 1;
    /* Hugging Face's rule: max_steps = ceil(num_train_epochs x update steps
     * per epoch), and the last epoch ends early when that is not whole. */
    p->total_steps = s->max_steps > 0 ? s->max_steps : (int64_t)ceil(s->epochs * (double)p->steps_per_epoch);
    if (p->total_steps < 1) p->total_steps = 1; /* a fraction of an epoch shorter than a step still takes one */
    p->total_epochs = (p->total_steps + p->steps_per_epoch - 1) / p->steps_per_epoch;

    lm_status status = lm_schedule_make(&t->schedule, s->schedule, s->lr, p->total_steps, s->warmup_steps,
                                        s->warmup_ratio, schedule_kwargs);
    if (status != LM_OK && host_schedule && schedule_kwargs && lm_config_count(schedule_kwargs) > 0)
        lm_error_prefix("lr_scheduler_kwargs: a Lua function schedule takes none: ");
    return status;
}

lm_status trainer_optimizer_settings(const lm_trainer *t, lm_json **out) {
    *out = NULL;
    lm_buffer members = {0}, object = {0};
    lm_status status = t->parts.optimizer.plugin->vtable.optimizer.settings_json(t->parts.optimizer.self, &members);
    if (status == LM_OK) status = lm_buffer_appendf(&object, "{%s}", members.data ? members.data : "");
    if (status == LM_OK) status = lm_json_parse(object.data, object.len, "the optimizer's settings", out);
    if (status == LM_OK && lm_json_type_of(*out) != LM_JSON_OBJECT) {
        lm_json_free(*out);
        *out = NULL;
        status = lm_error_set(LM_ERR_INVALID, "optimizer '%s': settings_json did not write the members of an object",
                              t->parts.optimizer.plugin->name);
    }
    lm_buffer_free(&members);
    lm_buffer_free(&object);
    return status;
}

lm_status lm_trainer_args_json(const lm_trainer *t, lm_buffer *out) {
    const trainer_settings *s = &t->s;
    const lm_trainer_plan *p = &t->plan;
    lm_json_writer w;
    lm_json_writer_init(&w, out, 2);
    lm_json_begin_object(&w);
    lm_json_key(&w, "learning_rate");
    lm_json_write_number(&w, t->schedule.base_lr);
    lm_json_key(&w, "weight_decay");
    lm_json_write_number(&w, s->weight_decay);
    const int adamw = strcmp(t->parts.optimizer.plugin->name, "adamw") == 0;
    if (adamw) {
        lm_json_key(&w, "adam_beta1");
        lm_json_write_number(&w, s->beta1);
        lm_json_key(&w, "adam_beta2");
        lm_json_write_number(&w, s->beta2);
        lm_json_key(&w, "adam_epsilon");
        lm_json_write_number(&w, s->eps);
    }
    lm_json_key(&w, "optim");
    lm_json_write_cstr(&w, lm_optim_name_of(t->parts.optimizer.plugin->name));
    /* The optimizer's own settings, in torch.optim names. */
    lm_json *settings = NULL;
    lm_status status = trainer_optimizer_settings(t, &settings);
    if (status != LM_OK) return status;
    lm_json_key(&w, "optim_args");
    lm_json_write_value(&w, settings);
    lm_json_free(settings);
    lm_json_key(&w, "max_grad_norm");
    lm_json_write_number(&w, s->max_grad_norm);
    lm_json_key(&w, "num_train_epochs");
    if (s->epochs == floor(s->epochs)) lm_json_write_int(&w, (int64_t)s->epochs);
    else lm_json_write_number(&w, s->epochs);
    lm_json_key(&w, "max_steps");
    lm_json_write_int(&w, s->max_steps);
    lm_json_key(&w, "per_device_train_batch_size");
    lm_json_write_int(&w, s->batch_size);
    lm_json_key(&w, "per_device_eval_batch_size");
    lm_json_write_int(&w, s->eval_batch_size);
    lm_json_key(&w, "gradient_accumulation_steps");
    lm_json_write_int(&w, s->grad_accum);
    lm_json_key(&w, "warmup_steps");
    lm_json_write_int(&w, t->schedule.warmup_steps);
    lm_json_key(&w, "lr_scheduler_type");
    lm_json_write_cstr(&w, p->host_schedule ? "lambda" : s->schedule);
    lm_json_key(&w, "logging_strategy");
    lm_json_write_cstr(&w, strategy_names[p->logging_strategy]);
    lm_json_key(&w, "logging_steps");
    lm_json_write_int(&w, p->logging_steps);
    lm_json_key(&w, "eval_strategy");
    lm_json_write_cstr(&w, strategy_names[p->eval_strategy]);
    if (p->eval_strategy == LM_STRATEGY_STEPS) {
        lm_json_key(&w, "eval_steps");
        lm_json_write_int(&w, p->eval_steps);
    }
    lm_json_key(&w, "save_strategy");
    lm_json_write_cstr(&w, strategy_names[p->save_strategy]);
    if (p->save_strategy == LM_STRATEGY_STEPS) {
        lm_json_key(&w, "save_steps");
        lm_json_write_int(&w, p->save_steps);
    }
    lm_json_key(&w, "save_total_limit");
    lm_json_write_int(&w, p->save_total_limit);
    if (p->load_best_model_at_end) {
        lm_json_key(&w, "load_best_model_at_end");
        lm_json_write_bool(&w, 1);
        lm_json_key(&w, "metric_for_best_model");
        lm_json_write_cstr(&w, p->metric_for_best_model);
        lm_json_key(&w, "greater_is_better");
        lm_json_write_bool(&w, p->greater_is_better);
    }
    if (p->eval_on_start) {
        lm_json_key(&w, "eval_on_start");
        lm_json_write_bool(&w, 1);
    }
    if (p->logging_first_step) {
        lm_json_key(&w, "logging_first_step");
        lm_json_write_bool(&w, 1);
    }
    if (p->save_only_model) {
        lm_json_key(&w, "save_only_model");
        lm_json_write_bool(&w, 1);
    }
    lm_json_key(&w, "seed");
    lm_json_write_int(&w, (int64_t)s->seed);
    lm_json_end_object(&w);
    return lm_json_writer_finish(&w);
}
