/* Checkpoints for exact resume (see checkpoint.h). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "model_io.h"
#include "safetensors_internal.h"


static lm_status path_join(char *out, size_t cap, const char *a, const char *b) {
    if ((size_t)snprintf(out, cap, "%s/%s", a, b) >= cap)
        return lm_error_set(LM_ERR_INVALID, "path too long: '%s/%s'", a, b);
    return LM_OK;
}

/* Removes a checkpoint folder: its files, then the folder (no recursion:
 * a checkpoint holds files only). */
static void remove_checkpoint_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (path_join(path, sizeof path, dir, e->d_name) == LM_OK) unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* This rank's elements of the flat parameters: all of them, or its ZeRO-1 shard. */
static void own_range(const lm_checkpoint_parts *parts, const lm_param_set *set, size_t *start, size_t *end) {
    const lm_checkpoint_shards *sh = parts->shards;
    *start = sh ? sh->start[sh->rank] : 0;
    *end = sh ? sh->start[sh->rank + 1] : set->n_params;
}

/* The rank whose optimizer holds the state of the tensor at `offset`. */
static int owner_of(const lm_checkpoint_parts *parts, size_t offset) {
    const lm_checkpoint_shards *sh = parts->shards;
    int r = 0;
    while (sh && r + 1 < sh->world && offset >= sh->start[r + 1]) r++;
    return r;
}

/* Every state buffer of the optimizer as safetensors entries: per-parameter
 * buffers split by tensor ("<param>.<name>"), others whole
 * ("optimizer.<name>").  With host_copies, hosts[i] is a host buffer the
 * size of state i and the entries point into it (for reading); without,
 * hosts[i] is NULL and the entries point into the device's state (for
 * writing through lm_safetensors_write_via).  Under ZeRO-1 (parts->shards)
 * the entries are the same on every rank, in the same order (the order of
 * the file), but only those of this rank's tensors point at data: the
 * others' data is NULL and owners[e] names the rank that holds it (owners
 * is NULL without shards; whole buffers are every rank's, rank 0 writes
 * its own). */
static lm_status optimizer_entries(const lm_checkpoint_parts *parts, const lm_param_set *set, int host_copies,
                                   float ***hosts_out, size_t *n_states_out, lm_safetensors_entry **entries_out,
                                   char **names_out, int **owners_out, size_t *n_entries_out) {
    const lm_optimizer_vtable *ovt = &parts->optimizer.plugin->vtable.optimizer;
    void *opt = parts->optimizer.self;
    size_t n_states = 0, start, end;
    own_range(parts, set, &start, &end);
    LM_TRY(ovt->state_count(opt, &n_states));
    size_t n_entries = 0;
    for (size_t i = 0; i < n_states; i++) {
        lm_optimizer_state st;
        LM_TRY(ovt->state_at(opt, i, &st));
        n_entries += st.per_parameter ? set->n_descs : 1;
    }
    float **hosts = calloc(n_states ? n_states : 1, sizeof *hosts);
    lm_safetensors_entry *entries = calloc(n_entries ? n_entries : 1, sizeof *entries);
    char *names = calloc(n_entries ? n_entries : 1, 320);
    int *owners = parts->shards ? calloc(n_entries ? n_entries : 1, sizeof *owners) : NULL;
    if (!hosts || !entries || !names || (parts->shards && !owners)) {
        free(hosts);
        free(entries);
        free(names);
        free(owners);
        return lm_error_set(LM_ERR_NOMEM, "out of memory for the optimizer state's %zu tensors", n_entries);
    }
    *hosts_out = hosts;
    *n_states_out = n_states;
    *entries_out = entries;
    *names_out = names;
    *owners_out = owners;
    *n_entries_out = n_entries;
    size_t e = 0;
    for (size_t i = 0; i < n_states; i++) {
        lm_optimizer_state st;
        LM_TRY(ovt->state_at(opt, i, &st));
        if (st.per_parameter && st.count != end - start)
            return lm_error_set(LM_ERR_INTERNAL, "optimizer '%s': per-parameter state '%s' has %zu floats, the "
                                                 "model%s %zu", parts->optimizer.plugin->name, st.name, st.count,
                                parts->shards ? "'s shard of this rank" : "", end - start);
        if (host_copies)
            LM_TRY(lm_alloc((void **)&hosts[i], (st.count ? st.count : 1) * sizeof(float),
                            "a host copy of the optimizer state"));
        float *base = host_copies ? hosts[i] : st.data;
        for (size_t k = 0; k < (st.per_parameter ? set->n_descs : 1); k++, e++) {
            char *name = names + 320 * e;
            lm_safetensors_entry *en = &entries[e];
            en->name = name;
            en->tensor.dtype = LM_F32;
            if (st.per_parameter) {
                const lm_param_desc *d = &set->descs[k];
                snprintf(name, 320, "%s.%s", d->name, st.name);
                en->tensor.ndim = d->ndim;
                for (int j = 0; j < d->ndim; j++) en->tensor.shape[j] = d->shape[j];
                const int mine = d->offset >= start && d->offset < end;
                /* another rank's: NULL when reading (skipped); when writing, rank 0's reader
                 * receives it (the owner) and the writer only needs a non-NULL pointer */
                en->tensor.data = mine ? base + (d->offset - start) : host_copies ? NULL : base;
                if (owners) owners[e] = owner_of(parts, d->offset);
            } else {
                snprintf(name, 320, "optimizer.%s", st.name);
                en->tensor.ndim = 1;
                en->tensor.shape[0] = (int64_t)st.count;
                en->tensor.data = base;
            }
        }
    }
    return LM_OK;
}

