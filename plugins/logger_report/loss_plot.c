/* loss.svg: training loss per step (a moving average over ~2 % of the run,
 * over the faint per-step values), validation loss per evaluation, dashed
 * epoch boundaries, axes with round tick values, a legend and a title.
 * Plain SVG 1.1 written with printf: any browser, Inkscape or rsvg shows it,
 * and it needs no plotting library. */
#include "loss_plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Canvas and plot area, in SVG user units (pixels). */
#define WIDTH 960.0
#define HEIGHT 540.0
#define LEFT 80.0
#define RIGHT (WIDTH - 30.0)
#define TOP 84.0
#define BOTTOM (HEIGHT - 64.0)

#define TRAIN_COLOR "#1f77b4"
#define EVAL_COLOR "#d62728"
#define GRID_COLOR "#e5e5e5"
#define AXIS_COLOR "#333333"
#define EPOCH_COLOR "#7f7f7f"

typedef struct axis {
    double lo, hi, step; /* data range rounded out to ticks, tick spacing */
} axis;

static lm_status put(lm_buffer *out, const char *text) { return lm_buffer_append(out, text, strlen(text)); }

lm_status svg_append_escaped(lm_buffer *out, const char *text) {
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': LM_TRY(put(out, "&amp;")); break;
        case '<': LM_TRY(put(out, "&lt;")); break;
        case '>': LM_TRY(put(out, "&gt;")); break;
        case '"': LM_TRY(put(out, "&quot;")); break;
        default:
            /* Control characters are not allowed in XML 1.0 text. */
            if ((unsigned char)*p >= 0x20 || *p == '\t' || *p == '\n') LM_TRY(lm_buffer_append(out, p, 1));
        }
    }
    return LM_OK;
}

/* Tick spacing of 1, 2 or 5 x 10^k giving about `target` intervals. */
static axis nice_axis(double lo, double hi, int target) {
    if (!(hi > lo)) {
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.05 : 0.5;
        lo -= pad;
        hi += pad;
    }
    double raw = (hi - lo) / target, magnitude = pow(10, floor(log10(raw))), norm = raw / magnitude;
    double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
    axis a = {floor(lo / step + 1e-9) * step, ceil(hi / step - 1e-9) * step, step};
    return a;
}

static double map(const axis *a, double v, double from, double to) {
    return from + (v - a->lo) / (a->hi - a->lo) * (to - from);
}

/* Decimals enough to tell ticks `step` apart. */
static int tick_decimals(double step) {
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 6 ? 6 : d;
}

/* Smoothing: a least-squares line through the steps i-h .. i+h (clipped
 * to the run), evaluated at i.  Inside the run the window is symmetric and
 * this is exactly the centred moving average of 2h+1 steps; at the ends,
 * where the window is one-sided, the line follows the trend, so the curve
 * neither starts below the first losses (a plain average of what follows
 * would) nor ends on one noisy step (a shrinking window would).  Sums come
 * from prefix sums; non-finite losses are skipped. */
static lm_status smooth(const double *v, size_t n, size_t h, double **out) {
    double *sums = calloc(5 * (n + 1), sizeof *sums); /* count, x, x^2, y, xy */
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!sums || !*out) {
        free(sums);
        free(*out);
        *out = NULL;
        return lm_error_set(LM_ERR_NOMEM, "out of memory smoothing the loss curve");
    }
    for (size_t i = 0; i < n; i++) {
        double *prev = sums + 5 * i, *next = prev + 5, x = (double)i;
        int ok = isfinite(v[i]);
        next[0] = prev[0] + ok;
        next[1] = prev[1] + (ok ? x : 0);
        next[2] = prev[2] + (ok ? x * x : 0);
        next[3] = prev[3] + (ok ? v[i] : 0);
        next[4] = prev[4] + (ok ? x * v[i] : 0);
    }
    for (size_t i = 0; i < n; i++) {
        size_t a = i > h ? i - h : 0, b = i + h + 1 < n ? i + h + 1 : n;
        double s[5];
        for (int k = 0; k < 5; k++) s[k] = sums[5 * b + k] - sums[5 * a + k];
        double c = s[0], spread = c * s[2] - s[1] * s[1];
        if (c == 0) (*out)[i] = NAN;
        else if (spread <= 1e-9 * c * s[2]) (*out)[i] = s[3] / c; /* one point, or all at one x */
        else {
            double slope = (c * s[4] - s[1] * s[3]) / spread;
            (*out)[i] = (s[3] - slope * s[1]) / c + slope * (double)i;
        }
    }
    free(sums);
    return LM_OK;
}

