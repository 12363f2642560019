/* The emulation suites (emulate_*.cpp); each returns its failed cases. */
#ifndef LM_EMULATE_SUITES_H
#define LM_EMULATE_SUITES_H

typedef struct lm_cuda_ctx lm_cuda_ctx;

int emulate_emulator(lm_cuda_ctx *ctx); /* emulator_selftest.cu */
int emulate_fused_attention(lm_cuda_ctx *ctx);
int emulate_fused_attention_bf16(lm_cuda_ctx *ctx);
int emulate_layernorm(lm_cuda_ctx *ctx);
int emulate_residual_layernorm(lm_cuda_ctx *ctx);
int emulate_layernorm_bf16(lm_cuda_ctx *ctx);
int emulate_pointwise(lm_cuda_ctx *ctx);
int emulate_step(lm_cuda_ctx *ctx);
int emulate_optimizers(lm_cuda_ctx *ctx);
int emulate_decode(lm_cuda_ctx *ctx);
int emulate_crossentropy(lm_cuda_ctx *ctx);
int emulate_bf16_loss(lm_cuda_ctx *ctx);
int emulate_gelu_bf16(lm_cuda_ctx *ctx);
int emulate_embedding(lm_cuda_ctx *ctx);

#endif
