/* Logger 'tensorboard': the event file equals, byte for byte, the one
 * TensorBoard's own Python writer makes for the same events
 * (fixtures/gen_tb_fixture.py); an independent reader here (table CRC-32C,
 * generic protobuf decoding) checks every record's CRCs and fields;
 * PROGRESS events write nothing; records are on disk as soon as an event
 * is logged; errors are clear. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "logger_test_util.h"
#include "test_main.h"

#define FIXTURE LM_TEST_SOURCE_DIR "/tests/loggers/fixtures/tensorboard_expected.tfevents"
#define START_TIME 1700000000.25

/* ---- an independent reader ---------------------------------------------------- */

static uint32_t crc_table[256];

static uint32_t reader_crc32c(const uint8_t *p, size_t n) {
    if (!crc_table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            crc_table[i] = c;
        }
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static uint32_t reader_masked(const uint8_t *p, size_t n) {
    uint32_t c = reader_crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

static uint64_t load_le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

typedef struct tb_value {
    char tag[256];
    float value;
} tb_value;

typedef struct tb_record {
    double wall_time;
    int64_t step;
    char file_version[32];
    int n_values;
    tb_value values[8];
} tb_record;

typedef struct cursor {
    const uint8_t *p, *end;
} cursor;

static uint64_t read_varint(cursor *c) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        ck_assert_msg(c->p < c->end, "varint runs past its message");
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return v;
    }
    ck_abort_msg("varint longer than 10 bytes");
    return 0;
}

static cursor read_bytes(cursor *c) {
    uint64_t n = read_varint(c);
    ck_assert_msg(n <= (uint64_t)(c->end - c->p), "length-delimited field runs past its message");
    cursor sub = {c->p, c->p + n};
    c->p += n;
    return sub;
}

static void skip_field(cursor *c, int wire) {
    switch (wire) {
    case 0: read_varint(c); break;
    case 1: c->p += 8; break;
    case 2: read_bytes(c); break;
    case 5: c->p += 4; break;
    default: ck_abort_msg("unknown wire type %d", wire);
    }
    ck_assert(c->p <= c->end);
}

static void decode_value(cursor c, tb_value *v) {
    memset(v, 0, sizeof *v);
    v->value = NAN;
    while (c.p < c.end) {
        uint64_t key = read_varint(&c);
        int field = (int)(key >> 3), wire = (int)(key & 7);
        if (field == 1 && wire == 2) {
            cursor s = read_bytes(&c);
            size_t n = (size_t)(s.end - s.p);
            ck_assert_uint_lt(n, sizeof v->tag);
            memcpy(v->tag, s.p, n);
        } else if (field == 2 && wire == 5) {
            uint32_t bits = (uint32_t)load_le(c.p, 4);
            memcpy(&v->value, &bits, 4);
            c.p += 4;
        } else {
            skip_field(&c, wire);
        }
    }
}

static void decode_event(cursor c, tb_record *r) {
    memset(r, 0, sizeof *r);
    while (c.p < c.end) {
        uint64_t key = read_varint(&c);
        int field = (int)(key >> 3), wire = (int)(key & 7);
        if (field == 1 && wire == 1) {
            uint64_t bits = load_le(c.p, 8);
            memcpy(&r->wall_time, &bits, 8);
            c.p += 8;
        } else if (field == 2 && wire == 0) {
            r->step = (int64_t)read_varint(&c);
        } else if (field == 3 && wire == 2) {
            cursor s = read_bytes(&c);
            ck_assert_uint_lt((size_t)(s.end - s.p), sizeof r->file_version);
            memcpy(r->file_version, s.p, (size_t)(s.end - s.p));
        } else if (field == 5 && wire == 2) {
            cursor summary = read_bytes(&c);
            while (summary.p < summary.end) {
                uint64_t k = read_varint(&summary);
                if (k == (1 << 3 | 2)) {
                    ck_assert_int_lt(r->n_values, 8);
                    decode_value(read_bytes(&summary), &r->values[r->n_values++]);
                } else {
                    skip_field(&summary, (int)(k & 7));
                }
            }
        } else {
            skip_field(&c, wire);
        }
    }
}

