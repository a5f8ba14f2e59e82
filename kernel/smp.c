/*
 * smp.c: the local APIC (xAPIC, memory-mapped at LAPIC_VA), starting the
 * application processors, per-CPU data through the GS base, a barrier.
 *
 * AP start (Intel SDM vol. 3, "MP initialization"): the trampoline of
 * boot.S is copied to TRAMP_PHYS (below 1 MiB; the whole low 1 MiB stays
 * out of the buddy, so nothing the allocator hands out can overwrite it,
 * during bring-up or after). For each MADT CPU but the BSP, in turn: fill
 * the trampoline's CR3 / stack / entry words, send INIT, wait 10 ms, send
 * SIPI (vector TRAMP_PHYS >> 12), wait 200 us, send a second SIPI if the AP
 * has not checked in, then wait (up to kconf.ipi_ms, 10 s by default: TCG
 * with many vCPUs on 2 host cores is slow) for it to set its `up` word. One AP
 * at a time, so the trampoline's words are never shared.
 */
#include "kern.h"

_Static_assert(offsetof(struct cpu, self) == 0, "%gs:0 is self");
_Static_assert(offsetof(struct cpu, idx) == 8, "%gs:8 is the CPU index");

struct cpu cpus[MAX_CPUS];
unsigned ncpus = 1;

#define LAPIC_ID 0x20
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_TPR 0x80

static inline volatile uint32_t *lapic_reg(unsigned off)
{
	return (volatile uint32_t *)(uintptr_t)(LAPIC_VA + off);
}

uint32_t lapic_id(void)
{
	return *lapic_reg(LAPIC_ID) >> 24;
}

/*
 * The legacy 8259 PICs: remapped to vectors 0x20-0x2f (their default, 8-15,
 * would look like exceptions) and fully masked. The kernel takes no device
 * interrupt; only IPIs come in, through the local APIC.
 */
void pic_disable(void)
{
	static const uint8_t init[2][4] = { { 0x11, 0x20, 0x04, 0x01 },
					    { 0x11, 0x28, 0x02, 0x01 } };
	for (unsigned k = 0; k < 4; k++) {
		outb(0x20 + (k ? 1 : 0), init[0][k]);
		outb(0xa0 + (k ? 1 : 0), init[1][k]);
	}
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

void lapic_init(void)
{
	*lapic_reg(LAPIC_TPR) = 0;
	*lapic_reg(LAPIC_SVR) = 0x100 | VEC_SPURIOUS; /* software enable */
}

void lapic_eoi(void)
{
	*lapic_reg(LAPIC_EOI) = 0;
}

/* Delivery pending: bounded by kconf.ipi_ms, then an error naming dest. */
static void lapic_icr_wait(uint32_t dest, uint32_t lo)
{
	uint64_t t0 = rdtsc();
	while (*lapic_reg(LAPIC_ICR_LO) & (1u << 12)) {
		if (rdtsc() - t0 > kconf.ipi_ms * tsc_per_ms) {
			fatal_claim();
			kprintf("LFK error smp icr_stuck cpu=%u dest_apic=%u "
				"icr=%#x ms=%lu\n",
				this_cpu()->idx, dest, lo, kconf.ipi_ms);
			kprintf("LFK end status=fail reason=ipi_timeout\n");
			kexit_fail();
		}
		lf_platform_pause();
	}
}

static void lapic_icr(uint32_t dest, uint32_t lo)
{
	lapic_icr_wait(dest, lo);
	*lapic_reg(LAPIC_ICR_HI) = dest << 24;
	*lapic_reg(LAPIC_ICR_LO) = lo;
	lapic_icr_wait(dest, lo);
}

void lapic_ipi_others(uint8_t vector)
{
	/*
	 * Shorthand "all excluding self", fixed delivery. The ICR is this
	 * CPU's own; the TLB handler never writes it, so an interrupt between
	 * the two writes of lapic_icr() cannot tear it. Interrupts are off
	 * around it anyway.
	 */
	uint64_t flags;
	__asm__ __volatile__("pushfq; popq %0; cli" : "=r"(flags)::"memory");
	lapic_icr(0, (3u << 18) | vector);
	if (flags & 0x200)
		irq_enable();
}

/* Shorthand "self", delivery mode NMI (fault=nmi). */
void lapic_nmi_self(void)
{
	lapic_icr(0, (1u << 18) | 0x400);
}

void cpu_set_gs(struct cpu *c)
{
	c->self = c;
	wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)c);
}

