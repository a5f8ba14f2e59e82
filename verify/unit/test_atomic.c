/*
 * test_atomic.c: the atomics layer does what C11 says, and every operation
 * in the core really goes through the interposition hook.
 *
 * This program is built with LF_ATOMIC_INTERPOSE and links its own
 * lf_atomic_interpose() that counts calls by kind, plus the unchanged
 * lf_stack.c and lf_epoch.c compiled the same way: if some atomic in those
 * files bypassed the layer, the counts below would come out short.
 */
#include "check.h"
#include "lf_atomic.h"
#include "lf_epoch.h"
#include "lf_platform.h"
#include "lf_stack.h"

static unsigned long hook_count[LF_OP_COUNT];
static const volatile void *hook_last_addr;
static lf_order hook_last_order;

void lf_atomic_interpose(const volatile void *addr, enum lf_atomic_op op,
			 lf_order order)
{
	hook_count[op]++;
	hook_last_addr = addr;
	hook_last_order = order;
}

static unsigned long hook_total(void)
{
	unsigned long n = 0;
	for (int i = 0; i < LF_OP_COUNT; i++)
		n += hook_count[i];
	return n;
}

static void hook_reset(void)
{
	for (int i = 0; i < LF_OP_COUNT; i++)
		hook_count[i] = 0;
}

static void test_semantics(void)
{
	lf_atomic_u64 a;
	lf_init_u64(&a, 5);
	CHECK_EQ(lf_load_u64(&a, LF_RELAXED), 5);
	lf_store_u64(&a, 7, LF_RELEASE);
	CHECK_EQ(lf_xchg_u64(&a, 9, LF_ACQ_REL), 7);
	uint64_t exp = 8;
	CHECK(!lf_cas_u64(&a, &exp, 10, LF_ACQ_REL));
	CHECK_EQ(exp, 9); /* a failed CAS reports what it saw */
	CHECK(lf_cas_u64(&a, &exp, 10, LF_RELEASE));
	CHECK_EQ(lf_fetch_add_u64(&a, 5, LF_RELAXED), 10);
	CHECK_EQ(lf_fetch_sub_u64(&a, 3, LF_RELAXED), 15);
	CHECK_EQ(lf_fetch_or_u64(&a, 0x100, LF_RELAXED), 12);
	CHECK_EQ(lf_fetch_and_u64(&a, 0x10c, LF_SEQ_CST), 0x10c);
	CHECK_EQ(lf_load_u64(&a, LF_SEQ_CST), 0x10c);

	lf_atomic_u32 b;
	lf_init_u32(&b, UINT32_MAX);
	CHECK_EQ(lf_fetch_add_u32(&b, 1, LF_RELAXED), UINT32_MAX);
	CHECK_EQ(lf_load_u32(&b, LF_ACQUIRE), 0); /* wraps modulo 2^32 */

	lf_atomic_u16 h;
	lf_init_u16(&h, 0xfffe);
	CHECK_EQ(lf_xchg_u16(&h, 0xffff, LF_ACQ_REL), 0xfffe);
	uint16_t e16 = 0xffff;
	CHECK(lf_cas_u16(&h, &e16, 3, LF_ACQ_REL));
	e16 = 4;
	CHECK(!lf_cas_u16(&h, &e16, 5, LF_ACQ_REL));
	CHECK_EQ(e16, 3); /* a failed CAS reports what it saw */
	lf_store_u16(&h, 7, LF_RELEASE);
	CHECK_EQ(lf_load_u16(&h, LF_ACQUIRE), 7);

	int x;
	lf_atomic_ptr p;
	lf_init_ptr(&p, NULL);
	void *e = NULL;
	CHECK(lf_cas_ptr(&p, &e, &x, LF_ACQ_REL));
	CHECK(lf_load_ptr(&p, LF_ACQUIRE) == &x);

	/* The failure order derived from each success order is legal. */
	CHECK(lf_order_cas_fail(LF_ACQ_REL) == LF_ACQUIRE);
	CHECK(lf_order_cas_fail(LF_RELEASE) == LF_RELAXED);
	CHECK(lf_order_cas_fail(LF_SEQ_CST) == LF_SEQ_CST);
	CHECK(lf_order_cas_fail(LF_RELAXED) == LF_RELAXED);
}

