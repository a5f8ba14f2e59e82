/*
 * test_stack.c: the tagged stack on one thread: LIFO order, chains, pop_n
 * and pop_all, the tag moving on every operation (invariant S1), and the bad
 * input the API rejects.
 */
#include "check.h"
#include "lf_stack.h"

#define N 64

static lf_atomic_u32 links[N];

static uint32_t tag_of(struct lf_stack *s)
{
	return lf_stack_word_tag(lf_load_u64(&s->head, LF_RELAXED));
}

static void test_word(void)
{
	uint64_t w = lf_stack_word(7, 9);
	CHECK_EQ(lf_stack_word_top(w), 7);
	CHECK_EQ(lf_stack_word_tag(w), 9);
	uint64_t n = lf_stack_word_next(w, 3);
	CHECK_EQ(lf_stack_word_top(n), 3);
	CHECK_EQ(lf_stack_word_tag(n), 10);
	/* The tag wraps rather than spilling into the index. */
	n = lf_stack_word_next(lf_stack_word(1, UINT32_MAX), 2);
	CHECK_EQ(lf_stack_word_tag(n), 0);
	CHECK_EQ(lf_stack_word_top(n), 2);
}

static void test_lifo_and_tags(void)
{
	struct lf_stack s;
	lf_stack_init(&s);
	CHECK(lf_stack_empty(&s));
	CHECK_EQ(lf_stack_pop(&s, links), LF_STACK_NIL);
	uint32_t t0 = tag_of(&s);
	for (uint32_t i = 0; i < N; i++)
		CHECK_EQ(lf_stack_push(&s, links, i), LF_STACK_OK);
	CHECK_EQ(tag_of(&s), t0 + N); /* S1: every push moved the tag */
	CHECK(!lf_stack_empty(&s));
	for (uint32_t i = N; i-- > 0;)
		CHECK_EQ(lf_stack_pop(&s, links), i);
	CHECK_EQ(tag_of(&s), t0 + 2 * N); /* and every pop */
	CHECK(lf_stack_empty(&s));
	/* A pop of the empty stack changes nothing. */
	CHECK_EQ(lf_stack_pop(&s, links), LF_STACK_NIL);
	CHECK_EQ(tag_of(&s), t0 + 2 * N);
}

/* S1 in action: a pop that read the head before pop/push/pop fails its CAS. */
static void test_aba_word_differs(void)
{
	struct lf_stack s;
	lf_stack_init(&s);
	lf_stack_push(&s, links, 1);
	lf_stack_push(&s, links, 2);
	uint64_t seen = lf_load_u64(&s.head, LF_RELAXED); /* top 2 */
	CHECK_EQ(lf_stack_pop(&s, links), 2);
	CHECK_EQ(lf_stack_pop(&s, links), 1);
	lf_stack_push(&s, links, 2); /* 2 on top again, 1 gone */
	uint64_t now = lf_load_u64(&s.head, LF_RELAXED);
	CHECK_EQ(lf_stack_word_top(now), lf_stack_word_top(seen));
	CHECK(now != seen); /* the stale CAS would fail */
	CHECK_EQ(lf_stack_pop(&s, links), 2);
}

static void test_chain_and_pop_all(void)
{
	struct lf_stack s;
	lf_stack_init(&s);
	lf_stack_push(&s, links, 40);
	/* chain 10 -> 11 -> 12 */
	lf_store_u32(&links[10], 11, LF_RELAXED);
	lf_store_u32(&links[11], 12, LF_RELAXED);
	uint32_t t0 = tag_of(&s);
	CHECK_EQ(lf_stack_push_chain(&s, links, 10, 12), LF_STACK_OK);
	CHECK_EQ(tag_of(&s), t0 + 1); /* one CAS for the whole chain */
	uint32_t top = lf_stack_pop_all(&s);
	CHECK(lf_stack_empty(&s));
	uint32_t want[] = { 10, 11, 12, 40 };
	uint32_t i = 0;
	for (uint32_t e = top; e != LF_STACK_NIL;
	     e = lf_load_u32(&links[e], LF_RELAXED)) {
		CHECK_FATAL(i < 4);
		CHECK_EQ(e, want[i]);
		i++;
	}
	CHECK_EQ(i, 4);
	CHECK_EQ(lf_stack_pop_all(&s), LF_STACK_NIL);
}

static void test_pop_n(void)
{
	struct lf_stack s;
	lf_stack_init(&s);
	for (uint32_t i = 0; i < 10; i++)
		lf_stack_push(&s, links, i);
	uint32_t count = 99;
	CHECK_EQ(lf_stack_pop_n(&s, links, N, 0, &count), LF_STACK_NIL);
	CHECK_EQ(count, 0);
	uint32_t t0 = tag_of(&s);
	uint32_t top = lf_stack_pop_n(&s, links, N, 4, &count);
	CHECK_EQ(tag_of(&s), t0 + 1);
	CHECK_EQ(top, 9);
	CHECK_EQ(count, 4);
	uint32_t e = top, seen = 0;
	for (; e != LF_STACK_NIL; e = lf_load_u32(&links[e], LF_RELAXED)) {
		CHECK_EQ(e, 9 - seen);
		seen++;
		CHECK_FATAL(seen <= 4);
	}
	CHECK_EQ(seen, 4); /* the taken chain is cut off with NIL */
	CHECK_EQ(lf_stack_pop(&s, links), 5);
	/* Asking for more than there is takes what there is. */
	top = lf_stack_pop_n(&s, links, N, 100, &count);
	CHECK_EQ(top, 4);
	CHECK_EQ(count, 5);
	CHECK(lf_stack_empty(&s));
	CHECK_EQ(lf_stack_pop_n(&s, links, N, 3, &count), LF_STACK_NIL);
	CHECK_EQ(count, 0);
}

static void test_bad_input(void)
{
	struct lf_stack s;
	lf_stack_init(&s);
	uint64_t before = lf_load_u64(&s.head, LF_RELAXED);
	CHECK_EQ(lf_stack_push(&s, links, LF_STACK_NIL), LF_STACK_EINVAL);
	CHECK_EQ(lf_stack_push_chain(&s, links, LF_STACK_NIL, 3),
		 LF_STACK_EINVAL);
	CHECK_EQ(lf_stack_push_chain(&s, links, 3, LF_STACK_NIL),
		 LF_STACK_EINVAL);
	CHECK(lf_load_u64(&s.head, LF_RELAXED) == before); /* unchanged */
}

int main(void)
{
	test_word();
	test_lifo_and_tags();
	test_aba_word_differs();
	test_chain_and_pop_all();
	test_pop_n();
	test_bad_input();
	return check_exit("test_stack");
}
