/* Safetensors reader and writer, checked against files written by the
 * official Python package (fixtures/gen_safetensors.py) and against corrupt
 * files built here byte by byte. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lmcore/device.h"
#include "lmcore/json.h"
#include "lmcore/safetensors.h"
#include "safetensors_internal.h"
#include "test_main.h"

#define FIXTURES LM_TEST_SOURCE_DIR "/tests/safetensors/fixtures"

static char temp_dir[256];

static void make_temp_dir(void) {
    snprintf(temp_dir, sizeof temp_dir, "/tmp/lm_test_safetensors_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(temp_dir));
}

static void remove_temp_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", temp_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static char *temp_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", temp_dir, name);
    return path;
}

static int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void *read_bytes(const char *path, size_t *len) {
    lm_buffer b = {0};
    ck_assert_int_eq(lm_file_read(path, &b), LM_OK);
    *len = b.len;
    return b.data;
}

/* A file with the given header JSON (stored verbatim, length as given unless
 * header_len_override != 0) followed by data_len zero bytes. */
static const char *make_file(const char *name, const char *header, size_t data_len, uint64_t header_len_override) {
    size_t hlen = strlen(header);
    size_t total = 8 + hlen + data_len;
    unsigned char *bytes = calloc(1, total);
    uint64_t n = header_len_override ? header_len_override : hlen;
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)(n >> (8 * i));
    memcpy(bytes + 8, header, hlen);
    const char *path = temp_path(name);
    write_bytes(path, bytes, total);
    free(bytes);
    return path;
}

/* Opening must fail with `status` and a message holding every `needles` item. */
static void expect_open_error(const char *path, lm_status status, const char *const *needles) {
    lm_safetensors *st = (lm_safetensors *)0x1;
    lm_error_clear();
    ck_assert_int_eq(lm_safetensors_open(path, &st), status);
    ck_assert_ptr_null(st);
    const char *msg = lm_error_message();
    ck_assert_msg(strstr(msg, path) != NULL, "message does not name the file: %s", msg);
    for (size_t i = 0; needles[i]; i++)
        ck_assert_msg(strstr(msg, needles[i]) != NULL, "'%s' not in: %s", needles[i], msg);
}

#define EXPECT_OPEN_ERROR(path, status, ...)                                                                           \
    do {                                                                                                               \
        const char *needles_[] = {__VA_ARGS__, NULL};                                                                  \
        expect_open_error(path, status, needles_);                                                                     \
    } while (0)

/* ---- the reference writer's files ---------------------------------------------------- */

START_TEST(reads_python_file_values) {
    lm_safetensors *st = NULL;
    ck_assert_int_eq(lm_safetensors_open(FIXTURES "/mixed.safetensors", &st), LM_OK);
    ck_assert_uint_eq(lm_safetensors_count(st), 10);
    ck_assert_str_eq(lm_safetensors_metadata(st, "format"), "pt");
    ck_assert_str_eq(lm_safetensors_metadata(st, "note"), "lmcore fixture \xc3\xa9");
    ck_assert_ptr_null(lm_safetensors_metadata(st, "absent"));

    float w[6];
    int64_t shape23[] = {2, 3};
    ck_assert_int_eq(lm_safetensors_read_f32(st, "weight", shape23, 2, w), LM_OK);
    const float expected[] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f};
    for (int i = 0; i < 6; i++) ck_assert_float_eq(w[i], expected[i]);

    lm_tensor t;
    ck_assert_int_eq(lm_safetensors_find(st, "ids", &t), LM_OK);
    ck_assert_int_eq(t.dtype, LM_I32);
    ck_assert_int_eq(t.ndim, 1);
    ck_assert_int_eq(t.shape[0], 5);
    int32_t ids[5];
    memcpy(ids, t.data, sizeof ids);
    ck_assert_int_eq(ids[0], 7);
    ck_assert_int_eq(ids[1], -1);
    ck_assert_int_eq(ids[2], 2147483647);
    ck_assert_int_eq(ids[3], -2147483647 - 1);
    ck_assert_int_eq(ids[4], 0);

    ck_assert_int_eq(lm_safetensors_find(st, "scalar", &t), LM_OK);
    ck_assert_int_eq(t.ndim, 0);
    ck_assert_int_eq(lm_tensor_numel(&t), 1);
    float scalar;
    ck_assert_int_eq(lm_safetensors_read_f32(st, "scalar", NULL, 0, &scalar), LM_OK);
    ck_assert_float_eq(scalar, 42.0f);

    ck_assert_int_eq(lm_safetensors_find(st, "empty", &t), LM_OK);
    ck_assert_int_eq(t.ndim, 2);
    ck_assert_int_eq(t.shape[0], 0);
    ck_assert_int_eq(t.shape[1], 3);
    ck_assert_uint_eq(lm_tensor_nbytes(&t), 0);

    ck_assert_int_eq(lm_safetensors_find(st, "nope", &t), LM_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "nope"));
    lm_safetensors_close(st);
}
END_TEST

