/*
 * torture.c: the allocators under every CPU at once, checked in real
 * (emulated) memory.
 *
 * buddy  Each CPU allocates blocks of mixed orders (order k with
 *        probability 2^-(k+1), up to 7), fills each block through the
 *        direct map with its owner pattern (tag ^ word index, the tag
 *        naming the CPU and a sequence number), and frees blocks: itself,
 *        or (one time in four) by handing them to another CPU's mailbox,
 *        which checks and frees them there. A block is checked word by word
 *        before every free, and its frame state must say "allocated, this
 *        order": a block handed to two CPUs, or written after its free,
 *        shows up in memory.
 * vas    Each CPU vmallocs 1-8 pages (mem.c; the vas caches small ranges
 *        per CPU, so most of these are leaf-local writes), writes a
 *        pattern through the new mapping and checks it through the direct
 *        map of the frame the PTE names, looks the range up (it must be
 *        exactly its own, tag included), vfrees (unmap at once; frames and
 *        range parked until this CPU's next purge, one TLB shootdown for
 *        many vfrees; the range then cached by this CPU's vas context),
 *        itself or (one time in four) through another CPU's mailbox, which
 *        checks the pattern through the mapping and vfrees it there, and
 *        looks up random addresses of the region while the others write:
 *        any range found must hold the address and carry a tag some CPU
 *        gave.
 * epoch  Readers enter a section, load an object from one of 64 shared
 *        slots and check it is live and intact; writers put a new object
 *        (a buddy frame) in a slot and retire the old one, whose callback
 *        poisons it and frees the frame. A reader seeing poison fails.
 *
 * After each test (every CPU has drained its own buddy context and waits
 * in the barrier) the BSP checks the structures: buddy_zone_check() after
 * buddy_zone_drain_all() (fully coalesced, nothing cached, in version 2
 * and 3 alike),
 * vas_check() and no range left (caching turned off for it, which returns
 * every cached range: one free range; on again after), some leaf-local
 * writes done, every retired object reclaimed; at the end
 * every frame is free but those the kernel itself holds.
 */
#include "kern.h"
#include "lf_spin.h"

#define BHELD 128
#define BMAX_ORDER 7
#define MBOX 256
#define VHELD 32
#define ESLOTS 64
#define NTIMED 3

struct bblk {
	uint64_t pa, tag;
	unsigned order;
};

struct vmap {
	uint64_t va, npages;
	uintptr_t tag;
};

/* A CPU's mailbox, for blocks (buddy) or vmallocs (vas): one test runs at
 * a time, and each empties every mailbox before it ends. */
struct mailbox {
	struct lf_spin lock; /* (a) taken with interrupts off */
	lf_atomic_u32 n;     /* (a) written under lock, peeked without */
	union {
		struct bblk b[MBOX]; /* under lock */
		struct vmap v[MBOX]; /* under lock */
	};
} LF_CACHE_ALIGNED;

struct torture_cpu {
	uint64_t ops, errors, enomem, remote;
	uint64_t cyc[NTIMED], cnt[NTIMED];
	uint64_t seq;
	uint64_t deadline; /* TSC, set after the start barrier */
	struct bblk held[BHELD];
	unsigned nheld;
	struct vmap vheld[VHELD];
	unsigned nvheld;
	uint32_t sense; /* for tbar */
} LF_CACHE_ALIGNED;

KERN_LATE_BSS static struct torture_cpu tcpu[MAX_CPUS];
KERN_LATE_BSS static struct mailbox mbox[MAX_CPUS];
static struct kbarrier tbar;

static const char *const timed_names[3][NTIMED] = {
	{ "alloc", "free", "remote_free" },
	{ "vmalloc", "vfree", "lookup" },
	{ "read", "replace", "none" },
};

void torture_init(void)
{
	for (unsigned i = 0; i < MAX_CPUS; i++)
		cpus[i].t = &tcpu[i];
}

static void terror(struct cpu *c, const char *what, uint64_t a, uint64_t b)
{
	struct torture_cpu *t = c->t;
	if (t->errors++ < 4)
		kprintf("LFK error test cpu=%u what=%s a=%#lx b=%#lx\n", c->idx,
			what, a, b);
}

static bool time_up(struct torture_cpu *t)
{
	return (t->ops & 15) == 0 && rdtsc() >= t->deadline;
}

/* ---- buddy ---- */

static unsigned border(uint64_t r)
{
	unsigned o = 0;
	while (o < BMAX_ORDER && (r & 1)) {
		o++;
		r >>= 1;
	}
	return o;
}

