/*
 * fuzz_vas.c: libFuzzer harness for the virtual address range allocator
 * (vaspace/vas.h), with the sorted-array reference of verify/vaspace/
 * vt_ref.h as the model, as verify/vaspace/model_vas.c uses it, but with
 * the operation sequence read from the fuzzer's input.
 *
 * Input: a header, then operations until the input ends.
 *   byte 0   bits 0-1 the region: 0 an odd base with 512 quanta of 4 KiB;
 *            1 64 quanta at address 0 (ENOSPC often); 2 2,000 quanta of
 *            512 bytes just below 2^64 (aligned addresses past the end
 *            wrap); 3 base, quantum and size from the input (may be
 *            invalid: vas_create must then refuse them with the right code
 *            and hold no node, and that is the whole run)
 *            bits 2-3 contexts - 1 (1 to 4, on this one thread)
 *            bits 4-5 the node source fails the first, second or third
 *            get of vas_create (ENOMEM, no node held), then it is created
 *            bit 6 per-context caching on from the start (vas_set_caching)
 *   byte 1   entries per node (3 to 16, or the most; raw in mode 3)
 *   byte 2   high-water mark of the node freelist (0 to 8)
 *   then     opcode byte, its arguments (see fv_step; opcode 15 mod 16
 *            holds vas_map, replace, unmap, protect, find/next/prev, and
 *            0xcf turns caching on or off)
 *
 * Checked, as model_vas does: every return code and every address chosen
 * equals the reference's; lookups around what each call touched agree;
 * every 16 operations (and on demand) the whole range list (vas_iterate),
 * the figures of vas_stats (rejected[] by code included) and vas_check.
 * Beyond it: several contexts, each registered and unregistered at will
 * (a call on an unregistered one is ENOTREG and changes nothing; a second
 * register or unregister is refused); a node source that fails the get
 * the input says (ENOMEM exactly when it failed in that call, the vas then
 * exactly as before); at the end everything is freed, vas_destroy refuses
 * while a context is registered, and after it the source holds no node.
 *
 * With caching on (docs/design.md 3.3: small allocations and frees are
 * leaf-local writes in the context's cached and reserved ranges, and
 * every other placement is made outside them), the addresses that
 * vas_alloc and vas_map choose may differ from the reference's: each must
 * be aligned, in its window and free in the reference (a free hint taken),
 * and the reference is given it. Everything else is compared as without:
 * return codes (VAS_ENOSPC exact: the caches are drained before it), the
 * range lists and iterations with free neighbours merged, the statistics
 * but the free range count and the largest (which only the caches make
 * differ), vas_check (A10: every held range recorded). Caching going off
 * returns every held range (ENOMEM exactly when the source failed, caching
 * then still on); at the end it goes off and the vas must equal the
 * reference exactly (A11: no held range).
 */
#include "vt_ref.h"

#include "fz.h"

#define FV_MAXCTX 4
#define FV_VERIFY_EVERY 16

struct fv {
	struct fz f;
	struct vt_src src;
	struct vas *v;
	struct vas_ctx *c[FV_MAXCTX];
	bool reg[FV_MAXCTX];
	unsigned nctx;
	struct vt_ref ref;
	uint64_t base, size, end, q;
	struct vt_snap snap;
	uintptr_t next_tag;
	bool caching; /* per-context caching on (vas_set_caching) */
};

#define REQ(m, cond, ...) FZ_REQUIRE(&(m)->f, cond, __VA_ARGS__)
#define X(v) ((unsigned long long)(v))

/* ---- set-up ---- */

/* What vas_create must answer for these parameters (vas.h). */
static int fv_create_rc(uint64_t base, uint64_t size, uint64_t q, uint32_t keys)
{
	/*
	 * Validates the region as vas_create() does, written again on
	 * purpose: the reference model shares no code with what it checks.
	 */
	if (q == 0 || (q & (q - 1)) || size == 0)
		return VAS_EINVAL;
	if ((base | size) & (q - 1))
		return VAS_EALIGN;
	if (base + size < base || size / q >= ((uint64_t)1 << VAS_MAX_QBITS))
		return VAS_ERANGE;
	if (keys != 0 && (keys < VAS_MIN_KEYS || keys > VAS_MAX_KEYS))
		return VAS_EINVAL;
	return VAS_OK;
}

static void fv_shape(struct fv *m, unsigned which)
{
	switch (which) {
	case 0:
		m->q = 4096;
		m->base = 0x7f0000003000ull;
		m->size = 512 * m->q;
		break;
	case 1:
		m->q = 4096;
		m->base = 0;
		m->size = 64 * m->q;
		break;
	default:
		m->q = 512;
		m->size = 2000 * m->q;
		m->base = (uint64_t)0 - m->size - 7 * m->q;
		break;
	}
}

