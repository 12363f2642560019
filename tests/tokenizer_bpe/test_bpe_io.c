/* Byte-level BPE: arbitrary bytes, special tokens, files, errors, threads. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe_test_util.h"
#include "test_main.h"

static void *load_main(void) {
    const char *kv[] = {"path=" BPE_FIXTURES "/hf_bpe_2000.json", NULL};
    return bpe_create_ok(kv, NULL, 0);
}

static int32_t token_id(void *tok, const char *token) {
    int32_t id = -1;
    ck_assert_msg(bpe_vtable()->token_to_id(tok, token, strlen(token), &id) == LM_OK, "%s", lm_error_message());
    return id;
}

/* ---- any byte string ------------------------------------------------------------ */

START_TEST(invalid_utf8_bytes_are_byte_tokens) {
    void *tok = load_main();
    /* 0xFF stands for "ÿ", 0xC3 (a truncated "é") for "Ã", 0x80 for "Ģ": one
     * token each, since invalid bytes are single non-letter characters. */
    lm_ids ids = bpe_encode_ok(tok, "\xFF", 1);
    ck_assert_uint_eq(ids.len, 1);
    ck_assert_int_eq(ids.data[0], token_id(tok, "\xC3\xBF"));
    lm_ids_free(&ids);
    ids = bpe_encode_ok(tok, "a\xC3" "b", 3);
    ck_assert_uint_eq(ids.len, 3);
    ck_assert_int_eq(ids.data[0], token_id(tok, "a"));
    ck_assert_int_eq(ids.data[1], token_id(tok, "\xC3\x83"));
    ck_assert_int_eq(ids.data[2], token_id(tok, "b"));
    lm_ids_free(&ids);
    /* Invalid bytes join runs of punctuation, like any "other" character. */
    ids = bpe_encode_ok(tok, " !\x80!", 4);
    lm_buffer back = {0};
    ck_assert_int_eq(bpe_vtable()->decode(tok, ids.data, ids.len, 0, &back), LM_OK);
    ck_assert_uint_eq(back.len, 4);
    ck_assert_int_eq(memcmp(back.data, " !\x80!", 4), 0);
    lm_buffer_free(&back);
    lm_ids_free(&ids);
    bpe_destroy(tok);
}
END_TEST

START_TEST(random_bytes_round_trip) {
    void *tok = load_main();
    uint64_t state = 0x243F6A8885A308D3ull;
    unsigned char text[512];
    for (int round = 0; round < 300; round++) {
        size_t len = (size_t)(round % 97) * 5 + 1;
        for (size_t i = 0; i < len; i++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            unsigned v = (unsigned)(state >> 56);
            /* mostly text, some raw high bytes and whitespace */
            text[i] = (unsigned char)(round % 3 == 0 ? v : (v < 64 ? (unsigned)" \n\t'"[v & 3] : 'a' + v % 26));
        }
        lm_ids ids = bpe_encode_ok(tok, (const char *)text, len);
        lm_buffer back = {0};
        ck_assert_int_eq(bpe_vtable()->decode(tok, ids.data, ids.len, 0, &back), LM_OK);
        ck_assert_msg(back.len == len && memcmp(back.data, text, len) == 0, "round %d does not round-trip", round);
        lm_buffer_free(&back);
        lm_ids_free(&ids);
    }
    bpe_destroy(tok);
}
END_TEST

START_TEST(special_tokens_are_whole_and_skippable) {
    void *tok = load_main();
    const char *text = "a<|endoftext|>b";
    lm_ids ids = bpe_encode_ok(tok, text, strlen(text));
    ck_assert_uint_eq(ids.len, 3);
    ck_assert_int_eq(ids.data[1], 0);
    lm_buffer out = {0};
    ck_assert_int_eq(bpe_vtable()->decode(tok, ids.data, ids.len, 1, &out), LM_OK);
    ck_assert_uint_eq(out.len, 2);
    ck_assert_int_eq(memcmp(out.data, "ab", 2), 0);
    lm_buffer_clear(&out);
    ck_assert_int_eq(bpe_vtable()->decode(tok, ids.data, ids.len, 0, &out), LM_OK);
    ck_assert_int_eq(memcmp(out.data, text, strlen(text)), 0);
    lm_buffer_free(&out);
    lm_ids_free(&ids);
    /* Unknown ids are errors, not crashes. */
    int32_t bad[] = {5, 2000};
    lm_buffer b2 = {0};
    ck_assert_int_eq(bpe_vtable()->decode(tok, bad, 2, 0, &b2), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "2000"));
    int32_t neg = -1;
    ck_assert_int_eq(bpe_vtable()->decode(tok, &neg, 1, 0, &b2), LM_ERR_INVALID);
    lm_buffer_free(&b2);
    const char *s;
    size_t len;
    ck_assert_int_eq(bpe_vtable()->id_to_token(tok, 2000, &s, &len), LM_ERR_NOT_FOUND);
    int32_t id;
    ck_assert_int_eq(bpe_vtable()->token_to_id(tok, "no such token", 13, &id), LM_ERR_NOT_FOUND);
    bpe_destroy(tok);
}
END_TEST

