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

#define STATE_FILE "trainer_state.json"
#define OPTIMIZER_FILE "optimizer.safetensors"

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

static lm_status write_optimizer(const char *path, lm_handle model) {
    const lm_architecture_vtable *vt = &model.plugin->vtable.architecture;
    const lm_param_desc *descs;
    size_t n;
    LM_TRY(vt->params(model.self, &descs, &n));
    lm_arch_info info;
    LM_TRY(vt->info(model.self, &info));
    float *m = NULL, *v = NULL;
    lm_safetensors_entry *entries = NULL;
    char *names = NULL;
    lm_status status = LM_OK;
    LM_CHECK(lm_alloc((void **)&m, (size_t)info.n_params * sizeof(float), "the AdamW first moments"));
    LM_CHECK(lm_alloc((void **)&v, (size_t)info.n_params * sizeof(float), "the AdamW second moments"));
    LM_CHECK(vt->read_buffer(model.self, LM_BUFFER_ADAM_M, m));
    LM_CHECK(vt->read_buffer(model.self, LM_BUFFER_ADAM_V, v));
    entries = calloc(2 * n, sizeof *entries);
    names = calloc(2 * n, 256);
    if (!entries || !names) {
        status = lm_error_set(LM_ERR_NOMEM, "out of memory writing the optimizer state");
        goto fail;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        const lm_param_desc *d = &descs[i % n];
        char *name = names + 256 * i;
        snprintf(name, 256, "%s.%s", d->name, i < n ? "exp_avg" : "exp_avg_sq");
        entries[i].name = name;
        entries[i].tensor.dtype = LM_F32;
        entries[i].tensor.ndim = d->ndim;
        for (int k = 0; k < d->ndim; k++) entries[i].tensor.shape[k] = d->shape[k];
        entries[i].tensor.data = (i < n ? m : v) + d->offset;
    }
    LM_CHECK(lm_safetensors_write(path, entries, 2 * n, NULL));
fail:
    free(names);
    free(entries);
    lm_free(m);
    lm_free(v);
    return status;
}

static lm_status write_state(const char *path, const lm_checkpoint_state *s, lm_handle model) {
    lm_arch_info info;
    LM_TRY(model.plugin->vtable.architecture.info(model.self, &info));
    lm_buffer text = {0};
    lm_json_writer w;
    lm_json_writer_init(&w, &text, 2);
    lm_json_begin_object(&w);
    lm_json_key(&w, "format");
    lm_json_write_cstr(&w, "lmcore-trainer-state-1");
    lm_json_key(&w, "model_type");
    lm_json_write_cstr(&w, info.model_type);
    lm_json_key(&w, "vocab_size");
    lm_json_write_int(&w, info.vocab_size);
    lm_json_key(&w, "n_params");
    lm_json_write_int(&w, info.n_params);
    /* 64-bit counters as strings: JSON numbers are doubles for many readers. */
    const struct {
        const char *key;
        int64_t value;
    } ints[] = {{"global_step", s->step},          {"total_steps", s->total_steps},
                {"epoch", s->epoch},               {"steps_in_epoch", s->steps_in_epoch},
                {"cursor", (int64_t)s->cursor},    {"train_blocks", (int64_t)s->train_blocks},
                {"batch_size", s->batch_size},     {"grad_accum", s->grad_accum}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        lm_json_key(&w, ints[i].key);
        lm_json_write_int(&w, ints[i].value);
    }
    char u64[32];
    lm_json_key(&w, "micro_batches");
    snprintf(u64, sizeof u64, "%" PRIu64, s->micro_batches);
    lm_json_write_cstr(&w, u64);
    lm_json_key(&w, "seed");
    snprintf(u64, sizeof u64, "%" PRIu64, s->seed);
    lm_json_write_cstr(&w, u64);
    /* Loss sums as exact bit patterns, so resumed averages are identical. */
    uint64_t bits;
    memcpy(&bits, &s->loss_sum_run, sizeof bits);
    lm_json_key(&w, "loss_sum_run_bits");
    snprintf(u64, sizeof u64, "%" PRIu64, bits);
    lm_json_write_cstr(&w, u64);
    memcpy(&bits, &s->loss_sum_epoch, sizeof bits);
    lm_json_key(&w, "loss_sum_epoch_bits");
    snprintf(u64, sizeof u64, "%" PRIu64, bits);
    lm_json_write_cstr(&w, u64);
    lm_json_end_object(&w);
    lm_status status = lm_json_writer_finish(&w);
    if (status == LM_OK) status = lm_file_write_atomic(path, text.data, text.len);
    lm_buffer_free(&text);
    return status;
}