/* Parameters from the input: base, quantum, quanta, maybe misaligned. */
static void fv_shape_raw(struct fv *m)
{
	uint8_t fl = fz_u8(&m->f);
	m->q = fl & 0x80 ? 0 : (uint64_t)1 << (fl % 24);
	if (fl & 0x40)
		m->q = 3 * (m->q ? m->q : 1);
	uint64_t qq = m->q ? m->q : 1;
	m->base = fz_u64(&m->f) & ~(qq - 1);
	m->size = (uint64_t)fz_u32(&m->f) * qq;
	if (fl & 0x20)
		m->base += 8;
	if (fl & 0x10)
		m->size = fz_u64(&m->f);
}

static struct vas_ctx *fv_ctx_new(void)
{
	return vt_zalloc(sizeof(struct vas_ctx));
}

/* Create the vas; false if the parameters were (rightly) refused. */
static bool fv_init(struct fv *m)
{
	uint8_t h = fz_u8(&m->f);
	uint8_t kb = fz_u8(&m->f);
	uint64_t hw = fz_u8(&m->f) % 9;
	uint32_t keys = kb % 15 == 14 ? 0 : 3 + kb % 14u;
	vt_src_init(&m->src);
	m->v = vt_zalloc(sizeof(*m->v));
	if ((h & 3) == 3) {
		fv_shape_raw(m);
		keys = kb;
	} else {
		fv_shape(m, h & 3);
	}
	m->end = m->base + m->size;
	int want = fv_create_rc(m->base, m->size, m->q, keys);
	if (want == VAS_OK && (h >> 4 & 3)) {
		atomic_store(&m->src.fail_at, h >> 4 & 3);
		int rc = vas_create(m->v, m->base, m->size, m->q, &m->src.ns,
				    keys, hw);
		REQ(m, rc == VAS_ENOMEM && atomic_load(&m->src.live) == 0,
		    "create with get %d failing: %d, %ld nodes held",
		    h >> 4 & 3, rc, atomic_load(&m->src.live));
		atomic_store(&m->src.fail_at, 0);
	}
	int rc = vas_create(m->v, m->base, m->size, m->q, &m->src.ns, keys, hw);
	REQ(m, rc == want,
	    "create base %#llx size %#llx q %#llx keys %u: %d,"
	    " expected %d",
	    X(m->base), X(m->size), X(m->q), keys, rc, want);
	if (rc != VAS_OK) {
		REQ(m, atomic_load(&m->src.live) == 0,
		    "refused create holds "
		    "%ld nodes",
		    atomic_load(&m->src.live));
		return false;
	}
	m->nctx = 1 + (h >> 2) % FV_MAXCTX;
	for (unsigned i = 0; i < m->nctx; i++) {
		m->c[i] = fv_ctx_new();
		REQ(m, vas_ctx_register(m->v, m->c[i]) == VAS_OK, "register");
		m->reg[i] = true;
	}
	if (h & 0x40) {
		REQ(m, vas_set_caching(m->v, true) == VAS_OK, "caching on");
		m->caching = true;
	}
	vt_ref_init(&m->ref, m->base, m->size, m->q);
	m->next_tag = 0x1000;
	return true;
}

/* ---- comparisons ---- */

static void fv_verify(struct fv *m)
{
	struct vas_ctx *c = NULL;
	for (unsigned i = 0; i < m->nctx && !c; i++)
		if (m->reg[i])
			c = m->c[i];
	if (c != NULL) {
		int rc = vt_snap_take(c, m->base, m->end, &m->snap);
		REQ(m, rc == VAS_OK, "iterate: %d", rc);
		if (m->caching)
			m->snap.n = vt_list_merge_free(m->snap.r, m->snap.n);
		REQ(m, vt_list_eq(m->snap.r, m->snap.n, m->ref.r, m->ref.n),
		    "range lists differ");
	}
	REQ(m, vt_ref_valid(&m->ref), "the reference is broken");
	uint64_t where = 0;
	int inv = vas_check(m->v, &where);
	REQ(m, inv == 0, "vas_check: A%d at %#llx", inv, X(where));
	struct vas_stats st, want;
	vas_stats(m->v, &st);
	vt_ref_stats(&m->ref, &want);
	want.height = st.height;
	if (m->caching) { /* more free entries; the largest outside them */
		REQ(m, st.free_ranges >= want.free_ranges,
		    "free ranges %llu < %llu", X(st.free_ranges),
		    X(want.free_ranges));
		REQ(m, st.largest_free <= want.largest_free,
		    "largest free %#llx > %#llx", X(st.largest_free),
		    X(want.largest_free));
		want.free_ranges = st.free_ranges;
		want.largest_free = st.largest_free;
	}
	REQ(m, vt_stats_same_ranges(&st, &want),
	    "stats: ranges %llu/%llu free %llu/%llu bytes %#llx/%#llx "
	    "largest %#llx/%#llx",
	    X(st.ranges), X(want.ranges), X(st.free_ranges),
	    X(want.free_ranges), X(st.free_bytes), X(want.free_bytes),
	    X(st.largest_free), X(want.largest_free));
	for (int i = 0; i < VAS_NERR; i++)
		REQ(m,
		    st.rejected[i] == want.rejected[i] &&
			    st.refused[i] == want.refused[i],
		    "rejected[%s] %llu, expected %llu", vas_strerror(-i),
		    X(st.rejected[i]), X(want.rejected[i]));
	REQ(m, st.restarts == 0, "%llu restarts on one thread", X(st.restarts));
	REQ(m, (uint64_t)atomic_load(&m->src.live) >= st.nodes + st.nodes_free,
	    "nodes %llu + %llu free, %ld from the source", X(st.nodes),
	    X(st.nodes_free), atomic_load(&m->src.live));
}

