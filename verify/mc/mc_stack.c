/*
 * mc_stack.c: the tagged stack (lockfree/lf_stack.c) under the model
 * checker, and the same harness on an untagged stack (self.stack_aba),
 * which the checker must catch.
 *
 * Four elements; the stack starts with some of them. Each thread runs a
 * script: p pop, P push the oldest element it holds, n pop_n(2),
 * a pop_all, c push_chain of everything it holds. Every execution checks:
 *   - S3 at every pop: the element was on the stack, not held by anyone
 *     (an element handed out twice fails at once);
 *   - S1 at the end: the tag moved by one per successful operation;
 *   - S2, S3 at the end: the chain from the head is exactly the elements
 *     that nobody holds, each once, ending with NIL;
 *   - linearizability of the history against a sequential stack.
 * S4 (visibility of what the pusher wrote) is a memory-order property that
 * a sequentially consistent scheduler cannot falsify. S5 (a pop's CAS is
 * a release: what its caller wrote before it is visible to whoever sees
 * the head it wrote) is checked with a flag that goes through the
 * writer's store buffer (mc.c, "Store buffers"): f stores it (relaxed),
 * w loads the head and, if a pop left it empty, the flag, which must be
 * set (stack.pop_release; each popper ends with a w, a scheduling point
 * before its end, which would drain its buffer). The buddy's failing passes
 * relied on S5 to see the section of whoever emptied a stack
 * (docs/design.md 2.4).
 */
#include <string.h>

#include "lf_stack.h"
#include "lin.h"
#include "mc.h"
#include "mc_tests.h"

#define NE 4
#define ON_STACK 0xff

enum { PUSH, POP, POPN, POPALL, CHAIN };
static const char *const mcs_names[] = { "push", "pop", "pop_n", "pop_all",
					 "push_chain" };

struct mcs_cfg {
	const char *init; /* elements on the stack, top first: "012" */
	const char *script[MC_MAX_THREADS];
	bool untagged;    /* the broken stack of the self-test */
	bool buffer_flag; /* flag's stores go through store buffers (S5) */
};

static struct {
	struct lf_stack s;
	lf_atomic_u64 raw; /* the untagged stack's head: an index only */
	lf_atomic_u32 links[NE];
	lf_atomic_u32 flag; /* S5: set by f before its pops, read by w */
	uint8_t owner[NE];
	uint32_t held[MC_MAX_THREADS][NE];
	unsigned nheld[MC_MAX_THREADS];
	unsigned ops_ok; /* successful head changes, for S1 */
	uint32_t tag0;
	struct lin_history h;
} S;

/* The broken variant: Treiber's stack without a tag (ABA). */
static void mcs_raw_push(uint32_t x)
{
	uint64_t h = lf_load_u64(&S.raw, LF_RELAXED);
	do
		lf_store_u32(&S.links[x], (uint32_t)h, LF_RELAXED);
	while (!lf_cas_u64(&S.raw, &h, x, LF_RELEASE));
}

static uint32_t mcs_raw_pop(void)
{
	uint64_t h = lf_load_u64(&S.raw, LF_ACQUIRE);
	for (;;) {
		if ((uint32_t)h == LF_STACK_NIL)
			return LF_STACK_NIL;
		uint32_t below = lf_load_u32(&S.links[h], LF_RELAXED);
		if (lf_cas_u64(&S.raw, &h, below, LF_ACQUIRE))
			return (uint32_t)h;
	}
}

