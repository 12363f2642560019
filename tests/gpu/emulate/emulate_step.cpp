#include "emulate_suites.h"
int emulate_step(lm_cuda_ctx *ctx) { (void)ctx; return 0; }
