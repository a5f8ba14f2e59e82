/*
 * buddy_cache.c: per-CPU caches of small blocks over the lock-free core, in
 * the style of x15's per-CPU page pools (vm/vm_page.c) and Linux's per-CPU
 * page lists, and the public buddy_alloc() / buddy_free().
 *
 * Each CPU context has, for orders 0 to BUDDY_CACHE_ORDERS - 1, a list of
 * blocks chained through the frames' links, under a cache lock that only
 * the owner takes in the common case (its cache line stays with its CPU);
 * another CPU takes it only to drain the cache when memory runs out, so no
 * memory is stranded (HARD-PARTS, "Per-CPU caches").
 *
 * A cached block's head is CACHED with stk == 0 (B5): its link belongs to
 * the cache list. A block whose link is still held by a stack (stk != 0,
 * a stale entry) is never cached; it is freed to the core instead.
 *
 * The fast paths. Alloc: lock, unlink the top block, unlock, then a release
 * store of ALLOC into its state word: a store, not a CAS, because a CACHED
 * block off every list is ours alone (no stack holds its link, so no popper
 * writes the word; a racing double free fails its CAS on CACHED). Free: one
 * CAS ALLOC -> CACHED on the block's own word (the claim that catches a
 * double free, B2), then lock, link, unlock. No RMW touches a shared line.
 *
 * Refill pops a batch from the order's stack in one CAS (lf_stack_pop_n);
 * if that yields nothing, it claims one block up to 4 orders larger and
 * carves it into the cache. Drain detaches a batch under the lock and frees
 * each block through the core, where it coalesces.
 */
#include "buddy_i.h"

#define BUDDY_CARVE_ORDERS 4 /* refill carves up to 2^4 blocks at once */
_Static_assert(BUDDY_CACHE_BATCH == 1 << BUDDY_CARVE_ORDERS,
	       "a carved block refills one batch");

static void buddy_cache_lock(struct buddy_cpu *c)
{
	/* Acquire: pairs with the release in buddy_cache_unlock(). */
	while (lf_xchg_u32(&c->lock, 1, LF_ACQUIRE) != 0)
		/* Relaxed: spin on a read until it looks free. */
		while (lf_load_u32(&c->lock, LF_RELAXED) != 0)
			lf_platform_pause();
}

static void buddy_cache_unlock(struct buddy_cpu *c)
{
	/* Release: pairs with the acquire in buddy_cache_lock(). */
	lf_store_u32(&c->lock, 0, LF_RELEASE);
}

static void buddy_cache_count(struct buddy_cpu *c, unsigned o, int32_t d)
{
	/* Relaxed: under the lock; stats read it. */
	lf_store_u32(&c->count[o],
		     lf_load_u32(&c->count[o], LF_RELAXED) + (uint32_t)d,
		     LF_RELAXED);
}

/* Link the chain first..last (n blocks) on top of c's list of order o. */
static void buddy_cache_put(struct buddy_cpu *c, unsigned o, uint32_t first,
			    uint32_t last, uint32_t n)
{
	struct buddy_zone *z = c->zone;
	buddy_cache_lock(c);
	/* Relaxed: the lock orders the list. */
	lf_store_u32(&z->link[last], c->head[o], LF_RELAXED);
	c->head[o] = first;
	buddy_cache_count(c, o, (int32_t)n);
	buddy_cache_unlock(c);
}

/* Free each block of a detached chain of order o through the core. */
static void buddy_cache_release(struct buddy_cpu *c, uint32_t x, unsigned o)
{
	struct buddy_zone *z = c->zone;
	while (x != LF_STACK_NIL) {
		/* Relaxed: the chain is ours. */
		uint32_t next = lf_load_u32(&z->link[x], LF_RELAXED);
		/* CACHED -> BUSY: ours alone, like the fast path's store. */
		buddy_st_set(z, x, BK_BUSY, o);
		buddy_free_merge(c, buddy_rgn_of_idx(z, x), x, o);
		x = next;
	}
}

/* Detach up to n blocks of order o from victim's list (lock held). */
static uint32_t buddy_cache_detach(struct buddy_cpu *v, unsigned o,
				   uint32_t n)
{
	struct buddy_zone *z = v->zone;
	uint32_t first = v->head[o], x = first, taken = 0, prev = LF_STACK_NIL;
	while (x != LF_STACK_NIL && taken < n) {
		prev = x;
		/* Relaxed: the lock orders the list. */
		x = lf_load_u32(&z->link[x], LF_RELAXED);
		taken++;
	}
	if (prev != LF_STACK_NIL)
		lf_store_u32(&z->link[prev], LF_STACK_NIL, LF_RELAXED);
	v->head[o] = x;
	buddy_cache_count(v, o, -(int32_t)taken);
	return taken ? first : LF_STACK_NIL;
}

