/* Safetensors reader (memory-mapped, fully validated) and writer.
 *
 * The checks follow the reference implementation (huggingface/safetensors,
 * safetensors/src/tensor.rs): header length below 100 MB and inside the file,
 * a JSON object starting with '{', tensors whose byte ranges, once sorted by
 * offset, tile the data section exactly (no gap, no overlap, nothing left
 * over), each range exactly dtype size × number of elements.  Any file that
 * passes can be read without a bounds check, so lm_safetensors_at hands out
 * pointers into the mapping.  Duplicate tensor names are refused by the JSON
 * parser.
 *
 * The writer produces what the reference writer produces: compact JSON with
 * "__metadata__" first, {"dtype","shape","data_offsets"} per tensor, padded
 * with spaces to a multiple of 8 bytes so that the data section is 8-byte
 * aligned.  It streams through an lm_atomic_file (atomic_file.h, as
 * lm_file_write_atomic does) rather than assembling the file in memory: a
 * model checkpoint is hundreds of MB and must not be copied once more. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "user_file.h"
#include "json_internal.h"
#include "safetensors_internal.h"
#include "lmcore/device.h"
#include "lmcore/json.h"
#include "lmcore/safetensors.h"

#define ST_MAX_HEADER 100000000ull /* the reference implementation's limit */

typedef struct st_tensor {
    const char *name; /* NUL-terminated, owned by the header JSON */
    lm_dtype dtype;
    int32_t ndim;
    int64_t shape[LM_MAX_DIMS];
    uint64_t begin, end; /* byte range inside the data section */
} st_tensor;

struct lm_safetensors {
    char *path;
    unsigned char *map;
    size_t map_size;
    const unsigned char *data; /* the data section, after the header */
    uint64_t data_size;
    lm_json *header;
    const lm_json *metadata; /* "__metadata__" or NULL */
    st_tensor *tensors;      /* in file (offset) order */
    size_t count;
    const st_tensor **by_name; /* sorted by name, for lookups */
};

/* ---- helpers ---------------------------------------------------------------------- */

static void format_shape(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Byte size of dtype × shape, or 0 with *overflow set when it does not fit. */
static uint64_t tensor_bytes(lm_dtype dtype, const int64_t *shape, int ndim, int *overflow) {
    uint64_t n = lm_dtype_size(dtype);
    *overflow = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(n, (uint64_t)shape[i], &n)) {
            *overflow = 1;
            return 0;
        }
    }
    return n;
}

