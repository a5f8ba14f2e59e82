/*
 * mc_kmem.c: model-checking harnesses of kmem/ (kmem.c compiled unchanged,
 * every atomic a scheduling point; the asymmetric CPU sections are on,
 * since mc.c provides a heavy barrier).
 *
 *   kmem.depot    two CPUs allocate and free with one-round magazines, so
 *                 that nearly every operation exchanges a magazine with
 *                 the depot's lock-free stacks (full and empty) and the
 *                 pool, and one CPU's frees are the other's allocations:
 *                 no object is ever held twice (K1), and at the end
 *                 kmem_check() (K1-K8) holds and every page goes back.
 *   kmem.reclaim  a CPU frees objects that another CPU allocated (remote
 *                 frees into its magazines, through the depot) while a
 *                 third context reclaims: drains that CPU's magazines
 *                 from outside (the asymmetric exclusion against the
 *                 owner inside its section), flushes the depot, gives
 *                 empty slabs back. The page source checks that no slab
 *                 comes back while an object of it is held (K5); the end
 *                 as above.
 *   kmem.race     two CPUs free the same object at once (an object that
 *                 a third CPU handed out; CPU 0 frees it through a
 *                 magazine with room, the hit, CPU 1 through a fresh
 *                 magazine, the slow path): exactly one of the two frees
 *                 succeeds and the other returns KMEM_EDOUBLE
 *                 (docs/design.md 4.4); then every object is allocated on
 *                 both CPUs, none twice (K1); the end as above.
 *
 * The page source is an arena of MK_PAGES pages with a plain bitmap (no
 * atomics: it runs between scheduling points, so it is atomic here).
 */
#include <stdio.h>
#include <string.h>

#include "kmem.h"
#include "kmem_i.h"
#include "mc.h"
#include "mc_tests.h"

#define MK_PAGES 4
#define MK_OBJ 1024 /* three objects to a one-page slab */
#define MK_HELD 16

static struct {
	uint8_t arena[MK_PAGES * 4096] __attribute__((aligned(4096)));
	uint8_t used[MK_PAGES];
	_Alignas(64) uint8_t meta[160 * 1024];
	struct kmem *k;
	struct kmem_cache *c;
	void *held[MK_HELD]; /* objects the threads hold (K1, K5) */
	unsigned holder[MK_HELD];
	void *given[4]; /* kmem.reclaim: allocated in setup on CPU 2 */
	const char *happened;
	char events[8];
	int race_rc[2]; /* kmem.race: each thread's free of given[0] */
} S;

static const int mk_reclaim_cfg = 1;
static const int mk_race_cfg = 2;

static const char *const mk_events[] = { "depot get", "depot put",
					 "drain of a CPU", "slab given back" };
static struct mc_cover mk_cover = { .codes = "gpdr", .names = mk_events };

static int mk_src_alloc(void *arg, unsigned cpu, unsigned order,
			uintptr_t *addr)
{
	(void)arg;
	(void)cpu;
	unsigned n = 1u << order;
	for (unsigned p = 0; p + n <= MK_PAGES; p += n) {
		unsigned i = 0;
		while (i < n && !S.used[p + i])
			i++;
		if (i < n)
			continue;
		memset(S.used + p, 1, n);
		*addr = (uintptr_t)S.arena + p * 4096;
		return 0;
	}
	return KMEM_ENOMEM;
}

/* K5: a slab comes back only with none of its objects held. */
static void mk_src_free(void *arg, unsigned cpu, uintptr_t addr, unsigned order)
{
	(void)arg;
	(void)cpu;
	uintptr_t end = addr + (4096u << order);
	for (unsigned i = 0; i < MK_HELD; i++)
		if (S.held[i] && (uintptr_t)S.held[i] >= addr &&
		    (uintptr_t)S.held[i] < end)
			mc_fail("K5: slab %#lx given back while thread %u "
				"holds "
				"%p",
				(unsigned long)addr, S.holder[i], S.held[i]);
	unsigned p = (unsigned)((addr - (uintptr_t)S.arena) / 4096);
	for (unsigned i = 0; i < (1u << order); i++) {
		if (!S.used[p + i])
			mc_fail("page %u given back twice", p + i);
		S.used[p + i] = 0;
	}
}

