/* The trainer's state, shared by its files: trainer.c (the step, logging,
 * evaluation), trainer_settings.c (settings into a plan, training
 * arguments), trainer_resume.c (trainer_state.json: save and resume). */
#ifndef LMCORE_TRAINER_INTERNAL_H
#define LMCORE_TRAINER_INTERNAL_H

#include <limits.h>

#include "checkpoint.h"
#include "grad_buckets.h"
#include "dir_lock.h"
#include "sysmetrics.h"
#include "trainer.h"
#include "trainer_graph.h"

/* The settings, as read (before the data gives them a plan). */
typedef struct trainer_settings {
    double lr, max_grad_norm, warmup_ratio;
    double epochs; /* num_train_epochs: a float, as in TrainingArguments (2.5 ends halfway through the third) */
    int64_t max_steps, batch_size, eval_batch_size, grad_accum, warmup_steps, eval_max_batches;
    uint64_t seed;
    char schedule[32];
    char checkpoint_dir[PATH_MAX], resume[PATH_MAX];
    /* Data parallel: gradient buckets of ddp_bucket_cap_mb MiB reduced
     * during backward (ddp_overlap), trainer_distributed.c */
    double ddp_bucket_cap_mb;
    int ddp_overlap;
    /* for training_args.json: the optimizer as the trainer was told it */
    double weight_decay, beta1, beta2, eps;
    int cuda_graph; /* cuda_graph: 1 auto (graphs where the device and model allow), 0 off */
} trainer_settings;

struct lm_trainer {
    lm_trainer_parts parts; /* loggers points at `loggers` */
    lm_handle *loggers;
    lm_arch_info arch;
    lm_param_set params;
    lm_device *dev;
    lm_dir_lock *checkpoint_lock; /* held while the trainer lives (dir_lock.h) */
    trainer_settings s;
    lm_trainer_plan plan;
    lm_schedule schedule;

    /* The step state and the evaluation's accumulator, in device memory. */
    lm_step_state *state, *eval_state;

    /* Where the run is (host side; the device's counters agree). */
    int64_t step, epoch, steps_in_epoch;
    size_t cursor;           /* next block of the epoch's shuffled order */
    uint64_t micro_batches;  /* batches made: dropout and masking counter */
    int64_t micro_in_step;   /* micro-batches made for the step in progress */
    int grads_written;       /* a backward (or a zeroing) wrote this step's gradients */
    size_t *order;
    int32_t *tokens;

    /* The batch handed out last. */
    const lm_batch *batch;
    uint64_t batch_serial, batch_index;
    int batch_used;

    /* Logging and evaluation intervals. */
    int begun, finished;
    double start_time, log_time;
    int64_t first_step;      /* the step this process started from (resume) */
    int64_t last_log_step, last_eval_step;
    uint64_t tokens_since_log;
    double last_eval_loss;
    lm_sysmetrics *sysmetrics;
    lm_scalar system[LM_SYSMETRICS_MAX];
    size_t n_system;

    /* Data parallel (trainer_distributed.c): the communicator (plugin NULL
     * when there is none), this rank and the number of ranks; whether this
     * step's gradients were averaged already. */
    lm_handle comm;
    int rank, world;
    int grads_reduced;
    /* ZeRO-1 (zero_stage 1): each rank's shard of the flat buffers
     * (shard_start[r] .. shard_start[r + 1], world + 1 entries) and this
     * rank's as the parameter set its optimizer is bound to. */
    int zero_stage;
    size_t *shard_start;
    lm_param_desc *shard_descs;
    lm_param_set shard_set;
    lm_checkpoint_shards shards; /* the same, for checkpoints */
    /* The buckets reduced as backward finishes them (NULL: one all-reduce
     * after backward: one rank, ddp_overlap=false, or a model or
     * communicator without the ABI 2.1 slots). */
    lm_grad_buckets *buckets;

    /* The step's parts as CUDA graphs (trainer_graph.c; enabled 0: eager). */
    trainer_graphs graphs;

