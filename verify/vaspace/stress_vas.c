/*
 * stress_vas.c: the vas (vas.h) under several threads, for the tsan and
 * asan presets (a sanitizer report fails the test) and the default one.
 *
 * Writer threads allocate (both policies, with and without alignment),
 * alloc_at random places, free wholly or partly (head, tail, middle) and
 * look up, each on its own context. Every allocation gets a tag no other
 * allocation has (thread << 32 | counter); a thread knows the pieces it
 * holds, which no other thread can change, so at any moment:
 *
 *  - a lookup of any byte of a piece it holds returns exactly that piece
 *    (start, size, tag), however the tree around it is split, merged or
 *    its nodes reused by the other writers;
 *  - an iteration over a piece it holds reports exactly that piece;
 *  - a lookup of what it has just freed never returns the old tag;
 *  - an allocation lands in the region, aligned, and looks up as itself.
 *
 * Around each of its calls a writer also publishes, in a small seqlock
 * (struct watch), one byte of a piece it holds that stays allocated through
 * the call (for a partial free: a byte of the part that stays). A reader
 * that looks that byte up while the publication stands must find it
 * allocated, with the piece's tag, inside the piece: lookups are
 * linearizable even against a writer splitting the very range they hit.
 * Half of these lookups are made in a batch (vas_lookup_n) among random
 * addresses, whose own answers are checked as the readers' below.
 *
 * Reader threads meanwhile look up random addresses and iterate random
 * windows: every range reported has a size, lies in the region, overlaps
 * what was asked, holds the address looked up, and carries a tag some
 * writer could have given it (0 when free).
 *
 * When the time is up the writers stop; the main thread checks that the
 * allocated ranges are exactly the pieces the writers hold, then they free
 * everything: vas_check, no range allocated, one free range of the whole
 * region. Every context is unregistered and vas_destroy must give every
 * node back to the source.
 *
 * With "caching" (a fourth argument), per-context caching is on
 * (vas_set_caching, docs/design.md 3.3): small allocations and whole small
 * frees are leaf-local writes of each writer's own reserved and cached
 * ranges, racing with each other (on disjoint spans, and on one leaf where
 * two contexts' ranges meet), with the exclusive writes (larger
 * allocations, partial frees, alloc_at over other writers' held ranges,
 * which returns them) and with the readers; the properties above are the
 * same, free space may be several ranges side by side, and at the end
 * caching goes off (every held range returned) before the vas must be one
 * free range. Some writes must have been leaf-local.
 *
 * Usage: stress_vas THREADS MILLISECONDS [NODE_KEYS [caching]]
 *        (THREADS writers and two readers; NODE_KEYS 3 keeps node reuse
 *        constant)
 */
#include <pthread.h>
#include <time.h>

#include "platform_user.h"
#include "vt_common.h"

#define MAXT 16
#define READERS 2
#define HELD 96
#define Q ((uint64_t)4096)
#define NQ ((uint64_t)4096)
#define BASE ((uint64_t)0x5550000000 + 5 * Q)
#define END (BASE + NQ * Q)

static struct vas *vas;
static struct vt_src src;
static unsigned nwriters;
static bool caching;

/*
 * A byte that stays allocated while gen stays the same even number: the
 * writer makes gen odd, stores the fields (release), makes gen even
 * (release), then calls the vas, and makes gen odd when the call is over.
 * Odd: nothing published (gen starts at 1).
 */
struct watch {
	_Atomic uint64_t gen;
	_Atomic uint64_t addr, lo, hi; /* the byte, the piece around it */
	_Atomic uintptr_t tag;
	_Atomic uint64_t fa, fe; /* what the call frees, if it frees */
} __attribute__((aligned(64)));

static struct watch watches[MAXT];
static atomic_ulong watch_checks;
static atomic_ulong batch_checks; /* of them, in a vas_lookup_n batch */
#define NBATCH 12                 /* addresses in a batch, at most */
static atomic_bool stop;
static pthread_barrier_t stopped, checked, emptied, unregistered;