static void fv_probe(struct fv *m, struct vas_ctx *c, bool reg, uint64_t a)
{
	struct vas_range r = { 0 }, w = { 0 };
	int rc = vas_lookup(c, a, &r);
	if (!reg) {
		REQ(m, rc == VAS_ENOTREG, "lookup, unregistered: %d", rc);
		return;
	}
	int rw = vt_ref_lookup(&m->ref, a, &w);
	REQ(m, rc == rw && (rc != VAS_OK || vt_range_eq(&r, &w)),
	    "lookup %#llx: %d [%#llx +%#llx tag %#llx], expected %d "
	    "[%#llx +%#llx tag %#llx]",
	    X(a), rc, X(r.start), X(r.size), X(r.tag), rw, X(w.start),
	    X(w.size), X(w.tag));
}

/* The same addresses in one vas_lookup_n, each against the reference. */
static void fv_probe_n(struct fv *m, struct vas_ctx *c, bool reg,
		       const uint64_t *a, size_t n)
{
	struct vas_range r[4], w = { 0 };
	int rc[4], hits = 0;
	int got = vas_lookup_n(c, a, n, r, rc);
	if (!reg) {
		REQ(m, got == VAS_ENOTREG, "lookup_n, unregistered: %d", got);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int rw = vt_ref_lookup(&m->ref, a[i], &w);
		REQ(m, rc[i] == rw && (rw != VAS_OK || vt_range_eq(&r[i], &w)),
		    "lookup_n [%zu] %#llx: %d, expected %d [%#llx +%#llx]", i,
		    X(a[i]), rc[i], rw, X(w.start), X(w.size));
		hits += rw == VAS_OK;
	}
	REQ(m, got == hits, "lookup_n: %d found, expected %d", got, hits);
}

/* Lookups at the edges of [a, a + n) and just outside, any context: one
 * by one, then together. */
static void fv_probe_around(struct fv *m, uint64_t a, uint64_t n)
{
	unsigned i = fz_u8(&m->f) % m->nctx;
	uint64_t b[4] = { a, a - 1, a + n - 1, a + n };
	fv_probe(m, m->c[i], m->reg[i], a);
	fv_probe(m, m->c[i], m->reg[i], a - 1);
	if (n) {
		fv_probe(m, m->c[i], m->reg[i], a + n - 1);
		fv_probe(m, m->c[i], m->reg[i], a + n);
	}
	fv_probe_n(m, m->c[i], m->reg[i], b, n ? 4 : 2);
}

/*
 * A writer answered rc. Unregistered: ENOTREG, and the reference is not
 * to act. ENOMEM: exactly when the source failed in this call, and the
 * vas is as before. Returns true if the reference is to do the call.
 */
static bool fv_answered(struct fv *m, bool reg, int rc,
			unsigned long failed_before)
{
	if (!reg) {
		REQ(m, rc == VAS_ENOTREG, "unregistered context: %d", rc);
		return false;
	}
	unsigned long failed = atomic_load(&m->src.failed);
	REQ(m, (rc == VAS_ENOMEM) == (failed != failed_before),
	    "the source failed %lu times in this call, which returned %d",
	    failed - failed_before, rc);
	if (rc != VAS_ENOMEM)
		return true;
	vt_ref_err(&m->ref, VAS_ENOMEM);
	fv_verify(m);
	return false;
}

/*
 * With caching on, a placement (not the caches' own, not a hint) may
 * differ from the reference's: [a, a + size) must be aligned, in the
 * window [lo, hi) and free in the reference.
 */
static void fv_placed(struct fv *m, uint64_t a, uint64_t size, uint64_t align,
		      uint64_t lo, uint64_t hi)
{
	REQ(m, a % align == 0 && a >= lo && a < hi && hi - a >= size,
	    "placed at %#llx size %#llx: outside [%#llx, %#llx) or not "
	    "aligned to %#llx",
	    X(a), X(size), X(lo), X(hi), X(align));
	const struct vas_range *r = &m->ref.r[vt_ref_find(&m->ref, a)];
	REQ(m, !r->allocated && a + size <= vt_ref_rend(r),
	    "placed at %#llx size %#llx: not free", X(a), X(size));
}

