/* checksums.json: the size and 64-bit hash (lm_hash64, core/host/hash.c,
 * over 1 MiB blocks, chained) of every other file of a checkpoint, written
 * last when the checkpoint is saved and checked first when it is resumed
 * (checkpoint.h).  It detects
 * files changed, truncated or swapped after the checkpoint was written; it
 * is not a signature (anyone may recompute it). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "user_file.h"

#define MANIFEST_FORMAT "lmcore-checkpoint-checksums-1"

/* Files are hashed in blocks of this size, each block's lm_hash64 seeded
 * with the previous one's: one pass through a small buffer, so that
 * checking a checkpoint of gigabytes adds no memory. */
#define HASH_BLOCK_BYTES ((size_t)1 << 20)

/* Size and hash of a regular file: h = LM_HASH_SEED, then for each block
 * (the last one shorter, possibly empty) h = lm_hash64(block, its length, h). */
static lm_status hash_file(const char *path, uint64_t *size, uint64_t *hash) {
    int fd;
    struct stat st;
    LM_TRY(lm_user_file_open(path, &fd, &st)); /* a FIFO or a folder in a file's place is named */
    unsigned char *block = malloc(HASH_BLOCK_BYTES);
    if (!block) {
        close(fd);
        return lm_error_set(LM_ERR_NOMEM, "out of memory hashing '%s'", path);
    }
    uint64_t h = LM_HASH_SEED, total = 0;
    lm_status status = LM_OK;
    for (;;) {
        size_t filled = 0;
        while (filled < HASH_BLOCK_BYTES) {
            ssize_t got = read(fd, block + filled, HASH_BLOCK_BYTES - filled);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) {
                status = lm_error_set(LM_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
                break;
            }
            if (got == 0) break;
            filled += (size_t)got;
        }
        if (status != LM_OK) break;
        h = lm_hash64(block, filled, h);
        total += filled;
        if (filled < HASH_BLOCK_BYTES) break;
    }
    free(block);
    close(fd);
    *size = total;
    *hash = h;
    return status;
}

static int is_listed_file(const char *name) {
    return name[0] != '.' && strcmp(name, LM_CHECKPOINT_MANIFEST_FILE) != 0;
}

lm_status lm_checkpoint_write_manifest(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return lm_error_set(LM_ERR_IO, "cannot list '%s': %s", dir, strerror(errno));
    /* Sorted names: the same checkpoint always gives the same file. */
    char names[32][NAME_MAX + 1];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 32)
        if (is_listed_file(e->d_name)) snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    lm_buffer text = {0};
    lm_json_writer w;
    lm_json_writer_init(&w, &text, 2);
    lm_json_begin_object(&w);
    lm_json_key(&w, "format");
    lm_json_write_cstr(&w, MANIFEST_FORMAT);
    lm_json_key(&w, "hash");
    lm_json_write_cstr(&w, "lm_hash64");
    lm_json_key(&w, "files");
    lm_json_begin_object(&w);
    lm_status status = LM_OK;
    char path[PATH_MAX], hex[17];
    for (int i = 0; i < n && status == LM_OK; i++) {
        uint64_t size = 0, hash = 0;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path)
            status = lm_error_set(LM_ERR_INVALID, "path too long: '%s/%s'", dir, names[i]);
        if (status == LM_OK) status = hash_file(path, &size, &hash);
        if (status != LM_OK) break;
        snprintf(hex, sizeof hex, "%016" PRIx64, hash);
        lm_json_key(&w, names[i]);
        lm_json_begin_object(&w);
        lm_json_key(&w, "bytes");
        lm_json_write_int(&w, (int64_t)size);
        lm_json_key(&w, "hash64");
        lm_json_write_cstr(&w, hex);
        lm_json_end_object(&w);
    }
    lm_json_end_object(&w);
    lm_json_end_object(&w);
    lm_status finished = lm_json_writer_finish(&w);
    if (status == LM_OK) status = finished;
    if (status == LM_OK && (size_t)snprintf(path, sizeof path, "%s/%s", dir, LM_CHECKPOINT_MANIFEST_FILE) >= sizeof path)
        status = lm_error_set(LM_ERR_INVALID, "path too long under '%s'", dir);
    if (status == LM_OK) status = lm_file_write_atomic(path, text.data, text.len);
    lm_buffer_free(&text);
    return status;
}

/* One entry of "files": its name is a plain file name, its size and hash
 * what the file has now. */
