/* Byte-level BPE: what loading must refuse or survive, one test per fuzzer
 * finding of docs/fuzzing.md (F2, F5, F6, F7), each failing on the code
 * before its fix (F5 under the sanitizer build: it was undefined behaviour). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe_test_util.h"

#define PIPELINE "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false}"
/* A tokenizer.json around a model.vocab object text and an added_tokens array text. */
#define TOKENIZER_JSON(vocab, added)                                                                               \
    "{" PIPELINE ",\"added_tokens\":[" added "],\"model\":{\"type\":\"BPE\",\"vocab\":{" vocab "},\"merges\":[]}}"

static void write_file(const char *path, const char *text) {
    ck_assert_int_eq(lm_file_write_atomic(path, text, strlen(text)), LM_OK);
}

/* Loads `content` written to <dir>/<name> (path=), or <dir>/vocab.json with
 * `merges` as <dir>/merges.txt when merges is not NULL (vocab= merges=). */
static lm_status load_text(const char *dir, const char *name, const char *content, const char *merges, void **out) {
    char path[1100], merges_path[1100], kv0[1200], kv1[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, content);
    const char *kv[3] = {kv0, NULL, NULL};
    if (merges) {
        snprintf(merges_path, sizeof merges_path, "%s/merges.txt", dir);
        write_file(merges_path, merges);
        snprintf(kv0, sizeof kv0, "vocab=%s", path);
        snprintf(kv1, sizeof kv1, "merges=%s", merges_path);
        kv[1] = kv1;
    } else {
        snprintf(kv0, sizeof kv0, "path=%s", path);
    }
    void *tok = NULL;
    lm_status s = bpe_create_status(kv, NULL, 0, &tok);
    if (out) *out = tok;
    else if (tok) bpe_destroy(tok);
    return s;
}

/* The load fails with LM_ERR_FORMAT and a message holding every fragment. */
static void expect_refused(const char *dir, const char *name, const char *content, const char *merges,
                           const char *const *fragments) {
    lm_status s = load_text(dir, name, content, merges, NULL);
    ck_assert_msg(s == LM_ERR_FORMAT, "expected LM_ERR_FORMAT for %s, got %s: %s", content, lm_status_name(s),
                  lm_error_message());
    for (size_t i = 0; fragments[i]; i++)
        ck_assert_msg(strstr(lm_error_message(), fragments[i]) != NULL, "message '%s' lacks '%s'", lm_error_message(),
                      fragments[i]);
}

static void *load_ok(const char *dir, const char *name, const char *content, const char *merges) {
    void *tok = NULL;
    lm_status s = load_text(dir, name, content, merges, &tok);
    ck_assert_msg(s == LM_OK, "loading %s failed: %s", content, lm_error_message());
    return tok;
}

static int32_t vocab_size(void *tok) {
    lm_vocab_info info;
    ck_assert_int_eq(bpe_vtable()->info(tok, &info), LM_OK);
    return info.vocab_size;
}

/* ---- F6: ids far beyond the number of tokens -------------------------------------- */