static void mk_setup(void)
{
	memset(S.used, 0, sizeof(S.used));
	memset(S.held, 0, sizeof(S.held));
	struct kmem_config cfg = {
		.base = (uintptr_t)S.arena,
		.size = sizeof(S.arena),
		.ncpus = 3,
		.max_caches = KMEM_KMALLOC_CLASSES + 1,
		.nmags = 10,
		.empty_max = 0,
		.mag_rounds = 1,
		.source = { mk_src_alloc, mk_src_free, NULL },
	};
	if (kmem_meta_size(&cfg) > sizeof(S.meta) ||
	    kmem_init(&S.k, S.meta, sizeof(S.meta), &cfg) != 0 ||
	    kmem_cache_create(S.k, "mc", MK_OBJ, 0, NULL, NULL, NULL, &S.c) !=
		    0)
		mc_fail("setup: kmem_init (%zu bytes)", kmem_meta_size(&cfg));
	for (unsigned i = 0; i < 4; i++)
		S.given[i] = NULL;
	if (mc_cfg() == &mk_race_cfg) {
		/* One object from CPU 2, freed by both threads (held by
		 * nobody); CPU 0 holds one (a magazine with room). */
		if (kmem_cache_alloc(S.c, 2, &S.given[0]) != 0 ||
		    kmem_cache_alloc(S.c, 0, &S.given[1]) != 0)
			mc_fail("setup: alloc");
		S.held[1] = S.given[1];
		S.race_rc[0] = S.race_rc[1] = 1;
	} else if (mc_cfg() != NULL) /* kmem.reclaim: four from CPU 2 */
		for (unsigned i = 0; i < 4; i++) {
			if (kmem_cache_alloc(S.c, 2, &S.given[i]) != 0)
				mc_fail("setup: alloc");
			S.held[i] = S.given[i];
			S.holder[i] = 2;
		}
}

/* K1: an object handed out is held by nobody. */
static void *mk_alloc(unsigned cpu)
{
	void *p;
	int e = kmem_cache_alloc(S.c, cpu, &p);
	if (e != 0)
		mc_fail("alloc on CPU %u: %s", cpu, kmem_strerror(e));
	for (unsigned i = 0; i < MK_HELD; i++)
		if (S.held[i] == p)
			mc_fail("K1: %p handed to CPU %u, held by %u", p, cpu,
				S.holder[i]);
	for (unsigned i = 0; i < MK_HELD; i++)
		if (!S.held[i]) {
			S.held[i] = p;
			S.holder[i] = cpu;
			return p;
		}
	mc_fail("harness: too many objects held");
}

static void mk_free(unsigned cpu, void *p)
{
	for (unsigned i = 0; i < MK_HELD; i++)
		if (S.held[i] == p)
			S.held[i] = NULL;
	int e = kmem_cache_free(S.c, cpu, p);
	if (e != 0)
		mc_fail("free on CPU %u: %s", cpu, kmem_strerror(e));
}

static void mk_depot_thread(unsigned tid)
{
	/* Three held: the third free sends a full magazine to the depot;
	 * thread 1's third allocation then takes one from it. */
	void *o[3];
	for (unsigned i = 0; i < 3; i++)
		o[i] = mk_alloc(tid);
	for (unsigned i = 0; i < 3; i++)
		mk_free(tid, o[i]);
	if (tid == 1) {
		for (unsigned i = 0; i < 3; i++)
			o[i] = mk_alloc(tid);
		for (unsigned i = 0; i < 3; i++)
			mk_free(tid, o[i]);
	}
}

