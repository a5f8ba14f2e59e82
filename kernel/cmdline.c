/*
 * cmdline.c: the kernel command line (QEMU -append), words "key=value"
 * separated by spaces. Anything unknown or malformed is reported on a line
 * "LFK error cmdline ..." and the kernel exits with failure: it never
 * guesses. Options (kernel/README.md):
 *   tests=LIST     buddy,vas,epoch,kmem in any order, or all (default all)
 *   ms=N           duration of each test in milliseconds (default 1000)
 *   seconds=N      the same in seconds
 *   fault=KIND     none (default), pf, gp, ud, de: raise that exception on
 *                  the fault CPU once every CPU is up (tests the report);
 *                  stack: overflow the kernel stack into its guard page;
 *                  wtext: write to kernel text; nx: execute kernel data;
 *                  hole: read the direct map just past the end of RAM;
 *                  df: a stack overflow with the #PF gate not present
 *                  (#NP while delivering the #PF: a double fault, on its
 *                  own stack); nmi: an NMI to itself;
 *                  hang: the fault CPU stops before the tests (tests the
 *                  barrier's timeout);
 *                  noirq: the fault CPU runs the tests with interrupts off,
 *                  so it never answers a TLB shootdown (tests the timeout)
 *   faultcpu=N     which CPU raises it (default 0, the BSP)
 *   seed=N         the torture's random seed (default 1)
 *   maxcpus=N      refuse to run when the MADT has more CPUs than N
 *                  (default and at most MAX_CPUS, 255)
 *   ipims=N        how long a CPU waits for another to answer an IPI
 *                  or to start before it reports it (default 10000 ms);
 *                  a barrier waits ms + 6 * ipims
 *   clock=SRC      calibrate the TSC against auto (both the PIT and the
 *                  ACPI PM timer, which must agree: default), pit or
 *                  pmtimer only (time.c)
 *   selftest=acpi  also run the ACPI table checks on crafted tables at
 *                  boot (acpi.c: broken MADTs, checksums, RSDPs)
 *   minops=N       the fewest operations each CPU must do in each test,
 *                  or the test fails with reason too_few_ops (default 32)
 */
#include "kern.h"

struct kconfig kconf = { .tests = TEST_ALL,
			 .ms = 1000,
			 .seed = 1,
			 .min_ops = 32,
			 .max_cpus = MAX_CPUS,
			 .ipi_ms = 10000 };

static bool word_eq(const char *w, size_t n, const char *lit)
{
	return kstrlen(lit) == n && kstrncmp(w, lit, n) == 0;
}

/* A decimal number below 2^40: all of [s, s + n), nothing else. */
static bool parse_num(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 12)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static bool parse_tests(const char *s, size_t n, unsigned *out)
{
	unsigned t = 0;
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && s[j] != ',')
			j++;
		if (word_eq(s + i, j - i, "buddy"))
			t |= TEST_BUDDY;
		else if (word_eq(s + i, j - i, "vas"))
			t |= TEST_VAS;
		else if (word_eq(s + i, j - i, "epoch"))
			t |= TEST_EPOCH;
		else if (word_eq(s + i, j - i, "kmem"))
			t |= TEST_KMEM;
		else if (word_eq(s + i, j - i, "all"))
			t |= TEST_ALL;
		else
			return false;
		i = j + 1;
		if (j + 1 == n)
			return false; /* a trailing comma */
	}
	*out = t;
	return t != 0;
}

static const char *const fault_names[] = { "none", "pf",    "gp",    "ud",
					   "de",   "noirq", "stack", "wtext",
					   "nx",   "hole",  "hang",  "df",
					   "nmi" };
_Static_assert(sizeof(fault_names) / sizeof(fault_names[0]) == FAULT_NMI + 1,
	       "a name for every enum fault_kind");

const char *fault_name(enum fault_kind f)
{
	return fault_names[f];
}

static bool parse_fault(const char *s, size_t n, enum fault_kind *out)
{
	for (unsigned k = 0; k <= FAULT_NMI; k++) {
		if (word_eq(s, n, fault_names[k])) {
			*out = (enum fault_kind)k;
			return true;
		}
	}
	return false;
}

static bool cmdline_option(const char *k, size_t kn, const char *v, size_t vn)
{
	uint64_t x;
	if (word_eq(k, kn, "tests"))
		return parse_tests(v, vn, &kconf.tests);
	if (word_eq(k, kn, "ms") || word_eq(k, kn, "seconds")) {
		if (!parse_num(v, vn, &x) || x == 0)
			return false;
		kconf.ms = k[0] == 's' ? x * 1000 : x;
		return kconf.ms <= 3600u * 1000;
	}
	if (word_eq(k, kn, "fault"))
		return parse_fault(v, vn, &kconf.fault);
	if (word_eq(k, kn, "faultcpu")) {
		if (!parse_num(v, vn, &x) || x >= MAX_CPUS)
			return false;
		kconf.fault_cpu = (unsigned)x;
		return true;
	}
	if (word_eq(k, kn, "maxcpus")) {
		if (!parse_num(v, vn, &x) || x == 0 || x > MAX_CPUS)
			return false;
		kconf.max_cpus = (unsigned)x;
		return true;
	}
	if (word_eq(k, kn, "ipims")) {
		if (!parse_num(v, vn, &x) || x == 0 || x > 3600u * 1000)
			return false;
		kconf.ipi_ms = x;
		return true;
	}
	if (word_eq(k, kn, "clock")) {
		if (word_eq(v, vn, "auto"))
			kconf.clock = CLOCK_AUTO;
		else if (word_eq(v, vn, "pit"))
			kconf.clock = CLOCK_PIT;
		else if (word_eq(v, vn, "pmtimer"))
			kconf.clock = CLOCK_PMTIMER;
		else
			return false;
		return true;
	}
	if (word_eq(k, kn, "selftest")) {
		if (!word_eq(v, vn, "acpi"))
			return false;
		kconf.selftest_acpi = true;
		return true;
	}
	if (word_eq(k, kn, "minops")) {
		if (!parse_num(v, vn, &x) || x == 0)
			return false;
		kconf.min_ops = x;
		return true;
	}
	if (word_eq(k, kn, "seed")) {
		if (!parse_num(v, vn, &x))
			return false;
		kconf.seed = x ? x : 1;
		return true;
	}
	return false;
}

int cmdline_parse(const char *s)
{
	size_t i = 0, n = kstrlen(s);
	while (i < n) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
			i++;
			continue;
		}
		size_t j = i, eq = 0;
		while (j < n && s[j] != ' ' && s[j] != '\t' && s[j] != '\n') {
			if (s[j] == '=' && eq == 0)
				eq = j;
			j++;
		}
		if (eq == 0 || eq == i ||
		    !cmdline_option(s + i, eq - i, s + eq + 1, j - eq - 1)) {
			char w[96];
			size_t wn =
				j - i < sizeof(w) - 1 ? j - i : sizeof(w) - 1;
			memcpy(w, s + i, wn);
			w[wn] = '\0';
			kprintf("LFK error cmdline bad_option=\"%s\" (expected "
				"tests= ms= seconds= fault= faultcpu= seed= "
				"minops= maxcpus= ipims= clock= selftest=)\n",
				w);
			return -1;
		}
		i = j;
	}
	return 0;
}
