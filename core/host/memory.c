/* Host memory, growable buffers, reading whole files and making folders
 * (writing files atomically: atomic_file.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmcore/tensor.h"
#include "user_file.h"

static void format_bytes(char *out, size_t cap, size_t n) {
    if (n >= (1ull << 30)) snprintf(out, cap, "%.2f GiB", (double)n / (1ull << 30));
    else if (n >= (1ull << 20)) snprintf(out, cap, "%.1f MiB", (double)n / (1ull << 20));
    else snprintf(out, cap, "%zu bytes", n);
}

lm_status lm_alloc(void **out, size_t nbytes, const char *what) {
    *out = NULL;
    void *p = NULL;
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    if (rounded < nbytes || posix_memalign(&p, 64, rounded ? rounded : 64) != 0) {
        char size[64];
        format_bytes(size, sizeof size, nbytes);
        return lm_error_set(LM_ERR_NOMEM, "out of host memory allocating %s for %s: use a smaller model or batch",
                            size, what ? what : "a buffer");
    }
    memset(p, 0, rounded ? rounded : 64);
    *out = p;
    return LM_OK;
}

void lm_free(void *ptr) { free(ptr); }

lm_status lm_buffer_reserve(lm_buffer *b, size_t cap) {
    if (cap + 1 <= b->cap) return LM_OK;
    size_t new_cap = b->cap ? b->cap : 64;
    while (new_cap < cap + 1) {
        if (new_cap > SIZE_MAX / 2) return lm_error_set(LM_ERR_NOMEM, "buffer of %zu bytes is too large", cap);
        new_cap *= 2;
    }
    char *p = realloc(b->data, new_cap);
    if (!p) return lm_error_set(LM_ERR_NOMEM, "out of memory growing a buffer to %zu bytes", new_cap);
    b->data = p;
    b->cap = new_cap;
    return LM_OK;
}

lm_status lm_buffer_append(lm_buffer *b, const void *data, size_t len) {
    LM_TRY(lm_buffer_reserve(b, b->len + len));
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return LM_OK;
}

lm_status lm_buffer_appendf(lm_buffer *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return lm_error_set(LM_ERR_INTERNAL, "bad format string '%s'", fmt);
    LM_TRY(lm_buffer_reserve(b, b->len + (size_t)n));
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return LM_OK;
}

void lm_buffer_clear(lm_buffer *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void lm_buffer_free(lm_buffer *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static lm_status ids_reserve(lm_ids *ids, size_t cap) {
    if (cap <= ids->cap) return LM_OK;
    size_t new_cap = ids->cap ? ids->cap * 2 : 256;
    while (new_cap < cap) new_cap *= 2;
    int32_t *p = realloc(ids->data, new_cap * sizeof *p);
    if (!p) return lm_error_set(LM_ERR_NOMEM, "out of memory growing a token list to %zu ids", new_cap);
    ids->data = p;
    ids->cap = new_cap;
    return LM_OK;
}

lm_status lm_ids_push(lm_ids *ids, int32_t id) {
    if (ids->len == ids->cap) LM_TRY(ids_reserve(ids, ids->len + 1));
    ids->data[ids->len++] = id;
    return LM_OK;
}

lm_status lm_ids_append(lm_ids *ids, const int32_t *src, size_t n) {
    LM_TRY(ids_reserve(ids, ids->len + n));
    if (n) memcpy(ids->data + ids->len, src, n * sizeof *src);
    ids->len += n;
    return LM_OK;
}

void lm_ids_clear(lm_ids *ids) { ids->len = 0; }

void lm_ids_free(lm_ids *ids) {
    free(ids->data);
    ids->data = NULL;
    ids->len = ids->cap = 0;
}

lm_status lm_file_read(const char *path, lm_buffer *out) {
    lm_buffer_clear(out);
    /* Never blocks on a FIFO, never reads a device forever: user_file.h. */
    int fd;
    struct stat st;
    LM_TRY(lm_user_file_open(path, &fd, &st));
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int err = errno;
        close(fd);
        return lm_error_set(LM_ERR_IO, "cannot open '%s': %s", path, strerror(err));
    }
    if (st.st_size > 0) {
        lm_status s = lm_buffer_reserve(out, (size_t)st.st_size);
        if (s != LM_OK) {
            fclose(f);
            return s;
        }
    }
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        lm_status s = lm_buffer_append(out, chunk, n);
        if (s != LM_OK) {
            fclose(f);
            return s;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) return lm_error_set(LM_ERR_IO, "error reading '%s': %s", path, strerror(errno));
    if (!out->data) LM_TRY(lm_buffer_reserve(out, 0));
    out->data[out->len] = '\0';
    return LM_OK;
}

lm_status lm_mkdir_p(const char *path) {
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) return lm_error_set(LM_ERR_INVALID, "bad directory path '%s'", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char saved = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return lm_error_set(LM_ERR_IO, "cannot create directory '%s': %s (for '%s')", buf, strerror(errno),
                                    path);
            struct stat st;
            if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
                return lm_error_set(LM_ERR_IO, "cannot create directory '%s': '%s' exists and is not a directory",
                                    path, buf);
            buf[i] = saved;
        }
    }
    return LM_OK;
}
