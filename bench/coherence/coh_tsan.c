/*
 * coh_tsan.c: the entry points that the compiler's ThreadSanitizer
 * instrumentation calls (-fsanitize=thread at compile time), implemented
 * for the coherence accounting mode instead of the sanitizer's runtime,
 * which this program does not link.
 *
 * Every plain access (__tsan_readN, __tsan_writeN, their unaligned,
 * volatile and range forms) and every atomic operation
 * (__tsan_atomicN_*) goes to coh_sched_access() (a scheduling point, then
 * the directory). Loads are reads, stores writes, and exchange, fetch-op
 * and compare-exchange (failed or not) read-modify-writes, and so is a
 * seq_cst store (x86 compiles it to xchg). The whole program runs on one
 * OS thread, so the atomic operations are done here as plain accesses:
 * only the scheduler switches CPUs, and never inside one. Other memory
 * orders do not matter to the count (a fence is not an access) and are
 * ignored.
 *
 * Not seen: memcpy/memset calls (the compilers leave them to the
 * runtime's interceptors, which this is not), so a structure copy the
 * compiler turns into memcpy is not counted; the code under test copies
 * no shared structure that way in an operation.
 *
 * The signatures are those of the sanitizer's public interface
 * (compiler-rt's tsan_interface.h and tsan_interface_atomic.h), which both
 * gcc and clang target; the declarations are here because no header of
 * the toolchain is meant to be included by a runtime replacement.
 */
#include "coh_sched.h"

#include <stddef.h>
#include <stdint.h>

typedef unsigned __int128 coh_u128;

/* The sanitizer interface's memory orders are C11's, numbered 0 to 5. */
#define COH_MO_SEQ_CST 5

/* One entry point per name the compiler emits for an n-byte access: the
 * instrumentation's ABI names each variant (plain, unaligned, volatile,
 * with a pc), and the directory counts them all alike, so the bodies
 * repeat by design. */
#define COH_PLAIN(n)                                                           \
	void __tsan_read##n(void *a);                                          \
	void __tsan_write##n(void *a);                                         \
	void __tsan_unaligned_read##n(void *a);                                \
	void __tsan_unaligned_write##n(void *a);                               \
	void __tsan_volatile_read##n(void *a);                                 \
	void __tsan_volatile_write##n(void *a);                                \
	void __tsan_read##n##_pc(void *a, void *pc);                           \
	void __tsan_write##n##_pc(void *a, void *pc);                          \
	void __tsan_read##n(void *a)                                           \
	{                                                                      \
		coh_sched_access(a, n, COH_READ);                              \
	}                                                                      \
	void __tsan_write##n(void *a)                                          \
	{                                                                      \
		coh_sched_access(a, n, COH_WRITE);                             \
	}                                                                      \
	void __tsan_unaligned_read##n(void *a)                                 \
	{                                                                      \
		coh_sched_access(a, n, COH_READ);                              \
	}                                                                      \
	void __tsan_unaligned_write##n(void *a)                                \
	{                                                                      \
		coh_sched_access(a, n, COH_WRITE);                             \
	}                                                                      \
	void __tsan_volatile_read##n(void *a)                                  \
	{                                                                      \
		coh_sched_access(a, n, COH_READ);                              \
	}                                                                      \
	void __tsan_volatile_write##n(void *a)                                 \
	{                                                                      \
		coh_sched_access(a, n, COH_WRITE);                             \
	}                                                                      \
	void __tsan_read##n##_pc(void *a, void *pc)                            \
	{                                                                      \
		(void)pc;                                                      \
		coh_sched_access(a, n, COH_READ);                              \
	}                                                                      \
	void __tsan_write##n##_pc(void *a, void *pc)                           \
	{                                                                      \
		(void)pc;                                                      \
		coh_sched_access(a, n, COH_WRITE);                             \
	}

COH_PLAIN(1)
COH_PLAIN(2)
COH_PLAIN(4)
COH_PLAIN(8)
COH_PLAIN(16)

void __tsan_read_range(void *a, unsigned long size);
void __tsan_write_range(void *a, unsigned long size);
void __tsan_func_entry(void *pc);
void __tsan_func_exit(void);
void __tsan_init(void);
void __tsan_vptr_read(void **vptr);
void __tsan_vptr_update(void **vptr, void *val);
void __tsan_atomic_thread_fence(int mo);
void __tsan_atomic_signal_fence(int mo);

void __tsan_read_range(void *a, unsigned long size)
{
	coh_sched_access(a, (unsigned)size, COH_READ);
}

