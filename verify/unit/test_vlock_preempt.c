/*
 * test_vlock_preempt.c: the version lock (lockfree/lf_vlock.h) with one
 * other thread's operation injected before each atomic step of an
 * operation (verify/preempt.h): deterministic, every step, every preset.
 *
 *   V2  two upgrades from the same version: at most one succeeds, and the
 *       word ends locked once (a check-then-store in place of the CAS lets
 *       both in);
 *   V2  a write section against another's upgrade or write_lock: nobody is
 *       ever inside a section with someone else, and the word grows by
 *       exactly one lock/unlock per section (V1);
 *   V4  an optimistic read against a whole write section: a read that
 *       validates saw no writer after its read_lock, and a pair it
 *       validates is never torn;
 *   V4  a write section against another's optimistic read: the reader
 *       waits (is abandoned) while the lock is held, or fails to
 *       validate; a validated pair is never torn.
 */
#include "check.h"
#include "lf_vlock.h"
#include "preempt.h"

static struct lf_vlock L;
static lf_atomic_u64 X, Y; /* (v) equal outside write sections */
static int inside;         /* threads inside a write section */
static unsigned sections;  /* write sections completed */

static uint64_t word(void)
{
	return lf_load_u64(&L.word, LF_RELAXED);
}

static void reset(void)
{
	lf_vlock_init(&L);
	lf_init_u64(&X, 0);
	lf_init_u64(&Y, 0);
	inside = 0;
	sections = 0;
}

/* The body of a write section, lock held: x first, then y. */
static void section_body(void)
{
	CHECK_EQ(inside, 0); /* V2 */
	inside++;
	CHECK(lf_vlock_word_locked(word()));
	uint64_t v = lf_olc_load_u64(&X) + 1;
	lf_olc_store_u64(&X, v);
	lf_olc_store_u64(&Y, v);
	inside--;
	sections++;
}

/* Count the interposed operations of op(arg) run alone. */
static unsigned long ops_of(void (*op)(void *), void *arg)
{
	reset();
	preempt_arm(0, NULL, NULL); /* count only */
	op(arg);
	unsigned long n = preempt_count();
	CHECK(n > 0);
	return n;
}

/* ---- V2: two upgrades from one version ---- */

static uint64_t up_version;
static bool up_nested_ok;

static void nested_upgrade(void *arg)
{
	(void)arg;
	up_nested_ok = lf_vlock_upgrade(&L, up_version);
	if (up_nested_ok)
		section_body(); /* and keeps the lock: the outer must fail */
}

static void outer_upgrade(void *arg)
{
	bool *ok = arg;
	*ok = lf_vlock_upgrade(&L, up_version);
}

static void test_upgrade_race(void)
{
	bool ok;
	reset();
	CHECK(lf_vlock_read_lock(&L, &up_version));
	unsigned long k = ops_of(outer_upgrade, &ok);
	for (unsigned long n = 1; n <= k + 1; n++) {
		reset();
		CHECK(lf_vlock_read_lock(&L, &up_version));
		up_nested_ok = false;
		preempt_arm(n, nested_upgrade, NULL);
		outer_upgrade(&ok);
		bool fired = preempt_disarm();
		if (ok && up_nested_ok)
			fprintf(stderr,
				"upgrade: preempted at step %lu of %lu, "
				"both upgrades of version %llu succeeded\n",
				n, k, (unsigned long long)up_version);
		CHECK(!(ok && up_nested_ok));         /* V2 */
		CHECK(ok || (fired && up_nested_ok)); /* one of them got it */
		/* Locked once, from up_version: V1, V2. */
		CHECK_EQ(word(), up_version + LF_VLOCK_LOCKED);
	}
}

/* ---- V2: write sections against another's lock attempt ---- */

static uint64_t stale_version;

static void write_section(void *arg)
{
	(void)arg;
	CHECK_EQ(lf_vlock_write_lock(&L), LF_VLOCK_OK);
	section_body();
	CHECK_EQ(lf_vlock_write_unlock(&L), LF_VLOCK_OK);
}

