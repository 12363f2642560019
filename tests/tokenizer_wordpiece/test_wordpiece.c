/* WordPiece parity with Hugging Face tokenizers (fixtures from
 * fixtures/gen_wordpiece_fixture.py): training on wiki.test.raw gives HF's
 * vocabulary id for id, held-out strings encode and decode as HF does,
 * HF's tokenizer.json and BERT's vocab.txt load, and lmcore's own
 * tokenizer.json round-trips. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_main.h"
#include "wordpiece_test_util.h"

#define TRAIN_LINES 2000

static void assert_same_vocab(void *a, void *b) {
    const lm_tokenizer_vtable *vt = wp_plugin();
    lm_vocab_info ia, ib;
    ck_assert_int_eq(vt->info(a, &ia), LM_OK);
    ck_assert_int_eq(vt->info(b, &ib), LM_OK);
    ck_assert_int_eq(ia.vocab_size, ib.vocab_size);
    for (int32_t id = 0; id < ia.vocab_size; id++) {
        const char *ta, *tb;
        size_t la, lb;
        ck_assert_int_eq(vt->id_to_token(a, id, &ta, &la), LM_OK);
        ck_assert_int_eq(vt->id_to_token(b, id, &tb, &lb), LM_OK);
        ck_assert_msg(la == lb && memcmp(ta, tb, la) == 0, "id %d: '%.*s' vs HF '%.*s'", id, (int)la, ta, (int)lb, tb);
    }
}

/* Trains lmcore like the generator trained HF; `order` may be NULL. */
static void *train_like_hf(const char *kind, char **order, size_t n_order) {
    const lm_json *settings = wp_settings(kind);
    lm_config *cfg;
    ck_assert_int_eq(lm_config_create(&cfg, "tokenizer 'wordpiece'"), LM_OK);
    lm_config_set_int(cfg, "vocab_size", lm_json_int(lm_json_get(settings, "vocab_size")));
    lm_config_set_int(cfg, "min_frequency", lm_json_int(lm_json_get(settings, "min_frequency")));
    lm_config_set_bool(cfg, "lowercase", lm_json_bool(lm_json_get(settings, "lowercase")));
    if (lm_json_get(settings, "limit_alphabet"))
        lm_config_set_int(cfg, "limit_alphabet", lm_json_int(lm_json_get(settings, "limit_alphabet")));
    const char *specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    lm_config_set_list(cfg, "special_tokens", specials, 5);
    if (order) lm_config_set_list(cfg, "continuation_order", (const char *const *)order, n_order);
    void *tok = NULL;
    ck_assert_int_eq(wp_plugin()->create(&tok, cfg), LM_OK);
    ck_assert_msg(lm_config_validate(cfg) == LM_OK, "%s", lm_error_message());
    lm_config_destroy(cfg);
    lm_text_source rows = wp_wiki_rows(TRAIN_LINES);
    lm_status status = wp_plugin()->train(tok, &rows);
    ck_assert_msg(status == LM_OK, "train: %s", lm_error_message());
    wp_wiki_rows_free(&rows);
    return tok;
}

