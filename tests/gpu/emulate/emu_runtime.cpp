/* The emulator's runtime (emu_cuda.h): blocks as fibers, barriers,
 * warp exchanges, launch checks, and the CUDA runtime calls of the
 * kernels' host side.
 *
 * A block's threads are fibers of the calling OS thread (emu_switch on
 * x86-64: the callee-saved registers, MXCSR and the x87 control word, a few
 * instructions; ucontext elsewhere, which also saves the signal mask with a
 * system call); the scheduler runs every runnable fiber until it blocks (at __syncthreads,
 * __syncwarp or a shuffle) or returns, then releases what can go on: a
 * warp group whose lanes named in the mask have all arrived (a shuffle's
 * values are exchanged at that moment), else the block barrier once every
 * thread waits there.  CUDA leaves a barrier that some threads never reach
 * undefined; here it is an error, as is a shuffle naming a lane that has
 * returned.  Fibers cost a context switch (no thread creation, no kernel
 * scheduler): the earlier version, 256 OS threads per block, spent most
 * of its time in the kernel (the fused attention's cases: 18 s -> 5 s).
 *
 * The fibers of a pass run in an order that changes from pass to pass and
 * block to block (ascending, descending, shuffled), so a thread that reads
 * what another writes in the same pass (a missing barrier) sees the value
 * before the write in some blocks: with shared memory poisoned, a wrong
 * result. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <vector>

#include "emu_cuda.h"
#include "emulate_util.h"

thread_local emu_uint3 threadIdx, blockIdx, blockDim, gridDim;
thread_local unsigned char *emu_dynamic_shared;

namespace {

/* Per-thread stacks: kernels keep a few small arrays. */
constexpr size_t kStackBytes = 128 * 1024;
constexpr size_t kGuardBytes = 4096;
constexpr unsigned kMaxThreads = 1024;
/* The most dynamic shared memory a block may ask for once raised: sm_80's
 * 163 KiB (sm_90 allows 227 KiB; the smaller is what every target has). */
constexpr size_t kMaxSharedOptIn = 163 * 1024;
constexpr size_t kDefaultShared = 48 * 1024;

enum fiber_state { RUNNABLE, WAIT_BLOCK, WAIT_WARP, DONE };

#if defined(__x86_64__)
#define EMU_FAST_SWITCH 1
/* Saves the callee-saved registers and the floating-point control words on
 * the current stack, stores its pointer in *from, continues on `to`. */
extern "C" void emu_switch(void **from, void *to);
asm(".text\n"
    ".globl emu_switch\n"
    ".type emu_switch,@function\n"
    "emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size emu_switch,.-emu_switch\n");
#else
#define EMU_FAST_SWITCH 0
#endif

struct fiber {
#if EMU_FAST_SWITCH
    void *sp;
#else
    ucontext_t context;
#endif
    fiber_state state;
    emu_uint3 index;
    unsigned mask;    /* of the warp operation it waits in */
    int source;       /* the lane whose bits it asked for */
    uint64_t offered; /* its own bits */
    uint64_t received;
};

struct machine {
#if EMU_FAST_SWITCH
    void *scheduler_sp;
#else
    ucontext_t scheduler;
#endif
    std::vector<fiber> fibers;
    unsigned char *stacks = nullptr; /* kMaxThreads stacks, each after a guard page */
    unsigned n = 0, current = 0;
    void (*body)(void *) = nullptr;
    void *arg = nullptr;
    std::vector<void *> poisoned; /* static shared variables touched by this block */
    /* The dynamic shared memory: its end at an inaccessible page, so that
     * a kernel reading or writing past it faults (on_fault names it). */
    unsigned char *shared_map = nullptr;
    size_t shared_map_bytes = 0; /* accessible bytes before the guard page */
    std::vector<unsigned> order;
    uint64_t order_state = 0x9e3779b97f4a7c15ull;
    cudaError_t last_error = cudaSuccess;
    std::vector<const void *> launched; /* emu_launched_kernels */

