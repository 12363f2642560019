/* Dataset plugins wikitext, text and jsonl, loaded from the build tree with
 * dlopen.  WikiText rows are checked against what Hugging Face's wikitext
 * loader yields (one row per line, "" for blank lines, "\n" kept); the
 * reference counts below come from Python:
 *   rows = [r if r.strip() else "" for r in open(f, encoding="utf-8")]
 * The train split is absent on purpose (see shared/data/wikitext-2-raw). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcore/lmcore.h"
#include "plugin_load.h"
#include "test_main.h"

#define WIKITEXT_DIR LM_TEST_SHARED_DATA_DIR "/wikitext-2-raw"

static char temp_dir[256];

static void make_temp_dir(void) {
    snprintf(temp_dir, sizeof temp_dir, "/tmp/lm_test_datasets_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(temp_dir));
}

static void remove_temp_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", temp_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes `len` bytes to temp_dir/name and returns the path (static storage,
 * one of four rotating slots). */
static const char *temp_file(const char *name, const char *data, size_t len) {
    static char paths[4][512];
    static int slot;
    char *path = paths[slot++ % 4];
    snprintf(path, 512, "%s/%s", temp_dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    return path;
}

static const lm_dataset_vtable *load_plugin(const char *name) {
    char file[128];
    snprintf(file, sizeof file, "dataset_%s", name);
    const lm_plugin_descriptor *d = lm_test_plugin(file, LM_KIND_DATASET);
    ck_assert_str_eq(d->name, name);
    ck_assert_uint_eq(d->vtable_size, sizeof(lm_dataset_vtable));
    return d->vtable; /* the library stays loaded until the test process exits */
}

typedef struct dataset {
    const lm_dataset_vtable *vt;
    void *self;
    lm_config *cfg;
} dataset;

/* Creates a dataset from "key=value" strings; "key=@a,b" makes a list. */
static lm_status open_dataset(dataset *ds, const char *plugin, const char *const *settings) {
    ds->vt = load_plugin(plugin);
    ck_assert_int_eq(lm_config_create(&ds->cfg, plugin), LM_OK);
    for (size_t i = 0; settings && settings[i]; i++) {
        char key[64];
        const char *eq = strchr(settings[i], '=');
        ck_assert_ptr_nonnull(eq);
        snprintf(key, sizeof key, "%.*s", (int)(eq - settings[i]), settings[i]);
        if (eq[1] == '@') {
            char copy[2048];
            const char *items[8];
            size_t n = 0;
            snprintf(copy, sizeof copy, "%s", eq + 2);
            for (char *tok = strtok(copy, ","); tok && n < 8; tok = strtok(NULL, ",")) items[n++] = tok;
            ck_assert_int_eq(lm_config_set_list(ds->cfg, key, items, n), LM_OK);
        } else {
            ck_assert_int_eq(lm_config_set_string(ds->cfg, key, eq + 1), LM_OK);
        }
    }
    ds->self = NULL;
    lm_status s = ds->vt->create(&ds->self, ds->cfg);
    if (s == LM_OK) {
        /* Every key the plugin supports must have been read. */
        ck_assert_msg(lm_config_validate(ds->cfg) == LM_OK, "%s", lm_error_message());
    }
    return s;
}

static void close_dataset(dataset *ds) {
    if (ds->self) ds->vt->destroy(ds->self);
    lm_config_destroy(ds->cfg);
}

/* The split's rows: open_split must succeed. */
static const lm_text_source *source(dataset *ds, const char *split) {
    const lm_text_source *src = NULL;
    ck_assert_msg(ds->vt->open_split(ds->self, split, &src) == LM_OK, "%s", lm_error_message());
    ck_assert_ptr_nonnull(src);
    return src;
}

/* open_split's status, for splits that must fail (the source is not kept). */
static lm_status open_status(dataset *ds, const char *split) {
    const lm_text_source *src = NULL;
    return ds->vt->open_split(ds->self, split, &src);
}

static size_t row_count(dataset *ds, const char *split) { return source(ds, split)->count; }

static const char *row(dataset *ds, const char *split, size_t index, size_t *len) {
    const lm_text_source *src = source(ds, split);
    const char *text = NULL;
    ck_assert_msg(src->row(src->ctx, index, &text, len) == LM_OK, "%s", lm_error_message());
    return text;
}

static void assert_row(dataset *ds, const char *split, size_t index, const char *expected) {
    size_t len;
    const char *text = row(ds, split, index, &len);
    ck_assert_uint_eq(len, strlen(expected));
    ck_assert_int_eq(memcmp(text, expected, len), 0);
    ck_assert_int_eq(text[len], '\0'); /* rows are also C strings */
}

static uint64_t file_hash(const char *path) {
    lm_buffer b = {0};
    ck_assert_int_eq(lm_file_read(path, &b), LM_OK);
    uint64_t h = lm_hash64(b.data, b.len, LM_HASH_SEED);
    lm_buffer_free(&b);
    return h;
}

/* ---- wikitext ------------------------------------------------------------------------ */

START_TEST(wikitext_rows_match_hugging_face) {
    dataset ds;
    const char *settings[] = {"path=" WIKITEXT_DIR, NULL};
    ck_assert_int_eq(open_dataset(&ds, "wikitext", settings), LM_OK);
    size_t n_splits;
    const char *name;
    ck_assert_int_eq(ds.vt->split_count(ds.self, &n_splits), LM_OK);
    ck_assert_uint_eq(n_splits, 3);
    const char *expected_names[] = {"train", "validation", "test"};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(ds.vt->split_name(ds.self, i, &name), LM_OK);
        ck_assert_str_eq(name, expected_names[i]);
    }
    const struct {
        const char *split;
        size_t rows, empty, bytes;
        const char *heading;
    } ref[] = {{"test", 4358, 1467, 1287656, " = Robert Boulter = \n"},
               {"validation", 3760, 1299, 1144248, " = Homarus gammarus = \n"}};
    for (size_t s = 0; s < 2; s++) {
        size_t n = row_count(&ds, ref[s].split);
        ck_assert_uint_eq(n, ref[s].rows);
        assert_row(&ds, ref[s].split, 0, "");
        assert_row(&ds, ref[s].split, 1, ref[s].heading);
        assert_row(&ds, ref[s].split, 2, "");
        assert_row(&ds, ref[s].split, n - 1, "");
        size_t empty = 0, bytes = 0, without_newline = 0, len;
        for (size_t i = 0; i < n; i++) {
            const char *text = row(&ds, ref[s].split, i, &len);
            empty += len == 0;
            bytes += len;
            without_newline += len > 0 && text[len - 1] != '\n';
        }
        ck_assert_uint_eq(empty, ref[s].empty);
        ck_assert_uint_eq(bytes, ref[s].bytes);
        ck_assert_uint_eq(without_newline, 0);
    }
    size_t len;
    const char *third = row(&ds, "test", 3, &len);
    ck_assert_int_eq(strncmp(third, " Robert Boulter is an English film , television and theatre actor", 65), 0);
    /* The same source every time; past the end is an error naming split, index and count. */
    const lm_text_source *test = source(&ds, "test");
    ck_assert_ptr_eq(test, source(&ds, "test"));
    ck_assert_str_eq(test->name, "test");
    ck_assert_int_eq(test->row(test->ctx, 4358, &third, &len), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(), "dataset 'wikitext', split 'test': row 4358 out of range (4358 rows)");
    close_dataset(&ds);
}
END_TEST

