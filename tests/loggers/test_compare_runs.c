/* scripts/compare_runs.lua: the markdown table of several runs and the SVG
 * of their validation curves, read from each run's .log.jsonl (beside the
 * run folder, or where results.json's "log" says); every point lands where
 * its (step or epoch, eval_loss) says, through the SVG's tick labels. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "logger_test_util.h"
#include "runtime.h"
#include "test_main.h"

#define SCRIPT LM_TEST_SOURCE_DIR "/scripts/compare_runs.lua"

static void write_text(const char *dir, const char *name, const char *text) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static const double gpt2_loss[] = {5.125, 4.6875, 4.5};
static const double bert_loss[] = {7.25, 6.5};

/* Three runs: GPT-2 (log beside its folder), BERT (log where results.json
 * says), and one without any log. */
static void make_runs(const char *tmp) {
    char dir[600], text[2048];
    snprintf(dir, sizeof dir, "%s/gpt2", tmp);
    mkdir(dir, 0777);
    write_text(dir, "results.json",
               "{\"model\": \"GPT-2\", \"architecture\": \"causal (unidirectional)\", \"objective\": \"clm\", "
               "\"eval_loss\": 4.5, \"perplexity\": 90.0171313, \"steps\": 30, \"runtime_seconds\": 12.4, "
               "\"train_split\": \"test\", \"eval_split\": \"validation\", \"log\": \"/nonexistent.jsonl\"}\n");
    snprintf(text, sizeof text,
             "{\"event\":\"run_begin\",\"step\":0,\"epoch\":0,\"text\":\"gpt2\"}\n"
             "{\"event\":\"step\",\"step\":10,\"epoch\":1,\"loss\":5.5}\n"
             "{\"event\":\"eval\",\"step\":10,\"epoch\":1,\"eval_loss\":%g}\n"
             "{\"event\":\"eval\",\"step\":20,\"epoch\":2,\"eval_loss\":%g}\n"
             "{\"event\":\"eval\",\"step\":30,\"epoch\":3,\"eval_loss\":%g}\n"
             "{\"event\":\"run_end\",\"step\":30,\"epoch\":3,\"eval_loss\":4.5}\n",
             gpt2_loss[0], gpt2_loss[1], gpt2_loss[2]);
    write_text(tmp, "gpt2.log.jsonl", text);

    snprintf(dir, sizeof dir, "%s/bert", tmp);
    mkdir(dir, 0777);
    snprintf(text, sizeof text,
             "{\"model\": \"BERT <base>\", \"architecture\": \"bidirectional (masked)\", \"objective\": \"mlm\", "
             "\"eval_loss\": 6.5, \"perplexity\": null, \"steps\": 50, \"runtime_seconds\": 20, "
             "\"train_split\": \"test\", \"eval_split\": \"validation\", \"log\": \"%s/elsewhere.jsonl\"}\n",
             tmp);
    write_text(dir, "results.json", text);
    snprintf(text, sizeof text,
             "{\"event\":\"eval\",\"step\":25,\"epoch\":1,\"eval_loss\":%g}\n"
             "{\"event\":\"eval\",\"step\":50,\"epoch\":2,\"eval_loss\":%g}\n"
             "{\"event\":\"eval\",\"step\":50,\"epoch\":2,\"eval_loss\":null}\n",
             bert_loss[0], bert_loss[1]);
    write_text(tmp, "elsewhere.jsonl", text);

    snprintf(dir, sizeof dir, "%s/nolog", tmp);
    mkdir(dir, 0777);
    write_text(dir, "results.json",
               "{\"model\": \"GPT-2\", \"architecture\": \"causal (unidirectional)\", \"objective\": \"clm\", "
               "\"eval_loss\": 9, \"perplexity\": 8103.08, \"steps\": 1, \"runtime_seconds\": 1, "
               "\"train_split\": \"test\", \"eval_split\": \"validation\"}\n");
}

static lm_status run_script(const char *tmp, const char *x) {
    char runs[2100], out[700], out_svg[700], x_arg[64];
    snprintf(runs, sizeof runs, "runs=%s/gpt2 %s/bert %s/nolog", tmp, tmp, tmp);
    snprintf(out, sizeof out, "out=%s/cmp.md", tmp);
    snprintf(out_svg, sizeof out_svg, "out_svg=%s/cmp.svg", tmp);
    snprintf(x_arg, sizeof x_arg, "x=%s", x);
    const char *args[] = {runs, out, out_svg, x_arg};
    lm_registry *r;
    ck_assert_int_eq(lm_registry_create(&r), LM_OK);
    lm_runtime_options o = {SCRIPT, args, 4, r};
    char *tb = NULL;
    lm_status s = lm_runtime_run(&o, &tb);
    if (s != LM_OK) fprintf(stderr, "%s\n%s\n", lm_error_message(), tb ? tb : "");
    free(tb);
    lm_registry_destroy(r);
    return s;
}