bool buddy_cache_drain_cpu(struct buddy_cpu *c, struct buddy_cpu *victim)
{
	uint32_t chain[BUDDY_CACHE_ORDERS];
	bool any = false;
	buddy_busy(c, 1); /* the detached chains are in our hands */
	buddy_cache_lock(victim);
	for (unsigned o = 0; o < BUDDY_CACHE_ORDERS; o++) {
		chain[o] = buddy_cache_detach(victim, o, UINT32_MAX);
		any |= chain[o] != LF_STACK_NIL;
	}
	buddy_cache_unlock(victim);
	for (unsigned o = 0; o < BUDDY_CACHE_ORDERS; o++)
		buddy_cache_release(c, chain[o], o);
	buddy_busy(c, -1);
	buddy_ctr_add(c, BC_DRAINS, 1);
	return any;
}

void buddy_cpu_drain(struct buddy_cpu *c)
{
	buddy_cache_drain_cpu(c, c);
}

void buddy_cpu_cache_enable(struct buddy_cpu *c, bool on)
{
	c->nocache = !on;
	if (!on)
		buddy_cpu_drain(c);
}

void buddy_zone_drain_all(struct buddy_cpu *c)
{
	(void)buddy_zone_drain_some(c);
}

bool buddy_zone_drain_some(struct buddy_cpu *c)
{
	struct buddy_zone *z = c->zone;
	bool any = false;
	for (uint32_t i = 0; i < z->ncpus; i++)
		any |= buddy_cache_drain_cpu(c, &z->cpus[i]);
	return any;
}

/*
 * x is BUSY(m), ours, m - o <= BUDDY_CARVE_ORDERS: make it 2^(m-o) blocks
 * of order o in the cache. A piece whose link a stack still holds (a stale
 * entry, stk != 0) cannot be cached (B5): it is freed through the core.
 */
static void buddy_cache_carve(struct buddy_cpu *c, uint32_t x, unsigned m,
			      unsigned o)
{
	struct buddy_zone *z = c->zone;
	const struct buddy_rgn *r = buddy_rgn_of_idx(z, x);
	uint32_t first = LF_STACK_NIL, last = LF_STACK_NIL, n = 0;
	uint32_t step = (uint32_t)1 << o;
	for (uint32_t y = x; y < x + ((uint32_t)1 << m); y += step) {
		/* Relaxed: y is ours; only its stk may change under us. */
		if (bst_stk(lf_load_u16(&z->st[y], LF_RELAXED)) != 0) {
			buddy_st_set(z, y, BK_BUSY, o);
			buddy_free_merge(c, r, y, o);
			continue;
		}
		buddy_st_set(z, y, BK_CACHED, o);
		/* Relaxed: the cache lock publishes the chain. */
		lf_store_u32(&z->link[y], first, LF_RELAXED);
		first = y;
		if (last == LF_STACK_NIL)
			last = y;
		n++;
	}
	buddy_ctr_add(c, BC_SPLITS, ((uint64_t)1 << (m - o)) - 1);
	if (n)
		buddy_cache_put(c, o, first, last, n);
}

/* Claimed block x (BUSY(m), m >= o) into the cache, split as needed. */
static void buddy_cache_take(struct buddy_cpu *c, uint32_t x, unsigned m,
			     unsigned o)
{
	unsigned top = o + BUDDY_CARVE_ORDERS;
	if (m > top) {
		buddy_split_low(c, x, m, top);
		m = top;
	}
	buddy_cache_carve(c, x, m, o);
}

/*
 * The cache of order o is empty: fill it with a batch popped from the
 * order's stack in one CAS, or else by carving one larger block. False if
 * neither found anything (the caller goes to the core's slow path).
 */
static bool buddy_cache_refill(struct buddy_cpu *c, unsigned o)
{
	struct buddy_zone *z = c->zone;
	uint32_t cnt;
	bool any = false;
	buddy_busy(c, 1); /* the popped batch is in our hands */
	uint32_t x = lf_stack_pop_n(&z->stacks[o].s, z->link,
				    (uint32_t)z->nframes, BUDDY_CACHE_BATCH,
				    &cnt);
	buddy_ctr_add(c, BC_REFILLS, 1);
	for (uint32_t i = 0; i < cnt; i++) {
		/* Relaxed: the popped chain is ours. */
		uint32_t next = lf_load_u32(&z->link[x], LF_RELAXED);
		unsigned mo;
		if (buddy_pop_take(c, x, o, o, &mo)) {
			buddy_cache_take(c, x, mo, o);
			buddy_busy(c, -1); /* taken BUSY by buddy_pop_take */
			any = true;
		}
		x = next;
	}
	buddy_busy(c, -1);
	if (any)
		return true;
	unsigned mo;
	x = buddy_take(c, o + 1, BUDDY_MAX_ORDER, BUDDY_NOLIMIT, &mo);
	if (x == LF_STACK_NIL)
		return false;
	buddy_cache_take(c, x, mo, o);
	buddy_busy(c, -1);
	return true;
}

/* Unlink the top block of c's list of order o, or LF_STACK_NIL. */
static uint32_t buddy_cache_get(struct buddy_cpu *c, unsigned o)
{
	struct buddy_zone *z = c->zone;
	buddy_cache_lock(c);
	uint32_t x = c->head[o];
	if (x != LF_STACK_NIL) {
		/* Relaxed: the lock orders the list. */
		c->head[o] = lf_load_u32(&z->link[x], LF_RELAXED);
		buddy_cache_count(c, o, -1);
	}
	buddy_cache_unlock(c);
	return x;
}

