/*
 * mc.c: the controlled scheduler of mc.h, and the platform shim of the
 * mc build (lf_platform_cpu_id is the coroutine running; a panic of the
 * core fails the execution and prints its schedule).
 *
 * Scheduling points and choices. At an atomic operation of thread T the
 * options are T itself (the default) and every other runnable thread (each a
 * preemption); at a spin-wait, at the end of a thread and at the start, the
 * options are the other runnable threads, the first in round-robin order
 * being free and, at a spin, the others a preemption each. DFS enumerates
 * the option index at each point with a choice, depth first, pruning what
 * exceeds the preemption bound; the prefix of the previous execution is
 * replayed and the last changeable choice moved on (stateless search: each
 * execution starts from setup()).
 *
 * Parking. A thread's read set is every location it accessed since its last
 * spin. At a spin it is parked with that set as its wait set, unless one
 * of those locations changed meanwhile ("dirty"); a write by another thread
 * that changes a location of a wait set unparks its owner. A write is known
 * to change a location by comparing the bytes at its address before and
 * after (at the next scheduling point): a compare-exchange that fails or an
 * exchange that stores the same value wakes nobody, so two spinners cannot
 * wake each other for ever. A thread that itself changed a location since
 * its last spin is not parked either: its next iteration may read its own
 * write (a retry loop that moved something, and so behaves differently
 * next time). Counters updated with fetch_add/sub/or/and are the
 * exception: a loop is assumed not to branch on its own statistics.
 * Thread-local state (an attempt counter) is assumed to matter only
 * together with what other threads change; see README.md. The comparison reads
 * the largest of 8, 4, 2, 1 bytes the address is aligned to, which may include
 * a neighbour: that only wakes a thread for nothing.
 *
 * Store buffers. The scheduler runs sequentially consistent interleavings,
 * which hide the one reordering an asymmetric (heavy) barrier exists for: a
 * thread's store made visible only after its own later loads (store-load,
 * as x86-64's store buffer and C11's relaxed and release stores allow). A
 * harness may name locations (mc_test.buffered) whose relaxed and release
 * stores go into a one-entry store buffer of the writing thread: the thread
 * reads its own value, the others the old one, until the buffer drains: at
 * the thread's seq_cst fence (LF_OP_FENCE), its next write to the location,
 * a release (or stronger) write of the thread to another location (C11's
 * release; a relaxed or acquire-only RMW drains nothing, so the buffered
 * store may become visible after it, store-store reordering), a
 * spin-wait, its end, a write to the location by another thread, a second
 * buffered store to another location (first in, first out), and at any
 * thread's lf_platform_heavy_barrier(), which drains every buffer: what
 * membarrier(2) or an IPI does. A compiler barrier drains nothing. The
 * drain is as late as allowed, one behaviour among those the hardware has;
 * earlier drains are the unbuffered interleavings.
 *
 * Stale loads. Store buffers delay a thread's stores; nothing above lets
 * a thread's later load be satisfied before an earlier relaxed load of
 * its own (load-load order, which AArch64 and POWER do not keep, and the
 * compiler need not either): the one reordering an acquire load exists
 * to forbid. A harness may name locations (mc_test.stale) whose plain
 * loads (LF_OP_LOAD, not seq_cst) may be satisfied early: once a thread
 * makes a relaxed load R, its later loads may move up above R (and above
 * every relaxed load since its last acquire, or stronger, operation A
 * before R), but not above A, nor above an acquire load between R and
 * them that must stay where it is. So a load L of a named location by a
 * thread that made such an R may return (a choice, free of preemption
 * cost) the value the location had at A, provided other threads wrote
 * it since A (not with seq_cst), the thread has not loaded it since A
 * (coherence), and between R and L it made no RMW, fence or seq_cst
 * access and each acquire load it made there read a location nobody
 * wrote since A (those move up with L and must read then what they read
 * now). An acquire load at R is what forbids it. Every execution this
 * allows, C11 and AArch64 allow too (the conditions are stronger), so a
 * failure under it is real.
 */
#define _GNU_SOURCE
#include "mc.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "lf_platform.h"

#define MC_STACK_SIZE (512 * 1024)
#define MC_RSET 32 /* locations remembered per thread; more: any */

