/* JSON parser and writer: RFC 8259 acceptance and rejection, positions in
 * error messages, escapes and surrogates, numbers, large objects, speed on a
 * tokenizer-sized document, and writer -> parser round trips. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lmcore/json.h"
#include "test_main.h"

static lm_json *parse_ok(const char *text) {
    lm_json *root = NULL;
    lm_status s = lm_json_parse(text, strlen(text), "doc.json", &root);
    ck_assert_msg(s == LM_OK, "'%s' should parse: %s", text, lm_error_message());
    return root;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- accepted documents ------------------------------------------------------------ */

START_TEST(parses_nested_document) {
    lm_json *root =
        parse_ok(" {\"a\": [1, 2.5, \"x\", true, false, null, {}, []],\r\n\t\"b\": {\"c\": \"d\"}, \"\": 0} ");
    ck_assert_int_eq(lm_json_type_of(root), LM_JSON_OBJECT);
    ck_assert_uint_eq(lm_json_size(root), 3);
    size_t klen;
    ck_assert_str_eq(lm_json_key_at(root, 0, &klen), "a");
    ck_assert_uint_eq(klen, 1);
    ck_assert_str_eq(lm_json_key_at(root, 1, NULL), "b");
    ck_assert_str_eq(lm_json_key_at(root, 2, &klen), "");
    ck_assert_uint_eq(klen, 0);
    ck_assert_ptr_null(lm_json_key_at(root, 3, NULL));
    const lm_json *a = lm_json_get(root, "a");
    ck_assert_ptr_eq(a, lm_json_at(root, 0));
    ck_assert_int_eq(lm_json_type_of(a), LM_JSON_ARRAY);
    ck_assert_uint_eq(lm_json_size(a), 8);
    ck_assert_int_eq(lm_json_int(lm_json_at(a, 0)), 1);
    ck_assert_double_eq(lm_json_number(lm_json_at(a, 1)), 2.5);
    ck_assert_str_eq(lm_json_string(lm_json_at(a, 2), NULL), "x");
    ck_assert_int_eq(lm_json_type_of(lm_json_at(a, 3)), LM_JSON_BOOL);
    ck_assert_int_eq(lm_json_bool(lm_json_at(a, 3)), 1);
    ck_assert_int_eq(lm_json_bool(lm_json_at(a, 4)), 0);
    ck_assert_int_eq(lm_json_type_of(lm_json_at(a, 5)), LM_JSON_NULL);
    ck_assert_int_eq(lm_json_type_of(lm_json_at(a, 6)), LM_JSON_OBJECT);
    ck_assert_uint_eq(lm_json_size(lm_json_at(a, 6)), 0);
    ck_assert_int_eq(lm_json_type_of(lm_json_at(a, 7)), LM_JSON_ARRAY);
    ck_assert_ptr_null(lm_json_at(a, 8));
    ck_assert_str_eq(lm_json_string(lm_json_get(lm_json_get(root, "b"), "c"), NULL), "d");
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "")), 0);
    ck_assert_ptr_null(lm_json_get(root, "missing"));
    ck_assert_ptr_null(lm_json_get(a, "a")); /* not an object */
    /* Accessors on the wrong type return neutral values instead of crashing. */
    ck_assert_ptr_null(lm_json_string(a, NULL));
    ck_assert_double_eq(lm_json_number(a), 0.0);
    ck_assert_uint_eq(lm_json_size(lm_json_at(a, 0)), 0);
    lm_json_free(root);
}
END_TEST

START_TEST(parses_top_level_scalars) {
    const char *docs[] = {"0", "-1", "\"s\"", "true", "false", "null", " 7 \n"};
    const lm_json_type types[] = {LM_JSON_NUMBER, LM_JSON_NUMBER, LM_JSON_STRING, LM_JSON_BOOL,
                                  LM_JSON_BOOL,   LM_JSON_NULL,   LM_JSON_NUMBER};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        lm_json *root = parse_ok(docs[i]);
        ck_assert_int_eq(lm_json_type_of(root), types[i]);
        lm_json_free(root);
    }
}
END_TEST

