/* Token blocks: counts equal Hugging Face's group_texts computed
 * independently (per-row encodings summed), the cache is reused when
 * nothing changed and rebuilt when the tokenizer changed or the file is
 * truncated or foreign. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocks.h"
#include "registry.h"
#include "test_main.h"

#define DATA LM_TEST_SHARED_DATA_DIR "/wikitext-2-raw"

static lm_registry *registry;
static const lm_plugin *bpe, *wordpiece, *wikitext;
static void *dataset;
/* Configs live as long as their instances (plugins may keep their strings);
 * teardown frees them after every instance is released. */
static lm_config *configs[8];
static int n_configs;

static void setup(void) {
    ck_assert_int_eq(lm_registry_create(&registry), LM_OK);
    lm_registry_scan_dir(registry, LM_TEST_PLUGIN_DIR);
    ck_assert_int_eq(lm_registry_find(registry, LM_KIND_TOKENIZER, "bpe", &bpe), LM_OK);
    ck_assert_int_eq(lm_registry_find(registry, LM_KIND_TOKENIZER, "wordpiece", &wordpiece), LM_OK);
    ck_assert_int_eq(lm_registry_find(registry, LM_KIND_DATASET, "wikitext", &wikitext), LM_OK);
    lm_config *cfg;
    lm_config_create(&cfg, "dataset 'wikitext'");
    lm_config_set_string(cfg, "path", DATA);
    configs[n_configs++] = cfg;
    ck_assert_int_eq(lm_plugin_instantiate(wikitext, cfg, &dataset), LM_OK);
}

static void teardown(void) {
    lm_plugin_release(wikitext, dataset);
    while (n_configs > 0) lm_config_destroy(configs[--n_configs]);
    lm_registry_destroy(registry);
}

static void *trained_tokenizer(const lm_plugin *p, int vocab_size) {
    lm_config *cfg;
    lm_config_create(&cfg, "tokenizer");
    lm_config_set_int(cfg, "vocab_size", vocab_size);
    configs[n_configs++] = cfg;
    void *tok;
    ck_assert_int_eq(lm_plugin_instantiate(p, cfg, &tok), LM_OK);
    return tok;
}

/* The rows of `split`: the dataset's own source, opened on first use. */
static const lm_text_source *rows_of(const char *split) {
    const lm_text_source *rows = NULL;
    ck_assert_msg(wikitext->vtable.dataset.open_split(dataset, split, &rows) == LM_OK, "%s", lm_error_message());
    return rows;
}

/* Trains the tokenizer on the test split, straight from the dataset's source. */
static void train_on_test(const lm_plugin *p, void *tok) {
    ck_assert_int_eq(p->vtable.tokenizer.train(tok, rows_of("test")), LM_OK);
}

/* Expected blocks as group_texts computes them: per group of rows, the
 * concatenated length floored to a multiple of the block size. */
static size_t expected_blocks(const lm_plugin *p, void *tok, int add_special, size_t group, size_t block) {
    const lm_text_source *rows = rows_of("test");
    size_t n = rows->count, blocks = 0, group_tokens = 0;
    lm_ids ids = {0};
    for (size_t i = 0; i < n; i++) {
        const char *text;
        size_t len;
        ck_assert_int_eq(rows->row(rows->ctx, i, &text, &len), LM_OK);
        lm_ids_clear(&ids);
        ck_assert_int_eq(p->vtable.tokenizer.encode(tok, text, len, add_special, &ids), LM_OK);
        group_tokens += ids.len;
        if ((group && (i + 1) % group == 0) || i + 1 == n) {
            blocks += group_tokens / block;
            group_tokens = 0;
        }
    }
    lm_ids_free(&ids);
    return blocks;
}

static char cache_dir[64];

