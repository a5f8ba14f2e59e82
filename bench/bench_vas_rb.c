/*
 * bench_vas_rb.c: the baseline address range allocator of bench_vas: the
 * same allocator as vaspace/ (every range in a tree by start, free ranges
 * also in a tree by (length, start), best fit, coalescing on free), on
 * red-black trees from BSD <sys/tree.h> (Debian libbsd-dev), synchronized
 * the classic way: a pthread reader-writer lock (lookups read-lock, alloc
 * and free write-lock), or one pthread mutex for everything. Nodes come
 * from a free list kept under the same lock, refilled from a huge-page
 * arena (bench_arena.h) as the B+-tree's nodes are.
 */
#include "bench_arena.h"
#include "bench_vas.h"

#include <bsd/sys/tree.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct rb_range {
	RB_ENTRY(rb_range) by_addr; /* every range */
	RB_ENTRY(rb_range) by_size; /* free ranges only */
	uint64_t start, len;        /* bytes */
	bool allocated;
	struct rb_range *pool_next; /* on the node pool */
};

static int rb_cmp_addr(const struct rb_range *a, const struct rb_range *b)
{
	return (a->start > b->start) - (a->start < b->start);
}

static int rb_cmp_size(const struct rb_range *a, const struct rb_range *b)
{
	if (a->len != b->len)
		return (a->len > b->len) - (a->len < b->len);
	return rb_cmp_addr(a, b);
}

RB_HEAD(rb_addr_tree, rb_range);
RB_HEAD(rb_size_tree, rb_range);
/*
 * RB_GENERATE_STATIC would mark the functions with __unused, which libbsd
 * leaves undefined (it clashes with a glibc struct member): say it here.
 */
#define RB_STATIC_UNUSED __attribute__((unused)) static
RB_GENERATE_INTERNAL(rb_addr_tree, rb_range, by_addr, rb_cmp_addr,
		     RB_STATIC_UNUSED)
RB_GENERATE_INTERNAL(rb_size_tree, rb_range, by_size, rb_cmp_size,
		     RB_STATIC_UNUSED)

struct rb_va {
	pthread_rwlock_t rw; /* BENCH_VAS_RWLOCK */
	pthread_mutex_t mu;  /* BENCH_VAS_MUTEX */
	enum bench_vas_lock kind;
	struct rb_addr_tree addr;
	struct rb_size_tree size;
	struct bench_arena arena; /* where nodes come from */
	struct rb_range *pool;    /* free nodes */
	uint64_t nodes;           /* nodes in the trees */
	uint64_t pooled;          /* nodes on the pool */
	uint64_t base, end;
};

static void rb_lock_read(struct rb_va *a)
{
	if (a->kind == BENCH_VAS_RWLOCK)
		pthread_rwlock_rdlock(&a->rw);
	else
		pthread_mutex_lock(&a->mu);
}

static void rb_lock_write(struct rb_va *a)
{
	if (a->kind == BENCH_VAS_RWLOCK)
		pthread_rwlock_wrlock(&a->rw);
	else
		pthread_mutex_lock(&a->mu);
}

static void rb_unlock(struct rb_va *a)
{
	if (a->kind == BENCH_VAS_RWLOCK)
		pthread_rwlock_unlock(&a->rw);
	else
		pthread_mutex_unlock(&a->mu);
}

/* A node from the pool (caller holds the write side); NULL if out. */
static struct rb_range *rb_node_get(struct rb_va *a)
{
	struct rb_range *n = a->pool;

	if (n != NULL) {
		a->pool = n->pool_next;
		a->pooled--;
	} else if ((n = bench_arena_get(&a->arena)) == NULL) {
		return NULL;
	}
	a->nodes++;
	return n;
}

static void rb_node_put(struct rb_va *a, struct rb_range *n)
{
	n->pool_next = a->pool;
	a->pool = n;
	a->pooled++;
	a->nodes--;
}

/* The range holding addr: the last one starting at or below it. */
static struct rb_range *rb_find_le(struct rb_va *a, uint64_t addr)
{
	struct rb_range *n = RB_ROOT(&a->addr), *best = NULL;

	while (n != NULL) {
		if (n->start <= addr) {
			best = n;
			n = RB_RIGHT(n, by_addr);
		} else {
			n = RB_LEFT(n, by_addr);
		}
	}
	return best;
}