static void check_points(const char *svg, const test_svg_axes *f, const char *color, const double *xs,
                         const double *ys, int n) {
    char needle[64];
    snprintf(needle, sizeof needle, "fill=\"%s\" stroke=\"white\"", color);
    int found = 0;
    for (const char *c = strstr(svg, "<circle "); c; c = strstr(c + 1, "<circle ")) {
        if (!test_svg_has_attr(c, needle)) continue;
        ck_assert_int_lt(found, n);
        ck_assert_double_eq_tol(test_svg_attr(c, "cx"), test_svg_px(&f->x, xs[found]), 1.0);
        ck_assert_double_eq_tol(test_svg_attr(c, "cy"), test_svg_px(&f->y, ys[found]), 1.0);
        found++;
    }
    ck_assert_int_eq(found, n);
}

START_TEST(table_and_curves_by_step) {
    char *tmp = test_temp_dir("cmp");
    make_runs(tmp);
    ck_assert_int_eq(run_script(tmp, "step"), LM_OK);
    char path[700];
    snprintf(path, sizeof path, "%s/cmp.md", tmp);
    char *md = test_read_file(path, NULL);
    ck_assert_ptr_nonnull(md);
    ck_assert_ptr_nonnull(strstr(md, "| GPT-2 | causal (unidirectional) | CLM | 4.5000 | 90.02 | 30 | 12 s |"));
    ck_assert_ptr_nonnull(strstr(md, "| BERT <base> | bidirectional (masked) | MLM | 6.5000 | n/a | 50 | 20 s |"));
    snprintf(path, sizeof path, "%s/cmp.svg", tmp);
    char *svg = test_read_file(path, NULL);
    ck_assert_ptr_nonnull(svg);
    test_check_xml(svg);
    ck_assert_ptr_nonnull(strstr(svg, ">Validation loss of 3 runs</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">optimizer step</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">BERT &lt;base&gt; ("));
    int polylines = 0;
    for (const char *p = strstr(svg, "<polyline"); p; p = strstr(p + 1, "<polyline")) polylines++;
    ck_assert_int_eq(polylines, 2); /* the run without a log has no curve */
    test_svg_axes f = test_svg_frame(svg);
    const double gpt2_steps[] = {10, 20, 30}, bert_steps[] = {25, 50};
    check_points(svg, &f, "#1f77b4", gpt2_steps, gpt2_loss, 3);
    check_points(svg, &f, "#d62728", bert_steps, bert_loss, 2);
    free(md);
    free(svg);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    ck_assert_int_eq(system(cmd), 0);
    free(tmp);
}
END_TEST

START_TEST(curves_by_epoch) {
    char *tmp = test_temp_dir("cmp");
    make_runs(tmp);
    ck_assert_int_eq(run_script(tmp, "epoch"), LM_OK);
    char path[700];
    snprintf(path, sizeof path, "%s/cmp.svg", tmp);
    char *svg = test_read_file(path, NULL);
    test_check_xml(svg);
    ck_assert_ptr_nonnull(strstr(svg, ">epoch</text>"));
    test_svg_axes f = test_svg_frame(svg);
    const double gpt2_epochs[] = {1, 2, 3}, bert_epochs[] = {1, 2};
    check_points(svg, &f, "#1f77b4", gpt2_epochs, gpt2_loss, 3);
    check_points(svg, &f, "#d62728", bert_epochs, bert_loss, 2);
    free(svg);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    ck_assert_int_eq(system(cmd), 0);
    free(tmp);
}
END_TEST

START_TEST(bad_arguments_are_clear_errors) {
    char *tmp = test_temp_dir("cmp");
    make_runs(tmp);
    ck_assert_int_ne(run_script(tmp, "time"), LM_OK);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "argument 'x' must be one of step, epoch, got 'time'"));
    lm_registry *r;
    ck_assert_int_eq(lm_registry_create(&r), LM_OK);
    lm_runtime_options o = {SCRIPT, NULL, 0, r};
    char *tb = NULL;
    ck_assert_int_ne(lm_runtime_run(&o, &tb), LM_OK);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "pass runs="));
    free(tb);
    lm_registry_destroy(r);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    ck_assert_int_eq(system(cmd), 0);
    free(tmp);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("compare_runs");
    TCase *tc = tcase_create("compare_runs");
    tcase_add_test(tc, table_and_curves_by_step);
    tcase_add_test(tc, curves_by_epoch);
    tcase_add_test(tc, bad_arguments_are_clear_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(suite(), NULL);
}
