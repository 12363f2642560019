/* The trainer across ranks (docs/distributed.md): data parallel as PyTorch
 * DDP runs it.  Every rank holds the whole model; each reads its own shard
 * of every global batch (trainer.c's next_batch), and the gradients are
 * averaged across ranks once per optimizer step, after the step's last
 * micro-batch, so every rank makes the same update and ends the step with
 * the same weights.  Losses and evaluation sums are reduced only where the
 * host reads them (logging, evaluation, the end): a step adds one
 * all-reduce and nothing else.
 *
 * The all-reduce is cut into buckets that start while backward runs
 * (grad_buckets.h, PyTorch DDP's Reducer) when there are several ranks,
 * ddp_overlap is on (the default) and both the model and the communicator
 * have the ABI 2.1 slots (set_grads_ready; all_reduce_start and wait);
 * otherwise it is one all-reduce after the step's last backward.
 *
 * With no communicator (t->world == 1 and no plugin) none of this runs: the
 * single-process path is the one of before. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_internal.h"

static const lm_communicator_vtable *comm_of(const lm_trainer *t) {
    return &t->comm.plugin->vtable.communicator;
}

lm_status trainer_dist_init(lm_trainer *t, const lm_trainer_parts *parts) {
    t->rank = 0;
    t->world = 1;
    if (parts->zero_stage != 0 && parts->zero_stage != 1)
        return lm_error_set(LM_ERR_INVALID,
                            "zero_stage must be 0 (every rank keeps the whole optimizer state) or 1 (ZeRO-1: the "
                            "optimizer state sharded across ranks), got %d",
                            parts->zero_stage);
    t->zero_stage = parts->zero_stage;
    if (!parts->communicator.plugin) return LM_OK;
    t->comm = parts->communicator;
    t->rank = comm_of(t)->rank(t->comm.self);
    t->world = comm_of(t)->size(t->comm.self);
    return LM_OK;
}

/* What must be the same on every rank, as three hashes: the settings (the
 * training arguments), the model and optimizer, and the data (block counts,
 * the first and last training block's tokens). */
typedef struct run_fingerprint {
    uint64_t settings, model, data;
} run_fingerprint;

static lm_status fingerprint(lm_trainer *t, run_fingerprint *out) {
    memset(out, 0, sizeof *out);
    lm_buffer args = {0};
    LM_TRY(lm_trainer_args_json(t, &args));
    /* and the buckets: ranks that cut them otherwise would pair reductions of other sizes */
    lm_status status = lm_buffer_appendf(&args, "|%.17g|%d", t->s.ddp_bucket_cap_mb, t->s.ddp_overlap);
    if (status == LM_OK) out->settings = lm_hash64(args.data, args.len, 1);
    lm_buffer_free(&args);
    LM_TRY(status);
    char model[512];
    int n = snprintf(model, sizeof model, "%s|%lld|%d|%d|%s|%s|%d", t->arch.model_type, (long long)t->arch.n_params,
                     t->arch.vocab_size, t->arch.max_positions, t->parts.optimizer.plugin->name,
                     t->parts.objective.plugin->name, t->params.grad_dtype);
    out->model = lm_hash64(model, (size_t)(n > 0 ? n : 0), 2);
    uint64_t data[4] = {t->plan.train_blocks, t->parts.eval ? lm_blocks_count(t->parts.eval) : 0,
                        (uint64_t)t->plan.block_size, 0};
    const size_t T = (size_t)t->plan.block_size;
    int32_t *ends = malloc(2 * T * sizeof *ends);
    if (!ends) return lm_error_set(LM_ERR_NOMEM, "out of memory comparing the ranks' data");
    lm_blocks_get(t->parts.train, 0, ends);
    lm_blocks_get(t->parts.train, t->plan.train_blocks - 1, ends + T);
    data[3] = lm_hash64(ends, 2 * T * sizeof *ends, 3);
    free(ends);
    out->data = lm_hash64(data, sizeof data, 4);
    return LM_OK;
}

/* Refuses ranks that were not given the same run: each would train
 * something else while their gradients were averaged. */