/* F16, BF16 and F64 -> F32 must match torch's conversion bit for bit
 * (including -0, subnormals and infinities). */
START_TEST(converts_half_types_like_torch) {
    lm_safetensors *st = NULL;
    ck_assert_int_eq(lm_safetensors_open(FIXTURES "/mixed.safetensors", &st), LM_OK);
    const struct {
        const char *name, *reference;
        int64_t shape[2];
        int ndim;
    } cases[] = {{"half", "half_as_f32", {4, 8}, 2},
                 {"bf16", "bf16_as_f32", {2, 16}, 2},
                 {"double", "double_as_f32", {3, 0}, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float got[32], want[32];
        ck_assert_int_eq(lm_safetensors_read_f32(st, cases[c].name, cases[c].shape, cases[c].ndim, got), LM_OK);
        ck_assert_int_eq(lm_safetensors_read_f32(st, cases[c].reference, cases[c].shape, cases[c].ndim, want), LM_OK);
        size_t n = (size_t)(cases[c].shape[0] * (cases[c].ndim == 2 ? cases[c].shape[1] : 1));
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(memcmp(&got[i], &want[i], 4) == 0, "%s[%zu]: %g != torch %g", cases[c].name, i, got[i],
                          want[i]);
    }
    lm_safetensors_close(st);
}
END_TEST

START_TEST(read_f32_checks_shape_and_dtype) {
    lm_safetensors *st = NULL;
    ck_assert_int_eq(lm_safetensors_open(FIXTURES "/mixed.safetensors", &st), LM_OK);
    float buf[64];
    int64_t wrong[] = {3, 2};
    ck_assert_int_eq(lm_safetensors_read_f32(st, "weight", wrong, 2, buf), LM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "[2, 3]"));
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "[3, 2]"));
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "weight"));
    int64_t five[] = {5};
    ck_assert_int_ne(lm_safetensors_read_f32(st, "ids", five, 1, buf), LM_OK);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "I32"));
    lm_safetensors_close(st);
}
END_TEST

/* Tensors come in data order whatever the JSON order, each starting where
 * the previous one ends. */
START_TEST(iterates_in_offset_order) {
    lm_safetensors *st = NULL;
    ck_assert_int_eq(lm_safetensors_open(FIXTURES "/mixed.safetensors", &st), LM_OK);
    const char *name;
    lm_tensor t;
    char *previous_end = NULL;
    for (size_t i = 0; i < lm_safetensors_count(st); i++) {
        ck_assert_int_eq(lm_safetensors_at(st, i, &name, &t), LM_OK);
        if (previous_end) ck_assert_ptr_eq(t.data, previous_end);
        previous_end = (char *)t.data + lm_tensor_nbytes(&t);
    }
    ck_assert_int_ne(lm_safetensors_at(st, lm_safetensors_count(st), &name, &t), LM_OK);
    lm_safetensors_close(st);
}
END_TEST

/* Rewriting the reference file's tensors in its order and with its metadata
 * gives back the very same bytes: same JSON, same padding, same data. */