static void bfill(const struct bblk *b)
{
	uint64_t *p = phys_to_virt(b->pa);
	uint64_t n = (PAGE_SIZE << b->order) / 8;
	for (uint64_t i = 0; i < n; i++)
		p[i] = b->tag ^ i;
}

static void bcheck(struct cpu *c, const struct bblk *b)
{
	const volatile uint64_t *p = phys_to_virt(b->pa);
	uint64_t n = (PAGE_SIZE << b->order) / 8;
	for (uint64_t i = 0; i < n; i++) {
		if (p[i] != (b->tag ^ i)) {
			terror(c, "buddy_pattern", b->pa + i * 8, p[i]);
			return;
		}
	}
	unsigned kind, order;
	if (buddy_zone_frame(zone, b->pa, &kind, &order) != BUDDY_OK ||
	    kind != BUDDY_FRAME_ALLOC || order != b->order)
		terror(c, "buddy_frame_state", b->pa, kind);
}

static void bfree(struct cpu *c, const struct bblk *b, unsigned kind)
{
	struct torture_cpu *t = c->t;
	bcheck(c, b);
	uint64_t t0 = rdtsc();
	int rc = buddy_free(c->bc, b->pa, b->order);
	t->cyc[kind] += rdtsc() - t0;
	t->cnt[kind]++;
	if (rc != BUDDY_OK)
		terror(c, "buddy_free", b->pa, (uint64_t)-rc);
}

/*
 * The mailbox lock, interrupts off while it is held: a TLB shootdown IPI
 * taken by the holder would stretch the hold time of every sender spinning
 * on it (the handler never takes a mailbox lock, so a spinning CPU with
 * interrupts off cannot deadlock against one waiting for its IPI ack: the
 * holder sends no IPI while it holds the lock).
 */
static lf_irqflags mbox_lock(struct mailbox *m)
{
	return lf_spin_lock_irqsave(&m->lock);
}

static void mbox_unlock(struct mailbox *m, lf_irqflags f)
{
	lf_spin_unlock_irqrestore(&m->lock, f);
}

/*
 * Put one entry in CPU to's mailbox: a buddy block (b) or a vmalloc (v),
 * whichever is not NULL; false if the mailbox is full.
 */
static bool mbox_put(unsigned to, const struct bblk *b, const struct vmap *v)
{
	struct mailbox *m = &mbox[to];
	lf_irqflags f = mbox_lock(m);
	/* Relaxed, load and store: under the lock, which orders them. */
	uint32_t n = lf_load_u32(&m->n, LF_RELAXED);
	bool ok = n < MBOX;
	if (ok) {
		if (b != NULL)
			m->b[n] = *b;
		else
			m->v[n] = *v;
		lf_store_u32(&m->n, n + 1, LF_RELAXED);
	}
	mbox_unlock(m, f);
	return ok;
}

/*
 * Take up to max entries of mailbox m into bg (buddy blocks) or vg
 * (vmallocs), whichever is not NULL: how many (0: it was empty).
 */
static uint32_t mbox_take(struct mailbox *m, struct bblk *bg, struct vmap *vg,
			  uint32_t max)
{
	/* Relaxed peek: the lock orders what is taken. */
	if (lf_load_u32(&m->n, LF_RELAXED) == 0)
		return 0;
	lf_irqflags f = mbox_lock(m);
	/* Relaxed, load and store: under the lock. */
	uint32_t n = lf_load_u32(&m->n, LF_RELAXED), k = 0;
	for (; n > 0 && k < max; k++) {
		if (bg != NULL)
			bg[k] = m->b[--n];
		else
			vg[k] = m->v[--n];
	}
	lf_store_u32(&m->n, n, LF_RELAXED);
	mbox_unlock(m, f);
	return k;
}

static bool mbox_send(unsigned to, const struct bblk *b)
{
	return mbox_put(to, b, NULL);
}

static void mbox_drain(struct cpu *c)
{
	struct bblk got[32];
	uint32_t k;
	while ((k = mbox_take(&mbox[c->idx], got, NULL, 32)) != 0)
		for (uint32_t i = 0; i < k; i++)
			bfree(c, &got[i], 2);
}