START_TEST(wikitext_fingerprint_hashes_the_file) {
    dataset ds;
    const char *settings[] = {"path=" WIKITEXT_DIR, NULL};
    ck_assert_int_eq(open_dataset(&ds, "wikitext", settings), LM_OK);
    uint64_t test_hash = source(&ds, "test")->fingerprint, valid_hash = source(&ds, "validation")->fingerprint;
    ck_assert(test_hash == file_hash(WIKITEXT_DIR "/wiki.test.raw"));
    ck_assert(valid_hash == file_hash(WIKITEXT_DIR "/wiki.valid.raw"));
    ck_assert(test_hash != valid_hash);
    close_dataset(&ds);
}
END_TEST

/* The train file is absent here: the other splits still work, and using
 * train says how to get it. */
START_TEST(wikitext_missing_split_says_how_to_fetch) {
    dataset ds;
    const char *settings[] = {"path=" WIKITEXT_DIR, NULL};
    ck_assert_int_eq(open_dataset(&ds, "wikitext", settings), LM_OK);
    ck_assert_int_eq(open_status(&ds, "train"), LM_ERR_IO);
    const char *msg = lm_error_message();
    ck_assert_msg(strstr(msg, "wiki.train.raw") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "scripts/fetch_wikitext2.sh") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "train=") != NULL, "%s", msg);
    ck_assert_int_eq(open_status(&ds, "train"), LM_ERR_IO); /* fails again, the same way */
    ck_assert_uint_eq(row_count(&ds, "test"), 4358);
    ck_assert_int_eq(open_status(&ds, "dev"), LM_ERR_NOT_FOUND);
    ck_assert_str_eq(lm_error_message(), "dataset 'wikitext' has no split 'dev' (its splits: train, validation, test)");
    close_dataset(&ds);
}
END_TEST

