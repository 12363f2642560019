/* loss.svg: training loss per logging point (each the mean step loss of
 * its logging interval; with many points, a moving average over ~2 % of
 * them above the faint logged values), validation loss per evaluation at
 * its step (mid-epoch ones too), dashed epoch boundaries, an x axis that
 * spans exactly the run's steps, round tick values, a legend placed where
 * it covers no mark, a title, an optional warning line, and under the
 * losses a panel of the learning rate at each logging point.  Plain SVG 1.1 written with printf: any
 * browser, Inkscape or rsvg shows it, and it needs no plotting library. */
#include "loss_plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Canvas and plot area, in SVG user units (pixels). */
#define WIDTH 960.0
#define HEIGHT 540.0 /* without the learning-rate panel */
#define LEFT 80.0
#define RIGHT (WIDTH - 30.0)
#define TOP 96.0
#define BOTTOM 476.0
/* The learning-rate panel, under the losses, on the same x axis. */
#define LR_TOP 512.0
#define LR_BOTTOM 622.0
#define HEIGHT_WITH_LR 700.0
#define LR_COLOR "#2ca02c"

#define TRAIN_COLOR "#1f77b4"
#define EVAL_COLOR "#d62728"
#define GRID_COLOR "#e5e5e5"
#define AXIS_COLOR "#333333"
#define EPOCH_COLOR "#7f7f7f"

typedef struct axis {
    double lo, hi, step; /* the range drawn, tick spacing */
} axis;

typedef struct box {
    double x, y, w, h; /* pixels, y down */
} box;

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

/* The x axis: exactly the run's steps, [first, last].  Rounding its end
 * out to a tick, as the y axis does, drew a 303-step run to 350 as if it
 * had stopped short; the ticks stay round and fall inside instead.  Steps
 * are whole: no spacing below 1. */
static axis step_axis(double first, double last) {
    if (!(last > first)) last = first + 1;
    axis a = nice_axis(first, last, 8);
    if (a.step < 1) a.step = 1;
    a.lo = first;
    a.hi = last;
    return a;
}

/* The ticks of a: the multiples of its step inside [lo, hi]. */
static double first_tick(const axis *a) {
    double t = ceil(a->lo / a->step - 1e-9) * a->step;
    return t == 0 ? 0 : t; /* not -0, which prints as "-0" */
}
static int tick_count(const axis *a) { return (int)floor((a->hi - first_tick(a)) / a->step + 1e-6) + 1; }

static double map(const axis *a, double v, double from, double to) {
    return from + (v - a->lo) / (a->hi - a->lo) * (to - from);
}

/* Decimals enough to tell ticks `step` apart. */
static int tick_decimals(double step) {
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 6 ? 6 : d;
}

/* Smoothing: a least-squares line through the logged values i-h .. i+h
 * (clipped to the run), evaluated at i.  The logging points are evenly
 * spaced (logging_steps) but for a shorter last interval, so their index
 * stands for x.  Inside the run the window is symmetric and this is
 * exactly the centred moving average of 2h+1 values; at the ends,
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

/* The logged values themselves: a faint line when there are fewer of them
 * than pixels, else the min..max band of each pixel column (a line would be
 * a smear). */
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

/* A tick of either axis: its grid line across the plot and its mark on the
 * axis (x1, y1, x2, y2 each), and where its label goes and how it aligns. */
typedef struct tick {
    double grid[4], mark[4];
    double label_x, label_y;
    const char *anchor;
} tick;

static lm_status put_tick(lm_buffer *out, const tick *t, int decimals, double v) {
    return lm_buffer_appendf(out,
                             "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" GRID_COLOR "\"/>\n"
                             "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" AXIS_COLOR "\"/>\n"
                             "    <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%.*f</text>\n",
                             t->grid[0], t->grid[1], t->grid[2], t->grid[3], t->mark[0], t->mark[1], t->mark[2],
                             t->mark[3], t->label_x, t->label_y, t->anchor, decimals, v);
}

