/* plugins/common/text/unicode: strict UTF-8 and the Unicode 16.0 classes.
 *
 * The category counts are Python's unicodedata2 16.0.0 (the version HF
 * tokenizers' Oniguruma uses), computed over all 0x110000 code points. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "test_main.h"
#include "unicode.h"

START_TEST(utf8_decode_is_strict) {
    struct {
        const char *bytes;
        size_t len;
        int consumed;
        uint32_t cp;
    } cases[] = {
        {"A", 1, 1, 0x41},
        {"\xC3\xA9", 2, 2, 0xE9},
        {"\xE2\x82\xAC", 3, 3, 0x20AC},
        {"\xF0\x9F\x98\x80", 4, 4, 0x1F600},
        {"\xF4\x8F\xBF\xBF", 4, 4, 0x10FFFF},
        {"\xEF\xBB\xBF", 3, 3, 0xFEFF},
        {"\xC0\x80", 2, -1, 0},         /* overlong NUL */
        {"\xC1\xBF", 2, -1, 0},         /* overlong */
        {"\xE0\x9F\xBF", 3, -1, 0},     /* overlong 3-byte */
        {"\xF0\x8F\xBF\xBF", 4, -1, 0}, /* overlong 4-byte */
        {"\xED\xA0\x80", 3, -1, 0},     /* surrogate U+D800 */
        {"\xF4\x90\x80\x80", 4, -1, 0}, /* above U+10FFFF */
        {"\xF5\x80\x80\x80", 4, -1, 0},
        {"\x80", 1, -1, 0},             /* lone continuation */
        {"\xC3", 1, -1, 0},             /* truncated */
        {"\xE2\x82", 2, -1, 0},
        {"\xE2\x28\xA1", 3, -1, 0},     /* bad continuation */
        {"\xFF", 1, -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t cp = 0xDEAD;
        int n = lm_utf8_decode((const unsigned char *)cases[i].bytes, cases[i].len, &cp);
        ck_assert_msg(n == cases[i].consumed, "case %zu: consumed %d, expected %d", i, n, cases[i].consumed);
        if (n > 0) ck_assert_uint_eq(cp, cases[i].cp);
    }
    uint32_t cp;
    ck_assert_int_eq(lm_utf8_decode((const unsigned char *)"", 0, &cp), 0);
    ck_assert(lm_utf8_valid((const unsigned char *)"h\xC3\xA9llo \xF0\x9F\x98\x80", 11));
    ck_assert(!lm_utf8_valid((const unsigned char *)"h\xC3llo", 5));
}
END_TEST

START_TEST(utf8_encode_round_trips) {
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 97)) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        char buf[4];
        size_t n = lm_utf8_encode(cp, buf);
        uint32_t back;
        ck_assert_int_eq(lm_utf8_decode((const unsigned char *)buf, n, &back), (int)n);
        ck_assert_uint_eq(back, cp);
    }
    char buf[4];
    ck_assert_uint_eq(lm_utf8_encode(0x110000, buf), 0);
}
END_TEST

START_TEST(category_counts_match_unicode_16) {
    static const unsigned expected[30] = {819533, 1858, 2258, 31, 404, 136477, 2020, 468, 13, 760,
                                          236,    915,  10,   27, 79,  77,     12,   10,  640, 950,
                                          63,     125,  7376, 17, 1,   1,      65,   170, 2048, 137468};
    unsigned counts[30] = {0};
    for (uint32_t cp = 0; cp < 0x110000; cp++) counts[lm_unicode_category(cp)]++;
    for (int c = 0; c < 30; c++)
        ck_assert_msg(counts[c] == expected[c], "%s: %u code points, Unicode 16.0 has %u",
                      lm_unicode_category_name((lm_unicode_category_id)c), counts[c], expected[c]);
    ck_assert_str_eq(lm_unicode_version(), "16.0.0");
}
END_TEST

START_TEST(classes_of_known_characters) {
    ck_assert(lm_unicode_is_letter('a') && lm_unicode_is_letter(0xE9) && lm_unicode_is_letter(0x4E00));
    ck_assert(lm_unicode_is_letter(0x1C89));  /* CYRILLIC CAPITAL LETTER TJE, new in 16.0 */
    ck_assert(lm_unicode_is_letter(0x105C0)); /* Todhri, new in 16.0 */
    ck_assert(!lm_unicode_is_letter('1') && !lm_unicode_is_letter(0x0301));
    ck_assert(lm_unicode_is_number('7') && lm_unicode_is_number(0xBD) && lm_unicode_is_number(0x216B));
    ck_assert(lm_unicode_is_mark(0x0301) && !lm_unicode_is_mark('e'));
    ck_assert(lm_unicode_is_punctuation('!') && lm_unicode_is_punctuation(0x201C) && !lm_unicode_is_punctuation('$'));
    ck_assert(lm_unicode_is_symbol('$') && lm_unicode_is_symbol(0x20AC) && lm_unicode_is_symbol(0x1F600));
    ck_assert(lm_unicode_is_bert_punctuation('$') && lm_unicode_is_bert_punctuation('^') &&
              lm_unicode_is_bert_punctuation(0x3001) && !lm_unicode_is_bert_punctuation(0x20AC));
    static const uint32_t spaces[] = {9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029,
                                      0x202F, 0x205F, 0x3000};
    for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++) ck_assert(lm_unicode_is_whitespace(spaces[i]));
    unsigned n_spaces = 0;
    for (uint32_t cp = 0; cp < 0x110000; cp++) n_spaces += (unsigned)lm_unicode_is_whitespace(cp);
    ck_assert_uint_eq(n_spaces, 25); /* the White_Space property */
    ck_assert(!lm_unicode_is_whitespace(0x1C) && !lm_unicode_is_whitespace(0x200B) && !lm_unicode_is_whitespace(0xFEFF));
    ck_assert(lm_unicode_is_control(0) && lm_unicode_is_control(0x7F) && lm_unicode_is_control(0x200B) &&
              lm_unicode_is_control(0xFEFF) && lm_unicode_is_control(0xE000) && lm_unicode_is_control(0x378));
    ck_assert(!lm_unicode_is_control('\t') && !lm_unicode_is_control('\n') && !lm_unicode_is_control('\r') &&
              !lm_unicode_is_control('a'));
    ck_assert(lm_unicode_is_cjk(0x4E00) && lm_unicode_is_cjk(0x9FFF) && lm_unicode_is_cjk(0x20000) &&
              lm_unicode_is_cjk(0xF900) && !lm_unicode_is_cjk(0x3042) && !lm_unicode_is_cjk(0xAC00));
}
END_TEST

int main(void) {
    Suite *s = suite_create("unicode");
    TCase *tc = tcase_create("unicode");
    tcase_add_test(tc, utf8_decode_is_strict);
    tcase_add_test(tc, utf8_encode_round_trips);
    tcase_add_test(tc, category_counts_match_unicode_16);
    tcase_add_test(tc, classes_of_known_characters);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}