/* Deletes checkpoint-N folders beyond the newest keep_last, and the hidden
 * half-written folders of runs that were killed while saving
 * (.checkpoint-N.tmp.<pid> whose process is gone). */
static void prune(const char *root, int keep_last) {
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
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s/checkpoint-%lld", root, (long long)steps[i]);
            remove_checkpoint_dir(dir);
        }
    }
}

lm_status lm_checkpoint_save(const char *root, int keep_last, const lm_checkpoint_state *state, lm_handle model,
                             lm_handle tokenizer, const char *args_json) {
    char tmp[PATH_MAX], final[PATH_MAX], path[PATH_MAX];
    LM_TRY(lm_mkdir_p(root));
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.checkpoint-%lld.tmp.%ld", root, (long long)state->step,
                         (long)getpid()) >= sizeof tmp ||
        (size_t)snprintf(final, sizeof final, "%s/checkpoint-%lld", root, (long long)state->step) >= sizeof final)
        return lm_error_set(LM_ERR_INVALID, "checkpoint path too long under '%s'", root);
    remove_checkpoint_dir(tmp);
    lm_status status = LM_OK;
    LM_CHECK(lm_model_save(model.plugin, model.self, tmp, tokenizer.plugin, tokenizer.self, args_json));
    LM_CHECK(path_join(path, sizeof path, tmp, OPTIMIZER_FILE));
    LM_CHECK(write_optimizer(path, model));
    LM_CHECK(path_join(path, sizeof path, tmp, STATE_FILE));
    LM_CHECK(write_state(path, state, model));
    remove_checkpoint_dir(final); /* a checkpoint of the same step from an earlier run */
    if (rename(tmp, final) != 0) {
        status = lm_error_set(LM_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
        goto fail;
    }
    prune(root, keep_last);
    lm_log(LM_LOG_INFO, "saved checkpoint %s", final);
    return LM_OK;
fail:
    remove_checkpoint_dir(tmp);
    lm_error_prefix("saving checkpoint at step %lld: ", (long long)state->step);
    return status;
}

static lm_status get_int(const lm_json *root, const char *path, const char *key, int64_t *out) {
    const lm_json *v = lm_json_get(root, key);
    if (v && lm_json_type_of(v) == LM_JSON_NUMBER && lm_json_is_integer(v)) {
        *out = lm_json_int(v);
        return LM_OK;
    }
    if (v && lm_json_type_of(v) == LM_JSON_STRING) {
        size_t len;
        const char *s = lm_json_string(v, &len);
        char *end;
        errno = 0;
        unsigned long long u = strtoull(s, &end, 10);
        if (len > 0 && end == s + len && errno == 0) {
            memcpy(out, &u, sizeof *out);
            return LM_OK;
        }
    }
    return lm_error_set(LM_ERR_FORMAT, "%s: \"%s\" is missing or not an integer", path, key);
}

static lm_status read_optimizer(const char *path, lm_handle model) {
    const lm_architecture_vtable *vt = &model.plugin->vtable.architecture;
    const lm_param_desc *descs;
    size_t n;
    LM_TRY(vt->params(model.self, &descs, &n));
    lm_arch_info info;
    LM_TRY(vt->info(model.self, &info));
    lm_safetensors *st = NULL;
    float *m = NULL, *v = NULL;
    lm_status status = lm_safetensors_open(path, &st);
    if (status != LM_OK) return status;
    LM_CHECK(lm_alloc((void **)&m, (size_t)info.n_params * sizeof(float), "the AdamW first moments"));
    LM_CHECK(lm_alloc((void **)&v, (size_t)info.n_params * sizeof(float), "the AdamW second moments"));
    for (size_t i = 0; i < 2 * n; i++) {
        const lm_param_desc *d = &descs[i % n];
        char name[256];
        snprintf(name, sizeof name, "%s.%s", d->name, i < n ? "exp_avg" : "exp_avg_sq");
        LM_CHECK(lm_safetensors_read_f32(st, name, d->shape, d->ndim, (i < n ? m : v) + d->offset));
    }
    LM_CHECK(vt->write_buffer(model.self, LM_BUFFER_ADAM_M, m));
    LM_CHECK(vt->write_buffer(model.self, LM_BUFFER_ADAM_V, v));
fail:
    lm_free(m);
    lm_free(v);
    lm_safetensors_close(st);
    return status;
}