static void upgrade_section(void *arg)
{
	uint64_t *v = arg;
	if (!lf_vlock_upgrade(&L, *v))
		return;
	section_body();
	CHECK_EQ(lf_vlock_write_unlock(&L), LF_VLOCK_OK);
}

/* The other thread: a write section, abandoned if it would wait. */
static void nested_write(void *arg)
{
	(void)arg;
	preempt_nested_try(write_section, NULL);
}

static void nested_upgrade_section(void *arg)
{
	(void)arg;
	upgrade_section(&stale_version);
}

static void test_sections_exclusive(void)
{
	void (*nested[])(void *) = { nested_write, nested_upgrade_section };
	for (unsigned m = 0; m < 2; m++) {
		unsigned long k = ops_of(write_section, NULL);
		for (unsigned long n = 1; n <= k + 1; n++) {
			reset();
			CHECK(lf_vlock_read_lock(&L, &stale_version));
			uint64_t w0 = word();
			preempt_arm(n, nested[m], NULL);
			write_section(NULL);
			preempt_disarm();
			CHECK_EQ(inside, 0);
			/* Each section adds one lock and one unlock (V1). */
			CHECK_EQ(word(), w0 + 2 * LF_VLOCK_LOCKED * sections);
			CHECK(sections >= 1 && sections <= 2);
			CHECK_EQ(lf_load_u64(&X, LF_RELAXED), sections);
			CHECK_EQ(lf_load_u64(&Y, LF_RELAXED), sections);
		}
	}
}

/* ---- V4: an optimistic read against a write section ---- */

struct read_result {
	bool locked, validated;
	uint64_t x, y;
};

static void optimistic_read(void *arg)
{
	struct read_result *r = arg;
	uint64_t v;
	r->validated = false;
	r->locked = lf_vlock_read_lock(&L, &v);
	if (!r->locked)
		return;
	r->x = lf_olc_load_u64(&X);
	r->y = lf_olc_load_u64(&Y);
	r->validated = lf_vlock_validate(&L, v);
}

static void test_read_against_writer(void)
{
	struct read_result r;
	unsigned long k = ops_of(optimistic_read, &r);
	for (unsigned long n = 1; n <= k + 1; n++) {
		reset();
		preempt_arm(n, nested_write, NULL);
		optimistic_read(&r);
		bool fired = preempt_disarm();
		CHECK(fired == (n <= k));
		CHECK(r.locked);
		CHECK_EQ(sections, fired ? 1 : 0);
		if (!r.validated)
			continue;
		CHECK_EQ(r.x, r.y); /* V4: never torn */
		/*
		 * Validated: no writer between read_lock and validate. The
		 * section ran before the read (step 1: the read_lock's load)
		 * or after it (past the last step), never inside.
		 */
		CHECK(n == 1 || n > k);
		CHECK_EQ(r.x, n == 1 ? 1 : 0);
	}
}

static struct read_result nested_read_result;
static bool nested_read_done;

static void nested_read_op(void *arg)
{
	(void)arg;
	optimistic_read(&nested_read_result);
}

static void nested_read(void *arg)
{
	(void)arg;
	nested_read_done = preempt_nested_try(nested_read_op, NULL);
}

static void test_writer_against_read(void)
{
	unsigned long k = ops_of(write_section, NULL);
	for (unsigned long n = 1; n <= k + 1; n++) {
		reset();
		nested_read_done = false;
		nested_read_result = (struct read_result){ 0 };
		preempt_arm(n, nested_read, NULL);
		write_section(NULL);
		preempt_disarm();
		struct read_result *r = &nested_read_result;
		if (!nested_read_done || !r->validated)
			continue; /* waited for the writer, or restarts */
		if (r->x != r->y)
			fprintf(stderr,
				"read inside a write section, step %lu "
				"of %lu: validated x=%llu y=%llu\n",
				n, k, (unsigned long long)r->x,
				(unsigned long long)r->y);
		CHECK_EQ(r->x, r->y); /* V4 */
	}
}

int main(void)
{
	test_upgrade_race();
	test_sections_exclusive();
	test_read_against_writer();
	test_writer_against_read();
	return check_exit("test_vlock_preempt");
}