/* Push x (just made CACHED) on c's list; drain a batch if it is full. */
static void buddy_cache_push(struct buddy_cpu *c, uint32_t x, unsigned o)
{
	struct buddy_zone *z = c->zone;
	uint32_t chain = LF_STACK_NIL;
	buddy_cache_lock(c);
	/* Relaxed: under the lock. */
	if (lf_load_u32(&c->count[o], LF_RELAXED) >= BUDDY_CACHE_HIGH) {
		buddy_busy(c, 1); /* the batch is in our hands */
		chain = buddy_cache_detach(c, o, BUDDY_CACHE_BATCH);
	}
	lf_store_u32(&z->link[x], c->head[o], LF_RELAXED);
	c->head[o] = x;
	buddy_cache_count(c, o, 1);
	buddy_cache_unlock(c);
	if (chain != LF_STACK_NIL) {
		buddy_cache_release(c, chain, o);
		buddy_busy(c, -1);
		buddy_ctr_add(c, BC_DRAINS, 1);
	}
}

/* Allocate order o < BUDDY_CACHE_ORDERS through the cache: ALLOC, ours. */
static int buddy_cache_alloc(struct buddy_cpu *c, unsigned o, uint32_t *xp)
{
	struct buddy_zone *z = c->zone;
	uint32_t x = buddy_cache_get(c, o);
	if (x == LF_STACK_NIL && buddy_cache_refill(c, o))
		x = buddy_cache_get(c, o); /* NIL if drained meanwhile */
	if (x != LF_STACK_NIL) {
		/*
		 * Release store, not CAS: a CACHED block off every list has
		 * no other writer (B5). Pairs with the acquire of its free.
		 */
		lf_store_u16(&z->st[x], bst_make(BK_ALLOC, o, 0), LF_RELEASE);
		*xp = x;
		return BUDDY_OK;
	}
	int rc = buddy_take_global(c, o, BUDDY_NOLIMIT, &x);
	if (rc == BUDDY_OK)
		buddy_st_set(z, x, BK_ALLOC, o);
	*xp = x;
	return rc;
}

int buddy_alloc(struct buddy_cpu *c, unsigned order, uint64_t *addr)
{
	if (c == NULL || addr == NULL)
		return BUDDY_EINVAL;
	if (order > BUDDY_MAX_ORDER)
		return buddy_reject(c, BUDDY_EINVAL);
	uint32_t x;
	int rc;
	if (order < BUDDY_CACHE_ORDERS && !c->nocache) {
		rc = buddy_cache_alloc(c, order, &x);
	} else {
		rc = buddy_take_global(c, order, BUDDY_NOLIMIT, &x);
		if (rc == BUDDY_OK)
			buddy_st_set(c->zone, x, BK_ALLOC, order);
	}
	if (rc != BUDDY_OK) {
		buddy_ctr_add(c, BC_FAILED, 1);
		return rc;
	}
	buddy_ctr_add(c, BC_ALLOCS, 1);
	*addr = buddy_idx_addr(c->zone, x);
	return BUDDY_OK;
}

/* Free through the cache if the block's link is free (B5), else the core. */
static int buddy_cache_free(struct buddy_cpu *c, const struct buddy_rgn *r,
			    uint32_t x, unsigned o)
{
	struct buddy_zone *z = c->zone;
	/* Acquire: pairs with the release that made it ALLOC. */
	uint16_t s = lf_load_u16(&z->st[x], LF_ACQUIRE);
	while (bst_is(s, BK_ALLOC, o) && bst_stk(s) == 0) {
		/* Acq_rel: the claim that catches a double free (B2). */
		if (lf_cas_u16(&z->st[x], &s, bst_with(s, BK_CACHED, o),
			       LF_ACQ_REL)) {
			buddy_cache_push(c, x, o);
			return BUDDY_OK;
		}
	}
	int rc = buddy_free_claim(z, r, x, o, BK_BUSY);
	if (rc == BUDDY_OK)
		buddy_free_merge(c, r, x, o);
	return rc;
}

int buddy_free(struct buddy_cpu *c, uint64_t addr, unsigned order)
{
	if (c == NULL)
		return BUDDY_EINVAL;
	struct buddy_zone *z = c->zone;
	const struct buddy_rgn *r;
	int rc = buddy_addr_check(z, addr, order, &r);
	if (rc != BUDDY_OK)
		return buddy_reject(c, rc);
	uint32_t x = buddy_addr_idx(r, addr);
	if (order < BUDDY_CACHE_ORDERS && !c->nocache) {
		rc = buddy_cache_free(c, r, x, order);
	} else {
		rc = buddy_free_claim(z, r, x, order, BK_BUSY);
		if (rc == BUDDY_OK)
			buddy_free_merge(c, r, x, order);
	}
	if (rc != BUDDY_OK)
		return buddy_reject(c, rc);
	buddy_ctr_add(c, BC_FREES, 1);
	return BUDDY_OK;
}