static lm_status check_same_run(lm_trainer *t) {
    run_fingerprint mine;
    LM_TRY(fingerprint(t, &mine));
    run_fingerprint *all = calloc((size_t)t->world, sizeof *all);
    if (!all) return lm_error_set(LM_ERR_NOMEM, "out of memory comparing the ranks' settings");
    lm_status status = comm_of(t)->all_gather(t->comm.self, &mine, all, sizeof mine);
    for (int r = 1; status == LM_OK && r < t->world; r++) {
        const char *what = all[r].settings != all[0].settings ? "training settings (learning rate, batch size, "
                                                                "steps, seed ...: training_args.json)"
                           : all[r].model != all[0].model ? "model or optimizer"
                           : all[r].data != all[0].data   ? "training or evaluation data (blocks)"
                                                          : NULL;
        if (what)
            status = lm_error_set(LM_ERR_INVALID,
                                  "ranks disagree on the run: rank %d's %s differ from rank 0's (configuration hash "
                                  "%016llx, rank 0's %016llx): start every rank with the same script, arguments and "
                                  "files",
                                  r, what,
                                  (unsigned long long)(all[r].settings ^ all[r].model ^ all[r].data),
                                  (unsigned long long)(all[0].settings ^ all[0].model ^ all[0].data));
    }
    free(all);
    return status;
}

/* The gradient buckets, when every piece can do its part. */
static lm_status setup_buckets(lm_trainer *t) {
    const lm_communicator_vtable *vt = comm_of(t);
    const lm_architecture_vtable *arch = &t->parts.model.plugin->vtable.architecture;
    const char *without = !vt->all_reduce_start || !vt->wait ? "the communicator has no non-blocking all-reduce"
                          : !arch->set_grads_ready           ? "the model does not report its gradients during backward"
                                                             : NULL;
    if (t->world == 1 || !t->s.ddp_overlap) return LM_OK;
    if (without) {
        lm_log(LM_LOG_INFO, "gradients all-reduced after backward: %s (ABI 2.1 slots missing)", without);
        return LM_OK;
    }
    const size_t cap_bytes = (size_t)(t->s.ddp_bucket_cap_mb * 1024.0 * 1024.0);
    const size_t cap = cap_bytes / sizeof(float) > 0 ? cap_bytes / sizeof(float) : 1;
    LM_TRY(lm_grad_buckets_plan(t->params.descs, t->params.n_descs, t->params.n_params, cap, &t->buckets));
    lm_grad_buckets_bind(t->buckets, vt, t->comm.self, t->params.grads, t->dev->stream);
    const size_t n = lm_grad_buckets_count(t->buckets);
    lm_log(LM_LOG_INFO, "gradients all-reduced during backward in %zu bucket%s of at most %g MiB (ddp_bucket_cap_mb)",
           n, n == 1 ? "" : "s", t->s.ddp_bucket_cap_mb);
    return LM_OK;
}

lm_status trainer_dist_setup(lm_trainer *t) {
    if (!t->comm.plugin) return LM_OK;
    const lm_communicator_vtable *vt = comm_of(t);
    const int on_cpu = strncmp(t->arch.device, "cpu", 3) == 0;
    if (t->world > 1 && vt->memory(t->comm.self) == LM_COMM_HOST_MEMORY && !on_cpu)
        return lm_error_set(LM_ERR_UNSUPPORTED,
                            "communicator '%s' reduces host memory but the model is on %s: use communicator=nccl "
                            "(or auto) for GPUs, or device=cpu",
                            t->comm.plugin->name, t->arch.device);
    if (vt->memory(t->comm.self) == LM_COMM_DEVICE_MEMORY && on_cpu)
        return lm_error_set(LM_ERR_UNSUPPORTED,
                            "communicator '%s' reduces GPU memory but the model is on the CPU: use "
                            "communicator=mpi (or auto), or device=cuda",
                            t->comm.plugin->name);
    if (t->params.grad_dtype != LM_F32)
        return lm_error_set(LM_ERR_UNSUPPORTED, "data-parallel training averages fp32 gradients, but this model's are "
                                                "%s: use precision=fp32 or tf32",
                            lm_dtype_name((lm_dtype)t->params.grad_dtype));
    LM_TRY(check_same_run(t));
    /* The weights of rank 0, as DDP starts: the same seed gives the same
     * weights anyway, so this only guards against a rank that was handed
     * other weights.  A lower-precision copy of them (params_copy:
     * logits_dtype=bf16 or activation_dtype=bf16) is derived: the model rebuilds it from the
     * broadcast weights (params_written, as after loading weights).  A
     * model with a copy and no params_written could not: then the seed's
     * equality (checked above) is the guarantee, and nothing is sent. */
    const lm_architecture_vtable *arch = &t->parts.model.plugin->vtable.architecture;
    if (!t->params.params_copy || arch->params_written) {
        LM_TRY(vt->broadcast(t->comm.self, t->params.params, t->params.n_params * sizeof(float), 0));
        if (t->params.params_copy) LM_TRY(arch->params_written(t->parts.model.self));
    }
    return setup_buckets(t);
}

