/*
 * test_vlock.c: the version lock on one thread: the word's transitions
 * (V1: it only grows), validation failing after any write section, upgrade
 * refusing a stale version, obsolescence and revival (V3), and the bad
 * input the API rejects (unlocking a lock that is not held).
 */
#include "check.h"
#include "lf_vlock.h"

static uint64_t word(struct lf_vlock *l)
{
	return lf_load_u64(&l->word, LF_RELAXED);
}

static void test_read_validate_write(void)
{
	struct lf_vlock l;
	lf_vlock_init(&l);
	uint64_t v;
	CHECK(lf_vlock_read_lock(&l, &v));
	CHECK(lf_vlock_validate(&l, v));
	CHECK_EQ(lf_vlock_write_lock(&l), LF_VLOCK_OK);
	CHECK(lf_vlock_word_locked(word(&l)));
	CHECK(!lf_vlock_validate(&l, v)); /* a writer is in */
	CHECK(!lf_vlock_upgrade(&l,
				word(&l))); /* a locked word never upgrades */
	CHECK_EQ(lf_vlock_write_unlock(&l), LF_VLOCK_OK);
	CHECK(!lf_vlock_word_locked(word(&l)));
	CHECK(!lf_vlock_validate(&l, v)); /* and has moved the version */
	CHECK_EQ(lf_vlock_word_version(word(&l)), lf_vlock_word_version(v) + 1);
	uint64_t v2;
	CHECK(lf_vlock_read_lock(&l, &v2));
	CHECK(v2 > v); /* V1 */
}

static void test_upgrade(void)
{
	/* A fresh lock, as in every test here. */
	struct lf_vlock l;
	lf_vlock_init(&l);
	uint64_t v;
	CHECK(lf_vlock_read_lock(&l, &v));
	CHECK(lf_vlock_upgrade(&l, v));
	CHECK(!lf_vlock_upgrade(&l, v)); /* V2: only one holder */
	CHECK_EQ(lf_vlock_write_unlock(&l), LF_VLOCK_OK);
	CHECK(!lf_vlock_upgrade(&l, v)); /* stale: the word moved */
	CHECK(!lf_vlock_word_locked(word(&l)));
}

static void test_obsolete_and_revive(void)
{
	struct lf_vlock l;
	lf_vlock_init(&l);
	uint64_t v0;
	CHECK(lf_vlock_read_lock(&l, &v0));
	CHECK_EQ(lf_vlock_write_lock(&l), LF_VLOCK_OK);
	CHECK_EQ(lf_vlock_write_unlock_obsolete(&l), LF_VLOCK_OK);
	uint64_t w = word(&l);
	CHECK(lf_vlock_word_obsolete(w));
	CHECK(!lf_vlock_word_locked(w));
	CHECK(w > v0);
	uint64_t v;
	CHECK(!lf_vlock_read_lock(&l, &v)); /* V3: readers restart */
	CHECK_EQ(lf_vlock_write_lock(&l), LF_VLOCK_EOBSOLETE);
	CHECK(!lf_vlock_upgrade(&l, w));
	CHECK(word(&l) == w); /* none of that changed anything */

	CHECK_EQ(lf_vlock_revive_locked(&l), LF_VLOCK_OK);
	uint64_t r = word(&l);
	CHECK(r > w); /* V1 across reuse */
	CHECK(lf_vlock_word_locked(r));
	CHECK(!lf_vlock_word_obsolete(r));
	CHECK(!lf_vlock_validate(&l, v0)); /* the node's old life is stale */
	CHECK_EQ(lf_vlock_write_unlock(&l), LF_VLOCK_OK);
	CHECK(lf_vlock_read_lock(&l, &v));
	CHECK(v > r);
	CHECK(!lf_vlock_validate(&l, v0));
}

static void test_bad_input(void)
{
	struct lf_vlock l;
	lf_vlock_init(&l);
	uint64_t w = word(&l);
	CHECK_EQ(lf_vlock_write_unlock(&l), LF_VLOCK_ENOTLOCKED);
	CHECK_EQ(lf_vlock_write_unlock_obsolete(&l), LF_VLOCK_ENOTLOCKED);
	CHECK_EQ(lf_vlock_revive_locked(&l), LF_VLOCK_ENOTOBSOLETE);
	CHECK(word(&l) == w);
	/* Revive of an obsolete lock that someone holds again is refused. */
	CHECK_EQ(lf_vlock_write_lock(&l), LF_VLOCK_OK);
	w = word(&l);
	CHECK_EQ(lf_vlock_revive_locked(&l), LF_VLOCK_ENOTOBSOLETE);
	CHECK(word(&l) == w);
	CHECK_EQ(lf_vlock_write_unlock(&l), LF_VLOCK_OK);
	CHECK_EQ(lf_vlock_write_unlock(&l), LF_VLOCK_ENOTLOCKED); /* twice */
}

static void test_olc_fields(void)
{
	lf_atomic_u64 f;
	lf_init_u64(&f, 3);
	CHECK_EQ(lf_olc_load_u64(&f), 3);
	lf_olc_store_u64(&f, 4);
	CHECK_EQ(lf_olc_load_u64(&f), 4);
}

int main(void)
{
	test_read_validate_write();
	test_upgrade();
	test_obsolete_and_revive();
	test_bad_input();
	test_olc_fields();
	return check_exit("test_vlock");
}