/* Every escape, UTF-8 passed through, \u escapes encoded as UTF-8, surrogate
 * pairs combined, and U+0000 kept (strings carry a length). */
START_TEST(decodes_escapes_and_surrogates) {
    lm_json *root = parse_ok("[\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\", \"\\u00e9\\u20AC\", \"\xc3\xa9\xe2\x82\xac\","
                             " \"\\ud83d\\ude00\", \"a\\u0000b\", \"\xf0\x9f\x98\x80\", \"\\uDBFF\\uDFFF\"]");
    size_t len;
    ck_assert_str_eq(lm_json_string(lm_json_at(root, 0), &len), "\" \\ / \b \f \n \r \t");
    ck_assert_uint_eq(len, 15);
    ck_assert_str_eq(lm_json_string(lm_json_at(root, 1), NULL), "\xc3\xa9\xe2\x82\xac");
    ck_assert_str_eq(lm_json_string(lm_json_at(root, 2), NULL), "\xc3\xa9\xe2\x82\xac");
    ck_assert_str_eq(lm_json_string(lm_json_at(root, 3), &len), "\xf0\x9f\x98\x80");
    ck_assert_uint_eq(len, 4);
    const char *nul = lm_json_string(lm_json_at(root, 4), &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(nul, "a\0b", 3), 0);
    ck_assert_str_eq(lm_json_string(lm_json_at(root, 5), NULL), "\xf0\x9f\x98\x80");
    ck_assert_str_eq(lm_json_string(lm_json_at(root, 6), NULL), "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
    lm_json_free(root);
}
END_TEST

START_TEST(classifies_numbers) {
    lm_json *root = parse_ok("[0, -0, 123, -9223372036854775808, 9223372036854775807, 9223372036854775808,"
                             " 1.5, 1e2, 1E-2, -1.25e+3, 1e-400, 0.1, 12345678901234567890123]");
    const lm_json *n = root;
    ck_assert(lm_json_is_integer(lm_json_at(n, 0)) && lm_json_int(lm_json_at(n, 0)) == 0);
    ck_assert(lm_json_is_integer(lm_json_at(n, 1)));
    ck_assert(signbit(lm_json_number(lm_json_at(n, 1))));
    ck_assert_int_eq(lm_json_int(lm_json_at(n, 2)), 123);
    ck_assert(lm_json_is_integer(lm_json_at(n, 3)));
    ck_assert(lm_json_int(lm_json_at(n, 3)) == INT64_MIN);
    ck_assert(lm_json_int(lm_json_at(n, 4)) == INT64_MAX);
    ck_assert(!lm_json_is_integer(lm_json_at(n, 5))); /* does not fit int64 */
    ck_assert_double_eq(lm_json_number(lm_json_at(n, 5)), 9223372036854775808.0);
    ck_assert(!lm_json_is_integer(lm_json_at(n, 6)));
    ck_assert_double_eq(lm_json_number(lm_json_at(n, 6)), 1.5);
    ck_assert(!lm_json_is_integer(lm_json_at(n, 7))); /* written with an exponent */
    ck_assert_double_eq(lm_json_number(lm_json_at(n, 7)), 100.0);
    ck_assert_int_eq(lm_json_int(lm_json_at(n, 7)), 100);
    ck_assert_double_eq(lm_json_number(lm_json_at(n, 8)), 0.01);
    ck_assert_double_eq(lm_json_number(lm_json_at(n, 9)), -1250.0);
    ck_assert_double_eq(lm_json_number(lm_json_at(n, 10)), 0.0);
    ck_assert_double_eq(lm_json_number(lm_json_at(n, 11)), 0.1);
    ck_assert_double_eq(lm_json_number(lm_json_at(n, 12)), 12345678901234567890123.0);
    lm_json_free(root);
}
END_TEST

/* ---- rejected documents --------------------------------------------------------------- */

static const struct {
    const char *text;
    const char *position; /* "line:column:" expected in the message */
    const char *problem;  /* expected substring */
} invalid_documents[] = {
    {"", "1:1:", "end of input"},
    {"   \n  ", "2:3:", "end of input"},
    {"[1, 2,]", "1:7:", "']'"},
    {"{\"a\": 1,}", "1:9:", "string key"},
    {"{\"a\" 1}", "1:6:", "':'"},
    {"{a: 1}", "1:2:", "string key"},
    {"['x']", "1:2:", "'''"},
    {"[1 2]", "1:4:", "',' or ']'"},
    {"{\"a\":1 \"b\":2}", "1:8:", "',' or '}'"},
    {"[1] 2", "1:5:", "end of input after"},
    {"{} x", "1:4:", "end of input after"},
    {"01", "1:1:", "leading zeros"},
    {"-01", "1:2:", "leading zeros"},
    {"+1", "1:1:", "'+'"},
    {".5", "1:1:", "'.'"},
    {"1.", "1:3:", "digit after '.'"},
    {"1.e3", "1:3:", "digit after '.'"},
    {"1e", "1:3:", "exponent"},
    {"1e+", "1:4:", "exponent"},
    {"-", "1:2:", "expected a digit"},
    {"-x", "1:2:", "expected a digit"},
    {"NaN", "1:1:", "'N'"},
    {"Infinity", "1:1:", "'I'"},
    {"-Infinity", "1:2:", "expected a digit"},
    {"1e999", "1:1:", "out of the range"},
    {"tru", "1:1:", "expected a JSON value"},
    {"nul", "1:1:", "expected a JSON value"},
    {"True", "1:1:", "'T'"},
    {"[1] // comment", "1:5:", "'/'"},
    {"\"abc", "1:1:", "unterminated string"},
    {"\"abc\\", "1:1:", "unterminated string"},
    {"\"a\tb\"", "1:3:", "control character U+0009"},
    {"\"a\nb\"", "1:3:", "control character U+000A"},
    {"\"\\x41\"", "1:2:", "invalid escape \\'x'"},
    {"\"\\u12\"", "1:2:", "4 hexadecimal digits"},
    {"\"\\u12G4\"", "1:2:", "4 hexadecimal digits"},
    {"\"\\ud800\"", "1:2:", "high surrogate \\uD800"},
    {"\"\\ud800\\u0041\"", "1:2:", "high surrogate"},
    {"\"\\ud800x\"", "1:2:", "high surrogate"},
    {"\"\\udc00\"", "1:2:", "lone low surrogate \\uDC00"},
    {"\"\\ud800\\ud800\"", "1:2:", "high surrogate"},
    {"\"\xc0\xaf\"", "1:2:", "invalid UTF-8 byte 0xC0"},         /* overlong '/' */
    {"\"\xe0\x80\xaf\"", "1:2:", "invalid UTF-8 byte 0xE0"},     /* overlong */
    {"\"\xed\xa0\x80\"", "1:2:", "invalid UTF-8 byte 0xED"},     /* encoded surrogate */
    {"\"\xf4\x90\x80\x80\"", "1:2:", "invalid UTF-8 byte 0xF4"}, /* above U+10FFFF */
    {"\"\xf5\x80\x80\x80\"", "1:2:", "invalid UTF-8 byte 0xF5"},
    {"\"\xe2\x82\"", "1:2:", "invalid UTF-8"},       /* truncated */
    {"\"\x80\"", "1:2:", "invalid UTF-8 byte 0x80"}, /* lone continuation */
    {"\xc3\xa9", "1:1:", "byte 0xC3"},               /* UTF-8 outside a string */
    {"\xef\xbb\xbf{}", "1:1:", "byte order mark"},
    {"{\"k\":1,\"k\":2}", "1:8:", "duplicate key \"k\""},
    {"[\n  {\"x\": 1},\n  {\"x\" 2}\n]", "3:8:", "':'"},
    {"{\"\xc3\xa9\xc3\xa9\": tru}", "1:8:", "expected a JSON value"}, /* columns count characters */
};

START_TEST(rejects_invalid_document) {
    const char *text = invalid_documents[_i].text;
    lm_json *root = (lm_json *)0x1;
    lm_error_clear();
    ck_assert_int_eq(lm_json_parse(text, strlen(text), "bad.json", &root), LM_ERR_FORMAT);
    ck_assert_ptr_null(root);
    const char *msg = lm_error_message();
    char where[64];
    snprintf(where, sizeof where, "bad.json:%s", invalid_documents[_i].position);
    ck_assert_msg(strncmp(msg, where, strlen(where)) == 0, "case %d: expected position %s in: %s", _i, where, msg);
    ck_assert_msg(strstr(msg, invalid_documents[_i].problem) != NULL, "case %d: expected '%s' in: %s", _i,
                  invalid_documents[_i].problem, msg);
}
END_TEST

/* Length-delimited: a NUL inside the text is an error, not an end marker,
 * and bytes after `len` are never read. */
START_TEST(respects_length) {
    lm_json *root = NULL;
    ck_assert_int_eq(lm_json_parse("[1]\0", 4, "nul.json", &root), LM_ERR_FORMAT);
    ck_assert_int_eq(lm_json_parse("[1]]]]", 3, "len.json", &root), LM_OK);
    ck_assert_uint_eq(lm_json_size(root), 1);
    lm_json_free(root);
    ck_assert_int_eq(lm_json_parse("\"abc\"", 4, "cut.json", &root), LM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "unterminated"));
}
END_TEST

