/* Logger 'report': report.md holds the evaluation table (mid-epoch
 * evaluations too, with their step), final perplexity, throughput and
 * hardware (checked against /proc here); loss.svg is well-formed XML whose
 * marks sit where the data says, read back through the SVG's own tick
 * labels (validation points, the training curve through the logging
 * points, epoch boundaries), whose x axis ends at the run's last step and
 * whose legend covers no mark; PROGRESS events change nothing; both files
 * are written atomically; an unfinished run still gets a report; errors
 * are clear. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logger_test_util.h"
#include "test_main.h"

#define GPU_DESCRIPTION                                                                                                \
    "gpt2 (1234 parameters) on cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB), 60 training blocks of 16 tokens, "      \
    "batch 2 x 1 accumulation, 30 steps"

/* ---- a synthetic run: 3 epochs of 10 steps -------------------------------------------- */

#define STEPS_PER_EPOCH 10
#define EPOCHS 3

static double step_loss(int64_t step) { return 4.0 + 6.0 * exp(-(double)step / 6.0) + 0.3 * sin((double)step * 1.7); }
static const double eval_loss[EPOCHS] = {5.125, 4.6875, 4.5};

static void run_events(test_logger *t, const char *description, int64_t n_steps, int finish) {
    lm_scalar begin[] = {
        {"n_params", 1234}, {"train_blocks", 60}, {"eval_blocks", 12}, {"block_size", 16}, {"batch_size", 2}};
    lm_event ev = test_event(LM_EVENT_RUN_BEGIN, 0, 0, begin, 5);
    ev.total_steps = STEPS_PER_EPOCH * EPOCHS;
    ev.text = description;
    ck_assert_int_eq(test_logger_log(t, &ev), LM_OK);
    for (int64_t s = 1; s <= n_steps; s++) {
        lm_scalar sc[] = {{"loss", step_loss(s)},
                          {"learning_rate", 1e-3},
                          {"tokens_per_second", s % 2 ? 1000.0 : 3000.0},
                          {"rss_mb", 100.0 + (double)s}};
        ev = test_event(LM_EVENT_STEP, s, 0.5 * (double)s, sc, 4);
        ev.total_steps = STEPS_PER_EPOCH * EPOCHS;
        ev.epoch = (double)s / STEPS_PER_EPOCH;
        ck_assert_int_eq(test_logger_log(t, &ev), LM_OK);
        if (s % STEPS_PER_EPOCH == 0) {
            int k = (int)(s / STEPS_PER_EPOCH);
            lm_scalar es[] = {{"train_loss", 6.0 - k},
                              {"eval_loss", eval_loss[k - 1]},
                              {"perplexity", exp(eval_loss[k - 1])},
                              {"epoch_index", k}};
            ev = test_event(LM_EVENT_EVAL, s, 0.5 * (double)s + 0.1, es, 4);
            ev.epoch = k;
            ck_assert_int_eq(test_logger_log(t, &ev), LM_OK);
        }
    }
    if (!finish) return;
    lm_scalar end[] = {
        {"train_runtime", 3725.5}, {"train_samples_per_second", 12.5},   {"train_steps_per_second", 6.25},
        {"train_loss", 5.0625},    {"eval_loss", eval_loss[EPOCHS - 1]}, {"perplexity", exp(eval_loss[EPOCHS - 1])}};
    ev = test_event(LM_EVENT_RUN_END, n_steps, 16, end, 6);
    ev.epoch = EPOCHS;
    lm_status s = test_logger_log(t, &ev);
    ck_assert_msg(s == LM_OK, "run end: %s", lm_error_message());
}

static void open_report(test_logger *t, const char *dir, const char *title) {
    char arg[600], title_arg[300];
    snprintf(arg, sizeof arg, "dir=%s", dir);
    snprintf(title_arg, sizeof title_arg, "title=%s", title ? title : "");
    lm_config *cfg = test_config("logger 'report'", arg, title ? title_arg : NULL, NULL);
    lm_status s = test_logger_open(t, "report", cfg);
    ck_assert_msg(s == LM_OK, "create failed: %s", lm_error_message());
    lm_config_destroy(cfg);
}

