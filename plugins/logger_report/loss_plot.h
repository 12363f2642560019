/* The loss curves of a run as an SVG document, built as a string. */
#ifndef LM_REPORT_LOSS_PLOT_H
#define LM_REPORT_LOSS_PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/lmcore.h"

typedef struct loss_plot {
    const char *title;
    const char *subtitle;       /* may be NULL */
    const int64_t *train_steps; /* per optimizer step: its number and loss */
    const double *train_loss;
    size_t n_train;
    const int64_t *eval_steps; /* per evaluation: the step it followed and its loss */
    const double *eval_loss;
    size_t n_eval;
    double steps_per_epoch; /* > 0: dashed lines at every epoch boundary inside the run */
} loss_plot;

/* Appends the whole SVG document to out. */
lm_status loss_plot_svg(const loss_plot *plot, lm_buffer *out);

/* Appends text with &, <, >, " escaped for XML. */
lm_status svg_append_escaped(lm_buffer *out, const char *text);

#endif