START_TEST(rewrite_is_byte_identical_to_reference_writer) {
    make_temp_dir();
    lm_safetensors *st = NULL;
    ck_assert_int_eq(lm_safetensors_open(FIXTURES "/layout.safetensors", &st), LM_OK);
    size_t n = lm_safetensors_count(st);
    lm_safetensors_entry entries[8];
    ck_assert_uint_le(n, 8);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(lm_safetensors_at(st, i, &entries[i].name, &entries[i].tensor), LM_OK);
    const char *metadata[] = {"format", "pt", NULL};
    const char *out = temp_path("rewritten.safetensors");
    ck_assert_int_eq(lm_safetensors_write(out, entries, n, metadata), LM_OK);
    lm_safetensors_close(st);

    size_t want_len, got_len;
    char *want = read_bytes(FIXTURES "/layout.safetensors", &want_len);
    char *got = read_bytes(out, &got_len);
    ck_assert_uint_eq(got_len, want_len);
    ck_assert_int_eq(memcmp(got, want, want_len), 0);
    free(want);
    free(got);
    remove_temp_dir();
}
END_TEST

/* ---- writing through a reader (from device memory) ---------------------------------- */

/* A reader from host memory that records how it was called. */
typedef struct staged_reads {
    size_t calls, largest, fail_at; /* fail_at: the call that fails (0: none) */
} staged_reads;

static lm_status read_host(void *ctx, const lm_tensor *t, size_t offset, void *dst, size_t bytes) {
    staged_reads *r = ctx;
    if (++r->calls == r->fail_at) return lm_error_set(LM_ERR_IO, "the test's reader failed on purpose");
    if (bytes > r->largest) r->largest = bytes;
    memcpy(dst, (const char *)t->data + offset, bytes);
    return LM_OK;
}

/* Two tensors, one of them larger than the staging buffer with a tail that
 * is not a whole piece, a small one between: the file written piece by
 * piece is byte for byte the one written from memory at once. */
#define BIG_FLOATS (LM_SAFETENSORS_STAGE_BYTES / sizeof(float) * 2 + 1001)
static void big_entries(lm_safetensors_entry entries[3], float *big, float *small, int16_t *half) {
    for (size_t i = 0; i < BIG_FLOATS; i++) big[i] = (float)i * 0.5f - 7.0f;
    for (int i = 0; i < 6; i++) small[i] = (float)(i * i);
    for (int i = 0; i < 4; i++) half[i] = (int16_t)(0x3c00 + i);
    memset(entries, 0, 3 * sizeof *entries);
    entries[0] = (lm_safetensors_entry){.name = "big", .tensor = {.dtype = LM_F32, .ndim = 1, .data = big}};
    entries[0].tensor.shape[0] = (int64_t)BIG_FLOATS;
    entries[1] = (lm_safetensors_entry){.name = "small", .tensor = {.dtype = LM_F32, .ndim = 2, .data = small}};
    entries[1].tensor.shape[0] = 2;
    entries[1].tensor.shape[1] = 3;
    entries[2] = (lm_safetensors_entry){.name = "half", .tensor = {.dtype = LM_F16, .ndim = 1, .data = half}};
    entries[2].tensor.shape[0] = 4;
}