START_TEST(limits_depth_to_256) {
    char doc[2 * 257 + 1];
    for (int depth = 256; depth <= 257; depth++) {
        memset(doc, '[', (size_t)depth);
        memset(doc + depth, ']', (size_t)depth);
        lm_json *root = NULL;
        lm_status s = lm_json_parse(doc, 2 * (size_t)depth, "deep.json", &root);
        if (depth == 256) {
            ck_assert_int_eq(s, LM_OK);
            const lm_json *v = root;
            for (int i = 1; i < 256; i++) v = lm_json_at(v, 0);
            ck_assert_int_eq(lm_json_type_of(v), LM_JSON_ARRAY);
            ck_assert_uint_eq(lm_json_size(v), 0);
            lm_json_free(root);
        } else {
            ck_assert_int_eq(s, LM_ERR_FORMAT);
            ck_assert_ptr_nonnull(strstr(lm_error_message(), "deep.json:1:257:"));
            ck_assert_ptr_nonnull(strstr(lm_error_message(), "deeper than 256"));
        }
    }
    /* Far deeper input fails the same way instead of overflowing the stack. */
    size_t n = 1000000;
    char *deep = malloc(n);
    memset(deep, '[', n);
    lm_json *root = NULL;
    ck_assert_int_eq(lm_json_parse(deep, n, "deeper.json", &root), LM_ERR_FORMAT);
    free(deep);
}
END_TEST

