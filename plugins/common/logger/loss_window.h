/* The loss of a logger's row that stands for several logging points (the
 * `every` of the console, csv and jsonl loggers).  Each STEP event's loss
 * is the mean step loss since the previous STEP, so it counts with that
 * many steps (logging intervals differ: a run's last one is shorter), and
 * a row reports the mean step loss since the previous row.  Part of
 * lmplugin_common. */
#ifndef LMPLUGIN_LOSS_WINDOW_H
#define LMPLUGIN_LOSS_WINDOW_H

#include <stdint.h>

#include "lmcore/lmcore.h"

typedef struct loss_window {
    double loss_sum;   /* each STEP's loss times the steps it covers */
    int64_t steps;     /* the steps covered */
    int64_t last_step; /* the previous STEP's step, or where the run began */
} loss_window;

/* Empty, the next STEP covering the steps after `step` (a resumed run's
 * first STEP covers only the steps from where it went on). */
void loss_window_start(loss_window *w, int64_t step);
/* Adds a STEP event's loss.  Returns 1 when the event makes a row: its step
 * is a multiple of `every`, or the run's last. */
int loss_window_add(loss_window *w, const lm_event *ev, int64_t every);
/* The mean step loss over the window, which starts again empty. */
double loss_window_take_mean(loss_window *w);

#endif
