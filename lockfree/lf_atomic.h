/*
 * lf_atomic.h: the one atomics layer of lockfree/, buddy/ and vaspace/.
 *
 * Every atomic access in the freestanding core goes through these functions,
 * with the memory order written at the call site. Nothing else in the core
 * includes <stdatomic.h> or uses a compiler builtin (scripts/check-core.sh
 * enforces it), so two things hold:
 *
 *  - the atomic types are structs, so a plain `x = v` or `x++` on shared
 *    state does not compile: there is no implicit seq_cst access to slip in;
 *  - every operation calls LF_ATOMIC_HOOK() first. By default the hook is
 *    empty. A build that defines LF_ATOMIC_INTERPOSE routes every atomic
 *    operation (and every spin-wait, see lf_platform.h) through
 *    lf_atomic_interpose(), which the verification build implements as a
 *    scheduling point of a controlled scheduler, and the unit tests as a
 *    counter.
 *
 * The operations are C11 atomics underneath, so ThreadSanitizer sees each
 * one with its real memory order. Standalone fences are deliberately absent
 * (ThreadSanitizer does not model them): ordering is put on the accesses
 * themselves. The exceptions are lf_compiler_barrier(), a compiler-only
 * fence for the fast side of the asymmetric barrier (lf_platform.h), which
 * only builds without ThreadSanitizer use, and lf_fence_seq_cst(), the
 * full fence of that barrier's symmetric fallback (store, fence, load:
 * nothing weaker orders a store before a later load in C11).
 *
 * Naming: lf_<op>_<width>(object, ..., order). Widths: u16 (load, store,
 * exchange and CAS only: the buddy allocator's per-frame state word), u32,
 * u64, uptr, ptr; and lf_cas2_u64(), one compare-exchange of two adjacent
 * u64 (the buddy's unit word and cached mask, at the end).
 *
 * Example: any file of lockfree/ (lf_stack.c is the shortest);
 * verify/unit/test_atomic.c shows the interposition hook.
 */
#ifndef LF_ATOMIC_H
#define LF_ATOMIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Memory orders, spelled once. Every call names one of these. */
#define LF_RELAXED memory_order_relaxed
#define LF_ACQUIRE memory_order_acquire
#define LF_RELEASE memory_order_release
#define LF_ACQ_REL memory_order_acq_rel
#define LF_SEQ_CST memory_order_seq_cst

typedef memory_order lf_order;

/* What an interposed operation is about to do. */
enum lf_atomic_op {
	LF_OP_LOAD,
	LF_OP_STORE,
	LF_OP_XCHG,
	LF_OP_CAS,
	LF_OP_FETCH_ADD,
	LF_OP_FETCH_SUB,
	LF_OP_FETCH_OR,
	LF_OP_FETCH_AND,
	LF_OP_SPIN,  /* a spin-wait iteration (lf_platform_pause) */
	LF_OP_FENCE, /* a seq_cst fence (lf_fence_seq_cst); addr NULL */
	LF_OP_COUNT
};

#ifdef LF_ATOMIC_INTERPOSE
/*
 * Provided by the build that interposes (model checker, counting tests).
 * Called before the operation; addr is NULL for LF_OP_SPIN.
 */
void lf_atomic_interpose(const volatile void *addr, enum lf_atomic_op op,
			 lf_order order);
#define LF_ATOMIC_HOOK(addr, op, order)                                        \
	lf_atomic_interpose((addr), (op), (order))
#else
#define LF_ATOMIC_HOOK(addr, op, order) ((void)0)
#endif

/*
 * The failure order of a compare-exchange may not be release or acq_rel and
 * may not be stronger than the success order: derive it from the success
 * order so a call site writes one order.
 */
static inline lf_order lf_order_cas_fail(lf_order succ)
{
	if (succ == LF_ACQ_REL)
		return LF_ACQUIRE;
	if (succ == LF_RELEASE)
		return LF_RELAXED;
	return succ;
}

/*
 * One family per width. The compare-exchange is the strong form: on failure
 * it writes the value it saw into *expected and returns false. It never fails
 * spuriously, so a CAS loop's retry always means another thread wrote.
 */
