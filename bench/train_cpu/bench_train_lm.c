/* Training-step benchmark of the GPT-2 and BERT plugins on the CPU (peer:
 * bench_train_torch.py, run by bench_train_cpu.sh).
 *
 *   bench_train_lm [model=gpt2|bert] [key=value ...]
 *     steps=20 warmup=3 threads=2 seed=1234 batch=8 block=128 fused=1
 *     and any key of the model, which wins over the benchmark shape:
 *       gpt2: n_layer=4 n_head=4 n_embd=256 vocab_size=8192 n_positions=128
 *             embd_pdrop/attn_pdrop/resid_pdrop=0.1
 *       bert: num_hidden_layers=4 num_attention_heads=4 hidden_size=256
 *             intermediate_size=1024 vocab_size=8192 max_position_embeddings=128
 *             hidden_dropout_prob/attention_probs_dropout_prob=0.1
 *
 * Loads the architecture, its objective (gpt2 + clm, bert + mlm) and the
 * adamw optimizer from the build tree, builds random token batches from a
 * fixed seed, and times whole training steps the way the trainer runs them
 * (core/train/trainer.c, plugin ABI 2): the micro-batch counter uploaded to
 * the step state, forward_train (its loss into the state; the trainer's
 * call since ABI 2.1, with the loss gradient computed in the same pass over
 * the logits: the fused classifier; fused=0 calls forward instead, whose
 * loss backward then differentiates), step_micro_batch_end, backward, step_clip (clipping at 1.0), step_schedule (a constant learning
 * rate of 2e-5), the optimizer's step (AdamW, Trainer hyper-parameters) and
 * step_finish — all queued on the model's device, none reading it back.
 * The objective's make_batch (the shift for clm, the 15 % masking for mlm)
 * runs outside the timed region, as the data collator does in the
 * Trainer's data loader.  Prints one JSON line: median step time, tokens/s
 * (every input token counts, masked or not), peak RSS, the BLAS in use, the
 * losses of the first and last step (read from the step state after those
 * steps, outside the timed region) and a fingerprint of the trained weights
 * (for reproducibility checks). */
#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "lmcore/lmcore.h"

typedef struct bench_settings {
    int steps, warmup, threads, batch, block, fused;
    unsigned long long seed;
} bench_settings;

/* What differs between the two models. */
typedef struct bench_model {
    const char *name, *arch_plugin, *objective_plugin;
    const char *const *defaults; /* the benchmark shape (issues 4 and 5) */
    int masked_lm;               /* bert + mlm: a WordPiece-like vocabulary with specials */
} bench_model;

static const char *const gpt2_defaults[] = {"n_layer=4",       "n_head=4",       "n_embd=256",
                                            "vocab_size=8192", "n_positions=128", "embd_pdrop=0.1",
                                            "attn_pdrop=0.1",  "resid_pdrop=0.1", NULL};
static const char *const bert_defaults[] = {"num_hidden_layers=4",          "num_attention_heads=4",
                                            "hidden_size=256",              "intermediate_size=1024",
                                            "vocab_size=8192",              "max_position_embeddings=128",
                                            "hidden_dropout_prob=0.1",      "attention_probs_dropout_prob=0.1",
                                            NULL};

/* The BERT vocabulary the benchmark pretends to have: a WordPiece layout
 * with its five specials first ([PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3,
 * [MASK] 4).  Batches hold ordinary tokens only (ids >= 5), so that 15 % of
 * every block is selected, as bench_train_torch.py does. */
enum { BERT_PAD, BERT_UNK, BERT_CLS, BERT_SEP, BERT_MASK, BERT_N_SPECIAL };
static const int32_t bert_special_ids[BERT_N_SPECIAL] = {BERT_PAD, BERT_UNK, BERT_CLS, BERT_SEP, BERT_MASK};

