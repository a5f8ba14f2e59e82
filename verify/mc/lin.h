/*
 * lin.h: recorded histories and a linearizability check in the style of
 * Wing and Gong (J. Wing, C. Gong, "Testing and verifying concurrent
 * objects", JPDC 17, 1993) and Lowe (G. Lowe, "Testing for
 * linearizability", CCPE 29, 2017), without Lowe's memoization, which
 * histories of a dozen operations do not need.
 *
 * A thread records each operation's call and return with lin_call() and
 * lin_ret(); the stamps come from mc_tick(), which orders the events of one
 * execution (one coroutine runs at a time). lin_check() searches for a
 * sequential order of the operations that respects real time (one that
 * returned before another was called comes first) and that a sequential
 * reference model accepts, each operation with the result it really had,
 * and, if the model gives final(), that ends in the state the
 * implementation ended in.
 */
#ifndef LIN_H
#define LIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIN_MAX_OPS 16
#define LIN_MAX_STATE 256

struct lin_op {
	unsigned thread;
	int kind; /* the model's operation code */
	uint64_t arg[2];
	uint64_t res[2]; /* what the implementation returned */
	uint64_t call, ret;
};

struct lin_history {
	struct lin_op op[LIN_MAX_OPS];
	unsigned n;
};

/*
 * The sequential model over an opaque state of `size` bytes: apply() runs
 * op on *state and returns true if the model allows op's recorded result
 * (a model may allow several: a specification, not one implementation).
 */
struct lin_model {
	size_t size;
	void (*init)(void *state);
	bool (*apply)(void *state, const struct lin_op *op);
	bool (*final)(const void *state); /* optional */
	const char *const *names;         /* kind -> name, for reports */
};

void lin_reset(struct lin_history *h);
/* Record a call; returns the operation, to complete with lin_ret(). */
struct lin_op *lin_call(struct lin_history *h, int kind, uint64_t a0,
			uint64_t a1);
void lin_ret(struct lin_op *op, uint64_t r0, uint64_t r1);

/* Fails the execution (mc_fail, with the history) if not linearizable. */
void lin_check(const struct lin_history *h, const struct lin_model *m);

#endif /* LIN_H */
