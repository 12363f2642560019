/* Token blocks and their cache file.
 *
 * Cache layout (little-endian), version 1:
 *   0  char[8]  "LMBLOCKS"
 *   8  u32      version
 *  12  u32      header size (64)
 *  16  u32      vocab size
 *  20  u32      block size
 *  24  u32      bytes per id (2 when the vocabulary fits in 16 bits, else 4)
 *  28  u32      group_lines
 *  32  u32      add_special
 *  36  u32      reserved (0)
 *  40  u64      tokenizer fingerprint
 *  48  u64      source fingerprint (the split's bytes)
 *  56  u64      number of blocks
 *  64  ...      ids, then u64 source token count, u64 hash of the ids
 * The trailing hash catches truncation and corruption. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blocks.h"
#include "user_file.h"

#define CACHE_MAGIC "LMBLOCKS"
#define CACHE_VERSION 1u
#define CACHE_HEADER 64u

struct lm_blocks {
    int32_t block_size, vocab_size, id_bytes;
    size_t n_blocks;
    uint64_t source_tokens;
    const unsigned char *ids; /* into `owned` or `mapping` */
    void *owned;
    void *mapping;
    size_t mapping_len;
    int from_cache;
};

typedef struct cache_key {
    uint32_t vocab_size, block_size, id_bytes, group_lines, add_special;
    uint64_t tokenizer_hash, source_hash;
} cache_key;

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Maps a cache file and accepts it only if everything matches. */
static int try_cache(lm_blocks *b, const char *path, const cache_key *key) {
    int fd;
    struct stat st;
    if (lm_user_file_open(path, &fd, &st) != LM_OK) {
        lm_error_clear(); /* missing: a cache miss (what is not a file was refused before) */
        return 0;
    }
    if (st.st_size < (off_t)(CACHE_HEADER + 16)) {
        close(fd);
        return 0;
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return 0;
    const unsigned char *p = map;
    uint64_t n_blocks = get_u64(p + 56);
    int ok = memcmp(p, CACHE_MAGIC, 8) == 0 && get_u32(p + 8) == CACHE_VERSION && get_u32(p + 12) == CACHE_HEADER &&
             get_u32(p + 16) == key->vocab_size && get_u32(p + 20) == key->block_size &&
             get_u32(p + 24) == key->id_bytes && get_u32(p + 28) == key->group_lines &&
             get_u32(p + 32) == key->add_special && get_u64(p + 40) == key->tokenizer_hash &&
             get_u64(p + 48) == key->source_hash;
    size_t payload = 0;
    if (ok) {
        ok = n_blocks <= (uint64_t)(len / ((size_t)key->block_size * key->id_bytes));
        payload = (size_t)n_blocks * key->block_size * key->id_bytes;
        ok = ok && len == CACHE_HEADER + payload + 16;
    }
    if (ok) ok = lm_hash64(p + CACHE_HEADER, payload, LM_HASH_SEED) == get_u64(p + CACHE_HEADER + payload + 8);
    /* A consistent file can still be hostile (the hash is no signature):
     * every id must be inside the vocabulary. */
    for (size_t i = 0; ok && i < payload / key->id_bytes; i++) {
        uint32_t id = key->id_bytes == 2 ? (uint32_t)(p[CACHE_HEADER + 2 * i] | (p[CACHE_HEADER + 2 * i + 1] << 8))
                                         : get_u32(p + CACHE_HEADER + 4 * i);
        ok = id < key->vocab_size;
    }
    if (!ok) {
        munmap(map, len);
        return 0;
    }
    b->mapping = map;
    b->mapping_len = len;
    b->ids = p + CACHE_HEADER;
    b->n_blocks = (size_t)n_blocks;
    b->source_tokens = get_u64(p + CACHE_HEADER + payload);
    b->from_cache = 1;
    return 1;
}

static lm_status write_cache(const lm_blocks *b, const char *path, const cache_key *key) {
    size_t payload = b->n_blocks * (size_t)b->block_size * (size_t)b->id_bytes;
    unsigned char *file;
    LM_TRY(lm_alloc((void **)&file, CACHE_HEADER + payload + 16, "the token cache"));
    memcpy(file, CACHE_MAGIC, 8);
    put_u32(file + 8, CACHE_VERSION);
    put_u32(file + 12, CACHE_HEADER);
    put_u32(file + 16, key->vocab_size);
    put_u32(file + 20, key->block_size);
    put_u32(file + 24, key->id_bytes);
    put_u32(file + 28, key->group_lines);
    put_u32(file + 32, key->add_special);
    put_u32(file + 36, 0);
    put_u64(file + 40, key->tokenizer_hash);
    put_u64(file + 48, key->source_hash);
    put_u64(file + 56, b->n_blocks);
    memcpy(file + CACHE_HEADER, b->ids, payload);
    put_u64(file + CACHE_HEADER + payload, b->source_tokens);
    put_u64(file + CACHE_HEADER + payload + 8, lm_hash64(b->ids, payload, LM_HASH_SEED));
    lm_status status = lm_file_write_atomic(path, file, CACHE_HEADER + payload + 16);
    lm_free(file);
    return status;
}

/* Tokenizes the split and cuts blocks, HF group_texts style. */
static lm_status tokenize_split(lm_blocks *b, const lm_plugin *tp, void *tok, const lm_text_source *source,
                                const char *split, const lm_blocks_options *o) {
    const size_t rows = source->count;
    lm_ids group = {0}, all = {0};
    lm_status status = LM_OK;
    char label[128];
    snprintf(label, sizeof label, "tokenizing %s", split);
    lm_progress *progress = lm_progress_begin(label, rows);
    size_t group_rows = o->group_lines > 0 ? (size_t)o->group_lines : rows;
    for (size_t start = 0; start < rows && status == LM_OK; start += group_rows) {
        size_t end = start + group_rows < rows ? start + group_rows : rows;
        lm_ids_clear(&group);
        for (size_t i = start; i < end; i++) {
            const char *text;
            size_t len;
            LM_CHECK(source->row(source->ctx, i, &text, &len));
            LM_CHECK(tp->vtable.tokenizer.encode(tok, text, len, o->add_special, &group));
            if ((i & 255) == 0) {
                lm_progress_update(progress, i);
                if (lm_interrupted()) {
                    status = lm_error_set(LM_ERR_INTERRUPTED, "interrupted while tokenizing '%s'", split);
                    goto fail;
                }
            }
        }
        b->source_tokens += group.len;
        size_t keep = group.len - group.len % (size_t)o->block_size;
        LM_CHECK(lm_ids_append(&all, group.data, keep));
    }
    b->n_blocks = all.len / (size_t)o->block_size;
    LM_CHECK(lm_alloc(&b->owned, all.len * (size_t)b->id_bytes + 1, "token blocks"));
    for (size_t i = 0; i < all.len; i++) {
        int32_t id = all.data[i];
        if (id < 0 || id >= b->vocab_size) {
            status = lm_error_set(LM_ERR_INTERNAL, "tokenizer produced id %d outside its vocabulary of %d", id,
                                  b->vocab_size);
            goto fail;
        }
        if (b->id_bytes == 2) ((uint16_t *)b->owned)[i] = (uint16_t)id;
        else ((uint32_t *)b->owned)[i] = (uint32_t)id;
    }
    b->ids = b->owned;
fail:
    lm_progress_end(progress);
    lm_ids_free(&group);
    lm_ids_free(&all);
    return status;
}

lm_status lm_blocks_build(lm_blocks **out, const lm_plugin *tp, void *tok, const lm_text_source *source,
                          const lm_blocks_options *o) {
    *out = NULL;
    const char *split = source->name && *source->name ? source->name : "rows";
    if (o->block_size < 2 || o->block_size > (1 << 20))
        return lm_error_set(LM_ERR_INVALID, "block_size must be between 2 and 1048576, got %d", o->block_size);
    if (o->group_lines < 0) return lm_error_set(LM_ERR_INVALID, "group_lines must be >= 0, got %d", o->group_lines);
    lm_vocab_info info;
    memset(&info, 0, sizeof info);
    LM_TRY(tp->vtable.tokenizer.info(tok, &info));
    cache_key key;
    memset(&key, 0, sizeof key);
    key.vocab_size = (uint32_t)info.vocab_size;
    key.block_size = (uint32_t)o->block_size;
    key.id_bytes = info.vocab_size <= 65536 ? 2 : 4;
    key.group_lines = (uint32_t)o->group_lines;
    key.add_special = o->add_special ? 1 : 0;
    LM_TRY(tp->vtable.tokenizer.fingerprint(tok, &key.tokenizer_hash));
    key.source_hash = source->fingerprint;

    lm_blocks *b = calloc(1, sizeof *b);
    if (!b) return lm_error_set(LM_ERR_NOMEM, "out of memory for token blocks");
    b->block_size = o->block_size;
    b->vocab_size = info.vocab_size;
    b->id_bytes = (int32_t)key.id_bytes;

    char path[PATH_MAX] = "";
    if (o->cache_dir && *o->cache_dir) {
        snprintf(path, sizeof path, "%s/%s-%016llx-b%d.lmblocks", o->cache_dir, split,
                 (unsigned long long)key.tokenizer_hash, o->block_size);
        /* A FIFO or a device in the cache's place would hang the run or be
         * renamed over: refuse it, naming it. */
        struct stat in_place;
        if (stat(path, &in_place) == 0 && !S_ISREG(in_place.st_mode)) {
            lm_blocks_free(b);
            return lm_error_set(LM_ERR_IO,
                                "token cache '%s' is %s, not a regular file: remove it (it is rebuilt) or choose "
                                "another cache_dir",
                                path, lm_user_file_kind(in_place.st_mode));
        }
        if (try_cache(b, path, &key)) {
            lm_log(LM_LOG_INFO, "%s: %zu blocks of %d tokens from cache %s", split, b->n_blocks, b->block_size, path);
            *out = b;
            return LM_OK;
        }
    }
    lm_status status = tokenize_split(b, tp, tok, source, split, o);
    if (status == LM_OK && path[0]) {
        status = lm_mkdir_p(o->cache_dir);
        if (status == LM_OK) status = write_cache(b, path, &key);
    }
    if (status != LM_OK) {
        lm_blocks_free(b);
        return status;
    }
    lm_log(LM_LOG_INFO, "%s: %llu tokens -> %zu blocks of %d tokens", split, (unsigned long long)b->source_tokens,
           b->n_blocks, b->block_size);
    *out = b;
    return LM_OK;
}

void lm_blocks_free(lm_blocks *b) {
    if (!b) return;
    if (b->mapping) munmap(b->mapping, b->mapping_len);
    lm_free(b->owned);
    free(b);
}

size_t lm_blocks_count(const lm_blocks *b) { return b->n_blocks; }
int32_t lm_blocks_block_size(const lm_blocks *b) { return b->block_size; }
int32_t lm_blocks_vocab_size(const lm_blocks *b) { return b->vocab_size; }
int lm_blocks_from_cache(const lm_blocks *b) { return b->from_cache; }
uint64_t lm_blocks_source_tokens(const lm_blocks *b) { return b->source_tokens; }

void lm_blocks_get(const lm_blocks *b, size_t index, int32_t *out) {
    size_t base = index * (size_t)b->block_size;
    if (b->id_bytes == 2) {
        const uint16_t *ids = (const uint16_t *)b->ids + base;
        for (int32_t i = 0; i < b->block_size; i++) out[i] = ids[i];
    } else {
        const uint32_t *ids = (const uint32_t *)b->ids + base;
        for (int32_t i = 0; i < b->block_size; i++) out[i] = (int32_t)ids[i];
    }
}