/* Turns what starts during backward into the step's whole reduction. */
lm_status trainer_dist_backward_begins(lm_trainer *t, int *bucketed) {
    *bucketed = 0;
    if (t->micro_in_step != t->s.grad_accum) return LM_OK; /* accumulating: nothing is final yet */
    /* Set for this backward only: no call on the other micro-batches, and
     * no pointer to the trainer left in the model once it is gone. */
    const lm_architecture_vtable *arch = &t->parts.model.plugin->vtable.architecture;
    LM_TRY(arch->set_grads_ready(t->parts.model.self, lm_grad_buckets_ready_fn, t->buckets));
    lm_grad_buckets_arm(t->buckets);
    *bucketed = 1;
    return LM_OK;
}

lm_status trainer_dist_backward_ends(lm_trainer *t, int bucketed, lm_status backward_status) {
    if (!bucketed) return backward_status;
    lm_status status = t->parts.model.plugin->vtable.architecture.set_grads_ready(t->parts.model.self, NULL, NULL);
    if (backward_status != LM_OK) {
        lm_grad_buckets_drain(t->buckets); /* nothing left writing into the gradients */
        return backward_status;
    }
    if (status == LM_OK) status = lm_grad_buckets_failed(t->buckets);
    if (status != LM_OK) {
        lm_grad_buckets_drain(t->buckets);
        lm_error_prefix("averaging the gradients across %d ranks during backward: ", t->world);
    }
    return status;
}

lm_status trainer_dist_reduce_gradients(lm_trainer *t) {
    if (!t->comm.plugin || t->grads_reduced) return LM_OK;
    /* Reduced once per step: micro-batches after it would add unreduced gradients. */
    if (t->micro_in_step != t->s.grad_accum)
        return lm_error_set(LM_ERR_INVALID, "clip_grad_norm: this step has %lld of its %lld micro-batches: across "
                                            "ranks, the gradients are averaged after the step's last one, so call "
                                            "clip_grad_norm() after it",
                            (long long)t->micro_in_step, (long long)t->s.grad_accum);
    lm_status status;
    /* The debug log says how long the step waited here: the reduction
     * backward did not hide (on a GPU, the time to queue it). */
    const int timed = lm_log_get_level() <= LM_LOG_DEBUG;
    const double start = timed ? lm_time_seconds() : 0.0;
    const size_t started = t->buckets ? lm_grad_buckets_started(t->buckets) : 0;
    if (t->buckets) {
        /* What backward did not start (all of it when backward did not run), then every wait. */
        status = lm_grad_buckets_finish(t->buckets);
    } else {
        /* The model queued its backward on its own stream: wait for it. */
        LM_TRY(t->dev->ops->sync(t->dev));
        status = comm_of(t)->all_reduce(t->comm.self, t->params.grads, t->params.n_params, LM_F32, LM_REDUCE_AVG);
    }
    if (timed && t->buckets)
        lm_log(LM_LOG_DEBUG, "training step %lld: %zu of %zu gradient buckets started during backward, %.3f ms "
                             "waited after it",
               (long long)t->step + 1, started, lm_grad_buckets_count(t->buckets),
               1e3 * (lm_time_seconds() - start));
    else if (timed)
        lm_log(LM_LOG_DEBUG, "training step %lld: gradients all-reduced after backward in %.3f ms",
               (long long)t->step + 1, 1e3 * (lm_time_seconds() - start));
    if (status != LM_OK) {
        lm_error_prefix("training step %lld: averaging the gradients across %d ranks: ", (long long)t->step + 1,
                        t->world);
        return status;
    }
    t->grads_reduced = 1;
    return LM_OK;
}

/* ---- ZeRO-1 ---------------------------------------------------------------------- */