lm_status lm_checkpoint_load(const char *dir, lm_handle model, lm_checkpoint_state *s) {
    memset(s, 0, sizeof *s);
    char path[PATH_MAX];
    LM_TRY(path_join(path, sizeof path, dir, STATE_FILE));
    lm_json *root = NULL;
    lm_status status = lm_json_parse_file(path, &root);
    if (status != LM_OK) {
        lm_error_prefix("resume from '%s': ", dir);
        return status;
    }
    lm_arch_info info;
    LM_CHECK(model.plugin->vtable.architecture.info(model.self, &info));
    const lm_json *type = lm_json_get(root, "model_type");
    size_t len = 0;
    const char *model_type = type && lm_json_type_of(type) == LM_JSON_STRING ? lm_json_string(type, &len) : "";
    if (strlen(info.model_type) != len || strncmp(model_type, info.model_type, len) != 0) {
        status = lm_error_set(LM_ERR_INVALID, "resume from '%s': the checkpoint is a '%.*s' model, this run trains '%s'",
                              dir, (int)len, model_type, info.model_type);
        goto fail;
    }
    int64_t vocab, n_params, micro, seed, bits_run, bits_epoch, cursor, blocks;
    LM_CHECK(get_int(root, path, "vocab_size", &vocab));
    LM_CHECK(get_int(root, path, "n_params", &n_params));
    if (vocab != info.vocab_size || n_params != info.n_params) {
        status = lm_error_set(LM_ERR_INVALID,
                              "resume from '%s': the checkpoint has vocab_size %lld and %lld parameters, this model "
                              "has vocab_size %d and %lld parameters: use the same model settings",
                              dir, (long long)vocab, (long long)n_params, info.vocab_size, (long long)info.n_params);
        goto fail;
    }
    LM_CHECK(get_int(root, path, "global_step", &s->step));
    LM_CHECK(get_int(root, path, "total_steps", &s->total_steps));
    LM_CHECK(get_int(root, path, "epoch", &s->epoch));
    LM_CHECK(get_int(root, path, "steps_in_epoch", &s->steps_in_epoch));
    LM_CHECK(get_int(root, path, "cursor", &cursor));
    LM_CHECK(get_int(root, path, "train_blocks", &blocks));
    LM_CHECK(get_int(root, path, "batch_size", &s->batch_size));
    LM_CHECK(get_int(root, path, "grad_accum", &s->grad_accum));
    LM_CHECK(get_int(root, path, "micro_batches", &micro));
    LM_CHECK(get_int(root, path, "seed", &seed));
    LM_CHECK(get_int(root, path, "loss_sum_run_bits", &bits_run));
    LM_CHECK(get_int(root, path, "loss_sum_epoch_bits", &bits_epoch));
    s->cursor = (uint64_t)cursor;
    s->train_blocks = (uint64_t)blocks;
    s->micro_batches = (uint64_t)micro;
    s->seed = (uint64_t)seed;
    memcpy(&s->loss_sum_run, &bits_run, sizeof bits_run);
    memcpy(&s->loss_sum_epoch, &bits_epoch, sizeof bits_epoch);
    LM_CHECK(path_join(path, sizeof path, dir, "model.safetensors"));
    LM_CHECK(lm_model_load_weights(model.plugin, model.self, path));
    LM_CHECK(path_join(path, sizeof path, dir, OPTIMIZER_FILE));
    LM_CHECK(read_optimizer(path, model));
fail:
    if (status != LM_OK && !strstr(lm_error_message(), dir)) lm_error_prefix("resume from '%s': ", dir);
    lm_json_free(root);
    return status;
}
