/* The GPT-2 split pattern, by hand (see bpe_pretok.h for the pattern). */
#include "bpe_pretok.h"

#include "unicode.h"

enum { CLASS_LETTER = 0, CLASS_NUMBER = 1, CLASS_SPACE = 2, CLASS_OTHER = 3 };

/* ASCII classes: letters, digits, the six \s characters, everything else. */
static const uint8_t ascii_class[128] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 3, 3, /* \t \n \v \f \r */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* space */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, /* 0-9 */
    3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* A-O */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, /* P-Z */
    3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* a-o */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, /* p-z */
};

/* Class of the character at s[i] and its length in bytes. */
static inline int char_class(const unsigned char *s, size_t len, size_t i, size_t *n) {
    unsigned char c = s[i];
    if (c < 0x80) {
        *n = 1;
        return ascii_class[c];
    }
    uint32_t cp;
    int k = lm_utf8_decode(s + i, len - i, &cp);
    if (k <= 0) { /* an invalid byte: a character of its own, "other" */
        *n = 1;
        return CLASS_OTHER;
    }
    *n = (size_t)k;
    if (lm_unicode_is_whitespace(cp)) return CLASS_SPACE;
    lm_unicode_category_id cat = lm_unicode_category(cp);
    if (cat >= LM_UC_LU && cat <= LM_UC_LO) return CLASS_LETTER;
    if (cat >= LM_UC_ND && cat <= LM_UC_NO) return CLASS_NUMBER;
    return CLASS_OTHER;
}

/* End of the run of characters of class `cls` starting at i. */
static size_t run_end(const unsigned char *s, size_t len, size_t i, int cls) {
    while (i < len) {
        size_t n;
        if (s[i] < 0x80) { /* the common case, without a call */
            if (ascii_class[s[i]] != cls) break;
            i++;
            continue;
        }
        if (char_class(s, len, i, &n) != cls) break;
        i += n;
    }
    return i;
}

