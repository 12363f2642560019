/* lmkernels — LM_CPU_WIDE_CLONES, for element-wise loops in which every
 * element goes through the same IEEE operations whatever the vector width
 * (no reduction, no contraction): an AVX-512 clone picked at load time on
 * CPUs that have it, next to the build's baseline code.  Same bits, twice
 * the lanes; the dropout mask (Philox, integer multiplies) runs twice as
 * fast.  A header of its own, without the kernels' internals, so that a
 * plugin's CPU kernel (optimizer_adamw) can use it without linking them. */
#ifndef LM_KERNELS_CPU_WIDE_CLONES_H
#define LM_KERNELS_CPU_WIDE_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__) && \
    !defined(__AVX512F__) && !defined(LM_CPU_NO_CLONES)
#define LM_CPU_WIDE_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define LM_CPU_WIDE_CLONES
#endif

#endif
