/* WordPiece plugin: vocabulary info, fingerprints, and every failure a user
 * can cause (corrupt or foreign files, bad settings, too small a vocabulary,
 * empty data, unknown ids, Ctrl-C) giving its status and a useful message. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_main.h"
#include "wordpiece_test_util.h"

static char temp_dir[128];

static void setup(void) {
    snprintf(temp_dir, sizeof temp_dir, "/tmp/lm_test_wordpiece_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(temp_dir));
}

static void teardown(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", temp_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *write_temp(const char *name, const char *data, size_t len) {
    static char path[4][256];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 256, "%s/%s", temp_dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    return p;
}

/* Creating from `path` fails with `status` and a message containing `needle`. */
static void expect_load_error(const char *path, lm_status status, const char *needle) {
    char kv[512];
    snprintf(kv, sizeof kv, "path=%s", path);
    const char *pairs[] = {kv, NULL};
    void *tok = NULL;
    ck_assert_int_eq(wp_create_kv(&tok, pairs), status);
    ck_assert_msg(strstr(lm_error_message(), needle) != NULL, "message '%s' lacks '%s'", lm_error_message(), needle);
}

static lm_status empty_row(void *ctx, size_t index, const char **text, size_t *len) {
    static const char *const rows[] = {"", "   \n", "\t\r\n", "\x01\x02"};
    (void)ctx;
    *text = rows[index % 4];
    *len = strlen(*text);
    return LM_OK;
}

START_TEST(test_info_and_tokens) {
    void *tok = wp_open_path(WP_HF_CASED);
    lm_vocab_info info;
    ck_assert_int_eq(wp_plugin()->info(tok, &info), LM_OK);
    ck_assert_int_eq(info.vocab_size, 2000);
    ck_assert_int_eq(info.pad_id, 0);
    ck_assert_int_eq(info.unk_id, 1);
    ck_assert_int_eq(info.cls_id, 2);
    ck_assert_int_eq(info.sep_id, 3);
    ck_assert_int_eq(info.mask_id, 4);
    ck_assert_int_eq(info.bos_id, -1);
    ck_assert_int_eq(info.eos_id, -1);
    ck_assert_uint_eq(info.n_special, 5);
    for (size_t i = 0; i < 5; i++) ck_assert_int_eq(info.special_ids[i], (int32_t)i);
    int32_t id;
    ck_assert_int_eq(wp_plugin()->token_to_id(tok, "[MASK]", 6, &id), LM_OK);
    ck_assert_int_eq(id, 4);
    const char *t;
    size_t len;
    ck_assert_int_eq(wp_plugin()->id_to_token(tok, 4, &t, &len), LM_OK);
    ck_assert_uint_eq(len, 6);
    ck_assert_int_eq(memcmp(t, "[MASK]", 6), 0);
    ck_assert_int_eq(wp_plugin()->token_to_id(tok, "no-such-token", 13, &id), LM_ERR_NOT_FOUND);
    ck_assert_int_eq(wp_plugin()->id_to_token(tok, 2000, &t, &len), LM_ERR_INVALID);
    wp_plugin()->destroy(tok);
}
END_TEST

START_TEST(test_fingerprints_differ) {
    void *cased = wp_open_path(WP_HF_CASED), *uncased = wp_open_path(WP_HF_UNCASED);
    uint64_t a, b, c;
    ck_assert_int_eq(wp_plugin()->fingerprint(cased, &a), LM_OK);
    ck_assert_int_eq(wp_plugin()->fingerprint(uncased, &b), LM_OK);
    ck_assert_uint_ne(a, b);
    /* Same vocabulary, one setting changed: max_input_chars_per_word. */
    lm_buffer text = {0};
    ck_assert_int_eq(lm_file_read(WP_HF_CASED, &text), LM_OK);
    char *at = strstr(text.data, "\"max_input_chars_per_word\": 100");
    ck_assert_ptr_nonnull(at);
    at[strlen("\"max_input_chars_per_word\": ")] = '5'; /* 100 -> 500 */
    void *changed = wp_open_path(write_temp("changed.json", text.data, text.len));
    ck_assert_int_eq(wp_plugin()->fingerprint(changed, &c), LM_OK);
    ck_assert_uint_ne(a, c);
    lm_buffer_free(&text);
    wp_plugin()->destroy(changed);
    wp_plugin()->destroy(cased);
    wp_plugin()->destroy(uncased);
}
END_TEST

