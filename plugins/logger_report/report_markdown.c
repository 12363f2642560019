/* report.md: the run in the shape of the reference report (its epoch table
 * is the Hugging Face Trainer's, here with a Step column for evaluations
 * made mid-epoch), plus throughput and the hardware it ran on, read from
 * /proc and the device named in the run description. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

static lm_status put(lm_buffer *out, const char *text) { return lm_buffer_append(out, text, strlen(text)); }

/* Markdown table cells: a '|' would end the cell, a line break the row. */
static lm_status put_cell(lm_buffer *out, const char *text) {
    for (const char *p = text; *p; p++) {
        if (*p == '|') LM_TRY(put(out, "\\|"));
        else if (*p == '\n' || *p == '\r') LM_TRY(put(out, " "));
        else LM_TRY(lm_buffer_append(out, p, 1));
    }
    return LM_OK;
}

static lm_status put_number(lm_buffer *out, const char *format, double v) {
    if (!isfinite(v)) return put(out, "n/a");
    return lm_buffer_appendf(out, format, v);
}

/* A table cell holding a number: " v |" (a row is "|", its cells, "\n"). */
static lm_status put_number_cell(lm_buffer *out, const char *format, double v) {
    LM_TRY(put(out, " "));
    LM_TRY(put_number(out, format, v));
    return put(out, " |");
}

/* A row of a two-column table: "| label | v |\n". */
static lm_status put_number_row(lm_buffer *out, const char *label, const char *format, double v) {
    LM_TRY(lm_buffer_appendf(out, "| %s |", label));
    LM_TRY(put_number_cell(out, format, v));
    return put(out, "\n");
}

static void format_duration(char *out, size_t cap, double seconds) {
    if (!(seconds >= 0)) {
        snprintf(out, cap, "n/a");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(out, cap, "%ld h %02ld min %02ld s (%.1f s)", s / 3600, (s / 60) % 60, s % 60, seconds);
    else if (s >= 60) snprintf(out, cap, "%ld min %02ld s (%.1f s)", s / 60, s % 60, seconds);
    else snprintf(out, cap, "%.2f s", seconds);
}

/* ---- hardware ------------------------------------------------------------------------ */

/* "model name : Intel(R) Xeon(R) ..." of /proc/cpuinfo (first processor). */
static void cpu_model(char *out, size_t cap) {
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *colon = strchr(line, ':');
        if (!colon) continue;
        colon++;
        while (*colon == ' ' || *colon == '\t') colon++;
        snprintf(out, cap, "%s", colon);
        out[strcspn(out, "\r\n")] = '\0';
        break;
    }
    fclose(f);
}

/* The GPU from the run description: the trainer writes "... on <device>,
 * ..." where an architecture's device reads "cuda:0 NVIDIA H100 80GB HBM3
 * (sm_90, 79.1 GiB)".  Copies the text after "cuda:N " up to the first
 * comma outside parentheses; 0 if the run was not on a GPU. */
static int gpu_from_description(const char *text, char *out, size_t cap) {
    const char *p = text ? strstr(text, "cuda:") : NULL;
    if (!p || cap == 0) return 0;
    const char *device = p;
    p += 5;
    while (*p >= '0' && *p <= '9') p++;
    const char *name = *p == ' ' ? p + 1 : device;
    size_t n = 0;
    int depth = 0;
    for (const char *c = name; *c && n + 1 < cap; c++) {
        if (*c == '(') depth++;
        if (*c == ')') depth--;
        if (*c == ',' && depth <= 0) break;
        out[n++] = *c;
        if (*c == ')' && depth == 0) break;
    }
    while (n > 0 && out[n - 1] == ' ') n--;
    out[n] = '\0';
    return n > 0;
}