static void check_training_parity(const char *kind, const char *hf_path) {
    void *hf = wp_open_path(hf_path);
    char **order;
    size_t n_order = wp_continuation_order(hf, &order);
    ck_assert_uint_gt(n_order, 40);
    void *ours = train_like_hf(kind, order, n_order);
    assert_same_vocab(ours, hf);
    wp_check_cases(ours, kind);
    /* Same vocabulary, settings, specials and template: same fingerprint. */
    uint64_t f_ours, f_hf;
    ck_assert_int_eq(wp_plugin()->fingerprint(ours, &f_ours), LM_OK);
    ck_assert_int_eq(wp_plugin()->fingerprint(hf, &f_hf), LM_OK);
    ck_assert_uint_eq(f_ours, f_hf);
    /* Saved by lmcore, reloaded: still HF's encodings.  The file is kept so that
     * gen_wordpiece_fixture.py --check-lmcore-json can load it in HF. */
    char path[512];
    snprintf(path, sizeof path, "%s/wordpiece_trained_%s.json", LM_TEST_BINARY_DIR, kind);
    ck_assert_int_eq(wp_plugin()->save(ours, path), LM_OK);
    void *again = wp_open_path(path);
    assert_same_vocab(again, hf);
    wp_check_cases(again, kind);
    uint64_t f_again;
    ck_assert_int_eq(wp_plugin()->fingerprint(again, &f_again), LM_OK);
    ck_assert_uint_eq(f_again, f_hf);
    wp_plugin()->destroy(again);
    wp_plugin()->destroy(ours);
    wp_plugin()->destroy(hf);
    wp_strings_free(order, n_order);
}

START_TEST(test_hf_tokenizer_json_cased) {
    void *tok = wp_open_path(WP_HF_CASED);
    wp_check_cases(tok, "cased");
    wp_plugin()->destroy(tok);
}
END_TEST

START_TEST(test_hf_tokenizer_json_uncased) {
    void *tok = wp_open_path(WP_HF_UNCASED);
    wp_check_cases(tok, "uncased");
    wp_plugin()->destroy(tok);
}
END_TEST

START_TEST(test_training_matches_hf_cased) { check_training_parity("cased", WP_HF_CASED); }
END_TEST

START_TEST(test_training_matches_hf_uncased) { check_training_parity("uncased", WP_HF_UNCASED); }
END_TEST

/* limit_alphabet drops the rarest characters; a word whose first character
 * was dropped still gives "##" to its second one (HF's positional rule). */
START_TEST(test_training_matches_hf_limit_alphabet) {
    void *hf = wp_open_path(WP_HF_LIMITED);
    char **order;
    size_t n_order = wp_continuation_order(hf, &order);
    void *ours = train_like_hf("limited", order, n_order);
    assert_same_vocab(ours, hf);
    wp_plugin()->destroy(ours);
    wp_plugin()->destroy(hf);
    wp_strings_free(order, n_order);
}
END_TEST

/* Without HF's random "##c" order lmcore uses code point order; only merge
 * ties at the end can then differ from a given HF run. */
START_TEST(test_training_default_order) {
    void *hf = wp_open_path(WP_HF_CASED);
    void *ours = train_like_hf("cased", NULL, 0);
    char **order;
    size_t n = wp_continuation_order(ours, &order);
    ck_assert_uint_gt(n, 40);
    for (size_t i = 1; i < n; i++) /* UTF-8 byte order is code point order */
        ck_assert_msg(strcmp(order[i - 1] + 2, order[i] + 2) < 0, "'%s' before '%s'", order[i - 1], order[i]);
    lm_vocab_info info;
    ck_assert_int_eq(wp_plugin()->info(ours, &info), LM_OK);
    ck_assert_int_eq(info.vocab_size, 2000);
    size_t shared = 0;
    for (int32_t id = 0; id < info.vocab_size; id++) {
        const char *t;
        size_t len;
        int32_t other;
        ck_assert_int_eq(wp_plugin()->id_to_token(ours, id, &t, &len), LM_OK);
        if (wp_plugin()->token_to_id(hf, t, len, &other) == LM_OK) shared++;
    }
    ck_assert_msg(shared >= 1980, "only %zu of 2000 tokens shared with HF", shared);
    wp_strings_free(order, n);
    wp_plugin()->destroy(ours);
    wp_plugin()->destroy(hf);
}
END_TEST