struct piece {
	uint64_t start, size;
	uintptr_t tag;
};

struct writer {
	unsigned id;
	struct vas_ctx *c;
	uint64_t rng;
	uint64_t counter;
	struct piece held[HELD];
	unsigned nheld;
	unsigned long ops, allocs, frees, lookups, nospc;
};

static atomic_ulong reader_lookups, reader_ranges;

static uint64_t xrnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t wrnd(struct writer *w, uint64_t n)
{
	return xrnd(&w->rng) % n;
}

/* A tag some writer could have given: thread 1..nwriters, counter. */
static bool tag_plausible(uintptr_t tag)
{
	uint64_t t = (uint64_t)tag >> 32;
	return t >= 1 && t <= nwriters && (tag & 0xffffffffu) != 0;
}

static void report(const char *what, uint64_t addr, const struct vas_range *r)
{
	fprintf(stderr, "%s at %#" PRIx64 ":", what, addr);
	vt_range_print("", r);
}

/* A lookup of any byte of a held piece returns exactly that piece. */
static void check_held(struct writer *w, const struct piece *p)
{
	uint64_t addr = p->start + wrnd(w, p->size);
	struct vas_range r = { 0 };
	int rc = vas_lookup(w->c, addr, &r);
	bool ok = rc == VAS_OK && r.allocated && r.start == p->start &&
		  r.size == p->size && r.tag == p->tag;
	if (!ok) {
		fprintf(stderr,
			"writer %u: lookup %d, held [%#" PRIx64 ", +%#" PRIx64
			") tag %#" PRIxPTR "\n",
			w->id, rc, p->start, p->size, p->tag);
		report("  got", addr, &r);
	}
	CHECK(ok);
	w->lookups++;
}

struct one {
	struct vas_range r;
	unsigned n;
};

static bool one_fn(const struct vas_range *r, void *arg)
{
	struct one *o = arg;
	if (o->n++ == 0)
		o->r = *r;
	return o->n < 4;
}

/* Iterating over a held piece reports exactly it. */
static void check_held_iter(struct writer *w, const struct piece *p)
{
	struct one o = { 0 };
	CHECK_EQ(vas_iterate(w->c, p->start, p->start + p->size, one_fn, &o),
		 VAS_OK);
	bool ok = o.n == 1 && o.r.allocated && o.r.start == p->start &&
		  o.r.size == p->size && o.r.tag == p->tag;
	if (!ok) {
		fprintf(stderr,
			"writer %u: iterate %u ranges over held [%#" PRIx64
			", +%#" PRIx64 ")\n",
			w->id, o.n, p->start, p->size);
		report("  first", p->start, &o.r);
	}
	CHECK(ok);
}

/* A byte just freed never looks up as the old tag. */
static void check_freed(struct writer *w, uint64_t addr, uintptr_t old)
{
	struct vas_range r = { 0 };
	int rc = vas_lookup(w->c, addr, &r);
	bool ok = rc == VAS_ENOENT ||
		  (rc == VAS_OK && r.tag != old && r.start <= addr &&
		   addr - r.start < r.size);
	if (!ok) {
		fprintf(stderr,
			"writer %u: freed %#" PRIx64 " tag %#" PRIxPTR
			": lookup %d\n",
			w->id, addr, old, rc);
		report("  got", addr, &r);
	}
	CHECK(ok);
}

static void hold(struct writer *w, uint64_t a, uint64_t size, uintptr_t tag)
{
	CHECK_FATAL(w->nheld < HELD);
	struct piece *p = &w->held[w->nheld++];
	*p = (struct piece){ a, size, tag };
	CHECK(a >= BASE && a + size <= END && a % Q == 0);
	check_held(w, p);
}