/* ---- arguments ---- */

static unsigned fv_ctx(struct fv *m)
{
	return fz_u8(&m->f) % m->nctx;
}

static uint64_t fv_quanta(struct fv *m)
{
	uint8_t b = fz_u8(&m->f);
	switch (b >> 6) {
	case 0:
		return 1 + b % 4;
	case 1:
		return 1 + b % 64;
	case 2:
		return 1 + fz_u16(&m->f) % 1024;
	default:
		return 1 + fz_u16(&m->f) % (m->size / m->q + 4);
	}
}

static uint64_t fv_align(struct fv *m)
{
	uint8_t b = fz_u8(&m->f);
	if (b < 96)
		return 0;
	if (b == 255)
		return (uint64_t)3 << (fz_u8(&m->f) % 60); /* not a power */
	return (uint64_t)1 << (b % 64);
}

static uintptr_t fv_tag(struct fv *m)
{
	uint8_t b = fz_u8(&m->f);
	if (b < 8)
		return 0;
	if (b < 16 && m->ref.n > 1) /* some range's tag, maybe 0 */
		return m->ref.r[b % m->ref.n].tag;
	return ++m->next_tag;
}

/* An address: in some range of the reference, or anywhere. */
static uint64_t fv_addr(struct fv *m, uint64_t *room)
{
	uint8_t b = fz_u8(&m->f);
	const struct vas_range *r = &m->ref.r[fz_u8(&m->f) % m->ref.n];
	uint64_t nq = r->size / m->q;
	if (b & 0x80) {
		*room = nq;
		return m->base + (fz_u16(&m->f) % (m->size / m->q + 8)) * m->q -
		       4 * m->q;
	}
	uint64_t off = nq > 1 && b & 1 ? fz_u16(&m->f) % nq : 0;
	*room = nq - off;
	return r->start + off * m->q;
}

/* ---- operations ---- */

static void fv_alloc(struct fv *m)
{
	unsigned i = fv_ctx(m);
	uint8_t k = fz_u8(&m->f);
	uint64_t size = fv_quanta(m) * m->q, align = fv_align(m);
	int pol = k & 3 ? (k >> 2 & 1) : 2 + (k >> 2 & 3); /* 2-5: bad */
	if (k & 0x10)
		size = fz_u8(&m->f) % 2 ? 0 : size + 1 + fz_u8(&m->f) % m->q;
	bool null = (k & 0xe0) == 0xe0;
	uintptr_t tag = fv_tag(m);
	uint64_t a = 0, ra = 0;
	unsigned long failed = atomic_load(&m->src.failed);
	int rc = vas_alloc(m->c[i], size, align, (enum vas_policy)pol, tag,
			   null ? NULL : &a);
	if (!fv_answered(m, m->reg[i], rc, failed))
		return;
	if (m->caching && rc == VAS_OK) { /* placed outside the caches */
		fv_placed(m, a, size, align < m->q ? m->q : align, m->base,
			  m->end);
		REQ(m, vt_ref_alloc_at(&m->ref, a, size, tag) == VAS_OK,
		    "alloc at %#llx: not free", X(a));
		fv_probe_around(m, a, size);
		return;
	}
	int rr = vt_ref_alloc(&m->ref, size, align, pol, tag, &ra, null);
	REQ(m, rc == rr && (rc != VAS_OK || a == ra),
	    "alloc size %#llx align %#llx policy %d: %d at %#llx, "
	    "expected %d at %#llx",
	    X(size), X(align), pol, rc, X(a), rr, X(ra));
	if (rc == VAS_OK)
		fv_probe_around(m, a, size);
}

static void fv_alloc_at(struct fv *m)
{
	unsigned i = fv_ctx(m);
	uint64_t room, a = fv_addr(m, &room);
	uint8_t k = fz_u8(&m->f);
	uint64_t n = k & 1 && room ? 1 + fz_u16(&m->f) % room : fv_quanta(m);
	uint64_t size = n * m->q;
	if ((k & 6) == 6)
		a += 1 + fz_u8(&m->f) % m->q; /* misaligned (q > 1) */
	if ((k & 0x18) == 0x18)
		size = (uint64_t)0 - a + m->q; /* wraps */
	uintptr_t tag = fv_tag(m);
	unsigned long failed = atomic_load(&m->src.failed);
	int rc = vas_alloc_at(m->c[i], a, size, tag);
	if (!fv_answered(m, m->reg[i], rc, failed))
		return;
	int rr = vt_ref_alloc_at(&m->ref, a, size, tag);
	REQ(m, rc == rr, "alloc_at %#llx size %#llx: %d, expected %d", X(a),
	    X(size), rc, rr);
	fv_probe_around(m, a, size < m->size ? size : 0);
}

