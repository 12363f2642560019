/* fuzz_json: lm_json_parse on arbitrary bytes, then a writer round trip.
 *
 * Invariants checked on every document the parser accepts:
 *   - every accessor agrees with the tree (sizes, keys, lookups by key);
 *   - writing it (compact or indented) succeeds and the output parses again
 *     into an equal tree;
 *   - writing the re-parsed tree gives byte-identical output (the writer is
 *     deterministic and the round trip is a fixed point).
 * Skipped for the round trip, by design of the writer (documented in
 * docs/fuzzing.md): nesting deeper than the writer's 31 levels, and object
 * keys holding U+0000 (lm_json_key takes a C string). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "lmcore/lmcore.h"

#define WRITER_MAX_DEPTH 31

/* Depth of the tree and whether some key holds a NUL byte; also walks every
 * accessor so that a bad node shows up under ASan. */
static void survey(const lm_json *v, int depth, int *max_depth, int *nul_key) {
    if (depth > *max_depth) *max_depth = depth;
    size_t len;
    switch (lm_json_type_of(v)) {
    case LM_JSON_NULL: break;
    case LM_JSON_BOOL: FUZZ_CHECK(lm_json_bool(v) == 0 || lm_json_bool(v) == 1, "bool not 0/1"); break;
    case LM_JSON_NUMBER:
        FUZZ_CHECK(isfinite(lm_json_number(v)), "parser accepted a non-finite number %g", lm_json_number(v));
        if (lm_json_is_integer(v))
            FUZZ_CHECK((double)lm_json_int(v) == lm_json_number(v),
                       "integer %lld and number %.17g disagree", (long long)lm_json_int(v), lm_json_number(v));
        break;
    case LM_JSON_STRING: {
        const char *s = lm_json_string(v, &len);
        FUZZ_CHECK(s != NULL, "string node without text");
        FUZZ_CHECK(s[len] == '\0', "string of %zu bytes not NUL-terminated", len);
        break;
    }
    case LM_JSON_ARRAY:
        for (size_t i = 0; i < lm_json_size(v); i++) survey(lm_json_at(v, i), depth + 1, max_depth, nul_key);
        FUZZ_CHECK(lm_json_at(v, lm_json_size(v)) == NULL, "lm_json_at past the end is not NULL");
        break;
    case LM_JSON_OBJECT:
        for (size_t i = 0; i < lm_json_size(v); i++) {
            const char *key = lm_json_key_at(v, i, &len);
            FUZZ_CHECK(key != NULL && key[len] == '\0', "object key %zu not NUL-terminated", i);
            if (strlen(key) != len) *nul_key = 1;
            else FUZZ_CHECK(lm_json_get(v, key) == lm_json_at(v, i), "lm_json_get(\"%s\") is not member %zu", key, i);
            survey(lm_json_at(v, i), depth + 1, max_depth, nul_key);
        }
        break;
    default: fuzz_fail("unknown node type %d", (int)lm_json_type_of(v));
    }
}

static void write_value(lm_json_writer *w, const lm_json *v) {
    size_t len;
    switch (lm_json_type_of(v)) {
    case LM_JSON_NULL: lm_json_write_null(w); break;
    case LM_JSON_BOOL: lm_json_write_bool(w, lm_json_bool(v)); break;
    case LM_JSON_NUMBER:
        /* "-0" reads as the integer 0 with the number -0.0: keep the sign. */
        if (lm_json_is_integer(v) && !(lm_json_number(v) == 0 && signbit(lm_json_number(v))))
            lm_json_write_int(w, lm_json_int(v));
        else lm_json_write_number(w, lm_json_number(v));
        break;
    case LM_JSON_STRING: {
        const char *s = lm_json_string(v, &len);
        lm_json_write_string(w, s, len);
        break;
    }
    case LM_JSON_ARRAY:
        lm_json_begin_array(w);
        for (size_t i = 0; i < lm_json_size(v); i++) write_value(w, lm_json_at(v, i));
        lm_json_end_array(w);
        break;
    case LM_JSON_OBJECT:
        lm_json_begin_object(w);
        for (size_t i = 0; i < lm_json_size(v); i++) {
            lm_json_key(w, lm_json_key_at(v, i, &len));
            write_value(w, lm_json_at(v, i));
        }
        lm_json_end_object(w);
        break;
    }
}