/* A polyline through the finite points, at most one per 0.5 px of x. */
static lm_status polyline(lm_buffer *out, const axis *ax, const axis *ay, const int64_t *x, const double *y, size_t n,
                          const char *style) {
    LM_TRY(lm_buffer_appendf(out, "  <polyline fill=\"none\" %s points=\"", style));
    double last_px = -1e9;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) continue;
        double px = map(ax, (double)x[i], LEFT, RIGHT);
        if (px - last_px < 0.5 && i + 1 < n) continue;
        last_px = px;
        LM_TRY(lm_buffer_appendf(out, "%.1f,%.1f ", px, map(ay, y[i], BOTTOM, TOP)));
    }
    return put(out, "\"/>\n");
}

/* The per-step values: a faint line when there are fewer steps than pixels,
 * else the min..max band of each pixel column (a line would be a smear). */
static lm_status per_step_values(lm_buffer *out, const axis *ax, const axis *ay, const loss_plot *p) {
    size_t columns = (size_t)(RIGHT - LEFT);
    if (p->n_train <= columns)
        return polyline(out, ax, ay, p->train_steps, p->train_loss, p->n_train,
                        "stroke=\"" TRAIN_COLOR "\" stroke-opacity=\"0.3\" stroke-width=\"1\"");
    double *lo = malloc(columns * sizeof *lo), *hi = malloc(columns * sizeof *hi);
    if (!lo || !hi) {
        free(lo);
        free(hi);
        return lm_error_set(LM_ERR_NOMEM, "out of memory drawing the loss curve");
    }
    for (size_t c = 0; c < columns; c++) lo[c] = INFINITY, hi[c] = -INFINITY;
    for (size_t i = 0; i < p->n_train; i++) {
        if (!isfinite(p->train_loss[i])) continue;
        double px = map(ax, (double)p->train_steps[i], 0, (double)columns - 1e-9);
        size_t c = px < 0 ? 0 : (size_t)px >= columns ? columns - 1 : (size_t)px;
        if (p->train_loss[i] < lo[c]) lo[c] = p->train_loss[i];
        if (p->train_loss[i] > hi[c]) hi[c] = p->train_loss[i];
    }
    lm_status status = put(out, "  <polygon fill=\"" TRAIN_COLOR "\" fill-opacity=\"0.18\" points=\"");
    for (size_t c = 0; c < columns && status == LM_OK; c++)
        if (hi[c] >= lo[c])
            status = lm_buffer_appendf(out, "%.1f,%.1f ", LEFT + (double)c + 0.5, map(ay, hi[c], BOTTOM, TOP));
    for (size_t c = columns; c-- > 0 && status == LM_OK;)
        if (hi[c] >= lo[c])
            status = lm_buffer_appendf(out, "%.1f,%.1f ", LEFT + (double)c + 0.5, map(ay, lo[c], BOTTOM, TOP));
    if (status == LM_OK) status = put(out, "\"/>\n");
    free(lo);
    free(hi);
    return status;
}