static void buddy_step(struct cpu *c, struct torture_cpu *t)
{
	uint64_t r = krand(&c->rng);
	if (t->nheld < BHELD && (t->nheld == 0 || (r & 1))) {
		struct bblk b = { 0, 0, border(r >> 1) };
		uint64_t t0 = rdtsc();
		int rc = buddy_alloc(c->bc, b.order, &b.pa);
		t->cyc[0] += rdtsc() - t0;
		t->cnt[0]++;
		if (rc == BUDDY_ENOMEM) {
			t->enomem++;
			return;
		}
		if (rc != BUDDY_OK) {
			terror(c, "buddy_alloc", b.order, (uint64_t)-rc);
			return;
		}
		b.tag = (uint64_t)(c->idx + 1) << 48 |
			(++t->seq & 0xffffffffffffull);
		bfill(&b);
		t->held[t->nheld++] = b;
		return;
	}
	unsigned i = (unsigned)((r >> 8) % t->nheld);
	struct bblk b = t->held[i];
	t->held[i] = t->held[--t->nheld];
	if (ncpus > 1 && ((r >> 20) & 3) == 0) {
		unsigned to =
			(unsigned)((c->idx + 1 + (r >> 24) % (ncpus - 1)) %
				   ncpus);
		if (mbox_send(to, &b)) {
			t->remote++;
			return;
		}
	}
	bfree(c, &b, 1);
}

static void torture_buddy(struct cpu *c)
{
	struct torture_cpu *t = c->t;
	while (!time_up(t)) {
		mbox_drain(c);
		buddy_step(c, t);
		t->ops++;
	}
	while (t->nheld)
		bfree(c, &t->held[--t->nheld], 1);
	/* No CPU sends after this barrier: then every mailbox is emptied. */
	kbarrier_wait(&tbar, ncpus, &t->sense);
	mbox_drain(c);
}

/* ---- vas ---- */

static void vtouch(struct cpu *c, const struct vmap *m, bool check)
{
	for (uint64_t p = 0; p < m->npages; p++) {
		volatile uint64_t *w =
			(volatile uint64_t *)(uintptr_t)(m->va + p * PAGE_SIZE);
		uint64_t want = m->tag ^ p;
		if (!check) {
			w[0] = want;
			w[511] = ~want;
		}
		uint64_t pa = vmalloc_phys(m->va + p * PAGE_SIZE);
		const volatile uint64_t *d = phys_to_virt(pa);
		if (pa == 0 || w[0] != want || w[511] != ~want ||
		    d[0] != want || d[511] != ~want)
			terror(c, "vas_pattern", m->va + p * PAGE_SIZE, pa);
	}
}

static void vlookup_own(struct cpu *c, const struct vmap *m, uint64_t r)
{
	struct vas_range got;
	uint64_t a = m->va + r % (m->npages * PAGE_SIZE);
	int rc = vas_lookup(&c->vctx, a, &got);
	if (rc != VAS_OK || !got.allocated || got.start != m->va ||
	    got.size != (m->npages + 1) * PAGE_SIZE || got.tag != m->tag)
		terror(c, "vas_lookup_own", a, rc == VAS_OK ? got.start : 0);
}

static void vas_new(struct cpu *c, struct torture_cpu *t, uint64_t r)
{
	struct vmap m = { 0, 1 + (r >> 8) % 8, 0 };
	m.tag = (uintptr_t)((uint64_t)(c->idx + 1) << 40 | ++t->seq);
	int err = 0;
	uint64_t t0 = rdtsc();
	void *va = vmalloc(c, m.npages, m.tag, &err);
	t->cyc[0] += rdtsc() - t0;
	t->cnt[0]++;
	if (!va) {
		if (err == VAS_ENOMEM || err == VAS_ENOSPC)
			t->enomem++;
		else
			terror(c, "vmalloc", m.npages, (uint64_t)-err);
		return;
	}
	m.va = (uint64_t)(uintptr_t)va;
	vtouch(c, &m, false);
	vlookup_own(c, &m, r >> 16);
	t->vheld[t->nvheld++] = m;
}

/* Check the pattern through the mapping (this CPU's TLB), vfree here. */
static void vas_vfree(struct cpu *c, struct torture_cpu *t,
		      const struct vmap *m)
{
	vtouch(c, m, true);
	uint64_t t0 = rdtsc();
	int rc = vfree(c, (void *)(uintptr_t)m->va, m->npages);
	t->cyc[1] += rdtsc() - t0;
	t->cnt[1]++;
	if (rc != VAS_OK)
		terror(c, "vfree", m->va, (uint64_t)-rc);
}

static bool vmbox_send(unsigned to, const struct vmap *v)
{
	return mbox_put(to, NULL, v);
}

/* What other CPUs sent: vfreed here (the range cached by this CPU). */
static void vmbox_drain(struct cpu *c, struct torture_cpu *t)
{
	struct vmap got[8];
	uint32_t k;
	while ((k = mbox_take(&mbox[c->idx], NULL, got, 8)) != 0)
		for (uint32_t i = 0; i < k; i++)
			vas_vfree(c, t, &got[i]);
}

