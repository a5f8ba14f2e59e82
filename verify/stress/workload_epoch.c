/*
 * workload_epoch.c: epoch reclamation under contention (invariants E1-E5 of
 * docs/design.md 1.4). Objects live in shared slots; writers swap in a
 * fresh object and retire the old one, whose callback poisons it and gives
 * it back to a free pool (a tagged stack: no allocator anywhere). Readers
 * inside sections check that what they reach is never poisoned. Under ASan
 * the callback also poisons the object's memory, so a premature reuse is a
 * sanitizer report as well as a failed check.
 */
#include "workload.h"

#include "lf_epoch.h"
#include "lf_stack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define WL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WL_ASAN 1
#endif
#endif
#ifdef WL_ASAN
#include <sanitizer/asan_interface.h>
#define WL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define WL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define WL_POISON(p, n) ((void)(p), (void)(n))
#define WL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define WL_LIVE 0x11feull
#define WL_DEAD 0xdeadull
#define WL_SLOTS 8

struct wl_obj {
	struct lf_epoch_entry entry; /* first: the callback gets this */
	lf_atomic_u64 magic;
	lf_atomic_u64 a, b; /* equal while live */
} __attribute__((aligned(64)));

struct wl_epoch {
	struct lf_epoch_domain dom;
	struct lf_epoch_record *recs; /* threads + 1 */
	struct wl_obj *objs;
	lf_atomic_u32 *links; /* free pool's links */
	struct lf_stack pool;
	lf_atomic_ptr slot[WL_SLOTS];
	uint32_t nobj;
	uint64_t deadline;
	uint64_t seed;
	lf_atomic_u64 violations, retired, freed, churns, stalls;
	struct wl_result *res;
};

static struct wl_epoch *wl_epoch_cur; /* the callback's context */

static void wl_obj_free(struct lf_epoch_entry *e)
{
	struct wl_epoch *w = wl_epoch_cur;
	struct wl_obj *o = (struct wl_obj *)e;
	/* Relaxed: the pool's push releases these. */
	lf_store_u64(&o->magic, WL_DEAD, LF_RELAXED);
	lf_store_u64(&o->a, 1, LF_RELAXED);
	lf_store_u64(&o->b, 2, LF_RELAXED);
	WL_POISON(&o->magic, sizeof(*o) - offsetof(struct wl_obj, magic));
	lf_fetch_add_u64(&w->freed, 1, LF_RELAXED);
	lf_stack_push(&w->pool, w->links, (uint32_t)(o - w->objs));
}

static struct wl_obj *wl_obj_get(struct wl_epoch *w, struct lf_epoch_record *r,
				 uint64_t seq)
{
	uint32_t i;
	while ((i = lf_stack_pop(&w->pool, w->links)) == LF_STACK_NIL) {
		/* Every object waits for a grace period: help it along. */
		lf_fetch_add_u64(&w->stalls, 1, LF_RELAXED);
		lf_epoch_poll(r);
	}
	struct wl_obj *o = &w->objs[i];
	WL_UNPOISON(&o->magic, sizeof(*o) - offsetof(struct wl_obj, magic));
	lf_store_u64(&o->a, seq, LF_RELAXED);
	lf_store_u64(&o->b, seq, LF_RELAXED);
	lf_store_u64(&o->magic, WL_LIVE, LF_RELAXED);
	return o;
}