static void fv_free_call(struct fv *m, unsigned i, uint64_t a, uint64_t size)
{
	unsigned long failed = atomic_load(&m->src.failed);
	int rc = vas_free(m->c[i], a, size);
	if (!fv_answered(m, m->reg[i], rc, failed))
		return;
	int rr = vt_ref_free(&m->ref, a, size);
	REQ(m, rc == rr, "free %#llx size %#llx: %d, expected %d", X(a),
	    X(size), rc, rr);
	fv_probe_around(m, a, size < m->size ? size : 0);
}

/* The whole, head, tail or middle of an allocated range. */
static void fv_free(struct fv *m)
{
	unsigned i = fv_ctx(m);
	size_t j = fz_u8(&m->f) % m->ref.n;
	uint8_t k = fz_u8(&m->f);
	if (!m->ref.r[j].allocated)
		j = j + 1 < m->ref.n ? j + 1 : (j ? j - 1 : j);
	const struct vas_range *r = &m->ref.r[j];
	if (!r->allocated)
		return;
	uint64_t nq = r->size / m->q, off = 0, n = nq;
	if ((k & 3) == 1 && nq > 1) { /* head */
		n = 1 + fz_u16(&m->f) % (nq - 1);
	} else if ((k & 3) == 2 && nq > 1) { /* tail */
		off = 1 + fz_u16(&m->f) % (nq - 1);
		n = nq - off;
	} else if ((k & 3) == 3 && nq > 2) { /* middle */
		off = 1 + fz_u16(&m->f) % (nq - 2);
		n = 1 + fz_u16(&m->f) % (nq - off - 1);
	}
	fv_free_call(m, i, r->start + off * m->q, n * m->q);
}

/* Frees that must fail: across ranges, of free space, misaligned, ... */
static void fv_bad_free(struct fv *m)
{
	unsigned i = fv_ctx(m);
	uint64_t room, a = fv_addr(m, &room);
	uint8_t k = fz_u8(&m->f);
	uint64_t size = (room + (k & 3)) * m->q;
	if (k & 4)
		size = fv_quanta(m) * m->q;
	if (k & 8)
		a += fz_u8(&m->f) % m->q;
	if (k & 0x10)
		size = k & 0x20 ? 0 : size + m->q / 2;
	if ((k & 0xc0) == 0xc0)
		a = k & 0x20 ? m->end : m->base - m->q;
	fv_free_call(m, i, a, size);
}

static void fv_lookup(struct fv *m)
{
	unsigned i = fv_ctx(m);
	uint64_t room, a = fv_addr(m, &room);
	uint8_t k = fz_u8(&m->f);
	if (k & 1)
		a += room * m->q - 1;
	if (k & 2)
		a = fz_u64(&m->f);
	fv_probe(m, m->c[i], m->reg[i], a);
	if ((k & 0xfc) == 0xfc)
		REQ(m,
		    vas_lookup(m->c[i], a, NULL) ==
			    (m->reg[i] ? VAS_EINVAL : VAS_ENOTREG),
		    "lookup NULL");
}

#define FV_ITR 40 /* ranges an iteration keeps */

struct fv_itr {
	struct vas_range r[FV_ITR];
	unsigned n, stop;
};

static bool fv_itr_fn(const struct vas_range *r, void *arg)
{
	struct fv_itr *it = arg;
	if (it->n < FV_ITR)
		it->r[it->n] = *r;
	it->n++;
	return it->stop == 0 || it->n < it->stop;
}

/*
 * With caching on: [a, b) whole (no early stop), cut to the region and to
 * [a, b), free neighbours merged, against the reference's ranges cut the
 * same way (at most 17 quanta: at most 18 ranges on either side).
 */
static void fv_iterate_merged(struct fv *m, struct vas_ctx *c, uint64_t a,
			      uint64_t b, uint64_t lo, uint64_t hi)
{
	struct fv_itr it = { .stop = 0 };
	struct vas_range want[FV_ITR];
	size_t nw = 0;
	int rc = vas_iterate(c, a, b, fv_itr_fn, &it);
	REQ(m, rc == VAS_OK && it.n <= FV_ITR, "iterate: %d, %u ranges", rc,
	    it.n);
	for (size_t j = vt_ref_find(&m->ref, lo);
	     lo < hi && j < m->ref.n && m->ref.r[j].start < hi && nw < FV_ITR;
	     j++)
		want[nw++] = m->ref.r[j];
	vt_list_clip(it.r, it.n, lo, hi);
	vt_list_clip(want, nw, lo, hi);
	size_t n = vt_list_merge_free(it.r, it.n);
	REQ(m, vt_list_eq(it.r, n, want, nw), "iterate [%#llx, %#llx) differs",
	    X(a), X(b));
}