#define LF_ATOMIC_DEFINE(sfx, T)                                               \
	typedef struct {                                                       \
		_Atomic(T) v;                                                  \
	} lf_atomic_##sfx;                                                     \
                                                                               \
	/* Initialise before the object is shared; not an atomic operation. */ \
	static inline void lf_init_##sfx(lf_atomic_##sfx *a, T val)            \
	{                                                                      \
		atomic_init(&a->v, val);                                       \
	}                                                                      \
	static inline T lf_load_##sfx(const lf_atomic_##sfx *a, lf_order o)    \
	{                                                                      \
		LF_ATOMIC_HOOK(&a->v, LF_OP_LOAD, o);                          \
		return atomic_load_explicit((_Atomic(T) *)(uintptr_t)&a->v,    \
					    o);                                \
	}                                                                      \
	static inline void lf_store_##sfx(lf_atomic_##sfx *a, T val,           \
					  lf_order o)                          \
	{                                                                      \
		LF_ATOMIC_HOOK(&a->v, LF_OP_STORE, o);                         \
		atomic_store_explicit(&a->v, val, o);                          \
	}                                                                      \
	static inline T lf_xchg_##sfx(lf_atomic_##sfx *a, T val, lf_order o)   \
	{                                                                      \
		LF_ATOMIC_HOOK(&a->v, LF_OP_XCHG, o);                          \
		return atomic_exchange_explicit(&a->v, val, o);                \
	}                                                                      \
	static inline bool lf_cas_##sfx(lf_atomic_##sfx *a, T *expected,       \
					T desired, lf_order o)                 \
	{                                                                      \
		LF_ATOMIC_HOOK(&a->v, LF_OP_CAS, o);                           \
		return atomic_compare_exchange_strong_explicit(                \
			&a->v, expected, desired, o, lf_order_cas_fail(o));    \
	}

/*
 * Arithmetic and bitwise read-modify-writes, for the integer widths only.
 * They share one shape on purpose: one function per operation, each with
 * its own hook code, so a call site names the operation and the order it
 * means.
 */
#define LF_ATOMIC_DEFINE_ARITH(sfx, T)                                         \
	static inline T lf_fetch_add_##sfx(lf_atomic_##sfx *a, T val,          \
					   lf_order o)                         \
	{                                                                      \
		LF_ATOMIC_HOOK(&a->v, LF_OP_FETCH_ADD, o);                     \
		return atomic_fetch_add_explicit(&a->v, val, o);               \
	}                                                                      \
	static inline T lf_fetch_sub_##sfx(lf_atomic_##sfx *a, T val,          \
					   lf_order o)                         \
	{                                                                      \
		LF_ATOMIC_HOOK(&a->v, LF_OP_FETCH_SUB, o);                     \
		return atomic_fetch_sub_explicit(&a->v, val, o);               \
	}                                                                      \
	static inline T lf_fetch_or_##sfx(lf_atomic_##sfx *a, T val,           \
					  lf_order o)                          \
	{                                                                      \
		LF_ATOMIC_HOOK(&a->v, LF_OP_FETCH_OR, o);                      \
		return atomic_fetch_or_explicit(&a->v, val, o);                \
	}                                                                      \
	static inline T lf_fetch_and_##sfx(lf_atomic_##sfx *a, T val,          \
					   lf_order o)                         \
	{                                                                      \
		LF_ATOMIC_HOOK(&a->v, LF_OP_FETCH_AND, o);                     \
		return atomic_fetch_and_explicit(&a->v, val, o);               \
	}

LF_ATOMIC_DEFINE(u16, uint16_t)
LF_ATOMIC_DEFINE(u32, uint32_t)
LF_ATOMIC_DEFINE(u64, uint64_t)
LF_ATOMIC_DEFINE(uptr, uintptr_t)
LF_ATOMIC_DEFINE(ptr, void *)
LF_ATOMIC_DEFINE_ARITH(u32, uint32_t)
LF_ATOMIC_DEFINE_ARITH(u64, uint64_t)
LF_ATOMIC_DEFINE_ARITH(uptr, uintptr_t)

_Static_assert(sizeof(lf_atomic_u64) == 8, "lf_atomic_u64 must be one word");
_Static_assert(sizeof(lf_atomic_u16) == 2, "lf_atomic_u16 must be 2 bytes");
_Static_assert(sizeof(lf_atomic_u32) == 4, "lf_atomic_u32 must be 4 bytes");

/* The core assumes these never fall back to a lock (a kernel has none). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_SHORT_LOCK_FREE == 2, "16-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2,
	       "pointer atomics must be lock-free");

/*
 * A compiler barrier: no memory access moves across it at compile time; the
 * CPU may still reorder. Only for the fast side of the asymmetric barrier
 * (lf_platform.h), whose slow side supplies the CPU ordering. Interposed, it
 * is a scheduling point like a load.
 */
