/* The fused attention's CUDA kernels (kernels/cuda/attention_fused_*.cu),
 * run on the CPU under emu_cuda.h, against the CPU twin
 * (kernels/cpu/attention_fused.c): the kernels' tiling, indices, masks,
 * dropout draws, barriers and shuffles checked without a GPU.  What it
 * cannot check: the real GPU's memory model, timing, shared-memory limits,
 * expf's last bits.  Built and run by run_emulation.sh; exit status 0 when
 * every case agrees. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <thread>
#include <vector>

#include "attention_fused.cuh"
#include "attention_fused_backward.inc"
#include "attention_fused_forward.inc"
#include "kernels.h"

thread_local emu_dim3 threadIdx;
emu_dim3 blockIdx, blockDim;
float *emu_dynamic_smem;

static pthread_barrier_t block_barrier, warp_barrier[LM_FUSED_THREADS / 32];
static float warp_slots[LM_FUSED_THREADS / 32][32];
static pthread_mutex_t atomic_lock = PTHREAD_MUTEX_INITIALIZER;

void __syncthreads() { pthread_barrier_wait(&block_barrier); }

float __shfl_xor_sync(unsigned mask, float v, int offset) {
    (void)mask;
    const int tid = (int)threadIdx.x, warp = tid >> 5, lane = tid & 31;
    warp_slots[warp][lane] = v;
    pthread_barrier_wait(&warp_barrier[warp]);
    const float got = warp_slots[warp][lane ^ offset];
    pthread_barrier_wait(&warp_barrier[warp]);
    return got;
}

int atomicMin(int *address, int value) {
    pthread_mutex_lock(&atomic_lock);
    const int old = *address;
    if (value < old) *address = value;
    pthread_mutex_unlock(&atomic_lock);
    return old;
}

/* Runs body() as every thread of every block of a (gx, gy) grid, one block
 * at a time; the dynamic shared memory is poisoned with NaN before each. */
template <class F> static void launch(unsigned gx, unsigned gy, size_t smem_bytes, F body) {
    std::vector<float> smem(smem_bytes / sizeof(float) + 1);
    emu_dynamic_smem = smem.data();
    blockDim = {LM_FUSED_THREADS, 1, 1};
    pthread_barrier_init(&block_barrier, NULL, LM_FUSED_THREADS);
    for (int w = 0; w < LM_FUSED_THREADS / 32; w++) pthread_barrier_init(&warp_barrier[w], NULL, 32);
    for (unsigned by = 0; by < gy; by++) {
        for (unsigned bx = 0; bx < gx; bx++) {
            blockIdx = {bx, by, 0};
            for (float &x : smem) x = NAN;
            std::vector<std::thread> threads;
            for (unsigned t = 0; t < LM_FUSED_THREADS; t++)
                threads.emplace_back([t, &body] {
                    threadIdx = {t, 0, 0};
                    body();
                });
            for (std::thread &t : threads) t.join();
        }
    }
    pthread_barrier_destroy(&block_barrier);
    for (int w = 0; w < LM_FUSED_THREADS / 32; w++) pthread_barrier_destroy(&warp_barrier[w]);
}

struct fused_case {
    int B, T, C, NH, interleaved, causal, mask_mode; /* mask_mode as in the GPU test */
    float p;
};

/* lm_fused_prepare's arguments (the host side is not compiled here). */
static lm_fused_args make_args(const fused_case &c, const float *q, const float *k, const float *v, int stride,
                               const int32_t *mask, const lm_step_state *key) {
    lm_fused_args a;
    const int drop_some = c.p > 0.0f && c.p < 1.0f;
    a.q = q;
    a.k = k;
    a.v = v;
    a.stride = stride;
    a.key_mask = mask;
    a.causal = c.causal;
    a.T = c.T;
    a.C = c.C;
    a.NH = c.NH;
    a.hd = c.C / c.NH;
    a.scale = (float)(1.0 / sqrt((double)a.hd));
    a.drop_mode = c.p >= 1.0f ? LM_FUSED_DROP_ALL : drop_some ? LM_FUSED_DROP_SOME : LM_FUSED_DROP_NONE;
    a.dropout_p = c.p;
    a.keep_scale = drop_some ? 1.0f / (1.0f - c.p) : 1.0f;
    a.key = drop_some ? key : NULL;
    a.site = 5;
    return a;
}