/* [a, b) anywhere; the whole ranges overlapping it, in order. */
static void fv_iterate(struct fv *m)
{
	unsigned i = fv_ctx(m);
	uint64_t room, a = fv_addr(m, &room);
	uint8_t k = fz_u8(&m->f);
	uint64_t b = a + 1 + fz_u16(&m->f) % (16 * m->q);
	if (k & 1) /* empty: b <= a, without wrapping below 0 (a wrapped b
		    * would be the whole space, not the empty span meant) */
		b = a - (a < (k >> 1) ? a : (k >> 1));
	struct fv_itr it = { .stop = k >> 5 };
	int rc = vas_iterate(m->c[i], a, b, fv_itr_fn, &it);
	if (!m->reg[i]) {
		REQ(m, rc == VAS_ENOTREG && it.n == 0, "iterate unregistered");
		return;
	}
	REQ(m, rc == VAS_OK, "iterate: %d", rc);
	REQ(m, vas_iterate(m->c[i], a, b, NULL, NULL) == VAS_EINVAL,
	    "iterate NULL");
	uint64_t lo = a < m->base ? m->base : a, hi = b > m->end ? m->end : b;
	if (m->caching) {
		fv_iterate_merged(m, m->c[i], a, b, lo, hi);
		return;
	}
	unsigned want = 0;
	if (lo < hi) {
		for (size_t j = vt_ref_find(&m->ref, lo);
		     j < m->ref.n && m->ref.r[j].start < hi; j++) {
			if (it.stop && want == it.stop)
				break;
			REQ(m,
			    want < it.n &&
				    (want >= FV_ITR ||
				     vt_range_eq(&it.r[want], &m->ref.r[j])),
			    "iterate [%#llx, %#llx) range %u", X(a), X(b),
			    want);
			want++;
		}
	}
	REQ(m, it.n == want, "iterate [%#llx, %#llx): %u ranges, expected %u",
	    X(a), X(b), it.n, want);
}

/* Unregister or register a context; the second time is refused. */
static void fv_toggle(struct fv *m)
{
	unsigned i = fv_ctx(m);
	if (m->reg[i]) {
		REQ(m, vas_ctx_unregister(m->c[i]) == VAS_OK, "unregister");
		REQ(m, vas_ctx_unregister(m->c[i]) == VAS_ENOTREG,
		    "second unregister");
	} else {
		REQ(m, vas_ctx_register(m->v, m->c[i]) == VAS_OK, "register");
		REQ(m, vas_ctx_register(m->v, m->c[i]) == VAS_EINVAL,
		    "second register");
	}
	m->reg[i] = !m->reg[i];
}

/* Make the source fail a get soon: one of the next few calls. */
/* ---- the mmap-grade calls ---- */

static void fv_piece_fn(const struct vas_range *r, void *arg)
{
	struct vt_pieces *p = arg;
	if (p->n < 16)
		p->r[p->n] = *r;
	p->n++;
	p->bytes += r->size;
}

static void fv_pieces_eq(struct fv *m, const struct vt_pieces *got,
			 const struct vt_pieces *want)
{
	REQ(m, got->n == want->n && got->bytes == want->bytes,
	    "%zu pieces (%#llx bytes), expected %zu (%#llx)", got->n,
	    X(got->bytes), want->n, X(want->bytes));
	for (size_t i = 0; i < got->n && i < 16; i++)
		REQ(m, vt_range_eq(&got->r[i], &want->r[i]), "piece %zu", i);
}

static uint32_t fv_attr(struct fv *m)
{
	uint8_t b = fz_u8(&m->f);
	return b == 255 ? VAS_ATTR_MASK + 1u + fz_u8(&m->f) : b % 4;
}

/*
 * With caching on, a map placed outside the caches: a free hint in the
 * window (free in the reference) must be taken, else any free, aligned
 * place in the window; the reference is given it.
 */
static void fv_map_placed(struct fv *m, const struct vas_place *p, uint64_t a)
{
	uint64_t lo = p->low, hi = p->high;
	uint64_t al = p->align > m->q ? p->align : m->q;
	if (lo == 0 && hi == 0) {
		lo = m->base;
		hi = m->end;
	}
	const struct vas_range *h = &m->ref.r[vt_ref_find(&m->ref, p->hint)];
	bool hint = p->hint != 0 && p->hint % al == 0 && p->hint >= lo &&
		    p->hint < hi && hi - p->hint >= p->size && !h->allocated &&
		    p->hint + p->size <= vt_ref_rend(h);
	REQ(m, !hint || a == p->hint,
	    "map at %#llx, not at the free hint %#llx", X(a), X(p->hint));
	fv_placed(m, a, p->size, al, lo, hi);
	vt_ref_set(&m->ref, a, a + p->size, true, p->attr, p->tag);
	fv_probe_around(m, a, p->size);
}

