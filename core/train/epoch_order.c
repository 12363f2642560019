/* The order in which an epoch visits the training blocks: a Fisher-Yates
 * shuffle drawn from (seed, epoch) alone, so that a run resumed in the middle
 * of an epoch rebuilds the same order without saving it (trainer_resume.c),
 * and every rank of a data-parallel run holds the same order and takes its
 * own shard of each global batch (trainer_distributed.c). */
#include "trainer_internal.h"

void trainer_shuffle(lm_trainer *t, int64_t epoch) {
    size_t n = t->plan.train_blocks;
    for (size_t i = 0; i < n; i++) t->order[i] = i;
    uint64_t stream = LM_RNG_STREAM_SHUFFLE | ((uint64_t)epoch << 8);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = lm_rng_below(t->s.seed, stream, i, (uint32_t)(i + 1));
        size_t tmp = t->order[i];
        t->order[i] = t->order[j];
        t->order[j] = tmp;
    }
}