static void free_optimizer_entries(float **hosts, size_t n_states, lm_safetensors_entry *entries, char *names,
                                   int *owners) {
    for (size_t i = 0; hosts && i < n_states; i++) lm_free(hosts[i]);
    free(hosts);
    free(entries);
    free(names);
    free(owners);
}

/* ZeRO-1's transfer of the optimizer state to rank 0, as it writes: each
 * piece that the writer stages (LM_SAFETENSORS_STAGE_BYTES at most) of a
 * tensor that another rank holds is broadcast by that rank into `scratch`
 * (device memory of that size: NCCL reduces device memory), then rank 0
 * downloads it.  Every rank walks the same entries in the same order, in
 * the same pieces, so the broadcasts match (send_optimizer on ranks > 0). */
typedef struct shard_transfer {
    const lm_checkpoint_parts *parts;
    const lm_safetensors_entry *entries;
    const int *owners;
    lm_device *dev;
    void *scratch;
} shard_transfer;

static lm_status broadcast_piece(const shard_transfer *x, void *data, size_t bytes, int root) {
    const lm_handle *comm = &x->parts->shards->comm;
    return comm->plugin->vtable.communicator.broadcast(comm->self, data, bytes, root);
}

static lm_status read_shard_piece(void *ctx, const lm_tensor *t, size_t offset, void *dst, size_t bytes) {
    const shard_transfer *x = ctx;
    const size_t e = (size_t)((const char *)t - (const char *)&x->entries[0].tensor) / sizeof *x->entries;
    const int owner = x->owners[e];
    if (owner == 0) return x->dev->ops->download(x->dev, dst, (const char *)t->data + offset, bytes);
    lm_status status = broadcast_piece(x, x->scratch, bytes, owner);
    if (status != LM_OK) {
        lm_error_prefix("receiving tensor '%s' of the optimizer state from rank %d (ZeRO-1): ", x->entries[e].name,
                        owner);
        return status;
    }
    return x->dev->ops->download(x->dev, dst, x->scratch, bytes);
}

/* The optimizer's entries (and under ZeRO-1 the transfer's scratch buffer)
 * of parts, for writing or sending. */
typedef struct optimizer_source {
    lm_param_set set;
    float **hosts;
    lm_safetensors_entry *entries;
    char *names;
    int *owners;
    size_t n_states, n_entries;
    shard_transfer transfer;
} optimizer_source;

static void source_close(optimizer_source *src) {
    if (src->transfer.scratch) src->set.device->ops->free(src->set.device, src->transfer.scratch);
    free_optimizer_entries(src->hosts, src->n_states, src->entries, src->names, src->owners);
}