/* One read-side section, sometimes nested; checks what it reaches. */
static void wl_epoch_read(struct wl_epoch *w, struct lf_epoch_record *r,
			  uint64_t rnd)
{
	bool nest = (rnd >> 20) % 8 == 0;
	lf_epoch_enter(r);
	if (nest)
		lf_epoch_enter(r);
	/* Acquire: pairs with the writer's acq_rel exchange. */
	struct wl_obj *o =
		lf_load_ptr(&w->slot[(rnd >> 8) % WL_SLOTS], LF_ACQUIRE);
	uint64_t m = lf_load_u64(&o->magic, LF_RELAXED);
	uint64_t a = lf_load_u64(&o->a, LF_RELAXED);
	uint64_t b = lf_load_u64(&o->b, LF_RELAXED);
	if (m != WL_LIVE || a != b) {
		fprintf(stderr,
			"epoch: reader saw object %td poisoned "
			"(magic %llx, %llu != %llu)\n",
			o - w->objs, (unsigned long long)m,
			(unsigned long long)a, (unsigned long long)b);
		lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
	}
	if (nest)
		lf_epoch_exit(r);
	lf_epoch_exit(r);
}

static void wl_epoch_write(struct wl_epoch *w, struct lf_epoch_record *r,
			   uint64_t rnd, uint64_t seq)
{
	struct wl_obj *o = wl_obj_get(w, r, seq);
	/* Acq_rel: publishes o (release) and takes old (acquire). */
	struct wl_obj *old =
		lf_xchg_ptr(&w->slot[(rnd >> 8) % WL_SLOTS], o, LF_ACQ_REL);
	lf_fetch_add_u64(&w->retired, 1, LF_RELAXED);
	if (lf_epoch_retire(r, &old->entry, wl_obj_free) != LF_EPOCH_OK)
		lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
}

/* Leave and come back through the record pool (E5: nothing is lost). */
static struct lf_epoch_record *
wl_epoch_churn(struct wl_epoch *w, struct lf_epoch_record *r, uint64_t rnd)
{
	if (lf_epoch_unregister(r) != LF_EPOCH_OK)
		lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
	lf_fetch_add_u64(&w->churns, 1, LF_RELAXED);
	(void)rnd; /* r may be someone else's from here on: hands off */
	struct lf_epoch_record *n;
	while ((n = lf_epoch_recycle(&w->dom)) == NULL)
		lf_platform_pause();
	return n;
}

static void wl_epoch_thread(unsigned id, void *arg)
{
	struct wl_epoch *w = arg;
	struct lf_epoch_record *r = &w->recs[id];
	uint64_t rng = w->seed * 0x9e3779b97f4a7c15ull + id + 1, ops = 0;
	if (lf_epoch_register(&w->dom, r) != LF_EPOCH_OK)
		abort();
	while ((ops & 255) != 0 || wl_now_ns() < w->deadline) {
		uint64_t rnd = wl_rand(&rng);
		unsigned op = rnd % 1024;
		if (op < 700)
			wl_epoch_read(w, r, rnd);
		else if (op < 1020)
			wl_epoch_write(w, r, rnd, ops + ((uint64_t)id << 40));
		else if (op < 1022)
			r = wl_epoch_churn(w, r, rnd >> 32);
		else
			lf_epoch_synchronize(r);
		ops++;
	}
	lf_epoch_unregister(r);
	w->res->ops[id] = ops;
}

/* Objects are conserved: live ones in the slots, the rest in the pool. */
static void wl_epoch_final_check(struct wl_epoch *w)
{
	uint8_t *seen = calloc(w->nobj, 1);
	uint32_t n = 0;
	if (seen == NULL)
		abort();
	for (int s = 0; s < WL_SLOTS; s++) {
		struct wl_obj *o = lf_load_ptr(&w->slot[s], LF_ACQUIRE);
		uint32_t i = (uint32_t)(o - w->objs);
		if (seen[i]++ || lf_load_u64(&o->magic, LF_RELAXED) != WL_LIVE)
			lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
		n++;
	}
	for (uint32_t i = lf_stack_pop_all(&w->pool); i != LF_STACK_NIL;
	     i = lf_load_u32(&w->links[i], LF_RELAXED)) {
		if (i >= w->nobj || seen[i]++) {
			lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
			break;
		}
		n++;
	}
	if (n != w->nobj) {
		fprintf(stderr, "epoch: %u of %u objects accounted for\n", n,
			w->nobj);
		lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
	}
	uint64_t ret = lf_load_u64(&w->retired, LF_RELAXED);
	uint64_t fr = lf_load_u64(&w->freed, LF_RELAXED);
	if (ret != fr) {
		fprintf(stderr, "epoch: %llu retired, %llu callbacks ran\n",
			(unsigned long long)ret, (unsigned long long)fr);
		lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
	}
	free(seen);
}

