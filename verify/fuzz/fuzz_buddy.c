/*
 * fuzz_buddy.c: libFuzzer harness for the lock-free buddy (buddy/buddy.h),
 * with the locked buddy (buddy/buddy_locked.h) as the reference model, as
 * verify/buddy/model_buddy.c uses it, but with the operation sequence read
 * from the fuzzer's input instead of a seeded generator.
 *
 * Input: a header, then operations until the input ends.
 *   byte 0   bits 0-1 the regions: 0 four regions with holes, an odd
 *            start and two adjacent regions (buddies by number that must
 *            never merge); 1 one region of 64 frames; 2 1,024 frames from
 *            pfn 7; 3 regions decoded from the input (may be invalid: then
 *            buddy_meta_size, buddy_locked_meta_size and both inits must
 *            refuse them, and that is the whole run)
 *            bits 2-3 CPU contexts - 1 (1 to 4, all used from this one
 *            thread); bits 4-7 contexts whose cache is off
 *   then     opcode byte, its arguments (see fb_step)
 *
 * Checked: every allocation of the zone is possible at the same address on
 * the reference (so both hold the same blocks); an ENOMEM of the zone is
 * an ENOMEM there too; bad input gets the same error code from both and
 * changes no frame of the zone (a snapshot before and after); a NULL
 * context or address is EINVAL; allocations are aligned, inside a region,
 * never overlapping (an owner per frame); allocs, frees, failures and
 * rejections by code are counted alike; free frames (cached included)
 * agree after every operation; buddy_zone_check every 8 operations and on
 * demand; at quiescence (caches drained) the two are equal frame by frame;
 * at the end everything is freed and the zone is one coalesced free set.
 */
#include <string.h>

#include "buddy.h"
#include "buddy_locked.h"
#include "fz.h"

#define FB_MAXCPU 4
#define FB_MAXLIVE 256
#define FB_CHECK_EVERY 8

struct fb_live {
	uint64_t addr;
	uint64_t frames; /* a block: 2^order; a run: any count */
	unsigned order;
	bool run;
};

struct fb {
	struct fz f;
	struct buddy_region rg[4];
	unsigned nrg, ncpus;
	struct buddy_zone *z;
	struct buddy_locked *ref;
	void *zmeta, *rmeta;
	struct fb_live live[FB_MAXLIVE];
	unsigned nlive;
	uint8_t *owned; /* per pfn below span */
	uint64_t span;
	/* A snapshot of every frame (kind << 8 | order), for bad input. */
	uint16_t *snap;
	uint64_t nframes;
	/* A run is one allocation of the zone, one per piece on the reference.
	 */
	uint64_t ref_extra_allocs;
};

#define REQ(m, cond, ...) FZ_REQUIRE(&(m)->f, cond, __VA_ARGS__)

static const uint64_t fb_fsz = BUDDY_FRAME_SIZE;

/* ---- set-up ---- */

static void fb_layout(struct fb *m, unsigned which)
{
	static const uint64_t fixed[3][4][2] = {
		{ { 256, 300 }, { 1029, 100 }, { 2048, 512 }, { 2560, 200 } },
		{ { 0, 64 } },
		{ { 7, 1024 } },
	};
	static const unsigned nfixed[3] = { 4, 1, 1 };
	m->nrg = nfixed[which];
	for (unsigned i = 0; i < m->nrg; i++)
		m->rg[i] = (struct buddy_region){ fixed[which][i][0] * fb_fsz,
						  fixed[which][i][1] * fb_fsz };
}

/*
 * Regions from the input: a count, then per region a flags byte, a gap or
 * base and a size. Mostly valid (sorted, after a gap), sometimes not.
 */