START_TEST(test_corrupt_json) {
    lm_buffer text = {0};
    ck_assert_int_eq(lm_file_read(WP_HF_CASED, &text), LM_OK);
    const char *path = write_temp("truncated.json", text.data, text.len / 2);
    expect_load_error(path, LM_ERR_FORMAT, "truncated.json");
    lm_buffer_free(&text);
    const char *no_vocab = "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\"},"
                           " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}";
    expect_load_error(write_temp("novocab.json", no_vocab, strlen(no_vocab)), LM_ERR_FORMAT, "model.vocab");
    const char *no_model = "{\"version\": \"1.0\"}";
    expect_load_error(write_temp("nomodel.json", no_model, strlen(no_model)), LM_ERR_FORMAT, "model");
    const char *bad_id = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": -3}}}";
    expect_load_error(write_temp("badid.json", bad_id, strlen(bad_id)), LM_ERR_FORMAT, "'a'");
    const char *huge_id = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": 1000000000}}}";
    expect_load_error(write_temp("hugeid.json", huge_id, strlen(huge_id)), LM_ERR_FORMAT, "0..1");
    const char *dup_id = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": 0}},"
                         " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}";
    expect_load_error(write_temp("dupid.json", dup_id, strlen(dup_id)), LM_ERR_FORMAT, "used twice");
    const char *no_unk = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0, \"##b\": 1}},"
                         " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}";
    expect_load_error(write_temp("nounk.json", no_unk, strlen(no_unk)), LM_ERR_FORMAT, "[UNK]");
    const char *bpe = "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}";
    expect_load_error(write_temp("bpe.json", bpe, strlen(bpe)), LM_ERR_UNSUPPORTED, "BPE");
    const char *metaspace = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}},"
                            " \"pre_tokenizer\": {\"type\": \"Metaspace\"}}";
    expect_load_error(write_temp("meta.json", metaspace, strlen(metaspace)), LM_ERR_UNSUPPORTED, "Metaspace");
    expect_load_error(write_temp("empty.txt", "", 0), LM_ERR_FORMAT, "empty");
    expect_load_error(write_temp("nul.txt", "[UNK]\nab\0c\n", 11), LM_ERR_FORMAT, "NUL");
    expect_load_error("/nonexistent/tokenizer.json", LM_ERR_IO, "/nonexistent/tokenizer.json");
    expect_load_error(temp_dir, LM_ERR_IO, "neither tokenizer.json nor vocab.txt");
}
END_TEST

START_TEST(test_bad_settings) {
    void *tok = NULL;
    char kv[512];
    snprintf(kv, sizeof kv, "path=%s", WP_HF_CASED);
    const char *with_training[] = {kv, "vocab_size=3000", NULL};
    ck_assert_int_eq(wp_create_kv(&tok, with_training), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "vocab_size"));
    const char *with_lowercase[] = {kv, "lowercase=true", NULL};
    ck_assert_int_eq(wp_create_kv(&tok, with_lowercase), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "lowercase"));
    const char *negative[] = {"vocab_size=-5", NULL};
    ck_assert_int_eq(wp_create_kv(&tok, negative), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "vocab_size"));
    const char *zero_chars[] = {"max_input_chars_per_word=0", NULL};
    ck_assert_int_eq(wp_create_kv(&tok, zero_chars), LM_ERR_INVALID);
    const char *typo[] = {"vocab_sise=100", NULL};
    ck_assert_int_eq(wp_create_kv(&tok, typo), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "vocab_sise"));
    const char *no_unk[] = {"special_tokens=[PAD]", NULL};
    ck_assert_int_eq(wp_create_kv(&tok, no_unk), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "[UNK]"));
}
END_TEST

/* vocab_size below specials + alphabet + "##" characters: the message gives
 * the minimum, which HF's vocabulary shows (its first merge comes after). */
START_TEST(test_vocab_size_too_small) {
    void *hf = wp_open_path(WP_HF_CASED);
    char **order;
    size_t n_cont = wp_continuation_order(hf, &order);
    size_t n_chars = 0;
    for (int32_t id = 5; id < 2000; id++) {
        const char *t;
        size_t len;
        ck_assert_int_eq(wp_plugin()->id_to_token(hf, id, &t, &len), LM_OK);
        unsigned char lead = (unsigned char)t[0];
        if (len == (size_t)(lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4)) n_chars++;
    }
    int minimum = (int)(5 + n_chars + n_cont);
    char want[64];
    snprintf(want, sizeof want, "vocab_size >= %d", minimum);
    const char *pairs[] = {"vocab_size=50", "min_frequency=2", NULL};
    void *tok = wp_open(pairs);
    lm_text_source rows = wp_wiki_rows(2000);
    ck_assert_int_eq(wp_plugin()->train(tok, &rows), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), want) != NULL, "'%s' lacks '%s'", lm_error_message(), want);
    lm_ids ids = {0}; /* a failed training leaves no half-built model */
    ck_assert_int_eq(wp_plugin()->encode(tok, "a", 1, 0, &ids), LM_ERR_INVALID);
    wp_plugin()->destroy(tok);
    /* Exactly the minimum trains, with no merge at all. */
    char kv[64];
    snprintf(kv, sizeof kv, "vocab_size=%d", minimum);
    const char *exact[] = {kv, NULL};
    tok = wp_open(exact);
    ck_assert_msg(wp_plugin()->train(tok, &rows) == LM_OK, "%s", lm_error_message());
    lm_vocab_info info;
    ck_assert_int_eq(wp_plugin()->info(tok, &info), LM_OK);
    ck_assert_int_eq(info.vocab_size, minimum);
    wp_plugin()->destroy(tok);
    wp_plugin()->destroy(hf);
    wp_wiki_rows_free(&rows);
    wp_strings_free(order, n_cont);
}
END_TEST

