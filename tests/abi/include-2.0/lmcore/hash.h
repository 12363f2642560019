/* lmcore — a fast non-cryptographic 64-bit hash (for cache fingerprints). */
#ifndef LMCORE_HASH_H
#define LMCORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Hash of `len` bytes continuing from `seed` (pass the previous hash to chain). */
LM_API uint64_t lm_hash64(const void *data, size_t len, uint64_t seed);
#define LM_HASH_SEED 0x9E3779B97F4A7C15ull

#ifdef __cplusplus
}
#endif
#endif
