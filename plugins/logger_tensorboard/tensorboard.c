/* Logger 'tensorboard': TensorBoard event files, without TensorFlow.
 *
 *   logdir      folder for events.out.tfevents.<unix time>.<host> (created
 *               with the file at the run's begin, not at create())
 *   start_time  UNIX time of elapsed = 0 (default: measured at the first
 *               event); set it to make a file byte-for-byte reproducible
 *
 * The format is small enough to write by hand:
 *   - the file is a sequence of TFRecords: u64 length, masked CRC32C of the
 *     8 length bytes, the data, masked CRC32C of the data (little endian);
 *   - each record is a serialized tensorflow.Event protobuf: wall_time
 *     (double, field 1), step (int64, field 2), then either file_version
 *     (string, field 3; "brain.Event:2" in the first record) or summary
 *     (Summary, field 5) whose repeated Value (field 1) has tag (string,
 *     field 1) and simple_value (float, field 2).
 * Fields are written in field-number order and proto3 defaults (a zero
 * wall_time or step) are left out, exactly as protobuf's own serializer
 * does, so the files equal those of TensorBoard's Python writer.
 *
 * Every scalar of an event becomes one value of one Event record:
 * STEP -> train/<name>, EVAL -> eval/<name>, RUN_END -> run/<name>.  STEP
 * events come at the trainer's logging points (logging_steps), so the
 * train/ curves have a point per logging interval (train/loss is its mean
 * step loss); EVAL events at any step (eval_strategy), each at its own
 * step.  PROGRESS events (every optimizer step) carry no scalars and write
 * nothing, nor do RUN_BEGIN and messages.  There is no `every`: TensorBoard
 * thins long curves itself when it shows them.
 * Non-finite values (an evaluation that did not run reports NaN) are left
 * out rather than drawn as gaps.  The file is flushed after each event so
 * TensorBoard shows a run live and a crash loses at most one record. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lmcore/lmcore.h"

typedef struct tensorboard {
    char *logdir;
    FILE *file; /* NULL until the run begins */
    char *path;
    int has_origin;
    double origin;  /* UNIX time at elapsed = 0 */
    lm_buffer data; /* one serialized Event */
    lm_buffer record;
} tensorboard;

/* ---- TFRecord framing ------------------------------------------------------------ */

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: the
 * records are a few hundred bytes once per logging point, a table would buy
 * nothing. */
static uint32_t crc32c(const uint8_t *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* TFRecord masks its CRCs so that a CRC of data holding CRCs stays strong. */
static uint32_t masked_crc32c(const uint8_t *p, size_t n) {
    uint32_t crc = crc32c(p, n);
    return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

static void store_le(uint8_t *out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) out[i] = (uint8_t)(v >> (8 * i));
}

/* ---- protobuf encoding --------------------------------------------------------- */

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_BYTES = 2, WIRE_FIXED32 = 5 };