static struct rb_range *rb_insert_range(struct rb_va *a, struct rb_range *n,
					uint64_t start, uint64_t len,
					bool allocated)
{
	n->start = start;
	n->len = len;
	n->allocated = allocated;
	RB_INSERT(rb_addr_tree, &a->addr, n);
	if (!allocated)
		RB_INSERT(rb_size_tree, &a->size, n);
	return n;
}

static void *rb_create(uint64_t base, uint64_t size, enum bench_vas_lock k)
{
	struct rb_va *a = calloc(1, sizeof(*a));
	struct rb_range *n;

	if (a == NULL)
		return NULL;
	pthread_rwlock_init(&a->rw, NULL);
	pthread_mutex_init(&a->mu, NULL);
	a->kind = k;
	bench_arena_init(&a->arena, sizeof(struct rb_range), 16);
	RB_INIT(&a->addr);
	RB_INIT(&a->size);
	a->base = base;
	a->end = base + size;
	if ((n = rb_node_get(a)) == NULL) {
		bench_arena_destroy(&a->arena);
		free(a);
		return NULL;
	}
	rb_insert_range(a, n, base, size, false);
	return a;
}

static void *rb_create_rwlock(uint64_t base, uint64_t size, unsigned nth)
{
	(void)nth;
	return rb_create(base, size, BENCH_VAS_RWLOCK);
}

static void *rb_create_mutex(uint64_t base, uint64_t size, unsigned nth)
{
	(void)nth;
	return rb_create(base, size, BENCH_VAS_MUTEX);
}

