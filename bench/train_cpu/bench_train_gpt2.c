/* Training-step benchmark of the GPT-2 plugin on the CPU (peer:
 * bench_train_torch.py, run by bench_train_cpu.sh).
 *
 *   bench_train_gpt2 [key=value ...]
 *     steps=20 warmup=3 threads=2 seed=1234 batch=8 block=128
 *     and any model key (n_layer=4 n_head=4 n_embd=256 vocab_size=8192
 *     n_positions=128 embd_pdrop/attn_pdrop/resid_pdrop=0.1 ...)
 *
 * Loads the gpt2 architecture and the clm objective from the build tree,
 * builds random token batches from a fixed seed, and times whole training
 * steps the way the trainer runs them: zero_grad, forward, backward,
 * grad_norm, optimizer_step (AdamW, Trainer hyper-parameters, clipping at
 * 1.0).  Prints one JSON line: median step time, tokens/s, peak RSS, the
 * BLAS in use, the losses of the first and last step and a fingerprint of
 * the trained weights (for reproducibility checks). */
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
        fprintf(stderr, "bench_train_gpt2: dlopen %s: %s (build the plugins first)\n", path, dlerror());
        return NULL;
    }
    lm_plugin_describe_fn describe = (lm_plugin_describe_fn)dlsym(handle, LM_PLUGIN_DESCRIBE_SYMBOL);
    const lm_plugin_descriptor *d = describe ? describe() : NULL;
    if (!d || d->abi_major != LM_ABI_MAJOR || d->kind != kind) {
        fprintf(stderr, "bench_train_gpt2: %s is not a compatible plugin of kind %d\n", path, kind);
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
    fprintf(stderr, "bench_train_gpt2: %s: %s\n", what, lm_error_message());
    return 1;
}

int main(int argc, char **argv) {
    bench_settings s = {20, 3, 2, 8, 128, 1234};
    const char *plugin_dir = getenv("LMCORE_BENCH_PLUGIN_DIR") ? getenv("LMCORE_BENCH_PLUGIN_DIR")
                                                               : LMCORE_BENCH_PLUGIN_DIR;
    lm_config *cfg = NULL;
    if (lm_config_create(&cfg, "architecture 'gpt2'") != LM_OK) return fail("config");
    /* The benchmark shape (issue 4), overridable from the command line. */
    const char *defaults[] = {"n_layer=4",      "n_head=4",        "n_embd=256",      "vocab_size=8192",
                              "n_positions=128", "embd_pdrop=0.1", "attn_pdrop=0.1", "resid_pdrop=0.1",
                              "device=cpu"};
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++) lm_config_set_parsed(cfg, defaults[i]);
    for (int i = 1; i < argc; i++) {
        long long v;
        if (split_key(argv[i], "steps", &v)) s.steps = (int)v;
        else if (split_key(argv[i], "warmup", &v)) s.warmup = (int)v;
        else if (split_key(argv[i], "threads", &v)) s.threads = (int)v;
        else if (split_key(argv[i], "batch", &v)) s.batch = (int)v;
        else if (split_key(argv[i], "block", &v)) s.block = (int)v;
        else if (split_key(argv[i], "seed", &v)) s.seed = (unsigned long long)v;
        else if (!strchr(argv[i], '=') || lm_config_set_parsed(cfg, argv[i]) != LM_OK) {
            fprintf(stderr, "usage: bench_train_gpt2 [steps=N warmup=N threads=N batch=N block=N seed=N "
                            "model_key=value ...]\n");
            return 2;
        }
    }
    if (s.steps < 1 || s.warmup < 0 || s.threads < 1 || s.batch < 1 || s.block < 2) {
        fprintf(stderr, "bench_train_gpt2: steps, threads, batch >= 1, block >= 2, warmup >= 0\n");
        return 2;
    }
    lm_config_set_int(cfg, "threads", s.threads);

    char path[1024];
    void *arch_handle = NULL;
    snprintf(path, sizeof path, "%s/lm_arch_gpt2.so", plugin_dir);
    const lm_architecture_vtable *arch = load_vtable(path, LM_KIND_ARCHITECTURE, &arch_handle);
    snprintf(path, sizeof path, "%s/lm_objective_clm.so", plugin_dir);
    const lm_objective_vtable *clm = load_vtable(path, LM_KIND_OBJECTIVE, NULL);
    if (!arch || !clm) return 1;

    void *model = NULL, *objective = NULL;
    if (arch->create(&model, cfg) != LM_OK || lm_config_validate(cfg) != LM_OK) return fail("create gpt2");
    lm_config *clm_cfg = NULL;
    if (lm_config_create(&clm_cfg, "objective 'clm'") != LM_OK || clm->create(&objective, clm_cfg) != LM_OK)
        return fail("create clm");
    lm_arch_info info;
    if (arch->info(model, &info) != LM_OK) return fail("info");
    lm_vocab_info vocab;
    memset(&vocab, 0, sizeof vocab);
    vocab.vocab_size = info.vocab_size;
    if (clm->bind(objective, &info, &vocab) != LM_OK) return fail("bind clm");
    if (arch->init_weights(model, 42) != LM_OK) return fail("init_weights");
    if (arch->set_training(model, 1) != LM_OK) return fail("set_training");

    /* One pool of random blocks, a fresh batch every step. */
    const int B = s.batch, T = s.block, total = s.warmup + s.steps;
    const size_t n = (size_t)B * (size_t)T;
    int32_t *tokens = malloc(n * sizeof *tokens), *input_ids = malloc(n * sizeof *input_ids);
    int32_t *labels = malloc(n * sizeof *labels);
    double *times = malloc((size_t)total * sizeof *times);
    if (!tokens || !input_ids || !labels || !times) {
        fprintf(stderr, "bench_train_gpt2: out of memory\n");
        return 1;
    }
    float first_loss = NAN, last_loss = NAN;
    for (int step = 0; step < total; step++) {
        for (size_t i = 0; i < n; i++)
            tokens[i] = (int32_t)lm_rng_below(s.seed, LM_RNG_STREAM_USER, (uint64_t)step * n + i,
                                              (uint32_t)info.vocab_size);
        lm_batch batch;
        memset(&batch, 0, sizeof batch);
        batch.input_ids = input_ids;
        batch.labels = labels;
        batch.seed = s.seed;
        batch.step = (uint64_t)step;
        if (clm->make_batch(objective, tokens, B, T, (uint64_t)step, &batch) != LM_OK) return fail("make_batch");
        batch.seed = s.seed;
        batch.step = (uint64_t)step;

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
    printf("{\"impl\": \"lmcore\", \"median_step_s\": %.6f, \"tokens_per_s\": %.1f, \"peak_rss_mb\": %.1f, "
           "\"steps\": %d, \"threads\": %d, \"n_params\": %lld, \"first_loss\": %.9g, \"last_loss\": %.9g, "
           "\"params_fnv1a\": \"%016llx\", \"device\": \"%s\", \"blas\": \"%s\"}\n",
           median, (double)n / median, peak_rss, s.steps, s.threads, (long long)info.n_params,
           (double)first_loss, (double)last_loss, (unsigned long long)fingerprint, info.device, blas);
    arch->destroy(model);
    clm->destroy(objective);
    lm_config_destroy(cfg);
    lm_config_destroy(clm_cfg);
    free(tokens);
    free(input_ids);
    free(labels);
    free(times);
    return 0;
}