/* A vmalloc this CPU holds: vfreed here, or (one in four) elsewhere. */
static void vas_del(struct cpu *c, struct torture_cpu *t, unsigned i,
		    uint64_t r)
{
	struct vmap m = t->vheld[i];
	t->vheld[i] = t->vheld[--t->nvheld];
	if (ncpus > 1 && (r & 3) == 0) {
		unsigned to = (unsigned)((c->idx + 1 + (r >> 2) % (ncpus - 1)) %
					 ncpus);
		if (vmbox_send(to, &m)) {
			t->remote++;
			return;
		}
	}
	vas_vfree(c, t, &m);
}

/* A random address of the busy part of the region: sane or nothing. */
static void vas_peek(struct cpu *c, struct torture_cpu *t, uint64_t r)
{
	uint64_t a = VMALLOC_BASE + r % (ncpus * VHELD * 9 * PAGE_SIZE);
	struct vas_range got;
	uint64_t t0 = rdtsc();
	int rc = vas_lookup(&c->vctx, a, &got);
	t->cyc[2] += rdtsc() - t0;
	t->cnt[2]++;
	if (rc == VAS_ENOENT)
		return;
	uint64_t owner = (uint64_t)got.tag >> 40;
	if (rc != VAS_OK || !got.allocated || a < got.start ||
	    a - got.start >= got.size || owner == 0 || owner > ncpus)
		terror(c, "vas_lookup", a, (uint64_t)got.tag);
}

/*
 * vas_lookup_n of a random page of up to 4 of this CPU's own vmaps (each
 * must look up as exactly that vmap, its guard page included in the
 * range) and of 4 random addresses of the busy part (sane or nothing).
 */
static void vas_peek_n(struct cpu *c, struct torture_cpu *t, uint64_t r)
{
	uint64_t a[8];
	struct vas_range got[8];
	int rc[8];
	unsigned own = t->nvheld < 4 ? t->nvheld : 4, n = own + 4;
	for (unsigned i = 0; i < n; i++) {
		uint64_t x = krand(&c->rng);
		if (i < own) {
			const struct vmap *m = &t->vheld[(r + i) % t->nvheld];
			a[i] = m->va + x % (m->npages * PAGE_SIZE);
		} else {
			a[i] = VMALLOC_BASE +
			       x % (ncpus * VHELD * 9 * PAGE_SIZE);
		}
	}
	int found = vas_lookup_n(&c->vctx, a, n, got, rc), hits = 0;
	for (unsigned i = 0; i < n; i++) {
		hits += rc[i] == VAS_OK;
		if (i < own) {
			const struct vmap *m = &t->vheld[(r + i) % t->nvheld];
			if (rc[i] != VAS_OK || !got[i].allocated ||
			    got[i].start != m->va ||
			    got[i].size != (m->npages + 1) * PAGE_SIZE ||
			    got[i].tag != m->tag)
				terror(c, "vas_lookup_n_own", a[i],
				       rc[i] == VAS_OK ? got[i].start : 0);
			continue;
		}
		if (rc[i] == VAS_ENOENT)
			continue;
		uint64_t owner = (uint64_t)got[i].tag >> 40;
		if (rc[i] != VAS_OK || !got[i].allocated ||
		    a[i] < got[i].start || a[i] - got[i].start >= got[i].size ||
		    owner == 0 || owner > ncpus)
			terror(c, "vas_lookup_n", a[i], (uint64_t)got[i].tag);
	}
	if (found != hits)
		terror(c, "vas_lookup_n_count", (uint64_t)found,
		       (uint64_t)hits);
}

static void torture_vas(struct cpu *c)
{
	struct torture_cpu *t = c->t;
	while (!time_up(t)) {
		uint64_t r = krand(&c->rng);
		unsigned op = (unsigned)(r & 7);
		vmbox_drain(c, t);
		if (op < 3 && t->nvheld < VHELD)
			vas_new(c, t, r);
		else if (op < 5 && t->nvheld > 0)
			vas_del(c, t, (unsigned)((r >> 8) % t->nvheld),
				r >> 32);
		else if (op == 7 && (r >> 63))
			vas_peek_n(c, t, r >> 8);
		else
			vas_peek(c, t, r >> 3);
		t->ops++;
	}
	while (t->nvheld)
		vas_vfree(c, t, &t->vheld[--t->nvheld]);
	/* No CPU sends after this barrier: then every mailbox is emptied. */
	kbarrier_wait(&tbar, ncpus, &t->sense);
	vmbox_drain(c, t);
	vfree_purge(c); /* what is parked back, before the checks */
	/*
	 * Once no CPU is in a lookup, a few polls of each CPU's own vas
	 * participant let the epoch advance past the nodes its writes retired
	 * (vas.h: surplus nodes go back to the source after a grace period),
	 * so the frame count below sees them back in the buddy.
	 */
	kbarrier_wait(&tbar, ncpus, &t->sense);
	for (int i = 0; i < 4; i++)
		lf_epoch_poll(&c->vctx.rec);
}