void __tsan_write_range(void *a, unsigned long size)
{
	coh_sched_access(a, (unsigned)size, COH_WRITE);
}

void __tsan_func_entry(void *pc)
{
	(void)pc;
}

void __tsan_func_exit(void)
{
}

void __tsan_init(void)
{
}

void __tsan_vptr_read(void **vptr)
{
	coh_sched_access(vptr, sizeof(*vptr), COH_READ);
}

void __tsan_vptr_update(void **vptr, void *val)
{
	(void)val;
	coh_sched_access(vptr, sizeof(*vptr), COH_WRITE);
}

void __tsan_atomic_thread_fence(int mo)
{
	(void)mo;
}

void __tsan_atomic_signal_fence(int mo)
{
	(void)mo;
}

/* The atomics of one width: T the type, n its bits. */
#define COH_ATOMIC_RMW(n, T, name, expr)                                       \
	T __tsan_atomic##n##_##name(volatile T *a, T v, int mo);               \
	T __tsan_atomic##n##_##name(volatile T *a, T v, int mo)                \
	{                                                                      \
		T old;                                                         \
		(void)mo;                                                      \
		coh_sched_access(a, sizeof(T), COH_RMW);                       \
		old = *a;                                                      \
		*a = (T)(expr);                                                \
		return old;                                                    \
	}
#define COH_ATOMIC(n, T)                                                       \
	T __tsan_atomic##n##_load(const volatile T *a, int mo);                \
	T __tsan_atomic##n##_load(const volatile T *a, int mo)                 \
	{                                                                      \
		(void)mo;                                                      \
		if (n != 32 || !coh_sched_stop_load(a))                        \
			coh_sched_access(a, sizeof(T), COH_READ);              \
		return *a;                                                     \
	}                                                                      \
	void __tsan_atomic##n##_store(volatile T *a, T v, int mo);             \
	void __tsan_atomic##n##_store(volatile T *a, T v, int mo)              \
	{                                                                      \
		coh_sched_access(a, sizeof(T),                                 \
				 mo == COH_MO_SEQ_CST ? COH_RMW : COH_WRITE);  \
		*a = v;                                                        \
	}                                                                      \
	COH_ATOMIC_RMW(n, T, exchange, v)                                      \
	COH_ATOMIC_RMW(n, T, fetch_add, old + v)                               \
	COH_ATOMIC_RMW(n, T, fetch_sub, old - v)                               \
	COH_ATOMIC_RMW(n, T, fetch_and, old &v)                                \
	COH_ATOMIC_RMW(n, T, fetch_or, old | v)                                \
	COH_ATOMIC_RMW(n, T, fetch_xor, old ^ v)                               \
	COH_ATOMIC_RMW(n, T, fetch_nand, ~(old & v))                           \
	int __tsan_atomic##n##_compare_exchange_strong(volatile T *a, T *c,    \
						       T v, int mo, int fmo);  \
	int __tsan_atomic##n##_compare_exchange_strong(volatile T *a, T *c,    \
						       T v, int mo, int fmo)   \
	{                                                                      \
		T cur;                                                         \
		(void)mo;                                                      \
		(void)fmo;                                                     \
		coh_sched_access(a, sizeof(T), COH_RMW);                       \
		cur = *a;                                                      \
		if (cur == *c) {                                               \
			*a = v;                                                \
			return 1;                                              \
		}                                                              \
		*c = cur;                                                      \
		return 0;                                                      \
	}                                                                      \
	int __tsan_atomic##n##_compare_exchange_weak(volatile T *a, T *c, T v, \
						     int mo, int fmo);         \
	int __tsan_atomic##n##_compare_exchange_weak(volatile T *a, T *c, T v, \
						     int mo, int fmo)          \
	{                                                                      \
		return __tsan_atomic##n##_compare_exchange_strong(a, c, v, mo, \
								  fmo);        \
	}                                                                      \
	T __tsan_atomic##n##_compare_exchange_val(volatile T *a, T c, T v,     \
						  int mo, int fmo);            \
	T __tsan_atomic##n##_compare_exchange_val(volatile T *a, T c, T v,     \
						  int mo, int fmo)             \
	{                                                                      \
		__tsan_atomic##n##_compare_exchange_strong(a, &c, v, mo, fmo); \
		return c;                                                      \
	}

COH_ATOMIC(8, uint8_t)
COH_ATOMIC(16, uint16_t)
COH_ATOMIC(32, uint32_t)
COH_ATOMIC(64, uint64_t)
COH_ATOMIC(128, coh_u128)