START_TEST(test_empty_training_data) {
    void *tok = wp_open(NULL);
    lm_text_source none = {sizeof(lm_text_source), NULL, 0, empty_row, 0, NULL},
                   blank = {sizeof(lm_text_source), NULL, 8, empty_row, 0, NULL};
    ck_assert_int_eq(wp_plugin()->train(tok, &none), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "no words"));
    ck_assert_int_eq(wp_plugin()->train(tok, &blank), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "8 rows"));
    wp_plugin()->destroy(tok);
}
END_TEST

START_TEST(test_untrained_and_loaded_misuse) {
    void *tok = wp_open(NULL);
    lm_ids ids = {0};
    lm_vocab_info info;
    ck_assert_int_eq(wp_plugin()->encode(tok, "hello", 5, 1, &ids), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "train"));
    ck_assert_int_eq(wp_plugin()->info(tok, &info), LM_ERR_INVALID);
    ck_assert_int_eq(wp_plugin()->save(tok, "/tmp/never.json"), LM_ERR_INVALID);
    wp_plugin()->destroy(tok);
    void *loaded = wp_open_path(WP_HF_CASED);
    lm_text_source rows = wp_wiki_rows(10);
    ck_assert_int_eq(wp_plugin()->train(loaded, &rows), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "path"));
    wp_wiki_rows_free(&rows);
    int32_t bad[] = {5, 2000};
    lm_buffer text = {0};
    ck_assert_int_eq(wp_plugin()->decode(loaded, bad, 2, 0, &text), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "2000"));
    int32_t negative[] = {-1};
    ck_assert_int_eq(wp_plugin()->decode(loaded, negative, 1, 0, &text), LM_ERR_INVALID);
    lm_buffer_free(&text);
    wp_plugin()->destroy(loaded);
}
END_TEST

START_TEST(test_interrupt_then_retrain) {
    const char *pairs[] = {"vocab_size=600", NULL};
    void *tok = wp_open(pairs);
    lm_text_source rows = wp_wiki_rows(2000);
    lm_interrupt_request();
    ck_assert_int_eq(wp_plugin()->train(tok, &rows), LM_ERR_INTERRUPTED);
    lm_interrupt_clear();
    ck_assert_int_eq(wp_plugin()->train(tok, &rows), LM_OK);
    uint64_t first, second;
    ck_assert_int_eq(wp_plugin()->fingerprint(tok, &first), LM_OK);
    ck_assert_int_eq(wp_plugin()->train(tok, &rows), LM_OK); /* deterministic */
    ck_assert_int_eq(wp_plugin()->fingerprint(tok, &second), LM_OK);
    ck_assert_uint_eq(first, second);
    wp_plugin()->destroy(tok);
    wp_wiki_rows_free(&rows);
}
END_TEST

/* max_input_chars_per_word (vocab.txt loading): longer words are [UNK]. */
START_TEST(test_max_input_chars) {
    const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nab\n##c\n##cd\na\n";
    const char *path = write_temp("vocab.txt", vocab, strlen(vocab));
    char kv[512];
    snprintf(kv, sizeof kv, "path=%s", path);
    const char *pairs[] = {kv, "max_input_chars_per_word=4", NULL};
    void *tok = wp_open(pairs);
    lm_ids ids = {0};
    ck_assert_int_eq(wp_plugin()->encode(tok, "abcd abcdc x abcc", 17, 1, &ids), LM_OK);
    /* [CLS] ab ##cd | abcdc: 5 chars > 4 | x: unknown | ab ##c ##c [SEP] */
    const int32_t want[] = {2, 5, 7, 1, 1, 5, 6, 6, 3};
    ck_assert_uint_eq(ids.len, 9);
    for (size_t i = 0; i < 9; i++) ck_assert_int_eq(ids.data[i], want[i]);
    lm_buffer text = {0};
    ck_assert_int_eq(wp_plugin()->decode(tok, ids.data, ids.len, 0, &text), LM_OK);
    ck_assert_str_eq(text.data, "[CLS] abcd [UNK] [UNK] abcc [SEP]");
    lm_buffer_free(&text);
    lm_ids_free(&ids);
    wp_plugin()->destroy(tok);
}
END_TEST

