/*
 * coh_sched.h: the logical CPUs of the coherence accounting mode and the
 * scheduler that interleaves them at every shared-memory access.
 *
 * N logical CPUs (1 to COH_MAX_CPUS) are coroutines on the one OS thread of
 * the program. Each runs a benchmark's unchanged run() function. The code
 * under test is compiled with the compiler's ThreadSanitizer
 * instrumentation (-fsanitize=thread at compile time only), but linked
 * against coh_tsan.c instead of the sanitizer's runtime: every load, store
 * and atomic operation it makes calls coh_sched_access() first, which
 * hands the turn to the CPU whose turn it is, then feeds that CPU's access
 * to the coherence directory (coh_dir.h). So the interleaving is at the
 * granularity of single accesses, and the directory sees them in one
 * global order.
 *
 * Whose turn: each CPU has a simulated clock, and the CPU with the
 * earliest clock makes the next access (a discrete-event simulation). A
 * load or read-modify-write advances its CPU's clock by hit_ns if it hit
 * in the CPU's cache, and by line_ns per miss (cold, transfer or upgrade)
 * otherwise. A store costs hit_ns: as on x86 (TSO) it goes into the store
 * buffer and its miss completes in the background; the next
 * read-modify-write (which drains the buffer on x86) waits until the
 * buffered misses are done. A seq_cst store counts as a read-modify-write
 * (x86 compiles it to xchg). Every cost is scaled by a random factor in
 * [0.9, 1.1) (seeded) so that CPUs doing the same thing do not stay in
 * lockstep. A spin-wait hint costs pause_ns (coh_sched_pause()). The
 * store buffer's capacity is not modelled. A CPU that
 * misses therefore falls behind as it would on hardware: a spinlock's
 * holder that releases and takes the lock again while the waiter is still
 * fetching the line keeps it, as on a real machine, and a CPU waiting on
 * a line costs time, not just a count. The clocks summed over the CPUs and
 * divided by the operations give a simulated time per operation, comparable
 * with the timed benchmarks' CPU time per operation (spinning counts in both).
 *
 * Why not the model checker of verify/mc (mc.h): it stops at 4 threads
 * (MC_MAX_THREADS), it is a search (many executions, each checked), it
 * provides lf_atomic_interpose() and the platform for its own build, and it
 * sees only atomic operations; this mode needs 64 CPUs, one long execution
 * per point, and the plain accesses of the locked baselines too.
 *
 * Outside run() (setup, each CPU's thread_init and thread_fini, check) the
 * instrumented code runs on the main context with nothing recorded and no
 * switch: only the operations are measured.
 *
 * Stopping. Each CPU gets its own struct bench_stop. When a CPU reads its
 * stop flag (run() does between batches of BENCH_BATCH operations) once
 * its clock has passed budget_ns, the flag reads 1; so every CPU does at
 * least one batch and runs for about budget_ns of simulated time. Reading
 * the flag is not counted.
 */
#ifndef COH_SCHED_H
#define COH_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "bench.h"
#include "coh_dir.h"

/* The directory of the current run. */
extern struct coh_dir coh_sched_dir;

/* Heavy barriers (membarrier: an IPI to every CPU) during the run. */
extern uint64_t coh_sched_heavy;

/* The timing model (above). */
struct coh_timing {
	double hit_ns;    /* an access that hits */
	double line_ns;   /* per miss */
	double pause_ns;  /* a spin-wait hint (x86 PAUSE) */
	double budget_ns; /* each CPU's simulated run time, at least */
	uint64_t seed;
};

/*
 * Run run(id, stop) on ncpus logical CPUs interleaved as above, recording
 * into coh_sched_dir (reset first). ops[id] gets what each returned,
 * clock_ns[id] its simulated time when run() returned.
 * Returns 0, or -1 if a CPU's stack cannot be had. A CPU that makes 2^32
 * accesses in one run is taken for a livelock: the program exits 1.
 */
int coh_sched_run(unsigned ncpus, const struct coh_timing *t,
		  uint64_t (*run)(unsigned id, const struct bench_stop *stop),
		  uint64_t *ops, double *clock_ns);

/* The current logical CPU (main context: the one set below, else 0). */
unsigned coh_sched_cpu(void);
/* On the main context: whose thread_init/thread_fini runs now. */
void coh_sched_set_cpu(unsigned cpu);

/* An access of the code under test: record it, maybe switch CPU. */
void coh_sched_access(const volatile void *addr, unsigned size,
		      enum coh_kind kind);

/*
 * A 32-bit atomic load at addr: if addr is the current CPU's stop flag,
 * raise it when its budget is spent and return true (not an access of the
 * code under test: not recorded).
 */
bool coh_sched_stop_load(const volatile void *addr);

/*
 * A spin-wait iteration (lf_platform_pause(), or a waiter of coh_pthread.h):
 * the CPU's clock advances by pause_ns. Spinning CPUs therefore make one
 * access per pause, as on hardware, not one per hit.
 */
void coh_sched_pause(void);

/* True while logical CPUs run (recording on). */
bool coh_sched_running(void);

#endif /* COH_SCHED_H */