START_TEST(write_via_reader_is_byte_identical_in_pieces) {
    make_temp_dir();
    float *big = malloc(BIG_FLOATS * sizeof(float)), small[6];
    int16_t half[4];
    ck_assert_ptr_nonnull(big);
    lm_safetensors_entry entries[3];
    big_entries(entries, big, small, half);
    const char *metadata[] = {"format", "pt", NULL};
    char direct[512];
    snprintf(direct, sizeof direct, "%s", temp_path("direct.safetensors"));
    ck_assert_int_eq(lm_safetensors_write(direct, entries, 3, metadata), LM_OK);

    staged_reads reads = {0};
    const char *staged = temp_path("staged.safetensors");
    ck_assert_msg(lm_safetensors_write_via(staged, entries, 3, metadata, read_host, &reads) == LM_OK, "%s",
                  lm_error_message());
    /* big: 3 pieces (two whole, the tail); small and half: one each. */
    ck_assert_uint_eq(reads.calls, 5);
    ck_assert_uint_eq(reads.largest, LM_SAFETENSORS_STAGE_BYTES);
    size_t want_len, got_len;
    char *want = read_bytes(direct, &want_len);
    char *got = read_bytes(staged, &got_len);
    ck_assert_uint_eq(got_len, want_len);
    ck_assert_int_eq(memcmp(got, want, want_len), 0);
    free(want);
    free(got);

    /* Through a device (the host device: downloads counted as a GPU's). */
    lm_device *dev = NULL;
    ck_assert_int_eq(lm_host_device_create(&dev, "a test device"), LM_OK);
    const char *from_device = temp_path("device.safetensors");
    ck_assert_int_eq(lm_safetensors_write_via(from_device, entries, 3, metadata, lm_safetensors_read_device, dev),
                     LM_OK);
    lm_device_counters c;
    dev->ops->counters(dev, &c);
    ck_assert_uint_eq(c.downloads, 5);
    got = read_bytes(from_device, &got_len);
    want = read_bytes(direct, &want_len);
    ck_assert_uint_eq(got_len, want_len);
    ck_assert_int_eq(memcmp(got, want, want_len), 0);
    free(want);
    free(got);
    dev->ops->release(dev);
    free(big);
    remove_temp_dir();
}
END_TEST

/* A reader that fails half-way: its message, the file named, and nothing
 * written (neither the file nor its temporary); an older file survives. */
START_TEST(write_via_failing_reader_leaves_nothing) {
    make_temp_dir();
    float *big = malloc(BIG_FLOATS * sizeof(float)), small[6];
    int16_t half[4];
    ck_assert_ptr_nonnull(big);
    lm_safetensors_entry entries[3];
    big_entries(entries, big, small, half);
    const char *path = temp_path("model.safetensors");
    staged_reads reads = {.fail_at = 2};
    ck_assert_int_eq(lm_safetensors_write_via(path, entries, 3, NULL, read_host, &reads), LM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "the test's reader failed on purpose"));
    ck_assert_ptr_nonnull(strstr(lm_error_message(), path));
    ck_assert_int_eq(count_dir_entries(temp_dir), 0);

    write_bytes(path, "old", 3);
    reads = (staged_reads){.fail_at = 4};
    ck_assert_int_eq(lm_safetensors_write_via(path, entries, 3, NULL, read_host, &reads), LM_ERR_IO);
    ck_assert_int_eq(count_dir_entries(temp_dir), 1);
    size_t len;
    char *kept = read_bytes(path, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(kept, "old", 3), 0);
    free(kept);
    free(big);
    remove_temp_dir();
}
END_TEST

/* ---- round trip ------------------------------------------------------------------------- */