static bool fb_layout_raw(struct fb *m)
{
	uint64_t end = 0;
	bool valid = true;
	m->nrg = 1 + fz_u8(&m->f) % 4;
	for (unsigned i = 0; i < m->nrg; i++) {
		uint8_t fl = fz_u8(&m->f);
		uint64_t b =
			fl & 1 ? fz_u16(&m->f) : end / fb_fsz + fz_u8(&m->f);
		uint64_t n = fz_u16(&m->f) % 2048;
		m->rg[i].base = b * fb_fsz + (fl & 2 ? 512 : 0);
		m->rg[i].size = n * fb_fsz + (fl & 4 ? 8 : 0);
		if (fl & 8) { /* wraps past 2^64 */
			m->rg[i].base = (uint64_t)0 - fb_fsz * (1 + (fl >> 4));
			m->rg[i].size = fb_fsz * (2 + (fl >> 4));
		}
		const struct buddy_region *r = &m->rg[i];
		if (r->size == 0 || (r->base | r->size) % fb_fsz ||
		    r->base + r->size < r->base || r->base < end)
			valid = false;
		end = r->base + r->size;
	}
	return valid;
}

/* Invalid regions: every entry point refuses them, changing nothing. */
static void fb_refuse(struct fb *m, unsigned ncpus)
{
	static _Alignas(64) char meta[4096];
	struct buddy_zone *z = NULL;
	struct buddy_locked *l = NULL;
	REQ(m, buddy_meta_size(m->rg, m->nrg, ncpus) == 0, "meta size");
	REQ(m, buddy_locked_meta_size(m->rg, m->nrg) == 0, "locked size");
	REQ(m,
	    buddy_zone_init(&z, meta, sizeof(meta), m->rg, m->nrg, ncpus) ==
			    BUDDY_EINVAL &&
		    z == NULL,
	    "init of invalid regions");
	REQ(m,
	    buddy_locked_init(&l, meta, sizeof(meta), m->rg, m->nrg) ==
			    BUDDY_EINVAL &&
		    l == NULL,
	    "locked init of invalid regions");
}

static void *fb_meta(size_t n)
{
	void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
	if (p == NULL)
		abort();
	return p;
}

/* Set up both allocators; false if the regions are (rightly) refused. */
static bool fb_init(struct fb *m)
{
	uint8_t h = fz_u8(&m->f);
	m->ncpus = 1 + (h >> 2) % 4;
	if ((h & 3) == 3) {
		if (!fb_layout_raw(m)) {
			fb_refuse(m, m->ncpus);
			return false;
		}
	} else {
		fb_layout(m, h & 3);
	}
	size_t zs = buddy_meta_size(m->rg, m->nrg, m->ncpus);
	size_t rs = buddy_locked_meta_size(m->rg, m->nrg);
	REQ(m, zs != 0 && rs != 0, "valid regions refused: %zu %zu", zs, rs);
	REQ(m, buddy_meta_size(m->rg, m->nrg, 0) == 0, "0 CPUs");
	m->zmeta = fb_meta(zs);
	m->rmeta = fb_meta(rs);
	/* Too small, misaligned: refused before anything is written. */
	REQ(m,
	    buddy_zone_init(&m->z, m->zmeta, zs - 1, m->rg, m->nrg, m->ncpus) ==
		    BUDDY_ENOSPC,
	    "short metadata");
	REQ(m,
	    buddy_zone_init(&m->z, (char *)m->zmeta + 8, zs, m->rg, m->nrg,
			    m->ncpus) == BUDDY_EINVAL,
	    "misaligned");
	REQ(m,
	    buddy_zone_init(&m->z, m->zmeta, zs, m->rg, m->nrg, m->ncpus) ==
		    BUDDY_OK,
	    "init");
	REQ(m,
	    buddy_locked_init(&m->ref, m->rmeta, rs, m->rg, m->nrg) == BUDDY_OK,
	    "locked init");
	REQ(m, buddy_zone_cpu(m->z, m->ncpus) == NULL, "cpu out of range");
	for (unsigned i = 0; i < m->ncpus; i++)
		if (h >> (4 + i) & 1)
			buddy_cpu_cache_enable(buddy_zone_cpu(m->z, i), false);
	const struct buddy_region *last = &m->rg[m->nrg - 1];
	m->span = (last->base + last->size) / fb_fsz;
	m->owned = calloc(m->span + 1, 1);
	struct buddy_stats st;
	buddy_zone_stats(m->z, &st);
	m->nframes = st.total_frames;
	m->snap = calloc(m->nframes + 1, sizeof(*m->snap));
	if (m->owned == NULL || m->snap == NULL)
		abort();
	return true;
}