static void mcs_setup(void)
{
	const struct mcs_cfg *cfg = mc_cfg();
	memset(&S, 0, sizeof(S));
	lf_stack_init(&S.s);
	lf_init_u64(&S.raw, LF_STACK_NIL);
	lf_init_u32(&S.flag, 0);
	for (unsigned i = 0; i < NE; i++) {
		lf_init_u32(&S.links[i], LF_STACK_NIL);
		S.owner[i] = MC_MAX_THREADS; /* nobody: not in this test */
	}
	/* Push bottom first, so that init[0] ends on top. */
	for (size_t i = strlen(cfg->init); i-- > 0;) {
		uint32_t x = (uint32_t)(cfg->init[i] - '0');
		uint64_t w = lf_load_u64(&S.s.head, LF_RELAXED);
		lf_init_u32(&S.links[x], lf_stack_word_top(w));
		lf_init_u64(&S.s.head, lf_stack_word(x, 0));
		lf_init_u64(&S.raw, x);
		S.owner[x] = ON_STACK;
	}
	S.tag0 = 0;
	lin_reset(&S.h);
}

static void mcs_claim(unsigned tid, uint32_t x)
{
	if (x >= NE || S.owner[x] != ON_STACK)
		mc_fail("S3: element %u handed out, but owner is %u", x,
			x < NE ? S.owner[x] : 0);
	S.owner[x] = (uint8_t)tid;
	S.held[tid][S.nheld[tid]++] = x;
}

/* Claim a popped chain; returns the elements packed 8 bits each. */
static uint64_t mcs_claim_chain(unsigned tid, uint32_t top, uint32_t count)
{
	uint64_t packed = 0;
	uint32_t x = top;
	for (uint32_t i = 0; i < count; i++) {
		if (x >= NE)
			mc_fail("S2: chain of %u ends early", count);
		/* Direct read: the chain is ours, no scheduling point. */
		uint32_t below =
			atomic_load_explicit(&S.links[x].v, LF_RELAXED);
		mcs_claim(tid, x);
		packed |= (uint64_t)x << (8 * i);
		x = below;
	}
	return packed;
}

static void mcs_push_held(unsigned tid, bool untagged)
{
	if (S.nheld[tid] == 0)
		return;
	uint32_t x = S.held[tid][0];
	memmove(&S.held[tid][0], &S.held[tid][1],
		--S.nheld[tid] * sizeof(uint32_t));
	S.owner[x] = ON_STACK;
	struct lin_op *op = lin_call(&S.h, PUSH, x, 0);
	if (untagged)
		mcs_raw_push(x);
	else
		lf_stack_push(&S.s, S.links, x);
	S.ops_ok++;
	lin_ret(op, 0, 0);
}

static void mcs_pop(unsigned tid, bool untagged)
{
	struct lin_op *op = lin_call(&S.h, POP, 0, 0);
	uint32_t x = untagged ? mcs_raw_pop() : lf_stack_pop(&S.s, S.links);
	if (x != LF_STACK_NIL) {
		mcs_claim(tid, x);
		S.ops_ok++;
	}
	lin_ret(op, x, 0);
}

static void mcs_pop_many(unsigned tid, bool all)
{
	struct lin_op *op = lin_call(&S.h, all ? POPALL : POPN, 2, 0);
	uint32_t count = 0, top;
	if (all) {
		top = lf_stack_pop_all(&S.s);
		for (uint32_t x = top; x != LF_STACK_NIL && count <= NE;
		     x = atomic_load_explicit(&S.links[x].v, LF_RELAXED))
			count++;
	} else {
		top = lf_stack_pop_n(&S.s, S.links, NE, 2, &count);
	}
	if (top != LF_STACK_NIL)
		S.ops_ok++;
	lin_ret(op, count, mcs_claim_chain(tid, top, count));
}

static void mcs_push_chain(unsigned tid)
{
	unsigned n = S.nheld[tid];
	if (n == 0)
		return;
	uint64_t packed = 0;
	for (unsigned i = 0; i < n; i++) {
		uint32_t x = S.held[tid][i];
		packed |= (uint64_t)x << (8 * i);
		S.owner[x] = ON_STACK;
		if (i + 1 < n)
			lf_init_u32(&S.links[x], S.held[tid][i + 1]);
	}
	S.nheld[tid] = 0;
	struct lin_op *op = lin_call(&S.h, CHAIN, packed, n);
	lf_stack_push_chain(&S.s, S.links, (uint32_t)(packed & 0xff),
			    (uint32_t)(packed >> (8 * (n - 1))) & 0xff);
	S.ops_ok++;
	lin_ret(op, 0, 0);
}

