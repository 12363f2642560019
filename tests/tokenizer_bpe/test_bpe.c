/* Byte-level BPE: parity with Hugging Face tokenizers.
 *
 * HF's ByteLevelBPETokenizer was trained by fixtures/gen_bpe_fixture.py on
 * the first lines of wikitext-2 wiki.test.raw (read here from the shared
 * data, never committed).  lmcore trains on the same lines and must produce
 * the same vocabulary and merges, and the same ids as HF on hard strings and
 * on 1000 held-out lines of wiki.valid.raw (compared through hashes). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe_test_util.h"

/* ---- vocabulary and merges of two tokenizer.json files ------------------- */

/* A merge as "left right" whatever its JSON form. */
static void merge_text(const lm_json *m, char *out, size_t cap) {
    if (lm_json_type_of(m) == LM_JSON_STRING) {
        snprintf(out, cap, "%s", lm_json_string(m, NULL));
    } else {
        snprintf(out, cap, "%s %s", lm_json_string(lm_json_at(m, 0), NULL), lm_json_string(lm_json_at(m, 1), NULL));
    }
}

static void assert_same_model(const char *ours_path, const char *hf_name) {
    lm_json *ours = NULL;
    ck_assert_msg(lm_json_parse_file(ours_path, &ours) == LM_OK, "%s", lm_error_message());
    lm_json *hf = fixture_json(hf_name);
    const lm_json *ov = lm_json_get(lm_json_get(ours, "model"), "vocab");
    const lm_json *hv = lm_json_get(lm_json_get(hf, "model"), "vocab");
    ck_assert_uint_eq(lm_json_size(ov), lm_json_size(hv));
    for (size_t i = 0; i < lm_json_size(hv); i++) {
        const char *token = lm_json_key_at(hv, i, NULL);
        const lm_json *id = lm_json_get(ov, token);
        ck_assert_msg(id != NULL, "HF token '%s' (id %lld) is missing from lmcore's vocabulary", token,
                      (long long)lm_json_int(lm_json_at(hv, i)));
        ck_assert_msg(lm_json_int(id) == lm_json_int(lm_json_at(hv, i)), "token '%s': lmcore id %lld, HF id %lld",
                      token, (long long)lm_json_int(id), (long long)lm_json_int(lm_json_at(hv, i)));
    }
    const lm_json *om = lm_json_get(lm_json_get(ours, "model"), "merges");
    const lm_json *hm = lm_json_get(lm_json_get(hf, "model"), "merges");
    for (size_t i = 0; i < lm_json_size(hm) && i < lm_json_size(om); i++) {
        char a[256], b[256];
        merge_text(lm_json_at(om, i), a, sizeof(a));
        merge_text(lm_json_at(hm, i), b, sizeof(b));
        ck_assert_msg(strcmp(a, b) == 0, "merge %zu: lmcore '%s', HF '%s'", i, a, b);
    }
    ck_assert_uint_eq(lm_json_size(om), lm_json_size(hm));
    /* added tokens: same ids and contents, special */
    const lm_json *oa = lm_json_get(ours, "added_tokens"), *ha = lm_json_get(hf, "added_tokens");
    ck_assert_uint_eq(lm_json_size(oa), lm_json_size(ha));
    for (size_t i = 0; i < lm_json_size(ha); i++) {
        ck_assert_int_eq(lm_json_int(lm_json_get(lm_json_at(oa, i), "id")), lm_json_int(lm_json_get(lm_json_at(ha, i), "id")));
        ck_assert_str_eq(lm_json_string(lm_json_get(lm_json_at(oa, i), "content"), NULL),
                         lm_json_string(lm_json_get(lm_json_at(ha, i), "content"), NULL));
        ck_assert_int_eq(lm_json_bool(lm_json_get(lm_json_at(oa, i), "special")), 1);
    }
    lm_json_free(ours);
    lm_json_free(hf);
}

/* Trains with the settings of `which` ("main"/"prefix") in bpe_cases.json,
 * saves to dir/name and returns the tokenizer. */
static void *train_like_hf(const char *which, const char *dir, const char *name) {
    lm_json *cases = fixture_json("bpe_cases.json");
    const lm_json *s = lm_json_get(cases, which);
    char vocab_size[64], min_freq[64], prefix[64];
    snprintf(vocab_size, sizeof(vocab_size), "vocab_size=%lld", (long long)lm_json_int(lm_json_get(s, "vocab_size")));
    snprintf(min_freq, sizeof(min_freq), "min_frequency=%lld", (long long)lm_json_int(lm_json_get(s, "min_frequency")));
    snprintf(prefix, sizeof(prefix), "add_prefix_space=%s", lm_json_bool(lm_json_get(s, "add_prefix_space")) ? "true" : "false");
    const lm_json *sp = lm_json_get(s, "special_tokens");
    const char *specials[8];
    size_t n_specials = lm_json_size(sp);
    for (size_t i = 0; i < n_specials; i++) specials[i] = lm_json_string(lm_json_at(sp, i), NULL);
    const char *kv[] = {vocab_size, min_freq, prefix, NULL};
    void *tok = bpe_create_ok(kv, specials, n_specials);

    text_lines lines;
    lines_read(&lines, WIKITEXT_DIR "/wiki.test.raw", (size_t)lm_json_int(lm_json_get(s, "lines")));
    lm_text_source src = lines_source(&lines);
    lm_status st = bpe_vtable()->train(tok, &src);
    ck_assert_msg(st == LM_OK, "training failed: %s", lm_error_message());
    lines_free(&lines);
    lm_json_free(cases);

    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_msg(bpe_vtable()->save(tok, path) == LM_OK, "save: %s", lm_error_message());
    return tok;
}