struct mc_thread {
	ucontext_t ctx;
	void *stack;
	bool done;
	bool parked;     /* waiting for a location of wset to change */
	bool dirty;      /* a location of rset changed since it was read */
	unsigned nr, nw; /* > MC_RSET: overflowed, matches everything */
	const volatile void *rset[MC_RSET];
	const volatile void *wset[MC_RSET];
	unsigned prio; /* PCT */
	/*
	 * A store buffer of one entry (see "Store buffers" above): a relaxed
	 * or release store to a location the harness names, not yet visible
	 * to the other threads. val is the thread's own view, mem what the
	 * others see; shown: val is in memory for one access of the thread.
	 */
	bool sb_full, sb_shown;
	const volatile void *sb_addr;
	unsigned sb_len;
	uint64_t sb_val, sb_mem;
	/*
	 * Stale loads: the step of the thread's last acquire (or fence);
	 * hoisting: a relaxed load R made since, h_step the acquire before
	 * it; the thread's last loads of named locations, for coherence.
	 */
	uint64_t acq_step, h_step;
	bool hoisting;
	const volatile void *nl_addr[MC_RSET];
	uint64_t nl_step[MC_RSET];
	unsigned nnl;
};

/* Stale loads (see above): the writes of an execution, oldest first. */
struct mc_write {
	const volatile void *addr;
	uint64_t step, old; /* old: the location's value before it */
	unsigned by;
	bool named; /* a named location, not written with seq_cst */
};

/* One scheduling point with a choice, as DFS remembers it. */
struct mc_choice {
	uint8_t opt[MC_MAX_THREADS];
	uint8_t n, idx, cost;
	uint32_t pre; /* preemptions before this point */
};

static struct {
	const struct mc_test *t;
	const struct mc_opts *o;
	struct mc_thread th[MC_MAX_THREADS];
	unsigned n, cur;
	bool in_run, in_thread, active;
	ucontext_t main;
	jmp_buf jb;
	uint64_t steps, tick;
	unsigned preempt;
	/* DFS: the choices of the current execution; the first ndfs are
	 * replayed from the previous one. */
	struct mc_choice *dfs;
	size_t ndfs, dpos, dcap;
	/* The threads chosen at points with a choice: the schedule. */
	uint8_t *log;
	size_t nlog, lcap;
	/* MC_REPLAY */
	uint8_t *rep;
	size_t nrep, rpos;
	/* The last write, settled at the next scheduling point. */
	bool wpend, wcount; /* wcount: a fetch_add/sub/or/and */
	bool wbuf; /* the last write goes into the writer's store buffer */
	unsigned wby, wlen;
	const volatile void *wa;
	uint64_t wold;
	lf_order word; /* the last write's order */
	/* Stale loads: a stale value shown for one load; the writes. */
	bool st_shown;
	const volatile void *st_addr;
	unsigned st_len;
	uint64_t st_new;
	uint64_t nstale_reads; /* stale values returned, this execution */
	struct mc_write *wlog;
	size_t nwlog, wlcap;
	/* PCT */
	uint64_t rng, k;
	uint64_t change[16];
	unsigned nchange;
	bool failed;
	char msg[512];
} S;

static void *mc_xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL) {
		fprintf(stderr, "mc: out of memory\n");
		exit(2);
	}
	return p;
}

_Noreturn void mc_fail(const char *fmt, ...)
{
	if (!S.failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(S.msg, sizeof(S.msg), fmt, ap);
		va_end(ap);
		S.failed = true;
	}
	if (!S.in_run) {
		fprintf(stderr, "mc: failure outside an execution: %s\n",
			S.msg);
		exit(2);
	}
	if (S.in_thread) {
		/* Abandon the coroutines; the next execution remakes them. */
		S.in_thread = false;
		S.active = false;
		swapcontext(&S.th[S.cur].ctx, &S.main);
		abort(); /* never resumed */
	}
	longjmp(S.jb, 1);
}