/* ---- epoch ---- */

#define EOBJ_LIVE 0x11feb0a711feb0a7ull
#define EOBJ_DEAD 0xdeaddeaddeaddeadull
#define EOBJ_WORDS 16

struct eobj {
	struct lf_epoch_entry entry;
	lf_atomic_u64 magic; /* (a) relaxed: the epoch orders it */
	uint64_t seq;
	uint64_t w[EOBJ_WORDS];
};

static lf_atomic_ptr eslots[ESLOTS];
static lf_atomic_u64 e_retired, e_reclaimed; /* (a) */

static void eobj_reclaim(struct lf_epoch_entry *e)
{
	struct eobj *o = (struct eobj *)(void *)e;
	lf_store_u64(&o->magic, EOBJ_DEAD, LF_RELAXED);
	for (unsigned i = 0; i < EOBJ_WORDS; i++)
		o->w[i] = EOBJ_DEAD;
	int rc = buddy_free(this_cpu()->bc, virt_to_phys(o), 0);
	LF_ASSERT(rc == BUDDY_OK);
	lf_fetch_add_u64(&e_reclaimed, 1, LF_RELAXED);
}

static void epoch_read(struct cpu *c, struct torture_cpu *t, unsigned slot)
{
	uint64_t t0 = rdtsc();
	lf_epoch_enter(c->erec);
	/* Acquire: the object's contents; pairs with the xchg in
	 * epoch_replace(). */
	struct eobj *o = lf_load_ptr(&eslots[slot], LF_ACQUIRE);
	bool bad = false;
	uint64_t m = 0;
	if (o) {
		m = lf_load_u64(&o->magic, LF_RELAXED);
		const volatile uint64_t *w = o->w;
		for (unsigned i = 0; i < EOBJ_WORDS; i += 5)
			bad |= w[i] != (o->seq ^ i);
		bad |= m != EOBJ_LIVE;
	}
	lf_epoch_exit(c->erec);
	t->cyc[0] += rdtsc() - t0;
	t->cnt[0]++;
	if (bad)
		terror(c, "epoch_reader_saw_reclaimed", (uint64_t)(uintptr_t)o,
		       m);
}

static void epoch_replace(struct cpu *c, struct torture_cpu *t, unsigned slot)
{
	uint64_t pa;
	if (buddy_alloc(c->bc, 0, &pa) != BUDDY_OK) {
		t->enomem++;
		return;
	}
	struct eobj *o = phys_to_virt(pa);
	o->entry = (struct lf_epoch_entry){ 0 };
	o->seq = (uint64_t)(c->idx + 1) << 40 | ++t->seq;
	for (unsigned i = 0; i < EOBJ_WORDS; i++)
		o->w[i] = o->seq ^ i;
	lf_init_u64(&o->magic, EOBJ_LIVE);
	uint64_t t0 = rdtsc();
	/* Acq_rel: publishes o; takes the old one's contents. */
	struct eobj *old = lf_xchg_ptr(&eslots[slot], o, LF_ACQ_REL);
	if (old) {
		int rc = lf_epoch_retire(c->erec, &old->entry, eobj_reclaim);
		if (rc != LF_EPOCH_OK)
			terror(c, "epoch_retire", (uint64_t)(uintptr_t)old,
			       (uint64_t)-rc);
		lf_fetch_add_u64(&e_retired, 1, LF_RELAXED);
	}
	t->cyc[1] += rdtsc() - t0;
	t->cnt[1]++;
}

static void torture_epoch(struct cpu *c)
{
	struct torture_cpu *t = c->t;
	while (!time_up(t)) {
		uint64_t r = krand(&c->rng);
		unsigned slot = (unsigned)(r % ESLOTS);
		if (((r >> 8) & 7) == 0)
			epoch_replace(c, t, slot);
		else
			epoch_read(c, t, slot);
		t->ops++;
	}
}