/* Every case's ids under `field` ("ids"/"ids_prefix"), and their decoding
 * as HF's under "decoded"/"decoded_prefix" (with add_prefix_space the
 * decoded text starts with the added space, in HF as in lmcore). */
static void check_cases(void *tok, const char *field, const char *label) {
    char decoded_field[64];
    snprintf(decoded_field, sizeof(decoded_field), "decoded%s", field + 3);
    lm_json *root = fixture_json("bpe_cases.json");
    const lm_json *cases = lm_json_get(root, "cases");
    ck_assert_uint_ge(lm_json_size(cases), 80);
    for (size_t i = 0; i < lm_json_size(cases); i++) {
        const lm_json *c = lm_json_at(cases, i);
        size_t len;
        const char *text = lm_json_string(lm_json_get(c, "text"), &len);
        lm_ids ids = bpe_encode_ok(tok, text, len);
        assert_ids_eq_json(&ids, lm_json_get(c, field), label, i);
        lm_buffer back = {0};
        ck_assert_int_eq(bpe_vtable()->decode(tok, ids.data, ids.len, 0, &back), LM_OK);
        size_t hf_len;
        const char *hf_text = lm_json_string(lm_json_get(c, decoded_field), &hf_len);
        ck_assert_msg(back.len == hf_len && (hf_len == 0 || memcmp(back.data, hf_text, hf_len) == 0), "%s case %zu decodes unlike HF",
                      label, i);
        if (strcmp(field, "ids") == 0)
            ck_assert_msg(back.len == len && (len == 0 || memcmp(back.data, text, len) == 0),
                          "%s case %zu does not decode back", label, i);
        lm_buffer_free(&back);
        lm_ids_free(&ids);
    }
    lm_json_free(root);
}

static void *load_fixture(const char *name) {
    char kv0[1024];
    snprintf(kv0, sizeof(kv0), "path=%s/%s", BPE_FIXTURES, name);
    const char *kv[] = {kv0, NULL};
    return bpe_create_ok(kv, NULL, 0);
}

START_TEST(training_matches_hf_vocab_and_merges) {
    char *dir = temp_dir();
    void *tok = train_like_hf("main", dir, "ours.json");
    char path[1024];
    snprintf(path, sizeof(path), "%s/ours.json", dir);
    assert_same_model(path, "hf_bpe_2000.json");
    check_cases(tok, "ids", "lmcore-trained");
    lm_vocab_info info;
    ck_assert_int_eq(bpe_vtable()->info(tok, &info), LM_OK);
    ck_assert_int_eq(info.vocab_size, 2000);
    ck_assert_int_eq(info.eos_id, 0);
    ck_assert_int_eq(info.bos_id, 0);
    ck_assert_int_eq(info.pad_id, -1);
    ck_assert_uint_eq(info.n_special, 1);
    ck_assert_int_eq(info.special_ids[0], 0);
    bpe_destroy(tok);
    rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(training_with_prefix_space_matches_hf) {
    char *dir = temp_dir();
    void *tok = train_like_hf("prefix", dir, "ours.json");
    char path[1024];
    snprintf(path, sizeof(path), "%s/ours.json", dir);
    assert_same_model(path, "hf_bpe_prefix_500.json");
    check_cases(tok, "ids_prefix", "lmcore-trained prefix");
    lm_vocab_info info;
    ck_assert_int_eq(bpe_vtable()->info(tok, &info), LM_OK);
    ck_assert_int_eq(info.vocab_size, 500);
    ck_assert_int_eq(info.eos_id, 0);
    ck_assert_int_eq(info.pad_id, 1);
    ck_assert_uint_eq(info.n_special, 2);
    bpe_destroy(tok);
    rm_tree(dir);
    free(dir);
}
END_TEST

START_TEST(hf_tokenizer_json_encodes_like_hf) {
    void *tok = load_fixture("hf_bpe_2000.json");
    check_cases(tok, "ids", "HF json");
    bpe_destroy(tok);
    tok = load_fixture("hf_bpe_prefix_500.json");
    check_cases(tok, "ids_prefix", "HF prefix json");
    bpe_destroy(tok);
}
END_TEST

START_TEST(gpt2_vocab_and_merges_encode_like_hf) {
    void *tok = load_fixture("gpt2_style"); /* a directory: vocab.json + merges.txt */
    check_cases(tok, "ids", "vocab.json+merges.txt");
    bpe_destroy(tok);
    const char *kv[] = {"vocab=" BPE_FIXTURES "/gpt2_style/vocab.json", "merges=" BPE_FIXTURES "/gpt2_style/merges.txt",
                        NULL};
    tok = bpe_create_ok(kv, NULL, 0);
    int32_t id = -1;
    ck_assert_int_eq(bpe_vtable()->token_to_id(tok, "<|endoftext|>", 13, &id), LM_OK);
    ck_assert_int_eq(id, 0);
    const char *text;
    size_t len;
    ck_assert_int_eq(bpe_vtable()->id_to_token(tok, 4, &text, &len), LM_OK);
    ck_assert_int_eq(len, 1);
    ck_assert_int_eq(text[0], '$'); /* ids 1..256: the byte characters in code point order */
    ck_assert_int_eq(bpe_vtable()->token_to_id(tok, "\xC4\xA0the", 5, &id), LM_OK); /* "Ġthe" */
    check_cases(tok, "ids", "vocab=+merges=");
    bpe_destroy(tok);
}
END_TEST

static uint64_t fnv1a_ids(const int32_t *ids, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int b = 0; b < 4; b++) h = (h ^ ((v >> (8 * b)) & 0xFF)) * 0x100000001B3ull;
    }
    return h;
}