    machine() {
        const size_t each = kStackBytes + kGuardBytes;
        void *p = mmap(nullptr, each * kMaxThreads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (p == MAP_FAILED) {
            fprintf(stderr, "emulator: cannot map %zu MiB of fiber stacks\n", each * kMaxThreads >> 20);
            abort();
        }
        stacks = (unsigned char *)p;
        for (unsigned i = 0; i < kMaxThreads; i++) mprotect(stacks + i * each, kGuardBytes, PROT_NONE);
        fibers.resize(kMaxThreads);
    }
    ~machine() {
        munmap(stacks, (kStackBytes + kGuardBytes) * kMaxThreads);
        if (shared_map) munmap(shared_map, shared_map_bytes + kGuardBytes);
    }

    /* `bytes` of dynamic shared memory (16-byte aligned, as CUDA's) ending
     * less than 16 bytes before the guard page. */
    unsigned char *dynamic_shared_of(size_t bytes) {
        const size_t needed = (bytes + 15) / 16 * 16;
        if (needed > shared_map_bytes || !shared_map) {
            if (shared_map) munmap(shared_map, shared_map_bytes + kGuardBytes);
            shared_map_bytes = (needed + kGuardBytes - 1) / kGuardBytes * kGuardBytes;
            if (shared_map_bytes == 0) shared_map_bytes = kGuardBytes;
            void *p = mmap(nullptr, shared_map_bytes + kGuardBytes, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) {
                fprintf(stderr, "emulator: cannot map %zu bytes of shared memory\n", shared_map_bytes);
                abort();
            }
            shared_map = (unsigned char *)p;
            mprotect(shared_map + shared_map_bytes, kGuardBytes, PROT_NONE);
        }
        return shared_map + shared_map_bytes - needed;
    }
};

thread_local machine *tls_machine;
/* The kernel running on this OS thread, for the fault handler. */
thread_local const char *tls_running_kernel;

/* A kernel that reads or writes past a buffer reaches a guard page (the
 * tests' buffers end at one, emulate_util.cpp; so do the fiber stacks):
 * say where before dying of it. */
void on_fault(int sig) {
    char message[400];
    const int n = tls_running_kernel
                      ? snprintf(message, sizeof message,
                                 "emulator: %s in kernel %s, block (%u, %u, %u), thread (%u, %u, %u): an access outside "
                                 "its buffers (or a thread's stack overflowed)\n",
                                 sig == SIGSEGV ? "segmentation fault" : "bus error", tls_running_kernel, blockIdx.x,
                                 blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z)
                      : snprintf(message, sizeof message, "emulator: %s outside any kernel\n",
                                 sig == SIGSEGV ? "segmentation fault" : "bus error");
    if (n > 0) (void)!write(2, message, (size_t)n);
    signal(sig, SIG_DFL);
    raise(sig);
}

void install_fault_handler(void) {
    static thread_local std::vector<unsigned char> alternate(64 * 1024);
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = alternate.data();
    ss.ss_size = alternate.size();
    sigaltstack(&ss, nullptr);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
}

machine &the_machine() {
    if (!tls_machine) {
        tls_machine = new machine(); /* lives as long as the OS thread's process */
        install_fault_handler();
    }
    return *tls_machine;
}

uint64_t next_random(machine &m) {
    m.order_state = m.order_state * 6364136223846793005ull + 1442695040888963407ull;
    return m.order_state >> 33;
}

#if EMU_FAST_SWITCH
void fiber_entry() {
    machine &m = *tls_machine;
    m.body(m.arg);
    m.fibers[m.current].state = DONE;
    void *unused;
    emu_switch(&unused, m.scheduler_sp); /* never resumed */
    __builtin_unreachable();
}

void yield_to_scheduler(machine &m) { emu_switch(&m.fibers[m.current].sp, m.scheduler_sp); }
#else
void fiber_entry() {
    machine &m = *tls_machine;
    m.body(m.arg);
    m.fibers[m.current].state = DONE;
    /* returns to uc_link: the scheduler */
}

void yield_to_scheduler(machine &m) { swapcontext(&m.fibers[m.current].context, &m.scheduler); }
#endif

/* The order of the next pass over the block's fibers. */
void choose_order(machine &m) {
    m.order.resize(m.n);
    const uint64_t kind = next_random(m) % 3;
    for (unsigned i = 0; i < m.n; i++) m.order[i] = kind == 1 ? m.n - 1 - i : i;
    if (kind == 2)
        for (unsigned i = m.n - 1; i > 0; i--) std::swap(m.order[i], m.order[next_random(m) % (i + 1)]);
}

void report_stuck(const machine &m, const emu_launch_config &config, const char *why) {
    unsigned at_block = 0, at_warp = 0, done = 0;
    for (unsigned t = 0; t < m.n; t++) {
        at_block += m.fibers[t].state == WAIT_BLOCK;
        at_warp += m.fibers[t].state == WAIT_WARP;
        done += m.fibers[t].state == DONE;
    }
    fprintf(stderr,
            "emulator: kernel %s block (%u, %u, %u): %s (%u threads at __syncthreads, %u at a warp operation, %u "
            "returned, of %u)\n",
            config.name, blockIdx.x, blockIdx.y, blockIdx.z, why, at_block, at_warp, done, m.n);
}

/* Releases the warp groups that can go on; returns how many lanes went. */
unsigned release_warps(machine &m, bool *lane_gone) {
    unsigned released = 0;
    for (unsigned w = 0; w * 32 < m.n; w++) {
        fiber *lanes = &m.fibers[w * 32];
        const unsigned width = std::min(32u, m.n - w * 32);
        unsigned waiting = 0, named = 0;
        for (unsigned l = 0; l < width; l++)
            if (lanes[l].state == WAIT_WARP) {
                waiting |= 1u << l;
                named |= lanes[l].mask;
            }
        if (!waiting) continue;
        bool ready = true;
        for (unsigned l = 0; l < width; l++) {
            if (!(named >> l & 1u) || lanes[l].state == WAIT_WARP) continue;
            if (lanes[l].state == DONE) *lane_gone = true;
            ready = false;
        }
        if (!ready) continue;
        for (unsigned l = 0; l < width; l++) {
            if (!(waiting >> l & 1u)) continue;
            const int s = lanes[l].source;
            const bool present = s >= 0 && s < (int)width && (waiting >> s & 1u);
            lanes[l].received = present ? lanes[s].offered : ~0ull;
            lanes[l].state = RUNNABLE;
            released++;
        }
    }
    return released;
}

/* Runs fiber t until it blocks or returns (apart, so that nothing of the
 * scheduler's loop lives across swapcontext, which returns twice). */
__attribute__((noinline)) void resume(machine &m, unsigned t) {
    m.current = t;
    threadIdx = m.fibers[t].index;
#if EMU_FAST_SWITCH
    emu_switch(&m.scheduler_sp, m.fibers[t].sp);
#else
    swapcontext(&m.scheduler, &m.fibers[t].context);
#endif
}

/* Fiber t, ready to run the body from its start (getcontext returns
 * twice in the compiler's eyes: kept out of the loops). */
__attribute__((noinline)) void prepare(machine &m, unsigned t) {
    fiber &f = m.fibers[t];
    unsigned char *stack = m.stacks + t * (kStackBytes + kGuardBytes) + kGuardBytes;
#if EMU_FAST_SWITCH
    /* What emu_switch pops, from the top of a 16-byte aligned stack: the
     * control words (the scheduler's), six registers, then fiber_entry as
     * the return address, at a 16-byte boundary so that fiber_entry starts
     * as a called function does (rsp = 8 mod 16). */
    uint64_t *top = (uint64_t *)(stack + kStackBytes);
    top[-1] = 0; /* fiber_entry's own return address: it never returns */
    top[-2] = (uint64_t)(uintptr_t)fiber_entry;
    for (int r = 3; r <= 8; r++) top[-r] = 0;
    uint32_t mxcsr = 0;
    uint16_t x87_control = 0;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(x87_control));
    top[-9] = (uint64_t)mxcsr | (uint64_t)x87_control << 32;
    f.sp = &top[-9];
#else
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = stack;
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = &m.scheduler;
    makecontext(&f.context, fiber_entry, 0);
#endif
    f.state = RUNNABLE;
    f.index = {t % blockDim.x, t / blockDim.x % blockDim.y, t / (blockDim.x * blockDim.y)};
}