static void fb_fini(struct fb *m)
{
	free(m->zmeta);
	free(m->rmeta);
	free(m->owned);
	free(m->snap);
}

/* ---- the model's bookkeeping ---- */

static struct buddy_cpu *fb_cpu(struct fb *m)
{
	return buddy_zone_cpu(m->z, fz_u8(&m->f) % m->ncpus);
}

/* Orders 0-9 mostly, sometimes large or past BUDDY_MAX_ORDER. */
static unsigned fb_order(struct fb *m)
{
	uint8_t b = fz_u8(&m->f);
	return b >= 248 ? 18u + (b - 248u) : b % 10u;
}

static void fb_own(struct fb *m, uint64_t addr, uint64_t frames, bool own)
{
	/*
	 * Finds the frame's region as model_buddy.c's model does, written
	 * again on purpose: each harness keeps its own reference model, so
	 * that one model's bug cannot hide in both.
	 */
	uint64_t pfn = addr / fb_fsz;
	bool inside = false;
	for (unsigned i = 0; i < m->nrg; i++) {
		uint64_t b = m->rg[i].base / fb_fsz;
		uint64_t e = b + m->rg[i].size / fb_fsz;
		inside |= pfn >= b && pfn + frames <= e;
	}
	REQ(m, inside && addr % fb_fsz == 0,
	    "block %#llx +%llu frames outside every region",
	    (unsigned long long)addr, (unsigned long long)frames);
	for (uint64_t i = 0; i < frames; i++) {
		REQ(m, m->owned[pfn + i] == (own ? 0 : 1), "frame %#llx %s",
		    (unsigned long long)(pfn + i),
		    own ? "handed out twice" : "freed but not owned");
		m->owned[pfn + i] = own;
	}
}

static void fb_add(struct fb *m, uint64_t addr, uint64_t frames, unsigned order,
		   bool run)
{
	fb_own(m, addr, frames, true);
	REQ(m, m->nlive < FB_MAXLIVE, "live table full");
	m->live[m->nlive++] = (struct fb_live){ addr, frames, order, run };
}

/* The order of the largest power of two <= n. */
static unsigned fb_log2(uint64_t n)
{
	return 63u - (unsigned)__builtin_clzll(n);
}

/* The pieces of a run on the reference, as buddy.h lays them out. */
static void fb_ref_run(struct fb *m, uint64_t addr, uint64_t n)
{
	for (uint64_t off = 0; off < n;) {
		unsigned o = fb_log2(n - off);
		int rr = buddy_locked_alloc_at(m->ref, addr + off * fb_fsz, o);
		REQ(m, rr == BUDDY_OK, "run piece at +%llu order %u: %d",
		    (unsigned long long)off, o, rr);
		off += (uint64_t)1 << o;
		m->ref_extra_allocs += off < n;
	}
}

/* Would free(a, o) free a live block or a piece of a live run? */
static bool fb_good_free(const struct fb *m, uint64_t a, unsigned o)
{
	for (unsigned i = 0; i < m->nlive; i++) {
		const struct fb_live *l = &m->live[i];
		uint64_t n = l->run ? l->frames : 1;
		for (uint64_t off = 0; off < n;) {
			unsigned po = l->run ? fb_log2(n - off) : l->order;
			if (l->addr + off * fb_fsz == a && po == o)
				return true;
			off += (uint64_t)1 << po;
		}
	}
	return false;
}

/* Would free_run(a, n) succeed: is every piece a good free? */
static bool fb_good_run(const struct fb *m, uint64_t a, uint64_t n)
{
	if (n == 0 || n > ((uint64_t)1 << BUDDY_MAX_ORDER))
		return false;
	for (uint64_t off = 0; off < n;) {
		unsigned o = fb_log2(n - off);
		if (!fb_good_free(m, a + off * fb_fsz, o))
			return false;
		off += (uint64_t)1 << o;
	}
	return true;
}

