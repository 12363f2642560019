/* See fuzz_tokenizer.h. */
#include "fuzz_tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "unicode.h"

lm_status fuzz_tokenizer_create(const lm_tokenizer_vtable *vt, const char *const *items, void **out) {
    lm_config *cfg = NULL;
    *out = NULL;
    FUZZ_CHECK(lm_config_create(&cfg, "tokenizer under fuzzing") == LM_OK, "config create failed");
    for (size_t i = 0; items[i]; i++) {
        const char *eq = strchr(items[i], '=');
        FUZZ_CHECK(eq != NULL, "bad harness item %s", items[i]);
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(eq - items[i]), items[i]);
        /* Paths stay strings even if they look like numbers; other
         * settings are typed like command-line arguments. */
        int is_path = !strcmp(key, "path") || !strcmp(key, "vocab") || !strcmp(key, "merges");
        FUZZ_CHECK((is_path ? lm_config_set_string(cfg, key, eq + 1) : lm_config_set_parsed(cfg, items[i])) == LM_OK,
                   "config set failed for %s", items[i]);
    }
    void *tok = NULL;
    lm_status s = vt->create(&tok, cfg);
    if (s == LM_OK) {
        FUZZ_CHECK(tok != NULL, "create succeeded without an object");
        *out = tok;
    } else {
        FUZZ_CHECK(lm_error_message()[0] != '\0', "create failed (%d) without a message", s);
        fuzz_note("create refused: %s", lm_error_message());
    }
    lm_config_destroy(cfg);
    return s;
}

void fuzz_tokenizer_check_size(const lm_tokenizer_vtable *vt, void *tok, size_t max_ids) {
    lm_vocab_info info;
    memset(&info, 0, sizeof info);
    FUZZ_CHECK(vt->info(tok, &info) == LM_OK, "info failed on a loaded tokenizer");
    FUZZ_CHECK(info.vocab_size >= 0 && (size_t)info.vocab_size <= max_ids,
               "a vocabulary of %d ids from %zu bytes of input (ids must be dense)", info.vocab_size, max_ids);
}

static const char *const samples[] = {
    "Hello world! The quick brown fox jumps over the lazy dog.",
    " = Valkyria Chronicles III = \n",
    "caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 \xd0\xbf\xd1\x80\xd0\xb8",
    "<|endoftext|>[CLS] [SEP] [MASK] [UNK] [PAD] ##ing ",
    "  tabs\tand\nnewlines\r\n  ",
    "",
    "a",
    "\xff\xfe invalid \x80 utf-8 \xc3",
    "unaffable unbelievably 1234567890 3.14 ... ??? !!!",
};

static void encode_checked(const lm_tokenizer_vtable *vt, void *tok, const lm_vocab_info *info, const char *text,
                           size_t len, int add_special, lm_ids *ids) {
    lm_ids_clear(ids);
    if (vt->encode(tok, text, len, add_special, ids) != LM_OK) {
        FUZZ_CHECK(lm_error_message()[0] != '\0', "encode failed without a message");
        lm_ids_clear(ids);
        return;
    }
    for (size_t i = 0; i < ids->len; i++)
        FUZZ_CHECK(ids->data[i] >= 0 && ids->data[i] < info->vocab_size,
                   "encode produced id %d outside the vocabulary of %d (token %zu of \"%.*s\", add_special=%d)",
                   ids->data[i], info->vocab_size, i, (int)(len > 60 ? 60 : len), text, add_special);
    lm_buffer decoded = {0};
    for (int skip = 0; skip <= 1; skip++) {
        lm_buffer_clear(&decoded);
        FUZZ_CHECK(vt->decode(tok, ids->data, ids->len, skip, &decoded) == LM_OK,
                   "decode(encode(\"%.*s\")) failed: %s", (int)(len > 60 ? 60 : len), text, lm_error_message());
    }
    lm_buffer_free(&decoded);
}

/* Encodings of every sample (and of a text built from the vocabulary),
 * concatenated with -1 separators, for comparing two tokenizers. */
static void encode_all(const lm_tokenizer_vtable *vt, void *tok, const lm_vocab_info *info, const char *extra,
                       size_t extra_len, lm_ids *all) {
    lm_ids ids = {0};
    for (size_t i = 0; i <= sizeof samples / sizeof samples[0]; i++) {
        const char *text = i < sizeof samples / sizeof samples[0] ? samples[i] : extra;
        size_t len = i < sizeof samples / sizeof samples[0] ? strlen(samples[i]) : extra_len;
        for (int add_special = 0; add_special <= 1; add_special++) {
            encode_checked(vt, tok, info, text, len, add_special, &ids);
            FUZZ_CHECK(lm_ids_append(all, ids.data, ids.len) == LM_OK && lm_ids_push(all, -1) == LM_OK, "oom");
        }
    }
    lm_ids_free(&ids);
}