/* Fuzzer findings (docs/fuzzing.md).  A tokenizer.json around a model.vocab
 * object text, an added_tokens array text and the unk_token. */
#define WP_JSON(vocab, added, unk)                                                                                  \
    "{\"added_tokens\": [" added "], \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, \"model\": "               \
    "{\"type\": \"WordPiece\", \"unk_token\": \"" unk "\", \"vocab\": {" vocab "}}}"

/* F2: save writes vocabulary keys and the unknown token as C strings, so a
 * token holding U+0000 came back cut short (a duplicate key): refused. */
START_TEST(test_nul_in_tokens_refused) {
    const char *nul_vocab = WP_JSON("\"[UNK]\": 0, \"a\\u0000b\": 1", "", "[UNK]");
    expect_load_error(write_temp("nulvocab.json", nul_vocab, strlen(nul_vocab)), LM_ERR_FORMAT, "U+0000");
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "nulvocab.json"));
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "model.vocab token 'a\\u0000b'"));
    const char *nul_added = WP_JSON("\"[UNK]\": 0", "{\"id\": 1, \"content\": \"[X\\u0000]\", \"special\": true}", "[UNK]");
    expect_load_error(write_temp("nuladded.json", nul_added, strlen(nul_added)), LM_ERR_FORMAT, "U+0000");
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "added token"));
    /* "a\0b" as the unknown token would come back as "a", another token. */
    const char *nul_unk = WP_JSON("\"[UNK]\": 0, \"a\": 1", "", "a\\u0000b");
    expect_load_error(write_temp("nulunk.json", nul_unk, strlen(nul_unk)), LM_ERR_FORMAT, "U+0000");
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "unk_token"));
}
END_TEST

/* F3: a vocab.txt line that is not UTF-8 was accepted and saved as U+FFFD
 * (another tokenizer); HF cannot read such a file at all. */
START_TEST(test_vocab_txt_invalid_utf8_refused) {
    static const char stray[] = "[UNK]\n##ce\xf3\nok\n";
    expect_load_error(write_temp("bad1.txt", stray, sizeof stray - 1), LM_ERR_FORMAT, "line 2");
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "UTF-8"));
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "bad1.txt"));
    static const char surrogate[] = "[UNK]\na\nb\n\xed\xa0\x80\n"; /* U+D800 encoded */
    expect_load_error(write_temp("bad2.txt", surrogate, sizeof surrogate - 1), LM_ERR_FORMAT, "line 4");
    static const char truncated[] = "[UNK]\n\xe6\x97"; /* the last line, without its last byte */
    expect_load_error(write_temp("bad3.txt", truncated, sizeof truncated - 1), LM_ERR_FORMAT, "line 2");
    static const char good[] = "[UNK]\ncaf\xc3\xa9\n##\xe6\x97\xa5\n";
    void *tok = wp_open_path(write_temp("good.txt", good, sizeof good - 1));
    int32_t id = -1;
    ck_assert_int_eq(wp_plugin()->token_to_id(tok, "##\xe6\x97\xa5", 5, &id), LM_OK);
    ck_assert_int_eq(id, 2);
    wp_plugin()->destroy(tok);
}
END_TEST

/* F6 (the BPE plugin's): WordPiece already refused ids beyond the number of
 * tokens in the file; its message names the token and the id. */
START_TEST(test_sparse_ids_named) {
    const char *huge_added = WP_JSON("\"[UNK]\": 0", "{\"id\": 2000000000, \"content\": \"[BIG]\", \"special\": true}",
                                     "[UNK]");
    expect_load_error(write_temp("hugeadded.json", huge_added, strlen(huge_added)), LM_ERR_FORMAT, "id 2000000000");
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "'[BIG]'"));
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "0..1"));
    const char *huge_vocab = WP_JSON("\"[UNK]\": 0, \"a\": 2000000000", "", "[UNK]");
    expect_load_error(write_temp("hugevocab.json", huge_vocab, strlen(huge_vocab)), LM_ERR_FORMAT, "id 2000000000");
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "'a'"));
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("tokenizer_wordpiece_errors");
    TCase *tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_info_and_tokens);
    tcase_add_test(tc, test_fingerprints_differ);
    tcase_add_test(tc, test_corrupt_json);
    tcase_add_test(tc, test_bad_settings);
    tcase_add_test(tc, test_vocab_size_too_small);
    tcase_add_test(tc, test_empty_training_data);
    tcase_add_test(tc, test_untrained_and_loaded_misuse);
    tcase_add_test(tc, test_interrupt_then_retrain);
    tcase_add_test(tc, test_max_input_chars);
    tcase_add_test(tc, test_nul_in_tokens_refused);
    tcase_add_test(tc, test_vocab_txt_invalid_utf8_refused);
    tcase_add_test(tc, test_sparse_ids_named);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(suite(), NULL);
}
