/*
 * lf_platform.h: the one shim between the freestanding core and whatever it
 * runs on.
 *
 * lockfree/, buddy/ and vaspace/ need three things from their platform, and
 * get them only from here:
 *
 *   lf_platform_cpu_id()  the calling CPU (kernel) or registered thread
 *                         (userspace); used for statistics and defaults,
 *                         never for correctness: per-CPU contexts are passed
 *                         explicitly.
 *   lf_platform_pause()   the spin-wait hint, inline; in an interposed build
 *                         it is also a scheduling point (LF_OP_SPIN) so that
 *                         a model checker gives the turn away in spin loops.
 *   lf_platform_panic()   report a broken invariant and stop; never returns.
 *   lf_platform_heavy_barrier_init(), lf_platform_heavy_barrier()
 *                         an asymmetric barrier (below): optional; a
 *                         platform without one says so and the core falls
 *                         back to symmetric ordering.
 *   lf_platform_yield()   a waiter that spun long enough gives its CPU to
 *                         another runnable thread, if any: sched_yield()
 *                         in userspace, a pause in the kernel (one thread
 *                         per CPU, nothing to yield to), a scheduling
 *                         point under the model checker.
 *   lf_platform_irq_save(), lf_platform_irq_restore()
 *                         interrupts off on the calling CPU and back as they
 *                         were: the interrupt-disabling spinlock of
 *                         lf_spin.h; nothing where there are no interrupts.
 *
 * A platform provides lf_platform_cpu_id(), lf_platform_panic(), the two
 * heavy-barrier functions and the two interrupt functions: platform/user.c
 * for userspace, kernel/trap.c for the kernel, verify/mc/mc.c for the
 * model checker.
 *
 * Assertions come in two tiers:
 * LF_ASSERT is always on and is for internal invariants only (bad input from
 * a caller is an error code, never an assertion); LF_DEBUG_ASSERT is for
 * expensive checks and compiles away unless LF_DEBUG is defined. Neither
 * may have side effects: do the work, keep its result, assert on the
 * result (CONTRIBUTING.md).
 *
 * Example: platform/user.c (userspace) and kernel/trap.c (a kernel)
 * implement it; examples/ programs use the userspace one.
 */
#ifndef LF_PLATFORM_H
#define LF_PLATFORM_H

#include "lf_atomic.h"

unsigned lf_platform_cpu_id(void);
_Noreturn void lf_platform_panic(const char *file, int line, const char *what);

/*
 * The asymmetric (heavy) barrier. lf_platform_heavy_barrier() returns only
 * after every other thread (CPU) that runs the core has executed a full
 * memory barrier, or a context switch, since the call began: a store that
 * thread made before that point is visible to the caller after the call,
 * and a load it makes after that point sees the caller's stores made before
 * the call. It lets a fast side pair a relaxed store and a later relaxed
 * load (a compiler barrier between them) with a slow side's store, heavy
 * barrier, load: of the two sides, one sees the other's store (Dekker,
 * without a fence on the fast side). Userspace: membarrier(2)
 * PRIVATE_EXPEDITED (platform/user.c); the kernel: an IPI to every CPU that
 * is up, waiting for each to acknowledge after taking it (kernel/trap.c);
 * the model checker: it drains every thread's store buffer (mc.c).
 * lf_platform_heavy_barrier_init() sets it up (once, idempotent) and
 * returns false where there is none (old kernels, a ThreadSanitizer build,
 * which cannot see it, LF_NO_HEAVY_BARRIER=1 in userspace); callers then
 * use symmetric ordering (a seq_cst fence on the fast side), chosen once.
 */
bool lf_platform_heavy_barrier_init(void);
void lf_platform_heavy_barrier(void);
/*
 * True if the heavy barrier is cheap enough for a slow side that runs often
 * and on many CPUs at once (the buddy caches' drains): membarrier(2) is
 * (one system call, the kernel's IPIs); the kernel's own IPI barrier under
 * QEMU's TCG is not (an IPI round trip to 63 vCPUs on 2 host cores takes
 * long enough that the buddy torture at 64 CPUs missed its deadline), so
 * the buddy keeps its symmetric mode there while the epoch, whose readers
 * gain most, uses the barrier. Meaningful only where init returned true.
 */
bool lf_platform_heavy_barrier_cheap(void);

/*
 * Interrupt state of the calling CPU. lf_platform_irq_save() disables
 * interrupts and returns the state before; lf_platform_irq_restore() puts
 * that state back (enabling interrupts only if they were on), so save and
 * restore nest. A compiler barrier each: memory accesses do not move across
 * them. Userspace and the model checker have no interrupts: 0 and nothing.
 */
/*
 * Give the CPU away for a moment, to another runnable thread if there is
 * one (the vas writer lock, after spinning: a preempted holder then gets a
 * CPU sooner, and the waiter does not burn its time slice). A compiler
 * barrier; no memory ordering.
 */
void lf_platform_yield(void);

typedef unsigned long lf_irqflags;
lf_irqflags lf_platform_irq_save(void);
void lf_platform_irq_restore(lf_irqflags flags);

static inline void lf_platform_pause(void)
{
	LF_ATOMIC_HOOK((const volatile void *)0, LF_OP_SPIN, LF_RELAXED);
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#define LF_STRINGIFY_(x) #x
#define LF_STRINGIFY(x) LF_STRINGIFY_(x)

#define LF_ASSERT(cond)                                                        \
	do {                                                                   \
		if (__builtin_expect(!(cond), 0))                              \
			lf_platform_panic(__FILE__, __LINE__, #cond);          \
	} while (0)

#ifdef LF_DEBUG
#define LF_DEBUG_ASSERT(cond) LF_ASSERT(cond)
#else
#define LF_DEBUG_ASSERT(cond) ((void)0)
#endif

#define LF_LIKELY(x) __builtin_expect(!!(x), 1)
#define LF_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Size of the unit of cache coherence; shared hot words are padded to it. */
#define LF_CACHELINE 64
#define LF_CACHE_ALIGNED __attribute__((aligned(LF_CACHELINE)))

#endif /* LF_PLATFORM_H */
