/* Communicator 'single': a run of one process, with no library.  Every
 * collective of one rank leaves its buffer as it is (a sum or an average of
 * one value is that value), so a script written for N ranks runs unchanged
 * on one, and the trainer's distributed path can be tested without MPI. */
#include <stdlib.h>
#include <string.h>

#include <lmcore/lmcore.h>

typedef struct single {
    int unused;
} single;

static lm_status single_create(void **self, lm_config *cfg) {
    (void)cfg;
    single *s = calloc(1, sizeof *s);
    if (!s) return lm_error_set(LM_ERR_NOMEM, "out of memory creating communicator 'single'");
    *self = s;
    return LM_OK;
}

static void single_destroy(void *self) { free(self); }
static int32_t single_rank(void *self) { (void)self; return 0; }
static int32_t single_size(void *self) { (void)self; return 1; }
/* Its collectives never touch a buffer, so any memory will do. */
static int32_t single_memory(void *self) { (void)self; return LM_COMM_HOST_MEMORY; }

static lm_status single_all_reduce(void *self, void *data, size_t count, lm_dtype dtype, lm_reduce_op op) {
    (void)self, (void)data, (void)count;
    if (dtype != LM_F32 && dtype != LM_F64)
        return lm_error_set(LM_ERR_UNSUPPORTED, "communicator 'single': all_reduce takes f32 or f64 buffers");
    if (op != LM_REDUCE_SUM && op != LM_REDUCE_AVG)
        return lm_error_set(LM_ERR_INVALID, "communicator 'single': unknown reduction %d", (int)op);
    return LM_OK;
}

/* One rank: the buffer is its own sum and average, so a started reduction
 * is complete at once (and needs no state). */
struct lm_comm_request {
    int unused;
};
static lm_comm_request single_done;

static lm_status single_all_reduce_start(void *self, void *data, size_t count, lm_dtype dtype, lm_reduce_op op,
                                         void *stream, lm_comm_request **request) {
    (void)stream;
    *request = NULL;
    LM_TRY(single_all_reduce(self, data, count, dtype, op));
    *request = &single_done;
    return LM_OK;
}

static lm_status single_wait(void *self, lm_comm_request *request) {
    (void)self, (void)request;
    return LM_OK;
}

static lm_status single_test(void *self, lm_comm_request *request, int *done) {
    (void)self, (void)request;
    *done = 1;
    return LM_OK;
}

static lm_status single_broadcast(void *self, void *data, size_t bytes, int32_t root) {
    (void)self, (void)data, (void)bytes;
    if (root != 0) return lm_error_set(LM_ERR_INVALID, "communicator 'single': broadcast from rank %d of 1", root);
    return LM_OK;
}

static lm_status single_all_gather(void *self, const void *send, void *recv, size_t bytes_per_rank) {
    (void)self;
    if (send != recv && bytes_per_rank) memmove(recv, send, bytes_per_rank);
    return LM_OK;
}

static lm_status single_barrier(void *self) { (void)self; return LM_OK; }
/* Nothing else to stop: the caller exits with its status. */
static void single_abort(void *self, int exit_code) { (void)self, (void)exit_code; }

static const lm_communicator_vtable single_vtable = {
    .create = single_create,
    .destroy = single_destroy,
    .rank = single_rank,
    .size = single_size,
    .memory = single_memory,
    .all_reduce = single_all_reduce,
    .broadcast = single_broadcast,
    .all_gather = single_all_gather,
    .barrier = single_barrier,
    .abort = single_abort,
    .all_reduce_start = single_all_reduce_start,
    .wait = single_wait,
    .test = single_test,
};

LM_PLUGIN_DEFINE(LM_KIND_COMMUNICATOR, "single", "1.0.0", "One process, no library: collectives leave buffers as they are",
                 lm_communicator_vtable, single_vtable)
