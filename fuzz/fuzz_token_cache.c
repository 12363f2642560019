/* fuzz_token_cache: a token-block cache file (core/train/blocks.c) made of
 * the fuzzer's bytes, found by lm_blocks_build where it looks for its cache.
 *
 * A fake tokenizer (an in-process lm_plugin struct) and a fake split (an
 * lm_text_source of a few fixed rows) stand in for real plugins.  Their fingerprints, vocabulary size and the build
 * options are taken from the fuzzed header when byte 0 says so, so that the
 * header checks pass and the mmap path is reached; byte 0 can also repair
 * the block count and the trailing hash so that fully "valid" files with
 * arbitrary ids are offered.
 *
 *   byte 0  bit 0: options/fingerprints from the header (else fixed ones)
 *           bit 1: repair n_blocks and the trailing hash
 *           bit 2: no cache file (build, write, then read it back)
 *   rest    the cache file
 *
 * Invariants: every build succeeds (a bad cache is rebuilt, never an error);
 * every id handed out is inside the tokenizer's vocabulary; a second build
 * with the same inputs comes from the cache and gives the same blocks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "fuzz_util.h"

/* ---- the fake tokenizer: one id per byte, modulo the vocabulary --------------- */

typedef struct fake_tokenizer {
    int32_t vocab_size;
    uint64_t fingerprint;
} fake_tokenizer;

static lm_status fake_encode(void *self, const char *text, size_t len, int add_special, lm_ids *out) {
    fake_tokenizer *t = self;
    if (add_special) LM_TRY(lm_ids_push(out, 0));
    for (size_t i = 0; i < len; i++) LM_TRY(lm_ids_push(out, (int32_t)((unsigned char)text[i] % t->vocab_size)));
    if (add_special) LM_TRY(lm_ids_push(out, t->vocab_size - 1));
    return LM_OK;
}

static lm_status fake_info(void *self, lm_vocab_info *out) {
    memset(out, 0, sizeof *out);
    out->vocab_size = ((fake_tokenizer *)self)->vocab_size;
    out->unk_id = out->pad_id = out->bos_id = out->eos_id = out->cls_id = out->sep_id = out->mask_id = -1;
    return LM_OK;
}

static lm_status fake_tokenizer_fingerprint(void *self, uint64_t *hash) {
    *hash = ((fake_tokenizer *)self)->fingerprint;
    return LM_OK;
}

/* ---- the fake split: a few fixed rows ------------------------------------------------ */

