/*
 * time.c: the TSC, calibrated once against the PIT (channel 2, the gate
 * through port 0x61, no interrupt), for delays and test durations. Under
 * TCG the TSC follows the host clock and so does the PIT: the figure is
 * real time, not guest instructions.
 */
#include "kern.h"

uint64_t tsc_per_ms;

#define PIT_HZ 1193182u
#define CAL_MS 20u

void tsc_calibrate(void)
{
	uint16_t count = (uint16_t)(PIT_HZ * CAL_MS / 1000);
	uint8_t gate = inb(0x61);
	outb(0x61, (uint8_t)((gate & ~0x02) | 0x01)); /* gate on, no speaker */
	outb(0x43, 0xb0); /* channel 2, lobyte/hibyte, mode 0 */
	outb(0x42, (uint8_t)count);
	outb(0x42, (uint8_t)(count >> 8));
	/* Writing the count restarts mode 0: OUT goes low, high at zero. */
	uint64_t t0 = rdtsc();
	while (!(inb(0x61) & 0x20))
		;
	uint64_t t1 = rdtsc();
	outb(0x61, gate);
	tsc_per_ms = (t1 - t0) / CAL_MS;
	if (tsc_per_ms == 0)
		tsc_per_ms = 1;
}

void delay_us(uint64_t us)
{
	uint64_t end = rdtsc() + us * tsc_per_ms / 1000;
	while (rdtsc() < end)
		lf_platform_pause();
}