static void make_cache_dir(void) {
    snprintf(cache_dir, sizeof cache_dir, "/tmp/lm_blocks_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(cache_dir));
}

static void remove_cache_dir(void) {
    DIR *d = opendir(cache_dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", cache_dir, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(cache_dir);
}

static int only_cache_file(char *out, size_t cap) {
    DIR *d = opendir(cache_dir);
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d))) {
        if (strstr(e->d_name, ".lmblocks") && !strstr(e->d_name, ".tmp.")) {
            snprintf(out, cap, "%s/%s", cache_dir, e->d_name);
            count++;
        }
    }
    closedir(d);
    return count;
}

START_TEST(counts_match_group_texts_and_cache_is_reused) {
    void *tok = trained_tokenizer(bpe, 2000);
    train_on_test(bpe, tok);
    make_cache_dir();
    lm_blocks_options o = {128, 0, 0, cache_dir};
    lm_blocks *a, *b;
    ck_assert_int_eq(lm_blocks_build(&a, bpe, tok, rows_of("test"), &o), LM_OK);
    ck_assert_uint_eq(lm_blocks_count(a), expected_blocks(bpe, tok, 0, 0, 128));
    ck_assert(!lm_blocks_from_cache(a));
    ck_assert_int_eq(lm_blocks_build(&b, bpe, tok, rows_of("test"), &o), LM_OK);
    ck_assert(lm_blocks_from_cache(b));
    ck_assert_uint_eq(lm_blocks_count(a), lm_blocks_count(b));
    int32_t x[128], y[128];
    for (size_t i = 0; i < lm_blocks_count(a); i += 97) {
        lm_blocks_get(a, i, x);
        lm_blocks_get(b, i, y);
        ck_assert_mem_eq(x, y, sizeof x);
    }
    /* The first block is the first tokens of the split, in order. */
    lm_ids first = {0};
    const lm_text_source *rows = rows_of("test");
    for (size_t i = 0; i < rows->count && first.len < 128; i++) {
        const char *text;
        size_t len;
        ck_assert_int_eq(rows->row(rows->ctx, i, &text, &len), LM_OK);
        bpe->vtable.tokenizer.encode(tok, text, len, 0, &first);
    }
    lm_blocks_get(a, 0, x);
    ck_assert_mem_eq(x, first.data, sizeof x);
    lm_ids_free(&first);
    lm_blocks_free(a);
    lm_blocks_free(b);

    /* Truncated cache: rebuilt, not trusted. */
    char path[512];
    ck_assert_int_eq(only_cache_file(path, sizeof path), 1);
    ck_assert_int_eq(truncate(path, 1000), 0);
    ck_assert_int_eq(lm_blocks_build(&a, bpe, tok, rows_of("test"), &o), LM_OK);
    ck_assert(!lm_blocks_from_cache(a));
    ck_assert_uint_eq(lm_blocks_count(a), expected_blocks(bpe, tok, 0, 0, 128));
    lm_blocks_free(a);
    /* Foreign content under the same name: rebuilt. */
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 5000; i++) fputc(i * 7, f);
    fclose(f);
    ck_assert_int_eq(lm_blocks_build(&a, bpe, tok, rows_of("test"), &o), LM_OK);
    ck_assert(!lm_blocks_from_cache(a));
    lm_blocks_free(a);
    /* A flipped id inside an otherwise valid file: the checksum catches it. */
    f = fopen(path, "r+b");
    fseek(f, 100, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 100, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    ck_assert_int_eq(lm_blocks_build(&a, bpe, tok, rows_of("test"), &o), LM_OK);
    ck_assert(!lm_blocks_from_cache(a));
    lm_blocks_free(a);

    /* A consistent file (hash repaired) whose ids leave the vocabulary:
     * still rejected, since a cache is data, not trusted code. */
    ck_assert_int_eq(lm_blocks_build(&a, bpe, tok, rows_of("test"), &o), LM_OK); /* rewrite a good one */
    size_t payload = lm_blocks_count(a) * 128 * 2; /* vocab 2000 fits 16-bit ids */
    lm_blocks_free(a);
    f = fopen(path, "r+b");
    unsigned char *file = malloc(64 + payload + 16);
    ck_assert_uint_eq(fread(file, 1, 64 + payload + 16, f), 64 + payload + 16);
    file[64] = 0xff; /* id 0xffff >= 2000 */
    file[65] = 0xff;
    uint64_t h = lm_hash64(file + 64, payload, LM_HASH_SEED);
    for (int i = 0; i < 8; i++) file[64 + payload + 8 + i] = (unsigned char)(h >> (8 * i));
    fseek(f, 0, SEEK_SET);
    fwrite(file, 1, 64 + payload + 16, f);
    fclose(f);
    free(file);
    ck_assert_int_eq(lm_blocks_build(&a, bpe, tok, rows_of("test"), &o), LM_OK);
    ck_assert(!lm_blocks_from_cache(a));
    lm_blocks_get(a, 0, x);
    ck_assert_int_lt(x[0], 2000);
    lm_blocks_free(a);

    /* Another tokenizer: its own cache, built fresh. */
    void *other = trained_tokenizer(bpe, 1000);
    train_on_test(bpe, other);
    ck_assert_int_eq(lm_blocks_build(&a, bpe, other, rows_of("test"), &o), LM_OK);
    ck_assert(!lm_blocks_from_cache(a));
    ck_assert_uint_eq(lm_blocks_count(a), expected_blocks(bpe, other, 0, 0, 128));
    lm_blocks_free(a);
    lm_plugin_release(bpe, other);
    remove_cache_dir();
    lm_plugin_release(bpe, tok);
}
END_TEST

