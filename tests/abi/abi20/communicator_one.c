/* A communicator plugin compiled against the frozen ABI 2.0 headers
 * (tests/abi/include-2.0): one rank, its all_reduce a no-op.  ABI 2.1
 * appended the non-blocking all-reduce (all_reduce_start, wait, test) to
 * the communicator table; this plugin has none of it, and must load with
 * those slots read as NULL, so that the trainer reduces its gradients
 * after backward (docs/plugin-abi.md#communicator). */
#include <stdlib.h>
#include <string.h>

#include <lmcore/lmcore.h>

static int instance;

static lm_status one_create(void **self, lm_config *cfg) {
    (void)cfg;
    *self = &instance;
    return LM_OK;
}

static void one_destroy(void *self) { (void)self; }
static int32_t one_rank(void *self) { (void)self; return 0; }
static int32_t one_size(void *self) { (void)self; return 1; }
static int32_t one_memory(void *self) { (void)self; return LM_COMM_HOST_MEMORY; }

static lm_status one_all_reduce(void *self, void *data, size_t count, lm_dtype dtype, lm_reduce_op op) {
    (void)self, (void)data, (void)count, (void)op;
    if (dtype != LM_F32 && dtype != LM_F64) return lm_error_set(LM_ERR_UNSUPPORTED, "abi20_one: f32 or f64 only");
    return LM_OK;
}

static lm_status one_broadcast(void *self, void *data, size_t bytes, int32_t root) {
    (void)self, (void)data, (void)bytes, (void)root;
    return LM_OK;
}

static lm_status one_all_gather(void *self, const void *send, void *recv, size_t bytes_per_rank) {
    (void)self;
    memmove(recv, send, bytes_per_rank);
    return LM_OK;
}

static lm_status one_barrier(void *self) { (void)self; return LM_OK; }
static void one_abort(void *self, int exit_code) { (void)self, (void)exit_code; }

static const lm_communicator_vtable one_vtable = {
    .create = one_create,
    .destroy = one_destroy,
    .rank = one_rank,
    .size = one_size,
    .memory = one_memory,
    .all_reduce = one_all_reduce,
    .broadcast = one_broadcast,
    .all_gather = one_all_gather,
    .barrier = one_barrier,
    .abort = one_abort,
};

LM_PLUGIN_DEFINE(LM_KIND_COMMUNICATOR, "abi20_one", "2.0.0", "One rank, for ABI 2.0 (tests/abi)",
                 lm_communicator_vtable, one_vtable)