static lm_status hardware(const report *r, lm_buffer *out) {
    char cpu[256], gpu[256];
    cpu_model(cpu, sizeof cpu);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double memory_gib = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024 * 1024);
    LM_TRY(put(out, "\n## Hardware\n\n| | |\n| --- | --- |\n| CPU | "));
    LM_TRY(put_cell(out, cpu));
    LM_TRY(lm_buffer_appendf(out, " (%ld logical cores) |\n| Memory | %.1f GiB |\n", cores, memory_gib));
    LM_TRY(put(out, "| GPU | "));
    if (gpu_from_description(r->description, gpu, sizeof gpu)) LM_TRY(put_cell(out, gpu));
    else LM_TRY(put(out, "none (trained on the CPU)"));
    LM_TRY(put(out, " |\n"));
    struct utsname u;
    if (uname(&u) == 0) {
        LM_TRY(put(out, "| System | "));
        LM_TRY(put_cell(out, u.sysname));
        LM_TRY(put(out, " "));
        LM_TRY(put_cell(out, u.release));
        LM_TRY(put(out, " "));
        LM_TRY(put_cell(out, u.machine));
        LM_TRY(put(out, " |\n"));
    }
    /* System metrics, when the trainer sampled them into its steps. */
    if (r->rss_mb.count > 0)
        LM_TRY(lm_buffer_appendf(out, "| Peak process memory (RSS) | %.0f MiB |\n", r->rss_mb.peak));
    if (r->cpu_percent.count > 0)
        LM_TRY(lm_buffer_appendf(out, "| Mean process CPU use | %.0f %% (100 %% = one core) |\n",
                                 r->cpu_percent.sum / r->cpu_percent.count));
    if (r->gpu_utilization.count > 0)
        LM_TRY(lm_buffer_appendf(out, "| Mean GPU utilisation | %.0f %% |\n",
                                 r->gpu_utilization.sum / r->gpu_utilization.count));
    if (r->gpu_memory_mb.count > 0)
        LM_TRY(lm_buffer_appendf(out, "| Peak GPU memory in use | %.0f MiB |\n", r->gpu_memory_mb.peak));
    if (r->gpu_power_w.count > 0)
        LM_TRY(lm_buffer_appendf(out, "| Mean GPU power | %.0f W (peak %.0f W) |\n",
                                 r->gpu_power_w.sum / r->gpu_power_w.count, r->gpu_power_w.peak));
    return LM_OK;
}

/* ---- results --------------------------------------------------------------------------- */

/* An evaluation at an epoch end has a whole epoch_index ("1", as in the
 * reference report); one made mid-epoch a fraction ("0.34"). */
static int whole_epoch(double epoch) { return isfinite(epoch) && fabs(epoch - nearbyint(epoch)) < 1e-6; }

/* One row per evaluation, mid-epoch ones too.  Epoch stays the first column
 * (the reference report's table, and what readers grep for); Step places
 * evaluations made between epoch ends. */
static lm_status eval_table(const report *r, lm_buffer *out) {
    LM_TRY(put(out, "\n## Results\n\n"));
    if (r->n_evals == 0) return put(out, "No evaluation was run.\n");
    LM_TRY(put(out, "| Epoch | Step | Training Loss | Validation Loss | Perplexity |\n"
                    "| ---: | ---: | ---: | ---: | ---: |\n"));
    for (size_t i = 0; i < r->n_evals; i++) {
        const eval_row *e = &r->evals[i];
        LM_TRY(put(out, "|"));
        LM_TRY(put_number_cell(out, whole_epoch(e->epoch_index) ? "%.0f" : "%.2f", e->epoch_index));
        LM_TRY(lm_buffer_appendf(out, " %lld |", (long long)e->step));
        LM_TRY(put_number_cell(out, "%.6f", e->train_loss));
        LM_TRY(put_number_cell(out, "%.6f", e->eval_loss));
        LM_TRY(put_number_cell(out, "%.2f", e->perplexity));
        LM_TRY(put(out, "\n"));
    }
    return LM_OK;
}

/* The last finite evaluation: the run end's when it has one. */
static int final_eval(const report *r, double *loss, double *perplexity) {
    *loss = r->eval_loss;
    *perplexity = r->perplexity;
    for (size_t i = r->n_evals; !isfinite(*loss) && i-- > 0;) {
        *loss = r->evals[i].eval_loss;
        *perplexity = r->evals[i].perplexity;
    }
    return isfinite(*loss);
}