static void wl_epoch_setup(struct wl_epoch *w, unsigned threads)
{
	size_t rsz = sizeof(*w->recs) * (threads + 1);
	w->recs = aligned_alloc(LF_CACHELINE, rsz);
	w->objs = aligned_alloc(64, sizeof(*w->objs) * w->nobj);
	w->links = calloc(w->nobj, sizeof(*w->links));
	if (w->recs == NULL || w->objs == NULL || w->links == NULL)
		abort();
	memset(w->recs, 0, rsz); /* records start zero-filled */
	memset(w->objs, 0, sizeof(*w->objs) * w->nobj);
	lf_epoch_domain_init(&w->dom, 32);
	lf_stack_init(&w->pool);
	lf_init_u64(&w->violations, 0);
	lf_init_u64(&w->retired, 0);
	lf_init_u64(&w->freed, 0);
	lf_init_u64(&w->churns, 0);
	lf_init_u64(&w->stalls, 0);
	for (uint32_t i = 0; i < w->nobj; i++) {
		struct wl_obj *o = &w->objs[i];
		lf_init_u64(&o->magic, WL_LIVE);
		lf_init_u64(&o->a, 0);
		lf_init_u64(&o->b, 0);
		if (i < WL_SLOTS)
			lf_init_ptr(&w->slot[i], o);
		else
			lf_stack_push(&w->pool, w->links, i);
	}
}

int wl_epoch_run(const struct wl_config *cfg, struct wl_result *res)
{
	static struct wl_epoch w;
	w = (struct wl_epoch){ .nobj = cfg->size ? cfg->size : 256,
			       .seed = cfg->seed,
			       .res = res };
	if (w.nobj <= WL_SLOTS)
		w.nobj = WL_SLOTS + 1;
	*res = (struct wl_result){ 0 };
	wl_epoch_cur = &w;
	wl_epoch_setup(&w, cfg->threads);
	w.deadline = wl_now_ns() + (uint64_t)cfg->ms * 1000000u;
	wl_run_threads(cfg->threads, wl_epoch_thread, &w);

	/* Quiescent now: one barrier runs every callback still pending. */
	struct lf_epoch_record *last = &w.recs[cfg->threads];
	if (lf_epoch_register(&w.dom, last) != LF_EPOCH_OK ||
	    lf_epoch_barrier(last) != LF_EPOCH_OK)
		lf_fetch_add_u64(&w.violations, 1, LF_RELAXED);
	struct lf_epoch_stats st;
	lf_epoch_stats(&w.dom, &st);
	if (st.pending != 0 || st.active != 0)
		lf_fetch_add_u64(&w.violations, 1, LF_RELAXED);
	wl_epoch_final_check(&w);

	for (unsigned i = 0; i < cfg->threads; i++)
		res->total += res->ops[i];
	res->violations = lf_load_u64(&w.violations, LF_RELAXED);
	res->name[0] = "objects retired (all reclaimed)";
	res->value[0] = lf_load_u64(&w.retired, LF_RELAXED);
	res->name[1] = "epoch advances";
	res->value[1] = st.advances;
	res->name[2] = "unregister/recycle churns";
	res->value[2] = lf_load_u64(&w.churns, LF_RELAXED);
	res->name[3] = "waits for a free object";
	res->value[3] = lf_load_u64(&w.stalls, LF_RELAXED);
	free(w.recs);
	free(w.objs);
	free(w.links);
	return res->violations == 0 ? 0 : 1;
}
