/* Training-step benchmark of the GPT-2 and BERT plugins on the CPU (peer:
 * bench_train_torch.py, run by bench_train_cpu.sh).
 *
 *   bench_train_lm [model=gpt2|bert] [key=value ...]
 *     steps=20 warmup=3 threads=2 seed=1234 batch=8 block=128
 *     and any key of the model, which wins over the benchmark shape:
 *       gpt2: n_layer=4 n_head=4 n_embd=256 vocab_size=8192 n_positions=128
 *             embd_pdrop/attn_pdrop/resid_pdrop=0.1
 *       bert: num_hidden_layers=4 num_attention_heads=4 hidden_size=256
 *             intermediate_size=1024 vocab_size=8192 max_position_embeddings=128
 *             hidden_dropout_prob/attention_probs_dropout_prob=0.1
 *
 * Loads the architecture and its objective (gpt2 + clm, bert + mlm) from the
 * build tree, builds random token batches from a fixed seed, and times whole
 * training steps the way the trainer runs them: zero_grad, forward,
 * backward, grad_norm, optimizer_step (AdamW, Trainer hyper-parameters,
 * clipping at 1.0).  The objective's make_batch (the shift for clm, the 15 %
 * masking for mlm) runs outside the timed region, as the data collator does
 * in the Trainer's data loader.  Prints one JSON line: median step time,
 * tokens/s (every input token counts, masked or not), peak RSS, the BLAS in
 * use, the losses of the first and last step and a fingerprint of the
 * trained weights (for reproducibility checks). */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "lmcore/lmcore.h"