    char resumed_from[PATH_MAX];
    char *resumed_extra; /* the checkpoint's "fit" object, as JSON text ("" if none) */
};

/* trainer_settings.c */
lm_status trainer_read_settings(lm_trainer *t, lm_config *settings, lm_config *schedule_kwargs, int host_schedule);
/* The optimizer's settings_json as a parsed object (the caller frees it). */
lm_status trainer_optimizer_settings(const lm_trainer *t, lm_json **out);

/* trainer_resume.c */
lm_status trainer_state_json(lm_trainer *t, const lm_step_state *state, const char *extra_json, lm_buffer *out);
lm_status trainer_resume(lm_trainer *t, const char *dir);

/* trainer_distributed.c */
/* The communicator from the parts, and zero_stage's check: before the
 * settings are read (the plan's steps count the ranks' batches). */
lm_status trainer_dist_init(lm_trainer *t, const lm_trainer_parts *parts);
/* Once the model and optimizer are bound: the communicator reaches the
 * model's memory, every rank runs the same run (a hash of the settings,
 * model and data), rank 0's weights everywhere. */
lm_status trainer_dist_setup(lm_trainer *t);
/* Binds the optimizer to the parameters (zero_stage 0) or to this rank's
 * shard of them (ZeRO-1: the optimizer's state is 1/world of the model's). */
lm_status trainer_dist_bind_optimizer(lm_trainer *t);
/* ZeRO-1: every rank's updated shard broadcast to the others (nothing at
 * zero_stage 0). */
lm_status trainer_dist_gather_params(lm_trainer *t);
/* ZeRO-1's shards for checkpoints (NULL at zero_stage 0 or on one rank). */
const lm_checkpoint_shards *trainer_dist_checkpoint_shards(const lm_trainer *t);
/* Around the backward of a micro-batch: the step's last one starts the
 * buckets as the model reports its gradients final (nothing otherwise). */
lm_status trainer_dist_backward_begins(lm_trainer *t, int *bucketed);
lm_status trainer_dist_backward_ends(lm_trainer *t, int bucketed, lm_status backward_status);
/* Averages this step's gradients across ranks (once per step). */
lm_status trainer_dist_reduce_gradients(lm_trainer *t);
/* Host values reduced across ranks (nothing without a communicator). */
lm_status trainer_dist_reduce(lm_trainer *t, double *values, size_t n, lm_reduce_op op);
lm_status trainer_dist_barrier(lm_trainer *t);

/* trainer_graph.c */
/* Whether this run's steps run as graphs (cuda_graph, the device, the model). */
void trainer_graphs_setup(lm_trainer *t);
void trainer_graphs_destroy(lm_trainer *t);
/* forward_backward's device work for a batch (graphs enabled). */
lm_status trainer_graph_micro_batch(lm_trainer *t, const lm_batch *batch);
/* optimizer_step's device work (graphs enabled); must_run_eagerly: the step
 * has host work inside. */
lm_status trainer_graph_update(lm_trainer *t, int must_run_eagerly);

/* trainer.c */
/* The model's vtable (the trainer's parts hold a plugin of kind architecture). */
static inline const lm_architecture_vtable *trainer_arch(const lm_trainer *t) {
    return &t->parts.model.plugin->vtable.architecture;
}

/* The eager parts the graphs stand for: forward, step_micro_batch_end and
 * backward of a batch; the schedule, the optimizer's step and step_finish
 * (`unused` is NULL: the shape of a step part for trainer_graph.c). */
lm_status trainer_run_micro_batch(lm_trainer *t, const lm_batch *batch);
lm_status trainer_run_update(lm_trainer *t, const lm_batch *unused);
void trainer_shuffle(lm_trainer *t, int64_t epoch);
/* The state as the device has it (one download), refused when it diverged. */
lm_status trainer_read_state(lm_trainer *t, lm_step_state *state);
/* Host-to-device writes of single fields of the step state. */
lm_status trainer_upload_field(lm_trainer *t, void *field_in_state, const void *value, size_t bytes);

#endif