START_TEST(grouping_per_1000_rows_and_wordpiece_specials) {
    void *tok = trained_tokenizer(wordpiece, 2000);
    train_on_test(wordpiece, tok);
    lm_blocks_options o = {128, 1000, 1, NULL};
    lm_blocks *a;
    ck_assert_int_eq(lm_blocks_build(&a, wordpiece, tok, rows_of("test"), &o), LM_OK);
    ck_assert_uint_eq(lm_blocks_count(a), expected_blocks(wordpiece, tok, 1, 1000, 128));
    int32_t x[128];
    lm_blocks_get(a, 0, x);
    lm_vocab_info info;
    wordpiece->vtable.tokenizer.info(tok, &info);
    ck_assert_int_eq(x[0], info.cls_id); /* every row starts with [CLS] */
    size_t whole = lm_blocks_count(a);
    lm_blocks_free(a);
    o.group_lines = 0;
    ck_assert_int_eq(lm_blocks_build(&a, wordpiece, tok, rows_of("test"), &o), LM_OK);
    ck_assert_uint_eq(lm_blocks_count(a), expected_blocks(wordpiece, tok, 1, 0, 128));
    ck_assert_uint_ge(lm_blocks_count(a), whole);
    lm_blocks_free(a);
    lm_plugin_release(wordpiece, tok);
}
END_TEST

START_TEST(bad_options_and_missing_split) {
    void *tok = trained_tokenizer(bpe, 600);
    train_on_test(bpe, tok);
    lm_blocks_options o = {1, 0, 0, NULL};
    lm_blocks *a;
    ck_assert_int_eq(lm_blocks_build(&a, bpe, tok, rows_of("test"), &o), LM_ERR_INVALID);
    ck_assert(strstr(lm_error_message(), "block_size") != NULL);
    /* A missing split fails where its rows are asked for, before any build. */
    const lm_text_source *train = NULL;
    ck_assert_int_eq(wikitext->vtable.dataset.open_split(dataset, "train", &train), LM_ERR_IO);
    ck_assert(strstr(lm_error_message(), "wiki.train.raw") != NULL);
    ck_assert(strstr(lm_error_message(), "fetch_wikitext2.sh") != NULL);
    lm_plugin_release(bpe, tok);
}
END_TEST

int main(void) {
    Suite *s = suite_create("blocks");
    TCase *tc = tcase_create("blocks");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, counts_match_group_texts_and_cache_is_reused);
    tcase_add_test(tc, grouping_per_1000_rows_and_wordpiece_specials);
    tcase_add_test(tc, bad_options_and_missing_split);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}