static void mk_reclaim_thread(unsigned tid)
{
	if (tid == 0) {
		for (unsigned i = 0; i < 4; i++) /* remote frees */
			mk_free(0, S.given[i]);
		void *a = mk_alloc(0);
		mk_free(0, a);
	} else {
		kmem_reclaim(S.k, 1, true);
	}
}

/*
 * Both free given[0]; CPU 0 then frees the object it holds. (No thread
 * allocates before both frees are done: a free that ran after given[0]
 * was handed out again would be a free of that allocation, not a double
 * free.)
 */
static void mk_race_thread(unsigned tid)
{
	S.race_rc[tid] = kmem_cache_free(S.c, tid, S.given[0]);
	if (tid == 0)
		mk_free(0, S.given[1]);
}

static void mk_check(void)
{
	if (mc_cfg() == &mk_race_cfg &&
	    !((S.race_rc[0] == 0 && S.race_rc[1] == KMEM_EDOUBLE) ||
	      (S.race_rc[0] == KMEM_EDOUBLE && S.race_rc[1] == 0)))
		mc_fail("two frees of one object returned %s and %s",
			kmem_strerror(S.race_rc[0]),
			kmem_strerror(S.race_rc[1]));
	if (mc_cfg() == &mk_race_cfg) {
		/* Everything back on both CPUs: nothing handed out twice
		 * (K1: mk_alloc() against the objects held). */
		void *o[6];
		for (unsigned i = 0; i < 6; i++)
			o[i] = mk_alloc(i % 2);
		for (unsigned i = 0; i < 6; i++)
			mk_free(i % 2, o[i]);
	}
	struct kmem_cache_stats st;
	kmem_cache_stats(S.c, &st);
	char *e = S.events;
	if (st.depot_gets)
		*e++ = 'g';
	if (st.depot_puts)
		*e++ = 'p';
	if (st.drains)
		*e++ = 'd';
	if (st.reclaims)
		*e++ = 'r';
	*e = 0;
	mc_cover_add(&mk_cover, S.events);
	if (st.inuse != 0)
		mc_fail("K4: %llu objects in use at the end",
			(unsigned long long)st.inuse);
	int bad = kmem_check(S.k);
	if (bad)
		mc_fail("K%d broken at the end", bad);
	kmem_reclaim(S.k, 0, true);
	for (unsigned p = 0; p < MK_PAGES; p++)
		if (S.used[p])
			mc_fail("page %u not given back after a full reclaim",
				p);
	if (kmem_check(S.k))
		mc_fail("K%d broken after the reclaim", kmem_check(S.k));
}

static bool mk_report_depot(void)
{
	return mc_cover_report(&mk_cover, "gp");
}

static bool mk_report_reclaim(void)
{
	return mc_cover_report(&mk_cover, "dr");
}

/*
 * A configuration: two CPUs running thr, checked by mk_check().
 * The other harnesses' *_TEST macros look alike because they fill
 * the same struct (MC_TEST_COMMON); each names its own hooks.
 */
#define MK_TEST(id, nm, desc, thr, rep, c)                                     \
	static const struct mc_test id = { MC_TEST_COMMON(nm, desc, 2, 2, 3,   \
							  20000),              \
					   .setup = mk_setup,                  \
					   .thread = thr,                      \
					   .check = mk_check,                  \
					   .report = rep,                      \
					   .cfg = c }

MK_TEST(mk_depot, "kmem.depot",
	"magazine exchanges with the depot on two CPUs (K1)", mk_depot_thread,
	mk_report_depot, NULL);
MK_TEST(mk_reclaim, "kmem.reclaim",
	"remote frees racing a reclaim that drains their CPU (K5)",
	mk_reclaim_thread, mk_report_reclaim, &mk_reclaim_cfg);

MK_TEST(mk_race, "kmem.race",
	"two CPUs free one object at once: one succeeds, one EDOUBLE (K1)",
	mk_race_thread, NULL, &mk_race_cfg);

const struct mc_test *const mc_tests_kmem[] = { &mk_depot, &mk_reclaim,
						&mk_race, NULL };