static void check_equal(const lm_json *a, const lm_json *b, const char *where) {
    FUZZ_CHECK(lm_json_type_of(a) == lm_json_type_of(b), "%s: type %d became %d", where, (int)lm_json_type_of(a),
               (int)lm_json_type_of(b));
    size_t la, lb;
    switch (lm_json_type_of(a)) {
    case LM_JSON_NULL: break;
    case LM_JSON_BOOL: FUZZ_CHECK(lm_json_bool(a) == lm_json_bool(b), "%s: bool changed", where); break;
    case LM_JSON_NUMBER:
        FUZZ_CHECK(lm_json_number(a) == lm_json_number(b), "%s: number %.17g became %.17g", where, lm_json_number(a),
                   lm_json_number(b));
        if (lm_json_is_integer(a) && lm_json_is_integer(b))
            FUZZ_CHECK(lm_json_int(a) == lm_json_int(b), "%s: integer %lld became %lld", where,
                       (long long)lm_json_int(a), (long long)lm_json_int(b));
        break;
    case LM_JSON_STRING: {
        const char *sa = lm_json_string(a, &la), *sb = lm_json_string(b, &lb);
        FUZZ_CHECK(la == lb && memcmp(sa, sb, la) == 0, "%s: string of %zu bytes became %zu bytes", where, la, lb);
        break;
    }
    case LM_JSON_ARRAY:
    case LM_JSON_OBJECT:
        FUZZ_CHECK(lm_json_size(a) == lm_json_size(b), "%s: %zu members became %zu", where, lm_json_size(a),
                   lm_json_size(b));
        for (size_t i = 0; i < lm_json_size(a); i++) {
            if (lm_json_type_of(a) == LM_JSON_OBJECT) {
                const char *ka = lm_json_key_at(a, i, &la), *kb = lm_json_key_at(b, i, &lb);
                FUZZ_CHECK(la == lb && memcmp(ka, kb, la) == 0, "%s: key %zu changed", where, i);
            }
            check_equal(lm_json_at(a, i), lm_json_at(b, i), where);
        }
        break;
    }
}

static void write_tree(const lm_json *root, int indent, lm_buffer *out) {
    lm_json_writer w;
    lm_json_writer_init(&w, out, indent);
    write_value(&w, root);
    FUZZ_CHECK(lm_json_writer_finish(&w) == LM_OK, "writer failed on a parsed document");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lm_json *doc = NULL;
    if (lm_json_parse((const char *)data, size, "fuzz.json", &doc) != LM_OK) {
        FUZZ_CHECK(doc == NULL, "failed parse left a document behind");
        FUZZ_CHECK(lm_error_message()[0] != '\0', "failed parse without an error message");
        fuzz_note("refused: %s", lm_error_message());
        return 0;
    }
    int depth = 0, nul_key = 0;
    survey(doc, 0, &depth, &nul_key);
    if (depth < WRITER_MAX_DEPTH && !nul_key) {
        int indent = size ? data[size - 1] % 3 : 0; /* 0 (compact), 1 or 2 */
        lm_buffer first = {0}, second = {0};
        write_tree(doc, indent, &first);
        lm_json *again = NULL;
        if (lm_json_parse(first.data, first.len, "rewritten.json", &again) != LM_OK)
            fuzz_fail("the writer's output does not parse: %s\n---\n%s\n---", lm_error_message(), first.data);
        check_equal(doc, again, "round trip");
        write_tree(again, indent, &second);
        FUZZ_CHECK(first.len == second.len && memcmp(first.data, second.data, first.len) == 0,
                   "writing the re-parsed tree changed the text:\n%s\n---\n%s", first.data, second.data);
        lm_json_free(again);
        lm_buffer_free(&first);
        lm_buffer_free(&second);
    }
    lm_json_free(doc);
    return 0;
}