static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static lm_status put_varint(lm_buffer *b, uint64_t v) {
    uint8_t bytes[10];
    size_t n = 0;
    while (v >= 0x80) {
        bytes[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    bytes[n++] = (uint8_t)v;
    return lm_buffer_append(b, bytes, n);
}

static lm_status put_key(lm_buffer *b, int field, int wire) { return put_varint(b, (uint64_t)(field << 3 | wire)); }

static lm_status put_bytes(lm_buffer *b, int field, const void *data, size_t len) {
    LM_TRY(put_key(b, field, WIRE_BYTES));
    LM_TRY(put_varint(b, len));
    return lm_buffer_append(b, data, len);
}

/* A fixed64 or fixed32 field: the value's bits, little endian. */
static lm_status put_fixed(lm_buffer *b, int field, int wire, uint64_t bits, int bytes) {
    uint8_t le[8];
    store_le(le, bits, bytes);
    LM_TRY(put_key(b, field, wire));
    return lm_buffer_append(b, le, (size_t)bytes);
}

static lm_status put_double(lm_buffer *b, int field, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return put_fixed(b, field, WIRE_FIXED64, bits, 8);
}

static lm_status put_float(lm_buffer *b, int field, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return put_fixed(b, field, WIRE_FIXED32, bits, 4);
}

/* Event fields 1 and 2, skipped at their proto3 defaults like protobuf does. */
static lm_status put_event_header(lm_buffer *b, double wall_time, int64_t step) {
    if (wall_time != 0) LM_TRY(put_double(b, 1, wall_time));
    if (step == 0) return LM_OK;
    LM_TRY(put_key(b, 2, WIRE_VARINT));
    return put_varint(b, (uint64_t)step); /* int64 as varint: steps are never negative */
}

/* Summary.Value{tag = prefix + name, simple_value}: its encoded size. */
static size_t value_size(size_t tag_len) { return 1 + varint_size(tag_len) + tag_len + 5; }

static int kept(const lm_scalar *s) { return isfinite(s->value); }

/* Event{wall_time, step, summary{value...}} for the finite scalars of ev. */
static lm_status encode_summary_event(lm_buffer *b, double wall_time, const lm_event *ev, const char *prefix) {
    size_t prefix_len = strlen(prefix), summary_len = 0;
    for (size_t i = 0; i < ev->n_scalars; i++) {
        if (!kept(&ev->scalars[i])) continue;
        size_t v = value_size(prefix_len + strlen(ev->scalars[i].name));
        summary_len += 1 + varint_size(v) + v;
    }
    LM_TRY(put_event_header(b, wall_time, ev->step));
    LM_TRY(put_key(b, 5, WIRE_BYTES));
    LM_TRY(put_varint(b, summary_len));
    for (size_t i = 0; i < ev->n_scalars; i++) {
        const lm_scalar *s = &ev->scalars[i];
        if (!kept(s)) continue;
        size_t name_len = strlen(s->name);
        LM_TRY(put_key(b, 1, WIRE_BYTES));
        LM_TRY(put_varint(b, value_size(prefix_len + name_len)));
        LM_TRY(put_key(b, 1, WIRE_BYTES));
        LM_TRY(put_varint(b, prefix_len + name_len));
        LM_TRY(lm_buffer_append(b, prefix, prefix_len));
        LM_TRY(lm_buffer_append(b, s->name, name_len));
        LM_TRY(put_float(b, 2, (float)s->value));
    }
    return LM_OK;
}

/* Frames tb->data as one TFRecord, writes and flushes it. */
static lm_status write_record(tensorboard *tb) {
    uint8_t header[12], footer[4];
    store_le(header, tb->data.len, 8);
    store_le(header + 8, masked_crc32c(header, 8), 4);
    store_le(footer, masked_crc32c((const uint8_t *)tb->data.data, tb->data.len), 4);
    lm_buffer_clear(&tb->record);
    LM_TRY(lm_buffer_append(&tb->record, header, sizeof header));
    LM_TRY(lm_buffer_append(&tb->record, tb->data.data, tb->data.len));
    LM_TRY(lm_buffer_append(&tb->record, footer, sizeof footer));
    if (fwrite(tb->record.data, 1, tb->record.len, tb->file) != tb->record.len || fflush(tb->file) != 0)
        return lm_error_set(LM_ERR_IO, "logger 'tensorboard' cannot write '%s': %s (disk full?)", tb->path,
                            strerror(errno));
    return LM_OK;
}

/* ---- the logger ------------------------------------------------------------------ */

static double unix_time(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void tensorboard_destroy(void *self) {
    tensorboard *tb = self;
    if (tb->file) fclose(tb->file);
    lm_buffer_free(&tb->data);
    lm_buffer_free(&tb->record);
    free(tb->path);
    free(tb->logdir);
    free(tb);
}

/* events.out.tfevents.<time>.<host>, like TensorFlow; never replaces a
 * file of another run started in the same second (a numbered suffix keeps
 * the 'tfevents' TensorBoard looks for). */
static lm_status open_event_file(tensorboard *tb, const char *logdir, double start) {
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0 || !host[0]) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/') *c = '_';
    for (int attempt = 0; attempt < 100; attempt++) {
        lm_buffer name = {0};
        lm_status status = attempt == 0 ? lm_buffer_appendf(&name, "%s/events.out.tfevents.%010lld.%s", logdir,
                                                            (long long)floor(start), host)
                                        : lm_buffer_appendf(&name, "%s/events.out.tfevents.%010lld.%s.%d", logdir,
                                                            (long long)floor(start), host, attempt);
        if (status != LM_OK) {
            lm_buffer_free(&name);
            return status;
        }
        tb->file = fopen(name.data, "wbx");
        if (tb->file) {
            tb->path = name.data; /* the buffer's storage becomes the path */
            return LM_OK;
        }
        int err = errno;
        if (err != EEXIST) {
            status = lm_error_set(LM_ERR_IO, "logger 'tensorboard' cannot create '%s': %s (is 'logdir' writable?)",
                                  name.data, strerror(err));
            lm_buffer_free(&name);
            return status;
        }
        lm_buffer_free(&name);
    }
    return lm_error_set(LM_ERR_IO, "logger 'tensorboard': too many event files of the same second in '%s'", logdir);
}

/* What create() can check without creating anything: the nearest part of
 * `logdir` that exists is a writable folder, so that a wrong logdir fails
 * before the run rather than at its first event. */
static lm_status check_logdir(const char *logdir) {
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", logdir) >= (int)sizeof dir)
        return lm_error_set(LM_ERR_INVALID, "logger 'tensorboard': logdir '%s' is too long", logdir);
    for (;;) {
        struct stat st;
        if (stat(dir, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                return lm_error_set(LM_ERR_IO, "logger 'tensorboard' cannot create logdir '%s': '%s' is not a folder",
                                    logdir, dir);
            if (access(dir, W_OK) != 0)
                return lm_error_set(LM_ERR_IO, "logger 'tensorboard' cannot create logdir '%s': '%s': %s", logdir,
                                    dir, strerror(errno));
            return LM_OK;
        }
        char *slash = strrchr(dir, '/');
        if (!slash) return LM_OK; /* a relative path below the current folder: checked when it is made */
        if (slash != dir) *slash = '\0';
        else if (dir[1] != '\0') dir[1] = '\0'; /* "/x": the root is next */
        else return LM_OK;
    }
}

static lm_status tensorboard_create(void **self, lm_config *cfg) {
    const char *logdir = lm_config_string(cfg, "logdir", NULL);
    int has_start = lm_config_has(cfg, "start_time");
    double start_time = lm_config_number(cfg, "start_time", 0);
    if (!logdir || !*logdir)
        return lm_error_set(LM_ERR_INVALID, "logger 'tensorboard' needs a 'logdir' folder for its event files");
    if (has_start && !(isfinite(start_time) && start_time > 0))
        return lm_error_set(LM_ERR_INVALID, "logger 'tensorboard': 'start_time' must be a positive UNIX time");
    LM_TRY(check_logdir(logdir));
    tensorboard *tb = calloc(1, sizeof *tb);
    if (!tb || !(tb->logdir = malloc(strlen(logdir) + 1))) {
        free(tb);
        return lm_error_set(LM_ERR_NOMEM, "out of memory creating the tensorboard logger");
    }
    strcpy(tb->logdir, logdir);
    tb->has_origin = has_start;
    tb->origin = start_time;
    *self = tb;
    return LM_OK;
}

/* The folder, the event file and its first record, made at the run's
 * begin (or the first record, for a caller that sends no RUN_BEGIN): a
 * run that fails before it leaves no empty event file behind. */
static lm_status ensure_file(tensorboard *tb) {
    if (tb->file) return LM_OK;
    LM_TRY(lm_mkdir_p(tb->logdir));
    double now = tb->has_origin ? tb->origin : unix_time();
    LM_TRY(open_event_file(tb, tb->logdir, now));
    lm_buffer_clear(&tb->data);
    LM_TRY(put_event_header(&tb->data, now, 0));
    LM_TRY(put_bytes(&tb->data, 3, "brain.Event:2", strlen("brain.Event:2")));
    return write_record(tb);
}

static lm_status tensorboard_log(void *self, const lm_event *ev) {
    tensorboard *tb = self;
    const char *prefix;
    switch (ev->kind) {
    case LM_EVENT_STEP: prefix = "train/"; break;
    case LM_EVENT_EVAL: prefix = "eval/"; break;
    case LM_EVENT_RUN_END: prefix = "run/"; break;
    case LM_EVENT_RUN_BEGIN: return ensure_file(tb);
    default: return LM_OK; /* messages, PROGRESS: nothing to plot */
    }
    size_t n_kept = 0;
    for (size_t i = 0; i < ev->n_scalars; i++) n_kept += (size_t)kept(&ev->scalars[i]);
    if (n_kept == 0) return LM_OK;
    LM_TRY(ensure_file(tb)); /* before the origin: the header's time is the file's creation */
    if (!tb->has_origin) {
        tb->origin = unix_time() - ev->elapsed;
        tb->has_origin = 1;
    }
    lm_buffer_clear(&tb->data);
    LM_TRY(encode_summary_event(&tb->data, tb->origin + ev->elapsed, ev, prefix));
    return write_record(tb);
}

static lm_status tensorboard_flush(void *self) {
    tensorboard *tb = self;
    if (!tb->file) return LM_OK; /* nothing written yet */
    return fflush(tb->file) == 0 ? LM_OK : lm_error_set(LM_ERR_IO, "cannot flush '%s'", tb->path);
}

static const lm_logger_vtable tensorboard_vtable = {tensorboard_create, tensorboard_destroy, tensorboard_log,
                                                    tensorboard_flush};

LM_PLUGIN_DEFINE(LM_KIND_LOGGER, "tensorboard", "1.0.0",
                 "TensorBoard event files: train/, eval/ and run/ scalars, readable by TensorBoard",
                 lm_logger_vtable, tensorboard_vtable)