static const bench_model models[] = {
    {"gpt2", "lm_arch_gpt2.so", "lm_objective_clm.so", gpt2_defaults, 0},
    {"bert", "lm_arch_bert.so", "lm_objective_mlm.so", bert_defaults, 1},
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The optimizer every model trains with. */
#define OPTIMIZER_PLUGIN "lm_optimizer_adamw.so"

/* The bench calls every slot it uses directly: the plugin's table must be
 * at least this build's (the registry would read missing slots as NULL). */
static size_t kind_vtable_size(int kind) {
    switch (kind) {
    case LM_KIND_ARCHITECTURE: return offsetof(lm_architecture_vtable, hf_config) + sizeof(void *);
    case LM_KIND_OBJECTIVE: return sizeof(lm_objective_vtable);
    case LM_KIND_OPTIMIZER: return sizeof(lm_optimizer_vtable);
    default: return 0;
    }
}

static const void *load_vtable(const char *path, int kind, void **handle_out, uint32_t *size_out) {
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* kept open: the vtables live in it */
    if (!handle) {
        fprintf(stderr, "bench_train_lm: dlopen %s: %s (build the plugins first)\n", path, dlerror());
        return NULL;
    }
    lm_plugin_describe_fn describe = (lm_plugin_describe_fn)dlsym(handle, LM_PLUGIN_DESCRIBE_SYMBOL);
    const lm_plugin_descriptor *d = describe ? describe() : NULL;
    if (!d || d->abi_major != LM_ABI_MAJOR || d->abi_minor > LM_ABI_MINOR || d->kind != kind ||
        d->vtable_size < kind_vtable_size(kind)) {
        fprintf(stderr, "bench_train_lm: %s is not a %s plugin of this build's ABI %d.%d (rebuild the plugins)\n",
                path, lm_plugin_kind_name((lm_plugin_kind)kind), LM_ABI_MAJOR, LM_ABI_MINOR);
        return NULL;
    }
    if (handle_out) *handle_out = handle;
    if (size_out) *size_out = d->vtable_size;
    return d->vtable;
}

/* "OpenBLAS 0.3.21 ... (core Cooperlake, 1 thread)", read from the library
 * the plugin actually loaded. */
static void describe_blas(void *arch_handle, char *out, size_t size) {
    const char *(*config)(void) = (const char *(*)(void))dlsym(arch_handle, "openblas_get_config");
    const char *(*core)(void) = (const char *(*)(void))dlsym(arch_handle, "openblas_get_corename");
    int (*parallel)(void) = (int (*)(void))dlsym(arch_handle, "openblas_get_parallel");
    if (!config) {
        snprintf(out, size, "unknown BLAS");
        return;
    }
    static const char *modes[] = {"sequential", "pthreads", "OpenMP"};
    int mode = parallel ? parallel() : -1;
    snprintf(out, size, "%s, core %s, %s build", config(), core ? core() : "?",
             mode >= 0 && mode <= 2 ? modes[mode] : "unknown");
}

static int split_key(const char *arg, const char *key, long long *value) {
    size_t n = strlen(key);
    if (strncmp(arg, key, n) != 0 || arg[n] != '=') return 0;
    *value = atoll(arg + n + 1);
    return 1;
}

static int fail(const char *what) {
    fprintf(stderr, "bench_train_lm: %s: %s\n", what, lm_error_message());
    return 1;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_train_lm [model=gpt2|bert steps=N warmup=N threads=N batch=N block=N seed=N "
                    "fused=0|1 model_key=value ...]\n");
    return 2;
}

/* model=NAME anywhere on the command line (gpt2 when absent). */
static const bench_model *pick_model(int argc, char **argv) {
    const char *name = "gpt2";
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "model=", 6) == 0) name = argv[i] + 6;
    for (size_t i = 0; i < sizeof models / sizeof *models; i++)
        if (strcmp(models[i].name, name) == 0) return &models[i];
    fprintf(stderr, "bench_train_lm: model '%s' is unknown: use gpt2 or bert\n", name);
    return NULL;
}

/* What the objective's bind() reads of the tokenizer. */
static lm_vocab_info vocab_for(const bench_model *model, int32_t vocab_size) {
    lm_vocab_info vocab;
    memset(&vocab, 0, sizeof vocab);
    vocab.vocab_size = vocab_size;
    vocab.unk_id = vocab.pad_id = vocab.bos_id = vocab.eos_id = vocab.cls_id = vocab.sep_id = vocab.mask_id = -1;
    if (model->masked_lm) {
        vocab.pad_id = BERT_PAD;
        vocab.unk_id = BERT_UNK;
        vocab.cls_id = BERT_CLS;
        vocab.sep_id = BERT_SEP;
        vocab.mask_id = BERT_MASK;
        vocab.special_ids = bert_special_ids;
        vocab.n_special = BERT_N_SPECIAL;
    }
    return vocab;
}

