/*
 * workload_stack.c: the tagged stack under contention (invariants S1-S4 of
 * docs/design.md 1.2). A small element pool makes the same elements come
 * back to the top again and again, which is where ABA would bite.
 */
#include "workload.h"

#include "lf_stack.h"

#include <stdio.h>
#include <stdlib.h>

struct wl_stack {
	struct lf_stack stack;
	lf_atomic_u32 *links;
	lf_atomic_u32 *owner; /* 0 while on the stack, else thread id + 1 */
	uint32_t size;
	uint64_t deadline;
	uint64_t seed;
	lf_atomic_u64 violations;
	lf_atomic_u64 batches; /* pop_n, push_chain and pop_all calls */
	struct wl_result *res;
};

/* Claim a popped element: the only legal previous owner is the stack. */
static void wl_stack_claim(struct wl_stack *w, uint32_t e, unsigned id)
{
	if (e >= w->size) {
		fprintf(stderr, "stack: popped index %u out of range\n", e);
		lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
		return;
	}
	uint32_t free_ = 0;
	/* Relaxed: atomicity alone detects a double hand-out. */
	if (!lf_cas_u32(&w->owner[e], &free_, id + 1, LF_RELAXED)) {
		fprintf(stderr,
			"stack: element %u handed to thread %u while "
			"owned by %u\n",
			e, id, free_ - 1);
		lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
	}
}

/* Give up ownership before the element goes back (push releases it). */
static void wl_stack_unclaim(struct wl_stack *w, uint32_t e)
{
	lf_store_u32(&w->owner[e], 0, LF_RELAXED);
}

/* Take a popped chain (ends with NIL) into held[]. */
static unsigned wl_stack_take_chain(struct wl_stack *w, uint32_t e, unsigned id,
				    uint32_t *held, unsigned n)
{
	while (e != LF_STACK_NIL && e < w->size) {
		wl_stack_claim(w, e, id);
		held[n++] = e;
		e = lf_load_u32(&w->links[e], LF_RELAXED);
	}
	return n;
}

/* Link held[from..n) into a chain and push it in one CAS. */
static void wl_stack_push_held(struct wl_stack *w, uint32_t *held,
			       unsigned from, unsigned n)
{
	if (from >= n)
		return;
	for (unsigned i = from; i < n; i++) {
		wl_stack_unclaim(w, held[i]);
		if (i + 1 < n)
			lf_store_u32(&w->links[held[i]], held[i + 1],
				     LF_RELAXED);
	}
	lf_stack_push_chain(&w->stack, w->links, held[from], held[n - 1]);
}

static unsigned wl_stack_step(struct wl_stack *w, unsigned id, uint64_t r,
			      uint32_t *held, unsigned n)
{
	uint32_t e, cnt;
	switch (r % 16) {
	case 0:
	case 1:
	case 2:
	case 3:
	case 4:
	case 5:
		e = lf_stack_pop(&w->stack, w->links);
		if (e != LF_STACK_NIL) {
			wl_stack_claim(w, e, id);
			held[n++] = e;
		}
		return n;
	case 6:
	case 7:
	case 8:
	case 9:
	case 10:
	case 11:
		if (n > 0) {
			wl_stack_unclaim(w, held[n - 1]);
			lf_stack_push(&w->stack, w->links, held[--n]);
		}
		return n;
	case 12:
	case 13:
		lf_fetch_add_u64(&w->batches, 1, LF_RELAXED);
		e = lf_stack_pop_n(&w->stack, w->links, w->size,
				   1 + (uint32_t)(r >> 8) % 8, &cnt);
		return wl_stack_take_chain(w, e, id, held, n);
	case 14:
		lf_fetch_add_u64(&w->batches, 1, LF_RELAXED);
		wl_stack_push_held(w, held, n / 2, n);
		return n / 2;
	default:
		if ((r >> 8) % 16 != 0)
			return n;
		lf_fetch_add_u64(&w->batches, 1, LF_RELAXED);
		e = lf_stack_pop_all(&w->stack);
		return wl_stack_take_chain(w, e, id, held, n);
	}
}

static void wl_stack_thread(unsigned id, void *arg)
{
	struct wl_stack *w = arg;
	uint32_t *held = calloc(w->size, sizeof(*held));
	uint64_t rng = w->seed * 2654435761u + id + 1, ops = 0;
	unsigned n = 0;
	if (held == NULL)
		abort();
	while ((ops & 255) != 0 || wl_now_ns() < w->deadline) {
		n = wl_stack_step(w, id, wl_rand(&rng), held, n);
		ops++;
	}
	wl_stack_push_held(w, held, 0, n);
	w->res->ops[id] = ops;
	free(held);
}

/* Every element on the stack exactly once, every owner word clear. */
static void wl_stack_final_check(struct wl_stack *w)
{
	uint8_t *seen = calloc(w->size, 1);
	uint32_t count = 0;
	if (seen == NULL)
		abort();
	for (uint32_t e = lf_stack_pop_all(&w->stack); e != LF_STACK_NIL;
	     e = lf_load_u32(&w->links[e], LF_RELAXED)) {
		if (e >= w->size || seen[e]++ || ++count > w->size) {
			fprintf(stderr, "stack: final chain broken at %u\n", e);
			lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
			break;
		}
		if (lf_load_u32(&w->owner[e], LF_RELAXED) != 0)
			lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
	}
	if (count != w->size) {
		fprintf(stderr, "stack: %u of %u elements at the end\n", count,
			w->size);
		lf_fetch_add_u64(&w->violations, 1, LF_RELAXED);
	}
	free(seen);
}

int wl_stack_run(const struct wl_config *cfg, struct wl_result *res)
{
	struct wl_stack w = { .size = cfg->size ? cfg->size : 64,
			      .seed = cfg->seed,
			      .res = res };
	*res = (struct wl_result){ 0 };
	w.links = calloc(w.size, sizeof(*w.links));
	w.owner = calloc(w.size, sizeof(*w.owner));
	if (w.links == NULL || w.owner == NULL)
		abort();
	lf_stack_init(&w.stack);
	lf_init_u64(&w.violations, 0);
	lf_init_u64(&w.batches, 0);
	for (uint32_t i = 0; i < w.size; i++) {
		lf_init_u32(&w.owner[i], 0);
		lf_init_u32(&w.links[i], i + 1 < w.size ? i + 1 : LF_STACK_NIL);
	}
	lf_stack_push_chain(&w.stack, w.links, 0, w.size - 1);
	w.deadline = wl_now_ns() + (uint64_t)cfg->ms * 1000000u;
	wl_run_threads(cfg->threads, wl_stack_thread, &w);
	wl_stack_final_check(&w);
	for (unsigned i = 0; i < cfg->threads; i++)
		res->total += res->ops[i];
	res->violations = lf_load_u64(&w.violations, LF_RELAXED);
	res->name[0] = "elements";
	res->value[0] = w.size;
	res->name[1] = "batch operations (pop_n, push_chain, pop_all)";
	res->value[1] = lf_load_u64(&w.batches, LF_RELAXED);
	free(w.links);
	free(w.owner);
	return res->violations == 0 ? 0 : 1;
}