static lm_status axes(lm_buffer *out, const axis *ax, const axis *ay) {
    int xd = tick_decimals(ax->step), yd = tick_decimals(ay->step);
    LM_TRY(put(out, "  <g font-size=\"12\" fill=\"" AXIS_COLOR "\">\n"));
    for (double v = ax->lo; v <= ax->hi + ax->step * 1e-6; v += ax->step) {
        double px = map(ax, v, LEFT, RIGHT);
        LM_TRY(
            lm_buffer_appendf(out,
                              "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" GRID_COLOR "\"/>\n"
                              "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" AXIS_COLOR "\"/>\n"
                              "    <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.*f</text>\n",
                              px, TOP, px, BOTTOM, px, BOTTOM, px, BOTTOM + 5, px, BOTTOM + 19, xd, v));
    }
    for (double v = ay->lo; v <= ay->hi + ay->step * 1e-6; v += ay->step) {
        double py = map(ay, v, BOTTOM, TOP);
        LM_TRY(
            lm_buffer_appendf(out,
                              "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" GRID_COLOR "\"/>\n"
                              "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" AXIS_COLOR "\"/>\n"
                              "    <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n",
                              LEFT, py, RIGHT, py, LEFT - 5, py, LEFT, py, LEFT - 8, py + 4, yd, v));
    }
    LM_TRY(lm_buffer_appendf(
        out,
        "    <rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
        "stroke=\"" AXIS_COLOR "\"/>\n"
        "    <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\">optimizer step</text>\n"
        "    <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" "
        "transform=\"rotate(-90 %.1f %.1f)\">loss (cross-entropy)</text>\n  </g>\n",
        LEFT, TOP, RIGHT - LEFT, BOTTOM - TOP, (LEFT + RIGHT) / 2, HEIGHT - 22, 24.0, (TOP + BOTTOM) / 2, 24.0,
        (TOP + BOTTOM) / 2));
    return LM_OK;
}

/* Epoch boundaries strictly inside the run (not at its end). */
static int epoch_boundaries(const loss_plot *p, double last_step) {
    if (!(p->steps_per_epoch > 0)) return 0;
    int k = 0;
    while ((k + 1) * p->steps_per_epoch < last_step - 0.5 && k < 10000) k++;
    return k;
}

static lm_status epoch_lines(lm_buffer *out, const axis *ax, const loss_plot *p, double last_step) {
    for (int k = 1; k <= epoch_boundaries(p, last_step); k++) {
        double px = map(ax, k * p->steps_per_epoch, LEFT, RIGHT);
        LM_TRY(lm_buffer_appendf(out,
                                 "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" EPOCH_COLOR "\" "
                                 "stroke-width=\"1.2\" stroke-dasharray=\"6 4\"/>\n"
                                 "  <text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"" EPOCH_COLOR "\" "
                                 "text-anchor=\"end\">epoch %d | %d</text>\n",
                                 px, TOP, px, BOTTOM, px - 4, BOTTOM - 6, k, k + 1));
    }
    return LM_OK;
}

static lm_status eval_points(lm_buffer *out, const axis *ax, const axis *ay, const loss_plot *p) {
    if (p->n_eval == 0) return LM_OK;
    LM_TRY(
        polyline(out, ax, ay, p->eval_steps, p->eval_loss, p->n_eval, "stroke=\"" EVAL_COLOR "\" stroke-width=\"2\""));
    for (size_t i = 0; i < p->n_eval; i++) {
        if (!isfinite(p->eval_loss[i])) continue;
        double px = map(ax, (double)p->eval_steps[i], LEFT, RIGHT), py = map(ay, p->eval_loss[i], BOTTOM, TOP);
        LM_TRY(lm_buffer_appendf(out,
                                 "  <circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"" EVAL_COLOR "\" "
                                 "stroke=\"white\" stroke-width=\"1.5\"/>\n",
                                 px, py));
        /* The value beside each point: what a reader of the report looks for. */
        if (p->n_eval <= 12)
            LM_TRY(lm_buffer_appendf(out,
                                     "  <text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" font-weight=\"bold\" "
                                     "fill=\"" EVAL_COLOR "\" stroke=\"white\" stroke-width=\"3\" "
                                     "paint-order=\"stroke\" text-anchor=\"%s\">%.3f</text>\n",
                                     px > RIGHT - 60 ? px - 8 : px + 8, py - 9, px > RIGHT - 60 ? "end" : "start",
                                     p->eval_loss[i]));
    }
    return LM_OK;
}