static lm_status axes(lm_buffer *out, const axis *ax, const axis *ay, double x_label_y) {
    int xd = tick_decimals(ax->step), yd = tick_decimals(ay->step);
    LM_TRY(put(out, "  <g font-size=\"12\" fill=\"" AXIS_COLOR "\">\n"));
    for (int i = 0, n = tick_count(ax); i < n; i++) {
        double v = first_tick(ax) + i * ax->step, px = map(ax, v, LEFT, RIGHT);
        const tick t = {{px, TOP, px, BOTTOM}, {px, BOTTOM, px, BOTTOM + 5}, px, BOTTOM + 19, "middle"};
        LM_TRY(put_tick(out, &t, xd, v));
    }
    for (int i = 0, n = tick_count(ay); i < n; i++) {
        double v = first_tick(ay) + i * ay->step, py = map(ay, v, BOTTOM, TOP);
        const tick t = {{LEFT, py, RIGHT, py}, {LEFT - 5, py, LEFT, py}, LEFT - 8, py + 4, "end"};
        LM_TRY(put_tick(out, &t, yd, v));
    }
    LM_TRY(lm_buffer_appendf(
        out,
        "    <rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
        "stroke=\"" AXIS_COLOR "\"/>\n"
        "    <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\">optimizer step</text>\n"
        "    <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" "
        "transform=\"rotate(-90 %.1f %.1f)\">loss (cross-entropy)</text>\n  </g>\n",
        LEFT, TOP, RIGHT - LEFT, BOTTOM - TOP, (LEFT + RIGHT) / 2, x_label_y, 24.0, (TOP + BOTTOM) / 2, 24.0,
        (TOP + BOTTOM) / 2));
    return LM_OK;
}

static int has_learning_rates(const loss_plot *p) {
    if (!p->learning_rate) return 0;
    for (size_t i = 0; i < p->n_train; i++)
        if (isfinite(p->learning_rate[i])) return 1;
    return 0;
}

/* The learning rate at each logging point, in its own panel under the
 * losses: the schedule (warmup, decay, restarts) next to what it did. */
static lm_status lr_panel(lm_buffer *out, const axis *ax, const loss_plot *p) {
    double hi = 0;
    for (size_t i = 0; i < p->n_train; i++)
        if (isfinite(p->learning_rate[i]) && p->learning_rate[i] > hi) hi = p->learning_rate[i];
    axis ay = nice_axis(0, hi > 0 ? hi : 1, 3);
    LM_TRY(put(out, "  <g font-size=\"12\" fill=\"" AXIS_COLOR "\">\n"));
    for (int i = 0, n = tick_count(ax); i < n; i++) {
        double v = first_tick(ax) + i * ax->step, px = map(ax, v, LEFT, RIGHT);
        LM_TRY(lm_buffer_appendf(out,
                                 "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                 "stroke=\"" GRID_COLOR "\"/>\n"
                                 "    <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.*f</text>\n",
                                 px, LR_TOP, px, LR_BOTTOM, px, LR_BOTTOM + 19, tick_decimals(ax->step), v));
    }
    for (int i = 0, n = tick_count(&ay); i < n; i++) {
        double v = first_tick(&ay) + i * ay.step, py = LR_BOTTOM - (v - ay.lo) / (ay.hi - ay.lo) * (LR_BOTTOM - LR_TOP);
        LM_TRY(lm_buffer_appendf(out,
                                 "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                 "stroke=\"" GRID_COLOR "\"/>\n"
                                 "    <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n",
                                 LEFT, py, RIGHT, py, LEFT - 8, py + 4, v));
    }
    LM_TRY(lm_buffer_appendf(out,
                             "    <rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                             "stroke=\"" AXIS_COLOR "\"/>\n"
                             "    <text x=\"24\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" "
                             "transform=\"rotate(-90 24 %.1f)\">learning rate</text>\n  </g>\n",
                             LEFT, LR_TOP, RIGHT - LEFT, LR_BOTTOM - LR_TOP, (LR_TOP + LR_BOTTOM) / 2,
                             (LR_TOP + LR_BOTTOM) / 2));
    LM_TRY(lm_buffer_appendf(out, "  <polyline fill=\"none\" stroke=\"" LR_COLOR "\" stroke-width=\"2\" points=\""));
    double last_px = -1e9;
    for (size_t i = 0; i < p->n_train; i++) {
        if (!isfinite(p->learning_rate[i])) continue;
        double px = map(ax, (double)p->train_steps[i], LEFT, RIGHT);
        if (px - last_px < 0.5 && i + 1 < p->n_train) continue;
        last_px = px;
        double py = LR_BOTTOM - (p->learning_rate[i] - ay.lo) / (ay.hi - ay.lo) * (LR_BOTTOM - LR_TOP);
        LM_TRY(lm_buffer_appendf(out, "%.1f,%.1f ", px, py));
    }
    return put(out, "\"/>\n");
}