void torture_run_cpu(struct cpu *c, unsigned test)
{
	struct torture_cpu *t = c->t;
	t->ops = t->errors = t->enomem = t->remote = 0;
	for (unsigned k = 0; k < NTIMED; k++)
		t->cyc[k] = t->cnt[k] = 0;
	kbarrier_wait(&tbar, ncpus, &t->sense);
	/* The test's time starts when this CPU leaves the start barrier, so
	 * a CPU slow to get there still runs for the whole duration. */
	t->deadline = rdtsc() + kconf.ms * tsc_per_ms;
	if (test == TEST_BUDDY)
		torture_buddy(c);
	else if (test == TEST_VAS)
		torture_vas(c);
	else if (test == TEST_KMEM)
		torture_kmem(c, &t->ops, &t->errors, &t->remote, t->deadline);
	else
		torture_epoch(c);
	/*
	 * The CPU's last buddy call of the test, by its owner: its per-CPU
	 * memory back (version 2: its cache drained; version 3: its
	 * reservation given up but one empty unit, buddy.h), so that the
	 * BSP's buddy_zone_drain_all() at quiescence leaves nothing cached
	 * in either version. Version 3's drain_all takes back only the
	 * reservations' empty units, and a unit the kernel holds a frame of
	 * (a page table, a kmem slab) would stay reserved, its free frames
	 * cached_frames.
	 */
	buddy_cpu_drain(c->bc);
}

/* ---- the report, on the BSP while the others wait ---- */

static const char *test_name(unsigned test)
{
	return test == TEST_BUDDY  ? "buddy"
	       : test == TEST_VAS  ? "vas"
	       : test == TEST_KMEM ? "kmem"
				   : "epoch";
}

static int check_line(const char *name, bool ok, const char *detail)
{
	kprintf("LFK check name=%s status=%s %s\n", name, ok ? "pass" : "fail",
		detail);
	return ok ? 0 : -1;
}

/* After each test (after=NAME) and once more at the end (after=end, before
 * the boot modules are checked): the same check, told apart by after=. */
static int check_buddy(const char *after)
{
	char d[260];
	uint64_t frame = 0;
	/* The BSP's checks since its test (vas, kmem) may have taken frames:
	 * its context drained too, as every CPU's at the end of its test. */
	buddy_cpu_drain(cpus[0].bc);
	buddy_zone_drain_all(cpus[0].bc);
	int inv = buddy_zone_check(zone, true, &frame);
	struct buddy_stats s;
	buddy_zone_stats(zone, &s);
	uint64_t kf = lf_load_u64(&kernel_frames, LF_RELAXED);
	bool ok = inv == 0 && s.cached_frames == 0 &&
		  s.free_frames + kf == s.total_frames;
	ksnprintf(d, sizeof(d),
		  "after=%s invariant=%d frame=%lu total_frames=%lu "
		  "free_frames=%lu cached_frames=%lu kernel_frames=%lu "
		  "merges=%lu splits=%lu",
		  after, inv, frame, s.total_frames, s.free_frames,
		  s.cached_frames, kf, s.merges, s.splits);
	return check_line("buddy_zone", ok, d);
}

/*
 * With every range freed: the invariants with the CPUs' cached ranges
 * still held (A10), then caching off, which returns them all (A11), and
 * the vas one free range; caching on again for the next boot's tests.
 * Leaf-local writes (local) must have happened: the torture is about them.
 */
static int check_vas(void)
{
	char d[240];
	uint64_t where = 0;
	int held = vas_check(&kvas, &where);
	int off = vas_set_caching(&kvas, false);
	int inv = held ? held : vas_check(&kvas, &where);
	struct vas_stats s;
	vas_stats(&kvas, &s);
	int on = vas_set_caching(&kvas, true);
	bool ok = inv == 0 && off == VAS_OK && on == VAS_OK && s.ranges == 0 &&
		  s.free_ranges == 1 && s.free_bytes == VMALLOC_SIZE &&
		  s.local > 0;
	ksnprintf(d, sizeof(d),
		  "invariant=%d where=%#lx caching_off=%d ranges=%lu "
		  "free_ranges=%lu local=%lu nodes=%lu nodes_free=%lu "
		  "retired_nodes=%lu pending_nodes=%lu height=%lu restarts=%lu",
		  inv, where, off, s.ranges, s.free_ranges, s.local, s.nodes,
		  s.nodes_free, s.nodes_retired,
		  lf_load_u64(&kvas.pending_put, LF_RELAXED), s.height,
		  s.restarts);
	return check_line("vas_tree", ok, d);
}

