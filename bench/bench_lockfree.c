/*
 * bench_lockfree.c: micro-benchmarks of lockfree/ against Concurrency Kit
 * and liburcu, every baseline timed in the same program under the same
 * harness (bench_harness.c), so that they are compared in one run. See
 * bench/README.md.
 *
 *   stack  pop + push of one element on one shared stack:
 *          lf_stack against ck_stack (upmc and mpmc variants);
 *   epoch  enter + exit of an empty read-side section on a registered
 *          record: lf_epoch against ck_epoch, urcu-memb and urcu-qsbr.
 *   epoch_retire  retire of one object, amortized over the polls run
 *          every 64 retirements and their callbacks: lf_epoch against
 *          ck_epoch_call + ck_epoch_poll.
 *   epoch_sync  one grace-period wait on an idle domain: lf_epoch's
 *          synchronize and barrier against ck_epoch_synchronize and
 *          urcu-memb's synchronize_rcu.
 *
 * Usage: bench_lockfree [--csv PATH] [--seconds S] [--repeats R]
 *                       [--threads-max N] [--quick]
 */
#include "bench.h"

#include <stdio.h>

static const struct bench_impl *const bench_lockfree_impls[] = {
	&bench_lf_stack,       &bench_ck_stack_upmc,    &bench_ck_stack_mpmc,
	&bench_lf_epoch,       &bench_ck_epoch,         &bench_urcu_memb,
	&bench_urcu_qsbr,      &bench_lf_epoch_retire,  &bench_ck_epoch_retire,
	&bench_lf_epoch_sync,  &bench_lf_epoch_barrier, &bench_ck_epoch_sync,
	&bench_urcu_memb_sync,
};

static void bench_lockfree_header(void)
{
	printf("stack: one op = pop + push of that element, one shared "
	       "stack, all threads\n");
	printf("epoch: one op = enter + exit of an empty read-side section "
	       "(no updater runs);\n  urcu_qsbr also calls "
	       "rcu_quiescent_state() once every %d ops\n",
	       BENCH_BATCH);
	printf("epoch_retire: one op = retire one object, polls every 64 "
	       "and callbacks included\n");
	printf("epoch_sync: one op = one synchronize (or barrier) on an "
	       "idle domain, all threads\n");
	printf("%s\n", bench_urcu_memb_note());
}

static const struct bench_prog bench_lockfree = {
	.name = "bench_lockfree",
	.impls = bench_lockfree_impls,
	.nimpls =
		sizeof(bench_lockfree_impls) / sizeof(bench_lockfree_impls[0]),
	.header = bench_lockfree_header,
};

int main(int argc, char **argv)
{
	return bench_main(&bench_lockfree, argc, argv);
}
