/* The device's graph slots (lmcore/device.h, ABI 2.1) on the CUDA backend
 * (backend_cuda.cu): stream capture in thread-local mode, replays that
 * read inputs uploaded between launches, and the refusals (a wait inside a
 * capture, misuse) that the trainer's fallback to eager steps relies on.
 * The trainer's use of them is tested by graph_parity.lua. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gpu_test_util.h"

static lm_device *device(void) { return &gt_be->device; }

static lm_device_counters counters_now(void) {
    lm_device_counters c;
    device()->ops->counters(device(), &c);
    return c;
}

static lm_step_state fresh_state(void) {
    lm_step_state s;
    memset(&s, 0, sizeof s);
    s.seed = 5;
    s.schedule.kind = LM_SCHEDULE_LINEAR;
    s.schedule.base_lr = 1e-3;
    s.schedule.warmup_steps = 2;
    s.schedule.total_steps = 10;
    s.clip_scale = 1.0f;
    return s;
}

/* The host's twin of what the graph below records. */
static void host_step(lm_step_state *s, float loss) {
    lm_step_schedule(s);
    s->loss = loss;
    lm_step_micro_batch_end(s, 1.0, 2.0, 1);
    lm_step_finish(s);
}

START_TEST(test_graph_slots) {
    const lm_device_ops *ops = device()->ops;
    ck_assert_uint_ge(ops->struct_size, offsetof(lm_device_ops, graph_destroy) + sizeof(void *));
    ck_assert(ops->graph_begin && ops->graph_end && ops->graph_launch && ops->graph_destroy);
    lm_backend *cpu = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&cpu, 1), LM_OK);
    const lm_device_ops *cpu_ops = cpu->device.ops;
    ck_assert(!cpu_ops->graph_begin && !cpu_ops->graph_end && !cpu_ops->graph_launch && !cpu_ops->graph_destroy);
    lm_backend_release(cpu);
}
END_TEST

/* schedule, micro_batch_end and finish captured once and launched 6 times,
 * the loss uploaded into the state before each launch (the input that
 * changes): the state equals 6 host steps bit for bit, and no launch waits. */
START_TEST(test_graph_replays_with_inputs_uploaded_between) {
    enum { LAUNCHES = 6 };
    lm_device *dev = device();
    lm_step_state start = fresh_state(), host = fresh_state(), got;
    lm_step_state *d_state = gt_dev_step_state(gt_be, &start);
    gt_sync(gt_be, "the state's upload");
    ck_assert_int_eq(dev->ops->graph_begin(dev), LM_OK);
    ck_assert_int_eq(dev->ops->step_schedule(dev, d_state), LM_OK);
    ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, d_state, 1.0, 2.0, 1), LM_OK);
    ck_assert_int_eq(dev->ops->step_finish(dev, d_state), LM_OK);
    lm_device_graph *graph = NULL;
    ck_assert_msg(dev->ops->graph_end(dev, &graph) == LM_OK, "%s", lm_error_message());
    ck_assert_ptr_nonnull(graph);
    gt_dev_step_state_download(gt_be, &got, d_state);
    ck_assert_int_eq(got.step, 0); /* recorded, not run */

    const lm_device_counters before = counters_now();
    for (int i = 0; i < LAUNCHES; i++) {
        float loss = 0.25f * (float)(i + 1); /* a local that changes right after the upload */
        ck_assert_int_eq(dev->ops->upload(dev, &d_state->loss, &loss, sizeof loss), LM_OK);
        loss = NAN;
        ck_assert_msg(dev->ops->graph_launch(dev, graph) == LM_OK, "%s", lm_error_message());
        host_step(&host, 0.25f * (float)(i + 1));
    }
    const lm_device_counters after = counters_now();
    ck_assert_uint_eq(after.syncs, before.syncs);
    ck_assert_uint_eq(after.downloads, before.downloads);
    gt_dev_step_state_download(gt_be, &got, d_state);
    ck_assert_int_eq(got.step, LAUNCHES);
    ck_assert_msg(got.lr == host.lr && got.step_loss == host.step_loss &&
                      got.loss_sums[LM_LOSS_SUM_RUN] == host.loss_sums[LM_LOSS_SUM_RUN],
                  "graph: lr %.17g step_loss %.17g run sum %.17g; host: %.17g %.17g %.17g", got.lr, got.step_loss,
                  got.loss_sums[0], host.lr, host.step_loss, host.loss_sums[0]);
    printf("  %d launches of a captured step, inputs uploaded between them: 0 waits, the host's bits\n", LAUNCHES);
    dev->ops->graph_destroy(dev, graph);
    ck_assert_int_eq(dev->ops->check(dev), LM_OK);
    gt_dev_free(gt_be, d_state);
}
END_TEST

