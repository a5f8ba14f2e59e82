/*
 * workload_vlock.c: the optimistic version lock under contention
 * (invariants V1-V4 of docs/design.md 1.3). Writers keep two protected
 * fields equal and make them grow, writing one, pausing, then the other; they
 * take the lock directly or by upgrading an optimistic read, and now and then
 * make it obsolete and revive it, as a tree does with a recycled node.
 * Optimistic readers must never validate a pair that differs, nor one older
 * than a pair they validated before.
 */
#include "workload.h"

#include "lf_vlock.h"

#include <stdio.h>

struct wl_vlock {
	struct lf_vlock lock;
	lf_atomic_u64 x; /* (v) protected by lock */
	lf_atomic_u64 y; /* (v) protected by lock; equal to x outside writes */
	uint64_t deadline;
	uint64_t seed;
	lf_atomic_u64 violations, validated, restarts, revivals, upgrades;
	struct wl_result *res;
};

/* The write section: x first, then y, so readers can catch x != y. */
static void wl_vlock_write_pair(struct wl_vlock *w, uint64_t rnd)
{
	uint64_t v = lf_olc_load_u64(&w->x) + 1;
	lf_olc_store_u64(&w->x, v);
	for (unsigned i = 0; i < rnd % 8; i++)
		lf_platform_pause();
	lf_olc_store_u64(&w->y, v);
}

static void wl_vlock_write(struct wl_vlock *w, uint64_t rnd)
{
	while (lf_vlock_write_lock(&w->lock) != LF_VLOCK_OK)
		lf_platform_pause(); /* obsolete until its owner revives it */
	wl_vlock_write_pair(w, rnd);
	if ((rnd >> 16) % 16 == 0) {
		/* Retire and reuse the "node": readers must restart. */
		if (lf_vlock_write_unlock_obsolete(&w->lock) != LF_VLOCK_OK ||
		    lf_vlock_revive_locked(&w->lock) != LF_VLOCK_OK)
			lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
		lf_fetch_add_u64(&w->revivals, 1, LF_RELAXED);
	}
	if (lf_vlock_write_unlock(&w->lock) != LF_VLOCK_OK)
		lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
}

/* Optimistic read, then upgrade to write; restart if the word moved. */
static void wl_vlock_upgrade(struct wl_vlock *w, uint64_t rnd)
{
	uint64_t v;
	for (;;) {
		if (!lf_vlock_read_lock(&w->lock, &v)) {
			lf_platform_pause();
			continue;
		}
		if (lf_vlock_upgrade(&w->lock, v))
			break;
		lf_fetch_add_u64(&w->restarts, 1, LF_RELAXED);
	}
	lf_fetch_add_u64(&w->upgrades, 1, LF_RELAXED);
	wl_vlock_write_pair(w, rnd);
	if (lf_vlock_write_unlock(&w->lock) != LF_VLOCK_OK)
		lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
}

static void wl_vlock_read(struct wl_vlock *w, uint64_t *last)
{
	uint64_t v;
	if (!lf_vlock_read_lock(&w->lock, &v)) {
		lf_fetch_add_u64(&w->restarts, 1, LF_RELAXED);
		return;
	}
	uint64_t x = lf_olc_load_u64(&w->x);
	uint64_t y = lf_olc_load_u64(&w->y);
	if (!lf_vlock_validate(&w->lock, v)) {
		lf_fetch_add_u64(&w->restarts, 1, LF_RELAXED);
		return;
	}
	lf_fetch_add_u64(&w->validated, 1, LF_RELAXED);
	if (x != y || x < *last) {
		fprintf(stderr, "vlock: validated x=%llu y=%llu after %llu\n",
			(unsigned long long)x, (unsigned long long)y,
			(unsigned long long)*last);
		lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
	}
	*last = x;
}

static void wl_vlock_thread(unsigned id, void *arg)
{
	struct wl_vlock *w = arg;
	uint64_t rng = w->seed * 0xbf58476d1ce4e5b9ull + id + 1, ops = 0;
	uint64_t last = 0;
	while ((ops & 255) != 0 || wl_now_ns() < w->deadline) {
		uint64_t rnd = wl_rand(&rng);
		switch (rnd % 8) {
		case 0:
			wl_vlock_write(w, rnd >> 8);
			break;
		case 1:
			wl_vlock_upgrade(w, rnd >> 8);
			break;
		default:
			wl_vlock_read(w, &last);
		}
		ops++;
	}
	w->res->ops[id] = ops;
}

int wl_vlock_run(const struct wl_config *cfg, struct wl_result *res)
{
	/*
	 * Totals and violations, reported as every workload reports them
	 * (workload.h).
	 */
	static struct wl_vlock w;
	w = (struct wl_vlock){ .seed = cfg->seed, .res = res };
	*res = (struct wl_result){ 0 };
	lf_vlock_init(&w.lock);
	lf_init_u64(&w.x, 0);
	lf_init_u64(&w.y, 0);
	lf_init_u64(&w.violations, 0);
	lf_init_u64(&w.validated, 0);
	lf_init_u64(&w.restarts, 0);
	lf_init_u64(&w.revivals, 0);
	lf_init_u64(&w.upgrades, 0);
	w.deadline = wl_now_ns() + (uint64_t)cfg->ms * 1000000u;
	wl_run_threads(cfg->threads, wl_vlock_thread, &w);

	uint64_t writes = lf_load_u64(&w.x, LF_RELAXED);
	if (writes != lf_load_u64(&w.y, LF_RELAXED) ||
	    lf_vlock_word_locked(lf_load_u64(&w.lock.word, LF_RELAXED)))
		lf_fetch_add_u64(&w.violations, 1, LF_RELAXED);
	/* The result filled as every workload fills it; the counters are ours.
	 */
	for (unsigned i = 0; i < cfg->threads; i++)
		res->total += res->ops[i];
	res->violations = lf_load_u64(&w.violations, LF_RELAXED);
	res->name[0] = "validated optimistic reads";
	res->value[0] = lf_load_u64(&w.validated, LF_RELAXED);
	res->name[1] = "restarts (failed validation or obsolete)";
	res->value[1] = lf_load_u64(&w.restarts, LF_RELAXED);
	res->name[2] = "write sections";
	res->value[2] = writes;
	res->name[3] = "obsolete-and-revive cycles";
	res->value[3] = lf_load_u64(&w.revivals, LF_RELAXED);
	return res->violations == 0 ? 0 : 1;
}