/* vas_map: size, alignment, flags, window and hint from the input. */
static void fv_map(struct fv *m)
{
	unsigned i = fv_ctx(m);
	uint8_t k = fz_u8(&m->f);
	uint64_t room;
	struct vas_place p = { .size = fv_quanta(m) * m->q,
			       .align = fv_align(m),
			       .flags = k & 3 };
	if (k & 4)
		p.flags |= 4u << (fz_u8(&m->f) % 8); /* bad */
	if (k & 8) {
		p.low = fv_addr(m, &room);
		p.high = fv_addr(m, &room);
	}
	if (k & 16)
		p.hint = fv_addr(m, &room);
	if ((k & 0x60) == 0x60)
		p.size = 0;
	p.attr = fv_attr(m);
	p.tag = fv_tag(m);
	bool null = k == 0xff;
	uint64_t a = 0, ra = 0;
	unsigned long failed = atomic_load(&m->src.failed);
	int rc = vas_map(m->c[i], null ? NULL : &p, &a);
	if (!fv_answered(m, m->reg[i], rc, failed))
		return;
	if (m->caching && rc == VAS_OK) {
		fv_map_placed(m, &p, a);
		return;
	}
	int rr = null ? vt_ref_err(&m->ref, VAS_EINVAL)
		      : vt_ref_map(&m->ref, &p, &ra);
	REQ(m, rc == rr && (rc != VAS_OK || a == ra),
	    "map size %#llx align %#llx flags %u [%#llx, %#llx) hint %#llx:"
	    " %d at %#llx, expected %d at %#llx",
	    X(p.size), X(p.align), p.flags, X(p.low), X(p.high), X(p.hint), rc,
	    X(a), rr, X(ra));
	if (rc == VAS_OK)
		fv_probe_around(m, a, p.size);
}

/* vas_replace, vas_unmap or vas_protect over a span from the input. */
static void fv_rewrite(struct fv *m, unsigned kind)
{
	unsigned i = fv_ctx(m);
	uint64_t room, a = fv_addr(m, &room);
	uint8_t k = fz_u8(&m->f);
	uint64_t size =
		(k & 1 ? 1 + fz_u16(&m->f) % (2 * room + 8) : fv_quanta(m)) *
		m->q;
	if ((k & 6) == 6)
		a += 1 + fz_u8(&m->f) % m->q; /* misaligned (q > 1) */
	if ((k & 0x18) == 0x18)
		size = (uint64_t)0 - a + m->q; /* wraps */
	uint32_t attr = fv_attr(m),
		 mask = k & 0x20 ? VAS_ATTR_MASK : fv_attr(m);
	unsigned flags = k >> 6; /* 2, 3: bad for protect */
	uintptr_t tag = fv_tag(m);
	struct vt_pieces got = { .n = 0 }, want;
	uint64_t removed = 0;
	unsigned long failed = atomic_load(&m->src.failed);
	int rc, rr;
	if (kind == 0)
		rc = vas_replace(m->c[i], a, size, attr, tag, fv_piece_fn,
				 &got);
	else if (kind == 1)
		rc = vas_unmap(m->c[i], a, size, fv_piece_fn, &got, &removed);
	else
		rc = vas_protect(m->c[i], a, size, mask, attr, tag, flags,
				 fv_piece_fn, &got);
	if (!fv_answered(m, m->reg[i], rc, failed))
		return;
	if (kind == 0)
		rr = vt_ref_replace(&m->ref, a, size, attr, tag, &want);
	else if (kind == 1)
		rr = vt_ref_unmap(&m->ref, a, size, &want);
	else
		rr = vt_ref_protect(&m->ref, a, size, mask, attr, tag, flags,
				    &want);
	REQ(m, rc == rr, "rewrite %u %#llx size %#llx: %d, expected %d", kind,
	    X(a), X(size), rc, rr);
	if (rc == VAS_OK) {
		fv_pieces_eq(m, &got, &want);
		REQ(m, kind != 1 || removed == want.bytes, "unmap removed");
	}
	fv_probe_around(m, a, size < m->size ? size : 0);
}

/* vas_find, vas_prev, vas_next at an address from the input. */
static void fv_find(struct fv *m)
{
	unsigned i = fv_ctx(m);
	uint64_t room, a = fv_addr(m, &room);
	uint8_t k = fz_u8(&m->f);
	struct vas_range r = { 0 }, w = { 0 };
	int rc, rr;
	if (k & 0x80)
		a = fz_u64(&m->f);
	if (k % 3 == 0) {
		rc = vas_find(m->c[i], a, &r);
		rr = vt_ref_find_up(&m->ref, a, &w);
	} else if (k % 3 == 1) {
		rc = vas_prev(m->c[i], a, &r);
		rr = vt_ref_prev(&m->ref, a, &w);
	} else {
		struct vas_range cur = m->ref.r[fz_u8(&m->f) % m->ref.n];
		rc = vas_next(m->c[i], &cur, &r);
		rr = vt_ref_find_up(&m->ref, cur.start + cur.size, &w);
	}
	if (!m->reg[i]) {
		REQ(m, rc == VAS_ENOTREG, "find unregistered: %d", rc);
		return;
	}
	REQ(m, rc == rr && (rc != VAS_OK || vt_range_eq(&r, &w)),
	    "find %u at %#llx: %d, expected %d", k % 3, X(a), rc, rr);
}

