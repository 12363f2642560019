/* The training step as captured CUDA graphs (cuda_graph=auto|off).
 *
 * A step is replayed in parts, each a graph keyed by what decides its
 * kernels and their arguments:
 *   - a micro-batch: forward, step_micro_batch_end, backward; keyed by the
 *     model's batch signature (upload_batch: shape, arrays, buffer
 *     addresses) and whether it writes or adds to the gradients;
 *   - the update: the schedule, the optimizer's step, step_finish; keyed by
 *     whether the schedule runs on the device.
 * The batch and the micro-batch counter are uploaded before the launch,
 * into the fixed device addresses the graph reads (staged through the
 * backend's pinned ring, in stream order after the previous launch, so the
 * host never waits).  Clipping (three kernels) runs eagerly between them,
 * where clip_grad_norm() is called.
 *
 * Each key goes through the same life: its first occurrence runs eagerly
 * (the warm-up: activations, cuBLASLt plans, GEMM pointer arrays and the
 * optimizer's lazy state are made outside any capture), its second is
 * captured and launched, later ones only launch.  A capture or launch that
 * fails turns graphs off for the rest of the run (one warning) and the part
 * runs eagerly, so the run goes on with the same numbers.  The decisions
 * are a pure function of the table and the key (trainer_graphs_decide), so
 * they are tested on the CPU (tests/core/test_trainer_graph.c). */
#ifndef LMCORE_TRAINER_GRAPH_H
#define LMCORE_TRAINER_GRAPH_H

#include <stdint.h>

#include "lmcore/device.h"

/* Distinct keys kept at most: a GPT-2 or BERT step needs 2 or 3 (first
 * and accumulating micro-batch, update) and the epoch's shorter last batch
 * 1 or 2 more (BERT's masked batches share a key per bucket of head rows,
 * usually one or two: plugins/arch_bert/bert_head.c); past this many, new
 * keys run eagerly rather than capture graphs that may never replay. */
#define TRAINER_GRAPHS_MAX 16

typedef enum trainer_graph_action {
    TRAINER_GRAPH_EAGER = 0,   /* run the part's calls as they are */
    TRAINER_GRAPH_CAPTURE = 1, /* run them inside graph_begin/graph_end, then launch the graph */
    TRAINER_GRAPH_REPLAY = 2   /* launch the key's graph */
} trainer_graph_action;

typedef struct trainer_graph_entry {
    uint64_t key;
    int seen;                /* occurrences so far */
    lm_device_graph *graph;  /* once captured */
} trainer_graph_entry;

typedef struct trainer_graphs {
    int enabled;  /* cuda_graph=auto and everything it needs is there (trainer_graphs_setup) */
    int failed;   /* a capture or launch failed: eager from then on */
    int n_entries;
    trainer_graph_entry entries[TRAINER_GRAPHS_MAX];
    /* what happened, for tests and the end-of-run line */
    uint64_t eager, captured, replayed;
} trainer_graphs;

/* The parts of a step a graph stands for (mixed into the key). */
enum { TRAINER_GRAPH_MICRO_BATCH = 1, TRAINER_GRAPH_UPDATE = 2 };

/* What to do with the part of key `key`.  must_run_eagerly: this
 * occurrence has host work inside (the update of a step whose micro-batches
 * all had nothing to score zeroes the gradients first), or graphs are off.
 * Counts the occurrence; the entry of a CAPTURE gets its graph from
 * trainer_graphs_store (or trainer_graphs_fail). */
trainer_graph_action trainer_graphs_decide(trainer_graphs *g, uint64_t key, int must_run_eagerly);
/* The graph of `key` (NULL when it has none). */
lm_device_graph *trainer_graphs_find(const trainer_graphs *g, uint64_t key);
void trainer_graphs_store(trainer_graphs *g, uint64_t key, lm_device_graph *graph);
/* Graphs off for the rest of the run; returns 1 the first time (warn then). */
int trainer_graphs_fail(trainer_graphs *g);
/* A key from a part and up to two values. */
uint64_t trainer_graphs_key(int part, uint64_t a, uint64_t b);
/* Destroys every graph (dev may be NULL when none was made). */
void trainer_graphs_clear(trainer_graphs *g, lm_device *dev);

#endif