START_TEST(parse_file_names_the_file) {
    lm_json *root = NULL;
    ck_assert_int_eq(lm_json_parse_file("/nonexistent/config.json", &root), LM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "/nonexistent/config.json"));
    char path[] = "/tmp/lm_test_json_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\n  \"n_layer\": 12,\n  \"bad\": [1,,2]\n}\n", f);
    fclose(f);
    ck_assert_int_eq(lm_json_parse_file(path, &root), LM_ERR_FORMAT);
    char expected[128];
    snprintf(expected, sizeof expected, "%s:3:13:", path);
    ck_assert_msg(strncmp(lm_error_message(), expected, strlen(expected)) == 0, "%s", lm_error_message());
    remove(path);
}
END_TEST

/* ---- big objects and speed -------------------------------------------------------------- */

/* A tokenizer.json-shaped document: a 50,000-entry vocab object and 50,000
 * merges, about 2 MB, built deterministically. */
static void build_tokenizer_like(lm_buffer *b, size_t n) {
    lm_buffer_appendf(b, "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", \"vocab\": {");
    uint64_t state = 42;
    for (size_t i = 0; i < n; i++) {
        char word[48];
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        snprintf(word, sizeof word, "\\u0120w%zx%c", i, (char)('a' + (state >> 59) % 26));
        lm_buffer_appendf(b, "%s\"%s\": %zu", i ? ", " : "", word, i);
    }
    lm_buffer_appendf(b, "}, \"merges\": [");
    for (size_t i = 0; i < n; i++) lm_buffer_appendf(b, "%s\"\xc4\xa0t%zu h%zu\"", i ? ", " : "", i % 977, i);
    lm_buffer_appendf(b, "]}}");
}