static void rb_destroy(void *p)
{
	struct rb_va *a = p;

	bench_arena_destroy(&a->arena); /* every node, in the trees or not */
	pthread_rwlock_destroy(&a->rw);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

static int rb_lookup(void *p, unsigned id, uint64_t addr, uint64_t *start)
{
	struct rb_va *a = p;
	struct rb_range *n;
	int rc = -1;

	(void)id;
	rb_lock_read(a);
	n = rb_find_le(a, addr);
	if (n != NULL && n->allocated && addr - n->start < n->len) {
		*start = n->start;
		rc = 0;
	}
	rb_unlock(a);
	return rc;
}

static unsigned rb_lookup_n(void *p, unsigned id, const uint64_t *addr,
			    unsigned n, uint64_t *start)
{
	struct rb_va *a = p;
	unsigned hits = 0;

	(void)id;
	rb_lock_read(a);
	for (unsigned i = 0; i < n; i++) {
		struct rb_range *r = rb_find_le(a, addr[i]);
		bool hit = r != NULL && r->allocated &&
			   addr[i] - r->start < r->len;
		start[i] = hit ? r->start : UINT64_MAX;
		hits += hit;
	}
	rb_unlock(a);
	return hits;
}

static int rb_alloc_locked(struct rb_va *a, uint64_t size, uint64_t *addr)
{
	struct rb_range key = { .start = 0, .len = size }, *n, *tail = NULL;

	n = RB_NFIND(rb_size_tree, &a->size, &key);
	if (n == NULL)
		return -1;
	if (n->len > size && (tail = rb_node_get(a)) == NULL)
		return -1;
	RB_REMOVE(rb_size_tree, &a->size, n);
	if (tail != NULL)
		rb_insert_range(a, tail, n->start + size, n->len - size, false);
	n->len = size;
	n->allocated = true;
	*addr = n->start;
	return 0;
}

static int rb_alloc(void *p, unsigned id, uint64_t size, uint64_t *addr)
{
	struct rb_va *a = p;
	int rc;

	(void)id;
	rb_lock_write(a);
	rc = rb_alloc_locked(a, size, addr);
	rb_unlock(a);
	return rc;
}

/* [addr, addr + size) out of the free range n: head, middle, tail. */
static int rb_alloc_at_locked(struct rb_va *a, uint64_t addr, uint64_t size)
{
	struct rb_range *n = rb_find_le(a, addr), *mid, *tail = NULL;
	uint64_t end;

	if (n == NULL || n->allocated || addr - n->start >= n->len ||
	    size > n->start + n->len - addr)
		return -1;
	end = n->start + n->len;
	mid = addr > n->start ? rb_node_get(a) : n;
	if (mid == NULL)
		return -1;
	if (addr + size < end && (tail = rb_node_get(a)) == NULL) {
		if (mid != n)
			rb_node_put(a, mid);
		return -1;
	}
	RB_REMOVE(rb_size_tree, &a->size, n);
	if (mid != n) { /* n stays as the free head */
		n->len = addr - n->start;
		RB_INSERT(rb_size_tree, &a->size, n);
		rb_insert_range(a, mid, addr, size, true);
	} else {
		n->len = size;
		n->allocated = true;
	}
	if (tail != NULL)
		rb_insert_range(a, tail, addr + size, end - addr - size, false);
	return 0;
}

/* The ops-table entry for rb_<op>_locked(a, addr, size): the write lock. */
#define RB_WRITER(op)                                                          \
	static int rb_##op(void *p, unsigned id, uint64_t addr, uint64_t size) \
	{                                                                      \
		struct rb_va *a = p;                                           \
		int rc;                                                        \
		(void)id;                                                      \
		rb_lock_write(a);                                              \
		rc = rb_##op##_locked(a, addr, size);                          \
		rb_unlock(a);                                                  \
		return rc;                                                     \
	}

RB_WRITER(alloc_at)

static int rb_free_locked(struct rb_va *a, uint64_t addr, uint64_t size)
{
	struct rb_range key = { .start = addr }, *n, *prev, *next;

	n = RB_FIND(rb_addr_tree, &a->addr, &key);
	if (n == NULL || !n->allocated || n->len != size)
		return -1;
	n->allocated = false;
	prev = RB_PREV(rb_addr_tree, &a->addr, n);
	if (prev != NULL && !prev->allocated) {
		RB_REMOVE(rb_size_tree, &a->size, prev);
		RB_REMOVE(rb_addr_tree, &a->addr, n);
		prev->len += n->len;
		rb_node_put(a, n);
		n = prev;
	}
	next = RB_NEXT(rb_addr_tree, &a->addr, n);
	if (next != NULL && !next->allocated) {
		RB_REMOVE(rb_size_tree, &a->size, next);
		RB_REMOVE(rb_addr_tree, &a->addr, next);
		n->len += next->len;
		rb_node_put(a, next);
	}
	RB_INSERT(rb_size_tree, &a->size, n);
	/*
	 * The baseline's own tree steps (remove, resize, re-insert in both
	 * trees) as in the function above: the red-black baseline is written
	 * plainly, like a textbook allocator, on purpose.
	 */
	return 0;
}

RB_WRITER(free)

static int rb_fail(const char *what, const struct rb_range *n)
{
	fprintf(stderr, "rb baseline: %s at range [%#llx, +%#llx)\n", what,
		n ? (unsigned long long)n->start : 0ULL,
		n ? (unsigned long long)n->len : 0ULL);
	return -1;
}

/*
 * The ranges tile [base, end) in order, free neighbours are coalesced,
 * every free range is in the size tree and nothing else is.
 */
static int rb_check(void *p, uint64_t nranges)
{
	struct rb_va *a = p;
	struct rb_range *n, *prev = NULL;
	uint64_t at = a->base, allocated = 0, nfree = 0, nsize = 0;

	RB_FOREACH(n, rb_addr_tree, &a->addr)
	{
		if (n->start != at || n->len == 0)
			return rb_fail("gap, overlap or empty range", n);
		if (!n->allocated) {
			nfree++;
			if (prev != NULL && !prev->allocated)
				return rb_fail("uncoalesced free ranges", n);
			if (RB_FIND(rb_size_tree, &a->size, n) != n)
				return rb_fail("free range not in size tree",
					       n);
		}
		allocated += n->allocated;
		at += n->len;
		prev = n;
	}
	RB_FOREACH(n, rb_size_tree, &a->size)
	nsize++;
	if (at != a->end || nsize != nfree || allocated != nranges ||
	    allocated + nfree != a->nodes)
		return rb_fail("wrong totals", NULL);
	return 0;
}

static uint64_t rb_bytes(void *p)
{
	struct rb_va *a = p;

	return (a->nodes + a->pooled) * sizeof(struct rb_range);
}

/* One ops table per implementation (bench_vas.h), as bench_vas_lf.c's. */
#define RB_OPS(create_fn)                                                      \
	{                                                                      \
		.create = create_fn, .destroy = rb_destroy,                    \
		.lookup = rb_lookup, .lookup_n = rb_lookup_n,                  \
		.alloc = rb_alloc, .alloc_at = rb_alloc_at, .free = rb_free,   \
		.check = rb_check, .bytes = rb_bytes,                          \
	}
const struct bench_vas_ops bench_vas_ops_rb_rwlock = RB_OPS(rb_create_rwlock);
const struct bench_vas_ops bench_vas_ops_rb_mutex = RB_OPS(rb_create_mutex);