static inline void lf_compiler_barrier(void)
{
	LF_ATOMIC_HOOK((const volatile void *)0, LF_OP_LOAD, LF_SEQ_CST);
	atomic_signal_fence(memory_order_seq_cst);
}

/*
 * A seq_cst fence: the fast side of the asymmetric barrier where no heavy
 * barrier exists (lf_epoch's fenced mode). Orders a store before a later
 * load (store-load), which no release/acquire or seq_cst store alone does
 * for a later non-seq_cst load. ThreadSanitizer does not model it: code
 * that uses it must not rely on it for happens-before, only for the
 * Dekker-style "one side sees the other". Interposed, LF_OP_FENCE.
 */
static inline void lf_fence_seq_cst(void)
{
	LF_ATOMIC_HOOK((const volatile void *)0, LF_OP_FENCE, LF_SEQ_CST);
	atomic_thread_fence(memory_order_seq_cst);
}

/*
 * A compare-exchange of two adjacent 64-bit atomics as one (a[0] and a[1],
 * a 16-byte aligned): if a[0] == e[0] and a[1] == e[1], both get d[0] and
 * d[1] and it returns true; else e[] gets what it saw and it returns false
 * (strong: never a spurious failure). For one use: a bit set in a[1] only
 * while a[0] still holds the value a check read (buddy/buddy_cache.c, the
 * cached mask beside its unit word; docs/design.md 2.7, "Bits and the
 * lazy clear"). x86-64: lock cmpxchg16b, seq_cst, which covers o.
 * ThreadSanitizer does not see the instruction: under it a fetch_or of 0
 * on a[1] with order o follows (and one on a[0] first when d[0] differs
 * from e[0]), which gives it the ordering (the values are the
 * instruction's; every other access to a[] is atomic, so nothing is
 * reported as a race). Interposed, LF_OP_CAS on a[0] when d[0] differs
 * from e[0] (the word written: a thread that spins on it is woken), else
 * on a[1].
 */
#if defined(__SANITIZE_THREAD__)
#define LF_ATOMIC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LF_ATOMIC_TSAN 1
#endif
#endif
#if defined(__x86_64__) && !defined(LF_CAS2_BUILTIN)
static inline bool lf_cas2_u64(lf_atomic_u64 *a, uint64_t e[2],
			       const uint64_t d[2], lf_order o)
{
	LF_ATOMIC_HOOK(d[0] != e[0] ? &a[0].v : &a[1].v, LF_OP_CAS, o);
	bool ok;
	uint64_t lo = e[0], hi = e[1];
	__asm__ __volatile__("lock cmpxchg16b %1"
			     : "=@ccz"(ok), "+m"(*(volatile uint64_t(*)[2])a),
			       "+a"(lo), "+d"(hi)
			     : "b"(d[0]), "c"(d[1])
			     : "memory");
	e[0] = lo;
	e[1] = hi;
#ifdef LF_ATOMIC_TSAN
	if (d[0] != e[0])
		(void)atomic_fetch_or_explicit(&a[0].v, 0, o);
	(void)atomic_fetch_or_explicit(&a[1].v, 0, o);
#else
	(void)o;
#endif
	return ok;
}
#else
/*
 * Elsewhere the compiler's 16-byte compare-exchange (AArch64: inline with
 * LSE, else a libatomic call, which a freestanding build must provide).
 * Little-endian: a[0] the low half. On x86-64 LF_CAS2_BUILTIN selects it
 * too (libatomic's call there): test_cas2_builtin checks it beside the
 * assembly form.
 */
static inline bool lf_cas2_u64(lf_atomic_u64 *a, uint64_t e[2],
			       const uint64_t d[2], lf_order o)
{
	LF_ATOMIC_HOOK(d[0] != e[0] ? &a[0].v : &a[1].v, LF_OP_CAS, o);
	unsigned __int128 x = (unsigned __int128)e[1] << 64 | e[0];
	unsigned __int128 y = (unsigned __int128)d[1] << 64 | d[0];
	bool ok = __atomic_compare_exchange_n((unsigned __int128 *)(uintptr_t)a,
					      &x, y, false, (int)o,
					      (int)lf_order_cas_fail(o));
	e[0] = (uint64_t)x;
	e[1] = (uint64_t)(x >> 64);
	return ok;
}
#endif

#endif /* LF_ATOMIC_H */