static int by_offset(const void *a, const void *b) {
    const lm_param_desc *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Rank r's shard: elements [shard_start[r], shard_start[r + 1]) of the flat
 * buffers, cut at tensor boundaries (no tensor is split, so the optimizer
 * sees whole tensors with their weight-decay flags) near r / world of the
 * elements.  Every rank computes every shard: each broadcasts its own after
 * the update. */
static lm_status plan_shards(lm_trainer *t, lm_param_desc *sorted) {
    const size_t n = t->params.n_params, world = (size_t)t->world;
    t->shard_start = calloc(world + 1, sizeof *t->shard_start);
    if (!t->shard_start) return lm_error_set(LM_ERR_NOMEM, "out of memory planning the ZeRO-1 shards");
    size_t d = 0;
    for (size_t r = 1; r < world; r++) {
        const size_t target = n / world * r;
        /* the first tensor end at or past the target, leaving the shard before it a tensor at least */
        while (d < t->params.n_descs && (sorted[d].offset + sorted[d].storage < target ||
                                         sorted[d].offset + sorted[d].storage <= t->shard_start[r - 1]))
            d++;
        if (d >= t->params.n_descs)
            return lm_error_set(LM_ERR_INVALID, "zero_stage=1: the model's %zu tensors cannot be shared out among %d "
                                                "ranks (each holds whole tensors): use fewer ranks or zero_stage=0",
                                t->params.n_descs, t->world);
        t->shard_start[r] = sorted[d].offset + sorted[d].storage;
        d++;
    }
    t->shard_start[world] = n;
    for (size_t r = 0; r < world; r++)
        if (t->shard_start[r + 1] <= t->shard_start[r])
            return lm_error_set(LM_ERR_INVALID, "zero_stage=1: rank %zu would hold no tensor of the model's %zu: use "
                                                "fewer ranks or zero_stage=0",
                                r, t->params.n_descs);
    return LM_OK;
}

lm_status trainer_dist_bind_optimizer(lm_trainer *t) {
    const lm_optimizer_vtable *ovt = &t->parts.optimizer.plugin->vtable.optimizer;
    if (t->zero_stage == 0) return ovt->bind(t->parts.optimizer.self, &t->params);
    if (t->params.params_copy)
        return lm_error_set(LM_ERR_UNSUPPORTED, "zero_stage=1 keeps fp32 weights only, but this model also keeps a "
                                                "lower-precision copy of them (the built-in models: logits_dtype=bf16 "
                                                "or activation_dtype=bf16, which auto picks on CUDA with "
                                                "precision=bf16): use logits_dtype=fp32 activation_dtype=fp32, or "
                                                "zero_stage=0");
    const size_t n_descs = t->params.n_descs;
    lm_param_desc *sorted = malloc((n_descs ? n_descs : 1) * sizeof *sorted);
    if (!sorted) return lm_error_set(LM_ERR_NOMEM, "out of memory planning the ZeRO-1 shards");
    memcpy(sorted, t->params.descs, n_descs * sizeof *sorted);
    qsort(sorted, n_descs, sizeof *sorted, by_offset);
    lm_status status = plan_shards(t, sorted);
    if (status != LM_OK) {
        free(sorted);
        return status;
    }
    /* This rank's shard as a parameter set of its own: its tensors, their
     * offsets from the shard's start. */
    const size_t start = t->shard_start[t->rank], end = t->shard_start[t->rank + 1];
    size_t kept = 0;
    for (size_t i = 0; i < n_descs; i++) {
        if (sorted[i].offset < start || sorted[i].offset >= end) continue;
        sorted[kept] = sorted[i];
        sorted[kept].offset -= start;
        kept++;
    }
    t->shards = (lm_checkpoint_shards){t->comm, t->rank, t->world, t->shard_start};
    t->shard_descs = sorted;
    t->shard_set = t->params;
    t->shard_set.descs = sorted;
    t->shard_set.n_descs = kept;
    t->shard_set.n_params = end - start;
    t->shard_set.params = t->params.params + start;
    t->shard_set.grads = (float *)t->params.grads + start;
    return ovt->bind(t->parts.optimizer.self, &t->shard_set);
}

const lm_checkpoint_shards *trainer_dist_checkpoint_shards(const lm_trainer *t) {
    return t->zero_stage && t->world > 1 ? &t->shards : NULL;
}

lm_status trainer_dist_gather_params(lm_trainer *t) {
    if (t->zero_stage == 0 || t->world == 1) return LM_OK;
    LM_TRY(t->dev->ops->sync(t->dev)); /* the update is queued on the model's device */
    for (int r = 0; r < t->world; r++) {
        const size_t start = t->shard_start[r], count = t->shard_start[r + 1] - start;
        lm_status status = comm_of(t)->broadcast(t->comm.self, t->params.params + start, count * sizeof(float), r);
        if (status != LM_OK) {
            lm_error_prefix("training step %lld: gathering rank %d's updated weights (ZeRO-1): ", (long long)t->step + 1,
                            r);
            return status;
        }
    }
    return LM_OK;
}

lm_status trainer_dist_reduce(lm_trainer *t, double *values, size_t n, lm_reduce_op op) {
    if (!t->comm.plugin || t->world == 1) return LM_OK;
    return comm_of(t)->all_reduce(t->comm.self, values, n, LM_F64, op);
}

lm_status trainer_dist_barrier(lm_trainer *t) {
    if (!t->comm.plugin || t->world == 1) return LM_OK;
    return comm_of(t)->barrier(t->comm.self);
}
