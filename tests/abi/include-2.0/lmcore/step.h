/* lmcore — the state of a training step, kept in device memory.
 *
 * Every scalar a training step needs or produces lives in one small struct
 * in the memory of the model's device (lm_device.alloc): the dropout key,
 * the step count, the learning-rate schedule and this step's learning rate,
 * the gradient norm and the clip scale, the loss and its running sums, and
 * a flag for a loss or gradient norm that was not finite.  Kernels read and
 * update it (lm_device_ops.step_*; a model's forward writes `loss`; an
 * optimizer reads `lr`, `step`, `clip_scale` and `bad_step`); the host reads
 * it only when it logs, evaluates or saves.  So a step never waits for the
 * device, and the same step can be replayed as one captured CUDA graph
 * (PyTorch's capturable AdamW and CUDA-graph training work the same way).
 *
 * On the CPU the "device memory" is host memory and the step_* operations
 * are plain C functions, but the protocol is the same: the host does not
 * read the struct between logging points either.
 *
 * Fields are set by the host where marked "host", at the start of a run or
 * of a resume, through lm_device_ops.upload; everything else is written by
 * device operations.  Layout: part of the ABI (tests/core/test_abi.c). */
#ifndef LMCORE_STEP_H
#define LMCORE_STEP_H

#include <stdint.h>

#include "rng.h" /* LM_HOST_DEVICE */

#if !defined(__CUDACC__)
#include <math.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Hugging Face get_scheduler() names (transformers/optimization.py), as
 * multipliers of base_lr, plus LM_SCHEDULE_HOST: the host writes `lr`
 * itself before each step (a Lua function schedule). */
typedef enum lm_schedule_kind {
    LM_SCHEDULE_LINEAR = 0,
    LM_SCHEDULE_COSINE = 1,
    LM_SCHEDULE_COSINE_WITH_RESTARTS = 2,
    LM_SCHEDULE_POLYNOMIAL = 3,
    LM_SCHEDULE_CONSTANT = 4,
    LM_SCHEDULE_CONSTANT_WITH_WARMUP = 5,
    LM_SCHEDULE_INVERSE_SQRT = 6,
    LM_SCHEDULE_HOST = 7
} lm_schedule_kind;
#define LM_SCHEDULE_KIND_COUNT 8

typedef struct lm_schedule {
    int32_t kind;          /* lm_schedule_kind */
    int32_t reserved0;
    double base_lr;        /* the peak learning rate (TrainingArguments.learning_rate) */
    int64_t warmup_steps;  /* linear warmup from 0 over these steps (not for constant) */
    int64_t total_steps;   /* num_training_steps */
    double num_cycles;     /* cosine: 0.5 (half a wave); cosine_with_restarts: 1 */
    double power;          /* polynomial: 1.0 */
    double lr_end;         /* polynomial: 1e-7 (the learning rate reached at total_steps) */
    double timescale;      /* inverse_sqrt: warmup_steps, or 10000 without warmup */
} lm_schedule;

/* Where lm_step_state.bad_what says the non-finite value was seen. */
enum { LM_BAD_NONE = 0, LM_BAD_LOSS = 1, LM_BAD_GRAD_NORM = 2 };

/* Running sums of step losses (lm_step_state.loss_sums): each finished step
 * adds its loss to all four; the host clears one when its interval starts. */
enum { LM_LOSS_SUM_RUN = 0, LM_LOSS_SUM_EPOCH = 1, LM_LOSS_SUM_LOG = 2, LM_LOSS_SUM_EVAL = 3, LM_LOSS_SUMS = 4 };

