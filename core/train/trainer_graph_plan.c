/* The graphs' decisions (trainer_graph.h): a table of keys and what each
 * has had, with no device work, so that the life of a key is tested on
 * any machine. */
#include <string.h>

#include "lmcore/hash.h"
#include "trainer_graph.h"

static trainer_graph_entry *find_entry(trainer_graphs *g, uint64_t key) {
    for (int i = 0; i < g->n_entries; i++)
        if (g->entries[i].key == key) return &g->entries[i];
    return NULL;
}

trainer_graph_action trainer_graphs_decide(trainer_graphs *g, uint64_t key, int must_run_eagerly) {
    if (!g->enabled || g->failed || must_run_eagerly) {
        g->eager++;
        return TRAINER_GRAPH_EAGER;
    }
    trainer_graph_entry *e = find_entry(g, key);
    if (!e) {
        /* A key seen for the first time: its warm-up, eagerly, so that
         * whatever its work makes on first use is made outside a capture.
         * A full table keeps its keys: a new one runs eagerly. */
        if (g->n_entries < TRAINER_GRAPHS_MAX) {
            e = &g->entries[g->n_entries++];
            e->key = key;
            e->seen = 1;
            e->graph = NULL;
        }
        g->eager++;
        return TRAINER_GRAPH_EAGER;
    }
    e->seen++;
    if (e->graph) {
        g->replayed++;
        return TRAINER_GRAPH_REPLAY;
    }
    return TRAINER_GRAPH_CAPTURE;
}

lm_device_graph *trainer_graphs_find(const trainer_graphs *g, uint64_t key) {
    for (int i = 0; i < g->n_entries; i++)
        if (g->entries[i].key == key) return g->entries[i].graph;
    return NULL;
}

void trainer_graphs_store(trainer_graphs *g, uint64_t key, lm_device_graph *graph) {
    trainer_graph_entry *e = find_entry(g, key);
    if (!e) return;
    e->graph = graph;
    g->captured++;
}

int trainer_graphs_fail(trainer_graphs *g) {
    const int first = !g->failed;
    g->failed = 1;
    return first;
}

uint64_t trainer_graphs_key(int part, uint64_t a, uint64_t b) {
    const uint64_t words[3] = {(uint64_t)part, a, b};
    return lm_hash64(words, sizeof words, 0x7472616e67726170ull);
}

void trainer_graphs_clear(trainer_graphs *g, lm_device *dev) {
    for (int i = 0; i < g->n_entries; i++)
        if (g->entries[i].graph && dev) dev->ops->graph_destroy(dev, g->entries[i].graph);
    g->n_entries = 0;
    memset(g->entries, 0, sizeof g->entries);
}
