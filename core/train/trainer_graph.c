/* The trainer's step parts as CUDA graphs (trainer_graph.h): whether a run
 * uses them, and the micro-batch and update parts run through the table's
 * decisions, falling back to the eager parts of trainer.c. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "trainer_internal.h"

static int device_has_graphs(const lm_device *dev) {
    const lm_device_ops *ops = dev->ops;
    return ops->struct_size >= offsetof(lm_device_ops, graph_destroy) + sizeof ops->graph_destroy &&
           ops->graph_begin && ops->graph_end && ops->graph_launch && ops->graph_destroy;
}

void trainer_graphs_setup(lm_trainer *t) {
    memset(&t->graphs, 0, sizeof t->graphs);
    if (!t->s.cuda_graph) return; /* off: the step as it always ran */
    /* auto: graphs where everything they need is there; otherwise the
     * eager step, which is the same step.  The CPU device has no graph
     * slots, so a CPU run never gets here past the first test. */
    const char *why_not = NULL;
    if (!device_has_graphs(t->dev)) why_not = "the device cannot capture";
    else if (!trainer_arch(t)->upload_batch) why_not = "the model cannot stage its batches (no upload_batch)";
    else if (t->comm.plugin) why_not = "data parallel runs average gradients through the communicator inside the step";
    if (why_not) {
        if (t->dev->type != LM_DEVICE_CPU)
            lm_log(LM_LOG_INFO, "cuda_graph=auto: eager steps (%s)", why_not);
        return;
    }
    t->graphs.enabled = 1;
    lm_log(LM_LOG_INFO, "cuda_graph=auto: each step part is captured as a CUDA graph on its second occurrence and "
                        "replayed after");
}

void trainer_graphs_destroy(lm_trainer *t) { trainer_graphs_clear(&t->graphs, t->dev); }

/* A capture or launch failed: graphs off for the rest of the run, said
 * once.  `reason` is the failure's message. */
static void give_up(lm_trainer *t, const char *reason) {
    if (trainer_graphs_fail(&t->graphs))
        lm_log(LM_LOG_WARN, "cuda_graph=auto: %s; training goes on with eager steps (the same numbers, more "
                            "launches); cuda_graph=off silences this",
               reason);
}

/* Runs `part` (trainer_run_micro_batch or trainer_run_update) inside a
 * capture, and launches the graph.  When the capture fails, graphs are
 * given up and *ran is 0: none of the part's work ran, and the caller runs
 * it eagerly, after staging again what the capture consumed (an error that
 * is the run's, not the capture's, comes back there again and is
 * reported). */
typedef lm_status (*step_part_fn)(lm_trainer *t, const lm_batch *batch);

static lm_status capture_and_launch(lm_trainer *t, uint64_t key, step_part_fn part, const lm_batch *batch, int *ran) {
    lm_device *dev = t->dev;
    *ran = 0;
    char reason[512];
    /* A failure of the work before the capture is the run's, not the
     * capture's: reported, not answered with eager steps. */
    LM_TRY(dev->ops->check(dev));
    lm_status status = dev->ops->graph_begin(dev);
    if (status != LM_OK) {
        snprintf(reason, sizeof reason, "%s", lm_error_message());
        give_up(t, reason);
        return LM_OK;
    }
    status = part(t, batch);
    if (status != LM_OK) snprintf(reason, sizeof reason, "%s", lm_error_message());
    lm_device_graph *graph = NULL;
    const lm_status ended = dev->ops->graph_end(dev, &graph); /* always: it closes the capture */
    if (status == LM_OK && ended != LM_OK) snprintf(reason, sizeof reason, "%s", lm_error_message());
    if (status != LM_OK || ended != LM_OK) {
        if (graph) dev->ops->graph_destroy(dev, graph);
        give_up(t, reason);
        return LM_OK;
    }
    trainer_graphs_store(&t->graphs, key, graph);
    LM_TRY(dev->ops->graph_launch(dev, graph)); /* a launch that fails is a device failure */
    *ran = 1;
    return LM_OK;
}

/* Launches the graph of `key`.  *ran 0: the graph can no longer run (its
 * GEMM pointer arrays were freed: LM_ERR_UNSUPPORTED), graphs are given up
 * and the caller runs the part eagerly; any other failure is the device's,
 * returned. */
static lm_status replay(lm_trainer *t, uint64_t key, int *ran) {
    *ran = 0;
    const lm_status status = t->dev->ops->graph_launch(t->dev, trainer_graphs_find(&t->graphs, key));
    if (status == LM_ERR_UNSUPPORTED) {
        give_up(t, lm_error_message());
        return LM_OK;
    }
    LM_TRY(status);
    *ran = 1;
    return LM_OK;
}

/* A replay ran the model's forward and backward without calling them: the
 * batch it staged is dropped, so that no later forward takes it. */
static lm_status forget_staged(lm_trainer *t) {
    uint64_t unused = 0;
    return trainer_arch(t)->upload_batch(t->parts.model.self, NULL, &unused);
}

lm_status trainer_graph_micro_batch(lm_trainer *t, const lm_batch *batch) {
    const lm_architecture_vtable *arch = trainer_arch(t);
    uint64_t signature = 0;
    LM_TRY(arch->upload_batch(t->parts.model.self, batch, &signature));
    const uint64_t key = trainer_graphs_key(TRAINER_GRAPH_MICRO_BATCH, signature, (uint64_t)t->grads_written);
    int ran = 0;
    switch (trainer_graphs_decide(&t->graphs, key, 0)) {
    case TRAINER_GRAPH_REPLAY:
        LM_TRY(replay(t, key, &ran));
        if (ran) return forget_staged(t);
        break; /* the batch is still staged: eagerly below */
    case TRAINER_GRAPH_CAPTURE:
        LM_TRY(capture_and_launch(t, key, trainer_run_micro_batch, batch, &ran));
        if (ran) return LM_OK;
        /* The capture's forward took the staged batch and none of it ran. */
        LM_TRY(arch->upload_batch(t->parts.model.self, batch, &signature));
        break;
    case TRAINER_GRAPH_EAGER: break;
    }
    return trainer_run_micro_batch(t, batch);
}

lm_status trainer_graph_update(lm_trainer *t, int must_run_eagerly) {
    const uint64_t key = trainer_graphs_key(TRAINER_GRAPH_UPDATE, (uint64_t)t->plan.host_schedule, 0);
    int ran = 0;
    switch (trainer_graphs_decide(&t->graphs, key, must_run_eagerly)) {
    case TRAINER_GRAPH_REPLAY:
        LM_TRY(replay(t, key, &ran));
        if (ran) return LM_OK;
        break;
    case TRAINER_GRAPH_CAPTURE:
        LM_TRY(capture_and_launch(t, key, trainer_run_update, NULL, &ran));
        if (ran) return LM_OK;
        break;
    case TRAINER_GRAPH_EAGER: break;
    }
    return trainer_run_update(t, NULL);
}

void lm_trainer_graph_stats(const lm_trainer *t, lm_trainer_graph_counts *out) {
    memset(out, 0, sizeof *out);
    out->enabled = t->graphs.enabled && !t->graphs.failed;
    out->eager = t->graphs.eager;
    out->captured = t->graphs.captured;
    out->replayed = t->graphs.replayed;
}