/* Epoch boundaries strictly inside the x axis: not at the run's end, nor
 * at or before where a resumed run went on.  Returns the last one's k and
 * sets *from to the first one's (none: the last is below the first); at
 * most 10000 of them, a dashed line per pixel being already too many. */
static int epoch_boundaries(const loss_plot *p, const axis *ax, int *from) {
    *from = 1;
    if (!(p->steps_per_epoch > 0)) return 0;
    double first = floor((ax->lo + 0.5) / p->steps_per_epoch) + 1, last = ceil((ax->hi - 0.5) / p->steps_per_epoch) - 1;
    if (!(first < 1e9)) return 0; /* a nonsensical steps_per_epoch: no lines rather than an overflow */
    if (first < 1) first = 1;
    if (last > first + 9999) last = first + 9999;
    *from = (int)first;
    return last < first ? *from - 1 : (int)last;
}

static lm_status epoch_lines(lm_buffer *out, const axis *ax, const loss_plot *p) {
    int from, to = epoch_boundaries(p, ax, &from);
    for (int k = from; k <= to; k++) {
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

/* The legend's rows: kinds 0 smoothed line, 1 band, 2 validation, 3 epoch,
 * 4 faint line.  `label` holds the smoothed line's text. */
typedef struct legend_rows {
    const char *text[4];
    int kind[4], n;
    char label[96];
} legend_rows;

static void legend_rows_of(legend_rows *l, const loss_plot *p, size_t half_window, int band, int boundaries) {
    l->n = 0;
    /* Each logged value is already a mean over its logging interval: the
     * labels count logged values, not optimizer steps. */
    if (half_window > 0)
        snprintf(l->label, sizeof l->label, "training loss (moving average of %zu logged values)", 2 * half_window + 1);
    else
        snprintf(l->label, sizeof l->label, "training loss");
    if (p->n_train) l->text[l->n] = l->label, l->kind[l->n++] = 0;
    if (p->n_train && half_window > 0)
        l->text[l->n] = band ? "training loss, logged values (range)" : "training loss, each logged value",
        l->kind[l->n++] = band ? 1 : 4;
    if (p->n_eval) l->text[l->n] = "validation loss (each evaluation)", l->kind[l->n++] = 2;
    if (boundaries > 0) l->text[l->n] = "epoch boundary", l->kind[l->n++] = 3;
}

static lm_status legend(lm_buffer *out, const legend_rows *l, const box *b) {
    if (l->n == 0) return LM_OK;
    const int n = l->n;
    const double x = b->x, y = b->y;
    LM_TRY(lm_buffer_appendf(out,
                             "  <g font-size=\"12\" fill=\"" AXIS_COLOR "\">\n"
                             "    <rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" "
                             "fill-opacity=\"0.9\" stroke=\"#bbbbbb\" rx=\"4\"/>\n",
                             x, y, b->w, b->h));
    for (int i = 0; i < n; i++) {
        double ly = y + 15 + 20.0 * i;
        switch (l->kind[i]) {
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
        LM_TRY(svg_append_escaped(out, l->text[i]));
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

/* ---- where the legend goes ------------------------------------------------------------ */

/* Whether the segment (x0, y0)-(x1, y1) has a point inside b: Liang-Barsky
 * clipping leaves a non-empty piece. */
static int segment_hits(const box *b, double x0, double y0, double x1, double y1) {
    double dx = x1 - x0, dy = y1 - y0, t0 = 0, t1 = 1;
    const double p[4] = {-dx, dx, -dy, dy};
    const double q[4] = {x0 - b->x, b->x + b->w - x0, y0 - b->y, b->y + b->h - y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0) return 0; /* parallel to this edge and outside it */
            continue;
        }
        double t = q[i] / p[i];
        if (p[i] < 0) {
            if (t > t1) return 0;
            if (t > t0) t0 = t;
        } else {
            if (t < t0) return 0;
            if (t < t1) t1 = t;
        }
    }
    return 1;
}

static int boxes_overlap(const box *a, const box *b) {
    return a->x < b->x + b->w && b->x < a->x + a->w && a->y < b->y + b->h && b->y < a->y + a->h;
}

/* Whether the line through the finite points (x, y), as polyline() draws
 * it, crosses b; a lone point counts as a zero-length segment. */
static int line_hits(const box *b, const axis *ax, const axis *ay, const int64_t *x, const double *y, size_t n) {
    int have = 0;
    double px0 = 0, py0 = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) continue;
        double px = map(ax, (double)x[i], LEFT, RIGHT), py = map(ay, y[i], BOTTOM, TOP);
        if (segment_hits(b, have ? px0 : px, have ? py0 : py, px, py)) return 1;
        px0 = px, py0 = py, have = 1;
    }
    return 0;
}

/* Text boxes, from the character count: DejaVu Sans averages about 0.6 em
 * per character, bold a little more. */
static box text_box(double x, double baseline, const char *text, double size, int anchor_end) {
    double w = (double)strlen(text) * size * 0.62;
    box b = {anchor_end ? x - w : x, baseline - size, w, size * 1.3};
    return b;
}

/* Whether `legend_box` would hide a mark: a training or validation line, a
 * validation point or the value beside it, an epoch boundary's label. */
static int covers_marks(const box *legend_box, const loss_plot *p, const double *smoothed, const axis *ax,
                        const axis *ay) {
    const double margin = 4; /* keep clear of the marks, not just off them */
    box b = {legend_box->x - margin, legend_box->y - margin, legend_box->w + 2 * margin, legend_box->h + 2 * margin};
    if (line_hits(&b, ax, ay, p->train_steps, p->train_loss, p->n_train)) return 1;
    if (smoothed && line_hits(&b, ax, ay, p->train_steps, smoothed, p->n_train)) return 1;
    if (line_hits(&b, ax, ay, p->eval_steps, p->eval_loss, p->n_eval)) return 1;
    for (size_t i = 0; i < p->n_eval; i++) {
        if (!isfinite(p->eval_loss[i])) continue;
        double px = map(ax, (double)p->eval_steps[i], LEFT, RIGHT), py = map(ay, p->eval_loss[i], BOTTOM, TOP);
        box point = {px - 6, py - 6, 12, 12};
        if (boxes_overlap(&b, &point)) return 1;
        char value[32];
        snprintf(value, sizeof value, "%.3f", p->eval_loss[i]);
        box label = text_box(px > RIGHT - 60 ? px - 8 : px + 8, py - 9, value, 12, px > RIGHT - 60);
        if (p->n_eval <= 12 && boxes_overlap(&b, &label)) return 1;
    }
    int from, to = epoch_boundaries(p, ax, &from);
    for (int k = from; k <= to; k++) {
        char text[48];
        snprintf(text, sizeof text, "epoch %d | %d", k, k + 1);
        box label = text_box(map(ax, k * p->steps_per_epoch, LEFT, RIGHT) - 4, BOTTOM - 6, text, 11, 1);
        if (boxes_overlap(&b, &label)) return 1;
    }
    return 0;
}

/* Puts the legend in the first corner where it hides no mark: top right,
 * top left, bottom right, bottom left (a fixed top-right box once covered
 * validation points).  When every corner would, the y axis grows upward
 * until the top-right corner is clear: a little less resolution is better
 * than a hidden point. */
static void place_legend(box *b, axis *ay, double y_lo, double y_hi, const loss_plot *p, const double *smoothed,
                         const axis *ax) {
    const double xs[2] = {RIGHT - b->w - 10, LEFT + 10}, ys[2] = {TOP + 10, BOTTOM - b->h - 10};
    for (int corner = 0; corner < 4; corner++) {
        b->x = xs[corner % 2];
        b->y = ys[corner / 2];
        if (!covers_marks(b, p, smoothed, ax, ay)) return;
    }
    b->x = xs[0];
    b->y = ys[0];
    double range = y_hi > y_lo ? y_hi - y_lo : 1;
    for (int k = 1; k <= 40 && covers_marks(b, p, smoothed, ax, ay); k++)
        *ay = nice_axis(y_lo, y_hi + 0.1 * k * range, 6);
}

lm_status loss_plot_svg(const loss_plot *p, lm_buffer *out) {
    double y_lo = INFINITY, y_hi = -INFINITY;
    double first = (double)p->first_step, last = (double)p->last_step;
    /* A point outside the declared steps widens the axis rather than fall off it. */
    for (size_t i = 0; i < p->n_train; i++) {
        extend(p->train_loss[i], &y_lo, &y_hi);
        extend((double)p->train_steps[i], &first, &last);
    }
    for (size_t i = 0; i < p->n_eval; i++) {
        extend(p->eval_loss[i], &y_lo, &y_hi);
        extend((double)p->eval_steps[i], &first, &last);
    }
    int empty = !(y_hi >= y_lo);
    if (empty) y_lo = 0, y_hi = 1;
    axis ax = step_axis(first, last), ay = nice_axis(y_lo, y_hi, 6);
    /* ~2 % of the logged values: light enough to keep the shape, enough to
     * read the trend.  (Each value is already a mean over its logging
     * interval; with logging_steps 1 this smooths single steps.) */
    size_t half_window = p->n_train >= 100 ? p->n_train / 100 : p->n_train >= 20 ? 1 : 0;
    double *smoothed = NULL;
    if (p->n_train) LM_TRY(smooth(p->train_loss, p->n_train, half_window, &smoothed));
    int band = p->n_train > (size_t)(RIGHT - LEFT);
    legend_rows rows;
    int first_boundary, last_boundary = epoch_boundaries(p, &ax, &first_boundary);
    legend_rows_of(&rows, p, half_window, band, last_boundary - first_boundary + 1);
    size_t widest = 0;
    for (int i = 0; i < rows.n; i++)
        if (strlen(rows.text[i]) > widest) widest = strlen(rows.text[i]);
    box legend_box = {0, 0, 60 + 12 * 0.62 * (double)widest, 10 + 20.0 * rows.n};
    if (rows.n) place_legend(&legend_box, &ay, y_lo, y_hi, p, smoothed, &ax);

    const int with_lr = has_learning_rates(p);
    const double height = with_lr ? HEIGHT_WITH_LR : HEIGHT;
    lm_status status = LM_OK;
    LM_CHECK(lm_buffer_appendf(out,
                               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                               "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
                               "  <rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                               "  <text x=\"%.1f\" y=\"30\" font-size=\"20\" font-weight=\"bold\" "
                               "text-anchor=\"middle\" fill=\"#111111\">",
                               WIDTH, height, WIDTH, height, WIDTH / 2));
    LM_CHECK(svg_append_escaped(out, p->title ? p->title : "Training and validation loss"));
    LM_CHECK(put(out, "</text>\n"));
    if (p->subtitle && *p->subtitle) LM_CHECK(subtitle(out, p->subtitle));
    if (p->note && *p->note) {
        LM_CHECK(lm_buffer_appendf(out,
                                   "  <text x=\"%.1f\" y=\"84\" font-size=\"13\" font-weight=\"bold\" "
                                   "text-anchor=\"middle\" fill=\"" EVAL_COLOR "\">",
                                   WIDTH / 2));
        /* One line: the note's head, up to its first ": " (report.md has all of it). */
        const char *colon = strstr(p->note, ": ");
        size_t n = colon ? (size_t)(colon - p->note) : strlen(p->note);
        char head[160];
        snprintf(head, sizeof head, "%.*s", (int)(n < sizeof head - 1 ? n : sizeof head - 1), p->note);
        LM_CHECK(svg_append_escaped(out, head));
        LM_CHECK(put(out, "</text>\n"));
    }
    LM_CHECK(axes(out, &ax, &ay, with_lr ? LR_BOTTOM + 44 : height - 22));
    if (with_lr) LM_CHECK(lr_panel(out, &ax, p));
    if (empty)
        LM_CHECK(lm_buffer_appendf(out,
                                   "  <text x=\"%.1f\" y=\"%.1f\" font-size=\"16\" text-anchor=\"middle\" "
                                   "fill=\"#888888\">no loss was recorded</text>\n",
                                   (LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2));
    LM_CHECK(epoch_lines(out, &ax, p));
    if (p->n_train) {
        if (half_window > 0) LM_CHECK(per_step_values(out, &ax, &ay, p));
        LM_CHECK(polyline(out, &ax, &ay, p->train_steps, smoothed, p->n_train,
                          "stroke=\"" TRAIN_COLOR "\" stroke-width=\"2.2\" stroke-linejoin=\"round\""));
    }
    LM_CHECK(eval_points(out, &ax, &ay, p));
    LM_CHECK(legend(out, &rows, &legend_box));
    LM_CHECK(put(out, "</svg>\n"));
fail:
    free(smoothed);
    return status;
}