static void watch_set(struct writer *w, uint64_t addr, const struct piece *p,
		      uint64_t fa, uint64_t fe)
{
	struct watch *wt = &watches[w->id];
	uint64_t g = atomic_load_explicit(&wt->gen, memory_order_relaxed);
	if (!(g & 1))
		atomic_store_explicit(&wt->gen, ++g, memory_order_relaxed);
	/* Release: a reader that sees a field sees the odd gen before it. */
	atomic_store_explicit(&wt->addr, addr, memory_order_release);
	atomic_store_explicit(&wt->lo, p->start, memory_order_release);
	atomic_store_explicit(&wt->hi, p->start + p->size,
			      memory_order_release);
	atomic_store_explicit(&wt->tag, p->tag, memory_order_release);
	atomic_store_explicit(&wt->fa, fa, memory_order_release);
	atomic_store_explicit(&wt->fe, fe, memory_order_release);
	/* Release: pairs with the acquire in reader_watch(). */
	atomic_store_explicit(&wt->gen, g + 1, memory_order_release);
}

/* A random byte of a random held piece, for the next call. */
static void watch_any(struct writer *w)
{
	if (w->nheld) {
		struct piece *p = &w->held[wrnd(w, w->nheld)];
		watch_set(w, p->start + wrnd(w, p->size), p, 0, 0);
	}
}

/* The call is over: what was published may go. */
static void watch_end(struct writer *w)
{
	struct watch *wt = &watches[w->id];
	uint64_t g = atomic_load_explicit(&wt->gen, memory_order_relaxed);
	/* Release: pairs with the acquire in reader_watch(). */
	if (!(g & 1))
		atomic_store_explicit(&wt->gen, g + 1, memory_order_release);
}

static uintptr_t next_tag(struct writer *w)
{
	return (uintptr_t)((uint64_t)(w->id + 1) << 32 | ++w->counter);
}

static void do_alloc(struct writer *w)
{
	uint64_t n = wrnd(w, 8) ? 1 + wrnd(w, 8) : 9 + wrnd(w, 56);
	uint64_t align = wrnd(w, 3) ? 0 : Q << wrnd(w, 6), a = 0;
	uintptr_t tag = next_tag(w);
	int rc = vas_alloc(w->c, n * Q, align, (enum vas_policy)wrnd(w, 2), tag,
			   &a);
	if (rc == VAS_ENOSPC) {
		w->nospc++;
		return;
	}
	CHECK_EQ(rc, VAS_OK);
	if (rc != VAS_OK)
		return;
	CHECK(align == 0 || a % align == 0);
	hold(w, a, n * Q, tag);
	w->allocs++;
}

static void do_alloc_at(struct writer *w)
{
	uint64_t n = 1 + wrnd(w, 4);
	uint64_t a = BASE + wrnd(w, NQ - n + 1) * Q;
	uintptr_t tag = next_tag(w);
	int rc = vas_alloc_at(w->c, a, n * Q, tag);
	CHECK(rc == VAS_OK || rc == VAS_EBUSY);
	if (rc == VAS_OK) {
		hold(w, a, n * Q, tag);
		w->allocs++;
	}
}

/* Free the whole of a held piece, or its head, tail or middle. */
static void do_free(struct writer *w, bool whole)
{
	if (w->nheld == 0)
		return;
	unsigned i = (unsigned)wrnd(w, w->nheld);
	struct piece p = w->held[i];
	uint64_t nq = p.size / Q, off = 0, n = nq;
	unsigned k = whole ? 0 : (unsigned)wrnd(w, 4);
	if (w->nheld + 1 >= HELD && k == 3)
		k = 0; /* a middle makes two pieces */
	if (k == 1 && nq > 1) {
		n = 1 + wrnd(w, nq - 1);
	} else if (k == 2 && nq > 1) {
		off = 1 + wrnd(w, nq - 1);
		n = nq - off;
	} else if (k == 3 && nq > 2) {
		off = 1 + wrnd(w, nq - 2);
		n = 1 + wrnd(w, nq - off - 1);
	}
	uint64_t a = p.start + off * Q, e = a + n * Q, pe = p.start + p.size;
	if (a > p.start) /* a byte of what stays, while it is split off */
		watch_set(w, p.start + wrnd(w, a - p.start), &p, a, e);
	else if (e < pe)
		watch_set(w, e + wrnd(w, pe - e), &p, a, e);
	w->held[i] = w->held[--w->nheld];
	if (a > p.start)
		w->held[w->nheld++] =
			(struct piece){ p.start, a - p.start, p.tag };
	if (e < pe)
		w->held[w->nheld++] = (struct piece){ e, pe - e, p.tag };
	int rc = vas_free(w->c, a, n * Q);
	CHECK_EQ(rc, VAS_OK);
	check_freed(w, a, p.tag);
	check_freed(w, e - 1, p.tag);
	if (a > p.start)
		check_held(w, &w->held[w->nheld - 1 - (e < pe)]);
	if (e < pe)
		check_held(w, &w->held[w->nheld - 1]);
	w->frees++;
}