/* Explicit per-split files override the folder (here: train on test, as the
 * project's tests do). */
START_TEST(wikitext_explicit_split_files) {
    dataset ds;
    const char *settings[] = {"path=/nonexistent", "train=" WIKITEXT_DIR "/wiki.test.raw",
                              "validation=" WIKITEXT_DIR "/wiki.valid.raw", "test=" WIKITEXT_DIR "/wiki.test.raw",
                              NULL};
    ck_assert_int_eq(open_dataset(&ds, "wikitext", settings), LM_OK);
    ck_assert_uint_eq(row_count(&ds, "train"), 4358);
    ck_assert_uint_eq(row_count(&ds, "validation"), 3760);
    assert_row(&ds, "train", 1, " = Robert Boulter = \n");
    close_dataset(&ds);
}
END_TEST

/* Python's text mode: universal newlines, str.strip() Unicode whitespace,
 * the last line without "\n" kept as is; invalid UTF-8 refused. */
START_TEST(wikitext_follows_python_line_semantics) {
    make_temp_dir();
    const char text[] = " = Title = \r\n"        /* CRLF read as LF */
                        " \t \n"                 /* blank */
                        "\xc2\xa0\xe3\x80\x80\n" /* NBSP + ideographic space: blank for str.strip() */
                        "\x1c\n"                 /* U+001C: str.isspace() is true */
                        "a\rb\n"                 /* lone CR ends a line too */
                        "\xc3\xa9 last";         /* no final newline */
    const char *path = temp_file("wiki.test.raw", text, sizeof text - 1);
    char setting[600];
    snprintf(setting, sizeof setting, "test=%s", path);
    const char *settings[] = {setting, NULL};
    dataset ds;
    ck_assert_int_eq(open_dataset(&ds, "wikitext", settings), LM_OK);
    ck_assert_uint_eq(row_count(&ds, "test"), 7);
    assert_row(&ds, "test", 0, " = Title = \n");
    assert_row(&ds, "test", 1, "");
    assert_row(&ds, "test", 2, "");
    assert_row(&ds, "test", 3, "");
    assert_row(&ds, "test", 4, "a\n");
    assert_row(&ds, "test", 5, "b\n");
    assert_row(&ds, "test", 6, "\xc3\xa9 last");
    ck_assert(source(&ds, "test")->fingerprint == lm_hash64(text, sizeof text - 1, LM_HASH_SEED)); /* as stored */
    close_dataset(&ds);

    const char bad[] = "ok\nstill ok\nbad \xff byte\n";
    path = temp_file("bad.raw", bad, sizeof bad - 1);
    snprintf(setting, sizeof setting, "validation=%s", path);
    ck_assert_int_eq(open_dataset(&ds, "wikitext", settings), LM_OK);
    ck_assert_int_eq(open_status(&ds, "validation"), LM_ERR_FORMAT);
    char where[600];
    snprintf(where, sizeof where, "%s:3: invalid UTF-8", path);
    ck_assert_msg(strstr(lm_error_message(), where) != NULL, "%s", lm_error_message());
    close_dataset(&ds);
    remove_temp_dir();
}
END_TEST

/* ---- text ----------------------------------------------------------------------------- */