static lm_status legend(lm_buffer *out, const loss_plot *p, size_t half_window, int band, int boundaries) {
    char smooth_label[96];
    if (half_window > 0)
        snprintf(smooth_label, sizeof smooth_label, "training loss (moving average of %zu steps)", 2 * half_window + 1);
    else
        snprintf(smooth_label, sizeof smooth_label, "training loss");
    const char *rows[4];
    int kinds[4], n = 0; /* 0 smoothed line, 1 band, 2 validation, 3 epoch, 4 faint line */
    if (p->n_train) rows[n] = smooth_label, kinds[n++] = 0;
    if (p->n_train && half_window > 0)
        rows[n] = band ? "training loss per step (range)" : "training loss per step", kinds[n++] = band ? 1 : 4;
    if (p->n_eval) rows[n] = "validation loss (each evaluation)", kinds[n++] = 2;
    if (boundaries > 0) rows[n] = "epoch boundary", kinds[n++] = 3;
    if (n == 0) return LM_OK;
    double w = 320, h = 10 + 20.0 * n, x = RIGHT - w - 10, y = TOP + 10;
    LM_TRY(lm_buffer_appendf(out,
                             "  <g font-size=\"12\" fill=\"" AXIS_COLOR "\">\n"
                             "    <rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" "
                             "fill-opacity=\"0.9\" stroke=\"#bbbbbb\" rx=\"4\"/>\n",
                             x, y, w, h));
    for (int i = 0; i < n; i++) {
        double ly = y + 15 + 20.0 * i;
        switch (kinds[i]) {
        case 0:
            LM_TRY(lm_buffer_appendf(out,
                                     "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" TRAIN_COLOR
                                     "\" stroke-width=\"2.5\"/>\n",
                                     x + 10, ly, x + 40, ly));
            break;
        case 1:
            LM_TRY(lm_buffer_appendf(out,
                                     "    <rect x=\"%.1f\" y=\"%.1f\" width=\"30\" height=\"8\" fill=\"" TRAIN_COLOR
                                     "\" fill-opacity=\"0.25\"/>\n",
                                     x + 10, ly - 4));
            break;
        case 2:
            LM_TRY(lm_buffer_appendf(
                out,
                "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" EVAL_COLOR
                "\" stroke-width=\"2\"/>\n    <circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"" EVAL_COLOR "\"/>\n",
                x + 10, ly, x + 40, ly, x + 25, ly));
            break;
        case 4:
            LM_TRY(lm_buffer_appendf(out,
                                     "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" TRAIN_COLOR
                                     "\" stroke-opacity=\"0.3\"/>\n",
                                     x + 10, ly, x + 40, ly));
            break;
        default:
            LM_TRY(lm_buffer_appendf(out,
                                     "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" EPOCH_COLOR
                                     "\" stroke-width=\"1.2\" stroke-dasharray=\"6 4\"/>\n",
                                     x + 10, ly, x + 40, ly));
        }
        LM_TRY(lm_buffer_appendf(out, "    <text x=\"%.1f\" y=\"%.1f\">", x + 50, ly + 4));
        LM_TRY(svg_append_escaped(out, rows[i]));
        LM_TRY(put(out, "</text>\n"));
    }
    return put(out, "  </g>\n");
}

/* The run description under the title, wrapped at a space into at most two
 * lines that fit the width (about 140 characters of 12 px text each). */
