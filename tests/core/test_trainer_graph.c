/* The life of a step part's CUDA graph (core/train/trainer_graph_plan.c),
 * as the trainer's sequence of keys gives it: warm-up, capture, replay,
 * shape changes, the epoch's shorter last batch, host work inside a step,
 * a failed capture, a full table.  The decisions do no device work, so
 * they are tested here on any machine; the GPU test
 * (tests/gpu/graph_parity.lua) checks that the graphs train the same bits. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_graph.h"

enum { E = TRAINER_GRAPH_EAGER, C = TRAINER_GRAPH_CAPTURE, R = TRAINER_GRAPH_REPLAY };

/* Stand-ins for graphs: the table only keeps and hands back the pointers. */
static int graph_tokens[64];
#define FAKE_GRAPH(i) ((lm_device_graph *)(void *)&graph_tokens[(i)])

static trainer_graphs enabled_table(void) {
    trainer_graphs g;
    memset(&g, 0, sizeof g);
    g.enabled = 1;
    return g;
}

/* What the trainer does with a decision: a capture stores its graph. */
static int step_part(trainer_graphs *g, uint64_t key, int must_run_eagerly) {
    const trainer_graph_action a = trainer_graphs_decide(g, key, must_run_eagerly);
    if (a == TRAINER_GRAPH_CAPTURE) trainer_graphs_store(g, key, FAKE_GRAPH(key % 64));
    if (a == TRAINER_GRAPH_REPLAY) ck_assert_ptr_eq(trainer_graphs_find(g, key), FAKE_GRAPH(key % 64));
    return (int)a;
}

START_TEST(off_is_always_eager) {
    trainer_graphs g;
    memset(&g, 0, sizeof g); /* cuda_graph=off, or a device without graph slots */
    for (int i = 0; i < 5; i++) ck_assert_int_eq(step_part(&g, 7, 0), E);
    ck_assert_int_eq(g.n_entries, 0);
    ck_assert_uint_eq(g.eager, 5);
    ck_assert_uint_eq(g.captured + g.replayed, 0);
}
END_TEST

START_TEST(warm_up_then_capture_then_replay) {
    trainer_graphs g = enabled_table();
    const int expect[] = {E, C, R, R, R};
    for (int i = 0; i < 5; i++) ck_assert_int_eq(step_part(&g, 11, 0), expect[i]);
    ck_assert_uint_eq(g.eager, 1);
    ck_assert_uint_eq(g.captured, 1);
    ck_assert_uint_eq(g.replayed, 3);
}
END_TEST

/* grad_accum = 3: the first micro-batch writes the gradients, the other two
 * add to them (another key), then the update: three keys, each with its own
 * life, interleaved. */
START_TEST(parts_of_a_step_have_their_own_graphs) {
    trainer_graphs g = enabled_table();
    const uint64_t first = trainer_graphs_key(TRAINER_GRAPH_MICRO_BATCH, 99, 0);
    const uint64_t accumulate = trainer_graphs_key(TRAINER_GRAPH_MICRO_BATCH, 99, 1);
    const uint64_t update = trainer_graphs_key(TRAINER_GRAPH_UPDATE, 0, 0);
    ck_assert(first != accumulate && first != update && accumulate != update);
    /* step 1: warm-up of first and update; accumulate is warmed up by its
     * first occurrence and captured by its second, in the same step */
    ck_assert_int_eq(step_part(&g, first, 0), E);
    ck_assert_int_eq(step_part(&g, accumulate, 0), E);
    ck_assert_int_eq(step_part(&g, accumulate, 0), C);
    ck_assert_int_eq(step_part(&g, update, 0), E);
    /* step 2 */
    ck_assert_int_eq(step_part(&g, first, 0), C);
    ck_assert_int_eq(step_part(&g, accumulate, 0), R);
    ck_assert_int_eq(step_part(&g, accumulate, 0), R);
    ck_assert_int_eq(step_part(&g, update, 0), C);
    /* step 3 on: replays only */
    for (int step = 3; step <= 5; step++) {
        ck_assert_int_eq(step_part(&g, first, 0), R);
        ck_assert_int_eq(step_part(&g, accumulate, 0), R);
        ck_assert_int_eq(step_part(&g, accumulate, 0), R);
        ck_assert_int_eq(step_part(&g, update, 0), R);
    }
    ck_assert_uint_eq(g.captured, 3);
    ck_assert_int_eq(g.n_entries, 3);
}
END_TEST

/* Epochs of 3 steps whose last batch is shorter (another signature): the
 * full batches replay from epoch 1's third step on; the short one is eager
 * in epoch 1, captured in epoch 2 and replayed from epoch 3. */
START_TEST(the_last_shorter_batch_gets_its_own_graph) {
    trainer_graphs g = enabled_table();
    const uint64_t full = trainer_graphs_key(TRAINER_GRAPH_MICRO_BATCH, 1000, 0);
    const uint64_t last = trainer_graphs_key(TRAINER_GRAPH_MICRO_BATCH, 2000, 0);
    const int expect_full[3][2] = {{E, C}, {R, R}, {R, R}};
    const int expect_last[3] = {E, C, R};
    for (int epoch = 0; epoch < 3; epoch++) {
        ck_assert_int_eq(step_part(&g, full, 0), expect_full[epoch][0]);
        ck_assert_int_eq(step_part(&g, full, 0), expect_full[epoch][1]);
        ck_assert_int_eq(step_part(&g, last, 0), expect_last[epoch]);
    }
}
END_TEST