START_TEST(sparse_ids_are_refused_with_the_token_and_id) {
    char *dir = temp_dir();
    /* A hole that dense tables would have to cover: small, but refused the
     * same way as the 16 GiB case below (checked first: before the fix that
     * one was an OOM kill, not a failed assertion). */
    expect_refused(dir, "tok.json", TOKENIZER_JSON("\"a\":0,\"b\":5", ""), NULL,
                   (const char *[]){"tok.json", "'b'", "id 5", "0..1", NULL});
    expect_refused(dir, "tok.json", TOKENIZER_JSON("\"a\":2000000000", ""), NULL,
                   (const char *[]){"tok.json", "model.vocab", "'a'", "id 2000000000", "0..0", NULL});
    expect_refused(dir, "tok.json",
                   TOKENIZER_JSON("\"a\":0", "{\"id\":2000000000,\"content\":\"<big>\",\"special\":true}"), NULL,
                   (const char *[]){"tok.json", "added_tokens[0]", "'<big>'", "id 2000000000", "0..1", NULL});
    expect_refused(dir, "vocab.json", "{\"a\":0,\"b\":2000000000}", "#version: 0.2\n",
                   (const char *[]){"vocab.json", "'b'", "id 2000000000", "0..1", NULL});
    /* The largest ids a file may use: one below the number of its tokens
     * (vocabulary and added tokens counted together). */
    void *tok = load_ok(dir, "tok.json",
                        TOKENIZER_JSON("\"a\":0,\"b\":1,\"ab\":2",
                                       "{\"id\":4,\"content\":\"<y>\",\"special\":true},"
                                       "{\"id\":3,\"content\":\"<x>\",\"special\":true}"),
                        NULL);
    ck_assert_int_eq(vocab_size(tok), 5);
    bpe_destroy(tok);
    /* An added token that is also in the vocabulary leaves room for a hole,
     * as in GPT-2's files (<|endoftext|> in both). */
    tok = load_ok(dir, "tok.json",
                  TOKENIZER_JSON("\"a\":0,\"<s>\":1", "{\"id\":1,\"content\":\"<s>\",\"special\":true},"
                                                       "{\"id\":3,\"content\":\"<x>\",\"special\":true}"),
                  NULL);
    ck_assert_int_eq(vocab_size(tok), 4);
    const char *token;
    size_t len;
    ck_assert_int_eq(bpe_vtable()->id_to_token(tok, 2, &token, &len), LM_ERR_NOT_FOUND);
    bpe_destroy(tok);
    tok = load_ok(dir, "vocab.json", "{\"a\":0,\"b\":1,\"ab\":2}", "#version: 0.2\na b\n");
    ck_assert_int_eq(vocab_size(tok), 4); /* + <|endoftext|>, the default special token, at 3 */
    bpe_destroy(tok);
    rm_tree(dir);
    free(dir);
}
END_TEST

/* ---- F2: U+0000 inside a token ----------------------------------------------------------- */

START_TEST(nul_inside_a_token_is_refused) {
    char *dir = temp_dir();
    /* save writes vocabulary keys as C strings: "a\0b" would become a second "a". */
    expect_refused(dir, "tok.json", TOKENIZER_JSON("\"a\":0,\"a\\u0000b\":1", ""), NULL,
                   (const char *[]){"tok.json", "model.vocab", "'a\\u0000b'", "U+0000", "id 1", NULL});
    expect_refused(dir, "tok.json", TOKENIZER_JSON("\"a\":0", "{\"id\":1,\"content\":\"<x\\u0000>\"}"), NULL,
                   (const char *[]){"tok.json", "added_tokens", "U+0000", NULL});
    expect_refused(dir, "vocab.json", "{\"\\u0000\":0}", "", (const char *[]){"vocab.json", "U+0000", NULL});
    rm_tree(dir);
    free(dir);
}
END_TEST

/* ---- F5: a word that encodes to no ids ---------------------------------------------------- */

START_TEST(words_without_ids_encode_to_nothing) {
    char *dir = temp_dir();
    /* No byte tokens and no unk_token: unknown characters are dropped (HF
     * tokenizers 0.20 gives [] for "c", [2, 2] for "abcab" and [2] for
     * "c abc" with this vocabulary).  The first encode of "c" starts from an
     * empty id list: the word cache once stored it from a NULL pointer. */
    void *tok = load_ok(dir, "vocab.json", "{\"a\":0,\"b\":1,\"ab\":2}", "#version: 0.2\na b\n");
    for (int round = 0; round < 2; round++) { /* the second time from the word cache */
        lm_ids ids = bpe_encode_ok(tok, "c", 1);
        ck_assert_uint_eq(ids.len, 0);
        lm_ids_free(&ids);
        ids = bpe_encode_ok(tok, "abcab", 5);
        ck_assert_uint_eq(ids.len, 2);
        ck_assert_int_eq(ids.data[0], 2);
        ck_assert_int_eq(ids.data[1], 2);
        lm_ids_free(&ids);
        ids = bpe_encode_ok(tok, "c abc", 5);
        ck_assert_uint_eq(ids.len, 1);
        ck_assert_int_eq(ids.data[0], 2);
        lm_ids_free(&ids);
    }
    bpe_destroy(tok);
    rm_tree(dir);
    free(dir);
}
END_TEST

