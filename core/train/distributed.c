/* The launcher's environment and the process-wide communicator
 * (distributed.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "distributed.h"

/* Checked in this order: Open MPI's mpirun, then PMI (MPICH's launchers,
 * srun --mpi=pmi2), then Slurm's own for the tasks of a job step (srun).
 * Not SLURM_NTASKS: an sbatch or salloc allocation sets it in the batch
 * shell too, where a plain `lmcore run` is one process. */
static const char *const size_variables[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
static const char *const rank_variables[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"};

/* srun starts the tasks; MPI can join them only through a PMI plugin of
 * Slurm's (srun --mpi=pmix or pmi2, or MpiDefault in slurm.conf), which
 * sets PMIX_RANK or PMI_RANK.  Without one, Open MPI's MPI_Init aborts
 * every task with a page about its build: say what to type instead. */
static lm_status check_srun_has_pmi(const char *variable, int launched) {
    if (strcmp(variable, "SLURM_STEP_NUM_TASKS") != 0 || launched <= 1) return LM_OK;
    if (getenv("PMIX_RANK") || getenv("PMI_RANK")) return LM_OK;
    return lm_error_set(LM_ERR_INVALID,
                        "this process is one of %d tasks started by srun (SLURM_STEP_NUM_TASKS=%d) without an MPI "
                        "plugin, so MPI cannot join them: launch with `srun --mpi=pmix ...` (or set MpiDefault=pmix "
                        "in slurm.conf; `srun --mpi=list` shows what this cluster has)",
                        launched, launched);
}

static int positive_env(const char *name, int *out) {
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (*end || n < 0 || n > 1 << 24) return 0;
    *out = (int)n;
    return 1;
}

int lm_launch_world_size(const char **variable) {
    if (variable) *variable = "";
    for (size_t i = 0; i < sizeof size_variables / sizeof *size_variables; i++) {
        int n = 0;
        if (positive_env(size_variables[i], &n) && n >= 1) {
            if (variable) *variable = size_variables[i];
            return n;
        }
    }
    return 1;
}

int lm_launch_rank(void) {
    for (size_t i = 0; i < sizeof rank_variables / sizeof *rank_variables; i++) {
        int n = 0;
        if (positive_env(rank_variables[i], &n)) return n;
    }
    return 0;
}

static struct {
    lm_handle comm;
    int joined; /* comm.plugin NULL after joining means: no communicator */
    int rank, size;
} process;

int lm_distributed_rank(void) { return process.comm.plugin ? process.rank : lm_launch_rank(); }
int lm_distributed_size(void) { return process.comm.plugin ? process.size : lm_launch_world_size(NULL); }

static const char *resolve(const char *name, const char *model_device, int launched) {
    if (strcmp(name, "auto") != 0) return name;
    if (launched <= 1) return "";
    return strncmp(model_device, "cuda", 4) == 0 ? "nccl" : "mpi";
}

lm_status lm_distributed_join(const lm_registry *registry, const char *name, const char *model_device,
                              lm_handle *out) {
    memset(out, 0, sizeof *out);
    const char *variable = "";
    const int launched = lm_launch_world_size(&variable);
    const char *wanted = resolve(name, model_device, launched);
    if (process.comm.plugin) {
        if (*wanted && strcmp(wanted, process.comm.plugin->name) != 0)
            return lm_error_set(LM_ERR_INVALID,
                                "communicator '%s': this process already joined communicator '%s' (one per process: "
                                "MPI starts once): use the same communicator in every trainer",
                                wanted, process.comm.plugin->name);
        *out = process.comm;
        return LM_OK;
    }
    if (!*wanted) return LM_OK; /* one process: the trainer's own path */
    LM_TRY(check_srun_has_pmi(variable, launched));
    const lm_plugin *plugin = NULL;
    if (lm_registry_find(registry, LM_KIND_COMMUNICATOR, wanted, &plugin) != LM_OK) {
        if (strcmp(name, "auto") == 0)
            return lm_error_set(LM_ERR_UNSUPPORTED,
                                "this process is one of %d launched (%s=%d) but this lmcore has no '%s' communicator "
                                "plugin: rebuild lmcore with MPI found (Debian: apt-get install libopenmpi-dev "
                                "openmpi-bin%s), or run a single process",
                                launched, variable, launched, wanted,
                                strcmp(wanted, "nccl") == 0 ? ", and CUDA with NCCL" : "");
        return LM_ERR_NOT_FOUND; /* the registry's message names the known communicators */
    }
    lm_config *cfg = NULL;
    LM_TRY(lm_config_create(&cfg, "the communicator"));
    void *self = NULL;
    lm_status status = lm_plugin_instantiate(plugin, cfg, &self);
    lm_config_destroy(cfg);
    if (status != LM_OK) return status;
    const lm_communicator_vtable *vt = &plugin->vtable.communicator;
    const int size = vt->size(self), rank = vt->rank(self);
    if (size != launched && launched > 1) {
        lm_plugin_release(plugin, self);
        return lm_error_set(LM_ERR_INVALID,
                            "communicator '%s' has %d rank%s but the launcher started %d processes (%s=%d): use "
                            "communicator=auto (or mpi, nccl) under mpirun and srun",
                            wanted, size, size == 1 ? "" : "s", launched, variable, launched);
    }
    process.comm.plugin = plugin;
    process.comm.self = self;
    process.rank = rank;
    process.size = size;
    *out = process.comm;
    return LM_OK;
}

void lm_distributed_print_error(FILE *out, const char *message) {
    const int rank = lm_distributed_rank(), size = lm_distributed_size();
    if (size <= 1) fprintf(out, "lmcore: error: %s\n", message);
    else if (rank == 0) fprintf(out, "lmcore: error: rank 0 of %d: %s\n", size, message);
    else fprintf(out, "lmcore (rank %d of %d): error: %s\n", rank, size, message);
    fflush(out);
}

void lm_distributed_abort(int exit_code) {
    if (lm_distributed_size() <= 1) return;
    fflush(NULL);
    /* The launcher stops the job when a rank exits with an error: give rank
     * 0 the time to print its line for a failure the ranks share. */
    if (lm_distributed_rank() != 0) sleep(2);
    if (process.comm.plugin) process.comm.plugin->vtable.communicator.abort(process.comm.self, exit_code);
}