void mc_trace(const char *fmt, ...)
{
	if (!S.o || !S.o->trace)
		return;
	va_list ap;
	va_start(ap, fmt);
	printf("      t%u ", mc_self());
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

static void mc_trace_step(unsigned self, const volatile void *addr,
			  enum lf_atomic_op op, bool local)
{
	static const char *const names[LF_OP_COUNT] = {
		"load",      "store",    "xchg",      "cas",  "fetch_add",
		"fetch_sub", "fetch_or", "fetch_and", "spin", "fence"
	};
	char buf[64] = "";
	if (addr && S.t->where)
		S.t->where(addr, buf, sizeof(buf));
	printf("%5llu t%u %-9s %p %s%s\n", (unsigned long long)S.steps, self,
	       names[op], (const void *)(uintptr_t)addr, buf,
	       local ? " (local)" : "");
}

unsigned mc_self(void)
{
	return S.in_thread ? S.cur : 0;
}

const void *mc_cfg(void)
{
	return S.t->cfg;
}

uint64_t mc_tick(void)
{
	return ++S.tick;
}

/* The platform shim (lockfree/lf_platform.h) of the mc build. */
unsigned lf_platform_cpu_id(void)
{
	return mc_self();
}

_Noreturn void lf_platform_panic(const char *file, int line, const char *what)
{
	mc_fail("core panic: %s:%d: %s", file, line, what);
}

/*
 * The heavy barrier of the mc build: it drains every thread's store
 * buffer (as each thread executing a full barrier would), then is a
 * scheduling point. Without buffered locations it is only the latter, and
 * the asymmetric protocols are checked for their logic (who sees whose
 * flag) alone (docs/verification.md).
 */
static const int mc_heavy_addr;
static void mc_sb_drain_all(void);

bool lf_platform_heavy_barrier_init(void)
{
	return true;
}

bool lf_platform_heavy_barrier_cheap(void)
{
	return true; /* the buddy harness checks the asymmetric owner */
}

void lf_platform_heavy_barrier(void)
{
	if (S.active)
		mc_sb_drain_all();
	lf_atomic_interpose(&mc_heavy_addr, LF_OP_LOAD, LF_SEQ_CST);
}

/* A yield is a spin-wait step: the turn goes to another thread. */
void lf_platform_yield(void)
{
	lf_platform_pause();
}

/* Coroutines take no interrupts: lf_spin.h's irqsave is a plain lock. */
lf_irqflags lf_platform_irq_save(void)
{
	return 0;
}

void lf_platform_irq_restore(lf_irqflags flags)
{
	(void)flags;
}

static uint64_t mc_rand(void)
{
	/* splitmix64 */
	uint64_t z = (S.rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void mc_log(uint8_t tid)
{
	if (S.nlog == S.lcap) {
		S.lcap = S.lcap ? 2 * S.lcap : 1024;
		S.log = mc_xrealloc(S.log, S.lcap);
	}
	S.log[S.nlog++] = tid;
}

static unsigned mc_decide_dfs(const uint8_t *opt, unsigned n, unsigned cost)
{
	if (S.dpos < S.ndfs) {
		struct mc_choice *c = &S.dfs[S.dpos++];
		if (c->n != n || memcmp(c->opt, opt, n) != 0)
			mc_fail("nondeterministic test: point %zu had other "
				"options in an earlier execution",
				S.dpos - 1);
		return c->idx;
	}
	if (S.ndfs == S.dcap) {
		S.dcap = S.dcap ? 2 * S.dcap : 1024;
		S.dfs = mc_xrealloc(S.dfs, S.dcap * sizeof(*S.dfs));
	}
	struct mc_choice *c = &S.dfs[S.ndfs++];
	memcpy(c->opt, opt, n);
	c->n = (uint8_t)n;
	c->idx = 0;
	c->cost = (uint8_t)cost;
	c->pre = S.preempt;
	S.dpos++;
	return 0;
}

static unsigned mc_decide_pct(const uint8_t *opt, unsigned n)
{
	unsigned best = 0;
	for (unsigned i = 1; i < n; i++)
		if (S.th[opt[i]].prio > S.th[opt[best]].prio)
			best = i;
	return best;
}

static unsigned mc_decide_replay(const uint8_t *opt, unsigned n)
{
	if (S.rpos >= S.nrep)
		return 0;
	uint8_t tid = S.rep[S.rpos++];
	for (unsigned i = 0; i < n; i++)
		if (opt[i] == tid)
			return i;
	mc_fail("replay diverged at choice %zu: thread %u cannot run",
		S.rpos - 1, tid);
}

/*
 * Pick one of opt[0..n); opt[0] is the default, any other costs `cost`
 * preemptions.
 */
static unsigned mc_decide(const uint8_t *opt, unsigned n, unsigned cost)
{
	if (n == 1)
		return opt[0];
	unsigned idx = 0;
	if (S.o->mode == MC_DFS)
		idx = mc_decide_dfs(opt, n, cost);
	else if (S.o->mode == MC_PCT)
		idx = mc_decide_pct(opt, n);
	else
		idx = mc_decide_replay(opt, n);
	if (idx > 0)
		S.preempt += cost;
	mc_log(opt[idx]);
	return opt[idx];
}

/* Next DFS execution: move the deepest choice that may move. */
static bool mc_dfs_next(void)
{
	while (S.ndfs > 0) {
		struct mc_choice *c = &S.dfs[S.ndfs - 1];
		if (c->idx + 1 < c->n && c->pre + c->cost <= S.o->bound) {
			c->idx++;
			return true;
		}
		S.ndfs--;
	}
	return false;
}

static bool mc_set_has(const volatile void *const *set, unsigned n,
		       const volatile void *a)
{
	if (n > MC_RSET)
		return true;
	for (unsigned i = 0; i < n; i++)
		if (set[i] == a)
			return true;
	return false;
}

static void mc_rset_add(struct mc_thread *th, const volatile void *a)
{
	if (th->nr > MC_RSET || mc_set_has(th->rset, th->nr, a))
		return;
	if (th->nr == MC_RSET)
		th->nr = MC_RSET + 1;
	else
		th->rset[th->nr++] = a;
}

static unsigned mc_width(const volatile void *a)
{
	uintptr_t x = (uintptr_t)a;
	return (x & 7) == 0 ? 8 : (x & 3) == 0 ? 4 : (x & 1) == 0 ? 2 : 1;
}

static uint64_t mc_peek(const volatile void *a, unsigned len)
{
	uint64_t v = 0;
	memcpy(&v, (const void *)(uintptr_t)a, len);
	return v;
}

static void mc_poke(const volatile void *a, unsigned len, uint64_t v)
{
	memcpy((void *)(uintptr_t)a, &v, len);
}

/* A write by wby changed wa: wake whoever waits on it. */
static void mc_wake(unsigned wby, const volatile void *wa, bool counter)
{
	/* Its next iteration may read what it wrote: do not park it. */
	if (!counter)
		S.th[wby].dirty = true;
	for (unsigned u = 0; u < S.n; u++) {
		struct mc_thread *th = &S.th[u];
		if (u == wby || th->done)
			continue;
		if (th->parked && mc_set_has(th->wset, th->nw, wa))
			th->parked = false;
		if (mc_set_has(th->rset, th->nr, wa))
			th->dirty = true;
	}
}

/* Make thread u's buffered store visible to all. */
static void mc_sb_drain(unsigned u)
{
	struct mc_thread *th = &S.th[u];
	if (!th->sb_full)
		return;
	mc_poke(th->sb_addr, th->sb_len, th->sb_val);
	th->sb_full = th->sb_shown = false;
	if (th->sb_val != th->sb_mem)
		mc_wake(u, th->sb_addr, false);
}

static void mc_sb_drain_all(void)
{
	for (unsigned u = 0; u < S.n; u++)
		mc_sb_drain(u);
}

/* The running thread's own view of its buffer goes back into hiding. */
static void mc_sb_hide(struct mc_thread *th)
{
	if (th->sb_shown) {
		mc_poke(th->sb_addr, th->sb_len, th->sb_mem);
		th->sb_shown = false;
	}
}

/* Was a written since step (by anyone)? */
static bool mc_written_since(const volatile void *a, uint64_t step)
{
	for (size_t i = S.nwlog; i-- > 0 && S.wlog[i].step > step;)
		if (S.wlog[i].addr == a)
			return true;
	return false;
}

/*
 * Stale loads: thread self makes op (order) on addr: its hoist point
 * follows (see above). Before the operation's own stale choice.
 */
static void mc_stale_track(unsigned self, const volatile void *addr,
			   enum lf_atomic_op op, lf_order order)
{
	struct mc_thread *th = &S.th[self];
	bool acq = order == LF_ACQUIRE || order == LF_ACQ_REL ||
		   order == LF_SEQ_CST;
	bool load = op == LF_OP_LOAD;
	bool rmw = op != LF_OP_LOAD && op != LF_OP_STORE;
	/* A named location's acquire load: mc_stale_load() decides. */
	bool named = load && S.t->stale(addr) != 0;
	if (th->hoisting &&
	    (rmw || order == LF_SEQ_CST ||
	     (load && acq && !named && mc_written_since(addr, th->h_step))))
		th->hoisting = false; /* L cannot move above this */
	if (!th->hoisting && load && !acq) {
		th->hoisting = true; /* R */
		th->h_step = th->acq_step;
	}
}

/*
 * May thread self's load of addr (width w) return the value at its hoist
 * point (see above)? The index of the first write since then, or -1.
 */
static long mc_stale_ok(unsigned self, const volatile void *addr,
			lf_order order)
{
	struct mc_thread *th = &S.th[self];
	if (!th->hoisting || order == LF_SEQ_CST)
		return -1;
	size_t i = S.nwlog;
	while (i > 0 && S.wlog[i - 1].step > th->h_step)
		i--;
	for (; i < S.nwlog && S.wlog[i].addr != addr; i++)
		;
	if (i == S.nwlog)
		return -1; /* not written since: nothing older to read */
	/* Not loaded by us since (coherence), nor written by us. */
	for (unsigned j = 0; j < th->nnl; j++)
		if (th->nl_addr[j] == addr && th->nl_step[j] > th->h_step)
			return -1;
	for (size_t j = i; j < S.nwlog; j++)
		if (S.wlog[j].addr == addr &&
		    (!S.wlog[j].named || S.wlog[j].by == self))
			return -1;
	return (long)i;
}

/*
 * Thread self is about to load addr (order), a named location: maybe the
 * value it had at the thread's hoist point instead (a choice), shown
 * until the next settle.
 */
static void mc_stale_load(unsigned self, const volatile void *addr,
			  lf_order order)
{
	struct mc_thread *th = &S.th[self];
	unsigned w = S.t->stale ? S.t->stale(addr) : 0;
	if (w == 0)
		return;
	long i = mc_stale_ok(self, addr, order);
	/* This load, for coherence (a stale one too: it reads as of A). */
	unsigned j = 0;
	while (j < th->nnl && th->nl_addr[j] != addr)
		j++;
	if (j == th->nnl && th->nnl < MC_RSET)
		th->nnl++;
	if (j < MC_RSET) {
		th->nl_addr[j] = addr;
		th->nl_step[j] = S.steps;
	}
	bool acq = order == LF_ACQUIRE || order == LF_ACQ_REL;
	if (i < 0) {
		/* An acquire that reads its own time: later loads stay below.
		 */
		if (acq && th->hoisting && mc_written_since(addr, th->h_step))
			th->hoisting = false;
		return;
	}
	uint8_t opt[2] = { 0, 1 };
	unsigned pick;
	if (S.o->mode == MC_PCT) {
		pick = mc_rand() % 4 == 0; /* a stale read now and then */
		mc_log((uint8_t)pick);
	} else {
		pick = mc_decide(opt, 2, 0);
	}
	if (!pick) {
		if (acq)
			th->hoisting = false; /* as above */
		return;
	}
	S.st_new = mc_peek(addr, w);
	mc_poke(addr, w, S.wlog[i].old);
	S.st_shown = true;
	S.st_addr = addr;
	S.st_len = w;
	S.nstale_reads++;
	th->dirty = true; /* not parked: the next look may differ */
	if (S.o->trace)
		mc_trace("      t%u reads the value before the writes since "
			 "step %llu\n",
			 self, (unsigned long long)th->h_step);
}

/* The last write has happened: wake whoever waits on a changed location. */
static void mc_settle(void)
{
	if (S.st_shown) { /* a stale load's value goes back */
		mc_poke(S.st_addr, S.st_len, S.st_new);
		S.st_shown = false;
	}
	mc_sb_hide(&S.th[S.cur]);
	if (!S.wpend)
		return;
	S.wpend = false;
	if (S.wbuf) {
		/* A buffered store: keep it in the buffer, not in memory. */
		struct mc_thread *th = &S.th[S.wby];
		th->sb_val = mc_peek(th->sb_addr, th->sb_len);
		mc_poke(th->sb_addr, th->sb_len, th->sb_mem);
		th->sb_full = true;
		return;
	}
	if (mc_peek(S.wa, S.wlen) == S.wold)
		return;
	if (S.t->stale) {
		if (S.nwlog == S.wlcap) {
			S.wlcap = S.wlcap ? 2 * S.wlcap : 1024;
			S.wlog = mc_xrealloc(S.wlog, S.wlcap * sizeof(*S.wlog));
		}
		S.wlog[S.nwlog++] =
			(struct mc_write){ S.wa, S.steps, S.wold, S.wby,
					   S.t->stale(S.wa) != 0 &&
						   S.word != LF_SEQ_CST };
	}
	mc_wake(S.wby, S.wa, S.wcount);
}

/*
 * Thread self is about to do op on addr: drain what must be drained, show
 * it its own buffered value, or get a buffered store ready. True if the
 * access is a store that goes into the buffer.
 */
static bool mc_sb_access(unsigned self, const volatile void *addr,
			 enum lf_atomic_op op, lf_order order)
{
	struct mc_thread *th = &S.th[self];
	if (addr == NULL)
		return false; /* a compiler barrier drains nothing */
	bool write = op != LF_OP_LOAD;
	for (unsigned u = 0; write && u < S.n; u++)
		if (u != self && S.th[u].sb_full && S.th[u].sb_addr == addr)
			mc_sb_drain(u);
	unsigned w = S.t->buffered ? S.t->buffered(addr) : 0;
	bool buf = w != 0 && op == LF_OP_STORE &&
		   (order == LF_RELAXED || order == LF_RELEASE);
	if (th->sb_full && th->sb_addr != addr && buf)
		mc_sb_drain(self); /* first in, first out */
	/*
	 * A release write (release, acq_rel or seq_cst, a store or an RMW)
	 * elsewhere makes the thread's earlier stores visible first, as
	 * C11's release does; a relaxed or acquire-only RMW does not, so the
	 * buffered store may become visible after it (store-store order,
	 * which POWER and RISC-V do not keep either).
	 */
	if (th->sb_full && th->sb_addr != addr && write && !buf &&
	    (order == LF_RELEASE || order == LF_ACQ_REL || order == LF_SEQ_CST))
		mc_sb_drain(self);
	if (th->sb_full && th->sb_addr == addr && write && !buf)
		mc_sb_drain(self);
	if (buf) {
		if (!th->sb_full)
			th->sb_mem = mc_peek(addr, w);
		th->sb_addr = addr;
		th->sb_len = w;
		return true;
	}
	if (th->sb_full && th->sb_addr == addr) {
		mc_poke(addr, th->sb_len, th->sb_val);
		th->sb_shown = true;
	}
	return false;
}

static bool mc_is_write(enum lf_atomic_op op)
{
	return op != LF_OP_LOAD && op != LF_OP_SPIN && op != LF_OP_FENCE;
}

/* Runnable threads other than self, in round-robin order after it. */
static unsigned mc_others(unsigned self, uint8_t *opt, unsigned n)
{
	for (unsigned i = 1; i < S.n; i++) {
		unsigned u = (self + i) % S.n;
		if (!S.th[u].done && !S.th[u].parked)
			opt[n++] = (uint8_t)u;
	}
	return n;
}

static void mc_switch(unsigned self, unsigned next)
{
	S.cur = next;
	swapcontext(&S.th[self].ctx, &S.th[next].ctx);
	/* Resumed: whoever switched to us set S.cur = self. */
}

static unsigned mc_pick_spin(unsigned self)
{
	struct mc_thread *th = &S.th[self];
	memcpy(th->wset, th->rset, sizeof(th->rset));
	th->nw = th->nr;
	th->nr = 0;
	th->parked = !th->dirty;
	th->dirty = false;
	uint8_t opt[MC_MAX_THREADS];
	unsigned n = mc_others(self, opt, 0);
	if (n == 0) {
		if (!th->parked)
			return self;
		mc_fail("livelock: every live thread spins on locations that "
			"no thread will change");
	}
	return mc_decide(opt, n, 1);
}

/* Thread self is about to access addr: remember it; settle a write later. */
static void mc_access(unsigned self, const volatile void *addr,
		      enum lf_atomic_op op, lf_order order, bool buffered)
{
	if (addr == NULL)
		return; /* a compiler barrier or fence: no location */
	mc_rset_add(&S.th[self], addr);
	if (mc_is_write(op)) {
		S.wpend = true;
		S.wbuf = buffered;
		S.wcount = op >= LF_OP_FETCH_ADD && op <= LF_OP_FETCH_AND;
		S.wby = self;
		S.wa = addr;
		S.wlen = mc_width(addr);
		S.wold = mc_peek(addr, S.wlen);
		S.word = order;
	}
}

/* A step: the length limit, PCT's change points. */
static void mc_count_step(unsigned self)
{
	if (++S.steps > S.o->max_steps)
		mc_fail("execution longer than %llu scheduling points (a loop "
			"that never spins?)",
			(unsigned long long)S.o->max_steps);
	if (S.o->mode == MC_PCT)
		for (unsigned j = 0; j < S.nchange; j++)
			if (S.change[j] == S.steps)
				S.th[self].prio = j + 1;
}

void lf_atomic_interpose(const volatile void *addr, enum lf_atomic_op op,
			 lf_order order)
{
	if (!S.active)
		return;
	mc_settle();
	unsigned self = S.cur;
	mc_count_step(self);
	bool local = S.t->local && op != LF_OP_SPIN && S.t->local(addr, op);
	if (S.o->trace)
		mc_trace_step(self, addr, op, local);
	/* Drained before a spin parks it: others may wait for the store. */
	if (op == LF_OP_FENCE || op == LF_OP_SPIN)
		mc_sb_drain(self);
	if (!local) {
		unsigned next;
		if (op == LF_OP_SPIN) {
			next = mc_pick_spin(self);
		} else {
			uint8_t opt[MC_MAX_THREADS] = { (uint8_t)self };
			next = mc_decide(opt, mc_others(self, opt, 1), 1);
		}
		if (next != self)
			mc_switch(self, next);
	}
	/*
	 * The monitor sees the state in which this thread's operation
	 * happens: after the scheduling decision, so that a thread paused
	 * just before an access is checked against what the others did
	 * meanwhile (an object freed while it was paused).
	 */
	bool buf = mc_sb_access(self, addr, op, order);
	if (S.t->stale)
		mc_stale_track(self, addr, op, order);
	if (op == LF_OP_LOAD && !local)
		mc_stale_load(self, addr, order);
	/* Stale loads: an acquire (or stronger) load or RMW, a fence. */
	if (op == LF_OP_FENCE || (op != LF_OP_STORE && op != LF_OP_SPIN &&
				  (order == LF_ACQUIRE || order == LF_ACQ_REL ||
				   order == LF_SEQ_CST)))
		S.th[self].acq_step = S.steps;
	if (S.t->step)
		S.t->step(addr, op);
	if (op != LF_OP_SPIN)
		mc_access(self, addr, op, order, buf);
}

static void mc_thread_end(unsigned tid)
{
	mc_settle();
	mc_sb_drain(tid);
	S.th[tid].done = true;
	uint8_t opt[MC_MAX_THREADS];
	unsigned n = mc_others(tid, opt, 0);
	if (n == 0) {
		for (unsigned u = 0; u < S.n; u++)
			if (!S.th[u].done)
				mc_fail("livelock: thread %u spins for ever "
					"after the others ended",
					u);
		S.in_thread = false;
		S.active = false;
		swapcontext(&S.th[tid].ctx, &S.main);
		abort(); /* never resumed */
	}
	unsigned next = mc_decide(opt, n, 0);
	S.cur = next;
	swapcontext(&S.th[tid].ctx, &S.th[next].ctx);
	abort(); /* a finished thread is never resumed */
}

static void mc_tramp(int tid)
{
	S.t->thread((unsigned)tid);
	mc_thread_end((unsigned)tid);
}

static void mc_pct_init(uint64_t run)
{
	S.rng = S.o->seed * 0x2545f4914f6cdd1dull + run;
	unsigned d = S.o->depth ? S.o->depth : 1;
	unsigned perm[MC_MAX_THREADS];
	for (unsigned i = 0; i < S.n; i++)
		perm[i] = i;
	for (unsigned i = S.n; i > 1; i--) {
		unsigned j = (unsigned)(mc_rand() % i);
		unsigned x = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = x;
	}
	for (unsigned i = 0; i < S.n; i++)
		S.th[i].prio = d + perm[i];
	/* The first run measures the length k of an execution: no change. */
	S.nchange = S.k == 0 ? 0 : d - 1 < 16 ? d - 1 : 16;
	for (unsigned j = 0; j < S.nchange; j++)
		S.change[j] = 1 + mc_rand() % S.k;
}

/*
 * A thread's stack and context, set up as bench/coherence's scheduler sets
 * up its CPUs': the two are separate programs with their own schedulers
 * (this one explores interleavings, that one counts line transfers).
 */
static void mc_thread_init(unsigned i)
{
	struct mc_thread *th = &S.th[i];
	if (th->stack == NULL) {
		th->stack = mmap(NULL, MC_STACK_SIZE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (th->stack == MAP_FAILED) {
			perror("mc: mmap");
			exit(2);
		}
		mprotect(th->stack, 4096, PROT_NONE); /* guard */
	}
	th->done = th->parked = th->dirty = false;
	th->sb_full = th->sb_shown = false;
	th->acq_step = th->h_step = 0;
	th->hoisting = false;
	th->nnl = 0;
	th->nr = th->nw = 0;
	getcontext(&th->ctx);
	th->ctx.uc_stack.ss_sp = th->stack;
	th->ctx.uc_stack.ss_size = MC_STACK_SIZE;
	th->ctx.uc_link = &S.main;
	makecontext(&th->ctx, (void (*)(void))mc_tramp, 1, (int)i);
}

static void mc_run_one(uint64_t run)
{
	S.steps = S.tick = 0;
	S.preempt = 0;
	S.dpos = S.nlog = S.rpos = 0;
	S.wpend = false;
	S.nwlog = 0;
	S.st_shown = false;
	S.nstale_reads = 0;
	S.failed = false;
	S.in_run = true;
	if (setjmp(S.jb) == 0) {
		S.t->setup();
		for (unsigned i = 0; i < S.n; i++)
			mc_thread_init(i);
		if (S.o->mode == MC_PCT)
			mc_pct_init(run);
		uint8_t opt[MC_MAX_THREADS];
		for (unsigned i = 0; i < S.n; i++)
			opt[i] = (uint8_t)i;
		S.cur = mc_decide(opt, S.n, 0);
		S.active = S.in_thread = true;
		swapcontext(&S.main, &S.th[S.cur].ctx);
		S.active = S.in_thread = false;
		if (!S.failed)
			S.t->check();
	}
	S.active = S.in_thread = false;
	S.in_run = false;
}

/* "0*12.1.2*3": thread ids, each with a repeat count. */
static char *mc_encode(const uint8_t *log, size_t n)
{
	size_t cap = 16 + n * 4, len = 0;
	char *s = mc_xrealloc(NULL, cap);
	s[0] = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && log[j] == log[i])
			j++;
		len += (size_t)snprintf(s + len, cap - len, "%s%u",
					i ? "." : "", log[i]);
		if (j - i > 1)
			len += (size_t)snprintf(s + len, cap - len, "*%zu",
						j - i);
		i = j;
	}
	return s;
}

static bool mc_decode(const char *s)
{
	S.nrep = 0;
	while (*s) {
		char *end;
		unsigned long tid = strtoul(s, &end, 10);
		unsigned long cnt = 1;
		if (end == s || tid >= S.n)
			return false;
		s = end;
		if (*s == '*') {
			cnt = strtoul(s + 1, &end, 10);
			if (end == s + 1)
				return false;
			s = end;
		}
		if (*s == '.')
			s++;
		else if (*s)
			return false;
		S.rep = mc_xrealloc(S.rep, S.nrep + cnt);
		memset(S.rep + S.nrep, (int)tid, cnt);
		S.nrep += cnt;
	}
	return true;
}

static void mc_crash(int sig)
{
	char buf[160];
	int len = snprintf(buf, sizeof(buf),
			   "mc: signal %d in %s; schedule of this execution:\n",
			   sig, S.t ? S.t->name : "?");
	if (write(2, buf, (size_t)len) < 0)
		_exit(3);
	char *s = mc_encode(S.log, S.nlog);
	if (write(2, s, strlen(s)) < 0 || write(2, "\n", 1) < 0)
		_exit(3);
	_exit(3);
}

static void mc_crash_handlers(void)
{
	static char altstack[64 * 1024];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	sigaltstack(&ss, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = mc_crash;
	sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGABRT, &sa, NULL);
}

/* Tally the execution just run; false when the search is over. */
static bool mc_account(const struct mc_opts *o, struct mc_result *r)
{
	r->executions++;
	r->steps += S.steps;
	if (S.steps > r->max_steps)
		r->max_steps = S.steps;
	if (S.nlog > r->max_choices)
		r->max_choices = S.nlog;
	if (S.steps > S.k)
		S.k = S.steps;
	if (S.failed) {
		r->failed = true;
		memcpy(r->msg, S.msg, sizeof(r->msg));
		r->schedule = mc_encode(S.log, S.nlog);
		return false;
	}
	if (o->mode == MC_REPLAY)
		return false;
	if (o->mode == MC_DFS && !mc_dfs_next()) {
		r->exhaustive = true;
		return false;
	}
	return o->runs == 0 || r->executions < o->runs;
}

static bool mc_refuse(struct mc_result *r, const char *why)
{
	snprintf(r->msg, sizeof(r->msg), "%s", why);
	r->failed = true;
	return false;
}

bool mc_explore(const struct mc_test *t, const struct mc_opts *o,
		struct mc_result *r)
{
	memset(r, 0, sizeof(*r));
	S.t = t;
	S.o = o;
	S.n = t->nthreads;
	S.ndfs = 0;
	S.k = 0; /* PCT: the longest execution so far */
	if (S.n == 0 || S.n > MC_MAX_THREADS)
		return mc_refuse(r, "bad thread count");
	if (o->mode == MC_REPLAY && !mc_decode(o->replay))
		return mc_refuse(r, "bad schedule string");
	mc_crash_handlers();
	uint64_t run = 0;
	do
		mc_run_one(run++);
	while (mc_account(o, r));
	signal(SIGSEGV, SIG_DFL);
	signal(SIGBUS, SIG_DFL);
	signal(SIGABRT, SIG_DFL);
	return !r->failed;
}

void mc_result_free(struct mc_result *r)
{
	free(r->schedule);
	r->schedule = NULL;
}

void mc_cover_add(struct mc_cover *c, const char *happened)
{
	c->execs++;
	for (const char *p = happened; *p; p++) {
		const char *at = strchr(c->codes, *p);
		if (at && at - c->codes < 16)
			c->hits[at - c->codes]++;
	}
}

bool mc_cover_report(struct mc_cover *c, const char *need)
{
	bool ok = true;
	printf("  covered (of %llu):", (unsigned long long)c->execs);
	for (size_t i = 0; c->codes[i] && i < 16; i++)
		printf(" %s %llu%s", c->names[i],
		       (unsigned long long)c->hits[i],
		       c->codes[i + 1] ? "," : "\n");
	for (const char *p = need ? need : ""; *p; p++) {
		const char *at = strchr(c->codes, *p);
		if (at == NULL || c->hits[at - c->codes] == 0) {
			printf("  coverage FAILED: no execution had %s\n",
			       at ? c->names[at - c->codes] : "?");
			ok = false;
		}
	}
	memset(c->hits, 0, sizeof(c->hits));
	c->execs = 0;
	return ok;
}