/*
 * S5: a head that a pop emptied (top NIL, tag moved) was written by a
 * release CAS after f's store; the acquire load pairs with it, so the
 * flag is set.
 */
static void mcs_watch(void)
{
	uint64_t w = lf_load_u64(&S.s.head, LF_ACQUIRE);
	if (lf_stack_word_top(w) != LF_STACK_NIL ||
	    lf_stack_word_tag(w) == S.tag0)
		return;
	/* Relaxed: the acquire above orders it. */
	if (lf_load_u32(&S.flag, LF_RELAXED) != 1)
		mc_fail("S5: the stack emptied by a pop, but the popper's "
			"earlier store not visible");
}

/* Store buffers for the flag only, where the configuration asks. */
static unsigned mcs_buffered(const volatile void *addr)
{
	const struct mcs_cfg *cfg = mc_cfg();
	return cfg->buffer_flag && addr == &S.flag ? sizeof(S.flag) : 0;
}

static void mcs_thread(unsigned tid)
{
	const struct mcs_cfg *cfg = mc_cfg();
	for (const char *p = cfg->script[tid]; *p; p++) {
		/*
		 * One letter per operation of this harness's scripts; the
		 * others' interpreters look alike (letters, not shared logic).
		 */
		switch (*p) {
		case 'p':
			mcs_pop(tid, cfg->untagged);
			break;
		case 'P':
			mcs_push_held(tid, cfg->untagged);
			break;
		case 'n':
			mcs_pop_many(tid, false);
			break;
		case 'a':
			mcs_pop_many(tid, true);
			break;
		case 'c':
			mcs_push_chain(tid);
			break;
		case 'f':
			/* Relaxed: ordered before the pops by their release. */
			lf_store_u32(&S.flag, 1, LF_RELAXED);
			break;
		case 'w':
			mcs_watch();
			break;
		}
	}
}

/* The sequential stack. */
struct mcs_model {
	unsigned n;
	uint32_t e[NE]; /* e[n - 1] on top */
};

static void mcs_model_init(void *st)
{
	const struct mcs_cfg *cfg = mc_cfg();
	struct mcs_model *m = st;
	m->n = 0;
	for (size_t i = strlen(cfg->init); i-- > 0;)
		m->e[m->n++] = (uint32_t)(cfg->init[i] - '0');
}

static bool mcs_model_take(struct mcs_model *m, const struct lin_op *op,
			   unsigned max)
{
	unsigned k = m->n < max ? m->n : max;
	if (op->res[0] != k)
		return false;
	for (unsigned i = 0; i < k; i++)
		if (((op->res[1] >> (8 * i)) & 0xff) != m->e[m->n - 1 - i])
			return false;
	m->n -= k;
	return true;
}

static bool mcs_model_apply(void *st, const struct lin_op *op)
{
	struct mcs_model *m = st;
	switch (op->kind) {
	case PUSH:
		if (m->n == NE)
			return false;
		m->e[m->n++] = (uint32_t)op->arg[0];
		return true;
	case POP:
		if (m->n == 0)
			return op->res[0] == LF_STACK_NIL;
		if (op->res[0] != m->e[m->n - 1])
			return false;
		m->n--;
		return true;
	case POPN:
		return mcs_model_take(m, op, (unsigned)op->arg[0]);
	case POPALL:
		return mcs_model_take(m, op, NE);
	case CHAIN:
		if (m->n + op->arg[1] > NE)
			return false;
		for (unsigned i = (unsigned)op->arg[1]; i-- > 0;)
			m->e[m->n++] = (uint32_t)(op->arg[0] >> (8 * i)) & 0xff;
		return true;
	}
	return false;
}