/* Reads every record of the file, checking both CRCs of each. */
static int read_event_file(const char *path, tb_record *out, int cap) {
    size_t len;
    uint8_t *data = (uint8_t *)test_read_file(path, &len);
    ck_assert_msg(data != NULL, "cannot read %s", path);
    size_t at = 0;
    int n = 0;
    while (at < len) {
        ck_assert_msg(len - at >= 12, "truncated record header at byte %zu", at);
        uint64_t size = load_le(data + at, 8);
        ck_assert_msg((uint32_t)load_le(data + at + 8, 4) == reader_masked(data + at, 8), "bad length CRC at %zu", at);
        ck_assert_msg(len - at - 12 >= size + 4, "truncated record at byte %zu", at);
        const uint8_t *payload = data + at + 12;
        ck_assert_msg((uint32_t)load_le(payload + size, 4) == reader_masked(payload, size), "bad data CRC at %zu", at);
        ck_assert_int_lt(n, cap);
        decode_event((cursor){payload, payload + size}, &out[n++]);
        at += 12 + size + 4;
    }
    free(data);
    return n;
}

/* ---- the events (keep in sync with fixtures/gen_tb_fixture.py) ------------------- */

#define LONG_NAME                                                                                                     \
    "a_metric_with_a_name_long_enough_to_need_two_byte_varint_lengths_"                                               \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

typedef struct scripted {
    lm_event_kind kind;
    const char *prefix; /* NULL: not written */
    int64_t step;
    double elapsed;
    size_t n;
    lm_scalar scalars[6];
} scripted;

static const scripted script[] = {
    {LM_EVENT_RUN_BEGIN, NULL, 0, 0.0, 2, {{"n_params", 124e6}, {"block_size", 128}}},
    {LM_EVENT_PROGRESS, NULL, 1, 0.4, 0, {{NULL, 0}}},
    {LM_EVENT_STEP, "train/", 1, 0.5, 5,
     {{"loss", 10.875}, {"learning_rate", 2e-5}, {"grad_norm", 3.25}, {"tokens_per_second", 1234.5}, {"rss_mb", 512}}},
    {LM_EVENT_PROGRESS, NULL, 2, 0.9, 0, {{NULL, 0}}},
    {LM_EVENT_STEP, "train/", 2, 1.0, 5,
     {{"loss", 9.5}, {"learning_rate", 1.5e-5}, {"grad_norm", 2.0}, {"tokens_per_second", 1300.25}, {"rss_mb", 513.5}}},
    {LM_EVENT_MESSAGE, NULL, 2, 1.5, 0, {{NULL, 0}}},
    {LM_EVENT_EVAL, "eval/", 2, 1.75, 4,
     {{"train_loss", 10.1875}, {"eval_loss", 9.25}, {"perplexity", 10404.565716560723}, {"epoch_index", 1}}},
    {LM_EVENT_STEP, "train/", 3, 2.5, 5,
     {{"loss", 0.0}, {"learning_rate", 0.0}, {"grad_norm", 1e-3}, {"tokens_per_second", 1e6}, {LONG_NAME, -7.125}}},
    {LM_EVENT_RUN_END, "run/", 3, 3.0, 6,
     {{"train_runtime", 3.0},
      {"train_samples_per_second", 8.0},
      {"train_steps_per_second", 1.0},
      {"train_loss", 6.7},
      {"eval_loss", NAN},
      {"perplexity", NAN}}},
};
#define N_SCRIPT (sizeof script / sizeof script[0])

static void log_scripted(test_logger *t, const scripted *s) {
    lm_event ev = test_event(s->kind, s->step, s->elapsed, s->scalars, s->n);
    if (s->kind == LM_EVENT_MESSAGE) ev.text = "a message TensorBoard does not show";
    if (s->kind == LM_EVENT_RUN_BEGIN) ev.text = "gpt2 on cpu";
    lm_status st = test_logger_log(t, &ev);
    ck_assert_msg(st == LM_OK, "log failed: %s", lm_error_message());
}