static lm_status source_open(optimizer_source *src, const lm_checkpoint_parts *parts) {
    memset(src, 0, sizeof *src);
    LM_TRY(parts->model.plugin->vtable.architecture.parameters(parts->model.self, &src->set));
    lm_device *dev = src->set.device;
    lm_status status = optimizer_entries(parts, &src->set, 0, &src->hosts, &src->n_states, &src->entries, &src->names,
                                         &src->owners, &src->n_entries);
    src->transfer = (shard_transfer){parts, src->entries, src->owners, dev, NULL};
    if (status == LM_OK && parts->shards)
        status = dev->ops->alloc(dev, &src->transfer.scratch, LM_SAFETENSORS_STAGE_BYTES,
                                 "a buffer for the optimizer state of other ranks (ZeRO-1 checkpoint)");
    /* the last update is queued on the device */
    if (status == LM_OK && parts->shards) status = dev->ops->sync(dev);
    if (status != LM_OK) source_close(src);
    return status;
}

static lm_status write_optimizer(const char *path, const lm_checkpoint_parts *parts) {
    optimizer_source src;
    LM_TRY(source_open(&src, parts));
    const char *const metadata[] = {"format", "pt", "optimizer", parts->optimizer.plugin->name, NULL};
    lm_status status =
        parts->shards ? lm_safetensors_write_via(path, src.entries, src.n_entries, metadata, read_shard_piece,
                                                 &src.transfer)
                      : lm_safetensors_write_via(path, src.entries, src.n_entries, metadata,
                                                 lm_safetensors_read_device, src.set.device);
    source_close(&src);
    return status;
}

lm_status lm_checkpoint_send_optimizer(const lm_checkpoint_parts *parts) {
    if (!parts->shards || parts->shards->rank == 0)
        return lm_error_set(LM_ERR_INVALID, "lm_checkpoint_send_optimizer: for ranks other than 0 under ZeRO-1");
    optimizer_source src;
    LM_TRY(source_open(&src, parts));
    const int me = parts->shards->rank;
    lm_status status = LM_OK;
    for (size_t e = 0; status == LM_OK && e < src.n_entries; e++) {
        const int owner = src.owners[e];
        const size_t nbytes = lm_tensor_nbytes(&src.entries[e].tensor);
        if (owner == 0) continue; /* rank 0 has it */
        for (size_t offset = 0; status == LM_OK && offset < nbytes; offset += LM_SAFETENSORS_STAGE_BYTES) {
            const size_t piece = nbytes - offset < LM_SAFETENSORS_STAGE_BYTES ? nbytes - offset
                                                                              : LM_SAFETENSORS_STAGE_BYTES;
            void *data = owner == me ? (char *)src.entries[e].tensor.data + offset : src.transfer.scratch;
            status = broadcast_piece(&src.transfer, data, piece, owner);
        }
        if (status != LM_OK)
            lm_error_prefix("sending tensor '%s' of the optimizer state to rank 0 (ZeRO-1): ", src.entries[e].name);
    }
    source_close(&src);
    return status;
}

