/*
 * time.c: the TSC, calibrated once at boot, for delays, timeouts and test
 * durations. Under TCG the TSC follows the host clock, and so do the PIT
 * and the ACPI PM timer: the figure is real time, not guest instructions.
 *
 * Two sources:
 *   pm_timer  the ACPI PM timer (3.579545 MHz, 24 or 32 bits, the port the
 *             FADT names): read at both ends of a 20 ms window, each read
 *             bracketed by two TSC reads, the tightest of five brackets
 *             kept, so a vCPU descheduled around a read does not skew it;
 *             three windows, the median;
 *   pit       PIT channel 2 in mode 0 (gate through port 0x61, no
 *             interrupt), counting down from 65535: its latched counter
 *             read at both ends of a 20 ms window, bracketed the same way.
 *             (Timing OUT going high after a 20 ms count instead came out
 *             10-80 % long in QEMU on a host with both cores busy.) OUT
 *             already high right after the count is written means no PIT
 *             (QEMU pit=off); a counter that does not reach the window
 *             within a bound is a timeout; one that wrapped (this vCPU
 *             away for 55 ms) is measured again. Three windows, the
 *             median.
 * A measure outside 50 MHz - 20 GHz makes its source implausible (unused),
 * as does any error: absent, timeout, unstable. With both
 * sources the two must agree within 5 % (the PM timer's figure is used);
 * with one, it is used; with none the kernel refuses to run ("LFK error
 * clock ..."). clock=pit or clock=pmtimer on the command line restricts the
 * calibration to that source.
 */
#include "kern.h"

uint64_t tsc_per_ms;

#define PIT_HZ 1193182u
#define PM_HZ 3579545u
#define CAL_MS 20u
#define TSC_MIN_PER_MS 50000ull    /* 50 MHz */
#define TSC_MAX_PER_MS 20000000ull /* 20 GHz */
#define SPIN_TSC_MAX 4000000000ull /* a wait's bound before calibration */
#define SPIN_ITER_MAX 1000000u     /* the same, should the TSC not move */

static uint16_t pm_port; /* (i) 0: no PM timer */
static bool pm_32bit;    /* (i) */

void clock_set_pm_timer(uint16_t port, bool ext32)
{
	pm_port = port;
	pm_32bit = ext32;
}

static uint32_t pm_read(void)
{
	return inl(pm_port) & (pm_32bit ? 0xffffffffu : 0xffffffu);
}

/*
 * A counter (read by read()) and the TSC at one instant: of 5 readings, the
 * one bracketed by the closest pair of TSC reads, the TSC at its middle.
 */
static void tsc_bracket(uint32_t (*read)(void), uint32_t *v, uint64_t *tsc)
{
	uint64_t best = ~0ull;
	*v = 0; /* set by the first reading; the compiler cannot tell */
	*tsc = 0;
	for (int i = 0; i < 5; i++) {
		uint64_t a = rdtsc();
		uint32_t x = read();
		uint64_t b = rdtsc();
		if (b - a < best) {
			best = b - a;
			*v = x;
			*tsc = a + (b - a) / 2;
		}
	}
}

static const char *pm_measure(uint64_t *out)
{
	uint32_t mask = pm_32bit ? 0xffffffffu : 0xffffffu;
	uint32_t p0, p1;
	uint64_t t0, t1, start = rdtsc();
	uint32_t want = PM_HZ / 1000 * CAL_MS, iter = 0;
	tsc_bracket(pm_read, &p0, &t0);
	do {
		if (++iter > SPIN_ITER_MAX || rdtsc() - start > SPIN_TSC_MAX)
			return "timeout";
		tsc_bracket(pm_read, &p1, &t1);
	} while (((p1 - p0) & mask) < want);
	uint64_t ticks = (p1 - p0) & mask;
	*out = (t1 - t0) * PM_HZ / (ticks * 1000);
	return NULL;
}

/* PIT channel 2's counter, latched (16 bits). */
static uint32_t pit_count(void)
{
	outb(0x43, 0x80); /* latch channel 2 */
	uint8_t lo = inb(0x42);
	uint8_t hi = inb(0x42);
	return (uint32_t)(lo | hi << 8);
}