/* ---- errors -------------------------------------------------------------------- */

static void write_file(const char *path, const char *text) {
    ck_assert_int_eq(lm_file_write_atomic(path, text, strlen(text)), LM_OK);
}

static lm_status load_path(const char *path) {
    char kv0[1200];
    snprintf(kv0, sizeof(kv0), "path=%s", path);
    const char *kv[] = {kv0, NULL};
    void *tok = NULL;
    lm_status s = bpe_create_status(kv, NULL, 0, &tok);
    if (tok) bpe_destroy(tok);
    return s;
}

static void expect_load_error(const char *dir, const char *content, lm_status code, const char *fragment) {
    char path[1100];
    snprintf(path, sizeof(path), "%s/tok.json", dir);
    write_file(path, content);
    lm_status s = load_path(path);
    ck_assert_msg(s == code, "expected %s for %s, got %s: %s", lm_status_name(code), content, lm_status_name(s),
                  lm_error_message());
    ck_assert_msg(strstr(lm_error_message(), "tok.json") != NULL, "message does not name the file: %s", lm_error_message());
    ck_assert_msg(strstr(lm_error_message(), fragment) != NULL, "message '%s' lacks '%s'", lm_error_message(), fragment);
}

#define PIPE "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false}"

START_TEST(corrupt_tokenizer_json_is_a_format_error) {
    char *dir = temp_dir();
    /* a truncated copy of a real file */
    lm_buffer real = {0};
    ck_assert_int_eq(lm_file_read(BPE_FIXTURES "/hf_bpe_2000.json", &real), LM_OK);
    real.data[real.len / 2] = '\0';
    expect_load_error(dir, real.data, LM_ERR_FORMAT, "tok.json");
    lm_buffer_free(&real);
    expect_load_error(dir, "[1, 2]", LM_ERR_FORMAT, "JSON object");
    expect_load_error(dir, "{" PIPE "}", LM_ERR_FORMAT, "model");
    expect_load_error(dir, "{" PIPE ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a c\"]}}",
                      LM_ERR_FORMAT, "'c'");
    expect_load_error(dir, "{" PIPE ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}",
                      LM_ERR_FORMAT, "'ab'");
    expect_load_error(dir, "{" PIPE ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}",
                      LM_ERR_FORMAT, "id 0");
    expect_load_error(dir, "{" PIPE ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"},\"merges\":[]}}",
                      LM_ERR_FORMAT, "'a'");
    expect_load_error(dir, "{" PIPE ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\"]]}}",
                      LM_ERR_FORMAT, "merges[0]");
    expect_load_error(dir, "{" PIPE ",\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", LM_ERR_UNSUPPORTED, "WordPiece");
    expect_load_error(dir, "{\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
                      LM_ERR_UNSUPPORTED, "ByteLevel");
    expect_load_error(dir, "{" PIPE ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                      "\"added_tokens\":[{\"content\":\"x\"}]}", LM_ERR_FORMAT, "added_tokens[0]");
    rm_tree(dir);
    free(dir);
    /* missing files */
    ck_assert_int_eq(load_path("/nonexistent/tokenizer.json"), LM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "/nonexistent/tokenizer.json"));
    char *empty = temp_dir();
    ck_assert_int_eq(load_path(empty), LM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "merges.txt"));
    rm_tree(empty);
    free(empty);
}
END_TEST

START_TEST(bad_merges_txt_names_the_line) {
    char *dir = temp_dir();
    char vocab[1100], merges[1100];
    snprintf(vocab, sizeof(vocab), "%s/vocab.json", dir);
    snprintf(merges, sizeof(merges), "%s/merges.txt", dir);
    write_file(vocab, "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    write_file(merges, "#version: 0.2\na b\na b c\n");
    ck_assert_int_eq(load_path(dir), LM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "merges.txt:3"));
    write_file(merges, "#version: 0.2\na b\n");
    ck_assert_int_eq(load_path(dir), LM_OK);
    rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(bad_settings_are_invalid) {
    void *tok = NULL;
    const char *small[] = {"vocab_size=200", NULL};
    ck_assert_int_eq(bpe_create_status(small, NULL, 0, &tok), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "vocab_size=200"));
    const char *specials[] = {"<a>", "<b>"};
    const char *edge[] = {"vocab_size=257", NULL};
    ck_assert_int_eq(bpe_create_status(edge, specials, 2, &tok), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "need 258"));
    const char *both[] = {"path=x.json", "vocab=v.json", NULL};
    ck_assert_int_eq(bpe_create_status(both, NULL, 0, &tok), LM_ERR_INVALID);
    const char *half[] = {"vocab=v.json", NULL};
    ck_assert_int_eq(bpe_create_status(half, NULL, 0, &tok), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "merges"));
    const char *neg[] = {"min_frequency=-1", NULL};
    ck_assert_int_eq(bpe_create_status(neg, NULL, 0, &tok), LM_ERR_INVALID);
    const char *typo[] = {"vocab_sise=1000", NULL};
    ck_assert_int_eq(bpe_create_status(typo, NULL, 0, &tok), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "vocab_sise"));
    /* Loading from a file reads no training keys: they are reported unused. */
    const char *mixed[] = {"path=" BPE_FIXTURES "/hf_bpe_2000.json", "vocab_size=1000", NULL};
    ck_assert_int_eq(bpe_create_status(mixed, NULL, 0, &tok), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "vocab_size"));
}
END_TEST