static lm_status read_optimizer(const char *path, const lm_checkpoint_parts *parts) {
    const lm_optimizer_vtable *ovt = &parts->optimizer.plugin->vtable.optimizer;
    lm_param_set set;
    LM_TRY(parts->model.plugin->vtable.architecture.parameters(parts->model.self, &set));
    lm_safetensors *file = NULL;
    LM_TRY(lm_safetensors_open(path, &file));
    float **hosts = NULL;
    lm_safetensors_entry *entries = NULL;
    char *names = NULL;
    int *owners = NULL;
    size_t n_states = 0, n_entries = 0;
    lm_status status = optimizer_entries(parts, &set, 1, &hosts, &n_states, &entries, &names, &owners, &n_entries);
    for (size_t e = 0; status == LM_OK && e < n_entries; e++) {
        const lm_safetensors_entry *en = &entries[e];
        if (!en->tensor.data) continue; /* ZeRO-1: another rank's tensor */
        status = lm_safetensors_read_f32(file, en->name, en->tensor.shape, en->tensor.ndim, en->tensor.data);
        if (status == LM_ERR_NOT_FOUND)
            status = lm_error_set(LM_ERR_FORMAT, "%s has no tensor '%s': the checkpoint's optimizer state does not "
                                                 "match optimizer '%s'",
                                  path, en->name, parts->optimizer.plugin->name);
        const size_t n = (size_t)lm_tensor_numel(&en->tensor);
        const size_t bad = status == LM_OK ? lm_first_non_finite(en->tensor.data, n) : n;
        if (bad < n)
            status = lm_error_set(LM_ERR_FORMAT, "%s: the optimizer state is corrupt: tensor '%s' holds a non-finite "
                                                 "value (%s at index %zu); resume from another checkpoint",
                                  path, en->name, lm_non_finite_name(((const float *)en->tensor.data)[bad]), bad);
    }
    for (size_t i = 0; status == LM_OK && i < n_states; i++) {
        lm_optimizer_state st;
        status = ovt->state_at(parts->optimizer.self, i, &st);
        if (status == LM_OK) status = set.device->ops->upload(set.device, st.data, hosts[i], st.count * sizeof(float));
    }
    if (status == LM_OK) status = set.device->ops->sync(set.device);
    free_optimizer_entries(hosts, n_states, entries, names, owners);
    lm_safetensors_close(file);
    return status;
}

/* Deletes checkpoint-N folders beyond the newest keep_last, and the hidden
 * half-written folders of runs that were killed while saving
 * (.checkpoint-N.tmp.<pid> whose process is gone). */
static void prune(const char *root, int keep_last, const char *protect) {
    DIR *d = opendir(root);
    if (!d) return;
    int64_t steps[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long long step;
        long pid;
        char tail;
        if (sscanf(e->d_name, "checkpoint-%lld%c", &step, &tail) == 1 && n < 4096) {
            steps[n++] = step;
        } else if (sscanf(e->d_name, ".checkpoint-%lld.tmp.%ld%c", &step, &pid, &tail) == 2 && pid > 0 &&
                   pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            char dir[PATH_MAX];
            if (snprintf(dir, sizeof dir, "%s/%s", root, e->d_name) < (int)sizeof dir) remove_checkpoint_dir(dir);
        }
    }
    closedir(d);
    if (keep_last <= 0) return;
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int j = 0; j < n; j++) newer += steps[j] > steps[i];
        if (newer >= keep_last) {
            char dir[PATH_MAX], name[64];
            snprintf(name, sizeof name, "checkpoint-%lld", (long long)steps[i]);
            const char *slash = protect ? strrchr(protect, '/') : NULL;
            if (protect && strcmp(slash ? slash + 1 : protect, name) == 0) continue; /* the best model's */
            snprintf(dir, sizeof dir, "%s/%s", root, name);
            remove_checkpoint_dir(dir);
        }
    }
}

lm_status lm_checkpoint_save(const char *root, int64_t step, int keep_last, const char *protect,
                             const lm_checkpoint_parts *parts, const char *state_json, const char *args_json,
                             char *dir_out, size_t dir_cap) {
    char tmp[PATH_MAX], final[PATH_MAX], path[PATH_MAX];
    LM_TRY(lm_mkdir_p(root));
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.checkpoint-%lld.tmp.%ld", root, (long long)step, (long)getpid()) >=
            sizeof tmp ||
        (size_t)snprintf(final, sizeof final, "%s/checkpoint-%lld", root, (long long)step) >= sizeof final)
        return lm_error_set(LM_ERR_INVALID, "checkpoint path too long under '%s'", root);
    remove_checkpoint_dir(tmp);
    lm_status status = LM_OK;
    LM_CHECK(lm_model_save(parts->model.plugin, parts->model.self, tmp, parts->tokenizer.plugin, parts->tokenizer.self,
                           args_json));
    if (!parts->model_only) {
        LM_CHECK(path_join(path, sizeof path, tmp, LM_CHECKPOINT_OPTIMIZER_FILE));
        LM_CHECK(write_optimizer(path, parts));
    }
    LM_CHECK(path_join(path, sizeof path, tmp, LM_CHECKPOINT_STATE_FILE));
    LM_CHECK(lm_file_write_atomic(path, state_json, strlen(state_json)));
    LM_CHECK(lm_checkpoint_write_manifest(tmp)); /* last: it covers every other file */
    remove_checkpoint_dir(final); /* a checkpoint of the same step from an earlier run */
    if (rename(tmp, final) != 0) {
        status = lm_error_set(LM_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
        goto fail;
    }
    prune(root, keep_last, protect);
    lm_log(LM_LOG_INFO, "saved checkpoint %s", final);
    if (dir_out && dir_cap) snprintf(dir_out, dir_cap, "%s", final);
    return LM_OK;
fail:
    remove_checkpoint_dir(tmp);
    lm_error_prefix("saving checkpoint at step %lld: ", (long long)step);
    return status;
}

