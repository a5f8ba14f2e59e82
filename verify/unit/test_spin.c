/*
 * test_spin.c: the spinlock of lockfree/lf_spin.h.
 *
 * One thread: trylock fails on a held lock and succeeds on a free one, held
 * reports the word, the interrupt-disabling variant nests (in userspace the
 * saved state is 0 and the lock is an ordinary one).
 *
 * Four threads on two cores: each takes the lock (lf_spin_lock, trylock or
 * the irqsave variant, in turn) and, inside, increments a count of threads
 * inside (must be 1) and two plain counters (never torn apart, and their
 * final value is every section, once: no lost update). The plain counters
 * are what ThreadSanitizer watches: a lock whose acquire or release is
 * weakened shows as a data race on them (the spin-lock-relaxed mutant).
 */
#include <pthread.h>

#include "check.h"
#include "lf_spin.h"
#include "platform_user.h"

#define THREADS 4
#define ROUNDS 20000

static struct lf_spin lock;
static lf_atomic_u32 inside;      /* (a) threads between lock and unlock */
static uint64_t plain_a, plain_b; /* under lock */
static atomic_ulong overlaps, torn;

static void test_single(void)
{
	struct lf_spin s;
	lf_spin_init(&s);
	CHECK(!lf_spin_held(&s, LF_RELAXED));
	CHECK(lf_spin_trylock(&s));
	CHECK(lf_spin_held(&s, LF_RELAXED));
	CHECK(!lf_spin_trylock(&s)); /* held: refused */
	lf_spin_unlock(&s);
	CHECK(!lf_spin_held(&s, LF_RELAXED));
	lf_spin_lock(&s);
	CHECK(!lf_spin_trylock(&s));
	lf_spin_unlock(&s);

	struct lf_spin t;
	lf_spin_init(&t);
	lf_irqflags f1 = lf_spin_lock_irqsave(&s);
	lf_irqflags f2 = lf_spin_lock_irqsave(&t);
	CHECK(lf_spin_held(&s, LF_RELAXED) && lf_spin_held(&t, LF_RELAXED));
	CHECK_EQ(f1, 0); /* userspace: no interrupt state */
	CHECK_EQ(f2, 0);
	lf_spin_unlock_irqrestore(&t, f2);
	lf_spin_unlock_irqrestore(&s, f1);
	CHECK(!lf_spin_held(&s, LF_RELAXED) && !lf_spin_held(&t, LF_RELAXED));
}

static void section(void)
{
	/* Relaxed: the lock orders the section; this only counts overlaps. */
	if (lf_fetch_add_u32(&inside, 1, LF_RELAXED) != 0)
		atomic_fetch_add_explicit(&overlaps, 1, memory_order_relaxed);
	if (plain_a != plain_b)
		atomic_fetch_add_explicit(&torn, 1, memory_order_relaxed);
	plain_a++;
	plain_b++;
	lf_fetch_sub_u32(&inside, 1, LF_RELAXED);
}

static void *worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	lf_platform_user_set_cpu(id);
	for (unsigned i = 0; i < ROUNDS; i++) {
		switch ((i + id) % 3) {
		case 0:
			lf_spin_lock(&lock);
			section();
			lf_spin_unlock(&lock);
			break;
		case 1:
			while (!lf_spin_trylock(&lock))
				lf_platform_pause();
			section();
			lf_spin_unlock(&lock);
			break;
		default: {
			lf_irqflags f = lf_spin_lock_irqsave(&lock);
			section();
			lf_spin_unlock_irqrestore(&lock, f);
			break;
		}
		}
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[THREADS];
	lf_spin_init(&lock);
	lf_init_u32(&inside, 0);
	for (unsigned i = 0; i < THREADS; i++)
		CHECK_FATAL(pthread_create(&t[i], NULL, worker,
					   (void *)(uintptr_t)i) == 0);
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(atomic_load(&overlaps), 0);
	CHECK_EQ(atomic_load(&torn), 0);
	CHECK_EQ(plain_a, (uint64_t)THREADS * ROUNDS); /* no lost section */
	CHECK_EQ(plain_b, plain_a);
	CHECK(!lf_spin_held(&lock, LF_RELAXED));
}

int main(void)
{
	test_single();
	test_threads();
	return check_exit("test_spin");
}
