/*
 * coh_sched.c: the scheduler of coh_sched.h.
 *
 * Coroutines: each logical CPU has its own stack (mmap, with a guard page)
 * and starts through makecontext(); after that, switches are _setjmp() /
 * _longjmp() between the coroutines' own stacks, not swapcontext(), which
 * makes a system call (the signal mask) each time: a run makes millions of
 * switches. This file is not instrumented and records nothing itself.
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE /* __longjmp_chk refuses a jump to another stack */
#include "coh_sched.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#define COH_STACK_SIZE ((size_t)1 << 20)
#define COH_GUARD 4096
/* Accesses of one CPU in one run that mean a livelock. */
#define COH_HARD_LIMIT ((uint64_t)1 << 32)

struct coh_cpu {
	jmp_buf jb;
	ucontext_t uc;
	char *stack;
	uint64_t accesses; /* recorded accesses made by this CPU */
	double clock;      /* its simulated time, ns */
	double drained;    /* when its buffered stores' misses are done */
	uint64_t ops;      /* what its run() returned */
	struct bench_stop stop;
};

struct coh_dir coh_sched_dir;
uint64_t coh_sched_heavy;

static struct {
	struct coh_cpu cpu[COH_MAX_CPUS];
	unsigned ready[COH_MAX_CPUS]; /* CPUs whose run() has not returned */
	unsigned nready;
	unsigned ncpus;
	unsigned cur;
	bool running;
	struct coh_timing t;
	uint64_t rng;
	uint64_t (*run)(unsigned id, const struct bench_stop *stop);
	jmp_buf main_jb;
} S;

unsigned coh_sched_cpu(void)
{
	return S.cur;
}

void coh_sched_set_cpu(unsigned cpu)
{
	S.cur = cpu;
}

bool coh_sched_running(void)
{
	return S.running;
}

static uint64_t coh_sched_rand(void) /* xorshift64* */
{
	S.rng ^= S.rng >> 12;
	S.rng ^= S.rng << 25;
	S.rng ^= S.rng >> 27;
	return S.rng * 0x2545f4914f6cdd1dull;
}

static void coh_sched_switch(unsigned next)
{
	unsigned self = S.cur;

	if (next == self)
		return;
	if (_setjmp(S.cpu[self].jb) == 0) {
		S.cur = next;
		_longjmp(S.cpu[next].jb, 1);
	}
}

/* The ready CPU with the earliest clock (the lowest id on a tie). */
static unsigned coh_sched_pick(void)
{
	unsigned best = S.ready[0];

	for (unsigned i = 1; i < S.nready; i++)
		if (S.cpu[S.ready[i]].clock < S.cpu[best].clock ||
		    (S.cpu[S.ready[i]].clock == S.cpu[best].clock &&
		     S.ready[i] < best))
			best = S.ready[i];
	return best;
}

/* A factor in [0.9, 1.1): no two CPUs in lockstep. */
static double coh_sched_jitter(void)
{
	return 0.9 + 0.2 * (double)(coh_sched_rand() >> 11) * 0x1p-53;
}

/*
 * The time an access costs its CPU (coh_sched.h): a load or RMW that
 * misses stalls; a store does not (x86's store buffer, TSO): its miss is
 * done in the background by `drained`, and an RMW, which drains the store
 * buffer, first waits for that.
 */
static void coh_sched_charge(struct coh_cpu *c, enum coh_kind kind,
			     unsigned misses)
{
	double j = coh_sched_jitter();

	if (kind == COH_WRITE) {
		if (misses != 0 &&
		    c->clock + misses * S.t.line_ns * j > c->drained)
			c->drained = c->clock + misses * S.t.line_ns * j;
		c->clock += S.t.hit_ns * j;
		return;
	}
	if (kind == COH_RMW && c->drained > c->clock)
		c->clock = c->drained;
	c->clock += (misses ? misses * S.t.line_ns : S.t.hit_ns) * j;
}

void coh_sched_access(const volatile void *addr, unsigned size,
		      enum coh_kind kind)
{
	struct coh_cpu *c;
	unsigned misses;