/* 1 when dir holds the state file; with `any_kind`, whatever it is (the
 * reader then names a FIFO or a folder in its place), else a regular file. */
static int has_state_file(const char *dir, int any_kind) {
    char path[PATH_MAX];
    struct stat st;
    return path_join(path, sizeof path, dir, LM_CHECKPOINT_STATE_FILE) == LM_OK && stat(path, &st) == 0 &&
           (any_kind || S_ISREG(st.st_mode));
}

/* The newest checkpoint-N of root that is complete (has its state file:
 * a checkpoint is renamed into place whole, but a folder copied by hand may
 * not be); 0 when there is none. */
static int newest_checkpoint(const char *root, char *out, size_t cap) {
    DIR *d = opendir(root);
    if (!d) return 0;
    long long best = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long long step;
        char tail, dir[PATH_MAX];
        if (sscanf(e->d_name, "checkpoint-%lld%c", &step, &tail) != 1 || step <= best) continue;
        if (path_join(dir, sizeof dir, root, e->d_name) != LM_OK || !has_state_file(dir, 0)) continue;
        best = step;
        snprintf(out, cap, "%s", dir);
    }
    closedir(d);
    return best >= 0;
}

lm_status lm_checkpoint_resolve(const char *given, char *out, size_t cap) {
    struct stat st;
    if (stat(given, &st) != 0 || !S_ISDIR(st.st_mode))
        return lm_error_set(LM_ERR_IO, "resume from '%s': no such folder: pass a checkpoint-N folder, a checkpoints "
                                       "folder or a run's output_dir",
                            given);
    if (has_state_file(given, 1)) {
        if (snprintf(out, cap, "%s", given) >= (int)cap)
            return lm_error_set(LM_ERR_INVALID, "resume from '%s': the path is too long", given);
        return LM_OK;
    }
    char checkpoints[PATH_MAX];
    LM_TRY(path_join(checkpoints, sizeof checkpoints, given, "checkpoints"));
    if (newest_checkpoint(given, out, cap) || newest_checkpoint(checkpoints, out, cap)) return LM_OK;
    return lm_error_set(LM_ERR_INVALID, "resume from '%s': no checkpoint there (no %s, and no complete "
                                        "checkpoint-N folder in it or in its checkpoints/): pass a checkpoint-N "
                                        "folder, or train without resume_from_checkpoint",
                        given, LM_CHECKPOINT_STATE_FILE);
}

lm_status lm_checkpoint_read_state(const char *dir, lm_json **state) {
    *state = NULL;
    char path[PATH_MAX];
    LM_TRY(path_join(path, sizeof path, dir, LM_CHECKPOINT_STATE_FILE));
    lm_status status = lm_json_parse_file(path, state);
    if (status != LM_OK) lm_error_prefix("resume from '%s': ", dir);
    return status;
}

lm_status lm_checkpoint_load_tensors(const char *dir, const lm_checkpoint_parts *parts) {
    char path[PATH_MAX];
    lm_status status = LM_OK;
    LM_CHECK(path_join(path, sizeof path, dir, "model.safetensors"));
    LM_CHECK(lm_model_load_weights(parts->model.plugin, parts->model.self, path));
    LM_CHECK(path_join(path, sizeof path, dir, LM_CHECKPOINT_OPTIMIZER_FILE));
    LM_CHECK(read_optimizer(path, parts));
fail:
    if (status != LM_OK && !strstr(lm_error_message(), dir)) lm_error_prefix("resume from '%s': ", dir);
    return status;
}