static lm_status empty_row(void *ctx, size_t index, const char **text, size_t *len) {
    (void)ctx;
    (void)index;
    *text = "";
    *len = 0;
    return LM_OK;
}

START_TEST(untrained_and_empty_training_are_clear_errors) {
    const char *kv[] = {"vocab_size=300", NULL};
    void *tok = bpe_create_ok(kv, NULL, 0);
    lm_ids ids = {0};
    ck_assert_int_eq(bpe_vtable()->encode(tok, "x", 1, 0, &ids), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "train"));
    lm_text_source none = {sizeof(lm_text_source), NULL, 0, empty_row, 0, NULL};
    ck_assert_int_eq(bpe_vtable()->train(tok, &none), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "empty"));
    lm_text_source blank = {sizeof(lm_text_source), NULL, 5, empty_row, 0, NULL};
    ck_assert_int_eq(bpe_vtable()->train(tok, &blank), LM_ERR_INVALID);
    bpe_destroy(tok);
    /* A loaded tokenizer refuses to be retrained. */
    tok = load_main();
    lm_text_source one = {sizeof(lm_text_source), NULL, 1, empty_row, 0, NULL};
    ck_assert_int_eq(bpe_vtable()->train(tok, &one), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "hf_bpe_2000.json"));
    bpe_destroy(tok);
}
END_TEST

/* ---- threads ------------------------------------------------------------------------ */

typedef struct encode_job {
    void *tok;
    text_lines *lines;
    size_t first;
    uint64_t checksum;
} encode_job;

static void *encode_lines(void *arg) {
    encode_job *job = arg;
    for (size_t i = job->first; i < job->lines->count; i += 2) {
        lm_ids ids = {0};
        if (bpe_vtable()->encode(job->tok, job->lines->file.data + job->lines->start[i], job->lines->len[i], 0, &ids) != LM_OK)
            return NULL;
        for (size_t k = 0; k < ids.len; k++) job->checksum = job->checksum * 31 + (uint64_t)ids.data[k];
        lm_ids_free(&ids);
    }
    return job;
}

START_TEST(concurrent_encodes_agree_with_serial) {
    void *tok = load_main();
    text_lines lines;
    lines_read(&lines, WIKITEXT_DIR "/wiki.valid.raw", 600);
    encode_job serial[2] = {{tok, &lines, 0, 0}, {tok, &lines, 1, 0}};
    ck_assert_ptr_nonnull(encode_lines(&serial[0]));
    ck_assert_ptr_nonnull(encode_lines(&serial[1]));
    encode_job jobs[2] = {{tok, &lines, 0, 0}, {tok, &lines, 1, 0}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&threads[i], NULL, encode_lines, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(threads[i], &r);
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(jobs[i].checksum, serial[i].checksum);
    }
    lines_free(&lines);
    bpe_destroy(tok);
}
END_TEST

Suite *bpe_io_suite(void);
Suite *bpe_io_suite(void) {
    Suite *s = suite_create("tokenizer_bpe_io");
    TCase *tc = tcase_create("io");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, invalid_utf8_bytes_are_byte_tokens);
    tcase_add_test(tc, random_bytes_round_trip);
    tcase_add_test(tc, special_tokens_are_whole_and_skippable);
    tcase_add_test(tc, corrupt_tokenizer_json_is_a_format_error);
    tcase_add_test(tc, bad_merges_txt_names_the_line);
    tcase_add_test(tc, bad_settings_are_invalid);
    tcase_add_test(tc, untrained_and_empty_training_are_clear_errors);
    tcase_add_test(tc, concurrent_encodes_agree_with_serial);
    suite_add_tcase(s, tc);
    return s;
}

Suite *bpe_parity_suite(void);
Suite *bpe_load_checks_suite(void);

int main(void) {
    return lm_test_run_suites(bpe_parity_suite(), bpe_io_suite(), bpe_load_checks_suite(), NULL);
}