START_TEST(round_trip_all_dtypes) {
    make_temp_dir();
    float f32[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    uint16_t f16[3] = {0x3C00, 0xC000, 0x0001}; /* 1, -2, smallest subnormal */
    uint16_t bf16[2] = {0x3F80, 0xC049};        /* 1, -3.140625 */
    int32_t i32[4] = {1, -2, 3, -4};
    int64_t i64[2] = {INT64_MAX, -5};
    double f64[2] = {0.1, -1e300};
    uint8_t u8[3] = {0, 128, 255};
    lm_safetensors_entry entries[] = {
        {"f32", {LM_F32, 2, {2, 3}, f32}},   {"f16", {LM_F16, 1, {3}, f16}},
        {"z.bf16", {LM_BF16, 1, {2}, bf16}}, {"i32", {LM_I32, 2, {2, 2}, i32}},
        {"i64", {LM_I64, 1, {2}, i64}},      {"f64", {LM_F64, 1, {2}, f64}},
        {"u8", {LM_U8, 1, {3}, u8}},         {"empty", {LM_F32, 2, {0, 4}, NULL}},
        {"scalar", {LM_F32, 0, {0}, f32}},   {"\xc3\xa9t\xc3\xa9", {LM_F32, 1, {1}, f32 + 2}},
    };
    size_t n = sizeof entries / sizeof entries[0];
    const char *metadata[] = {"format", "pt", "quote\"key", "line\nbreak \xe2\x82\xac", NULL};
    char path[512];
    snprintf(path, sizeof path, "%s", temp_path("rt.safetensors"));
    ck_assert_int_eq(lm_safetensors_write(path, entries, n, metadata), LM_OK);
    ck_assert_int_eq(count_dir_entries(temp_dir), 1); /* no temporary file left behind */

    /* Layout: header length a multiple of 8, padded with spaces, valid JSON. */
    size_t len;
    unsigned char *bytes = read_bytes(path, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | bytes[i];
    ck_assert_uint_eq(hlen % 8, 0);
    ck_assert_uint_le(8 + hlen, len);
    lm_json *header = NULL;
    ck_assert_int_eq(lm_json_parse((const char *)bytes + 8, hlen, "header", &header), LM_OK);
    ck_assert_uint_eq(lm_json_size(header), n + 1);
    ck_assert_str_eq(lm_json_key_at(header, 0, NULL), "__metadata__");
    lm_json_free(header);
    free(bytes);

    lm_safetensors *st = NULL;
    ck_assert_int_eq(lm_safetensors_open(path, &st), LM_OK);
    ck_assert_uint_eq(lm_safetensors_count(st), n);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        lm_tensor t;
        /* Written in the order given, so file order equals entry order. */
        ck_assert_int_eq(lm_safetensors_at(st, i, &name, &t), LM_OK);
        ck_assert_str_eq(name, entries[i].name);
        ck_assert_int_eq(t.dtype, entries[i].tensor.dtype);
        ck_assert_int_eq(t.ndim, entries[i].tensor.ndim);
        for (int d = 0; d < t.ndim; d++) ck_assert_int_eq(t.shape[d], entries[i].tensor.shape[d]);
        size_t nbytes = lm_tensor_nbytes(&t);
        ck_assert_uint_eq(nbytes, lm_tensor_nbytes(&entries[i].tensor));
        if (nbytes) ck_assert_int_eq(memcmp(t.data, entries[i].tensor.data, nbytes), 0);
    }
    ck_assert_str_eq(lm_safetensors_metadata(st, "quote\"key"), "line\nbreak \xe2\x82\xac");
    float got[3];
    ck_assert_int_eq(lm_safetensors_read_f32(st, "f16", (int64_t[]){3}, 1, got), LM_OK);
    ck_assert_float_eq(got[0], 1.0f);
    ck_assert_float_eq(got[1], -2.0f);
    ck_assert_float_eq(got[2], 5.960464477539063e-08f);
    ck_assert_int_eq(lm_safetensors_read_f32(st, "z.bf16", (int64_t[]){2}, 1, got), LM_OK);
    ck_assert_float_eq(got[1], -3.140625f);
    lm_safetensors_close(st);
    remove_temp_dir();
}
END_TEST

START_TEST(write_rejects_bad_entries) {
    make_temp_dir();
    float x[2] = {1, 2};
    lm_safetensors_entry dup[] = {{"a", {LM_F32, 1, {2}, x}}, {"a", {LM_F32, 1, {2}, x}}};
    const char *path = temp_path("bad.safetensors");
    ck_assert_int_eq(lm_safetensors_write(path, dup, 2, NULL), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "'a' appears twice"));
    lm_safetensors_entry reserved[] = {{"__metadata__", {LM_F32, 1, {2}, x}}};
    ck_assert_int_eq(lm_safetensors_write(path, reserved, 1, NULL), LM_ERR_INVALID);
    lm_safetensors_entry no_data[] = {{"a", {LM_F32, 1, {2}, NULL}}};
    ck_assert_int_eq(lm_safetensors_write(path, no_data, 1, NULL), LM_ERR_INVALID);
    lm_safetensors_entry negative[] = {{"a", {LM_F32, 1, {-2}, x}}};
    ck_assert_int_eq(lm_safetensors_write(path, negative, 1, NULL), LM_ERR_INVALID);
    ck_assert_int_ne(access(path, F_OK), 0);
    /* A directory that does not exist: I/O error, nothing left behind. */
    lm_safetensors_entry ok[] = {{"a", {LM_F32, 1, {2}, x}}};
    ck_assert_int_eq(lm_safetensors_write(temp_path("missing/x.safetensors"), ok, 1, NULL), LM_ERR_IO);
    ck_assert_int_eq(count_dir_entries(temp_dir), 0);
    remove_temp_dir();
}
END_TEST

