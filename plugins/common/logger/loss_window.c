/* The mean step loss of a logger's row (see loss_window.h). */
#include "loss_window.h"

#include <math.h>

void loss_window_start(loss_window *w, int64_t step) {
    w->loss_sum = 0;
    w->steps = 0;
    w->last_step = step;
}

int loss_window_add(loss_window *w, const lm_event *ev, int64_t every) {
    double loss = NAN;
    lm_event_scalar(ev, "loss", &loss);
    int64_t covered = ev->step - w->last_step;
    if (covered < 1) covered = 1; /* out-of-order events: count the STEP once */
    w->last_step = ev->step;
    w->loss_sum += loss * (double)covered;
    w->steps += covered;
    return ev->step % every == 0 || ev->step == ev->total_steps;
}

double loss_window_take_mean(loss_window *w) {
    double mean = w->loss_sum / (double)w->steps;
    w->loss_sum = 0;
    w->steps = 0;
    return mean;
}
