/*
 * coh_dir.h: a MESI-style coherence directory over 64-byte lines, the cost
 * model of the coherence accounting mode (README.md in this folder).
 *
 * The directory sees every shared-memory access of the logical CPUs, in the
 * order the scheduler (coh_sched.c) interleaves them, and keeps per line
 * which caches hold it: one owner in M/E (exclusive, may be dirty) or a set
 * of sharers in S. Caches are infinite (no capacity or conflict misses) and
 * coherent at line granularity, as on x86-64 and arm64 servers. Per access:
 *
 *   read   by c   hit if c holds the line (owner or sharer). Otherwise a
 *                 miss: *cold* if c never held the line before (its first
 *                 touch: compulsory, once per CPU and line, whoever serves
 *                 it), else a *transfer*: c lost its copy to another CPU's
 *                 write and gets the line back from that CPU's cache (the
 *                 coherence miss proper, which recurs as long as CPUs
 *                 share the line). A read of a line no cache holds gives c
 *                 the line exclusive (E); otherwise an owner drops to S.
 *   write  by c   hit if c owns the line (M or E: silent). If c shares it,
 *                 an *upgrade*: the data is there, the other copies are
 *                 invalidated. If c does not hold it: a miss, cold or a
 *                 transfer as for a read. Every other copy is invalidated
 *                 (*invalidations* counts copies) and c owns the line (M).
 *   rmw    by c   an atomic read-modify-write (CAS, exchange, fetch-op; a
 *                 failed CAS too: x86 takes the line exclusive for it): a
 *                 write for the directory, counted apart, and counted as
 *                 *rmw_remote* when the last CPU to touch the line (any
 *                 access) was another one.
 *
 * So a line that CPUs only read costs each of them one cold miss and then
 * nothing, however long the run: transfers and upgrades measure the
 * traffic that sharing written data causes, which is what grows with the
 * CPUs, and cold misses the warm-up, which a longer run amortises.
 *
 * An access that spans two lines counts on each. Coherence misses are
 * transfers plus upgrades: each costs about one line latency (a transfer
 * moves the data, an upgrade waits for every invalidation acknowledgement).
 * Per line the directory also counts its transfers, so the busiest line of
 * a run is known: the cache-line ping-pong on it is serial, which bounds
 * the whole machine's throughput (coh_dir_hottest()).
 *
 * The directory is plain data: one instance per run, no locks (the
 * scheduler runs one logical CPU at a time). Its memory comes from the
 * hosting program (malloc); this is a userspace tool, not core code.
 */
#ifndef COH_DIR_H
#define COH_DIR_H

#include <stdbool.h>
#include <stdint.h>

#define COH_LINE 64u
#define COH_MAX_CPUS 64u

enum coh_kind { COH_READ, COH_WRITE, COH_RMW };

/* Counts over a run (all CPUs). */
struct coh_counts {
	uint64_t accesses; /* every access, per line touched */
	uint64_t reads, writes, rmws;
	uint64_t cold;          /* first touches of a line by a CPU */
	uint64_t transfers;     /* misses on a line the CPU lost to a write */
	uint64_t upgrades;      /* writes to a line held shared */
	uint64_t invalidations; /* copies invalidated by writes */
	uint64_t rmw_remote;    /* RMWs on a line another CPU touched last */
};

/* One line's state (exposed for the unit test; opaque otherwise). */
struct coh_line {
	uint64_t tag;     /* line address + 1; 0: empty slot */
	uint64_t sharers; /* bit c: CPU c holds a copy */
	uint64_t seen;    /* bit c: CPU c has held it (since the reset) */
	uint32_t misses;  /* its transfers + upgrades */
	int8_t owner;     /* CPU holding it in M/E, or -1 */
	int8_t last;      /* last CPU to touch it, or -1 */
};

struct coh_dir {
	struct coh_line *slot; /* open addressing, linear probing */
	uint64_t mask;         /* slots - 1 (a power of two) */
	uint64_t used;
	struct coh_counts n;
};

/* An empty directory; false if out of memory. */
bool coh_dir_init(struct coh_dir *d);
void coh_dir_fini(struct coh_dir *d);
/* Forget every line and count (a new run). */
void coh_dir_reset(struct coh_dir *d);

/*
 * CPU cpu (< COH_MAX_CPUS) accesses size bytes at addr. Returns the
 * coherence misses it took (transfers and upgrades, one per line; 0 for a
 * hit or a cold miss: a first touch, which a warm cache in a long run
 * would not take).
 */
unsigned coh_dir_access(struct coh_dir *d, unsigned cpu, uintptr_t addr,
			unsigned size, enum coh_kind kind);

/* The most coherence misses (transfers + upgrades) any one line took. */
uint64_t coh_dir_hottest(const struct coh_dir *d);

#endif /* COH_DIR_H */