/*
 * Caching on, or off: off returns every held range first, ENOMEM exactly
 * when the source failed (caching then stays on; what was returned is
 * free as it was), and then the vas equals the reference exactly.
 */
static void fv_caching(struct fv *m)
{
	unsigned long failed = atomic_load(&m->src.failed);
	int rc = vas_set_caching(m->v, !m->caching);
	REQ(m, (rc == VAS_ENOMEM) == (failed != atomic_load(&m->src.failed)),
	    "caching %s: %d, the source failed %lu times",
	    m->caching ? "off" : "on", rc,
	    atomic_load(&m->src.failed) - failed);
	REQ(m, rc == VAS_OK || rc == VAS_ENOMEM, "caching: %d", rc);
	if (rc == VAS_OK)
		m->caching = !m->caching;
	fv_verify(m);
}

static void fv_fault(struct fv *m)
{
	uint8_t k = fz_u8(&m->f);
	unsigned long gets = atomic_load(&m->src.gets);
	atomic_store(&m->src.fail_at, k & 0x80 ? 0 : gets + 1 + k % 8);
}

static void fv_step(struct fv *m)
{
	/*
	 * One case per operation, by the input byte, as fuzz_buddy.c's step:
	 * the operations and weights are this module's.
	 */
	uint8_t op = fz_u8(&m->f);
	switch (op % 16) {
	case 0:
	case 1:
	case 2:
	case 3:
		fv_alloc(m);
		break;
	case 4:
	case 5:
		fv_alloc_at(m);
		break;
	case 6:
	case 7:
	case 8:
		fv_free(m);
		break;
	case 9:
		fv_bad_free(m);
		break;
	case 10:
	case 11:
		fv_lookup(m);
		break;
	case 12:
		fv_iterate(m);
		break;
	case 13:
		fv_toggle(m);
		break;
	case 14:
		fv_fault(m);
		break;
	default: /* 15: the mmap-grade calls, caching, or a verification */
		if (op >> 4 == 12) {
			fv_caching(m);
			break;
		}
		switch ((op >> 4) % 6) {
		case 0:
			fv_verify(m);
			break;
		case 1:
			fv_map(m);
			break;
		case 2:
		case 3:
		case 4:
			fv_rewrite(m, (op >> 4) % 6 - 2u);
			break;
		default:
			fv_find(m);
			break;
		}
		break;
	}
}

/* Free everything, destroy (refused while a context is registered). */
static void fv_finish(struct fv *m)
{
	atomic_store(&m->src.fail_at, 0);
	if (!m->reg[0]) {
		REQ(m, vas_ctx_register(m->v, m->c[0]) == VAS_OK, "register");
		m->reg[0] = true;
	}
	fv_verify(m);
	for (size_t j = 0; j < m->ref.n;) {
		struct vas_range r = m->ref.r[j];
		if (!r.allocated) {
			j++;
			continue;
		}
		REQ(m, vas_free(m->c[0], r.start, r.size) == VAS_OK,
		    "final free %#llx", X(r.start));
		REQ(m, vt_ref_free(&m->ref, r.start, r.size) == VAS_OK, "ref");
		j = vt_ref_find(&m->ref, r.start);
	}
	if (m->caching) {
		REQ(m, vas_set_caching(m->v, false) == VAS_OK, "caching off");
		m->caching = false;
	}
	fv_verify(m);
	REQ(m, m->ref.n == 1, "not one free range");
	REQ(m, vas_destroy(m->v) == VAS_EINVAL, "destroy, context registered");
	for (unsigned i = 0; i < m->nctx; i++)
		if (m->reg[i])
			REQ(m, vas_ctx_unregister(m->c[i]) == VAS_OK,
			    "unregister");
	REQ(m, vas_destroy(m->v) == VAS_OK, "destroy");
	REQ(m, atomic_load(&m->src.live) == 0,
	    "%ld nodes not given back by destroy", atomic_load(&m->src.live));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fv *m = calloc(1, sizeof(*m));
	if (m == NULL)
		abort();
	fz_init(&m->f, data, size);
	if (fv_init(m)) {
		fv_verify(m);
		for (m->f.op = 0; fz_more(&m->f); m->f.op++) {
			fv_step(m);
			if (m->f.op % FV_VERIFY_EVERY == FV_VERIFY_EVERY - 1)
				fv_verify(m);
		}
		fv_finish(m);
		vt_ref_fini(&m->ref);
		vt_snap_free(&m->snap);
	}
	for (unsigned i = 0; i < m->nctx; i++)
		free(m->c[i]);
	free(m->v);
	free(m);
	return 0;
}