/* ---- checks ---- */

static void fb_snap(struct fb *m, bool compare)
{
	uint64_t x = 0;
	for (unsigned i = 0; i < m->nrg; i++)
		for (uint64_t a = m->rg[i].base;
		     a < m->rg[i].base + m->rg[i].size; a += fb_fsz, x++) {
			unsigned k, o;
			REQ(m, buddy_zone_frame(m->z, a, &k, &o) == BUDDY_OK,
			    "frame %#llx", (unsigned long long)a);
			uint16_t s = (uint16_t)(k << 8 | o);
			REQ(m, !compare || m->snap[x] == s,
			    "bad input changed frame %#llx: %#x -> %#x",
			    (unsigned long long)a, m->snap[x], s);
			m->snap[x] = s;
		}
}

/* Counters and free frames agree; after every operation. */
static void fb_compare_stats(struct fb *m)
{
	struct buddy_stats zs, rs;
	buddy_zone_stats(m->z, &zs);
	buddy_locked_stats(m->ref, &rs);
	REQ(m, zs.free_frames + zs.cached_frames == rs.free_frames,
	    "free frames %llu + %llu cached, reference %llu",
	    (unsigned long long)zs.free_frames,
	    (unsigned long long)zs.cached_frames,
	    (unsigned long long)rs.free_frames);
	REQ(m,
	    zs.allocs + m->ref_extra_allocs == rs.allocs &&
		    zs.frees == rs.frees && zs.failed == rs.failed &&
		    zs.rejected == rs.rejected,
	    "counts: allocs %llu/%llu frees %llu/%llu failed %llu/%llu "
	    "rejected %llu/%llu",
	    (unsigned long long)zs.allocs, (unsigned long long)rs.allocs,
	    (unsigned long long)zs.frees, (unsigned long long)rs.frees,
	    (unsigned long long)zs.failed, (unsigned long long)rs.failed,
	    (unsigned long long)zs.rejected, (unsigned long long)rs.rejected);
	for (unsigned e = 1; e < BUDDY_NERR; e++)
		REQ(m, zs.rejected_by[e] == rs.rejected_by[e],
		    "rejected by %s: %llu, reference %llu",
		    buddy_strerror(-(int)e),
		    (unsigned long long)zs.rejected_by[e],
		    (unsigned long long)rs.rejected_by[e]);
}

static void fb_check(struct fb *m, bool quiesce)
{
	uint64_t frame = 0;
	if (quiesce)
		buddy_zone_drain_all(fb_cpu(m));
	int inv = buddy_zone_check(m->z, quiesce, &frame);
	REQ(m, inv == 0, "buddy_zone_check: B%d at frame %llu", inv,
	    (unsigned long long)frame);
	REQ(m, buddy_locked_check(m->ref, &frame) == 0, "locked check");
	fb_compare_stats(m);
	if (!quiesce)
		return;
	for (unsigned i = 0; i < m->nrg; i++)
		for (uint64_t a = m->rg[i].base;
		     a < m->rg[i].base + m->rg[i].size; a += fb_fsz) {
			unsigned k1, o1, k2, o2;
			REQ(m,
			    buddy_zone_frame(m->z, a, &k1, &o1) == BUDDY_OK &&
				    buddy_locked_frame(m->ref, a, &k2, &o2) ==
					    BUDDY_OK,
			    "frame %#llx", (unsigned long long)a);
			REQ(m, k1 == k2 && o1 == o2,
			    "quiescent frame %#llx: kind %u order %u, "
			    "reference kind %u order %u",
			    (unsigned long long)a, k1, o1, k2, o2);
		}
}

/* ---- operations ---- */