typedef struct bench_settings {
    int steps, warmup, threads, batch, block;
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

static const void *load_vtable(const char *path, int kind, void **handle_out) {
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* kept open: the vtables live in it */
    if (!handle) {
        fprintf(stderr, "bench_train_lm: dlopen %s: %s (build the plugins first)\n", path, dlerror());
        return NULL;
    }
    lm_plugin_describe_fn describe = (lm_plugin_describe_fn)dlsym(handle, LM_PLUGIN_DESCRIBE_SYMBOL);
    const lm_plugin_descriptor *d = describe ? describe() : NULL;
    if (!d || d->abi_major != LM_ABI_MAJOR || d->kind != kind) {
        fprintf(stderr, "bench_train_lm: %s is not a compatible plugin of kind %d\n", path, kind);
        return NULL;
    }
    if (handle_out) *handle_out = handle;
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
                    "model_key=value ...]\n");
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

int main(int argc, char **argv) {
    bench_settings s = {20, 3, 2, 8, 128, 1234};
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
    const lm_architecture_vtable *arch = load_vtable(path, LM_KIND_ARCHITECTURE, &arch_handle);
    snprintf(path, sizeof path, "%s/%s", plugin_dir, model_kind->objective_plugin);
    const lm_objective_vtable *obj = load_vtable(path, LM_KIND_OBJECTIVE, NULL);
    if (!arch || !obj) return 1;

    void *model = NULL, *objective = NULL;
    if (arch->create(&model, cfg) != LM_OK || lm_config_validate(cfg) != LM_OK) return fail("create the model");
    lm_config *obj_cfg = NULL;
    snprintf(what, sizeof what, "objective of '%s'", model_kind->name);
    if (lm_config_create(&obj_cfg, what) != LM_OK) return fail("config");
    if (model_kind->masked_lm) lm_config_set_int(obj_cfg, "seed", (int64_t)s.seed); /* the masks */
    if (obj->create(&objective, obj_cfg) != LM_OK) return fail("create the objective");
    lm_arch_info info;
    if (arch->info(model, &info) != LM_OK) return fail("info");
    lm_vocab_info vocab = vocab_for(model_kind, info.vocab_size);
    if (obj->bind(objective, &info, &vocab) != LM_OK) return fail("bind the objective");
    if (arch->init_weights(model, 42) != LM_OK) return fail("init_weights");
    if (arch->set_training(model, 1) != LM_OK) return fail("set_training");

    /* A fresh batch of random ordinary tokens every step. */
    const int B = s.batch, T = s.block, total = s.warmup + s.steps;
    const size_t n = (size_t)B * (size_t)T;
    const int32_t first_token = model_kind->masked_lm ? BERT_N_SPECIAL : 0; /* no special in the blocks */
    const uint32_t id_range = (uint32_t)(info.vocab_size - first_token);
    int32_t *tokens = malloc(n * sizeof *tokens), *input_ids = malloc(n * sizeof *input_ids);
    int32_t *labels = malloc(n * sizeof *labels);
    double *times = malloc((size_t)total * sizeof *times);
    if (!tokens || !input_ids || !labels || !times) {
        fprintf(stderr, "bench_train_lm: out of memory\n");
        return 1;
    }
    float first_loss = NAN, last_loss = NAN;
    int64_t scored = 0;
    for (int step = 0; step < total; step++) {
        for (size_t i = 0; i < n; i++)
            tokens[i] = first_token +
                        (int32_t)lm_rng_below(s.seed, LM_RNG_STREAM_USER, (uint64_t)step * n + i, id_range);
        lm_batch batch;
        memset(&batch, 0, sizeof batch);
        batch.input_ids = input_ids;
        batch.labels = labels;
        if (obj->make_batch(objective, tokens, B, T, (uint64_t)step, &batch) != LM_OK) return fail("make_batch");
        if (batch.n_targets == 0) {
            fprintf(stderr, "bench_train_lm: step %d scores no token: use larger batches\n", step);
            return 1;
        }
        batch.seed = s.seed;
        batch.step = (uint64_t)step;
        if (step >= s.warmup) scored += batch.n_targets;

        double start = now_seconds();
        float loss = 0.0f, norm = 0.0f;
        if (arch->zero_grad(model) != LM_OK) return fail("zero_grad");
        if (arch->forward(model, &batch, &loss) != LM_OK) return fail("forward");
        if (arch->backward(model, 1.0f) != LM_OK) return fail("backward");
        if (arch->grad_norm(model, &norm) != LM_OK) return fail("grad_norm");
        /* The Trainer's recipe: AdamW (0.9, 0.999, 1e-8), decay 0.01, clipping at 1.0. */
        float clip = norm > 1.0f ? (float)(1.0 / ((double)norm + 1e-6)) : 1.0f;
        lm_optim_params p = {2e-5f, 0.9f, 0.999f, 1e-8f, 0.01f, clip, step + 1};
        if (arch->optimizer_step(model, &p) != LM_OK) return fail("optimizer_step");
        times[step] = now_seconds() - start;
        if (step == 0) first_loss = loss;
        last_loss = loss;
    }
    double peak_rss = peak_rss_mb(); /* before the fingerprint's copy of the weights */
    qsort(times + s.warmup, (size_t)s.steps, sizeof *times, compare_doubles);
    double median = s.steps % 2 ? times[s.warmup + s.steps / 2]
                                : 0.5 * (times[s.warmup + s.steps / 2 - 1] + times[s.warmup + s.steps / 2]);
    /* A fingerprint of the trained weights: equal across runs (and thread
     * counts) when the training is bit-for-bit reproducible. */
    uint64_t fingerprint = 1469598103934665603ull; /* FNV-1a over the parameter bytes */
    float *params = malloc((size_t)info.n_params * sizeof *params);
    if (!params || arch->read_buffer(model, LM_BUFFER_PARAMS, params) != LM_OK) return fail("read_buffer");
    const unsigned char *bytes = (const unsigned char *)params;
    for (size_t i = 0; i < (size_t)info.n_params * sizeof *params; i++)
        fingerprint = (fingerprint ^ bytes[i]) * 1099511628211ull;
    free(params);
    char blas[512];
    describe_blas(arch_handle, blas, sizeof blas);
    printf("{\"impl\": \"lmcore\", \"model\": \"%s\", \"median_step_s\": %.6f, \"tokens_per_s\": %.1f, "
           "\"peak_rss_mb\": %.1f, \"steps\": %d, \"threads\": %d, \"n_params\": %lld, "
           "\"scored_per_step\": %.1f, \"first_loss\": %.9g, \"last_loss\": %.9g, \"params_fnv1a\": \"%016llx\", "
           "\"device\": \"%s\", \"blas\": \"%s\"}\n",
           model_kind->name, median, (double)n / median, peak_rss, s.steps, s.threads, (long long)info.n_params,
           (double)scored / s.steps, (double)first_loss, (double)last_loss, (unsigned long long)fingerprint,
           info.device, blas);
    arch->destroy(model);
    obj->destroy(objective);
    lm_config_destroy(cfg);
    lm_config_destroy(obj_cfg);
    free(tokens);
    free(input_ids);
    free(labels);
    free(times);
    return 0;
}