static lm_status throughput(const report *r, lm_buffer *out) {
    char runtime[96];
    format_duration(runtime, sizeof runtime, r->runtime);
    int64_t steps = r->ended ? r->end_step : r->last_step;
    double epochs = r->ended ? r->end_epoch : (r->steps_per_epoch > 0 ? (double)steps / r->steps_per_epoch : NAN);
    LM_TRY(put(out, "\n## Throughput\n\n| | |\n| --- | --- |\n"));
    LM_TRY(lm_buffer_appendf(out, "| Runtime | %s |\n| Optimizer steps | %lld of %lld (", runtime, (long long)steps,
                             (long long)r->total_steps));
    LM_TRY(put_number(out, "%.2f", epochs));
    LM_TRY(lm_buffer_appendf(out, " of %d epochs) |\n", r->total_epochs));
    /* A resumed run: the rates below are this process's, over its own steps. */
    if (r->resumed_at > 0)
        LM_TRY(lm_buffer_appendf(out, "| Resumed | at step %lld: this session ran %lld steps; runtime and the rates "
                                      "below count those |\n",
                                 (long long)r->resumed_at, (long long)(steps - r->resumed_at)));
    LM_TRY(put_number_row(out, "Samples/s", "%.3f", r->samples_per_second));
    LM_TRY(put_number_row(out, "Steps/s", "%.3f", r->steps_per_second));
    /* Tokens/s over the whole run (evaluations included), like samples/s;
     * and over the training steps alone: every step has the same tokens, so
     * total tokens / total step time is the harmonic mean of the logging
     * intervals' rates weighted by their steps (a plain mean would let a
     * few fast intervals dominate). */
    LM_TRY(put_number_row(out, "Tokens/s (whole run)", "%.0f", r->samples_per_second * r->block_size));
    LM_TRY(put_number_row(out, "Tokens/s (training steps only)", "%.0f",
                          r->tokens_per_second.inverse_sum > 0
                              ? r->tokens_per_second.count / r->tokens_per_second.inverse_sum
                              : NAN));
    return put_number_row(out, "Training loss (mean over the run)", "%.4f", r->train_loss);
}

/* Text generated during training, at its step. */
static lm_status samples(const report *r, lm_buffer *out) {
    if (r->n_samples == 0) return LM_OK;
    LM_TRY(put(out, "\n## Samples\n\n| Step | Generated text |\n| ---: | --- |\n"));
    for (size_t i = 0; i < r->n_samples; i++) {
        LM_TRY(lm_buffer_appendf(out, "| %lld | ", (long long)r->samples[i].step));
        LM_TRY(put_cell(out, r->samples[i].text));
        LM_TRY(put(out, " |\n"));
    }
    return LM_OK;
}

static lm_status setup(const report *r, lm_buffer *out) {
    if (!isfinite(r->n_params)) return LM_OK;
    LM_TRY(put(out, "\n| Parameters | Training blocks | Evaluation blocks | Block size | Batch size |\n"
                    "| ---: | ---: | ---: | ---: | ---: |\n|"));
    const double cells[] = {r->n_params, r->train_blocks, r->eval_blocks, r->block_size, r->batch_size};
    for (size_t i = 0; i < sizeof cells / sizeof *cells; i++) LM_TRY(put_number_cell(out, "%.0f", cells[i]));
    return put(out, "\n");
}

lm_status report_markdown(const report *r, lm_buffer *out) {
    LM_TRY(put(out, "# "));
    LM_TRY(put_cell(out, r->title));
    LM_TRY(put(out, "\n\n"));
    if (r->started > 0) {
        char when[64];
        time_t t = (time_t)r->started;
        struct tm utc;
        gmtime_r(&t, &utc);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &utc);
        LM_TRY(lm_buffer_appendf(out, "Run started %s.\n\n", when));
    }
    if (r->note) {
        LM_TRY(put(out, "> **Note:** "));
        LM_TRY(put_cell(out, r->note));
        LM_TRY(put(out, "\n\n"));
    }
    LM_TRY(put(out, "**Run:** "));
    LM_TRY(put_cell(out, r->description && *r->description ? r->description : "(no description)"));
    LM_TRY(put(out, "\n"));
    if (r->details) {
        LM_TRY(put(out, "\n"));
        LM_TRY(put(out, r->details));
        if (r->details[strlen(r->details) - 1] != '\n') LM_TRY(put(out, "\n"));
    }
    if (!r->ended)
        LM_TRY(lm_buffer_appendf(out, "\n> **The run stopped before its end** (interrupted or failed) after step "
                                      "%lld of %lld; the figures below cover what was done.\n",
                                 (long long)r->last_step, (long long)r->total_steps));
    LM_TRY(setup(r, out));
    LM_TRY(eval_table(r, out));
    double loss, perplexity;
    if (final_eval(r, &loss, &perplexity))
        LM_TRY(lm_buffer_appendf(out, "\n**Final perplexity: %.2f** (validation loss %.4f).\n", perplexity, loss));
    LM_TRY(put(out, "\n![Training and validation loss](loss.svg)\n"));
    LM_TRY(samples(r, out));
    LM_TRY(throughput(r, out));
    LM_TRY(hardware(r, out));
    return LM_OK;
}