void fuzz_tokenizer_exercise(const lm_tokenizer_vtable *vt, void *tok, const char *save_name) {
    lm_vocab_info info;
    memset(&info, 0, sizeof info);
    FUZZ_CHECK(vt->info(tok, &info) == LM_OK, "info failed on a loaded tokenizer");
    FUZZ_CHECK(info.vocab_size >= 0, "negative vocab_size %d", info.vocab_size);
    int32_t named[] = {info.unk_id, info.pad_id, info.bos_id, info.eos_id, info.cls_id, info.sep_id, info.mask_id};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        FUZZ_CHECK(named[i] >= -1 && named[i] < info.vocab_size, "special id %d outside [-1, %d)", named[i],
                   info.vocab_size);
    for (size_t i = 0; i < info.n_special; i++) {
        FUZZ_CHECK(info.special_ids[i] >= 0 && info.special_ids[i] < info.vocab_size,
                   "special_ids[%zu] = %d outside the vocabulary of %d", i, info.special_ids[i], info.vocab_size);
        FUZZ_CHECK(i == 0 || info.special_ids[i - 1] < info.special_ids[i], "special_ids not sorted and unique");
    }
    uint64_t fingerprint = 0, again_fp = 0;
    FUZZ_CHECK(vt->fingerprint(tok, &fingerprint) == LM_OK, "fingerprint failed");
    FUZZ_CHECK(vt->fingerprint(tok, &again_fp) == LM_OK && again_fp == fingerprint, "fingerprint not stable");

    /* Every id: its token maps back to an id whose token is the same string
     * (two ids may share a string: an added token and a vocab entry). */
    lm_buffer extra = {0};
    int nul_token = 0, invalid_utf8_token = 0;
    for (int32_t id = 0; vt->id_to_token && id < info.vocab_size; id++) {
        const char *token;
        size_t len;
        if (vt->id_to_token(tok, id, &token, &len) != LM_OK) continue; /* a hole */
        nul_token |= memchr(token, '\0', len) != NULL;
        invalid_utf8_token |= !lm_utf8_valid((const unsigned char *)token, len);
        if (id < 64) FUZZ_CHECK(lm_buffer_append(&extra, token, len) == LM_OK, "oom");
        int32_t back = -2;
        if (vt->token_to_id && vt->token_to_id(tok, token, len, &back) == LM_OK) {
            FUZZ_CHECK(back >= 0 && back < info.vocab_size, "token_to_id gave %d outside the vocabulary", back);
            const char *token2;
            size_t len2;
            FUZZ_CHECK(vt->id_to_token(tok, back, &token2, &len2) == LM_OK && len2 == len &&
                           memcmp(token, token2, len) == 0,
                       "id %d -> token -> id %d -> a different token", id, back);
        }
    }
    const char *token;
    size_t len;
    if (vt->id_to_token) {
        FUZZ_CHECK(vt->id_to_token(tok, -1, &token, &len) != LM_OK, "id_to_token(-1) succeeded");
        FUZZ_CHECK(vt->id_to_token(tok, info.vocab_size, &token, &len) != LM_OK, "id_to_token(vocab_size) succeeded");
    }
    int32_t bad[] = {-1};
    lm_buffer out = {0};
    FUZZ_CHECK(vt->decode(tok, bad, 1, 0, &out) != LM_OK, "decode(-1) succeeded");
    lm_buffer_free(&out);

    lm_ids first = {0}, second = {0};
    encode_all(vt, tok, &info, extra.data ? extra.data : "", extra.len, &first);
    encode_all(vt, tok, &info, extra.data ? extra.data : "", extra.len, &second);
    FUZZ_CHECK(first.len == second.len && memcmp(first.data, second.data, first.len * sizeof(int32_t)) == 0,
               "encoding the same texts twice gave different ids (word cache?)");

    /* Loaders refuse what save could not write back (findings F2, F3). */
    FUZZ_CHECK(!nul_token, "a token holding U+0000 was accepted (save would cut it short)");
    FUZZ_CHECK(!invalid_utf8_token, "a token that is not valid UTF-8 was accepted (save would write U+FFFD)");
    if (save_name) {
        const char *path = fuzz_path(4, save_name);
        if (vt->save(tok, path) != LM_OK) fuzz_fail("save of a loaded tokenizer failed: %s", lm_error_message());
        char item[600];
        snprintf(item, sizeof item, "path=%s", path);
        const char *items[] = {item, NULL};
        void *reloaded = NULL;
        if (fuzz_tokenizer_create(vt, items, &reloaded) != LM_OK)
            fuzz_fail("the saved tokenizer.json does not load back: %s", lm_error_message());
        lm_vocab_info info2;
        FUZZ_CHECK(vt->info(reloaded, &info2) == LM_OK && info2.vocab_size == info.vocab_size,
                   "reloaded vocab_size %d differs from %d", info2.vocab_size, info.vocab_size);
        lm_ids third = {0};
        encode_all(vt, reloaded, &info2, extra.data ? extra.data : "", extra.len, &third);
        FUZZ_CHECK(third.len == first.len && memcmp(third.data, first.data, first.len * sizeof(int32_t)) == 0,
                   "the reloaded tokenizer encodes differently");
        uint64_t fp2 = 0;
        FUZZ_CHECK(vt->fingerprint(reloaded, &fp2) == LM_OK && fp2 == fingerprint,
                   "the reloaded tokenizer has another fingerprint (token caches would be rebuilt)");
        lm_ids_free(&third);
        vt->destroy(reloaded);
        fuzz_remove(path);
    }
    lm_ids_free(&first);
    lm_ids_free(&second);
    lm_buffer_free(&extra);
}