/* Dtypes of the format lmcore does not handle: valid files, unsupported here. */
static int is_known_foreign_dtype(const char *name) {
    static const char *const foreign[] = {"BOOL",    "I8",      "I16", "U32",     "U64",     "F8_E5M2",
                                          "F8_E4M3", "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "C64"};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        if (strcmp(name, foreign[i]) == 0) return 1;
    return 0;
}

/* ---- reading the header -------------------------------------------------------------- */

static lm_status bad_tensor(const lm_safetensors *st, const char *name, const char *problem) {
    return lm_error_set(LM_ERR_FORMAT, "'%s': tensor '%s': %s (file corrupt or not safetensors)", st->path, name,
                        problem);
}

static lm_status read_offsets(const lm_safetensors *st, const char *name, const lm_json *offsets, st_tensor *t) {
    if (lm_json_type_of(offsets) != LM_JSON_ARRAY || lm_json_size(offsets) != 2)
        return bad_tensor(st, name, "\"data_offsets\" must be an array [begin, end]");
    const lm_json *b = lm_json_at(offsets, 0), *e = lm_json_at(offsets, 1);
    if (!lm_json_is_integer(b) || !lm_json_is_integer(e) || lm_json_int(b) < 0 || lm_json_int(e) < 0)
        return bad_tensor(st, name, "\"data_offsets\" must hold two non-negative integers");
    t->begin = (uint64_t)lm_json_int(b);
    t->end = (uint64_t)lm_json_int(e);
    if (t->end < t->begin) return bad_tensor(st, name, "\"data_offsets\" end is before begin");
    return LM_OK;
}

static lm_status read_tensor_info(const lm_safetensors *st, const char *name, const lm_json *info, st_tensor *t) {
    char problem[512];
    t->name = name;
    if (lm_json_type_of(info) != LM_JSON_OBJECT)
        return bad_tensor(st, name, "entry is not an object with dtype, shape and data_offsets");
    const char *dtype = lm_json_string(lm_json_get(info, "dtype"), NULL);
    if (!dtype) return bad_tensor(st, name, "\"dtype\" is missing or not a string");
    if (lm_dtype_parse(dtype, &t->dtype) != LM_OK) {
        if (is_known_foreign_dtype(dtype))
            return lm_error_set(LM_ERR_UNSUPPORTED,
                                "'%s': tensor '%s' has dtype %s, which lmcore does not read (it reads F32, F16, BF16, "
                                "F64, I32, I64, U16, U8): convert the file",
                                st->path, name, dtype);
        snprintf(problem, sizeof problem, "unknown dtype \"%.40s\"", dtype);
        return bad_tensor(st, name, problem);
    }
    const lm_json *shape = lm_json_get(info, "shape");
    if (lm_json_type_of(shape) != LM_JSON_ARRAY) return bad_tensor(st, name, "\"shape\" is missing or not an array");
    if (lm_json_size(shape) > LM_MAX_DIMS) {
        snprintf(problem, sizeof problem, "%zu dimensions, lmcore supports at most %d", lm_json_size(shape),
                 LM_MAX_DIMS);
        return bad_tensor(st, name, problem);
    }
    t->ndim = (int32_t)lm_json_size(shape);
    for (int i = 0; i < t->ndim; i++) {
        const lm_json *dim = lm_json_at(shape, (size_t)i);
        if (!lm_json_is_integer(dim) || lm_json_int(dim) < 0)
            return bad_tensor(st, name, "\"shape\" must hold non-negative integers");
        t->shape[i] = lm_json_int(dim);
    }
    LM_TRY(read_offsets(st, name, lm_json_get(info, "data_offsets"), t));
    int overflow;
    uint64_t nbytes = tensor_bytes(t->dtype, t->shape, t->ndim, &overflow);
    char shape_text[256];
    format_shape(shape_text, sizeof shape_text, t->shape, t->ndim);
    if (overflow) {
        snprintf(problem, sizeof problem, "shape %s is too large", shape_text);
        return bad_tensor(st, name, problem);
    }
    if (t->end - t->begin != nbytes) {
        snprintf(problem, sizeof problem,
                 "data_offsets [%llu, %llu] span %llu bytes but dtype %s with shape %s needs %llu bytes",
                 (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)(t->end - t->begin),
                 dtype, shape_text, (unsigned long long)nbytes);
        return bad_tensor(st, name, problem);
    }
    if (t->end > st->data_size) {
        snprintf(problem, sizeof problem,
                 "data_offsets [%llu, %llu] go past the end of the data section (%llu bytes): file truncated?",
                 (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)st->data_size);
        return bad_tensor(st, name, problem);
    }
    return LM_OK;
}

static int compare_by_offset(const void *a, const void *b) {
    const st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int compare_by_name(const void *a, const void *b) {
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

/* Sorted by offset, the ranges must tile [0, data_size) exactly. */
static lm_status check_layout(const lm_safetensors *st) {
    uint64_t expected = 0;
    char problem[512];
    for (size_t i = 0; i < st->count; i++) {
        const st_tensor *t = &st->tensors[i];
        if (t->begin < expected) {
            const st_tensor *prev = &st->tensors[i - 1];
            snprintf(problem, sizeof problem, "bytes [%llu, %llu) overlap tensor '%s' [%llu, %llu)",
                     (unsigned long long)t->begin, (unsigned long long)t->end, prev->name,
                     (unsigned long long)prev->begin, (unsigned long long)prev->end);
            return bad_tensor(st, t->name, problem);
        }
        if (t->begin > expected) {
            snprintf(problem, sizeof problem, "starts at byte %llu, leaving a gap of %llu unused bytes before it",
                     (unsigned long long)t->begin, (unsigned long long)(t->begin - expected));
            return bad_tensor(st, t->name, problem);
        }
        expected = t->end;
    }
    if (expected != st->data_size)
        return lm_error_set(LM_ERR_FORMAT,
                            "'%s': the tensors cover %llu bytes of data but the data section holds %llu bytes "
                            "(file corrupt or not safetensors)",
                            st->path, (unsigned long long)expected, (unsigned long long)st->data_size);
    return LM_OK;
}

static lm_status parse_header(lm_safetensors *st, const char *json, size_t len) {
    char source[4200];
    snprintf(source, sizeof source, "'%s' (JSON header)", st->path);
    if (len < 2 || json[0] != '{')
        return lm_error_set(LM_ERR_FORMAT, "'%s': the header does not start with '{': not a safetensors file",
                            st->path);
    LM_TRY(lm_json_parse(json, len, source, &st->header));
    size_t members = lm_json_size(st->header);
    st->tensors = calloc(members ? members : 1, sizeof *st->tensors);
    st->by_name = calloc(members ? members : 1, sizeof *st->by_name);
    if (!st->tensors || !st->by_name) return lm_error_set(LM_ERR_NOMEM, "'%s': out of memory reading header", st->path);
    for (size_t i = 0; i < members; i++) {
        size_t name_len;
        const char *name = lm_json_key_at(st->header, i, &name_len);
        const lm_json *value = lm_json_at(st->header, i);
        if (strcmp(name, "__metadata__") == 0) {
            if (lm_json_type_of(value) != LM_JSON_OBJECT)
                return lm_error_set(LM_ERR_FORMAT, "'%s': __metadata__ is not an object of strings", st->path);
            for (size_t k = 0; k < lm_json_size(value); k++)
                if (lm_json_type_of(lm_json_at(value, k)) != LM_JSON_STRING)
                    return lm_error_set(LM_ERR_FORMAT, "'%s': __metadata__ value '%s' is not a string", st->path,
                                        lm_json_key_at(value, k, NULL));
            st->metadata = value;
            continue;
        }
        if (name_len == 0 || strlen(name) != name_len)
            return lm_error_set(LM_ERR_FORMAT, "'%s': a tensor name is empty or contains a NUL character", st->path);
        LM_TRY(read_tensor_info(st, name, value, &st->tensors[st->count]));
        st->count++;
    }
    qsort(st->tensors, st->count, sizeof *st->tensors, compare_by_offset);
    LM_TRY(check_layout(st));
    for (size_t i = 0; i < st->count; i++) st->by_name[i] = &st->tensors[i];
    qsort(st->by_name, st->count, sizeof *st->by_name, compare_by_name);
    return LM_OK;
}

lm_status lm_safetensors_open(const char *path, lm_safetensors **out) {
    if (!out || !path) return lm_error_set(LM_ERR_INVALID, "lm_safetensors_open: NULL argument");
    *out = NULL;
    lm_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return lm_error_set(LM_ERR_NOMEM, "out of memory opening '%s'", path);
    }
    lm_status status = LM_OK;
    int fd;
    struct stat info;
    /* A FIFO or a device is refused (naming what it is), never waited on. */
    status = lm_user_file_open(path, &fd, &info);
    if (status != LM_OK) {
        fd = -1;
    } else if (info.st_size < 8) {
        status = lm_error_set(LM_ERR_FORMAT, "'%s' is %lld bytes long: too short for a safetensors file", path,
                              (long long)info.st_size);
    } else {
        st->map_size = (size_t)info.st_size;
        void *map = mmap(NULL, st->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED)
            status = lm_error_set(LM_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
        else
            st->map = map;
    }
    if (fd >= 0) close(fd);
    if (status == LM_OK) {
        uint64_t header_len = 0;
        for (int i = 7; i >= 0; i--) header_len = header_len << 8 | st->map[i];
        uint64_t after_length = (uint64_t)st->map_size - 8;
        if (header_len > ST_MAX_HEADER)
            status = lm_error_set(LM_ERR_FORMAT,
                                  "'%s': header length %llu exceeds the 100 MB limit: corrupt or not safetensors", path,
                                  (unsigned long long)header_len);
        else if (header_len > after_length)
            status = lm_error_set(LM_ERR_FORMAT,
                                  "'%s': header length %llu is larger than the %llu bytes that follow it: file "
                                  "truncated or not safetensors",
                                  path, (unsigned long long)header_len, (unsigned long long)after_length);
        else {
            st->data = st->map + 8 + header_len;
            st->data_size = after_length - header_len;
            status = parse_header(st, (const char *)st->map + 8, (size_t)header_len);
        }
    }
    if (status != LM_OK) {
        lm_safetensors_close(st);
        return status;
    }
    *out = st;
    return LM_OK;
}

void lm_safetensors_close(lm_safetensors *st) {
    if (!st) return;
    if (st->map) munmap(st->map, st->map_size);
    lm_json_free(st->header);
    free(st->tensors);
    free(st->by_name);
    free(st->path);
    free(st);
}

size_t lm_safetensors_count(const lm_safetensors *st) { return st ? st->count : 0; }

static void fill_tensor(const lm_safetensors *st, const st_tensor *src, lm_tensor *t) {
    memset(t, 0, sizeof *t);
    t->dtype = src->dtype;
    t->ndim = src->ndim;
    memcpy(t->shape, src->shape, sizeof src->shape);
    /* Read-only mapping: writing through this pointer faults. */
    t->data = (void *)(st->data + src->begin);
}

lm_status lm_safetensors_at(const lm_safetensors *st, size_t index, const char **name, lm_tensor *t) {
    if (!st || index >= st->count)
        return lm_error_set(LM_ERR_INVALID, "safetensors tensor index %zu out of range (%zu tensors)", index,
                            st ? st->count : 0);
    if (name) *name = st->tensors[index].name;
    if (t) fill_tensor(st, &st->tensors[index], t);
    return LM_OK;
}

static const st_tensor *find_tensor(const lm_safetensors *st, const char *name) {
    size_t lo = 0, hi = st->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->by_name[mid]->name);
        if (c == 0) return st->by_name[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

lm_status lm_safetensors_find(const lm_safetensors *st, const char *name, lm_tensor *t) {
    if (!st || !name) return lm_error_set(LM_ERR_INVALID, "lm_safetensors_find: NULL argument");
    const st_tensor *found = find_tensor(st, name);
    if (!found) return lm_error_set(LM_ERR_NOT_FOUND, "'%s' has no tensor named '%s'", st->path, name);
    if (t) fill_tensor(st, found, t);
    return LM_OK;
}

const char *lm_safetensors_metadata(const lm_safetensors *st, const char *key) {
    return st ? lm_json_string(lm_json_get(st->metadata, key), NULL) : NULL;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = h >> 10 & 0x1F, mantissa = h & 0x3FF, bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | mantissa << 13; /* Inf / NaN */
    } else if (exponent != 0) {
        bits = sign | (exponent + 112) << 23 | mantissa << 13;
    } else if (mantissa == 0) {
        bits = sign;
    } else { /* subnormal: normalise the mantissa */
        exponent = 113;
        while (!(mantissa & 0x400)) {
            mantissa <<= 1;
            exponent--;
        }
        bits = sign | exponent << 23 | (mantissa & 0x3FF) << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

lm_status lm_safetensors_read_f32(const lm_safetensors *st, const char *name, const int64_t *shape, int ndim,
                                  float *dst) {
    lm_tensor t;
    LM_TRY(lm_safetensors_find(st, name, &t));
    int same = t.ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t.shape[i] == shape[i];
    if (!same) {
        char have[256], want[256];
        format_shape(have, sizeof have, t.shape, t.ndim);
        format_shape(want, sizeof want, shape, ndim < 0 ? 0 : ndim > LM_MAX_DIMS ? LM_MAX_DIMS : ndim);
        return lm_error_set(LM_ERR_FORMAT, "'%s': tensor '%s' has shape %s, expected %s (a different model config?)",
                            st->path, name, have, want);
    }
    size_t n = (size_t)lm_tensor_numel(&t);
    const unsigned char *src = t.data;
    switch (t.dtype) {
    case LM_F32: memcpy(dst, src, n * sizeof(float)); break;
    case LM_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    case LM_F16:
    case LM_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            if (t.dtype == LM_F16) {
                dst[i] = half_to_float(h);
            } else {
                uint32_t bits = (uint32_t)h << 16;
                memcpy(&dst[i], &bits, 4);
            }
        }
        break;
    default:
        return lm_error_set(LM_ERR_FORMAT,
                            "'%s': tensor '%s' has dtype %s, expected a float type (F32, F16, BF16, F64)", st->path,
                            name, lm_dtype_name(t.dtype));
    }
    return LM_OK;
}

/* ---- writing -------------------------------------------------------------------------- */

static lm_status check_entry(const char *path, const lm_safetensors_entry *entries, size_t i) {
    const lm_safetensors_entry *e = &entries[i];
    if (!e->name || !e->name[0] || strcmp(e->name, "__metadata__") == 0)
        return lm_error_set(LM_ERR_INVALID, "writing '%s': tensor %zu has an empty or reserved name", path, i);
    for (const unsigned char *s = (const unsigned char *)e->name; *s;) {
        size_t n = lm_json_utf8_sequence_length(s, strlen((const char *)s));
        if (!n) return lm_error_set(LM_ERR_INVALID, "writing '%s': tensor name '%s' is not valid UTF-8", path, e->name);
        s += n;
    }
    for (size_t j = 0; j < i; j++)
        if (strcmp(entries[j].name, e->name) == 0)
            return lm_error_set(LM_ERR_INVALID, "writing '%s': tensor name '%s' appears twice", path, e->name);
    if ((unsigned)e->tensor.dtype >= LM_DTYPE_COUNT || e->tensor.ndim < 0 || e->tensor.ndim > LM_MAX_DIMS)
        return lm_error_set(LM_ERR_INVALID, "writing '%s': tensor '%s' has a bad dtype or ndim", path, e->name);
    int overflow;
    uint64_t nbytes = tensor_bytes(e->tensor.dtype, e->tensor.shape, e->tensor.ndim, &overflow);
    if (overflow)
        return lm_error_set(LM_ERR_INVALID, "writing '%s': tensor '%s' has a negative or huge shape", path, e->name);
    if (nbytes && !e->tensor.data)
        return lm_error_set(LM_ERR_INVALID, "writing '%s': tensor '%s' has no data", path, e->name);
    return LM_OK;
}

static lm_status build_header(const char *path, const lm_safetensors_entry *entries, size_t n,
                              const char *const *metadata, lm_buffer *out) {
    lm_json_writer w;
    lm_json_writer_init(&w, out, 0);
    lm_json_begin_object(&w);
    if (metadata && metadata[0]) {
        lm_json_key(&w, "__metadata__");
        lm_json_begin_object(&w);
        for (size_t i = 0; metadata[i]; i += 2) {
            if (!metadata[i + 1])
                return lm_error_set(LM_ERR_INVALID, "writing '%s': metadata key '%s' has no value", path, metadata[i]);
            for (size_t j = 0; j < i; j += 2)
                if (strcmp(metadata[j], metadata[i]) == 0)
                    return lm_error_set(LM_ERR_INVALID, "writing '%s': metadata key '%s' appears twice", path,
                                        metadata[i]);
            lm_json_key(&w, metadata[i]);
            lm_json_write_cstr(&w, metadata[i + 1]);
        }
        lm_json_end_object(&w);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const lm_tensor *t = &entries[i].tensor;
        uint64_t nbytes = lm_tensor_nbytes(t);
        lm_json_key(&w, entries[i].name);
        lm_json_begin_object(&w);
        lm_json_key(&w, "dtype");
        lm_json_write_cstr(&w, lm_dtype_name(t->dtype));
        lm_json_key(&w, "shape");
        lm_json_begin_array(&w);
        for (int d = 0; d < t->ndim; d++) lm_json_write_int(&w, t->shape[d]);
        lm_json_end_array(&w);
        lm_json_key(&w, "data_offsets");
        lm_json_begin_array(&w);
        lm_json_write_int(&w, (int64_t)offset);
        lm_json_write_int(&w, (int64_t)(offset + nbytes));
        lm_json_end_array(&w);
        lm_json_end_object(&w);
        offset += nbytes;
    }
    lm_json_end_object(&w);
    LM_TRY(lm_json_writer_finish(&w));
    while (out->len % 8) LM_TRY(lm_buffer_append(out, " ", 1)); /* 8-byte aligned data, as the reference */
    return LM_OK;
}

/* Writes entry e's data: straight from memory, or staged through `stage`
 * with `read`.  Returns 0 when a write fails (kept in `out` for commit), or
 * with *status set when the read fails. */
static int write_entry_data(lm_atomic_file *out, const lm_safetensors_entry *e, lm_safetensors_reader read, void *ctx,
                            unsigned char *stage, lm_status *status) {
    const size_t nbytes = lm_tensor_nbytes(&e->tensor);
    if (!read) return lm_atomic_file_write(out, e->tensor.data, nbytes);
    for (size_t offset = 0; offset < nbytes; offset += LM_SAFETENSORS_STAGE_BYTES) {
        size_t piece = nbytes - offset < LM_SAFETENSORS_STAGE_BYTES ? nbytes - offset : LM_SAFETENSORS_STAGE_BYTES;
        *status = read(ctx, &e->tensor, offset, stage, piece);
        if (*status != LM_OK) return 0;
        if (!lm_atomic_file_write(out, stage, piece)) return 0;
    }
    return 1;
}

lm_status lm_safetensors_read_device(void *ctx, const lm_tensor *t, size_t offset, void *dst, size_t bytes) {
    lm_device *dev = ctx; /* download waits for the copy */
    return dev->ops->download(dev, dst, (const char *)t->data + offset, bytes);
}

lm_status lm_safetensors_write(const char *path, const lm_safetensors_entry *entries, size_t n,
                               const char *const *metadata) {
    return lm_safetensors_write_via(path, entries, n, metadata, NULL, NULL);
}

lm_status lm_safetensors_write_via(const char *path, const lm_safetensors_entry *entries, size_t n,
                                   const char *const *metadata, lm_safetensors_reader read, void *ctx) {
    if (!path || (n && !entries)) return lm_error_set(LM_ERR_INVALID, "lm_safetensors_write: NULL argument");
    for (size_t i = 0; i < n; i++) LM_TRY(check_entry(path, entries, i));
    lm_buffer header = {0};
    lm_status status = build_header(path, entries, n, metadata, &header);
    if (status != LM_OK) {
        lm_buffer_free(&header);
        return status;
    }
    unsigned char length[8];
    for (int i = 0; i < 8; i++) length[i] = (unsigned char)((uint64_t)header.len >> (8 * i));

    unsigned char *stage = NULL;
    if (read && (status = lm_alloc((void **)&stage, LM_SAFETENSORS_STAGE_BYTES, "a staging buffer for writing a "
                                                                               "safetensors file")) != LM_OK) {
        lm_buffer_free(&header);
        return status;
    }
    lm_atomic_file out;
    if ((status = lm_atomic_file_open(&out, path)) != LM_OK) {
        lm_buffer_free(&header);
        lm_free(stage);
        return status;
    }
    int ok = lm_atomic_file_write(&out, length, 8) && lm_atomic_file_write(&out, header.data, header.len);
    for (size_t i = 0; ok && i < n; i++) ok = write_entry_data(&out, &entries[i], read, ctx, stage, &status);
    lm_free(stage);
    lm_buffer_free(&header);
    if (status != LM_OK) { /* a read failed: its message stands */
        lm_atomic_file_discard(&out);
        lm_error_prefix("writing '%s': ", path);
        return status;
    }
    return lm_atomic_file_commit(&out);
}