template <int DPT>
static void run_kernels(const lm_fused_args &a, int B, float *out, float *lse, float *dq, float *dk, float *dv,
                        float *D, const float *dout) {
    const unsigned tiles = (unsigned)((a.T + LM_FUSED_TILE - 1) / LM_FUSED_TILE), bh = (unsigned)(B * a.NH);
    launch(bh, tiles, lm_fused_smem_bytes(3, a.hd), [&] { lm_attention_fused_forward_kernel<DPT>(out, lse, a); });
    const size_t rows = (size_t)B * a.NH * a.T;
    launch((unsigned)((rows + 7) / 8), 1, 0,
           [&] { lm_attention_fused_dot_kernel(D, dout, out, a.T, a.C, a.NH, a.hd, rows); });
    launch(bh, tiles, lm_fused_smem_bytes(4, a.hd),
           [&] { lm_attention_fused_dkdv_kernel<DPT>(dk, dv, dout, lse, D, a); });
    launch(bh, tiles, lm_fused_smem_bytes(4, a.hd), [&] { lm_attention_fused_dq_kernel<DPT>(dq, dout, lse, D, a); });
}

static uint64_t rng_state = 12345;
static float uniform(float lo, float hi) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

/* Worst |got - want| / (|want| + rms(want)); -inf must match -inf. */
static double worst_error(const float *got, const float *want, size_t n) {
    double sum_sq = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(want[i])) sum_sq += (double)want[i] * want[i];
    const double rms = sqrt(sum_sq / (double)n) + 1e-30;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isinf(want[i]) || isinf(got[i])) {
            if (got[i] != want[i]) return INFINITY;
            continue;
        }
        const double err = fabs((double)got[i] - want[i]) / (fabs((double)want[i]) + rms);
        if (!(err <= worst)) worst = isnan(err) ? INFINITY : err;
    }
    return worst;
}

