/*
 * verify/check.h: assertions for the test programs. A failed CHECK prints
 * where and what, counts, and the program exits non-zero at the end
 * (check_exit()); CHECK_FATAL stops at once, for states past which the test
 * cannot go on meaningfully.
 */
#ifndef LF_VERIFY_CHECK_H
#define LF_VERIFY_CHECK_H

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong check_failures;
static atomic_ulong check_count;

#define CHECK(cond)                                                            \
	do {                                                                   \
		atomic_fetch_add_explicit(&check_count, 1,                     \
					  memory_order_relaxed);               \
		if (!(cond)) {                                                 \
			atomic_fetch_add_explicit(&check_failures, 1,          \
						  memory_order_relaxed);       \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,          \
				__LINE__, #cond);                              \
		}                                                              \
	} while (0)

/* Compare two integers and print both on failure. */
#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long check_a_ = (long long)(a),                           \
			  check_b_ = (long long)(b);                           \
		atomic_fetch_add_explicit(&check_count, 1,                     \
					  memory_order_relaxed);               \
		if (check_a_ != check_b_) {                                    \
			atomic_fetch_add_explicit(&check_failures, 1,          \
						  memory_order_relaxed);       \
			fprintf(stderr,                                        \
				"FAIL %s:%d: %s == %s (%lld != %lld)\n",       \
				__FILE__, __LINE__, #a, #b, check_a_,          \
				check_b_);                                     \
		}                                                              \
	} while (0)

#define CHECK_FATAL(cond)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FATAL %s:%d: %s\n", __FILE__,         \
				__LINE__, #cond);                              \
			exit(2);                                               \
		}                                                              \
	} while (0)

/*
 * The seeds of a model test's command line: --seeds N runs seeds 1 to N
 * (--first F: F to F + N - 1),
 * --seed S replays seed S alone, --ops N sets the operations per seed
 * (defaults: the arguments). Other words are skipped, for the program.
 */
struct check_seeds {
	uint64_t first, last, ops;
};

static inline struct check_seeds check_seed_args(int argc, char **argv,
						 uint64_t seeds, uint64_t ops)
{
	uint64_t one = 0, first = 1;
	bool replay = false;
	for (int i = 1; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "--seeds"))
			seeds = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--ops"))
			ops = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed"))
			one = strtoull(argv[++i], NULL, 0), replay = true;
		else if (!strcmp(argv[i], "--first")) /* seeds first.. */
			first = strtoull(argv[++i], NULL, 0);
	}
	return (struct check_seeds){ replay ? one : first,
				     replay ? one : first + seeds - 1, ops };
}

/* Print the tally and return the exit status for main(). */
static inline int check_exit(const char *name)
{
	unsigned long f = atomic_load(&check_failures);
	unsigned long n = atomic_load(&check_count);
	printf("%s: %lu checks, %lu failed\n", name, n, f);
	return f == 0 ? 0 : 1;
}

/*
 * main() of a model test whose seeds need nothing but run(seed, ops):
 * the seeds of the command line (check_seed_args()), the tally, the
 * exit status.
 */
static inline int check_model_main(int argc, char **argv, const char *name,
				   uint64_t seeds, uint64_t ops,
				   void (*run)(uint64_t seed, uint64_t ops))
{
	struct check_seeds a = check_seed_args(argc, argv, seeds, ops);
	for (uint64_t s = a.first; s <= a.last; s++)
		run(s, a.ops);
	printf("%s: %" PRIu64 " seeds x %" PRIu64 " operations\n", name,
	       a.last - a.first + 1, a.ops);
	return check_exit(name);
}

#endif