size_t bpe_pretok_next(const unsigned char *s, size_t len, size_t pos) {
    /* 's|'t|'re|'ve|'m|'ll|'d (ASCII, case-sensitive, like the pattern). */
    if (s[pos] == '\'' && pos + 1 < len) {
        unsigned char c1 = s[pos + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
        if (pos + 2 < len) {
            unsigned char c2 = s[pos + 2];
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
                return pos + 3;
        }
    }
    size_t n0;
    int cls0 = char_class(s, len, pos, &n0);
    /* ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional ASCII space,
     * then a run of one class. */
    if (s[pos] == ' ' && pos + 1 < len) {
        size_t n1;
        int cls1 = char_class(s, len, pos + 1, &n1);
        if (cls1 != CLASS_SPACE) return run_end(s, len, pos + 1 + n1, cls1);
    }
    if (cls0 != CLASS_SPACE) return run_end(s, len, pos + n0, cls0);
    /* `\s+(?!\S)|\s+`: the whole run at the end of the text; else the run
     * minus its last character (which then prefixes the next piece), unless
     * the run is a single character. */
    size_t last_start = pos, i = pos + n0;
    while (i < len) {
        size_t n;
        if (char_class(s, len, i, &n) != CLASS_SPACE) break;
        last_start = i;
        i += n;
    }
    if (i == len || last_start == pos) return i;
    return last_start;
}

/* GPT-2's bytes_to_unicode(), precomputed: printable Latin-1 bytes stand for
 * themselves; the 68 others get U+0100 + their rank among them. */
static const uint16_t byte_codepoint[256] = {
    0x100, 0x101, 0x102, 0x103, 0x104, 0x105, 0x106, 0x107, 0x108, 0x109, 0x10A, 0x10B,
    0x10C, 0x10D, 0x10E, 0x10F, 0x110, 0x111, 0x112, 0x113, 0x114, 0x115, 0x116, 0x117,
    0x118, 0x119, 0x11A, 0x11B, 0x11C, 0x11D, 0x11E, 0x11F, 0x120, 0x021, 0x022, 0x023,
    0x024, 0x025, 0x026, 0x027, 0x028, 0x029, 0x02A, 0x02B, 0x02C, 0x02D, 0x02E, 0x02F,
    0x030, 0x031, 0x032, 0x033, 0x034, 0x035, 0x036, 0x037, 0x038, 0x039, 0x03A, 0x03B,
    0x03C, 0x03D, 0x03E, 0x03F, 0x040, 0x041, 0x042, 0x043, 0x044, 0x045, 0x046, 0x047,
    0x048, 0x049, 0x04A, 0x04B, 0x04C, 0x04D, 0x04E, 0x04F, 0x050, 0x051, 0x052, 0x053,
    0x054, 0x055, 0x056, 0x057, 0x058, 0x059, 0x05A, 0x05B, 0x05C, 0x05D, 0x05E, 0x05F,
    0x060, 0x061, 0x062, 0x063, 0x064, 0x065, 0x066, 0x067, 0x068, 0x069, 0x06A, 0x06B,
    0x06C, 0x06D, 0x06E, 0x06F, 0x070, 0x071, 0x072, 0x073, 0x074, 0x075, 0x076, 0x077,
    0x078, 0x079, 0x07A, 0x07B, 0x07C, 0x07D, 0x07E, 0x121, 0x122, 0x123, 0x124, 0x125,
    0x126, 0x127, 0x128, 0x129, 0x12A, 0x12B, 0x12C, 0x12D, 0x12E, 0x12F, 0x130, 0x131,
    0x132, 0x133, 0x134, 0x135, 0x136, 0x137, 0x138, 0x139, 0x13A, 0x13B, 0x13C, 0x13D,
    0x13E, 0x13F, 0x140, 0x141, 0x142, 0x0A1, 0x0A2, 0x0A3, 0x0A4, 0x0A5, 0x0A6, 0x0A7,
    0x0A8, 0x0A9, 0x0AA, 0x0AB, 0x0AC, 0x143, 0x0AE, 0x0AF, 0x0B0, 0x0B1, 0x0B2, 0x0B3,
    0x0B4, 0x0B5, 0x0B6, 0x0B7, 0x0B8, 0x0B9, 0x0BA, 0x0BB, 0x0BC, 0x0BD, 0x0BE, 0x0BF,
    0x0C0, 0x0C1, 0x0C2, 0x0C3, 0x0C4, 0x0C5, 0x0C6, 0x0C7, 0x0C8, 0x0C9, 0x0CA, 0x0CB,
    0x0CC, 0x0CD, 0x0CE, 0x0CF, 0x0D0, 0x0D1, 0x0D2, 0x0D3, 0x0D4, 0x0D5, 0x0D6, 0x0D7,
    0x0D8, 0x0D9, 0x0DA, 0x0DB, 0x0DC, 0x0DD, 0x0DE, 0x0DF, 0x0E0, 0x0E1, 0x0E2, 0x0E3,
    0x0E4, 0x0E5, 0x0E6, 0x0E7, 0x0E8, 0x0E9, 0x0EA, 0x0EB, 0x0EC, 0x0ED, 0x0EE, 0x0EF,
    0x0F0, 0x0F1, 0x0F2, 0x0F3, 0x0F4, 0x0F5, 0x0F6, 0x0F7, 0x0F8, 0x0F9, 0x0FA, 0x0FB,
    0x0FC, 0x0FD, 0x0FE, 0x0FF,
};

uint32_t bpe_byte_to_codepoint(unsigned char byte) { return byte_codepoint[byte]; }

int bpe_codepoint_to_byte(uint32_t cp) {
    /* Stand-ins are U+0021..U+00FF (themselves) and U+0100..U+0143. */
    if (cp < 0x100) return byte_codepoint[cp] == cp ? (int)cp : -1;
    if (cp >= 0x100 + 68) return -1;
    for (unsigned b = 0; b < 256; b++)
        if (byte_codepoint[b] == cp) return (int)b;
    return -1;
}

size_t bpe_byte_to_utf8(unsigned char byte, char out[2]) {
    uint32_t cp = byte_codepoint[byte];
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}