typedef struct lm_step_state {
    /* The dropout key, first: forward reads these two words from device
     * memory (masks are a function of seed, micro_batch, site and element,
     * lmcore/rng.h), so a captured step needs no new kernel arguments. */
    uint64_t seed;          /* host: the run's seed */
    uint64_t micro_batch;   /* host: the index of the micro-batch forward runs next */
    int64_t step;           /* optimizer steps done (step_finish adds 1); t = step + 1 in an update */
    int64_t bad_step;       /* 0, or the 1-based step whose loss or gradient norm first was not finite:
                               from then on optimizers update nothing */
    lm_schedule schedule;   /* host */
    double max_grad_norm;   /* host: clip the global norm to this; 0: never clip */
    double lr;              /* the learning rate of the next update (step_schedule, or the host for HOST) */
    double loss_sum;        /* Σ loss · num / den over this step's micro-batches (step_micro_batch_end) */
    double step_loss;       /* the loss of the last finished step (step_finish) */
    double loss_sums[LM_LOSS_SUMS]; /* Σ step_loss since the run / epoch / last log / last evaluation began */
    float loss;             /* the mean loss of the last forward with labels (written by the model) */
    float grad_norm;        /* global L2 norm of this step's gradients, before clipping (step_clip) */
    float clip_scale;       /* what the update multiplies the gradients by: min(1, max / (norm + 1e-6)) */
    float bad_value;        /* the non-finite value seen */
    int32_t bad_what;       /* LM_BAD_* */
    int32_t scored;         /* micro-batches of this step that had a loss (step_micro_batch_end) */
    uint64_t reserved[8];   /* zero; room to grow without an ABI break */
} lm_step_state;

/* The learning rate of update number step + 1 (step = optimizer steps
 * done), as transformers' schedulers give it: LambdaLR's base_lr times the
 * schedule's factor at `step`.  Shared by the host and by the device
 * kernels (compiled as device code under nvcc), so both agree.  The linear
 * schedule keeps lmcore 1.x's order of operations (base_lr * remaining /
 * span), which its runs were made with.  HOST returns base_lr. */
LM_HOST_DEVICE double lm_schedule_lr(const lm_schedule *s, int64_t step) {
    const double base = s->base_lr;
    const int64_t warmup = s->warmup_steps > 0 ? s->warmup_steps : 0, total = s->total_steps;
    if (s->kind == LM_SCHEDULE_CONSTANT || s->kind == LM_SCHEDULE_HOST) return base;
    if (step < warmup) return base * (double)step / (double)warmup;
    const int64_t span = total - warmup > 1 ? total - warmup : 1;
    const double progress = (double)(step - warmup) / (double)span;
    switch (s->kind) {
    case LM_SCHEDULE_LINEAR: {
        const int64_t remaining = total - step > 0 ? total - step : 0;
        return base * (double)remaining / (double)span;
    }
    case LM_SCHEDULE_COSINE: {
        const double f = 0.5 * (1.0 + cos(3.14159265358979323846 * s->num_cycles * 2.0 * progress));
        return base * (f > 0.0 ? f : 0.0);
    }
    case LM_SCHEDULE_COSINE_WITH_RESTARTS: {
        if (progress >= 1.0) return 0.0;
        const double cycle = fmod(s->num_cycles * progress, 1.0);
        const double f = 0.5 * (1.0 + cos(3.14159265358979323846 * cycle));
        return base * (f > 0.0 ? f : 0.0);
    }
    case LM_SCHEDULE_POLYNOMIAL: {
        if (step > total) return s->lr_end;
        const double lr_range = base - s->lr_end;
        const double remaining = 1.0 - (double)(step - warmup) / (double)span;
        return lr_range * pow(remaining, s->power) + s->lr_end;
    }
    case LM_SCHEDULE_CONSTANT_WITH_WARMUP: return base;
    case LM_SCHEDULE_INVERSE_SQRT: {
        const double timescale = s->timescale > 0.0 ? s->timescale : 10000.0;
        const double shift = timescale - (double)warmup;
        return base * (1.0 / sqrt(((double)step + shift) / timescale));
    }
    default: return base;
    }
}

#ifdef __cplusplus
}
#endif
#endif