static const char *pit_measure(uint64_t *out)
{
	uint32_t want = PIT_HZ / 1000 * CAL_MS, iter = 0;
	uint8_t gate = inb(0x61);
	const char *err = NULL;
	uint32_t c0, c1; /* 16-bit counts */
	uint64_t t0, t1, start = rdtsc();
	outb(0x61, (uint8_t)((gate & ~0x02) | 0x01)); /* gate on, no speaker */
	outb(0x43, 0xb0); /* channel 2, lobyte/hibyte, mode 0 */
	/* Writing the count restarts mode 0: OUT goes low, high at zero,
	 * 65535 ticks (55 ms) from now. */
	outb(0x42, 0xff);
	outb(0x42, 0xff);
	if (inb(0x61) & 0x20) {
		err = "absent";
		goto out;
	}
	tsc_bracket(pit_count, &c0, &t0);
	do {
		if (++iter > SPIN_ITER_MAX || rdtsc() - start > SPIN_TSC_MAX) {
			err = "timeout";
			goto out;
		}
		tsc_bracket(pit_count, &c1, &t1);
		/* OUT high: the count reached zero and wrapped (this vCPU
		 * was away for most of 55 ms): measured again. */
		if ((inb(0x61) & 0x20) || c1 > c0) {
			err = "again";
			goto out;
		}
	} while ((uint32_t)(c0 - c1) < want);
	*out = (t1 - t0) * PIT_HZ / ((uint64_t)(c0 - c1) * 1000);
out:
	outb(0x61, gate);
	return err;
}

/*
 * Three measures, their median. A measure to be taken again ("again": the
 * PIT wrapped) is, up to 10 tries in all ("unstable" after that); a
 * failure or an implausible value names why.
 */
static const char *measure3(const char *(*m)(uint64_t *), uint64_t *out)
{
	const int n = 3;
	uint64_t v[3];
	int got = 0;
	for (int tries = 0; got < n; tries++) {
		if (tries == 10)
			return "unstable";
		const char *err = m(&v[got]);
		if (err && err[0] == 'a' && err[1] == 'g')
			continue;
		if (err)
			return err;
		if (v[got] < TSC_MIN_PER_MS || v[got] > TSC_MAX_PER_MS)
			return "implausible";
		got++;
	}
	for (int i = 0; i < n - 1; i++)
		for (int j = 0; j < n - 1 - i; j++)
			if (v[j] > v[j + 1]) {
				uint64_t t = v[j];
				v[j] = v[j + 1];
				v[j + 1] = t;
			}
	*out = v[n / 2];
	return NULL;
}

int tsc_calibrate(void)
{
	uint64_t pit = 0, pm = 0;
	const char *pit_err = "not_used", *pm_err = "not_used";
	if (kconf.clock != CLOCK_PMTIMER)
		pit_err = measure3(pit_measure, &pit);
	if (kconf.clock != CLOCK_PIT)
		pm_err = pm_port ? measure3(pm_measure, &pm) : "absent";
	char pits[24], pms[24];
	if (pit_err)
		ksnprintf(pits, sizeof(pits), "%s", pit_err);
	else
		ksnprintf(pits, sizeof(pits), "%lu", pit);
	if (pm_err)
		ksnprintf(pms, sizeof(pms), "%s", pm_err);
	else
		ksnprintf(pms, sizeof(pms), "%lu", pm);
	if (pit_err && pm_err) {
		kprintf("LFK error clock no_calibration pit=%s pm_timer=%s "
			"pm_port=%#x\n",
			pits, pms, pm_port);
		return -1;
	}
	if (!pit_err && !pm_err) {
		uint64_t d = pit > pm ? pit - pm : pm - pit;
		if (d * 20 > pm) {
			kprintf("LFK error clock disagree pit=%lu "
				"pm_timer=%lu\n",
				pit, pm);
			return -1;
		}
	}
	tsc_per_ms = pm_err ? pit : pm;
	kprintf("LFK clock tsc_per_ms=%lu source=%s pit=%s pm_timer=%s "
		"pm_port=%#x pm_bits=%u\n",
		tsc_per_ms, pm_err ? "pit" : "pm_timer", pits, pms, pm_port,
		pm_32bit ? 32 : 24);
	return 0;
}

void delay_us(uint64_t us)
{
	uint64_t end = rdtsc() + us * tsc_per_ms / 1000;
	while (rdtsc() < end)
		lf_platform_pause();
}