START_TEST(held_out_wikitext_lines_match_hf) {
    lm_json *root = fixture_json("bpe_cases.json");
    const lm_json *hashes = lm_json_get(root, "valid_line_hashes");
    size_t n = (size_t)lm_json_int(lm_json_get(root, "valid_lines"));
    ck_assert_uint_eq(lm_json_size(hashes), n);
    text_lines lines;
    lines_read(&lines, WIKITEXT_DIR "/wiki.valid.raw", n);
    void *tok = load_fixture("hf_bpe_2000.json");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        lm_ids ids = bpe_encode_ok(tok, lines.file.data + lines.start[i], lines.len[i]);
        char hex[17];
        snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)fnv1a_ids(ids.data, ids.len));
        ck_assert_msg(strcmp(hex, lm_json_string(lm_json_at(hashes, i), NULL)) == 0,
                      "wiki.valid.raw line %zu encodes differently from HF", i + 1);
        total += ids.len;
        lm_buffer back = {0};
        ck_assert_int_eq(bpe_vtable()->decode(tok, ids.data, ids.len, 1, &back), LM_OK);
        ck_assert(back.len == lines.len[i] && (back.len == 0 || memcmp(back.data, lines.file.data + lines.start[i], back.len) == 0));
        lm_buffer_free(&back);
        lm_ids_free(&ids);
    }
    ck_assert_uint_eq(total, (size_t)lm_json_int(lm_json_get(root, "valid_token_count")));
    bpe_destroy(tok);
    lines_free(&lines);
    lm_json_free(root);
}
END_TEST

START_TEST(saved_tokenizer_reloads_identically) {
    char *dir = temp_dir();
    void *trained = train_like_hf("main", dir, "ours.json");
    char kv0[1100];
    snprintf(kv0, sizeof(kv0), "path=%s/ours.json", dir);
    const char *kv[] = {kv0, NULL};
    void *reloaded = bpe_create_ok(kv, NULL, 0);
    void *hf = load_fixture("hf_bpe_2000.json");
    uint64_t h1, h2, h3;
    ck_assert_int_eq(bpe_vtable()->fingerprint(trained, &h1), LM_OK);
    ck_assert_int_eq(bpe_vtable()->fingerprint(reloaded, &h2), LM_OK);
    ck_assert_int_eq(bpe_vtable()->fingerprint(hf, &h3), LM_OK);
    ck_assert_uint_eq(h1, h2);
    ck_assert_uint_eq(h2, h3); /* same vocab, merges and specials as HF's file */
    void *other = load_fixture("hf_bpe_prefix_500.json");
    uint64_t h4;
    ck_assert_int_eq(bpe_vtable()->fingerprint(other, &h4), LM_OK);
    ck_assert_uint_ne(h1, h4);
    check_cases(reloaded, "ids", "reloaded");
    bpe_destroy(other);
    bpe_destroy(hf);
    bpe_destroy(reloaded);
    bpe_destroy(trained);
    rm_tree(dir);
    free(dir);
}
END_TEST

Suite *bpe_parity_suite(void);
Suite *bpe_parity_suite(void) {
    Suite *s = suite_create("tokenizer_bpe_parity");
    TCase *tc = tcase_create("hf");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, training_matches_hf_vocab_and_merges);
    tcase_add_test(tc, training_with_prefix_space_matches_hf);
    tcase_add_test(tc, hf_tokenizer_json_encodes_like_hf);
    tcase_add_test(tc, gpt2_vocab_and_merges_encode_like_hf);
    tcase_add_test(tc, held_out_wikitext_lines_match_hf);
    tcase_add_test(tc, saved_tokenizer_reloads_identically);
    suite_add_tcase(s, tc);
    return s;
}