static void fb_alloc(struct fb *m)
{
	struct buddy_cpu *c = fb_cpu(m);
	unsigned o = fb_order(m);
	uint64_t a = 0, ra = 0;
	int rc = buddy_alloc(c, o, &a);
	if (rc == BUDDY_OK) {
		REQ(m, a % (fb_fsz << o) == 0, "alloc %u: %#llx unaligned", o,
		    (unsigned long long)a);
		int rr = buddy_locked_alloc_at(m->ref, a, o);
		REQ(m, rr == BUDDY_OK, "alloc %u at %#llx: reference %d", o,
		    (unsigned long long)a, rr);
		fb_add(m, a, (uint64_t)1 << o, o, false);
		return;
	}
	int rr = buddy_locked_alloc(m->ref, o, &ra);
	REQ(m, rc == rr && (rc == BUDDY_ENOMEM || rc == BUDDY_EINVAL),
	    "alloc order %u: %d, reference %d", o, rc, rr);
}

static void fb_alloc_below(struct fb *m)
{
	struct buddy_cpu *c = fb_cpu(m);
	unsigned o = fb_order(m);
	uint16_t lb = fz_u16(&m->f);
	uint64_t limit = lb == 0xffff
				 ? UINT64_MAX
				 : (uint64_t)(lb % (m->span + 64)) * fb_fsz +
					   (lb & 0x8000 ? 100 : 0);
	uint64_t a = 0, ra = 0;
	int rc = buddy_alloc_below(c, o, limit, &a);
	if (rc == BUDDY_OK) {
		REQ(m, a % (fb_fsz << o) == 0 && a + (fb_fsz << o) <= limit,
		    "alloc_below %u %#llx: %#llx", o, (unsigned long long)limit,
		    (unsigned long long)a);
		int rr = buddy_locked_alloc_at(m->ref, a, o);
		REQ(m, rr == BUDDY_OK, "alloc_below at %#llx: reference %d",
		    (unsigned long long)a, rr);
		fb_add(m, a, (uint64_t)1 << o, o, false);
		return;
	}
	int rr = buddy_locked_alloc_below(m->ref, o, limit, &ra);
	REQ(m, rc == rr, "alloc_below order %u limit %#llx: %d, reference %d",
	    o, (unsigned long long)limit, rc, rr);
}

static void fb_alloc_at(struct fb *m)
{
	struct buddy_cpu *c = fb_cpu(m);
	unsigned o = fb_order(m);
	uint8_t fl = fz_u8(&m->f);
	uint64_t pfn = fz_u16(&m->f) % (m->span + 16);
	if (fl & 1 && o < 64)
		pfn &= ~(((uint64_t)1 << o) - 1);
	uint64_t a = pfn * fb_fsz + (fl & 2 ? 8 : 0);
	if (fl & 4) /* an address past every region, or one that wraps */
		a = (uint64_t)0 - (fb_fsz << (fl >> 4));
	int rc = buddy_alloc_at(c, a, o);
	int rr = buddy_locked_alloc_at(m->ref, a, o);
	REQ(m, rc == rr, "alloc_at %#llx order %u: %d, reference %d",
	    (unsigned long long)a, o, rc, rr);
	if (rc == BUDDY_OK)
		fb_add(m, a, (uint64_t)1 << o, o, false);
}

static void fb_alloc_run(struct fb *m)
{
	static const uint64_t odd[4] = { 0, ((uint64_t)1 << 20),
					 ((uint64_t)1 << 20) + 1, UINT64_MAX };
	struct buddy_cpu *c = fb_cpu(m);
	uint16_t b = fz_u16(&m->f);
	uint64_t n = b & 0x8000 ? odd[b & 3] : 1 + b % 300u;
	uint64_t a = 0, ra = 0;
	int rc = buddy_alloc_run(c, n, &a);
	if (rc == BUDDY_OK) {
		fb_ref_run(m, a, n);
		fb_add(m, a, n, 0, true);
		return;
	}
	int rr = buddy_locked_alloc_run(m->ref, n, &ra);
	REQ(m, rc == rr, "alloc_run %llu: %d, reference %d",
	    (unsigned long long)n, rc, rr);
}