static void open_logger(test_logger *t, const char *dir, int fixed_start) {
    char logdir[512];
    snprintf(logdir, sizeof logdir, "logdir=%s", dir);
    lm_config *cfg = fixed_start ? test_config("logger 'tensorboard'", logdir, "start_time=1700000000.25", NULL)
                                 : test_config("logger 'tensorboard'", logdir, NULL);
    lm_status s = test_logger_open(t, "tensorboard", cfg);
    ck_assert_msg(s == LM_OK, "create failed: %s", lm_error_message());
    lm_config_destroy(cfg);
}

/* ---- tests ------------------------------------------------------------------------ */

START_TEST(reader_crc32c_known_answer) {
    /* The check value of CRC-32C (RFC 3720, B.4): the reader is trustworthy. */
    ck_assert_uint_eq(reader_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
    uint8_t zeros[32] = {0};
    ck_assert_uint_eq(reader_crc32c(zeros, 32), 0x8A9136AAu);
}
END_TEST

START_TEST(file_equals_tensorboard_python_writer) {
    char *dir = test_temp_dir("tb");
    test_logger t;
    open_logger(&t, dir, 1);
    for (size_t i = 0; i < N_SCRIPT; i++) log_scripted(&t, &script[i]);
    test_logger_close(&t);

    char host[256] = "localhost";
    gethostname(host, sizeof host);
    char expected_name[600];
    snprintf(expected_name, sizeof expected_name, "%s/events.out.tfevents.1700000000.%s", dir, host);
    char *path = test_find_file(dir, "tfevents");
    ck_assert_ptr_nonnull(path);
    ck_assert_str_eq(path, expected_name);

    size_t got_len, want_len;
    char *got = test_read_file(path, &got_len);
    char *want = test_read_file(FIXTURE, &want_len);
    ck_assert_msg(want != NULL, "missing fixture %s: run fixtures/gen_tb_fixture.py", FIXTURE);
    ck_assert_uint_eq(got_len, want_len);
    for (size_t i = 0; i < want_len; i++)
        ck_assert_msg(got[i] == want[i], "first difference at byte %zu: 0x%02x, TensorBoard wrote 0x%02x", i,
                      (unsigned char)got[i], (unsigned char)want[i]);
    free(got);
    free(want);
    free(path);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(records_decode_to_the_logged_events) {
    char *dir = test_temp_dir("tb");
    test_logger t;
    open_logger(&t, dir, 1);
    for (size_t i = 0; i < N_SCRIPT; i++) log_scripted(&t, &script[i]);
    test_logger_close(&t);
    char *path = test_find_file(dir, "tfevents");
    tb_record records[16];
    int n = read_event_file(path, records, 16);
    ck_assert_int_eq(n, 6); /* file_version + 3 steps + eval + run end; begin, PROGRESS and message write nothing */
    ck_assert_str_eq(records[0].file_version, "brain.Event:2");
    ck_assert_double_eq(records[0].wall_time, START_TIME);
    ck_assert_int_eq(records[0].n_values, 0);
    int r = 1;
    for (size_t i = 0; i < N_SCRIPT; i++) {
        const scripted *s = &script[i];
        if (!s->prefix) continue;
        const tb_record *rec = &records[r++];
        ck_assert_int_eq(rec->step, s->step);
        ck_assert_double_eq(rec->wall_time, START_TIME + s->elapsed);
        ck_assert_str_eq(rec->file_version, "");
        int v = 0;
        for (size_t k = 0; k < s->n; k++) {
            if (isnan(s->scalars[k].value)) continue; /* left out */
            char tag[300];
            snprintf(tag, sizeof tag, "%s%s", s->prefix, s->scalars[k].name);
            ck_assert_int_lt(v, rec->n_values);
            ck_assert_str_eq(rec->values[v].tag, tag);
            ck_assert_float_eq(rec->values[v].value, (float)s->scalars[k].value);
            v++;
        }
        ck_assert_int_eq(rec->n_values, v);
    }
    ck_assert_int_eq(records[5].n_values, 4); /* run/eval_loss and run/perplexity were NaN */
    free(path);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(each_event_is_on_disk_at_once) {
    char *dir = test_temp_dir("tb");
    test_logger t;
    open_logger(&t, dir, 0);
    /* No file before the run begins: a run that fails first leaves none. */
    ck_assert_int_eq(test_count_files(dir, "tfevents"), 0);
    log_scripted(&t, &script[0]);
    char *path = test_find_file(dir, "tfevents");
    ck_assert_ptr_nonnull(path);
    tb_record records[8];
    ck_assert_int_eq(read_event_file(path, records, 8), 1); /* file_version, at the run's begin */
    double before = (double)time(NULL);
    log_scripted(&t, &script[2]);
    ck_assert_int_eq(read_event_file(path, records, 8), 2);
    log_scripted(&t, &script[3]); /* PROGRESS: no record */
    ck_assert_int_eq(read_event_file(path, records, 8), 2);
    log_scripted(&t, &script[4]);
    ck_assert_int_eq(read_event_file(path, records, 8), 3);
    /* Without start_time the wall times are real UNIX times, elapsed apart. */
    ck_assert_double_ge(records[1].wall_time, before - 5);
    ck_assert_double_le(records[1].wall_time, before + 60);
    ck_assert_double_eq_tol(records[2].wall_time - records[1].wall_time, 0.5, 1e-6);
    test_logger_close(&t);
    free(path);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(two_runs_in_one_second_keep_both_files) {
    char *dir = test_temp_dir("tb");
    test_logger a, b;
    open_logger(&a, dir, 1);
    open_logger(&b, dir, 1);
    log_scripted(&a, &script[2]);
    log_scripted(&b, &script[4]);
    test_logger_close(&a);
    test_logger_close(&b);
    ck_assert_int_eq(test_count_files(dir, "events.out.tfevents.1700000000."), 2);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(bad_settings_are_clear_errors) {
    test_logger t;
    lm_config *cfg = test_config("logger 'tensorboard'", NULL);
    ck_assert_int_eq(test_logger_open(&t, "tensorboard", cfg), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "needs a 'logdir'"));
    lm_config_destroy(cfg);

    char *dir = test_temp_dir("tb");
    char file[600], logdir[700];
    snprintf(file, sizeof file, "%s/plain_file", dir);
    FILE *f = fopen(file, "w");
    fclose(f);
    snprintf(logdir, sizeof logdir, "logdir=%s/sub", file); /* a folder inside a regular file */
    cfg = test_config("logger 'tensorboard'", logdir, NULL);
    ck_assert_int_eq(test_logger_open(&t, "tensorboard", cfg), LM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "plain_file"));
    ck_assert_ptr_null(strchr(lm_error_message(), '\n'));
    lm_config_destroy(cfg);

    snprintf(logdir, sizeof logdir, "logdir=%s", dir);
    cfg = test_config("logger 'tensorboard'", logdir, "start_time=-3", NULL);
    ck_assert_int_eq(test_logger_open(&t, "tensorboard", cfg), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "start_time"));
    lm_config_destroy(cfg);
    ck_assert_int_eq(test_count_files(dir, "tfevents"), 0);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("logger_tensorboard");
    TCase *tc = tcase_create("tensorboard");
    tcase_add_test(tc, reader_crc32c_known_answer);
    tcase_add_test(tc, file_equals_tensorboard_python_writer);
    tcase_add_test(tc, records_decode_to_the_logged_events);
    tcase_add_test(tc, each_event_is_on_disk_at_once);
    tcase_add_test(tc, two_runs_in_one_second_keep_both_files);
    tcase_add_test(tc, bad_settings_are_clear_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(suite(), NULL);
}