static void writer_step(struct writer *w)
{
	unsigned r = (unsigned)wrnd(w, 100);
	if (w->nheld + 2 >= HELD && r < 50)
		r += 50;
	if (r < 40) {
		watch_any(w);
		do_alloc(w);
	} else if (r < 50) {
		watch_any(w);
		do_alloc_at(w);
	} else if (r < 80) {
		do_free(w, false);
	} else if (w->nheld) {
		struct piece *p = &w->held[wrnd(w, w->nheld)];
		check_held(w, p);
		if (r >= 95)
			check_held_iter(w, p);
	}
	watch_end(w);
	w->ops++;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	lf_platform_user_set_cpu(w->id);
	CHECK_FATAL(vas_ctx_register(vas, w->c) == VAS_OK);
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		for (int i = 0; i < 32; i++)
			writer_step(w);
	pthread_barrier_wait(&stopped);
	pthread_barrier_wait(&checked); /* main compares the held pieces */
	while (w->nheld)
		do_free(w, true);
	pthread_barrier_wait(&emptied);
	pthread_barrier_wait(&unregistered); /* main has checked the end */
	CHECK_EQ(vas_ctx_unregister(w->c), VAS_OK);
	return NULL;
}

struct reader {
	unsigned id;
	struct vas_ctx *c;
	uint64_t rng;
	uint64_t a, b; /* the window of the current iteration */
	unsigned n;
};

static void check_reported(const struct vas_range *r, uint64_t addr)
{
	bool ok = r->size > 0 && r->size % Q == 0 && r->start % Q == 0 &&
		  r->start >= BASE && r->start < END &&
		  r->size <= END - r->start &&
		  (r->allocated ? tag_plausible(r->tag) : r->tag == 0);
	if (!ok)
		report("reader: bad range", addr, r);
	CHECK(ok);
}

static bool reader_fn(const struct vas_range *r, void *arg)
{
	struct reader *rd = arg;
	check_reported(r, rd->a);
	bool overlaps = r->start < rd->b && r->start + r->size > rd->a;
	if (!overlaps) {
		fprintf(stderr,
			"reader: iterate [%#" PRIx64 ", %#" PRIx64
			"), call %u: outside the window:\n",
			rd->a, rd->b, rd->n + 1);
		report("  reported", rd->a, r);
	}
	CHECK(overlaps);
	CHECK(++rd->n <= NQ + 1);
	atomic_fetch_add_explicit(&reader_ranges, 1, memory_order_relaxed);
	return rd->n <= NQ + 1;
}