/* ---- corrupt files ------------------------------------------------------------------------ */

START_TEST(rejects_truncated_files) {
    make_temp_dir();
    size_t len;
    char *bytes = read_bytes(FIXTURES "/mixed.safetensors", &len);
    /* The last tensor in data order is 'half' (F16, aligned after the 4-byte types). */
    const char *path = temp_path("truncated.safetensors");
    write_bytes(path, bytes, len - 4);
    lm_safetensors *st = NULL;
    ck_assert_int_eq(lm_safetensors_open(FIXTURES "/mixed.safetensors", &st), LM_OK);
    const char *last;
    ck_assert_int_eq(lm_safetensors_at(st, lm_safetensors_count(st) - 1, &last, NULL), LM_OK);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "tensor '%s'", last);
    EXPECT_OPEN_ERROR(path, LM_ERR_FORMAT, quoted, "past the end");
    lm_safetensors_close(st);

    write_bytes(path, bytes, 100); /* inside the header */
    EXPECT_OPEN_ERROR(path, LM_ERR_FORMAT, "header length");
    write_bytes(path, bytes, 5);
    EXPECT_OPEN_ERROR(path, LM_ERR_FORMAT, "too short");
    write_bytes(path, bytes, 0);
    EXPECT_OPEN_ERROR(path, LM_ERR_FORMAT, "too short");
    free(bytes);
    EXPECT_OPEN_ERROR(temp_path("does-not-exist.safetensors"), LM_ERR_IO, "cannot open");
    remove_temp_dir();
}
END_TEST

START_TEST(rejects_bad_header_length) {
    make_temp_dir();
    const char *header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_OPEN_ERROR(make_file("big.safetensors", header, 4, 200000000ull), LM_ERR_FORMAT, "100 MB");
    EXPECT_OPEN_ERROR(make_file("over.safetensors", header, 4, strlen(header) + 5), LM_ERR_FORMAT, "larger than");
    EXPECT_OPEN_ERROR(make_file("huge.safetensors", header, 4, UINT64_MAX), LM_ERR_FORMAT, "100 MB");
    remove_temp_dir();
}
END_TEST

