/* Benchmark driver for the BPE tokenizer plugin (peer: bench_hf.py).
 *
 *   bench_bpe train  OUT.json VOCAB_SIZE FILE...   train on every line of FILEs
 *   bench_bpe encode TOKENIZER.json FILE...        encode every line of FILEs
 *
 * Lines keep their '\n' (as HF's Tokenizer.train(files) reads them).  Prints
 * one JSON line: seconds of the timed part, MB/s, tokens, peak RSS. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "lmcore/lmcore.h"

typedef struct corpus {
    lm_buffer text;
    size_t *start, *len, count;
} corpus;

static int read_corpus(corpus *c, char **files, int n_files) {
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < n_files; i++) {
        lm_buffer one = {0};
        if (lm_file_read(files[i], &one) != LM_OK || lm_buffer_append(&c->text, one.data, one.len) != LM_OK) {
            fprintf(stderr, "bench_bpe: %s\n", lm_error_message());
            return 0;
        }
        lm_buffer_free(&one);
    }
    size_t cap = 1024;
    c->start = malloc(cap * sizeof(size_t));
    c->len = malloc(cap * sizeof(size_t));
    for (size_t pos = 0; pos < c->text.len;) {
        const char *nl = memchr(c->text.data + pos, '\n', c->text.len - pos);
        size_t end = nl ? (size_t)(nl - c->text.data) + 1 : c->text.len;
        if (c->count == cap) {
            cap *= 2;
            c->start = realloc(c->start, cap * sizeof(size_t));
            c->len = realloc(c->len, cap * sizeof(size_t));
        }
        c->start[c->count] = pos;
        c->len[c->count++] = end - pos;
        pos = end;
    }
    return 1;
}

static lm_status corpus_row(void *ctx, size_t index, const char **text, size_t *len) {
    corpus *c = ctx;
    *text = c->text.data + c->start[index];
    *len = c->len[index];
    return LM_OK;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int fail(const char *what) {
    fprintf(stderr, "bench_bpe: %s: %s\n", what, lm_error_message());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4 || (strcmp(argv[1], "train") != 0 && strcmp(argv[1], "encode") != 0) ||
        (strcmp(argv[1], "train") == 0 && argc < 5)) {
        fprintf(stderr, "usage: bench_bpe train OUT.json VOCAB_SIZE FILE... | bench_bpe encode TOKENIZER.json FILE...\n");
        return 2;
    }
    const char *plugin = getenv("LMCORE_BPE_PLUGIN") ? getenv("LMCORE_BPE_PLUGIN") : LMCORE_BPE_PLUGIN_PATH;
    void *handle = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fprintf(stderr, "bench_bpe: dlopen %s: %s\n", plugin, dlerror());
        return 1;
    }
    lm_plugin_describe_fn describe = (lm_plugin_describe_fn)dlsym(handle, LM_PLUGIN_DESCRIBE_SYMBOL);
    const lm_tokenizer_vtable *vt = describe()->vtable;
    int training = strcmp(argv[1], "train") == 0;
    int first_file = training ? 4 : 3;
    corpus c;
    if (!read_corpus(&c, argv + first_file, argc - first_file)) return 1;

    lm_config *cfg = NULL;
    lm_config_create(&cfg, "tokenizer 'bpe'");
    char kv[4200];
    if (training) {
        snprintf(kv, sizeof(kv), "vocab_size=%s", argv[3]);
        lm_config_set_parsed(cfg, kv);
        lm_config_set_parsed(cfg, "min_frequency=2");
    } else {
        snprintf(kv, sizeof(kv), "path=%s", argv[2]);
        lm_config_set_parsed(cfg, kv);
    }
    void *tok = NULL;
    if (vt->create(&tok, cfg) != LM_OK || lm_config_validate(cfg) != LM_OK) return fail("create");
    lm_log_set_level(LM_LOG_WARN);

    double t0 = lm_time_seconds();
    size_t tokens = 0;
    if (training) {
        lm_text_source src = {sizeof(lm_text_source), &c, c.count, corpus_row, 0, NULL};
        if (vt->train(tok, &src) != LM_OK) return fail("train");
    } else {
        lm_ids ids = {0};
        for (size_t i = 0; i < c.count; i++) {
            ids.len = 0;
            if (vt->encode(tok, c.text.data + c.start[i], c.len[i], 0, &ids) != LM_OK) return fail("encode");
            tokens += ids.len;
        }
        lm_ids_free(&ids);
    }
    double seconds = lm_time_seconds() - t0;
    if (training && vt->save(tok, argv[2]) != LM_OK) return fail("save");
    printf("{\"impl\": \"lmcore\", \"op\": \"%s\", \"seconds\": %.4f, \"mb_per_s\": %.2f, \"tokens\": %zu, "
           "\"lines\": %zu, \"peak_rss_mb\": %.1f}\n",
           argv[1], seconds, (double)c.text.len / 1e6 / seconds, tokens, c.count, peak_rss_mb());
    vt->destroy(tok);
    lm_config_destroy(cfg);
    lm_buffer_free(&c.text);
    free(c.start);
    free(c.len);
    return 0;
}