/* BERT's vocab.txt (one token per line), as a file and as a folder. */
START_TEST(test_vocab_txt) {
    void *hf = wp_open_path(WP_HF_CASED);
    char dir[] = "/tmp/lm_test_wordpiece_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    lm_vocab_info info;
    ck_assert_int_eq(wp_plugin()->info(hf, &info), LM_OK);
    for (int32_t id = 0; id < info.vocab_size; id++) {
        const char *t;
        size_t len;
        ck_assert_int_eq(wp_plugin()->id_to_token(hf, id, &t, &len), LM_OK);
        fwrite(t, 1, len, f);
        fputs(id % 2 ? "\r\n" : "\n", f); /* CRLF lines are trimmed like HF does */
    }
    fclose(f);
    void *from_file = wp_open_path(path);
    void *from_dir = wp_open_path(dir);
    assert_same_vocab(from_file, hf);
    wp_check_cases(from_file, "cased");
    wp_check_cases(from_dir, "cased");
    lm_vocab_info vi;
    ck_assert_int_eq(wp_plugin()->info(from_file, &vi), LM_OK);
    ck_assert_int_eq(vi.cls_id, 2);
    ck_assert_int_eq(vi.sep_id, 3);
    ck_assert_uint_eq(vi.n_special, 5);
    uint64_t fa, fb;
    ck_assert_int_eq(wp_plugin()->fingerprint(from_file, &fa), LM_OK);
    ck_assert_int_eq(wp_plugin()->fingerprint(hf, &fb), LM_OK);
    ck_assert_uint_ne(fa, 0);
    wp_plugin()->destroy(from_file);
    wp_plugin()->destroy(from_dir);
    /* Uncased: lowercase=true applies to vocab.txt. */
    void *hf_uncased = wp_open_path(WP_HF_UNCASED);
    f = fopen(path, "wb");
    ck_assert_int_eq(wp_plugin()->info(hf_uncased, &info), LM_OK);
    for (int32_t id = 0; id < info.vocab_size; id++) {
        const char *t;
        size_t len;
        ck_assert_int_eq(wp_plugin()->id_to_token(hf_uncased, id, &t, &len), LM_OK);
        fwrite(t, 1, len, f);
        fputc('\n', f);
    }
    fclose(f);
    char kv[600];
    snprintf(kv, sizeof kv, "path=%s", path);
    const char *pairs[] = {kv, "lowercase=true", NULL};
    void *uncased = wp_open(pairs);
    wp_check_cases(uncased, "uncased");
    wp_plugin()->destroy(uncased);
    wp_plugin()->destroy(hf_uncased);
    wp_plugin()->destroy(hf);
    remove(path);
    rmdir(dir);
}
END_TEST

/* Invalid UTF-8 is decoded like Python's errors="replace" and U+FFFD is then
 * removed by clean_text: the bytes vanish without splitting the word. */
START_TEST(test_invalid_utf8_vanishes) {
    void *tok = wp_open_path(WP_HF_CASED);
    lm_ids a = {0}, b = {0};
    ck_assert_int_eq(wp_plugin()->encode(tok, "Pre\xff\xfeston \xe2\x82", 13, 0, &a), LM_OK);
    ck_assert_int_eq(wp_plugin()->encode(tok, "Preston ", 8, 0, &b), LM_OK);
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_int_eq(memcmp(a.data, b.data, a.len * sizeof(int32_t)), 0);
    lm_ids_free(&a);
    lm_ids_free(&b);
    wp_plugin()->destroy(tok);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("tokenizer_wordpiece");
    TCase *tc = tcase_create("parity");
    tcase_add_test(tc, test_hf_tokenizer_json_cased);
    tcase_add_test(tc, test_hf_tokenizer_json_uncased);
    tcase_add_test(tc, test_training_matches_hf_cased);
    tcase_add_test(tc, test_training_matches_hf_uncased);
    tcase_add_test(tc, test_training_matches_hf_limit_alphabet);
    tcase_add_test(tc, test_training_default_order);
    tcase_add_test(tc, test_vocab_txt);
    tcase_add_test(tc, test_invalid_utf8_vanishes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(suite(), NULL);
}