/* A new shape mid-run (a buffer that grew for a larger evaluation batch
 * moves the activations: a new signature) starts its own life; the keys
 * before it keep their graphs. */
START_TEST(a_shape_change_warms_up_again) {
    trainer_graphs g = enabled_table();
    ck_assert_int_eq(step_part(&g, 5, 0), E);
    ck_assert_int_eq(step_part(&g, 5, 0), C);
    ck_assert_int_eq(step_part(&g, 6, 0), E);
    ck_assert_int_eq(step_part(&g, 6, 0), C);
    ck_assert_int_eq(step_part(&g, 6, 0), R);
    ck_assert_int_eq(step_part(&g, 5, 0), R);
}
END_TEST

/* An update with host work inside (a step whose micro-batches had nothing
 * to score zeroes the gradients) runs eagerly and does not count as an
 * occurrence: the key's life goes on where it was. */
START_TEST(host_work_inside_runs_eagerly) {
    trainer_graphs g = enabled_table();
    ck_assert_int_eq(step_part(&g, 8, 1), E);
    ck_assert_int_eq(g.n_entries, 0);
    ck_assert_int_eq(step_part(&g, 8, 0), E); /* still its warm-up */
    ck_assert_int_eq(step_part(&g, 8, 0), C);
    ck_assert_int_eq(step_part(&g, 8, 1), E);
    ck_assert_int_eq(step_part(&g, 8, 0), R);
}
END_TEST

/* A failed capture or launch: eager for the rest of the run, graphs or not,
 * and the warning is said once. */
START_TEST(a_failure_turns_graphs_off) {
    trainer_graphs g = enabled_table();
    ck_assert_int_eq(step_part(&g, 3, 0), E);
    ck_assert_int_eq(step_part(&g, 3, 0), C);
    ck_assert_int_eq(step_part(&g, 4, 0), E);
    ck_assert_int_eq(trainer_graphs_decide(&g, 4, 0), C);
    ck_assert_int_eq(trainer_graphs_fail(&g), 1); /* the capture of 4 failed: warn */
    ck_assert_int_eq(trainer_graphs_fail(&g), 0); /* once */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(step_part(&g, 3, 0), E);
        ck_assert_int_eq(step_part(&g, 4, 0), E);
    }
}
END_TEST

START_TEST(a_full_table_runs_new_keys_eagerly) {
    trainer_graphs g = enabled_table();
    for (uint64_t k = 100; k < 100 + TRAINER_GRAPHS_MAX; k++) ck_assert_int_eq(step_part(&g, k, 0), E);
    ck_assert_int_eq(g.n_entries, TRAINER_GRAPHS_MAX);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(step_part(&g, 5000, 0), E); /* no room: never captured */
    ck_assert_int_eq(step_part(&g, 100, 0), C);                                 /* the kept keys go on */
    ck_assert_int_eq(step_part(&g, 100, 0), R);
}
END_TEST

START_TEST(keys_tell_parts_and_values_apart) {
    const uint64_t k = trainer_graphs_key(TRAINER_GRAPH_MICRO_BATCH, 1, 0);
    ck_assert_uint_eq(k, trainer_graphs_key(TRAINER_GRAPH_MICRO_BATCH, 1, 0));
    ck_assert(k != trainer_graphs_key(TRAINER_GRAPH_UPDATE, 1, 0));
    ck_assert(k != trainer_graphs_key(TRAINER_GRAPH_MICRO_BATCH, 2, 0));
    ck_assert(k != trainer_graphs_key(TRAINER_GRAPH_MICRO_BATCH, 1, 1));
}
END_TEST

/* clear() hands every graph to the device's graph_destroy, once. */
static int destroyed[64];
static void count_destroy(lm_device *dev, lm_device_graph *graph) {
    (void)dev;
    destroyed[(int *)(void *)graph - graph_tokens]++;
}

START_TEST(clear_destroys_every_graph_once) {
    trainer_graphs g = enabled_table();
    for (uint64_t k = 1; k <= 3; k++) {
        step_part(&g, k, 0);
        step_part(&g, k, 0); /* captured */
    }
    step_part(&g, 4, 0); /* warmed up, no graph */
    lm_device_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.struct_size = (uint32_t)sizeof ops;
    ops.graph_destroy = count_destroy;
    lm_device dev;
    memset(&dev, 0, sizeof dev);
    dev.ops = &ops;
    memset(destroyed, 0, sizeof destroyed);
    trainer_graphs_clear(&g, &dev);
    for (int i = 0; i < 64; i++) ck_assert_int_eq(destroyed[i], i >= 1 && i <= 3 ? 1 : 0);
    ck_assert_int_eq(g.n_entries, 0);
    ck_assert_ptr_null(trainer_graphs_find(&g, 1));
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("trainer graphs");
    TCase *tc = tcase_create("decisions");
    tcase_add_test(tc, off_is_always_eager);
    tcase_add_test(tc, warm_up_then_capture_then_replay);
    tcase_add_test(tc, parts_of_a_step_have_their_own_graphs);
    tcase_add_test(tc, the_last_shorter_batch_gets_its_own_graph);
    tcase_add_test(tc, a_shape_change_warms_up_again);
    tcase_add_test(tc, host_work_inside_runs_eagerly);
    tcase_add_test(tc, a_failure_turns_graphs_off);
    tcase_add_test(tc, a_full_table_runs_new_keys_eagerly);
    tcase_add_test(tc, keys_tell_parts_and_values_apart);
    tcase_add_test(tc, clear_destroys_every_graph_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
