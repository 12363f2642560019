/* The embedding kernels (kernels/cuda/embedding.cu) emulated through their
 * host functions against the CPU twin (kernels/cpu/embedding.c):
 *   forward   GPT-2 (word + position) and BERT (word + type + position,
 *             with token types and without: every row type 0), C odd, and
 *             past the grid cap (B·T·C > 8192 blocks of 256: threads loop);
 *   backward  position rows, word rows through the sort, type rows with
 *             and without type ids, added onto non-zero values, ids that
 *             repeat and ids never used; a larger batch after a smaller one
 *             (the sort scratch grows).
 * The backward's radix sort is a CPU STAND-IN (stubs/cub/device/
 * device_radix_sort.cuh: std::stable_sort), not CUB and not emulated: what
 * is checked is the kernels around it (iota, the scatter of sorted rows,
 * the position sum) and the host code's scratch layout.  Both directions
 * claim the CPU's operations in its order: bit for bit. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "emulate_loss_common.h"
#include "emulate_suites.h"
#include "emulate_util.h"
#include "kernels.h"
#include "kernels_cuda.h"

namespace {

struct embedding_case {
    const char *name;
    int B, T, C, vocab, n_types;
    bool with_types; /* a token-type table (BERT) */
    bool type_ids;   /* type ids given (else every row is type 0) */
    bool backward;
};

/* Ids that repeat (a small vocabulary, skewed towards low ids) and leave
 * some ids unused. */
std::vector<int32_t> random_ids(size_t n, int vocab) {
    std::vector<int32_t> ids(n);
    for (int32_t &id : ids) {
        const float u = emu_uniform(0, 1);
        id = (int32_t)(u * u * (float)vocab);
        if (id >= vocab) id = vocab - 1;
    }
    return ids;
}

bool check(lm_cuda_ctx *ctx, const embedding_case &c) {
    const size_t N = (size_t)c.B * c.T, C = (size_t)c.C;
    const std::vector<int32_t> ids = random_ids(N, c.vocab), types = random_ids(N, c.n_types);
    const std::vector<float> wte = emu_uniform_vector((size_t)c.vocab * C, -1, 1);
    const std::vector<float> wpe = emu_uniform_vector((size_t)c.T * C, -1, 1);
    const std::vector<float> wtt = emu_uniform_vector((size_t)c.n_types * C, -1, 1);
    const int32_t *cpu_types = c.type_ids ? types.data() : nullptr;
    std::vector<float> out(N * C);
    lm_cpu_embedding_forward(out.data(), ids.data(), cpu_types, wte.data(), wpe.data(), c.with_types ? wtt.data() : nullptr,
                             c.B, c.T, c.C);

    emu_array<int32_t> d_ids(N), d_types(N);
    emu_floats d_wte(wte.size()), d_wpe(wpe.size()), d_wtt(wtt.size()), e_out(N * C);
    d_ids.set(ids);
    d_types.set(types);
    d_wte.set(wte);
    d_wpe.set(wpe);
    d_wtt.set(wtt);
    lm_cuda_embedding_forward(ctx, e_out.p, d_ids.p, c.type_ids ? d_types.p : nullptr, d_wte.p, d_wpe.p,
                              c.with_types ? d_wtt.p : nullptr, c.B, c.T, c.C);
    bool bits = emu_first_bit_difference(e_out.p, out.data(), out.size()) < 0;
    bool guards = e_out.guards_intact();

    if (c.backward) {
        /* the gradients added onto non-zero tables */
        std::vector<float> dwte = emu_uniform_vector(wte.size(), -1, 1), dwpe = emu_uniform_vector(wpe.size(), -1, 1),
                           dwtt = emu_uniform_vector(wtt.size(), -1, 1);
        const std::vector<float> dout = emu_uniform_vector(N * C, -1, 1);
        emu_floats e_dwte(dwte.size()), e_dwpe(dwpe.size()), e_dwtt(dwtt.size()), d_dout(dout.size());
        e_dwte.set(dwte);
        e_dwpe.set(dwpe);
        e_dwtt.set(dwtt);
        d_dout.set(dout);
        lm_cpu_embedding_backward(dwte.data(), dwpe.data(), c.with_types ? dwtt.data() : nullptr, dout.data(),
                                  ids.data(), cpu_types, c.B, c.T, c.C);
        lm_cuda_embedding_backward(ctx, e_dwte.p, e_dwpe.p, c.with_types ? e_dwtt.p : nullptr, d_dout.p, d_ids.p,
                                   c.type_ids ? d_types.p : nullptr, c.B, c.T, c.C);
        bits = bits && emu_first_bit_difference(e_dwte.p, dwte.data(), dwte.size()) < 0 &&
               emu_first_bit_difference(e_dwpe.p, dwpe.data(), dwpe.size()) < 0 &&
               emu_first_bit_difference(e_dwtt.p, dwtt.data(), dwtt.size()) < 0;
        guards = guards && e_dwte.guards_intact() && e_dwpe.guards_intact() && e_dwtt.guards_intact();
    }
    char failure[400] = "";
    const bool failed = emu_ctx_take_error(ctx, failure, sizeof failure);
    return emu_report(!failed && bits && guards, "embedding_%s %s B=%d T=%d C=%d vocab=%d%s: %s%s %s",
                      c.backward ? "forward+backward" : "forward", c.name, c.B, c.T, c.C, c.vocab,
                      c.with_types ? (c.type_ids ? " types" : " types, no ids") : "",
                      bits ? "the CPU's bits" : "differs", guards ? "" : "; a write outside an output", failure);
}

} /* namespace */

int emulate_embedding(lm_cuda_ctx *ctx) {
    static const embedding_case cases[] = {
        {"one token", 1, 1, 1, 1, 1, false, false, true},
        {"GPT-2", 3, 5, 7, 11, 1, false, false, true},
        {"BERT", 2, 9, 13, 17, 2, true, true, true},
        {"BERT without type ids", 2, 6, 5, 9, 2, true, false, true},
        {"larger batch (sort scratch grows)", 4, 33, 40, 50, 2, true, true, true},
        {"past the grid cap", 4, 65, 8100, 30, 2, true, true, false},
    };
    int failures = 0;
    for (const embedding_case &c : cases) failures += !check(ctx, c);
    return failures;
}