/* A byte a writer holds through its current call must look up as held. */
static void reader_watch(struct reader *rd)
{
	struct watch *wt = &watches[xrnd(&rd->rng) % nwriters];
	/* Acquire: pairs with the releases in watch_set() and watch_end(). */
	uint64_t g1 = atomic_load_explicit(&wt->gen, memory_order_acquire);
	uint64_t addr = atomic_load_explicit(&wt->addr, memory_order_acquire);
	uint64_t lo = atomic_load_explicit(&wt->lo, memory_order_acquire);
	uint64_t hi = atomic_load_explicit(&wt->hi, memory_order_acquire);
	uintptr_t tag = atomic_load_explicit(&wt->tag, memory_order_acquire);
	uint64_t fa = atomic_load_explicit(&wt->fa, memory_order_acquire);
	uint64_t fe = atomic_load_explicit(&wt->fe, memory_order_acquire);
	if (g1 & 1)
		return;
	struct vas_range r = { 0 };
	int rc;
	if (xrnd(&rd->rng) % 2 == 0) {
		rc = vas_lookup(rd->c, addr, &r);
	} else {
		/* In a batch (vas_lookup_n), at a random place among random
		 * addresses, each checked as reader_step()'s lookups are. */
		uint64_t a[NBATCH];
		struct vas_range rs[NBATCH];
		int rcs[NBATCH], hits = 0;
		unsigned n = 1 + (unsigned)(xrnd(&rd->rng) % NBATCH);
		unsigned at = (unsigned)(xrnd(&rd->rng) % n);
		for (unsigned i = 0; i < n; i++)
			a[i] = i == at ? addr
				       : BASE + xrnd(&rd->rng) % (NQ * Q);
		int found = vas_lookup_n(rd->c, a, n, rs, rcs);
		for (unsigned i = 0; i < n; i++) {
			CHECK(rcs[i] == VAS_OK || rcs[i] == VAS_ENOENT);
			if (rcs[i] != VAS_OK)
				continue;
			hits++;
			check_reported(&rs[i], a[i]);
			CHECK(rs[i].allocated && rs[i].start <= a[i] &&
			      a[i] - rs[i].start < rs[i].size);
		}
		CHECK_EQ(found, hits);
		rc = rcs[at];
		if (rc == VAS_OK)
			r = rs[at];
		atomic_fetch_add_explicit(&batch_checks, 1,
					  memory_order_relaxed);
	}
	/* Acquire: pairs with the releases in watch_set() and watch_end(). */
	if (atomic_load_explicit(&wt->gen, memory_order_acquire) != g1)
		return; /* the publication ended meanwhile */
	bool ok = rc == VAS_OK && r.allocated && r.tag == tag &&
		  r.start <= addr && addr - r.start < r.size && r.start >= lo &&
		  r.start + r.size <= hi;
	if (!ok) {
		fprintf(stderr,
			"reader: lookup %#" PRIx64 " of [%#" PRIx64
			", %#" PRIx64 ") tag %#" PRIxPTR
			", held by a writer throughout (its call frees "
			"[%#" PRIx64 ", %#" PRIx64 ")): %d (%s)\n",
			addr, lo, hi, tag, fa, fe, rc, vas_strerror(rc));
		report("  got", addr, &r);
	}
	CHECK(ok);
	atomic_fetch_add_explicit(&watch_checks, 1, memory_order_relaxed);
}

static void reader_step(struct reader *rd)
{
	uint64_t r = xrnd(&rd->rng) % 100;
	if (r < 50) {
		reader_watch(rd);
		return;
	}
	if (r < 82) {
		uint64_t addr = BASE + xrnd(&rd->rng) % (NQ * Q);
		struct vas_range got = { 0 };
		int rc = vas_lookup(rd->c, addr, &got);
		CHECK(rc == VAS_OK || rc == VAS_ENOENT);
		if (rc == VAS_OK) {
			check_reported(&got, addr);
			CHECK(got.allocated && got.start <= addr &&
			      addr - got.start < got.size);
		}
		atomic_fetch_add_explicit(&reader_lookups, 1,
					  memory_order_relaxed);
		return;
	}
	if (r < 84) {
		struct vas_range got;
		CHECK_EQ(vas_lookup(rd->c, END + xrnd(&rd->rng) % Q, &got),
			 VAS_ERANGE);
		CHECK_EQ(vas_lookup(rd->c, BASE - 1, &got), VAS_ERANGE);
		return;
	}
	if (r < 86) {
		struct vas_stats st;
		vas_stats(vas, &st);
		CHECK(st.free_bytes <= NQ * Q && st.largest_free <= NQ * Q);
		CHECK(st.height >= 1 && st.height <= VAS_MAX_HEIGHT);
		return;
	}
	/* Windows of one byte (one range), of some ranges, of many. */
	rd->a = BASE + xrnd(&rd->rng) % (NQ * Q);
	rd->b = rd->a + 1;
	if (r >= 92)
		rd->b += xrnd(&rd->rng) % (r < 99 ? 64 * Q : NQ * Q);
	if (rd->b > END)
		rd->b = END;
	rd->n = 0;
	CHECK_EQ(vas_iterate(rd->c, rd->a, rd->b, reader_fn, rd), VAS_OK);
	CHECK(rd->n >= 1); /* something holds every address */
}

