/* lmcore plugins — UTF-8 and Unicode character classes shared by the
 * tokenizer plugins (static library lmplugin_common, hidden symbols).
 *
 * The general categories come from Unicode 16.0 (gen_unicode_tables.py), the
 * version Hugging Face tokenizers' Oniguruma uses for \p{L} and \p{N}; Python
 * 3.11's unicodedata is 14.0 and knows ~9,400 fewer letters and numbers. */
#ifndef LMPLUGIN_UNICODE_H
#define LMPLUGIN_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Unicode general categories; the numbers are those of the generated table. */
typedef enum lm_unicode_category_id {
    LM_UC_CN = 0, /* unassigned (the default) */
    LM_UC_LU, LM_UC_LL, LM_UC_LT, LM_UC_LM, LM_UC_LO,
    LM_UC_MN, LM_UC_MC, LM_UC_ME,
    LM_UC_ND, LM_UC_NL, LM_UC_NO,
    LM_UC_PC, LM_UC_PD, LM_UC_PS, LM_UC_PE, LM_UC_PI, LM_UC_PF, LM_UC_PO,
    LM_UC_SM, LM_UC_SC, LM_UC_SK, LM_UC_SO,
    LM_UC_ZS, LM_UC_ZL, LM_UC_ZP,
    LM_UC_CC, LM_UC_CF, LM_UC_CS, LM_UC_CO
} lm_unicode_category_id;

/* Decodes one strict UTF-8 sequence (no overlongs, surrogates or values above
 * U+10FFFF, no truncation) from s[0..len).  Returns the bytes consumed (1..4),
 * or -1 when the bytes at s do not start a valid sequence (callers then treat
 * the single byte s[0] as an invalid character), or 0 when len == 0. */
int lm_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);
/* Writes cp (<= U+10FFFF, surrogates included) and returns its length (1..4),
 * 0 for a value above U+10FFFF. */
size_t lm_utf8_encode(uint32_t cp, char out[4]);
/* 1 when s[0..len) is entirely valid UTF-8. */
int lm_utf8_valid(const unsigned char *s, size_t len);

lm_unicode_category_id lm_unicode_category(uint32_t cp);
const char *lm_unicode_category_name(lm_unicode_category_id cat); /* "Lu", "Nd" ... */
const char *lm_unicode_version(void);                              /* "16.0.0" */

int lm_unicode_is_letter(uint32_t cp);      /* \p{L}: Lu Ll Lt Lm Lo */
int lm_unicode_is_number(uint32_t cp);      /* \p{N}: Nd Nl No */
int lm_unicode_is_punctuation(uint32_t cp); /* \p{P}: Pc Pd Ps Pe Pi Pf Po */
int lm_unicode_is_symbol(uint32_t cp);      /* \p{S}: Sm Sc Sk So */
int lm_unicode_is_mark(uint32_t cp);        /* \p{M}: Mn Mc Me */
/* The White_Space property: regex \s in Oniguruma (HF tokenizers) and the
 * Rust regex crate, and Rust's char::is_whitespace (HF's BERT normalizer and
 * pre-tokenizer).  Python's str.isspace() differs only by also accepting
 * U+001C..U+001F; Python BERT's _is_whitespace is narrower (space, \t, \n,
 * \r and Zs only: U+000B, U+000C, U+0085, U+2028 and U+2029 are not). */
int lm_unicode_is_whitespace(uint32_t cp);
/* BERT's _is_control: any C* category (Cc Cf Cs Co Cn) except \t \n \r,
 * which BERT counts as whitespace.  HF's BertNormalizer agrees. */
int lm_unicode_is_control(uint32_t cp);
/* BERT's _is_punctuation: \p{P}, plus every ASCII non-alphanumeric printable
 * character ("$", "+", "<", "^", "`" ... are symbols in Unicode). */
int lm_unicode_is_bert_punctuation(uint32_t cp);
/* BERT's _is_chinese_char: the CJK Unified Ideograph blocks it lists
 * (U+4E00..9FFF, 3400..4DBF, 20000..2A6DF, 2A700..2B73F, 2B740..2B81F,
 * 2B820..2CEAF, F900..FAFF, 2F800..2FA1F); not kana or hangul. */
int lm_unicode_is_cjk(uint32_t cp);

#ifdef __cplusplus
}
#endif
#endif