START_TEST(large_object_lookups_are_fast) {
    lm_buffer doc = {0};
    const size_t n = 50000;
    build_tokenizer_like(&doc, n);
    ck_assert_uint_gt(doc.len, 1500000);
    lm_json *root = NULL;
    double t0 = now_seconds();
    ck_assert_int_eq(lm_json_parse(doc.data, doc.len, "tokenizer.json", &root), LM_OK);
    double parse_s = now_seconds() - t0;
    const lm_json *vocab = lm_json_get(lm_json_get(root, "model"), "vocab");
    ck_assert_uint_eq(lm_json_size(vocab), n);
    ck_assert_uint_eq(lm_json_size(lm_json_get(lm_json_get(root, "model"), "merges")), n);
    /* Check asserts talk to the parent process: count mismatches instead. */
    size_t mismatches = 0;
    t0 = now_seconds();
    for (size_t i = 0; i < n; i++) {
        const char *key = lm_json_key_at(vocab, i, NULL);
        const lm_json *v = lm_json_get(vocab, key);
        mismatches += v != lm_json_at(vocab, i) || lm_json_int(v) != (int64_t)i;
    }
    double lookup_s = now_seconds() - t0;
    ck_assert_uint_eq(mismatches, 0);
    ck_assert_ptr_null(lm_json_get(vocab, "not a token"));
    fprintf(stderr, "json: parsed %.2f MB in %.1f ms; %zu lookups in %.1f ms\n", doc.len / 1e6, parse_s * 1e3, n,
            lookup_s * 1e3);
    /* Loose bounds (sanitizer builds, slow CI): they catch quadratic
     * behaviour (a linear lookup here takes tens of seconds), not noise. */
    ck_assert_msg(parse_s < 1.0, "parsing 2 MB took %.3f s", parse_s);
    ck_assert_msg(lookup_s < 1.0, "50k lookups took %.3f s", lookup_s);
    lm_json_free(root);
    lm_buffer_free(&doc);
}
END_TEST

START_TEST(large_object_rejects_duplicates) {
    lm_buffer doc = {0};
    lm_buffer_appendf(&doc, "{");
    for (int i = 0; i < 100; i++) lm_buffer_appendf(&doc, "\"k%d\": %d, ", i, i);
    lm_buffer_appendf(&doc, "\"k57\": 0}");
    lm_json *root = NULL;
    ck_assert_int_eq(lm_json_parse(doc.data, doc.len, "dup.json", &root), LM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "duplicate key \"k57\""));
    lm_buffer_free(&doc);
}
END_TEST

/* ---- writer ----------------------------------------------------------------------------- */

START_TEST(writer_indents_like_python) {
    lm_buffer out = {0};
    lm_json_writer w;
    lm_json_writer_init(&w, &out, 2);
    lm_json_begin_object(&w);
    lm_json_key(&w, "a");
    lm_json_write_int(&w, 1);
    lm_json_key(&w, "b");
    lm_json_begin_array(&w);
    lm_json_write_bool(&w, 1);
    lm_json_write_null(&w);
    lm_json_begin_object(&w);
    lm_json_end_object(&w);
    lm_json_begin_array(&w);
    lm_json_end_array(&w);
    lm_json_end_array(&w);
    lm_json_end_object(&w);
    ck_assert_int_eq(lm_json_writer_finish(&w), LM_OK);
    /* json.dumps({"a": 1, "b": [True, None, {}, []]}, indent=2) */
    ck_assert_str_eq(out.data, "{\n  \"a\": 1,\n  \"b\": [\n    true,\n    null,\n    {},\n    []\n  ]\n}");

    lm_buffer_clear(&out);
    lm_json_writer_init(&w, &out, 0);
    lm_json_begin_array(&w);
    lm_json_write_cstr(&w, "x");
    lm_json_write_number(&w, 0.1);
    lm_json_write_int(&w, INT64_MIN);
    lm_json_end_array(&w);
    ck_assert_int_eq(lm_json_writer_finish(&w), LM_OK);
    ck_assert_str_eq(out.data, "[\"x\",0.1,-9223372036854775808]");
    lm_buffer_free(&out);
}
END_TEST