/* Free live entry i through context c, on both. */
static void fb_free_live(struct fb *m, unsigned i, struct buddy_cpu *c)
{
	struct fb_live l = m->live[i];
	int rc = l.run ? buddy_free_run(c, l.addr, l.frames)
		       : buddy_free(c, l.addr, l.order);
	int rr = l.run ? buddy_locked_free_run(m->ref, l.addr, l.frames)
		       : buddy_locked_free(m->ref, l.addr, l.order);
	REQ(m, rc == BUDDY_OK && rr == BUDDY_OK, "free %#llx %s %llu: %d, %d",
	    (unsigned long long)l.addr, l.run ? "run" : "order",
	    (unsigned long long)(l.run ? l.frames : l.order), rc, rr);
	fb_own(m, l.addr, l.frames, false);
	m->live[i] = m->live[--m->nlive];
}

static void fb_free(struct fb *m)
{
	if (m->nlive == 0)
		return;
	unsigned i = fz_u8(&m->f) % m->nlive;
	fb_free_live(m, i, fb_cpu(m));
}

/* A bad free: both refuse it with one code, and the zone is unchanged. */
static void fb_bad_free_call(struct fb *m, struct buddy_cpu *c, uint64_t a,
			     uint64_t n, bool run)
{
	fb_snap(m, false);
	int rc = run ? buddy_free_run(c, a, n) : buddy_free(c, a, (unsigned)n);
	int rr = run ? buddy_locked_free_run(m->ref, a, n)
		     : buddy_locked_free(m->ref, a, (unsigned)n);
	REQ(m, rc != BUDDY_OK && rc == rr,
	    "bad %s %#llx %llu: %d, reference %d", run ? "free_run" : "free",
	    (unsigned long long)a, (unsigned long long)n, rc, rr);
	fb_snap(m, true);
}

/*
 * Inside a live block with any order (ETAIL, EORDER), a free or
 * misaligned frame (EDOUBLE, EALIGN), outside (ERANGE), a bad order
 * (EINVAL), a freed block again (EDOUBLE), a run with a wrong count.
 */
static void fb_bad_free(struct fb *m)
{
	struct buddy_cpu *c = fb_cpu(m);
	uint8_t k = fz_u8(&m->f);
	uint64_t a;
	unsigned o = fb_order(m);
	if ((k & 3) == 0 && m->nlive) {
		const struct fb_live *l = &m->live[fz_u8(&m->f) % m->nlive];
		a = l->addr + fz_below(&m->f, (unsigned)l->frames) * fb_fsz;
	} else if ((k & 3) == 1 && m->nlive) { /* free it, then again */
		unsigned i = fz_u8(&m->f) % m->nlive;
		struct fb_live l = m->live[i];
		fb_free_live(m, i, fb_cpu(m));
		a = l.addr;
		o = l.run ? fb_log2(l.frames) : l.order;
		if (l.run && k & 4) {
			fb_bad_free_call(m, c, a, l.frames, true);
			return;
		}
	} else if ((k & 3) == 2 && m->nlive) { /* a run, miscounted */
		const struct fb_live *l = &m->live[fz_u8(&m->f) % m->nlive];
		uint64_t n = l->frames + (k >> 4) - 8;
		if (k & 4)
			n = (uint64_t)0 - (k >> 4);
		if (fb_good_run(m, l->addr, n))
			return;
		fb_bad_free_call(m, c, l->addr, n, true);
		return;
	} else {
		a = (uint64_t)(fz_u16(&m->f) % (m->span + 16)) * fb_fsz;
	}
	if (k & 8)
		a += 512;
	if (fb_good_free(m, a, o))
		return;
	fb_bad_free_call(m, c, a, o, false);
}