static lm_status check_entry(const char *dir, const char *manifest, const char *name, size_t name_len,
                             const lm_json *entry) {
    if (name_len == 0 || name_len > NAME_MAX || memchr(name, '/', name_len) || memchr(name, '\0', name_len) ||
        name[0] == '.')
        return lm_error_set(LM_ERR_FORMAT, "%s lists a file name that is not one of a checkpoint's files", manifest);
    const lm_json *bytes = entry ? lm_json_get(entry, "bytes") : NULL;
    const lm_json *hash = entry ? lm_json_get(entry, "hash64") : NULL;
    size_t hex_len = 0;
    const char *hex = hash && lm_json_type_of(hash) == LM_JSON_STRING ? lm_json_string(hash, &hex_len) : NULL;
    char *end = NULL;
    char hex_copy[17] = {0};
    if (hex && hex_len == 16) memcpy(hex_copy, hex, 16);
    uint64_t recorded = hex_len == 16 ? strtoull(hex_copy, &end, 16) : 0;
    if (!bytes || lm_json_type_of(bytes) != LM_JSON_NUMBER || !lm_json_is_integer(bytes) || lm_json_int(bytes) < 0 ||
        !end || *end != '\0')
        return lm_error_set(LM_ERR_FORMAT, "%s: the entry of '%.*s' needs \"bytes\" (an integer) and \"hash64\" (16 "
                                           "hex digits): the file is damaged",
                            manifest, (int)name_len, name);
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%.*s", dir, (int)name_len, name) >= sizeof path)
        return lm_error_set(LM_ERR_INVALID, "path too long under '%s'", dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return lm_error_set(LM_ERR_FORMAT, "checkpoint '%s': %.*s is missing (checksums.json lists it): the "
                                           "checkpoint is incomplete; resume from another one",
                            dir, (int)name_len, name);
    uint64_t size = 0, now = 0;
    LM_TRY(hash_file(path, &size, &now));
    if (size != (uint64_t)lm_json_int(bytes) || now != recorded)
        return lm_error_set(LM_ERR_FORMAT,
                            "checkpoint '%s': %.*s does not match its checksum in checksums.json (%llu bytes, hash "
                            "%016llx; recorded: %lld bytes, hash %s): the file was changed or damaged after the "
                            "checkpoint was written; resume from another checkpoint",
                            dir, (int)name_len, name, (unsigned long long)size, (unsigned long long)now,
                            (long long)lm_json_int(bytes), hex_copy);
    return LM_OK;
}

lm_status lm_checkpoint_check_manifest(const char *dir, const char *manifest, const lm_json *root) {
    const lm_json *format = lm_json_type_of(root) == LM_JSON_OBJECT ? lm_json_get(root, "format") : NULL;
    size_t len = 0;
    const char *text = format && lm_json_type_of(format) == LM_JSON_STRING ? lm_json_string(format, &len) : NULL;
    if (!text || len != strlen(MANIFEST_FORMAT) || memcmp(text, MANIFEST_FORMAT, len) != 0)
        return lm_error_set(LM_ERR_FORMAT, "%s: \"format\" is missing or not %s: the file is damaged", manifest,
                            MANIFEST_FORMAT);
    const lm_json *files = lm_json_get(root, "files");
    if (!files || lm_json_type_of(files) != LM_JSON_OBJECT)
        return lm_error_set(LM_ERR_FORMAT, "%s has no \"files\" object: the file is damaged", manifest);
    /* The files a resume reads must be covered, not only those listed. */
    static const char *const required[] = {"model.safetensors", "config.json", LM_CHECKPOINT_OPTIMIZER_FILE,
                                           LM_CHECKPOINT_STATE_FILE};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!lm_json_get(files, required[i]))
            return lm_error_set(LM_ERR_FORMAT, "%s has no checksum for %s: the file is damaged", manifest,
                                required[i]);
    for (size_t i = 0; i < lm_json_size(files); i++) {
        size_t name_len;
        const char *name = lm_json_key_at(files, i, &name_len);
        LM_TRY(check_entry(dir, manifest, name, name_len, lm_json_at(files, i)));
    }
    return LM_OK;
}

lm_status lm_checkpoint_verify(const char *dir) {
    char manifest[PATH_MAX];
    if ((size_t)snprintf(manifest, sizeof manifest, "%s/%s", dir, LM_CHECKPOINT_MANIFEST_FILE) >= sizeof manifest)
        return lm_error_set(LM_ERR_INVALID, "path too long under '%s'", dir);
    struct stat st;
    if (stat(manifest, &st) != 0 && errno == ENOENT) {
        /* Written by lmcore before checksums (or by hand): still resumed,
         * every other check applies; the warning says what is not known. */
        lm_log(LM_LOG_WARN, "resume: '%s' has no %s (a checkpoint of an older lmcore): its files cannot be checked "
                            "for damage",
                            dir, LM_CHECKPOINT_MANIFEST_FILE);
        return LM_OK;
    }
    lm_json *root = NULL;
    LM_TRY(lm_json_parse_file(manifest, &root));
    lm_status status = lm_checkpoint_check_manifest(dir, manifest, root);
    lm_json_free(root);
    return status;
}