static const char *number_text(double v) {
    static lm_buffer out;
    lm_buffer_clear(&out);
    lm_json_writer w;
    lm_json_writer_init(&w, &out, 0);
    lm_json_write_number(&w, v);
    ck_assert_int_eq(lm_json_writer_finish(&w), LM_OK);
    return out.data;
}

START_TEST(writer_uses_shortest_round_trip_numbers) {
    ck_assert_str_eq(number_text(0.1), "0.1");
    ck_assert_str_eq(number_text(1.0 / 3.0), "0.3333333333333333");
    ck_assert_str_eq(number_text(2.0 / 3.0), "0.6666666666666666");
    ck_assert_str_eq(number_text(100.0), "100");
    ck_assert_str_eq(number_text(-0.0), "-0");
    ck_assert_str_eq(number_text(1e21), "1e+21");
    ck_assert_str_eq(number_text(5e-324), "5e-324");
    ck_assert_str_eq(number_text(1.7976931348623157e308), "1.7976931348623157e+308");
    ck_assert_str_eq(number_text(0.1f), "0.10000000149011612");
    ck_assert_str_eq(number_text(NAN), "null");
    ck_assert_str_eq(number_text(-INFINITY), "null");
}
END_TEST

/* Strings and numbers written, then parsed back: identical bytes and bits. */
START_TEST(writer_round_trips_through_parser) {
    char all_bytes[128];
    for (int i = 0; i < 127; i++) all_bytes[i] = (char)(i + 1);
    all_bytes[127] = '\0';
    const char *strings[] = {all_bytes, "", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "tab\tquote\"back\\slash/"};
    double numbers[] = {0.0,
                        -0.0,
                        1.0,
                        -1.5,
                        0.1,
                        1.0 / 3.0,
                        1e-300,
                        5e-324,
                        2.2250738585072014e-308,
                        1.7976931348623157e308,
                        123456789012345678.0,
                        9007199254740993.0,
                        3.14159265358979};
    lm_buffer out = {0};
    lm_json_writer w;
    lm_json_writer_init(&w, &out, 1);
    lm_json_begin_object(&w);
    lm_json_key(&w, "strings");
    lm_json_begin_array(&w);
    for (size_t i = 0; i < 4; i++) lm_json_write_cstr(&w, strings[i]);
    lm_json_write_string(&w, "a\0b", 3);
    lm_json_end_array(&w);
    lm_json_key(&w, "numbers");
    lm_json_begin_array(&w);
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) lm_json_write_number(&w, numbers[i]);
    lm_json_end_array(&w);
    lm_json_key(&w, "key \"with\" \n escapes \xc3\xa9");
    lm_json_write_int(&w, -42);
    lm_json_end_object(&w);
    ck_assert_int_eq(lm_json_writer_finish(&w), LM_OK);

    lm_json *root = NULL;
    ck_assert_msg(lm_json_parse(out.data, out.len, "written", &root) == LM_OK, "%s\n%s", lm_error_message(), out.data);
    const lm_json *s = lm_json_get(root, "strings");
    for (size_t i = 0; i < 4; i++) ck_assert_str_eq(lm_json_string(lm_json_at(s, i), NULL), strings[i]);
    size_t len;
    const char *nul = lm_json_string(lm_json_at(s, 4), &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(nul, "a\0b", 3), 0);
    const lm_json *n = lm_json_get(root, "numbers");
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        double back = lm_json_number(lm_json_at(n, i));
        ck_assert_msg(memcmp(&back, &numbers[i], sizeof back) == 0, "%.17g came back as %.17g", numbers[i], back);
    }
    ck_assert_int_eq(lm_json_int(lm_json_get(root, "key \"with\" \n escapes \xc3\xa9")), -42);
    lm_json_free(root);
    lm_buffer_free(&out);
}
END_TEST

