/*
 * lf_vlock.h: the optimistic version lock of optimistic lock coupling
 * (V. Leis, M. Haubenschild, T. Neumann, "Optimistic Lock Coupling: A
 * Scalable and Efficient General-Purpose Synchronization Method", IEEE Data
 * Eng. Bull. 42(1), 2019).
 *
 * One 64-bit word: bit 0 obsolete, bit 1 locked, bits 2-63 the version.
 * A writer locks by CAS from an unlocked word w to w + LOCKED, and unlocks by
 * adding LOCKED again, which clears the bit and carries one into the version.
 * A reader records the word (waiting while it is locked), reads the fields it
 * protects, then validates that the word is unchanged.
 *
 * Synchronization table:
 *   read_lock, validate      with anything, on any thread
 *   upgrade, write_lock      with anything; at most one succeeds per version
 *   write_unlock(_obsolete)  only by the thread holding the write lock
 *   revive_locked            only by the exclusive owner of an obsolete,
 *                            unlocked lock (e.g. taken from a freelist);
 *                            readers may still be looking at it
 *
 * The invariants V1-V4 (the word only grows; one writer; an obsolete lock
 * stays unlocked until revived; a validated read saw one write section's
 * state) and the ordering argument for V4 (release field stores, acquire
 * field loads, no fences, so ThreadSanitizer sees every edge) are in
 * docs/design.md 1.3; the code below cites them by number.
 *
 * Example: verify/stress/workload_vlock.c (a writer and optimistic
 * readers of a pair of fields); vaspace/vas_tree.c (lock coupling).
 */
#ifndef LF_VLOCK_H
#define LF_VLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "lf_atomic.h"
#include "lf_platform.h"

#define LF_VLOCK_OBSOLETE ((uint64_t)1)
#define LF_VLOCK_LOCKED ((uint64_t)2)

enum lf_vlock_err {
	LF_VLOCK_OK = 0,
	LF_VLOCK_ENOTLOCKED = -1,   /* unlock of a lock that is not held */
	LF_VLOCK_EOBSOLETE = -2,    /* the lock is obsolete */
	LF_VLOCK_ENOTOBSOLETE = -3, /* revive of a live lock */
};

struct lf_vlock {
	lf_atomic_u64 word; /* (a) version << 2 | locked | obsolete */
};

/* Pure functions on a word, testable alone. */
static inline bool lf_vlock_word_locked(uint64_t w)
{
	return (w & LF_VLOCK_LOCKED) != 0;
}
static inline bool lf_vlock_word_obsolete(uint64_t w)
{
	return (w & LF_VLOCK_OBSOLETE) != 0;
}
static inline uint64_t lf_vlock_word_version(uint64_t w)
{
	return w >> 2;
}

static inline void lf_vlock_init(struct lf_vlock *l)
{
	lf_init_u64(&l->word, 0);
}

/*
 * Begin an optimistic read: wait while a writer holds the lock, then return
 * true with the word in *version, or false if the lock is obsolete (the
 * caller restarts from a node it still trusts).
 */
static inline bool lf_vlock_read_lock(const struct lf_vlock *l,
				      uint64_t *version)
{
	for (;;) {
		/* Acquire: pairs with the release in lf_vlock_write_unlock().
		 */
		uint64_t w = lf_load_u64(&l->word, LF_ACQUIRE);
		if (lf_vlock_word_obsolete(w))
			return false;
		if (!lf_vlock_word_locked(w)) {
			*version = w;
			return true;
		}
		lf_platform_pause();
	}
}

/*
 * End (or check midway) an optimistic read: true if no writer touched the
 * lock since read_lock returned version. Relaxed: the acquire field loads
 * before it keep it after them (V4).
 */
static inline bool lf_vlock_validate(const struct lf_vlock *l, uint64_t version)
{
	return lf_load_u64(&l->word, LF_RELAXED) == version;
}

/*
 * Turn an optimistic read into the write lock; false (and nothing taken) if
 * the word moved since version was read.
 */