/* Runs one block to its end; false when it got stuck (reported). */
bool run_block(machine &m, const emu_launch_config &config) {
    for (unsigned t = 0; t < m.n; t++) prepare(m, t);
    m.poisoned.clear();
    for (;;) {
        choose_order(m);
        for (unsigned i = 0; i < m.n; i++) {
            const unsigned t = m.order[i];
            if (m.fibers[t].state != RUNNABLE) continue;
            resume(m, t);
        }
        bool lane_gone = false;
        if (release_warps(m, &lane_gone)) continue;
        if (lane_gone) {
            report_stuck(m, config, "a warp operation names a lane that has returned");
            return false;
        }
        unsigned at_block = 0, done = 0;
        for (unsigned t = 0; t < m.n; t++) {
            at_block += m.fibers[t].state == WAIT_BLOCK;
            done += m.fibers[t].state == DONE;
        }
        if (done == m.n) return true;
        if (at_block == m.n) {
            for (unsigned t = 0; t < m.n; t++) m.fibers[t].state = RUNNABLE;
            continue;
        }
        report_stuck(m, config,
                     done + at_block == m.n ? "__syncthreads is not reached by every thread (undefined in CUDA)"
                                            : "the threads wait at different barriers");
        return false;
    }
}

std::mutex attribute_lock;
std::map<const void *, size_t> shared_allowed; /* cudaFuncSetAttribute's */

