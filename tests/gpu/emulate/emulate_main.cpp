/* emulate_cuda_kernels [SUITE...]: runs the CUDA kernels' emulation suites
 * (all, or the ones named) against the CPU twins; exit status 0 when
 * every case agrees, 1 otherwise, 2 for an unknown suite. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "emulate_suites.h"
#include "emulate_util.h"

namespace {

struct suite {
    const char *name;
    int (*run)(lm_cuda_ctx *ctx);
};

const suite suites[] = {
    {"emulator", emulate_emulator},     {"layernorm", emulate_layernorm},   {"residual_layernorm", emulate_residual_layernorm},
    {"pointwise", emulate_pointwise},   {"step", emulate_step},
    {"optimizers", emulate_optimizers},     {"decode", emulate_decode},
    {"fused_attention", emulate_fused_attention}, {"fused_attention_bf16", emulate_fused_attention_bf16},
    {"crossentropy", emulate_crossentropy},
    {"bf16_loss", emulate_bf16_loss}, {"gelu_bf16", emulate_gelu_bf16}, {"embedding", emulate_embedding},
    {"layernorm_bf16", emulate_layernorm_bf16},
};

double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

} /* namespace */

int main(int argc, char **argv) {
    for (int a = 1; a < argc; a++) {
        bool known = false;
        for (const suite &s : suites) known = known || strcmp(argv[a], s.name) == 0;
        if (!known) {
            fprintf(stderr, "emulate_cuda_kernels: no suite '%s'; the suites are:", argv[a]);
            for (const suite &s : suites) fprintf(stderr, " %s", s.name);
            fprintf(stderr, "\n");
            return 2;
        }
    }
    int failures = 0;
    for (const suite &s : suites) {
        bool wanted = argc == 1;
        for (int a = 1; a < argc; a++) wanted = wanted || strcmp(argv[a], s.name) == 0;
        if (!wanted) continue;
        lm_cuda_ctx *ctx = emu_ctx_create();
        const double start = seconds();
        const int failed = s.run(ctx);
        printf("-- %s: %s (%d failed), %.1f s\n", s.name, failed ? "FAIL" : "PASS", failed, seconds() - start);
        fflush(stdout);
        failures += failed;
        emu_ctx_destroy(ctx);
    }
    printf("%s: %d case(s) differ from the CPU twins\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