	if (!S.running)
		return;
	/*
	 * Switch first, then record: the caller performs the access right
	 * after this returns, with no switch in between, so the directory
	 * sees the accesses in the order they happen.
	 */
	coh_sched_switch(coh_sched_pick());
	c = &S.cpu[S.cur];
	misses = coh_dir_access(&coh_sched_dir, S.cur, (uintptr_t)addr, size,
				kind);
	coh_sched_charge(c, kind, misses);
	if (++c->accesses > COH_HARD_LIMIT) {
		fprintf(stderr,
			"coherence: cpu %u made %llu accesses in one "
			"run: a livelock\n",
			S.cur, (unsigned long long)c->accesses);
		exit(1);
	}
}

void coh_sched_pause(void)
{
	if (S.running)
		S.cpu[S.cur].clock += S.t.pause_ns * coh_sched_jitter();
}

bool coh_sched_stop_load(const volatile void *addr)
{
	struct coh_cpu *c;

	if (!S.running)
		return false;
	c = &S.cpu[S.cur];
	if ((const volatile void *)&c->stop.flag.v != addr)
		return false;
	if (c->clock >= S.t.budget_ns)
		lf_init_u32(&c->stop.flag, 1);
	return true;
}

/* A CPU whose run() returned leaves the ready set and gives the turn away. */
static void coh_sched_exit(unsigned self)
{
	for (unsigned i = 0; i < S.nready; i++)
		if (S.ready[i] == self) {
			S.ready[i] = S.ready[--S.nready];
			break;
		}
	if (S.nready == 0)
		_longjmp(S.main_jb, 1);
	S.cur = coh_sched_pick();
	_longjmp(S.cpu[S.cur].jb, 1);
}

static void coh_sched_tramp(int id)
{
	struct coh_cpu *c = &S.cpu[id];

	if (_setjmp(c->jb) == 0)
		_longjmp(S.main_jb, 1); /* started: back to coh_sched_run */
	c->ops = S.run((unsigned)id, &c->stop);
	coh_sched_exit((unsigned)id);
}

static int coh_sched_start(unsigned id)
{
	struct coh_cpu *c = &S.cpu[id];

	if (c->stack == NULL) {
		c->stack = mmap(NULL, COH_STACK_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c->stack == MAP_FAILED) {
			c->stack = NULL;
			return -1;
		}
		mprotect(c->stack, COH_GUARD, PROT_NONE);
	}
	if (getcontext(&c->uc) != 0)
		return -1;
	c->uc.uc_stack.ss_sp = c->stack;
	c->uc.uc_stack.ss_size = COH_STACK_SIZE;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, (void (*)(void))coh_sched_tramp, 1, (int)id);
	if (_setjmp(S.main_jb) == 0)
		setcontext(&c->uc);
	return 0;
}

int coh_sched_run(unsigned ncpus, const struct coh_timing *t,
		  uint64_t (*run)(unsigned id, const struct bench_stop *stop),
		  uint64_t *ops, double *clock_ns)
{
	if (ncpus == 0 || ncpus > COH_MAX_CPUS)
		return -1;
	coh_dir_reset(&coh_sched_dir);
	coh_sched_heavy = 0;
	S.ncpus = ncpus;
	S.t = *t;
	S.rng = t->seed * 0x9e3779b97f4a7c15ull + 1;
	S.run = run;
	S.nready = ncpus;
	for (unsigned i = 0; i < ncpus; i++) {
		S.cpu[i].accesses = 0;
		S.cpu[i].clock = 0;
		S.cpu[i].drained = 0;
		S.cpu[i].ops = 0;
		lf_init_u32(&S.cpu[i].stop.flag, 0);
		S.ready[i] = i;
		if (coh_sched_start(i) != 0) {
			fprintf(stderr, "coherence: no stack for cpu %u\n", i);
			return -1;
		}
	}
	S.running = true;
	S.cur = coh_sched_pick();
	if (_setjmp(S.main_jb) == 0)
		_longjmp(S.cpu[S.cur].jb, 1);
	S.running = false;
	for (unsigned i = 0; i < ncpus; i++) {
		ops[i] = S.cpu[i].ops;
		clock_ns[i] = S.cpu[i].clock;
	}
	return 0;
}