/* Reads the step state back (a host read: outside the timed region only). */
static int read_state(lm_device *dev, const lm_step_state *state, lm_step_state *out) {
    if (dev->ops->download(dev, out, state, sizeof *out) != LM_OK) return fail("read the step state");
    return 0;
}

int main(int argc, char **argv) {
    bench_settings s = {20, 3, 2, 8, 128, 1, 1234};
    const char *plugin_dir = getenv("LMCORE_BENCH_PLUGIN_DIR") ? getenv("LMCORE_BENCH_PLUGIN_DIR")
                                                               : LMCORE_BENCH_PLUGIN_DIR;
    const bench_model *model_kind = pick_model(argc, argv);
    if (!model_kind) return usage();
    lm_config *cfg = NULL;
    char what[64];
    snprintf(what, sizeof what, "architecture '%s'", model_kind->name);
    if (lm_config_create(&cfg, what) != LM_OK) return fail("config");
    for (const char *const *d = model_kind->defaults; *d; d++) lm_config_set_parsed(cfg, *d);
    lm_config_set_parsed(cfg, "device=cpu");
    for (int i = 1; i < argc; i++) {
        long long v;
        if (strncmp(argv[i], "model=", 6) == 0) continue;
        if (split_key(argv[i], "steps", &v)) s.steps = (int)v;
        else if (split_key(argv[i], "warmup", &v)) s.warmup = (int)v;
        else if (split_key(argv[i], "threads", &v)) s.threads = (int)v;
        else if (split_key(argv[i], "batch", &v)) s.batch = (int)v;
        else if (split_key(argv[i], "block", &v)) s.block = (int)v;
        else if (split_key(argv[i], "seed", &v)) s.seed = (unsigned long long)v;
        else if (split_key(argv[i], "fused", &v)) s.fused = v != 0;
        else if (!strchr(argv[i], '=') || lm_config_set_parsed(cfg, argv[i]) != LM_OK) return usage();
    }
    if (s.steps < 1 || s.warmup < 0 || s.threads < 1 || s.batch < 1 || s.block < 2) {
        fprintf(stderr, "bench_train_lm: steps, threads, batch >= 1, block >= 2, warmup >= 0\n");
        return 2;
    }
    lm_config_set_int(cfg, "threads", s.threads);

    char path[1024];
    void *arch_handle = NULL;
    snprintf(path, sizeof path, "%s/%s", plugin_dir, model_kind->arch_plugin);
    uint32_t arch_vtable_size = 0;
    const lm_architecture_vtable *arch = load_vtable(path, LM_KIND_ARCHITECTURE, &arch_handle, &arch_vtable_size);
    snprintf(path, sizeof path, "%s/%s", plugin_dir, model_kind->objective_plugin);
    const lm_objective_vtable *obj = load_vtable(path, LM_KIND_OBJECTIVE, NULL, NULL);
    snprintf(path, sizeof path, "%s/%s", plugin_dir, OPTIMIZER_PLUGIN);
    const lm_optimizer_vtable *opt = load_vtable(path, LM_KIND_OPTIMIZER, NULL, NULL);
    if (!arch || !obj || !opt) return 1;
    /* As the trainer: forward_train when the plugin has it (ABI 2.1). */
    const int use_forward_train = s.fused && arch_vtable_size >= offsetof(lm_architecture_vtable, forward_train) +
                                                                     sizeof(void *) &&
                                  arch->forward_train;

    void *model = NULL, *objective = NULL, *optimizer = NULL;
    if (arch->create(&model, cfg) != LM_OK || lm_config_validate(cfg) != LM_OK) return fail("create the model");
    lm_config *obj_cfg = NULL;
    snprintf(what, sizeof what, "objective of '%s'", model_kind->name);
    if (lm_config_create(&obj_cfg, what) != LM_OK) return fail("config");
    if (model_kind->masked_lm) lm_config_set_int(obj_cfg, "seed", (int64_t)s.seed); /* the masks */
    if (obj->create(&objective, obj_cfg) != LM_OK) return fail("create the objective");
    /* The Trainer's recipe: AdamW (0.9, 0.999, 1e-8), weight decay 0.01. */
    lm_config *opt_cfg = NULL;
    if (lm_config_create(&opt_cfg, "optimizer 'adamw'") != LM_OK) return fail("config");
    lm_config_set_number(opt_cfg, "weight_decay", 0.01);
    lm_config_set_number(opt_cfg, "beta1", 0.9);
    lm_config_set_number(opt_cfg, "beta2", 0.999);
    lm_config_set_number(opt_cfg, "eps", 1e-8);
    if (opt->create(&optimizer, opt_cfg) != LM_OK || lm_config_validate(opt_cfg) != LM_OK)
        return fail("create the optimizer");
    lm_arch_info info;
    if (arch->info(model, &info) != LM_OK) return fail("info");
    lm_vocab_info vocab = vocab_for(model_kind, info.vocab_size);
    if (obj->bind(objective, &info, &vocab) != LM_OK) return fail("bind the objective");
    if (arch->init_weights(model, 42) != LM_OK) return fail("init_weights");
    if (arch->set_training(model, 1) != LM_OK) return fail("set_training");
    lm_param_set params;
    if (arch->parameters(model, &params) != LM_OK) return fail("parameters");
    if (opt->bind(optimizer, &params) != LM_OK) return fail("bind the optimizer");

    /* The step state on the model's device, as the trainer starts a run:
     * a constant learning rate of 2e-5, clipping at 1.0. */
    lm_device *dev = params.device;
    const int grad_accum = 1;
    lm_step_state *state = NULL, host;
    if (dev->ops->alloc(dev, (void **)&state, sizeof *state, "the step state") != LM_OK) return fail("alloc");
    dev->ops->retain(dev); /* held while the state lives on it, as the trainer does */
    memset(&host, 0, sizeof host);
    host.seed = s.seed;
    host.schedule.kind = LM_SCHEDULE_CONSTANT;
    host.schedule.base_lr = 2e-5;
    host.max_grad_norm = 1.0;
    host.lr = host.schedule.base_lr;
    host.clip_scale = 1.0f;
    host.grad_norm = NAN;
    if (dev->ops->upload(dev, state, &host, sizeof host) != LM_OK) return fail("upload the step state");

    /* A fresh batch of random ordinary tokens every step. */
    const int B = s.batch, T = s.block, total = s.warmup + s.steps;
    const size_t n = (size_t)B * (size_t)T;
    const int32_t first_token = model_kind->masked_lm ? BERT_N_SPECIAL : 0; /* no special in the blocks */
    const uint32_t id_range = (uint32_t)(info.vocab_size - first_token);
    int32_t *tokens = malloc(n * sizeof *tokens);
    double *times = malloc((size_t)total * sizeof *times);
    if (!tokens || !times) {
        fprintf(stderr, "bench_train_lm: out of memory\n");
        return 1;
    }
    float first_loss = NAN, last_loss = NAN;
    int64_t scored = 0;
    for (int step = 0; step < total; step++) {
        for (size_t i = 0; i < n; i++)
            tokens[i] = first_token +
                        (int32_t)lm_rng_below(s.seed, LM_RNG_STREAM_USER, (uint64_t)step * n + i, id_range);
        const lm_batch *batch = NULL; /* the objective's, until its next make_batch */
        if (obj->make_batch(objective, tokens, B, T, (uint64_t)step, &batch) != LM_OK) return fail("make_batch");
        if (batch->n_targets == 0) {
            fprintf(stderr, "bench_train_lm: step %d scores no token: use larger batches\n", step);
            return 1;
        }
        if (step >= s.warmup) scored += batch->n_targets;
        const uint64_t micro_batch = (uint64_t)step; /* one micro-batch per step */

        double start = now_seconds();
        if (dev->ops->upload(dev, &state->micro_batch, &micro_batch, sizeof micro_batch) != LM_OK)
            return fail("upload the micro-batch counter");
        if ((use_forward_train ? arch->forward_train(model, batch, state, 1.0f / (float)grad_accum)
                               : arch->forward(model, batch, state)) != LM_OK)
            return fail("forward");
        if (dev->ops->step_micro_batch_end(dev, state, 1.0, (double)grad_accum, 1) != LM_OK)
            return fail("step_micro_batch_end");
        if (arch->backward(model, 1.0f / (float)grad_accum, 0) != LM_OK) return fail("backward");
        if (dev->ops->step_clip(dev, state, params.grads, (lm_dtype)params.grad_dtype, params.n_params) != LM_OK)
            return fail("step_clip");
        if (dev->ops->step_schedule(dev, state) != LM_OK) return fail("step_schedule");
        if (opt->step(optimizer, state) != LM_OK) return fail("the optimizer's step");
        if (dev->ops->step_finish(dev, state) != LM_OK) return fail("step_finish");
        /* A GPU would still be running the queued step: wait for it (the
         * CPU device has finished everything already). */
        if (dev->type != LM_DEVICE_CPU && dev->ops->sync(dev) != LM_OK) return fail("sync");
        times[step] = now_seconds() - start;
        if (step == 0 || step == total - 1) {
            if (read_state(dev, state, &host)) return 1;
            if (step == 0) first_loss = host.loss;
            last_loss = host.loss;
        }
    }
    if (host.bad_step != 0)
        fprintf(stderr, "bench_train_lm: the %s at step %lld was %g: the run diverged\n",
                host.bad_what == LM_BAD_LOSS ? "loss" : "gradient norm", (long long)host.bad_step,
                (double)host.bad_value);
    double peak_rss = peak_rss_mb(); /* before the fingerprint's copy of the weights */
    qsort(times + s.warmup, (size_t)s.steps, sizeof *times, compare_doubles);
    double median = s.steps % 2 ? times[s.warmup + s.steps / 2]
                                : 0.5 * (times[s.warmup + s.steps / 2 - 1] + times[s.warmup + s.steps / 2]);
    /* A fingerprint of the trained weights: equal across runs (and thread
     * counts) when the training is bit-for-bit reproducible. */
    uint64_t fingerprint = 1469598103934665603ull; /* FNV-1a over the parameter bytes */
    float *weights = malloc(params.n_params * sizeof *weights);
    if (!weights || dev->ops->download(dev, weights, params.params, params.n_params * sizeof *weights) != LM_OK)
        return fail("download the parameters");
    const unsigned char *bytes = (const unsigned char *)weights;
    for (size_t i = 0; i < params.n_params * sizeof *weights; i++)
        fingerprint = (fingerprint ^ bytes[i]) * 1099511628211ull;
    free(weights);
    char blas[512];
    describe_blas(arch_handle, blas, sizeof blas);
    printf("{\"impl\": \"lmcore\", \"model\": \"%s\", \"median_step_s\": %.6f, \"tokens_per_s\": %.1f, "
           "\"peak_rss_mb\": %.1f, \"steps\": %d, \"threads\": %d, \"n_params\": %lld, "
           "\"scored_per_step\": %.1f, \"first_loss\": %.9g, \"last_loss\": %.9g, \"params_fnv1a\": \"%016llx\", "
           "\"fused_classifier\": %s, \"device\": \"%s\", \"blas\": \"%s\"}\n",
           model_kind->name, median, (double)n / median, peak_rss, s.steps, s.threads, (long long)info.n_params,
           (double)scored / s.steps, (double)first_loss, (double)last_loss, (unsigned long long)fingerprint,
           use_forward_train ? "true" : "false", info.device, blas);
    /* The optimizer's state and the step state live on the model's device,
     * which their holds keep open whatever goes first. */
    opt->destroy(optimizer);
    arch->destroy(model);
    dev->ops->free(dev, state);
    dev->ops->release(dev);
    obj->destroy(objective);
    lm_config_destroy(cfg);
    lm_config_destroy(obj_cfg);
    lm_config_destroy(opt_cfg);
    free(tokens);
    free(times);
    return 0;
}