void kbarrier_wait(struct kbarrier *b, unsigned n, uint32_t *local_sense)
{
	uint32_t s = *local_sense ^ 1;
	*local_sense = s;
	/* Relaxed: only read to name the missing CPUs after a timeout. */
	lf_store_u32(&b->at[this_cpu()->idx], s, LF_RELAXED);
	/* Acq_rel: this CPU's work before, the others' after. */
	if (lf_fetch_add_u32(&b->count, 1, LF_ACQ_REL) + 1 == n) {
		lf_store_u32(&b->count, 0, LF_RELAXED);
		/* Release: pairs with the acquire load below. */
		lf_store_u32(&b->sense, s, LF_RELEASE);
		return;
	}
	/* The others may still be in a test of kconf.ms, then in checks. */
	uint64_t t0 = rdtsc(),
		 limit = (kconf.ms + 6 * kconf.ipi_ms) * tsc_per_ms;
	while (lf_load_u32(&b->sense, LF_ACQUIRE) != s) {
		if (rdtsc() - t0 > limit) {
			fatal_claim();
			for (unsigned i = 0; i < n; i++)
				if (lf_load_u32(&b->at[i], LF_RELAXED) != s)
					kprintf("LFK error barrier cpu=%u "
						"did_not_arrive waiter=%u\n",
						i, this_cpu()->idx);
			kprintf("LFK end status=fail reason=barrier_timeout\n");
			kexit_fail();
		}
		lf_platform_pause();
	}
}

extern char tramp_start[], tramp_end[], tramp_cr3[], tramp_stack[],
	tramp_entry[];
extern char boot_pml4[];
extern char ap_entry64[];

/* boot.S starts the BSP on cpu_stacks[0].kstack: it assumes this layout. */
_Static_assert(offsetof(struct cpu_stack, kstack) == 4096 &&
		       KSTACK_SIZE == 16384,
	       "boot.S: cpu_stacks + 4096 + 16384 is the BSP's stack top");
KERN_LATE_BSS struct cpu_stack cpu_stacks[MAX_CPUS];

int stack_guard_of(uint64_t va, const char **which)
{
	uint64_t base = (uint64_t)(uintptr_t)cpu_stacks;
	if (va < base || va >= base + sizeof(struct cpu_stack) * MAX_CPUS)
		return -1;
	uint64_t off = (va - base) % sizeof(struct cpu_stack);
	static const struct {
		size_t off;
		const char *name;
	} g[] = {
		{ offsetof(struct cpu_stack, guard0), "kstack" },
		{ offsetof(struct cpu_stack, guard1), "ist_df" },
		{ offsetof(struct cpu_stack, guard2), "ist_nmi" },
		{ offsetof(struct cpu_stack, guard3), "ist_pf" },
	};
	for (unsigned i = 0; i < 4; i++) {
		if (off >= g[i].off && off < g[i].off + PAGE_SIZE) {
			*which = g[i].name;
			return (int)((va - base) / sizeof(struct cpu_stack));
		}
	}
	return -1;
}
lf_atomic_u32 ap_booting; /* (a) index of the AP being started */

static void tramp_set(const char *sym, uint64_t v)
{
	uint8_t *page = phys_to_virt(TRAMP_PHYS);
	memcpy(page + (sym - tramp_start), &v, 8);
}

static int smp_start_one(unsigned i)
{
	struct cpu *c = &cpus[i];
	/* boot_pml4 is linked at its physical address (.boot.data). */
	tramp_set(tramp_cr3, (uint64_t)(uintptr_t)boot_pml4);
	tramp_set(tramp_stack,
		  (uint64_t)(uintptr_t)(cpu_stacks[i].kstack + KSTACK_SIZE));
	tramp_set(tramp_entry, (uint64_t)(uintptr_t)ap_entry64);
	/* Release: the trampoline words and cpus[i]; pairs with kmain_ap(). */
	lf_store_u32(&ap_booting, i, LF_RELEASE);
	lapic_icr(c->apic_id, 0x4500); /* INIT, assert */
	delay_us(10000);
	for (int sipi = 0; sipi < 2; sipi++) {
		lapic_icr(c->apic_id, 0x4600 | (TRAMP_PHYS >> 12));
		delay_us(200);
		if (lf_load_u32(&c->up, LF_ACQUIRE))
			return 0;
	}
	uint64_t end = rdtsc() + kconf.ipi_ms * tsc_per_ms;
	while (rdtsc() < end)
		/* Acquire: pairs with the release in kmain_ap(). */
		if (lf_load_u32(&c->up, LF_ACQUIRE))
			return 0;
	return -1;
}

int smp_start_aps(void)
{
	size_t n = (size_t)(tramp_end - tramp_start);
	memcpy(phys_to_virt(TRAMP_PHYS), tramp_start, n);
	for (unsigned i = 1; i < ncpus; i++) {
		uint64_t t0 = rdtsc();
		if (smp_start_one(i) != 0) {
			kprintf("LFK error smp cpu=%u apic=%u did_not_start\n",
				i, cpus[i].apic_id);
			return -1;
		}
		kprintf("LFK cpu idx=%u apic=%u up=1 start_us=%lu\n", i,
			cpus[i].apic_id, (rdtsc() - t0) * 1000 / tsc_per_ms);
	}
	return 0;
}
