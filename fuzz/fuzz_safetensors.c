/* fuzz_safetensors: a safetensors file made of the fuzzer's bytes.
 *
 * lm_safetensors_open must refuse it with a message or accept it; an
 * accepted file is then walked completely: every tensor by index and by
 * name, read as float32 (float dtypes) and read with a wrong shape (must
 * fail), metadata lookups, and a write/reopen round trip that must give the
 * same names, dtypes, shapes and bytes (the writer must accept whatever the
 * reader accepted). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "lmcore/lmcore.h"

static int is_float(lm_dtype d) { return d == LM_F32 || d == LM_F16 || d == LM_BF16 || d == LM_F64; }

static void walk(const lm_safetensors *st, size_t file_size) {
    size_t count = lm_safetensors_count(st);
    for (size_t i = 0; i < count; i++) {
        const char *name = NULL;
        lm_tensor t, by_name;
        FUZZ_CHECK(lm_safetensors_at(st, i, &name, &t) == LM_OK, "tensor %zu of %zu not readable", i, count);
        FUZZ_CHECK(name && name[0], "tensor %zu has no name", i);
        FUZZ_CHECK(lm_safetensors_find(st, name, &by_name) == LM_OK, "tensor '%s' not found by name", name);
        FUZZ_CHECK(by_name.data == t.data && by_name.dtype == t.dtype && by_name.ndim == t.ndim,
                   "tensor '%s' differs by index and by name", name);
        FUZZ_CHECK(t.ndim >= 0 && t.ndim <= LM_MAX_DIMS, "tensor '%s' has ndim %d", name, t.ndim);
        size_t nbytes = lm_tensor_nbytes(&t);
        FUZZ_CHECK(nbytes <= file_size, "tensor '%s' claims %zu bytes in a %zu-byte file", name, nbytes, file_size);
        /* Touch every byte: ASan/SEGV if the range is outside the mapping. */
        volatile unsigned char sum = 0;
        for (size_t b = 0; b < nbytes; b++) sum ^= ((const unsigned char *)t.data)[b];
        (void)sum;
        size_t numel = (size_t)lm_tensor_numel(&t);
        float *dst = malloc(numel ? numel * sizeof(float) : 1);
        FUZZ_CHECK(dst != NULL, "out of memory for %zu floats", numel);
        lm_status s = lm_safetensors_read_f32(st, name, t.shape, t.ndim, dst);
        FUZZ_CHECK((s == LM_OK) == is_float(t.dtype), "read_f32 of '%s' (dtype %s) returned %d", name,
                   lm_dtype_name(t.dtype), s);
        int64_t wrong[LM_MAX_DIMS + 1];
        memcpy(wrong, t.shape, sizeof t.shape);
        wrong[t.ndim] = 1;
        FUZZ_CHECK(lm_safetensors_read_f32(st, name, wrong, t.ndim + 1, dst) != LM_OK,
                   "read_f32 of '%s' accepted a wrong rank", name);
        free(dst);
    }
    FUZZ_CHECK(lm_safetensors_at(st, count, NULL, NULL) != LM_OK, "index past the end accepted");
    FUZZ_CHECK(lm_safetensors_find(st, "", NULL) != LM_OK, "empty tensor name found");
    (void)lm_safetensors_metadata(st, "format");
    (void)lm_safetensors_metadata(st, "");
}

static void round_trip(const lm_safetensors *st) {
    size_t count = lm_safetensors_count(st);
    lm_safetensors_entry *entries = calloc(count ? count : 1, sizeof *entries);
    FUZZ_CHECK(entries != NULL, "out of memory");
    for (size_t i = 0; i < count; i++) lm_safetensors_at(st, i, &entries[i].name, &entries[i].tensor);
    const char *format = lm_safetensors_metadata(st, "format");
    const char *metadata[] = {"format", format, NULL};
    const char *path = fuzz_path(1, "rewritten.safetensors");
    if (lm_safetensors_write(path, entries, count, format ? metadata : NULL) != LM_OK)
        fuzz_fail("lm_safetensors_write refused what lm_safetensors_open accepted");
    lm_safetensors *again = NULL;
    if (lm_safetensors_open(path, &again) != LM_OK) fuzz_fail("the rewritten file does not open");
    FUZZ_CHECK(lm_safetensors_count(again) == count, "%zu tensors became %zu", count, lm_safetensors_count(again));
    for (size_t i = 0; i < count; i++) {
        lm_tensor t;
        FUZZ_CHECK(lm_safetensors_find(again, entries[i].name, &t) == LM_OK, "tensor '%s' lost", entries[i].name);
        const lm_tensor *o = &entries[i].tensor;
        FUZZ_CHECK(t.dtype == o->dtype && t.ndim == o->ndim && memcmp(t.shape, o->shape, sizeof t.shape) == 0,
                   "tensor '%s' changed dtype or shape", entries[i].name);
        FUZZ_CHECK(memcmp(t.data, o->data, lm_tensor_nbytes(o)) == 0, "tensor '%s' changed bytes", entries[i].name);
    }
    if (format) {
        const char *f = lm_safetensors_metadata(again, "format");
        FUZZ_CHECK(f && strcmp(f, format) == 0, "metadata 'format' lost");
    }
    lm_safetensors_close(again);
    free(entries);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, "model.safetensors", data, size);
    lm_safetensors *st = NULL;
    lm_status s = lm_safetensors_open(path, &st);
    if (s != LM_OK) {
        FUZZ_CHECK(st == NULL, "failed open left a handle");
        FUZZ_CHECK(lm_error_message()[0] != '\0', "failed open without a message");
        fuzz_note("refused: %s", lm_error_message());
        return 0;
    }
    walk(st, size);
    round_trip(st);
    lm_safetensors_close(st);
    return 0;
}