static void *reader_main(void *arg)
{
	/*
	 * Starts like writer_main(): each role registers its own context and
	 * counts its own operations.
	 */
	struct reader *rd = arg;
	lf_platform_user_set_cpu(rd->id);
	CHECK_FATAL(vas_ctx_register(vas, rd->c) == VAS_OK);
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		for (int i = 0; i < 32; i++)
			reader_step(rd);
	CHECK_EQ(vas_ctx_unregister(rd->c), VAS_OK);
	return NULL;
}

static int piece_cmp(const void *x, const void *y)
{
	const struct piece *a = x, *b = y;
	return a->start < b->start ? -1 : a->start > b->start;
}

/* Quiescent: the allocated ranges are exactly the pieces held. */
static void check_held_all(struct vas_ctx *c, struct writer *w)
{
	struct piece *all = calloc(nwriters * HELD, sizeof(*all));
	unsigned n = 0;
	CHECK_FATAL(all);
	for (unsigned i = 0; i < nwriters; i++)
		for (unsigned j = 0; j < w[i].nheld; j++)
			all[n++] = w[i].held[j];
	qsort(all, n, sizeof(*all), piece_cmp);
	struct vt_snap s = { 0 };
	CHECK_EQ(vt_snap_take(c, BASE, END, &s), VAS_OK);
	unsigned k = 0;
	uint64_t at = BASE;
	for (size_t i = 0; i < s.n; i++) {
		const struct vas_range *r = &s.r[i];
		CHECK_EQ(r->start, at);
		at = r->start + r->size;
		if (i && !r->allocated && !caching)
			CHECK(s.r[i - 1].allocated); /* coalesced */
		if (!r->allocated)
			continue;
		bool ok = k < n && all[k].start == r->start &&
			  all[k].size == r->size && all[k].tag == r->tag;
		if (!ok)
			report("allocated but not held", r->start, r);
		CHECK(ok);
		k++;
	}
	CHECK_EQ(at, END);
	CHECK_EQ(k, n);
	vt_snap_free(&s);
	free(all);
}

static void check_vas(void)
{
	uint64_t where = 0;
	int inv = vas_check(vas, &where);
	if (inv)
		fprintf(stderr, "invariant A%d broken at %#" PRIx64 "\n", inv,
			where);
	CHECK_EQ(inv, 0);
}