/* NULL context or address: EINVAL, uncounted, nothing changed. */
static void fb_null(struct fb *m)
{
	struct buddy_cpu *c = fb_cpu(m);
	uint64_t a;
	unsigned o = fb_order(m) % 4;
	fb_snap(m, false);
	REQ(m, buddy_alloc(c, o, NULL) == BUDDY_EINVAL, "alloc NULL");
	REQ(m, buddy_alloc(NULL, o, &a) == BUDDY_EINVAL, "alloc NULL cpu");
	REQ(m, buddy_alloc_below(c, o, UINT64_MAX, NULL) == BUDDY_EINVAL,
	    "alloc_below NULL");
	REQ(m, buddy_alloc_run(c, 3, NULL) == BUDDY_EINVAL, "alloc_run NULL");
	REQ(m, buddy_alloc_at(NULL, m->rg[0].base, 0) == BUDDY_EINVAL,
	    "alloc_at NULL cpu");
	REQ(m, buddy_free(NULL, m->rg[0].base, 0) == BUDDY_EINVAL,
	    "free NULL cpu");
	REQ(m, buddy_free_run(NULL, m->rg[0].base, 1) == BUDDY_EINVAL,
	    "free_run NULL cpu");
	fb_snap(m, true);
}

/* Frame queries: the same error codes; a live frame the same kind. */
static void fb_frame(struct fb *m)
{
	uint64_t a = (uint64_t)fz_u16(&m->f) % (m->span + 16) * fb_fsz;
	if (fz_u8(&m->f) & 1)
		a += 64;
	unsigned k1 = 0, o1 = 0, k2 = 0, o2 = 0;
	int rc = buddy_zone_frame(m->z, a, &k1, &o1);
	int rr = buddy_locked_frame(m->ref, a, &k2, &o2);
	REQ(m, rc == rr, "frame %#llx: %d, reference %d", (unsigned long long)a,
	    rc, rr);
	if (rc == BUDDY_OK && m->owned[a / fb_fsz])
		REQ(m, k1 == k2 && o1 == o2,
		    "live frame %#llx: kind %u order %u, reference %u %u",
		    (unsigned long long)a, k1, o1, k2, o2);
	else if (rc == BUDDY_OK)
		REQ(m,
		    k1 == BUDDY_FRAME_FREE || k1 == BUDDY_FRAME_CACHED ||
			    k1 == BUDDY_FRAME_TAIL,
		    "free frame %#llx is kind %u", (unsigned long long)a, k1);
}

static void fb_step(struct fb *m)
{
	/* One case per operation, grouped by weight (the input byte mod 16). */
	uint8_t op = fz_u8(&m->f);
	switch (op % 16) {
	case 0:
	case 1:
	case 2:
		fb_alloc(m);
		break;
	case 3:
		fb_alloc_below(m);
		break;
	case 4:
		fb_alloc_at(m);
		break;
	case 5:
		fb_alloc_run(m);
		break;
	case 6:
	case 7:
	case 8:
		fb_free(m);
		break;
	case 9:
		fb_bad_free(m);
		break;
	case 10:
		buddy_cpu_drain(fb_cpu(m));
		break;
	case 11:
		buddy_zone_drain_all(fb_cpu(m));
		break;
	case 12:
		buddy_zone_sweep(fb_cpu(m));
		break;
	case 13: {
		struct buddy_cpu *c = fb_cpu(m);
		buddy_cpu_cache_enable(c, fz_u8(&m->f) & 1);
		break;
	}
	case 14:
		if (op & 0x10)
			fb_null(m);
		else
			fb_frame(m);
		break;
	default:
		fb_check(m, op & 0x10);
		break;
	}
	fb_compare_stats(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fb *m = calloc(1, sizeof(*m));
	if (m == NULL)
		abort();
	fz_init(&m->f, data, size);
	if (!fb_init(m)) {
		free(m);
		return 0;
	}
	fb_check(m, false);
	for (m->f.op = 0; fz_more(&m->f); m->f.op++) {
		fb_step(m);
		if (m->f.op % FB_CHECK_EVERY == FB_CHECK_EVERY - 1)
			fb_check(m, false);
	}
	while (m->nlive) { /* through whichever contexts the tail says */
		m->f.at = m->f.n;
		fb_free(m);
	}
	fb_check(m, true);
	struct buddy_stats st;
	buddy_zone_stats(m->z, &st);
	REQ(m, st.free_frames == st.total_frames, "not all free at the end");
	fb_fini(m);
	free(m);
	return 0;
}