static const struct lin_model mcs_model = {
	.size = sizeof(struct mcs_model),
	.init = mcs_model_init,
	.apply = mcs_model_apply,
	.names = mcs_names,
};

static void mcs_check(void)
{
	const struct mcs_cfg *cfg = mc_cfg();
	uint32_t top;
	if (cfg->untagged) {
		top = (uint32_t)atomic_load_explicit(&S.raw.v, LF_RELAXED);
	} else {
		uint64_t w = atomic_load_explicit(&S.s.head.v, LF_RELAXED);
		if (lf_stack_word_tag(w) != S.tag0 + S.ops_ok)
			mc_fail("S1: tag %u after %u successful operations",
				lf_stack_word_tag(w), S.ops_ok);
		top = lf_stack_word_top(w);
	}
	bool seen[NE] = { false };
	for (uint32_t x = top; x != LF_STACK_NIL;
	     x = atomic_load_explicit(&S.links[x].v, LF_RELAXED)) {
		if (x >= NE || seen[x] || S.owner[x] != ON_STACK)
			mc_fail("S2/S3: element %u on the stack wrongly", x);
		seen[x] = true;
	}
	for (unsigned x = 0; x < NE; x++)
		if (S.owner[x] == ON_STACK && !seen[x])
			mc_fail("S3: element %u lost", x);
	lin_check(&S.h, &mcs_model);
}

/*
 * This harness's configurations: a struct mc_test (MC_TEST_COMMON) with
 * this harness's hooks. The other harnesses' *_TEST macros look alike
 * because they fill the same struct; each names its own functions.
 */
#define MCS_TEST(id, nm, desc, nt, b, d, r, ...)                               \
	static const struct mcs_cfg id##_cfg = { __VA_ARGS__ };                \
	static const struct mc_test id = { MC_TEST_COMMON(nm, desc, nt, b, d,  \
							  r),                  \
					   .setup = mcs_setup,                 \
					   .thread = mcs_thread,               \
					   .check = mcs_check,                 \
					   .buffered = mcs_buffered,           \
					   .cfg = &id##_cfg };

/* A pop that read head and next, while another thread pops the same top,
 * pops the next, and pushes the first back (the ABA of S1, docs/design.md). */
MCS_TEST(mcs_aba, "stack.aba", "pop+push vs pop,pop,push (ABA)", 2, 3, 3, 10000,
	 .init = "012", .script = { "pP", "ppP" })
MCS_TEST(mcs_three, "stack.three", "three threads pop and push", 3, 2, 3, 10000,
	 .init = "012", .script = { "pP", "pP", "pP" })
MCS_TEST(mcs_batch, "stack.batch", "pop_n, pop_all, push_chain vs pop/push", 3,
	 2, 3, 10000, .init = "0123", .script = { "nc", "pP", "ac" })
MCS_TEST(mcs_empty, "stack.empty", "pops racing on an almost empty stack", 3, 3,
	 3, 10000, .init = "0", .script = { "pP", "pp", "pP" })
/*
 * S5 for pop_all and pop: a store before the pop is visible to whoever sees
 * the head it emptied (a watcher, twice: before and after). With an
 * acquire-only CAS the store stays in the popper's buffer past the pop.
 */
MCS_TEST(mcs_pop_release, "stack.pop_release",
	 "a store before pop_all / pop vs a watcher of the head, buffered", 3,
	 3, 3, 10000, .init = "0", .script = { "faw", "ww", "fpw" },
	 .buffer_flag = true)
MCS_TEST(mcs_raw_aba, "self.stack_aba", "untagged stack: ABA must be found", 2,
	 2, 3, 5000, .init = "012", .script = { "pP", "ppP" }, .untagged = true)

const struct mc_test *const mc_tests_stack[] = {
	&mcs_aba,         &mcs_three,   &mcs_batch, &mcs_empty,
	&mcs_pop_release, &mcs_raw_aba, NULL
};