int main(int argc, char **argv)
{
	nwriters = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
	unsigned ms = argc > 2 ? (unsigned)atoi(argv[2]) : 2000;
	uint32_t keys = argc > 3 ? (uint32_t)atoi(argv[3]) : 8;
	caching = argc > 4 && !strcmp(argv[4], "caching");
	CHECK_FATAL(nwriters >= 1 && nwriters + READERS <= MAXT);
	struct vas_ctx *mc;
	vas = vt_stress_vas(&src, BASE, NQ, Q, keys, &mc);
	if (caching)
		CHECK_FATAL(vas_set_caching(vas, true) == VAS_OK);
	pthread_barrier_init(&stopped, NULL, nwriters + 1);
	pthread_barrier_init(&checked, NULL, nwriters + 1);
	pthread_barrier_init(&emptied, NULL, nwriters + 1);
	pthread_barrier_init(&unregistered, NULL, nwriters + 1);
	static struct writer w[MAXT];
	static struct reader rd[READERS];
	pthread_t t[MAXT], tr[READERS];
	for (unsigned i = 0; i < nwriters; i++) {
		atomic_init(&watches[i].gen, 1);
		w[i] = (struct writer){ .id = i,
					.c = vt_zalloc(sizeof(*w[i].c)),
					.rng = 0x9e3779b97f4a7c15ull *
					       (i + 1) };
		pthread_create(&t[i], NULL, writer_main, &w[i]);
	}
	for (unsigned i = 0; i < READERS; i++) {
		rd[i] = (struct reader){ .id = nwriters + i,
					 .c = vt_zalloc(sizeof(struct vas_ctx)),
					 .rng = 0x1234567ull * (i + 7) };
		pthread_create(&tr[i], NULL, reader_main, &rd[i]);
	}
	struct timespec d = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&d, NULL);
	atomic_store(&stop, true);
	for (unsigned i = 0; i < READERS; i++)
		pthread_join(tr[i], NULL);
	/* The readers did their work: lookups, held bytes, batches. */
	CHECK(atomic_load(&reader_lookups) > 0);
	CHECK(atomic_load(&batch_checks) > 0);
	CHECK(atomic_load(&watch_checks) > atomic_load(&batch_checks));
	pthread_barrier_wait(&stopped);
	check_vas();
	check_held_all(mc, w);
	pthread_barrier_wait(&checked);
	pthread_barrier_wait(&emptied);
	check_vas();
	struct vas_stats st;
	vas_stats(vas, &st);
	CHECK(!caching || st.local > 0); /* some writes were leaf-local */
	unsigned long local = (unsigned long)st.local;
	if (caching) /* every held range back to the free ranges */
		CHECK_EQ(vas_set_caching(vas, false), VAS_OK);
	check_vas();
	vas_stats(vas, &st);
	CHECK_EQ(st.ranges, 0);
	CHECK_EQ(st.free_ranges, 1);
	CHECK_EQ(st.free_bytes, NQ * Q);
	CHECK_EQ(st.largest_free, NQ * Q);
	struct vt_snap s = { 0 };
	CHECK_EQ(vt_snap_take(mc, BASE, END, &s), VAS_OK);
	CHECK(s.n == 1 && !s.r[0].allocated && s.r[0].start == BASE &&
	      s.r[0].size == NQ * Q);
	vt_snap_free(&s);
	/* Writers refuse nothing but ENOSPC and EBUSY (alloc_at). */
	unsigned long ops = 0, allocs = 0, frees = 0, lookups = 0, nospc = 0;
	for (unsigned i = 0; i < nwriters; i++) {
		ops += w[i].ops;
		allocs += w[i].allocs;
		frees += w[i].frees;
		lookups += w[i].lookups;
		nospc += w[i].nospc;
	}
	CHECK_EQ(vt_err(&st, VAS_ENOSPC), nospc);
	CHECK_EQ(vt_rejected(&st),
		 vt_err(&st, VAS_ENOSPC) + vt_err(&st, VAS_EBUSY));
	pthread_barrier_wait(&unregistered);
	for (unsigned i = 0; i < nwriters; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(vas_ctx_unregister(mc), VAS_OK);
	vas_stats(vas, &st);
	CHECK_EQ(vas_destroy(vas), VAS_OK);
	CHECK_EQ(atomic_load(&src.live), 0);
	printf("stress_vas: %u writers + %u readers, %u-key nodes: %lu ops "
	       "(%lu allocs, %lu frees, %lu ENOSPC, %lu own lookups), %lu "
	       "reader lookups, %lu of held bytes (%lu in batches), %lu "
	       "ranges iterated; "
	       "%" PRIu64 " restarts, %" PRIu64 " nodes retired, %lu from the "
	       "source, %lu leaf-local writes\n",
	       nwriters, READERS, keys, ops, allocs, frees, nospc, lookups,
	       atomic_load(&reader_lookups), atomic_load(&watch_checks),
	       atomic_load(&batch_checks), atomic_load(&reader_ranges),
	       st.restarts, st.nodes_retired, atomic_load(&src.gets), local);
	for (unsigned i = 0; i < nwriters; i++)
		free(w[i].c);
	for (unsigned i = 0; i < READERS; i++)
		free(rd[i].c);
	free(mc);
	free(vas);
	return check_exit("stress_vas");
}
