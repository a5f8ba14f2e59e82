/*
 * coh_dir.c: the coherence directory of coh_dir.h (the rules are there).
 */
#include "coh_dir.h"

#include <stdlib.h>
#include <string.h>

#define COH_DIR_SLOTS0 ((uint64_t)1 << 16)

bool coh_dir_init(struct coh_dir *d)
{
	memset(d, 0, sizeof(*d));
	d->slot = calloc(COH_DIR_SLOTS0, sizeof(*d->slot));
	if (d->slot == NULL)
		return false;
	d->mask = COH_DIR_SLOTS0 - 1;
	return true;
}

void coh_dir_fini(struct coh_dir *d)
{
	free(d->slot);
	d->slot = NULL;
}

void coh_dir_reset(struct coh_dir *d)
{
	memset(d->slot, 0, (d->mask + 1) * sizeof(*d->slot));
	d->used = 0;
	memset(&d->n, 0, sizeof(d->n));
}

static uint64_t coh_dir_hash(uint64_t tag)
{
	tag *= 0x9e3779b97f4a7c15ull; /* Fibonacci hashing */
	return tag ^ (tag >> 29);
}

static struct coh_line *coh_dir_probe(struct coh_line *slot, uint64_t mask,
				      uint64_t tag)
{
	uint64_t i = coh_dir_hash(tag) & mask;

	while (slot[i].tag != 0 && slot[i].tag != tag)
		i = (i + 1) & mask;
	return &slot[i];
}

/* Double the table; a failure to grow is fatal (the counts would lie). */
static void coh_dir_grow(struct coh_dir *d)
{
	uint64_t n = (d->mask + 1) * 2;
	struct coh_line *s = calloc(n, sizeof(*s));

	if (s == NULL)
		abort();
	for (uint64_t i = 0; i <= d->mask; i++)
		if (d->slot[i].tag != 0)
			*coh_dir_probe(s, n - 1, d->slot[i].tag) = d->slot[i];
	free(d->slot);
	d->slot = s;
	d->mask = n - 1;
}

static struct coh_line *coh_dir_line(struct coh_dir *d, uint64_t tag)
{
	struct coh_line *l = coh_dir_probe(d->slot, d->mask, tag);

	if (l->tag != 0)
		return l;
	if (2 * (d->used + 1) > d->mask + 1) {
		coh_dir_grow(d);
		l = coh_dir_probe(d->slot, d->mask, tag);
	}
	d->used++;
	l->tag = tag;
	l->owner = -1;
	l->last = -1;
	return l;
}

static unsigned coh_popcount(uint64_t v)
{
	return (unsigned)__builtin_popcountll(v);
}

/* A miss of cpu on l: cold (its first touch) or a transfer. */
static void coh_dir_miss(struct coh_dir *d, struct coh_line *l, uint64_t me)
{
	if (l->seen & me) {
		d->n.transfers++;
		l->misses++;
	} else {
		d->n.cold++;
		l->seen |= me;
	}
}

static void coh_dir_read(struct coh_dir *d, struct coh_line *l, unsigned cpu)
{
	uint64_t me = (uint64_t)1 << cpu;

	if (l->sharers & me)
		return; /* hit, in M, E or S */
	coh_dir_miss(d, l, me);
	/* Alone: exclusive (E); else an owner, if any, drops to S. */
	l->owner = l->sharers == 0 ? (int8_t)cpu : -1;
	l->sharers |= me;
}

static void coh_dir_write(struct coh_dir *d, struct coh_line *l, unsigned cpu)
{
	uint64_t me = (uint64_t)1 << cpu;
	uint64_t others = l->sharers & ~me;

	if (l->owner == (int)cpu)
		return; /* hit in M or E */
	if (l->sharers & me) {
		d->n.upgrades++;
		l->misses++;
	} else {
		coh_dir_miss(d, l, me);
	}
	d->n.invalidations += coh_popcount(others);
	l->sharers = me;
	l->owner = (int8_t)cpu;
}

static unsigned coh_dir_line_access(struct coh_dir *d, unsigned cpu,
				    uint64_t tag, enum coh_kind kind)
{
	struct coh_line *l = coh_dir_line(d, tag);
	uint64_t before = d->n.transfers + d->n.upgrades;

	d->n.accesses++;
	switch (kind) {
	case COH_READ:
		d->n.reads++;
		coh_dir_read(d, l, cpu);
		break;
	case COH_RMW:
		d->n.rmws++;
		if (l->last >= 0 && l->last != (int)cpu)
			d->n.rmw_remote++;
		coh_dir_write(d, l, cpu);
		break;
	case COH_WRITE:
		d->n.writes++;
		coh_dir_write(d, l, cpu);
		break;
	}
	l->last = (int8_t)cpu;
	return (unsigned)(d->n.transfers + d->n.upgrades - before);
}

unsigned coh_dir_access(struct coh_dir *d, unsigned cpu, uintptr_t addr,
			unsigned size, enum coh_kind kind)
{
	uint64_t first = addr / COH_LINE;
	uint64_t last = (addr + (size ? size : 1) - 1) / COH_LINE;
	unsigned misses = 0;

	if (cpu >= COH_MAX_CPUS)
		abort();
	for (uint64_t t = first; t <= last; t++)
		misses += coh_dir_line_access(d, cpu, t + 1, kind);
	return misses;
}

uint64_t coh_dir_hottest(const struct coh_dir *d)
{
	uint64_t m = 0;

	for (uint64_t i = 0; i <= d->mask; i++)
		if (d->slot[i].tag != 0 && d->slot[i].misses > m)
			m = d->slot[i].misses;
	return m;
}