/* ---- F7: the order of added_tokens in the file ------------------------------------------- */

static uint64_t fingerprint(void *tok) {
    uint64_t h = 0;
    ck_assert_int_eq(bpe_vtable()->fingerprint(tok, &h), LM_OK);
    return h;
}

static int32_t pad_id(void *tok) {
    lm_vocab_info info;
    ck_assert_int_eq(bpe_vtable()->info(tok, &info), LM_OK);
    return info.pad_id;
}

START_TEST(added_tokens_order_does_not_change_the_tokenizer) {
    char *dir = temp_dir();
    /* Two pad-like tokens: info() names one of them, whatever the order. */
    void *sorted = load_ok(dir, "sorted.json",
                           TOKENIZER_JSON("\"a\":0,\"b\":1,\"ab\":2",
                                          "{\"id\":3,\"content\":\"[PAD]\",\"special\":true},"
                                          "{\"id\":4,\"content\":\"<pad>\",\"special\":true,\"lstrip\":true}"),
                           NULL);
    void *reversed = load_ok(dir, "reversed.json",
                             TOKENIZER_JSON("\"a\":0,\"b\":1,\"ab\":2",
                                            "{\"id\":4,\"content\":\"<pad>\",\"special\":true,\"lstrip\":true},"
                                            "{\"id\":3,\"content\":\"[PAD]\",\"special\":true}"),
                             NULL);
    ck_assert_uint_eq(fingerprint(sorted), fingerprint(reversed));
    ck_assert_int_eq(pad_id(sorted), pad_id(reversed));
    /* save writes them by id: the reloaded tokenizer is the same one, so
     * its token caches stay valid. */
    char saved[1100];
    snprintf(saved, sizeof saved, "%s/saved.json", dir);
    ck_assert_int_eq(bpe_vtable()->save(reversed, saved), LM_OK);
    char kv0[1200];
    snprintf(kv0, sizeof kv0, "path=%s", saved);
    void *reloaded = bpe_create_ok((const char *[]){kv0, NULL}, NULL, 0);
    ck_assert_uint_eq(fingerprint(reloaded), fingerprint(reversed));
    ck_assert_int_eq(pad_id(reloaded), pad_id(reversed));
    /* ... and a different set of added tokens still changes it. */
    void *other = load_ok(dir, "other.json",
                          TOKENIZER_JSON("\"a\":0,\"b\":1,\"ab\":2",
                                         "{\"id\":3,\"content\":\"[PAD]\",\"special\":true},"
                                         "{\"id\":4,\"content\":\"<pad>\",\"special\":true}"),
                          NULL);
    ck_assert_uint_ne(fingerprint(other), fingerprint(sorted));
    bpe_destroy(other);
    bpe_destroy(reloaded);
    bpe_destroy(reversed);
    bpe_destroy(sorted);
    rm_tree(dir);
    free(dir);
}
END_TEST

Suite *bpe_load_checks_suite(void);
Suite *bpe_load_checks_suite(void) {
    Suite *s = suite_create("tokenizer_bpe_load_checks");
    TCase *tc = tcase_create("load_checks");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sparse_ids_are_refused_with_the_token_and_id);
    tcase_add_test(tc, nul_inside_a_token_is_refused);
    tcase_add_test(tc, words_without_ids_encode_to_nothing);
    tcase_add_test(tc, added_tokens_order_does_not_change_the_tokenizer);
    suite_add_tcase(s, tc);
    return s;
}