static char *read_output(const char *dir, const char *name) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = test_read_file(path, NULL);
    ck_assert_msg(text != NULL, "%s was not written", path);
    return text;
}

START_TEST(markdown_has_table_perplexity_throughput_hardware) {
    char *dir = test_temp_dir("report");
    test_logger t;
    open_report(&t, dir, NULL);
    run_events(&t, GPU_DESCRIPTION, STEPS_PER_EPOCH * EPOCHS, 1);
    char *md = read_output(dir, "report.md");
    test_logger_close(&t);
    ck_assert_ptr_nonnull(strstr(md, "# Training report\n"));
    ck_assert_ptr_nonnull(strstr(md, GPU_DESCRIPTION));
    /* The reference report's table, with the step of each evaluation. */
    ck_assert_ptr_nonnull(strstr(md, "| Epoch | Step | Training Loss | Validation Loss | Perplexity |"));
    char row[128];
    for (int k = 1; k <= EPOCHS; k++) {
        snprintf(row, sizeof row, "| %d | %d | %.6f | %.6f | %.2f |", k, STEPS_PER_EPOCH * k, 6.0 - k,
                 eval_loss[k - 1], exp(eval_loss[k - 1]));
        ck_assert_msg(strstr(md, row) != NULL, "missing row '%s' in:\n%s", row, md);
    }
    ck_assert_ptr_nonnull(strstr(md, "**Final perplexity: 90.02** (validation loss 4.5000)"));
    ck_assert_ptr_nonnull(strstr(md, "| Runtime | 1 h 02 min 06 s (3725.5 s) |"));
    ck_assert_ptr_nonnull(strstr(md, "| Optimizer steps | 30 of 30 (3.00 of 3 epochs) |"));
    ck_assert_ptr_nonnull(strstr(md, "| Samples/s | 12.500 |"));
    ck_assert_ptr_nonnull(strstr(md, "| Steps/s | 6.250 |"));
    ck_assert_ptr_nonnull(strstr(md, "| Tokens/s (whole run) | 200 |")); /* 12.5 samples x 16 tokens */
    /* 15 steps at 1000 tokens/s and 15 at 3000: 30 steps' tokens took 15/1000 + 15/3000 token-seconds. */
    ck_assert_ptr_nonnull(strstr(md, "| Tokens/s (training steps only) | 1500 |"));
    ck_assert_ptr_nonnull(strstr(md, "| Peak process memory (RSS) | 130 MiB |"));
    ck_assert_ptr_nonnull(strstr(md, "| GPU | NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB) |"));
    ck_assert_ptr_nonnull(strstr(md, "![Training and validation loss](loss.svg)"));
    ck_assert_ptr_null(strstr(md, "stopped before its end"));

    /* The CPU line names the model /proc/cpuinfo gives. */
    char *cpuinfo = test_read_file("/proc/cpuinfo", NULL);
    const char *model = cpuinfo ? strstr(cpuinfo, "model name") : NULL;
    if (model) {
        model = strchr(model, ':') + 2;
        char expected[256];
        snprintf(expected, sizeof expected, "| CPU | %.*s (", (int)strcspn(model, "\n"), model);
        ck_assert_msg(strstr(md, expected) != NULL, "missing '%s'", expected);
    }
    free(cpuinfo);
    /* Written atomically: no temporary file is left behind. */
    ck_assert_int_eq(test_count_files(dir, ".tmp"), 0);
    ck_assert_int_eq(test_count_files(dir, "report.md"), 1);
    free(md);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(cpu_run_says_no_gpu_and_a_new_fit_starts_over) {
    char *dir = test_temp_dir("report");
    test_logger t;
    open_report(&t, dir, NULL);
    run_events(&t, "first fit", 12, 1);
    run_events(&t, "gpt2 (1234 parameters) on cpu, 60 training blocks of 16 tokens", 12, 1); /* a second fit */
    test_logger_close(&t);
    char *md = read_output(dir, "report.md");
    ck_assert_ptr_nonnull(strstr(md, "| GPU | none (trained on the CPU) |"));
    const char *row = strstr(md, "| 1 | 10 | 5.000000 |");
    ck_assert_ptr_nonnull(row);
    ck_assert_ptr_null(strstr(row + 1, "| 1 | 10 | 5.000000 |")); /* the first fit's epoch is not repeated */
    ck_assert_ptr_null(strstr(md, "first fit"));
    free(md);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(svg_marks_sit_on_the_data) {
    char *dir = test_temp_dir("report");
    test_logger t;
    open_report(&t, dir, "Loss <GPT-2> & friends");
    run_events(&t, GPU_DESCRIPTION, STEPS_PER_EPOCH * EPOCHS, 1);
    test_logger_close(&t);
    char *svg = read_output(dir, "loss.svg");
    test_check_xml(svg);
    ck_assert_ptr_nonnull(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    ck_assert_ptr_nonnull(strstr(svg, ">Loss &lt;GPT-2&gt; &amp; friends</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">optimizer step</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">validation loss (each evaluation)</text>"));
    test_svg_axes f = test_svg_frame(svg);
    /* The x axis is the run's steps, 0 to 30, no further. */
    ck_assert_double_eq_tol(test_svg_px(&f.x, 0), f.left, 0.6);
    ck_assert_double_eq_tol(test_svg_px(&f.x, 30), f.right, 0.6);

    /* Validation points: one circle per evaluation, at (step, loss). */
    const char *legend = strstr(svg, "<rect x=");
    while (legend && !test_svg_has_attr(legend, " rx=")) legend = strstr(legend + 1, "<rect x=");
    ck_assert_ptr_nonnull(legend);
    double lx = test_svg_attr(legend, "x"), ly = test_svg_attr(legend, "y");
    double lw = test_svg_attr(legend, "width"), lh = test_svg_attr(legend, "height");
    int circles = 0;
    for (const char *c = strstr(svg, "<circle "); c; c = strstr(c + 1, "<circle ")) {
        double cx = test_svg_attr(c, "cx"), cy = test_svg_attr(c, "cy");
        if (cx >= lx && cx <= lx + lw && cy >= ly && cy <= ly + lh) continue; /* the legend's sample */
        ck_assert_int_lt(circles, EPOCHS);
        double step = (double)(STEPS_PER_EPOCH * (circles + 1));
        ck_assert_double_eq_tol(test_svg_attr(c, "cx"), test_svg_px(&f.x, step), 1.0);
        ck_assert_double_eq_tol(test_svg_attr(c, "cy"), test_svg_px(&f.y, eval_loss[circles]), 1.0);
        circles++;
    }
    ck_assert_int_eq(circles, EPOCHS);

    /* The training curve: a 3-step centred moving average for 30 steps, the raw loss at both ends. */
    const char *line = strstr(svg, "stroke-width=\"2.2\"");
    ck_assert_ptr_nonnull(line);
    const char *points = strstr(line, "points=\"") + 8;
    for (int64_t s = 1; s <= STEPS_PER_EPOCH * EPOCHS; s++) {
        int64_t w = s == 1 || s == 30 ? 0 : 1, a = s - w, b = s + w; /* the window narrows at the ends */
        double mean = 0;
        for (int64_t i = a; i <= b; i++) mean += step_loss(i);
        mean /= (double)(b - a + 1);
        char *end;
        double x = strtod(points, &end);
        ck_assert(*end == ',');
        double y = strtod(end + 1, &end);
        points = end;
        ck_assert_double_eq_tol(x, test_svg_px(&f.x, (double)s), 0.5);
        ck_assert_msg(fabs(y - test_svg_px(&f.y, mean)) < 0.5, "step %lld: y %.1f, expected %.1f (moving average %.4f)",
                      (long long)s, y, test_svg_px(&f.y, mean), mean);
    }
    ck_assert(*points == ' ' || *points == '"');

    /* Dashed epoch boundaries after epochs 1 and 2 (not at the end). */
    int dashed = 0;
    for (const char *l = strstr(svg, "<line "); l; l = strstr(l + 1, "<line ")) {
        if (!test_svg_has_attr(l, "stroke-dasharray") || fabs(test_svg_attr(l, "y1") - f.top) > 0.5) continue;
        dashed++;
        ck_assert_double_eq_tol(test_svg_attr(l, "x1"), test_svg_px(&f.x, (double)(STEPS_PER_EPOCH * dashed)), 1.0);
        ck_assert_double_eq_tol(test_svg_attr(l, "y2"), f.bottom, 0.5);
    }
    ck_assert_int_eq(dashed, EPOCHS - 1);
    free(svg);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(long_runs_draw_a_band_and_stay_small) {
    char *dir = test_temp_dir("report");
    test_logger t;
    open_report(&t, dir, NULL);
    lm_event ev = test_event(LM_EVENT_RUN_BEGIN, 0, 0, NULL, 0);
    ev.text = "a long run";
    ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    for (int64_t s = 1; s <= 20000; s++) {
        lm_scalar sc[] = {{"loss", 3.0 + (s % 2 ? 0.5 : -0.5)}};
        ev = test_event(LM_EVENT_STEP, s, 0, sc, 1);
        ev.total_steps = 20000;
        ev.epoch = (double)s / 10000.0;
        ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    }
    lm_scalar last[] = {{"train_runtime", 10}};
    ev = test_event(LM_EVENT_RUN_END, 20000, 10, last, 1);
    ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    test_logger_close(&t);
    size_t len;
    char path[600];
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    char *svg = test_read_file(path, &len);
    test_check_xml(svg);
    ck_assert_uint_lt(len, 200000); /* decimated to the pixels, not 20000 points */
    ck_assert_ptr_nonnull(strstr(svg, "<polygon "));
    test_svg_axes f = test_svg_frame(svg);
    /* The smoothed curve of an alternating 2.5 / 3.5 loss is flat at 3 (away
     * from the ends, where the window narrows down to the raw loss). */
    const char *points = strstr(strstr(svg, "stroke-width=\"2.2\""), "points=\"") + 8;
    int n = 0;
    while (*points != '"') {
        char *end;
        double x = strtod(points, &end);
        double y = strtod(end + 1, &end);
        if (x > test_svg_px(&f.x, 300) && x < test_svg_px(&f.x, 19700))
            ck_assert_double_eq_tol(y, test_svg_px(&f.y, 3.0), 1.0);
        points = end;
        while (*points == ' ') points++;
        n++;
    }
    ck_assert_int_gt(n, 500);
    ck_assert_int_lt(n, 2000);
    free(svg);
    char *md = read_output(dir, "report.md");
    ck_assert_ptr_nonnull(strstr(md, "No evaluation was run."));
    free(md);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(unfinished_run_still_gets_a_report) {
    char *dir = test_temp_dir("report");
    test_logger t;
    open_report(&t, dir, NULL);
    run_events(&t, GPU_DESCRIPTION, 14, 0); /* Ctrl-C after step 14 */
    ck_assert_int_eq(test_count_files(dir, "report.md"), 0);
    test_logger_close(&t);
    char *md = read_output(dir, "report.md");
    ck_assert_ptr_nonnull(strstr(md, "stopped before its end"));
    ck_assert_ptr_nonnull(strstr(md, "after step 14 of 30"));
    ck_assert_ptr_nonnull(strstr(md, "| 1 | 10 | 5.000000 | 5.125000 |"));
    free(md);
    char *svg = read_output(dir, "loss.svg");
    test_check_xml(svg);
    free(svg);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(empty_run_and_bad_settings) {
    test_logger t;
    lm_config *cfg = test_config("logger 'report'", NULL);
    ck_assert_int_eq(test_logger_open(&t, "report", cfg), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "needs a 'dir'"));
    lm_config_destroy(cfg);

    char *dir = test_temp_dir("report");
    /* A logger whose run failed before its first step makes nothing, not
     * even its folder. */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/never", dir);
    open_report(&t, sub, NULL);
    test_logger_close(&t);
    ck_assert_int_ne(access(sub, F_OK), 0);

    open_report(&t, dir, NULL);
    lm_event ev = test_event(LM_EVENT_RUN_END, 0, 0, NULL, 0);
    ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    test_logger_close(&t);
    char *svg = read_output(dir, "loss.svg");
    test_check_xml(svg);
    ck_assert_ptr_nonnull(strstr(svg, "no loss was recorded"));
    free(svg);
    char *md = read_output(dir, "report.md");
    ck_assert_ptr_nonnull(strstr(md, "(no description)"));
    free(md);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

/* ---- the trainer's cadence: logging points, mid-epoch evaluations, PROGRESS ------------ */

/* 303 steps of 101 per epoch (the BERT run whose plot ran on to 350), a STEP
 * at every 50th step and at the last, evaluations at step 150 (mid-epoch,
 * epoch 1.49) and at the end (an epoch end), PROGRESS after every step. */
#define RUN_STEPS 303
#define RUN_SPE 101.0
#define LOGGING_STEPS 50

static double interval_loss(int64_t step) { return 3.0 + 4.0 * exp(-(double)step / 80.0); }
static const int64_t run_eval_steps[] = {150, 303};
static const double run_eval_loss[] = {4.25, 3.5};

static void log_ok(test_logger *t, lm_event *ev) {
    ev->total_steps = RUN_STEPS;
    ev->total_epochs = 3;
    lm_status s = test_logger_log(t, ev);
    ck_assert_msg(s == LM_OK, "log failed: %s", lm_error_message());
}

/* From RUN_BEGIN at first_step (0, or a resumed run's) to step `stop`; RUN_END if stop is the last step. */
static void cadence_run(test_logger *t, int64_t first_step, int64_t stop, int progress) {
    lm_event ev = test_event(LM_EVENT_RUN_BEGIN, first_step, 0, NULL, 0);
    ev.epoch = (double)first_step / RUN_SPE;
    ev.text = "bert (1234 parameters) on cpu";
    log_ok(t, &ev);
    size_t e = 0;
    while (e < 2 && run_eval_steps[e] <= first_step) e++;
    for (int64_t s = first_step + 1; s <= stop; s++) {
        double elapsed = 0.01 * (double)(s - first_step), epoch = (double)s / RUN_SPE;
        if (progress) {
            ev = test_event(LM_EVENT_PROGRESS, s, elapsed, NULL, 0);
            ev.epoch = epoch;
            log_ok(t, &ev);
        }
        if (s % LOGGING_STEPS == 0 || s == RUN_STEPS) {
            lm_scalar sc[] = {{"loss", interval_loss(s)}, {"learning_rate", 1e-4}, {"tokens_per_second", 2000}};
            ev = test_event(LM_EVENT_STEP, s, elapsed, sc, 3);
            ev.epoch = epoch;
            log_ok(t, &ev);
        }
        if (e < 2 && s == run_eval_steps[e]) {
            lm_scalar es[] = {{"train_loss", interval_loss(s)},
                              {"eval_loss", run_eval_loss[e]},
                              {"perplexity", exp(run_eval_loss[e])},
                              {"epoch_index", epoch},
                              {"eval_runtime", 0.5},
                              {"eval_samples_per_second", 100}};
            ev = test_event(LM_EVENT_EVAL, s, elapsed + 0.5, es, 6);
            ev.epoch = epoch;
            log_ok(t, &ev);
            e++;
        }
    }
    if (stop != RUN_STEPS) return;
    lm_scalar end[] = {{"train_runtime", 4.0},
                       {"train_samples_per_second", 600},
                       {"train_steps_per_second", 75},
                       {"train_loss", 4.0},
                       {"eval_loss", run_eval_loss[1]},
                       {"perplexity", exp(run_eval_loss[1])}};
    ev = test_event(LM_EVENT_RUN_END, RUN_STEPS, 4.0, end, 6);
    ev.epoch = 3;
    log_ok(t, &ev);
}

/* The numeric labels under the frame: the x ticks. */
static int x_tick_values(const char *svg, const test_svg_axes *f, double *out, int cap) {
    int n = 0;
    for (const char *t = strstr(svg, "<text "); t; t = strstr(t + 1, "<text ")) {
        const char *content = strchr(t, '>') + 1;
        char *end;
        double v = strtod(content, &end);
        if (end == content || *end != '<') continue;
        if (test_svg_attr(t, "x") >= f->left && test_svg_attr(t, "y") > f->bottom && n < cap) out[n++] = v;
    }
    return n;
}

static int inside(double x, double y, double lx, double ly, double lw, double lh) {
    return x >= lx && x <= lx + lw && y >= ly && y <= ly + lh;
}

/* Fails if the legend box covers a mark drawn before it: a circle, or any
 * point of a polyline (its segments sampled every pixel or so). */
static void legend_covers_nothing(const char *svg) {
    const char *legend = strstr(svg, "<rect x=");
    while (legend && !test_svg_has_attr(legend, " rx=")) legend = strstr(legend + 1, "<rect x=");
    ck_assert_ptr_nonnull(legend);
    double lx = test_svg_attr(legend, "x"), ly = test_svg_attr(legend, "y");
    double lw = test_svg_attr(legend, "width"), lh = test_svg_attr(legend, "height");
    for (const char *c = strstr(svg, "<circle "); c && c < legend; c = strstr(c + 1, "<circle ")) {
        double cx = test_svg_attr(c, "cx"), cy = test_svg_attr(c, "cy");
        ck_assert_msg(!inside(cx, cy, lx - 5, ly - 5, lw + 10, lh + 10), "the legend covers the point (%.1f, %.1f)",
                      cx, cy);
    }
    int checked = 0;
    for (const char *l = strstr(svg, "<polyline "); l && l < legend; l = strstr(l + 1, "<polyline ")) {
        const char *points = strstr(l, "points=\"") + 8;
        double x0 = NAN, y0 = NAN;
        while (*points != '"') {
            char *end;
            double x = strtod(points, &end);
            double y = strtod(end + 1, &end);
            points = end;
            while (*points == ' ') points++;
            if (isnan(x0)) x0 = x, y0 = y;
            double length = hypot(x - x0, y - y0);
            for (int k = 0; k <= (int)length + 1; k++) {
                double u = (double)k / ((int)length + 1), px = x0 + u * (x - x0), py = y0 + u * (y - y0);
                ck_assert_msg(!inside(px, py, lx, ly, lw, lh), "the legend covers the line at (%.1f, %.1f)", px, py);
                checked++;
            }
            x0 = x, y0 = y;
        }
    }
    ck_assert_int_gt(checked, 0);
}

START_TEST(mid_epoch_evaluations_are_rows_and_points_at_their_step) {
    char *dir = test_temp_dir("report");
    test_logger t;
    open_report(&t, dir, NULL);
    cadence_run(&t, 0, RUN_STEPS, 1);
    test_logger_close(&t);
    char *md = read_output(dir, "report.md");
    ck_assert_ptr_nonnull(strstr(md, "| Epoch | Step | Training Loss | Validation Loss | Perplexity |\n"
                                     "| ---: | ---: | ---: | ---: | ---: |\n"));
    char row[160];
    snprintf(row, sizeof row, "| 1.49 | 150 | %.6f | 4.250000 | %.2f |", interval_loss(150), exp(4.25));
    ck_assert_msg(strstr(md, row) != NULL, "missing row '%s' in:\n%s", row, md);
    snprintf(row, sizeof row, "| 3 | 303 | %.6f | 3.500000 | %.2f |", interval_loss(303), exp(3.5));
    ck_assert_msg(strstr(md, row) != NULL, "missing row '%s' in:\n%s", row, md);
    ck_assert_ptr_nonnull(strstr(md, "| Optimizer steps | 303 of 303 (3.00 of 3 epochs) |"));
    ck_assert_ptr_nonnull(strstr(md, "| Tokens/s (training steps only) | 2000 |"));
    free(md);

    char *svg = read_output(dir, "loss.svg");
    test_check_xml(svg);
    test_svg_axes f = test_svg_frame(svg);
    /* The x axis ends at step 303, not at the next round number, and no
     * tick is labelled beyond it. */
    ck_assert_double_eq_tol(test_svg_px(&f.x, 0), f.left, 0.6);
    ck_assert_double_eq_tol(test_svg_px(&f.x, RUN_STEPS), f.right, 0.6);
    double ticks[64];
    int n_ticks = x_tick_values(svg, &f, ticks, 64);
    ck_assert_int_ge(n_ticks, 4);
    for (int i = 0; i < n_ticks; i++) ck_assert_msg(ticks[i] >= 0 && ticks[i] <= RUN_STEPS, "tick %g", ticks[i]);
    ck_assert_double_eq(ticks[n_ticks - 1], 300);

    /* Both evaluations, the mid-epoch one included, at (step, loss). */
    int circles = 0;
    const char *legend = strstr(svg, " rx=");
    for (const char *c = strstr(svg, "<circle "); c && c < legend; c = strstr(c + 1, "<circle ")) {
        ck_assert_int_lt(circles, 2);
        ck_assert_double_eq_tol(test_svg_attr(c, "cx"), test_svg_px(&f.x, (double)run_eval_steps[circles]), 1.0);
        ck_assert_double_eq_tol(test_svg_attr(c, "cy"), test_svg_px(&f.y, run_eval_loss[circles]), 1.0);
        circles++;
    }
    ck_assert_int_eq(circles, 2);

    /* The training curve: a line through the 7 logging points (50 ... 300, 303). */
    const char *points = strstr(strstr(svg, "stroke-width=\"2.2\""), "points=\"") + 8;
    const int64_t logged[] = {50, 100, 150, 200, 250, 300, RUN_STEPS};
    int n = 0;
    for (size_t i = 0; i < sizeof logged / sizeof *logged; i++) {
        int64_t s = logged[i];
        char *end;
        double x = strtod(points, &end);
        ck_assert(*end == ',');
        double y = strtod(end + 1, &end);
        points = end;
        while (*points == ' ') points++;
        ck_assert_double_eq_tol(x, test_svg_px(&f.x, (double)s), 0.5);
        ck_assert_double_eq_tol(y, test_svg_px(&f.y, interval_loss(s)), 0.5);
        n++;
    }
    ck_assert_int_eq(n, 7);
    ck_assert(*points == '"');

    /* Epoch boundaries at 101 and 202, inside the axis. */
    int dashed = 0;
    for (const char *l = strstr(svg, "<line "); l && l < legend; l = strstr(l + 1, "<line ")) {
        if (!test_svg_has_attr(l, "stroke-dasharray")) continue;
        dashed++;
        ck_assert_double_eq_tol(test_svg_attr(l, "x1"), test_svg_px(&f.x, RUN_SPE * dashed), 1.0);
    }
    ck_assert_int_eq(dashed, 2);
    legend_covers_nothing(svg);
    free(svg);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

/* Drops the "Run started" line (the clock's second may tick between two runs). */
static void drop_start_line(char *md) {
    char *line = strstr(md, "Run started ");
    if (!line) return;
    char *next = strchr(line, '\n');
    memmove(line, next + 1, strlen(next + 1) + 1);
}

START_TEST(progress_events_change_nothing) {
    char *with = test_temp_dir("report"), *without = test_temp_dir("report");
    test_logger t;
    open_report(&t, with, NULL);
    cadence_run(&t, 0, RUN_STEPS, 1);
    test_logger_close(&t);
    open_report(&t, without, NULL);
    cadence_run(&t, 0, RUN_STEPS, 0);
    test_logger_close(&t);
    char *a = read_output(with, "loss.svg"), *b = read_output(without, "loss.svg");
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    a = read_output(with, "report.md");
    b = read_output(without, "report.md");
    drop_start_line(a);
    drop_start_line(b);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    test_remove_dir(with);
    test_remove_dir(without);
    free(with);
    free(without);
}
END_TEST

START_TEST(unfinished_run_ends_its_axis_at_the_last_step_done) {
    char *dir = test_temp_dir("report");
    test_logger t;
    open_report(&t, dir, NULL);
    cadence_run(&t, 0, 160, 1); /* Ctrl-C after step 160: the last logging point was 150 */
    test_logger_close(&t);
    char *md = read_output(dir, "report.md");
    ck_assert_ptr_nonnull(strstr(md, "after step 160 of 303"));
    ck_assert_ptr_nonnull(strstr(md, "| 1.49 | 150 |"));
    free(md);
    char *svg = read_output(dir, "loss.svg");
    test_svg_axes f = test_svg_frame(svg);
    ck_assert_double_eq_tol(test_svg_px(&f.x, 160), f.right, 0.6);
    free(svg);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(resumed_run_plots_its_own_steps) {
    char *dir = test_temp_dir("report");
    test_logger t;
    open_report(&t, dir, NULL);
    cadence_run(&t, 137, RUN_STEPS, 1); /* resumed from checkpoint-137 */
    test_logger_close(&t);
    char *svg = read_output(dir, "loss.svg");
    test_check_xml(svg);
    test_svg_axes f = test_svg_frame_any(svg);
    ck_assert_double_eq_tol(test_svg_px(&f.x, 137), f.left, 0.6);
    ck_assert_double_eq_tol(test_svg_px(&f.x, RUN_STEPS), f.right, 0.6);
    double ticks[64];
    int n_ticks = x_tick_values(svg, &f, ticks, 64);
    ck_assert_int_ge(n_ticks, 3);
    for (int i = 0; i < n_ticks; i++) ck_assert_msg(ticks[i] >= 137 && ticks[i] <= RUN_STEPS, "tick %g", ticks[i]);
    /* Only the boundary inside the plotted steps: 202 (101 came before the resume). */
    int dashed = 0;
    const char *legend = strstr(svg, " rx=");
    for (const char *l = strstr(svg, "<line "); l && l < legend; l = strstr(l + 1, "<line ")) {
        if (!test_svg_has_attr(l, "stroke-dasharray")) continue;
        dashed++;
        ck_assert_double_eq_tol(test_svg_attr(l, "x1"), test_svg_px(&f.x, 2 * RUN_SPE), 1.0);
    }
    ck_assert_int_eq(dashed, 1);
    free(svg);
    char *md = read_output(dir, "report.md");
    ck_assert_ptr_nonnull(strstr(md, "| 1.49 | 150 |"));
    free(md);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(legend_moves_off_the_marks) {
    /* Training loss falls from the top left to the bottom right while
     * validation loss climbs from the bottom left to the top right: marks
     * in every corner, so the plot must make room for its legend. */
    char *dir = test_temp_dir("report");
    test_logger t;
    open_report(&t, dir, NULL);
    lm_event ev = test_event(LM_EVENT_RUN_BEGIN, 0, 0, NULL, 0);
    ev.text = "overfitting";
    log_ok(&t, &ev);
    for (int64_t s = 10; s <= 100; s += 10) {
        lm_scalar sc[] = {{"loss", 10.0 - 0.08 * (double)s}};
        ev = test_event(LM_EVENT_STEP, s, 0.1 * (double)s, sc, 1);
        ev.epoch = (double)s / 50.0;
        log_ok(&t, &ev);
        lm_scalar es[] = {{"eval_loss", 2.0 + 0.08 * (double)s}, {"epoch_index", (double)s / 50.0}};
        ev = test_event(LM_EVENT_EVAL, s, 0.1 * (double)s, es, 2);
        ev.epoch = (double)s / 50.0;
        log_ok(&t, &ev);
    }
    lm_scalar end[] = {{"train_runtime", 10}};
    ev = test_event(LM_EVENT_RUN_END, 100, 10, end, 1);
    ev.epoch = 2;
    log_ok(&t, &ev);
    test_logger_close(&t);
    char *svg = read_output(dir, "loss.svg");
    test_check_xml(svg);
    test_svg_axes f = test_svg_frame(svg);
    ck_assert_double_eq_tol(test_svg_px(&f.x, 100), f.right, 0.6);
    legend_covers_nothing(svg);
    free(svg);
    char *md = read_output(dir, "report.md");
    ck_assert_ptr_nonnull(strstr(md, "| 0.20 | 10 | n/a | 2.800000 | n/a |"));
    ck_assert_ptr_nonnull(strstr(md, "| 2 | 100 | n/a | 10.000000 | n/a |"));
    free(md);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("logger_report");
    TCase *tc = tcase_create("report");
    tcase_add_test(tc, markdown_has_table_perplexity_throughput_hardware);
    tcase_add_test(tc, cpu_run_says_no_gpu_and_a_new_fit_starts_over);
    tcase_add_test(tc, svg_marks_sit_on_the_data);
    tcase_add_test(tc, long_runs_draw_a_band_and_stay_small);
    tcase_add_test(tc, unfinished_run_still_gets_a_report);
    tcase_add_test(tc, empty_run_and_bad_settings);
    tcase_add_test(tc, mid_epoch_evaluations_are_rows_and_points_at_their_step);
    tcase_add_test(tc, progress_events_change_nothing);
    tcase_add_test(tc, unfinished_run_ends_its_axis_at_the_last_step_done);
    tcase_add_test(tc, resumed_run_plots_its_own_steps);
    tcase_add_test(tc, legend_moves_off_the_marks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(suite(), NULL);
}