START_TEST(text_rows_strip_newlines) {
    make_temp_dir();
    const char a[] = "first\nsecond\r\n\nlast without newline";
    const char b[] = "\xc3\xa9t\xc3\xa9\n";
    const char *pa = temp_file("a.txt", a, sizeof a - 1);
    const char *pb = temp_file("b.txt", b, sizeof b - 1);
    char train[1200], test[600];
    snprintf(train, sizeof train, "train=@%s,%s", pa, pb);
    snprintf(test, sizeof test, "test=%s", pb);
    const char *settings[] = {train, test, NULL};
    dataset ds;
    ck_assert_int_eq(open_dataset(&ds, "text", settings), LM_OK);
    size_t n_splits;
    const char *name;
    ck_assert_int_eq(ds.vt->split_count(ds.self, &n_splits), LM_OK);
    ck_assert_uint_eq(n_splits, 2);
    ck_assert_int_eq(ds.vt->split_name(ds.self, 1, &name), LM_OK);
    ck_assert_str_eq(name, "test");
    ck_assert_uint_eq(row_count(&ds, "train"), 5);
    assert_row(&ds, "train", 0, "first");
    assert_row(&ds, "train", 1, "second");
    assert_row(&ds, "train", 2, "");
    assert_row(&ds, "train", 3, "last without newline");
    assert_row(&ds, "train", 4, "\xc3\xa9t\xc3\xa9");
    ck_assert_uint_eq(row_count(&ds, "test"), 1);
    const lm_text_source *train_rows = source(&ds, "train");
    ck_assert(train_rows->fingerprint == lm_hash64(b, sizeof b - 1, lm_hash64(a, sizeof a - 1, LM_HASH_SEED)));
    const char *text;
    size_t len;
    ck_assert_int_eq(train_rows->row(train_rows->ctx, 5, &text, &len), LM_ERR_INVALID);
    ck_assert_str_eq(lm_error_message(), "dataset 'text', split 'train': row 5 out of range (5 rows)");
    ck_assert_int_eq(open_status(&ds, "validation"), LM_ERR_NOT_FOUND);
    ck_assert_str_eq(lm_error_message(), "dataset 'text' has no split 'validation': give its files with "
                                         "validation=<file>");
    ck_assert_int_eq(open_status(&ds, "dev"), LM_ERR_NOT_FOUND); /* no such key exists */
    ck_assert_str_eq(lm_error_message(), "dataset 'text' has no split 'dev' (it knows train, validation and test, "
                                         "each given as <split>=<file>)");
    close_dataset(&ds);
    remove_temp_dir();
}
END_TEST

START_TEST(text_errors_name_file_and_line) {
    make_temp_dir();
    const char bad[] = "fine\nalso fine\n\xe2\x82 truncated\n";
    const char *path = temp_file("bad.txt", bad, sizeof bad - 1);
    char setting[600];
    snprintf(setting, sizeof setting, "train=%s", path);
    const char *settings[] = {setting, NULL};
    dataset ds;
    ck_assert_int_eq(open_dataset(&ds, "text", settings), LM_OK);
    ck_assert_int_eq(open_status(&ds, "train"), LM_ERR_FORMAT);
    char where[600];
    snprintf(where, sizeof where, "%s:3: invalid UTF-8", path);
    ck_assert_msg(strstr(lm_error_message(), where) != NULL, "%s", lm_error_message());
    close_dataset(&ds);

    const char *missing[] = {"validation=/nonexistent/valid.txt", NULL};
    ck_assert_int_eq(open_dataset(&ds, "text", missing), LM_OK);
    ck_assert_int_eq(open_status(&ds, "validation"), LM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "/nonexistent/valid.txt"));
    close_dataset(&ds);

    ck_assert_int_eq(open_dataset(&ds, "text", NULL), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "train="));
    close_dataset(&ds);
    remove_temp_dir();
}
END_TEST

/* ---- jsonl ---------------------------------------------------------------------------- */

