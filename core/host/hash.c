/* 64-bit hash for cache fingerprints: a simple, fast multiply-xorshift
 * over 8-byte words (wyhash-like mixing).  Not cryptographic: it detects
 * changed inputs, it does not resist adversaries. */
#include <string.h>

#include "lmcore/hash.h"

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
}

uint64_t lm_hash64(const void *data, size_t len, uint64_t seed) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t h = seed ^ (len * 0x9E3779B97F4A7C15ull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix64(h ^ w) + 0x9E3779B97F4A7C15ull;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    for (size_t i = 0; i < len; i++) tail |= (uint64_t)p[i] << (8 * i);
    h = mix64(h ^ tail ^ ((uint64_t)len << 56));
    return h;
}