static int check_epoch(void)
{
	char d[200];
	for (unsigned i = 0; i < ESLOTS; i++) {
		struct eobj *o = lf_xchg_ptr(&eslots[i], NULL, LF_ACQ_REL);
		if (o) {
			lf_epoch_retire(cpus[0].erec, &o->entry, eobj_reclaim);
			lf_fetch_add_u64(&e_retired, 1, LF_RELAXED);
		}
	}
	int rc = lf_epoch_barrier(cpus[0].erec);
	struct lf_epoch_stats s;
	lf_epoch_stats(&kepoch, &s);
	uint64_t ret = lf_load_u64(&e_retired, LF_RELAXED);
	uint64_t rec = lf_load_u64(&e_reclaimed, LF_RELAXED);
	bool ok = rc == LF_EPOCH_OK && ret == rec && s.pending == 0;
	ksnprintf(d, sizeof(d),
		  "retired=%lu reclaimed=%lu pending=%lu "
		  "epoch=%lu advances=%lu refused=%lu participants=%lu "
		  "mode=%s",
		  ret, rec, s.pending, s.epoch, s.advances, s.refused,
		  s.participants,
		  lf_epoch_domain_asymmetric(&kepoch) ? "asymmetric"
						      : "fenced");
	return check_line("epoch_reclaim", ok, d);
}

/*
 * One line per test. status=fail names the first reason: errors seen by
 * the test, or too_few_ops when some CPU did fewer than kconf.min_ops
 * operations (a test that hardly ran proves nothing, so it cannot pass).
 */
static const char *report_line(unsigned test, uint64_t errors)
{
	char per[16 * MAX_CPUS], tim[240], why[64];
	uint64_t ops = 0, cyc = 0, cnt = 0, enomem = 0, remote = 0, vw = 0;
	size_t n = 0;
	const char *reason = NULL;
	per[0] = tim[0] = why[0] = '\0';
	for (unsigned i = 0; i < ncpus; i++) {
		ops += tcpu[i].ops;
		enomem += tcpu[i].enomem;
		remote += tcpu[i].remote;
		n += (size_t)ksnprintf(per + n, sizeof(per) - n, "%s%lu",
				       i ? "," : "", tcpu[i].ops);
	}
	if (errors) {
		reason = "errors";
		ksnprintf(why, sizeof(why), " reason=errors");
	} else {
		for (unsigned i = 0; i < ncpus; i++) {
			if (tcpu[i].ops < kconf.min_ops) {
				reason = "too_few_ops";
				ksnprintf(why, sizeof(why),
					  " reason=too_few_ops cpu=%u", i);
				break;
			}
		}
	}
	const char *const *names = timed_names[test == TEST_BUDDY ? 0
					       : test == TEST_VAS ? 1
								  : 2];
	size_t m = 0;
	for (unsigned k = 0; k < NTIMED; k++) {
		uint64_t kc = 0, kn = 0;
		for (unsigned i = 0; i < ncpus; i++) {
			kc += tcpu[i].cyc[k];
			kn += tcpu[i].cnt[k];
		}
		cyc += kc;
		cnt += kn;
		if (test == TEST_VAS && k < 2)
			vw += kn; /* vmalloc, vfree */
		if (kn)
			m += (size_t)ksnprintf(tim + m, sizeof(tim) - m,
					       " %s=%lu %s_cycles=%lu",
					       names[k], kn, names[k], kc / kn);
	}
	/* The rate per CPU and second; for vas, of vmalloc+vfree alone. */
	uint64_t span = (uint64_t)ncpus * (kconf.ms ? kconf.ms : 1);
	char rate[64];
	ksnprintf(rate, sizeof(rate), " per_cpu_s=%lu", ops * 1000 / span);
	if (test == TEST_VAS)
		ksnprintf(rate + kstrlen(rate), sizeof(rate) - kstrlen(rate),
			  " vmalloc_vfree_per_cpu_s=%lu", vw * 1000 / span);
	kprintf("LFK test name=%s status=%s%s cpus=%u ms=%lu min_ops=%lu "
		"ops=%lu ops_per_cpu=%s cycles_per_op=%lu%s enomem=%lu "
		"remote=%lu errors=%lu%s\n",
		test_name(test), reason ? "fail" : "pass", why, ncpus, kconf.ms,
		kconf.min_ops, ops, per, cnt ? cyc / cnt : 0, tim, enomem,
		remote, errors, rate);
	return reason;
}

const char *torture_report(unsigned test)
{
	uint64_t errors = 0;
	for (unsigned i = 0; i < ncpus; i++)
		errors += tcpu[i].errors;
	const char *reason = report_line(test, errors);
	if (test == TEST_VAS && check_vas() != 0 && !reason)
		reason = "check";
	if (test == TEST_EPOCH && check_epoch() != 0 && !reason)
		reason = "check";
	if (test == TEST_KMEM && torture_kmem_check() != 0 && !reason)
		reason = "check";
	if (check_buddy(test_name(test)) != 0 && !reason)
		reason = "check";
	return reason;
}