bool configuration_ok(const emu_launch_config &c) {
    const unsigned long long threads = (unsigned long long)c.block.x * c.block.y * c.block.z;
    if (threads == 0 || threads > kMaxThreads || c.block.x > 1024 || c.block.y > 1024 || c.block.z > 64) return false;
    if (c.grid.x == 0 || c.grid.x > 0x7fffffffu || c.grid.y == 0 || c.grid.y > 65535 || c.grid.z == 0 ||
        c.grid.z > 65535)
        return false;
    return true;
}

bool shared_ok(const emu_launch_config &c) {
    if (c.shared_bytes <= kDefaultShared) return true;
    std::lock_guard<std::mutex> hold(attribute_lock);
    const auto it = shared_allowed.find(c.kernel);
    return it != shared_allowed.end() && c.shared_bytes <= it->second;
}

} /* namespace */

void emu_run_grid(const emu_launch_config &config, void (*body)(void *), void *arg) {
    machine &m = the_machine();
    m.launched.push_back(config.kernel);
    if (!configuration_ok(config)) {
        m.last_error = cudaErrorInvalidConfiguration;
        return;
    }
    if (!shared_ok(config)) {
        m.last_error = cudaErrorInvalidValue;
        return;
    }
    m.body = body;
    m.arg = arg;
    m.n = config.block.x * config.block.y * config.block.z;
    blockDim = {config.block.x, config.block.y, config.block.z};
    gridDim = {config.grid.x, config.grid.y, config.grid.z};
    emu_dynamic_shared = m.dynamic_shared_of(config.shared_bytes);
    tls_running_kernel = config.name;
    for (unsigned z = 0; z < config.grid.z; z++)
        for (unsigned y = 0; y < config.grid.y; y++)
            for (unsigned x = 0; x < config.grid.x; x++) {
                blockIdx = {x, y, z};
                memset(emu_dynamic_shared, 0xff, config.shared_bytes);
                if (!run_block(m, config)) {
                    m.last_error = cudaErrorLaunchFailure;
                    tls_running_kernel = nullptr;
                    return;
                }
            }
    tls_running_kernel = nullptr;
}

void __syncthreads(void) {
    machine &m = *tls_machine;
    m.fibers[m.current].state = WAIT_BLOCK;
    yield_to_scheduler(m);
}

uint64_t emu_warp_exchange(unsigned mask, uint64_t bits, int source) {
    machine &m = *tls_machine;
    fiber &f = m.fibers[m.current];
    f.state = WAIT_WARP;
    f.mask = mask;
    f.offered = bits;
    f.source = source;
    yield_to_scheduler(m);
    return m.fibers[m.current].received;
}

void __syncwarp(unsigned mask) { (void)emu_warp_exchange(mask, 0, -1); }

void emu_shared_poison(void *p, size_t bytes) {
    machine &m = *tls_machine;
    for (void *q : m.poisoned)
        if (q == p) return;
    memset(p, 0xff, bytes);
    m.poisoned.push_back(p);
}

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }

cudaError_t cudaGetLastError(void) {
    machine &m = the_machine();
    const cudaError_t err = m.last_error;
    m.last_error = cudaSuccess;
    return err;
}

const char *cudaGetErrorString(cudaError_t err) {
    switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure (the emulator found a stuck barrier)";
    }
    return "unknown error";
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
    (void)kind;
    (void)stream;
    if (bytes) memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t stream) {
    (void)stream;
    if (bytes) memset(dst, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *kernel, cudaFuncAttribute attribute, int value) {
    if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || (size_t)value > kMaxSharedOptIn)
        return cudaErrorInvalidValue;
    std::lock_guard<std::mutex> hold(attribute_lock);
    shared_allowed[kernel] = (size_t)value;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = emu_alloc(bytes, 0);
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    emu_free(p);
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status) {
    (void)stream;
    *status = cudaStreamCaptureStatusNone;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    (void)stream;
    return cudaSuccess;
}

std::vector<const void *> emu_launched_kernels(void) {
    machine &m = the_machine();
    std::vector<const void *> launched;
    launched.swap(m.launched);
    return launched;
}
