/* UTF-8 coding and Unicode classes over the generated range table. */
#include "unicode.h"

#include "unicode_tables.h"

int lm_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    if (len == 0) return 0;
    unsigned c0 = s[0];
    if (c0 < 0x80) {
        *cp = c0;
        return 1;
    }
    /* The valid ranges of the second byte follow RFC 3629's table, which
     * excludes overlongs (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and
     * values above U+10FFFF (F4 90..BF). */
    size_t n;
    uint32_t value;
    unsigned lo = 0x80, hi = 0xBF;
    if (c0 >= 0xC2 && c0 <= 0xDF) {
        n = 2;
        value = c0 & 0x1F;
    } else if (c0 >= 0xE0 && c0 <= 0xEF) {
        n = 3;
        value = c0 & 0x0F;
        if (c0 == 0xE0) lo = 0xA0;
        if (c0 == 0xED) hi = 0x9F;
    } else if (c0 >= 0xF0 && c0 <= 0xF4) {
        n = 4;
        value = c0 & 0x07;
        if (c0 == 0xF0) lo = 0x90;
        if (c0 == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    if (len < n) return -1;
    if (s[1] < lo || s[1] > hi) return -1;
    value = (value << 6) | (s[1] & 0x3Fu);
    for (size_t i = 2; i < n; i++) {
        if ((s[i] & 0xC0u) != 0x80u) return -1;
        value = (value << 6) | (s[i] & 0x3Fu);
    }
    *cp = value;
    return (int)n;
}

size_t lm_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= 0x10FFFF) {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

int lm_utf8_valid(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int n = lm_utf8_decode(s + i, len - i, &cp);
        if (n <= 0) return 0;
        i += (size_t)n;
    }
    return 1;
}

lm_unicode_category_id lm_unicode_category(uint32_t cp) {
    if (cp < 256) return (lm_unicode_category_id)lm_unicode_latin1_category[cp];
    size_t lo = 0, hi = lm_unicode_category_range_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const lm_unicode_category_range *r = &lm_unicode_category_ranges[mid];
        if (cp < r->first) {
            hi = mid;
        } else if (cp > r->last) {
            lo = mid + 1;
        } else {
            return (lm_unicode_category_id)r->category;
        }
    }
    return LM_UC_CN;
}

const char *lm_unicode_category_name(lm_unicode_category_id cat) {
    static const char *const names[] = {"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd",
                                        "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm",
                                        "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
    if ((unsigned)cat >= sizeof(names) / sizeof(names[0])) return "??";
    return names[cat];
}

const char *lm_unicode_version(void) { return lm_unicode_tables_version; }

/* The categories of one major class are consecutive in lm_unicode_category_id. */
static int category_in(uint32_t cp, lm_unicode_category_id first, lm_unicode_category_id last) {
    lm_unicode_category_id c = lm_unicode_category(cp);
    return c >= first && c <= last;
}

int lm_unicode_is_letter(uint32_t cp) { return category_in(cp, LM_UC_LU, LM_UC_LO); }
int lm_unicode_is_number(uint32_t cp) { return category_in(cp, LM_UC_ND, LM_UC_NO); }
int lm_unicode_is_punctuation(uint32_t cp) { return category_in(cp, LM_UC_PC, LM_UC_PO); }
int lm_unicode_is_symbol(uint32_t cp) { return category_in(cp, LM_UC_SM, LM_UC_SO); }
int lm_unicode_is_mark(uint32_t cp) { return category_in(cp, LM_UC_MN, LM_UC_ME); }

int lm_unicode_is_whitespace(uint32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

int lm_unicode_is_control(uint32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return 0;
    lm_unicode_category_id c = lm_unicode_category(cp);
    return c == LM_UC_CN || c >= LM_UC_CC;
}

int lm_unicode_is_bert_punctuation(uint32_t cp) {
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
        (cp >= 123 && cp <= 126))
        return 1;
    return lm_unicode_is_punctuation(cp);
}

int lm_unicode_is_cjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}