static inline bool lf_vlock_upgrade(struct lf_vlock *l, uint64_t version)
{
	if (lf_vlock_word_locked(version) || lf_vlock_word_obsolete(version))
		return false;
	/* Acquire: pairs with the release in lf_vlock_write_unlock(). */
	return lf_cas_u64(&l->word, &version, version + LF_VLOCK_LOCKED,
			  LF_ACQUIRE);
}

/*
 * Take the write lock, waiting for the holder. Returns LF_VLOCK_EOBSOLETE
 * (and takes nothing) if the lock is, or becomes, obsolete.
 */
static inline int lf_vlock_write_lock(struct lf_vlock *l)
{
	for (;;) {
		uint64_t v;
		if (!lf_vlock_read_lock(l, &v))
			return LF_VLOCK_EOBSOLETE;
		if (lf_vlock_upgrade(l, v))
			return LF_VLOCK_OK;
	}
}

/* Release the write lock; the version moves on (V1). */
static inline int lf_vlock_write_unlock(struct lf_vlock *l)
{
	/* Relaxed: only the holder writes the word while it is locked. */
	uint64_t w = lf_load_u64(&l->word, LF_RELAXED);
	if (!lf_vlock_word_locked(w))
		return LF_VLOCK_ENOTLOCKED;
	/* Release: pairs with the acquire in read_lock() and upgrade(). */
	lf_store_u64(&l->word, w + LF_VLOCK_LOCKED, LF_RELEASE);
	return LF_VLOCK_OK;
}

/* Release the write lock and mark the lock obsolete (node unlinked). */
static inline int lf_vlock_write_unlock_obsolete(struct lf_vlock *l)
{
	/* Relaxed: only the holder writes the word while it is locked. */
	uint64_t w = lf_load_u64(&l->word, LF_RELAXED);
	if (!lf_vlock_word_locked(w))
		return LF_VLOCK_ENOTLOCKED;
	/* Release: pairs with the acquire in read_lock(). */
	lf_store_u64(&l->word, w + LF_VLOCK_LOCKED + LF_VLOCK_OBSOLETE,
		     LF_RELEASE);
	return LF_VLOCK_OK;
}

/*
 * Make an obsolete lock live again, write-locked by the caller, with a larger
 * version than any it had (V1): the owner of a recycled node initialises it
 * under the lock and publishes it with write_unlock. Stale readers of the
 * node's old life fail validation or see it locked.
 */
static inline int lf_vlock_revive_locked(struct lf_vlock *l)
{
	/* Relaxed: the owner alone writes an obsolete lock's word. */
	uint64_t w = lf_load_u64(&l->word, LF_RELAXED);
	if (!lf_vlock_word_obsolete(w) || lf_vlock_word_locked(w))
		return LF_VLOCK_ENOTOBSOLETE;
	/*
	 * Relaxed: field stores after this are release stores (V4), which
	 * order this word before them for any reader that sees them.
	 */
	lf_store_u64(&l->word, (w & ~LF_VLOCK_OBSOLETE) + 4 + LF_VLOCK_LOCKED,
		     LF_RELAXED);
	return LF_VLOCK_OK;
}

/*
 * Fields protected by a version lock: read optimistically with acquire loads
 * and written under the lock with release stores (V4). These are the only
 * accesses the OLC users may make to such fields.
 */
#define LF_OLC_DEFINE(sfx, T)                                                  \
	static inline T lf_olc_load_##sfx(const lf_atomic_##sfx *f)            \
	{                                                                      \
		/* Acquire: orders the validation after this load (V4). */     \
		return lf_load_##sfx(f, LF_ACQUIRE);                           \
	}                                                                      \
	static inline void lf_olc_store_##sfx(lf_atomic_##sfx *f, T v)         \
	{                                                                      \
		/* Release: pairs with the acquire in lf_olc_load (V4). */     \
		lf_store_##sfx(f, v, LF_RELEASE);                              \
	}

LF_OLC_DEFINE(u32, uint32_t)
LF_OLC_DEFINE(u64, uint64_t)
LF_OLC_DEFINE(uptr, uintptr_t)
LF_OLC_DEFINE(ptr, void *)

#endif /* LF_VLOCK_H */
