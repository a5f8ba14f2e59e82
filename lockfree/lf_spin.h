/*
 * lf_spin.h: the one spinlock of lfalloc, a test-and-test-and-set lock on
 * one 32-bit word (0 free, 1 held).
 *
 * Users: the per-CPU cache lock of buddy/buddy_cache.c (a drainer's side of
 * the owner/drainer exclusion), the zone lock of the locked buddy
 * (buddy/buddy_locked.c), the writer lock of vaspace/vas.c (spun on, then
 * yielded), kmem's cache and instance locks (kmem/kmem.c), the locked slab
 * of bench/bench_kmem.c, and the mailboxes of the kernel tortures
 * (kernel/torture.c with interrupts off, kernel/torture_kmem.c). kmem's
 * per-CPU lock word is not one: it carries a second, constant bit
 * (kmem_i.h, KMEM_CPU_SYM).
 *
 * Synchronization table:
 *   lock, trylock      any thread; the acquiring exchange pairs with the
 *                      release store of the previous holder's unlock, so
 *                      the holder sees everything written under the lock
 *                      before it
 *   unlock             only the holder
 *   held               any thread: a snapshot with the order the caller
 *                      names (buddy_cache.c reads it with acquire to pair
 *                      with a drainer's unlock)
 *
 * Not fair, not recursive; the invariant (one holder) and the ordering
 * argument are in docs/design.md 1.5.
 *
 * The interrupt-disabling variant (lf_spin_lock_irqsave() and
 * lf_spin_unlock_irqrestore()) is for a lock that an interrupt handler may
 * also take, or whose hold time must not stretch over a handler: interrupts
 * go off on this CPU before the lock is taken and come back (if they were
 * on) after it is released, through lf_platform_irq_save() and
 * lf_platform_irq_restore() of the platform shim. In userspace and under the
 * model checker there are no interrupts and those two do nothing.
 *
 * Example: verify/unit/test_spin.c; kernel/torture.c (the
 * interrupt-disabling variant).
 */
#ifndef LF_SPIN_H
#define LF_SPIN_H

#include <stdbool.h>
#include <stdint.h>

#include "lf_atomic.h"
#include "lf_platform.h"

struct lf_spin {
	lf_atomic_u32 word; /* (a) 0 free, 1 held */
};

static inline void lf_spin_init(struct lf_spin *s)
{
	lf_init_u32(&s->word, 0);
}

/* Take the lock if it is free; true if taken. */
static inline bool lf_spin_trylock(struct lf_spin *s)
{
	/* Relaxed: a look first, so a held lock's line is not written. */
	if (lf_load_u32(&s->word, LF_RELAXED) != 0)
		return false;
	/* Acquire: pairs with the release in lf_spin_unlock(). */
	return lf_xchg_u32(&s->word, 1, LF_ACQUIRE) == 0;
}

static inline void lf_spin_lock(struct lf_spin *s)
{
	/* Acquire: pairs with the release in lf_spin_unlock(). */
	while (lf_xchg_u32(&s->word, 1, LF_ACQUIRE) != 0)
		/* Relaxed: spin on a read until it looks free. */
		while (lf_load_u32(&s->word, LF_RELAXED) != 0)
			lf_platform_pause();
}

static inline void lf_spin_unlock(struct lf_spin *s)
{
	/* Release: pairs with the acquire exchange in lf_spin_lock(). */
	lf_store_u32(&s->word, 0, LF_RELEASE);
}

/* Whether the lock is held now, read with the caller's order. */
static inline bool lf_spin_held(const struct lf_spin *s, lf_order order)
{
	return lf_load_u32(&s->word, order) != 0;
}

/* Interrupts off on this CPU, then the lock; returns the saved state. */
static inline lf_irqflags lf_spin_lock_irqsave(struct lf_spin *s)
{
	lf_irqflags f = lf_platform_irq_save();
	lf_spin_lock(s);
	return f;
}

/* The lock released, then this CPU's interrupts as they were. */
static inline void lf_spin_unlock_irqrestore(struct lf_spin *s, lf_irqflags f)
{
	lf_spin_unlock(s);
	lf_platform_irq_restore(f);
}

#endif /* LF_SPIN_H */