static void test_hook_sees_each_op(void)
{
	lf_atomic_u64 a;
	lf_init_u64(&a, 0); /* initialisation is not an atomic operation */
	hook_reset();
	CHECK_EQ(hook_total(), 0);
	lf_load_u64(&a, LF_ACQUIRE);
	CHECK_EQ(hook_count[LF_OP_LOAD], 1);
	CHECK(hook_last_addr == &a);
	CHECK(hook_last_order == LF_ACQUIRE);
	lf_store_u64(&a, 1, LF_RELEASE);
	lf_xchg_u64(&a, 2, LF_ACQ_REL);
	uint64_t exp = 2;
	lf_cas_u64(&a, &exp, 3, LF_SEQ_CST);
	lf_fetch_add_u64(&a, 1, LF_RELAXED);
	lf_fetch_sub_u64(&a, 1, LF_RELAXED);
	lf_fetch_or_u64(&a, 1, LF_RELAXED);
	lf_fetch_and_u64(&a, 1, LF_RELAXED);
	lf_fence_seq_cst();
	lf_platform_pause();
	for (int op = 0; op < LF_OP_COUNT; op++)
		CHECK_EQ(hook_count[op], 1);
	CHECK(hook_last_addr == NULL); /* a spin has no address */
}

/* The stack's operations, counted: each goes through the hook. */
static void test_hook_sees_the_stack(void)
{
	struct lf_stack s;
	lf_atomic_u32 links[4];
	lf_stack_init(&s);
	hook_reset();
	CHECK_EQ(lf_stack_push(&s, links, 1), LF_STACK_OK);
	/* load head, store link, CAS head */
	CHECK_EQ(hook_count[LF_OP_LOAD], 1);
	CHECK_EQ(hook_count[LF_OP_STORE], 1);
	CHECK_EQ(hook_count[LF_OP_CAS], 1);
	hook_reset();
	CHECK_EQ(lf_stack_pop(&s, links), 1);
	/* load head, load link, CAS head */
	CHECK_EQ(hook_count[LF_OP_LOAD], 2);
	CHECK_EQ(hook_count[LF_OP_CAS], 1);
	CHECK_EQ(hook_total(), 3);
}

static int retired_runs;
static void count_run(struct lf_epoch_entry *e)
{
	(void)e;
	retired_runs++;
}

/*
 * An epoch section announces through the hook: a relaxed store in, then a
 * compiler barrier (asymmetric) or a seq_cst fence (fenced), a release
 * store out; retire does no atomic read-modify-write at all.
 */
static void test_hook_sees_the_epoch(void)
{
	static struct lf_epoch_domain d;
	static struct lf_epoch_record r;
	lf_epoch_domain_init(&d, 1000);
	CHECK_EQ(lf_epoch_register(&d, &r), LF_EPOCH_OK);
	hook_reset();
	CHECK_EQ(lf_epoch_enter(&r), LF_EPOCH_OK);
	CHECK_EQ(hook_count[LF_OP_STORE], 1);
	CHECK_EQ(hook_count[LF_OP_FENCE],
		 lf_epoch_domain_asymmetric(&d) ? 0 : 1);
	CHECK(hook_last_addr == NULL); /* the barrier or fence came last */
	CHECK_EQ(lf_epoch_exit(&r), LF_EPOCH_OK);
	CHECK_EQ(hook_count[LF_OP_STORE], 2);
	CHECK(hook_last_order == LF_RELEASE);
	hook_reset();
	struct lf_epoch_entry e;
	CHECK_EQ(lf_epoch_retire(&r, &e, count_run), LF_EPOCH_OK);
	CHECK_EQ(hook_count[LF_OP_FETCH_ADD], 0); /* no RMW: plain stores */
	CHECK_EQ(hook_count[LF_OP_CAS], 0);
	CHECK_EQ(hook_count[LF_OP_XCHG], 0);
	CHECK_EQ(lf_epoch_barrier(&r), LF_EPOCH_OK);
	CHECK_EQ(retired_runs, 1);
}

int main(void)
{
	test_semantics();
	test_hook_sees_each_op();
	test_hook_sees_the_stack();
	test_hook_sees_the_epoch();
	return check_exit("test_atomic");
}