static lm_status subtitle(lm_buffer *out, const char *text) {
    enum { LINE = 140 };
    const char *p = text;
    for (int line = 0; line < 2 && *p; line++) {
        size_t n = strlen(p);
        int last = line == 1 || n <= LINE;
        if (n > LINE) {
            n = LINE;
            while (n > LINE / 2 && p[n] != ' ') n--;
            if (p[n] != ' ') n = LINE;
        }
        char chunk[LINE + 8];
        memcpy(chunk, p, n);
        chunk[n] = '\0';
        if (last && strlen(p) > n) strcpy(chunk + (n > LINE - 3 ? LINE - 3 : n), "...");
        LM_TRY(lm_buffer_appendf(out,
                                 "  <text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" "
                                 "fill=\"#555555\">",
                                 WIDTH / 2, 50 + 15 * line));
        LM_TRY(svg_append_escaped(out, chunk));
        LM_TRY(put(out, "</text>\n"));
        p += n;
        while (*p == ' ') p++;
    }
    return LM_OK;
}

static void extend(double v, double *lo, double *hi) {
    if (!isfinite(v)) return;
    if (v < *lo) *lo = v;
    if (v > *hi) *hi = v;
}

lm_status loss_plot_svg(const loss_plot *p, lm_buffer *out) {
    double x_hi = 1, y_lo = INFINITY, y_hi = -INFINITY;
    for (size_t i = 0; i < p->n_train; i++) {
        extend(p->train_loss[i], &y_lo, &y_hi);
        if ((double)p->train_steps[i] > x_hi) x_hi = (double)p->train_steps[i];
    }
    for (size_t i = 0; i < p->n_eval; i++) {
        extend(p->eval_loss[i], &y_lo, &y_hi);
        if ((double)p->eval_steps[i] > x_hi) x_hi = (double)p->eval_steps[i];
    }
    int empty = !(y_hi >= y_lo);
    if (empty) y_lo = 0, y_hi = 1;
    axis ax = nice_axis(0, x_hi, 8), ay = nice_axis(y_lo, y_hi, 6);
    /* ~2 % of the run: light enough to keep the shape, enough to read the trend. */
    size_t half_window = p->n_train >= 100 ? p->n_train / 100 : p->n_train >= 20 ? 1 : 0;

    LM_TRY(lm_buffer_appendf(out,
                             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                             "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
                             "  <rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                             "  <text x=\"%.1f\" y=\"30\" font-size=\"20\" font-weight=\"bold\" text-anchor=\"middle\" "
                             "fill=\"#111111\">",
                             WIDTH, HEIGHT, WIDTH, HEIGHT, WIDTH / 2));
    LM_TRY(svg_append_escaped(out, p->title ? p->title : "Training and validation loss"));
    LM_TRY(put(out, "</text>\n"));
    if (p->subtitle && *p->subtitle) LM_TRY(subtitle(out, p->subtitle));
    LM_TRY(axes(out, &ax, &ay));
    if (empty)
        LM_TRY(lm_buffer_appendf(out,
                                 "  <text x=\"%.1f\" y=\"%.1f\" font-size=\"16\" text-anchor=\"middle\" "
                                 "fill=\"#888888\">no loss was recorded</text>\n",
                                 (LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2));
    LM_TRY(epoch_lines(out, &ax, p, x_hi));
    int band = p->n_train > (size_t)(RIGHT - LEFT);
    if (p->n_train) {
        if (half_window > 0) LM_TRY(per_step_values(out, &ax, &ay, p));
        double *smoothed;
        LM_TRY(smooth(p->train_loss, p->n_train, half_window, &smoothed));
        lm_status status = polyline(out, &ax, &ay, p->train_steps, smoothed, p->n_train,
                                    "stroke=\"" TRAIN_COLOR "\" stroke-width=\"2.2\" stroke-linejoin=\"round\"");
        free(smoothed);
        LM_TRY(status);
    }
    LM_TRY(eval_points(out, &ax, &ay, p));
    LM_TRY(legend(out, p, half_window, band, epoch_boundaries(p, x_hi)));
    return put(out, "</svg>\n");
}
