/* The loss curves of a run as an SVG document, built as a string. */
#ifndef LM_REPORT_LOSS_PLOT_H
#define LM_REPORT_LOSS_PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/lmcore.h"

typedef struct loss_plot {
    const char *title;
    const char *subtitle;       /* may be NULL */
    const int64_t *train_steps; /* per logging point (STEP event): its step and the mean loss since the previous */
    const double *train_loss;
    const double *learning_rate; /* per logging point, may be NULL or NaN: a panel under the losses when finite */
    size_t n_train;
    const int64_t *eval_steps; /* per evaluation, mid-epoch ones too: the step it followed and its loss */
    const double *eval_loss;
    size_t n_eval;
    double steps_per_epoch; /* > 0: dashed lines at every epoch boundary inside the run */
    /* The x axis spans exactly [first_step, last_step]: where the run began
     * (0, or the step a resumed run went on from) and its last step. */
    int64_t first_step, last_step;
    const char *note; /* a warning under the subtitle, in red (NULL: none) */
} loss_plot;

/* Appends the whole SVG document to out. */
lm_status loss_plot_svg(const loss_plot *plot, lm_buffer *out);

/* Appends text with &, <, >, " escaped for XML. */
lm_status svg_append_escaped(lm_buffer *out, const char *text);

#endif
