/* The tolerances of the PyTorch parity suites (tests/gpt2/test_gpt2.c and
 * tests/bert/test_bert.c), in one place so that both models are held to
 * the same bar.  All are relative errors: of the loss, of the logits and of
 * each gradient to their largest magnitude, and of the gradient norm.
 *
 * fp32 (the default) is held to near float rounding.  A suite compiled for
 * bf16 defines LM_PARITY_BF16 before including this header: the GEMMs then
 * round their inputs to bf16 (8 mantissa bits, relative error 2^-9 per
 * operand), so the same fixture is checked with these looser, stated
 * tolerances, and only the forward/backward and AdamW-step comparisons run
 * (the others check fp32 properties). */
#ifndef LMCORE_TESTS_PARITY_TOLERANCES_H
#define LMCORE_TESTS_PARITY_TOLERANCES_H

#ifndef LM_PARITY_BF16
#define TOL_LOSS 1e-5
#define TOL_LOGITS 1e-4
#define TOL_GRADS 1e-4
#define TOL_NORM 1e-4
#else
#define TOL_LOSS 1e-2
#define TOL_LOGITS 5e-2
#define TOL_GRADS 1e-1
#define TOL_NORM 5e-2
#endif

#endif