START_TEST(rejects_bad_offsets) {
    make_temp_dir();
    EXPECT_OPEN_ERROR(make_file("overlap.safetensors",
                                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                                12, 0),
                      LM_ERR_FORMAT, "tensor 'b'", "overlap tensor 'a'");
    EXPECT_OPEN_ERROR(make_file("gap.safetensors",
                                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
                                20, 0),
                      LM_ERR_FORMAT, "tensor 'b'", "gap of 4");
    EXPECT_OPEN_ERROR(
        make_file("range.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, 0),
        LM_ERR_FORMAT, "tensor 'a'", "past the end");
    EXPECT_OPEN_ERROR(make_file("huge.safetensors",
                                "{\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":"
                                "[18446744073709551600,18446744073709551616]}}",
                                16, 0),
                      LM_ERR_FORMAT, "tensor 'a'", "data_offsets");
    EXPECT_OPEN_ERROR(
        make_file("leftover.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, 0),
        LM_ERR_FORMAT, "cover 8 bytes", "holds 12");
    EXPECT_OPEN_ERROR(
        make_file("reversed.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, 0),
        LM_ERR_FORMAT, "tensor 'a'", "before begin");
    remove_temp_dir();
}
END_TEST

START_TEST(accepts_any_json_order) {
    make_temp_dir();
    const char *path = make_file("order.safetensors",
                                 "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}    ",
                                 8, 0);
    lm_safetensors *st = NULL;
    ck_assert_int_eq(lm_safetensors_open(path, &st), LM_OK);
    const char *name;
    ck_assert_int_eq(lm_safetensors_at(st, 0, &name, NULL), LM_OK);
    ck_assert_str_eq(name, "a");
    ck_assert_int_eq(lm_safetensors_at(st, 1, &name, NULL), LM_OK);
    ck_assert_str_eq(name, "b");
    lm_safetensors_close(st);
    remove_temp_dir();
}
END_TEST

START_TEST(rejects_bad_tensor_entries) {
    make_temp_dir();
    EXPECT_OPEN_ERROR(
        make_file("dtype.safetensors", "{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0),
        LM_ERR_FORMAT, "tensor 'w'", "unknown dtype \"F33\"");
    EXPECT_OPEN_ERROR(
        make_file("i8.safetensors", "{\"w\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, 0),
        LM_ERR_UNSUPPORTED, "'w'", "I8");
    EXPECT_OPEN_ERROR(
        make_file("size.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0),
        LM_ERR_FORMAT, "tensor 'w'", "needs 12 bytes");
    EXPECT_OPEN_ERROR(
        make_file("neg.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, 0),
        LM_ERR_FORMAT, "tensor 'w'", "non-negative");
    EXPECT_OPEN_ERROR(make_file("dims.safetensors",
                                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                                0),
                      LM_ERR_FORMAT, "tensor 'w'", "9 dimensions");
    EXPECT_OPEN_ERROR(make_file("noshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, 0),
                      LM_ERR_FORMAT, "tensor 'w'", "shape");
    EXPECT_OPEN_ERROR(
        make_file("offsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, 0),
        LM_ERR_FORMAT, "tensor 'w'", "data_offsets");
    EXPECT_OPEN_ERROR(
        make_file("float.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, 0),
        LM_ERR_FORMAT, "tensor 'w'");
    EXPECT_OPEN_ERROR(make_file("dup.safetensors",
                                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                                8, 0),
                      LM_ERR_FORMAT, "duplicate key \"w\"");
    EXPECT_OPEN_ERROR(make_file("json.safetensors", "{\"w\":{\"dtype\":\"F32\",", 0, 0), LM_ERR_FORMAT, "JSON header",
                      ":1:21:");
    EXPECT_OPEN_ERROR(make_file("start.safetensors", "[1, 2]  ", 0, 0), LM_ERR_FORMAT, "does not start with '{'");
    EXPECT_OPEN_ERROR(make_file("meta.safetensors", "{\"__metadata__\":{\"k\":1}}", 0, 0), LM_ERR_FORMAT,
                      "__metadata__", "'k'");
    remove_temp_dir();
}
END_TEST

static Suite *safetensors_suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, reads_python_file_values);
    tcase_add_test(tc, converts_half_types_like_torch);
    tcase_add_test(tc, read_f32_checks_shape_and_dtype);
    tcase_add_test(tc, iterates_in_offset_order);
    tcase_add_test(tc, rewrite_is_byte_identical_to_reference_writer);
    tcase_add_test(tc, write_via_reader_is_byte_identical_in_pieces);
    tcase_add_test(tc, write_via_failing_reader_leaves_nothing);
    tcase_add_test(tc, round_trip_all_dtypes);
    tcase_add_test(tc, write_rejects_bad_entries);
    tcase_add_test(tc, rejects_truncated_files);
    tcase_add_test(tc, rejects_bad_header_length);
    tcase_add_test(tc, rejects_bad_offsets);
    tcase_add_test(tc, accepts_any_json_order);
    tcase_add_test(tc, rejects_bad_tensor_entries);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(safetensors_suite(), NULL);
}