int torture_final_check(void)
{
	char d[160];
	struct buddy_stats s;
	int rc = check_buddy("end");
	buddy_zone_stats(zone, &s);
	ksnprintf(d, sizeof(d),
		  "allocs=%lu frees=%lu outstanding=%lu "
		  "kernel_frames=%lu kernel_blocks=%lu",
		  s.allocs, s.frees, s.allocs - s.frees,
		  lf_load_u64(&kernel_frames, LF_RELAXED),
		  lf_load_u64(&kernel_blocks, LF_RELAXED));
	/* Every block still allocated is a block the kernel keeps. */
	if (check_line("frames",
		       s.allocs - s.frees ==
			       lf_load_u64(&kernel_blocks, LF_RELAXED),
		       d))
		rc = -1;
	return rc;
}

/* ---- the deliberate fault (cmdline fault=) ---- */

/* Recurses until the stack runs into its guard page. */
static __attribute__((noinline)) uint64_t fault_recurse(uint64_t depth)
{
	volatile uint64_t frame[64];
	frame[depth & 63] = depth;
	if (depth > (1ull << 40)) /* never: the guard page comes first */
		return frame[0];
	return fault_recurse(depth + 1) + frame[depth & 63];
}

/* The first page past a RAM entry that no RAM entry holds. */
static uint64_t fault_hole_addr(void)
{
	for (unsigned i = 0; i < bootmem.nram; i++) {
		uint64_t e =
			(bootmem.ram[i].end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		bool ram = false;
		for (unsigned j = 0; j < bootmem.nram; j++)
			ram |= bootmem.ram[j].base <= e &&
			       e < bootmem.ram[j].end;
		if (!ram && e > 0x100000)
			return e;
	}
	return 0;
}

/* ret: executing it from .data must fault (the data is not executable). */
static uint8_t fault_nx_code[16] = { 0xc3 };

void fault_trigger(enum fault_kind f)
{
	kprintf("LFK fault_trigger kind=%s cpu=%u\n", fault_name(f),
		this_cpu()->idx);
	switch (f) {
	case FAULT_PF:
		*(volatile uint64_t *)(uintptr_t)0xdead000 = 1;
		break;
	case FAULT_GP:
		*(volatile uint64_t *)(uintptr_t)0x8000000000000000ull = 1;
		break;
	case FAULT_UD:
		__asm__ __volatile__("ud2");
		break;
	case FAULT_DE: {
		/* A real div instruction: with a C division by a known zero
		 * the compiler may emit anything but a div. */
		uint32_t eax = 1, edx = 0, zero = 0;
		__asm__ __volatile__("divl %2"
				     : "+a"(eax), "+d"(edx)
				     : "r"(zero));
		kprintf("LFK fault_trigger unreachable=%u\n", eax);
		break;
	}
	case FAULT_STACK:
		kprintf("LFK fault_trigger unreachable=%lu\n",
			fault_recurse(0));
		break;
	case FAULT_WTEXT:
		*(volatile uint8_t *)(uintptr_t)&fault_trigger = 0xcc;
		break;
	case FAULT_NX:
		((void (*)(void))(uintptr_t)fault_nx_code)();
		break;
	case FAULT_HOLE: {
		uint64_t pa = fault_hole_addr();
		kprintf("LFK fault_trigger hole=%#lx\n", pa);
		if (pa)
			kprintf("LFK fault_trigger unreachable=%u\n",
				*(volatile uint8_t *)phys_to_virt(pa));
		break;
	}
	case FAULT_DF:
		/* A stack overflow with no #PF gate: the #NP raised while
		 * delivering the #PF cannot push on the overflowed stack
		 * either, and only #DF, on its own stack, can report it. (The
		 * IDT is shared: every CPU would double-fault on a #PF from
		 * now on, and none takes one but this.) */
		idt_drop(14);
		kprintf("LFK fault_trigger unreachable=%lu\n",
			fault_recurse(0));
		break;
	case FAULT_NMI:
		lapic_nmi_self();
		delay_us(100000);
		break;
	case FAULT_NOIRQ: /* cpu_run() handles these: no exception */
	case FAULT_HANG:
	case FAULT_NONE:
		break;
	}
	kprintf("LFK error fault_trigger returned\n");
	kprintf("LFK end status=fail reason=fault_not_raised\n");
	kexit_fail();
}
