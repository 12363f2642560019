/* The device work of a training step's parts, run eagerly: a micro-batch
 * (forward, the loss's accumulation, backward, and the gradient buckets of a
 * data-parallel run) and the update (schedule, the optimizer's step, the
 * step's end).  trainer.c runs them as they are, or trainer_graph.c
 * captures them as CUDA graphs and replays those: both call these, so a
 * graph is the same step. */
#include "trainer_internal.h"

lm_status trainer_run_micro_batch(lm_trainer *t, const lm_batch *batch) {
    const lm_architecture_vtable *arch = trainer_arch(t);
    const float loss_scale = 1.0f / (float)t->s.grad_accum;
    /* forward_train (ABI 2.1) lets the model compute the loss gradient with
     * the loss, in one pass over the logits; a 2.0 plugin has forward only. */
    lm_status status = arch->forward_train ? arch->forward_train(t->parts.model.self, batch, t->state, loss_scale)
                                           : arch->forward(t->parts.model.self, batch, t->state);
    if (status == LM_OK)
        status = t->dev->ops->step_micro_batch_end(t->dev, t->state, 1.0, (double)t->s.grad_accum, 1);
    /* Gradient buckets (data parallel) are reduced by host calls during
     * backward: such runs never capture (trainer_graph.c). */
    int bucketed = 0;
    if (status == LM_OK && t->buckets) status = trainer_dist_backward_begins(t, &bucketed);
    if (status == LM_OK) status = arch->backward(t->parts.model.self, loss_scale, t->grads_written);
    if (bucketed) status = trainer_dist_backward_ends(t, bucketed, status);
    return status;
}

lm_status trainer_run_update(lm_trainer *t, const lm_batch *unused) {
    (void)unused;
    if (!t->plan.host_schedule) LM_TRY(t->dev->ops->step_schedule(t->dev, t->state));
    lm_status status = t->parts.optimizer.plugin->vtable.optimizer.step(t->parts.optimizer.self, t->state);
    if (status == LM_OK && t->zero_stage) status = trainer_dist_gather_params(t);
    if (status != LM_OK) {
        lm_error_prefix("training step %lld: ", (long long)t->step + 1);
        return status;
    }
    return t->dev->ops->step_finish(t->dev, t->state);
}