/* A host read or a sync inside a capture is refused, naming the capture;
 * graph_end then reports the capture as failed, hands out no graph, none of
 * the recorded work has run, and the device works as before. */
START_TEST(test_graph_refuses_waits_inside) {
    lm_device *dev = device();
    lm_step_state start = fresh_state(), got;
    lm_step_state *d_state = gt_dev_step_state(gt_be, &start);
    gt_sync(gt_be, "the state's upload");
    ck_assert_int_eq(dev->ops->graph_begin(dev), LM_OK);
    ck_assert_int_eq(dev->ops->step_finish(dev, d_state), LM_OK);
    ck_assert_int_eq(dev->ops->download(dev, &got, d_state, sizeof got), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "captured into a CUDA graph"), "%s", lm_error_message());
    ck_assert_int_eq(dev->ops->sync(dev), LM_ERR_INVALID);
    lm_device_graph *graph = (lm_device_graph *)(void *)&start; /* must come back NULL */
    ck_assert_int_ne(dev->ops->graph_end(dev, &graph), LM_OK);
    printf("  a download inside a capture: %s\n", lm_error_message());
    ck_assert_msg(strstr(lm_error_message(), "CUDA graph capture failed") && strstr(lm_error_message(), "download"),
                  "%s", lm_error_message());
    ck_assert_ptr_null(graph);
    ck_assert_msg(dev->ops->check(dev) == LM_OK, "the failure was reported twice: %s", lm_error_message());
    gt_dev_step_state_download(gt_be, &got, d_state);
    ck_assert_int_eq(got.step, 0);
    ck_assert_int_eq(dev->ops->step_finish(dev, d_state), LM_OK); /* eagerly, as the trainer then does */
    gt_dev_step_state_download(gt_be, &got, d_state);
    ck_assert_int_eq(got.step, 1);
    gt_dev_free(gt_be, d_state);
}
END_TEST

START_TEST(test_graph_misuse) {
    lm_device *dev = device();
    lm_device_graph *graph = NULL;
    ck_assert_int_eq(dev->ops->graph_end(dev, &graph), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "no capture is open"), "%s", lm_error_message());
    ck_assert_int_eq(dev->ops->graph_launch(dev, NULL), LM_ERR_INVALID);
    ck_assert_int_eq(dev->ops->graph_begin(dev), LM_OK);
    ck_assert_int_eq(dev->ops->graph_begin(dev), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "already open"), "%s", lm_error_message());
    ck_assert_int_eq(dev->ops->graph_end(dev, &graph), LM_OK); /* an empty capture is a graph */
    ck_assert_ptr_nonnull(graph);
    ck_assert_int_eq(dev->ops->graph_launch(dev, graph), LM_OK);
    dev->ops->graph_destroy(dev, graph);
    dev->ops->graph_destroy(dev, NULL);
    ck_assert_int_eq(dev->ops->sync(dev), LM_OK);
}
END_TEST

Suite *gpu_graph_suite(void) {
    Suite *s = suite_create("cuda graphs");
    TCase *tc = tcase_create("device graph slots");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_graph_slots);
    tcase_add_test(tc, test_graph_replays_with_inputs_uploaded_between);
    tcase_add_test(tc, test_graph_refuses_waits_inside);
    tcase_add_test(tc, test_graph_misuse);
    suite_add_tcase(s, tc);
    return s;
}
