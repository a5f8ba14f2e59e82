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
 * feeds the access to the coherence directory (coh_dir.h) and then hands
 * the turn to a CPU picked at random (seeded). So the interleaving is at
 * the granularity of single accesses, as on real hardware where all CPUs
 * run at once, and the directory sees them in one global order.
 *
 * Why not the model checker of verify/model (mc.h): it stops at 4 threads
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
 * stop flag (run() does between batches of BENCH_BATCH operations) after
 * it has made `budget` accesses, the flag reads 1; so every CPU does at
 * least one batch and about `budget` accesses. Reading the flag is not
 * counted.
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

/*
 * Run run(id, stop) on ncpus logical CPUs interleaved as above, recording
 * into coh_sched_dir (reset first). ops[id] gets what each returned.
 * Returns 0, or -1 if a CPU's stack cannot be had. A CPU that goes on
 * 2^28 accesses past its budget is a livelock: the program exits 1.
 */
int coh_sched_run(unsigned ncpus, uint64_t budget, uint64_t seed,
		  uint64_t (*run)(unsigned id, const struct bench_stop *stop),
		  uint64_t *ops);

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

/* True while logical CPUs run (recording on). */
bool coh_sched_running(void);

#endif /* COH_SCHED_H */