START_TEST(jsonl_rows_from_field) {
    make_temp_dir();
    const char data[] = "{\"text\": \"hello\", \"body\": \"b1\"}\n"
                        "   \n"
                        "{\"id\": 1, \"text\": \"a\\nb \\u00e9\", \"body\": \"b2\"}\r\n"
                        "{\"text\": \"\", \"body\": \"b3\"}";
    const char *path = temp_file("d.jsonl", data, sizeof data - 1);
    char setting[600];
    snprintf(setting, sizeof setting, "train=%s", path);
    const char *settings[] = {setting, NULL};
    dataset ds;
    ck_assert_int_eq(open_dataset(&ds, "jsonl", settings), LM_OK);
    ck_assert_uint_eq(row_count(&ds, "train"), 3);
    assert_row(&ds, "train", 0, "hello");
    assert_row(&ds, "train", 1, "a\nb \xc3\xa9");
    assert_row(&ds, "train", 2, "");
    ck_assert(source(&ds, "train")->fingerprint == lm_hash64(data, sizeof data - 1, LM_HASH_SEED));
    close_dataset(&ds);

    const char *with_field[] = {setting, "field=body", NULL};
    ck_assert_int_eq(open_dataset(&ds, "jsonl", with_field), LM_OK);
    ck_assert_uint_eq(row_count(&ds, "train"), 3);
    assert_row(&ds, "train", 2, "b3");
    close_dataset(&ds);
    remove_temp_dir();
}
END_TEST

static const struct {
    const char *line;
    const char *where;   /* ":LINE:" or ":LINE:COL:" after the path */
    const char *problem; /* expected in the message */
} bad_jsonl_lines[] = {
    {"{\"text\": \"x\"", ":2:13:", "expected ',' or '}'"},
    {"{\"text\": 1}", ":2:", "\"text\" is a number, expected a string"},
    {"[\"text\"]", ":2:", "expected a JSON object, found an array"},
    {"{\"other\": \"x\"}", ":2:", "no member \"text\""},
    {"{\"text\": \"x\"} trailing", ":2:15:", "end of input"},
    {"{\"text\": \"\xff\"}", ":2:11:", "invalid UTF-8"},
};

START_TEST(jsonl_bad_line_names_file_and_line) {
    make_temp_dir();
    char data[256];
    int n =
        snprintf(data, sizeof data, "{\"text\": \"good\"}\n%s\n{\"text\": \"never read\"}\n", bad_jsonl_lines[_i].line);
    const char *path = temp_file("bad.jsonl", data, (size_t)n);
    char setting[600];
    snprintf(setting, sizeof setting, "validation=%s", path);
    const char *settings[] = {setting, NULL};
    dataset ds;
    ck_assert_int_eq(open_dataset(&ds, "jsonl", settings), LM_OK);
    ck_assert_int_eq(open_status(&ds, "validation"), LM_ERR_FORMAT);
    char where[600];
    snprintf(where, sizeof where, "%s%s", path, bad_jsonl_lines[_i].where);
    const char *msg = lm_error_message();
    ck_assert_msg(strstr(msg, where) != NULL, "expected '%s' in: %s", where, msg);
    ck_assert_msg(strstr(msg, bad_jsonl_lines[_i].problem) != NULL, "expected '%s' in: %s", bad_jsonl_lines[_i].problem,
                  msg);
    close_dataset(&ds);
    remove_temp_dir();
}
END_TEST

static Suite *datasets_suite(void) {
    Suite *s = suite_create("datasets");
    TCase *wiki = tcase_create("wikitext");
    tcase_add_test(wiki, wikitext_rows_match_hugging_face);
    tcase_add_test(wiki, wikitext_fingerprint_hashes_the_file);
    tcase_add_test(wiki, wikitext_missing_split_says_how_to_fetch);
    tcase_add_test(wiki, wikitext_explicit_split_files);
    tcase_add_test(wiki, wikitext_follows_python_line_semantics);
    suite_add_tcase(s, wiki);
    TCase *text = tcase_create("text");
    tcase_add_test(text, text_rows_strip_newlines);
    tcase_add_test(text, text_errors_name_file_and_line);
    suite_add_tcase(s, text);
    TCase *jsonl = tcase_create("jsonl");
    tcase_add_test(jsonl, jsonl_rows_from_field);
    tcase_add_loop_test(jsonl, jsonl_bad_line_names_file_and_line, 0,
                        (int)(sizeof bad_jsonl_lines / sizeof bad_jsonl_lines[0]));
    suite_add_tcase(s, jsonl);
    return s;
}

int main(void) {
    return lm_test_run_suites(datasets_suite(), NULL);
}