static int check(const fused_case &c) {
    const int stride = c.interleaved ? 3 * c.C : c.C, n_buffers = c.interleaved ? 1 : 3;
    const size_t n_in = (size_t)c.B * c.T * stride, n_out = (size_t)c.B * c.T * c.C, n_lse = (size_t)c.B * c.NH * c.T;
    std::vector<float> in[3], g0[3];
    for (int i = 0; i < n_buffers; i++) {
        in[i].resize(n_in);
        g0[i].resize(n_in);
        for (float &x : in[i]) x = uniform(-2, 2);
        for (float &x : g0[i]) x = uniform(-0.01f, 0.01f);
    }
    const float *q = in[0].data(), *k = c.interleaved ? q + c.C : in[1].data(), *v = c.interleaved ? q + 2 * c.C : in[2].data();
    std::vector<int32_t> mask;
    if (c.mask_mode) {
        mask.resize((size_t)c.B * c.T);
        for (int b = 0; b < c.B; b++) {
            const int length = 1 + (b * 7919 + 13) % c.T;
            for (int t = 0; t < c.T; t++)
                mask[(size_t)b * c.T + t] = c.mask_mode == 1 ? t < length : (b == c.B - 1 ? 0 : t >= 5);
        }
    }
    const int32_t *m = c.mask_mode ? mask.data() : NULL;
    std::vector<float> dout(n_out);
    for (float &x : dout) x = uniform(-1, 1);
    lm_step_state key;
    memset(&key, 0, sizeof key);
    key.seed = 777;
    key.micro_batch = 3;
    const uint64_t stream = lm_dropout_stream(key.micro_batch, 5);

    /* the CPU twin */
    std::vector<float> out(n_out), lse(n_lse), scratch(n_lse), g_cpu[3];
    for (int i = 0; i < n_buffers; i++) g_cpu[i] = g0[i];
    lm_cpu_attention_fused_forward(out.data(), lse.data(), q, k, v, stride, m, c.causal, c.B, c.T, c.C, c.NH, c.p,
                                   key.seed, stream);
    float *gq = g_cpu[0].data(), *gk = c.interleaved ? gq + c.C : g_cpu[1].data();
    float *gv = c.interleaved ? gq + 2 * c.C : g_cpu[2].data();
    lm_cpu_attention_fused_backward(gq, gk, gv, scratch.data(), dout.data(), out.data(), lse.data(), q, k, v, stride,
                                    m, c.causal, c.B, c.T, c.C, c.NH, c.p, key.seed, stream);

    /* the CUDA kernels, emulated */
    std::vector<float> e_out(n_out, NAN), e_lse(n_lse, NAN), D(n_lse, NAN), g_emu[3];
    for (int i = 0; i < n_buffers; i++) g_emu[i] = g0[i];
    float *eq = g_emu[0].data(), *ek = c.interleaved ? eq + c.C : g_emu[1].data();
    float *ev = c.interleaved ? eq + 2 * c.C : g_emu[2].data();
    const lm_fused_args a = make_args(c, q, k, v, stride, m, &key);
    switch (lm_fused_columns_per_thread(a.hd)) {
    case 2: run_kernels<2>(a, c.B, e_out.data(), e_lse.data(), eq, ek, ev, D.data(), dout.data()); break;
    case 4: run_kernels<4>(a, c.B, e_out.data(), e_lse.data(), eq, ek, ev, D.data(), dout.data()); break;
    default: run_kernels<8>(a, c.B, e_out.data(), e_lse.data(), eq, ek, ev, D.data(), dout.data()); break;
    }
    const double err_out = worst_error(e_out.data(), out.data(), n_out);
    const double err_lse = worst_error(e_lse.data(), lse.data(), n_lse);
    double err_grad = 0.0;
    for (int i = 0; i < n_buffers; i++) {
        std::vector<float> added_cpu(n_in), added_emu(n_in);
        for (size_t j = 0; j < n_in; j++) {
            added_cpu[j] = g_cpu[i][j] - g0[i][j];
            added_emu[j] = g_emu[i][j] - g0[i][j];
        }
        const double e = worst_error(added_emu.data(), added_cpu.data(), n_in);
        err_grad = e > err_grad || isnan(e) ? e : err_grad;
    }
    const int ok = err_out <= 1e-5 && err_lse <= 1e-5 && err_grad <= 5e-5;
    printf("%s B=%d T=%d C=%d NH=%d (head %d) interleaved=%d causal=%d mask=%d p=%g: out %.2e, lse %.2e, "
           "gradients %.2e\n",
           ok ? "ok  " : "FAIL", c.B, c.T, c.C, c.NH, c.C / c.NH, c.interleaved, c.causal, c.mask_mode, (double)c.p,
           err_out, err_lse, err_grad);
    return ok;
}

int main(void) {
    static const fused_case cases[] = {
        {2, 130, 48, 3, 1, 1, 0, 0.0f},  {3, 100, 256, 4, 0, 0, 1, 0.0f}, {3, 70, 80, 2, 1, 1, 2, 0.0f},
        {2, 90, 256, 2, 0, 0, 2, 0.0f},  {1, 7, 16, 4, 1, 1, 0, 0.0f},    {2, 130, 48, 3, 1, 1, 0, 0.2f},
        {3, 100, 256, 4, 0, 0, 1, 0.1f}, {3, 70, 80, 2, 1, 1, 2, 0.3f},   {2, 20, 32, 2, 0, 1, 0, 1.0f},
        {1, 200, 128, 2, 1, 1, 1, 0.1f},
    };
    int failures = 0;
    for (const fused_case &c : cases) failures += !check(c);
    printf("%s: %d of %zu cases differ from the CPU twin\n", failures ? "FAIL" : "PASS", failures,
           sizeof cases / sizeof cases[0]);
    return failures ? 1 : 0;
}