static const char *const rows[] = {
    " = Robert Boulter = \n",
    " Robert Boulter is an English film , television and theatre actor . \n",
    "",
    " He had a guest @-@ starring role on the television series The Bill in 2000 . \n",
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static lm_status fake_row(void *ctx, size_t index, const char **text, size_t *len) {
    (void)ctx;
    if (index >= N_ROWS) fuzz_fail("lm_blocks_build asked for row %zu of %zu", index, (size_t)N_ROWS);
    *text = rows[index];
    *len = strlen(rows[index]);
    return LM_OK;
}

/* ---- the harness ---------------------------------------------------------------------- */

static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void check_blocks(const lm_blocks *b, int32_t vocab_size, int32_t block_size, const char *what) {
    FUZZ_CHECK(lm_blocks_block_size(b) == block_size, "%s: block size %d, asked %d", what, lm_blocks_block_size(b),
               block_size);
    FUZZ_CHECK(lm_blocks_vocab_size(b) == vocab_size, "%s: vocab size %d, tokenizer has %d", what,
               lm_blocks_vocab_size(b), vocab_size);
    int32_t *ids = malloc((size_t)block_size * sizeof *ids);
    FUZZ_CHECK(ids != NULL, "oom");
    for (size_t i = 0; i < lm_blocks_count(b); i++) {
        lm_blocks_get(b, i, ids);
        for (int32_t j = 0; j < block_size; j++)
            FUZZ_CHECK(ids[j] >= 0 && ids[j] < vocab_size,
                       "%s: block %zu holds id %d outside the vocabulary of %d (a cache file is trusted; the "
                       "embedding lookup would read out of bounds)",
                       what, i, ids[j], vocab_size);
    }
    free(ids);
}

static int same_blocks(const lm_blocks *a, const lm_blocks *b) {
    if (lm_blocks_count(a) != lm_blocks_count(b) || lm_blocks_source_tokens(a) != lm_blocks_source_tokens(b))
        return 0;
    int32_t n = lm_blocks_block_size(a);
    int32_t *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    FUZZ_CHECK(x && y, "oom");
    int same = 1;
    for (size_t i = 0; same && i < lm_blocks_count(a); i++) {
        lm_blocks_get(a, i, x);
        lm_blocks_get(b, i, y);
        same = memcmp(x, y, (size_t)n * sizeof *x) == 0;
    }
    free(x);
    free(y);
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    size_t len = size - 1;
    uint8_t *file = malloc(len ? len : 1);
    FUZZ_CHECK(file != NULL, "oom");
    if (len) memcpy(file, data + 1, len);

    fake_tokenizer tok = {50257, 0x1234567890abcdefull};
    /* Named "train": the cache file's name starts with the source's name. */
    lm_text_source split = {sizeof(lm_text_source), NULL, N_ROWS, fake_row, 0xfedcba0987654321ull, "train"};
    lm_blocks_options options = {8, 0, 0, NULL};
    if ((mode & 1) && len >= 64) {
        uint32_t vocab = get_u32(file + 16);
        tok.vocab_size = vocab >= 1 && vocab <= INT32_MAX ? (int32_t)vocab : 1;
        options.block_size = (int32_t)get_u32(file + 20);
        options.group_lines = (int32_t)get_u32(file + 28);
        options.add_special = get_u32(file + 32) != 0;
        tok.fingerprint = get_u64(file + 40);
        split.fingerprint = get_u64(file + 48);
    }
    /* Keep builds cheap and legal: block sizes the core accepts. */
    if (options.block_size < 2 || options.block_size > 4096) options.block_size = 2 + (options.block_size & 15);
    if (options.group_lines < 0 || options.group_lines > 1000) options.group_lines = options.group_lines & 3;
    if ((mode & 2) && len >= 80) {
        uint32_t id_bytes = tok.vocab_size <= 65536 ? 2 : 4;
        size_t payload = len - 80, block_bytes = (size_t)options.block_size * id_bytes;
        put_u64(file + 56, payload / block_bytes);
        payload -= payload % block_bytes; /* the trailer moves to stay at the end */
        len = 64 + payload + 16;
        put_u64(file + 64 + payload + 8, lm_hash64(file + 64, payload, LM_HASH_SEED));
    }

    const char *cache_dir = fuzz_path(2, "cache");
    FUZZ_CHECK(lm_mkdir_p(cache_dir) == LM_OK, "cannot create %s", cache_dir);
    char cache_path[700];
    snprintf(cache_path, sizeof cache_path, "%s/train-%016llx-b%d.lmblocks", cache_dir,
             (unsigned long long)tok.fingerprint, options.block_size);
    if (!(mode & 4)) fuzz_write_file(cache_path, file, len);
    options.cache_dir = cache_dir;

    lm_plugin tp;
    memset(&tp, 0, sizeof tp);
    tp.kind = LM_KIND_TOKENIZER;
    tp.name = "fake";
    tp.vtable.tokenizer.encode = fake_encode;
    tp.vtable.tokenizer.info = fake_info;
    tp.vtable.tokenizer.fingerprint = fake_tokenizer_fingerprint;

    lm_blocks *first = NULL, *second = NULL;
    if (lm_blocks_build(&first, &tp, &tok, &split, &options) != LM_OK)
        fuzz_fail("lm_blocks_build failed instead of rebuilding a bad cache: %s", lm_error_message());
    fuzz_note("first build %s the cache file", lm_blocks_from_cache(first) ? "used" : "rebuilt");
    check_blocks(first, tok.vocab_size, options.block_size, lm_blocks_from_cache(first) ? "cached" : "built");
    if (lm_blocks_build(&second, &tp, &tok, &split, &options) != LM_OK)
        fuzz_fail("second lm_blocks_build failed: %s", lm_error_message());
    FUZZ_CHECK(lm_blocks_from_cache(second), "the cache written by the first build was not used by the second");
    FUZZ_CHECK(same_blocks(first, second), "the cache gives other blocks than the build that wrote it");
    lm_blocks_free(first);
    lm_blocks_free(second);
    fuzz_remove(cache_path);
    free(file);
    return 0;
}