START_TEST(writer_replaces_invalid_utf8) {
    lm_buffer out = {0};
    lm_json_writer w;
    lm_json_writer_init(&w, &out, 0);
    lm_json_write_cstr(&w, "a\xff"
                           "b\xed\xa0\x80"
                           "c\xc3");
    ck_assert_int_eq(lm_json_writer_finish(&w), LM_OK);
    ck_assert_str_eq(out.data, "\"a\\ufffdb\\ufffd\\ufffd\\ufffdc\\ufffd\"");
    lm_buffer_free(&out);
}
END_TEST

START_TEST(writer_rejects_misuse) {
    lm_buffer out = {0};
    lm_json_writer w;
    struct {
        int scenario;
        const char *problem;
    } cases[] = {{0, "without a key"},           {1, "outside an object"}, {2, "left open"},
                 {3, "more than one top-level"}, {4, "end_array without"}, {5, "without its value"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        lm_buffer_clear(&out);
        lm_json_writer_init(&w, &out, 0);
        switch (cases[c].scenario) {
        case 0:
            lm_json_begin_object(&w);
            lm_json_write_int(&w, 1);
            lm_json_end_object(&w);
            break;
        case 1:
            lm_json_begin_array(&w);
            lm_json_key(&w, "k");
            lm_json_end_array(&w);
            break;
        case 2:
            lm_json_begin_array(&w);
            lm_json_begin_object(&w);
            lm_json_end_object(&w);
            break;
        case 3:
            lm_json_write_int(&w, 1);
            lm_json_write_int(&w, 2);
            break;
        case 4:
            lm_json_begin_object(&w);
            lm_json_end_array(&w);
            break;
        case 5:
            lm_json_begin_object(&w);
            lm_json_key(&w, "k");
            lm_json_end_object(&w);
            break;
        }
        ck_assert_int_eq(lm_json_writer_finish(&w), LM_ERR_INVALID);
        ck_assert_msg(strstr(lm_error_message(), cases[c].problem) != NULL, "case %zu: %s", c, lm_error_message());
    }
    /* 31 levels fit; the 32nd is refused. */
    lm_buffer_clear(&out);
    lm_json_writer_init(&w, &out, 0);
    for (int i = 0; i < 31; i++) lm_json_begin_array(&w);
    for (int i = 0; i < 31; i++) lm_json_end_array(&w);
    ck_assert_int_eq(lm_json_writer_finish(&w), LM_OK);
    lm_buffer_clear(&out);
    lm_json_writer_init(&w, &out, 0);
    for (int i = 0; i < 32; i++) lm_json_begin_array(&w);
    ck_assert_int_eq(lm_json_writer_finish(&w), LM_ERR_INVALID);
    lm_buffer_free(&out);
}
END_TEST

static Suite *json_suite(void) {
    Suite *s = suite_create("json");
    TCase *parse = tcase_create("parse");
    tcase_add_test(parse, parses_nested_document);
    tcase_add_test(parse, parses_top_level_scalars);
    tcase_add_test(parse, decodes_escapes_and_surrogates);
    tcase_add_test(parse, classifies_numbers);
    tcase_add_loop_test(parse, rejects_invalid_document, 0,
                        (int)(sizeof invalid_documents / sizeof invalid_documents[0]));
    tcase_add_test(parse, respects_length);
    tcase_add_test(parse, limits_depth_to_256);
    tcase_add_test(parse, parse_file_names_the_file);
    tcase_add_test(parse, large_object_lookups_are_fast);
    tcase_add_test(parse, large_object_rejects_duplicates);
    suite_add_tcase(s, parse);
    TCase *write = tcase_create("write");
    tcase_add_test(write, writer_indents_like_python);
    tcase_add_test(write, writer_uses_shortest_round_trip_numbers);
    tcase_add_test(write, writer_round_trips_through_parser);
    tcase_add_test(write, writer_replaces_invalid_utf8);
    tcase_add_test(write, writer_rejects_misuse);
    suite_add_tcase(s, write);
    return s;
}

int main(void) {
    return lm_test_run_suites(json_suite(), NULL);
}
