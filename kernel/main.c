/*
 * main.c: bring-up and the order of things.
 *
 * BSP: GS base, console, GDT/TSS/IDT, the PVH start info (command line,
 * memory map, boot modules) copied out and checked (the image in RAM),
 * command line parsed, ACPI parsed and checked, TSC calibrated (time.c),
 * buddy and page tables (mem.c), epoch domain and vaspace, local APIC,
 * every AP started (smp.c). Then all CPUs meet in cpu_run(): for each test
 * chosen, a barrier, the test on every CPU at once for its duration, a
 * barrier, and the BSP checks and reports while the others wait. At the
 * end the BSP checks that every frame is accounted for and every boot
 * module intact, and exits QEMU.
 *
 * Serial report lines start with "LFK " and are key=value words; the
 * format is in kernel/README.md.
 */
#include "kern.h"

struct lf_epoch_domain kepoch;
static struct lf_epoch_record erecs[MAX_CPUS];

/* struct hvm_start_info (Xen's arch-x86/hvm/start_info.h), version 1. */
struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries, reserved;
};
struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};
struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
#define HVM_START_MAGIC 0x336ec578u
#define MAX_MODULES 8
#define E820_RAM 1

static char cmdline[1024];
static size_t cmdline_len; /* the whole line's, also past the buffer */
static uint64_t rsdp_hint;

/* Whether [b, e) lies in RAM entries of the memory map (they may abut);
 * *gap gets the first address that does not. */
static bool range_in_ram(uint64_t b, uint64_t e, uint64_t *gap)
{
	bool progress = true;
	while (b < e && progress) {
		progress = false;
		for (unsigned i = 0; i < bootmem.nram; i++) {
			if (bootmem.ram[i].base <= b &&
			    b < bootmem.ram[i].end) {
				b = bootmem.ram[i].end;
				progress = true;
			}
		}
	}
	*gap = b;
	return b >= e;
}

/* Boot modules (-initrd): kept out of the buddy, checked intact at the end. */
static struct phys_range modules[MAX_MODULES];
static uint64_t module_sum[MAX_MODULES];
static unsigned nmodules;

static uint64_t module_hash(const struct phys_range *m)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	const uint8_t *p = phys_to_virt(m->base);
	for (uint64_t i = 0; i < m->end - m->base; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static void boot_modules(const struct hvm_start_info *si)
{
	if (si->nr_modules == 0)
		return;
	const struct hvm_modlist_entry *ml = phys_to_virt(si->modlist_paddr);
	if (si->nr_modules > MAX_MODULES || si->modlist_paddr == 0 ||
	    si->modlist_paddr >= BOOT_DIRECT_LIMIT) {
		kprintf("LFK error boot modules=%u modlist=%#lx max=%u\n",
			si->nr_modules, si->modlist_paddr, MAX_MODULES);
		kprintf("LFK end status=fail reason=boot\n");
		kexit_fail();
	}
	mem_exclude(si->modlist_paddr,
		    si->modlist_paddr + si->nr_modules * sizeof(*ml));
	for (uint32_t i = 0; i < si->nr_modules; i++) {
		struct phys_range m = { ml[i].paddr, ml[i].paddr + ml[i].size };
		uint64_t gap;
		/* Read at the end through the direct map: RAM only. */
		if (m.end < m.base || m.end > BOOT_DIRECT_LIMIT ||
		    !range_in_ram(m.base, m.end, &gap)) {
			kprintf("LFK error boot module=%u base=%#lx size=%#lx "
				"not_in_ram_below_4g\n",
				i, ml[i].paddr, ml[i].size);
			kprintf("LFK end status=fail reason=boot\n");
			kexit_fail();
		}
		mem_exclude(m.base, m.end);
		if (ml[i].cmdline_paddr) {
			const char *c = phys_to_virt(ml[i].cmdline_paddr);
			size_t n = 0;
			while (ml[i].cmdline_paddr + n < BOOT_DIRECT_LIMIT &&
			       c[n])
				n++;
			mem_exclude(ml[i].cmdline_paddr,
				    ml[i].cmdline_paddr + n + 1);
		}
		modules[nmodules] = m;
		module_sum[nmodules] = module_hash(&m);
		kprintf("LFK module idx=%u base=%#lx end=%#lx fnv=%#lx\n", i,
			m.base, m.end, module_sum[nmodules]);
		nmodules++;
	}
}

/*
 * At the end, after every test: each module's frames are none of the
 * buddy's (the allocator does not know them) and its bytes are what the
 * loader put there.
 */
static int modules_check(void)
{
	int bad = 0;
	for (unsigned i = 0; i < nmodules; i++) {
		unsigned kind, order, in_buddy = 0;
		uint64_t b = modules[i].base & ~(PAGE_SIZE - 1);
		for (uint64_t pa = b; pa < modules[i].end; pa += PAGE_SIZE)
			if (buddy_zone_frame(zone, pa, &kind, &order) ==
			    BUDDY_OK)
				in_buddy++;
		uint64_t h = module_hash(&modules[i]);
		bool ok = in_buddy == 0 && h == module_sum[i];
		kprintf("LFK check name=module status=%s idx=%u frames_in_buddy"
			"=%u fnv=%#lx boot_fnv=%#lx\n",
			ok ? "pass" : "fail", i, in_buddy, h, module_sum[i]);
		bad += !ok;
	}
	return bad;
}

/* The image the loader placed must lie in RAM. */
static void image_check(void)
{
	extern char __kernel_phys_start[], __kernel_phys_end[];
	uint64_t b = (uint64_t)(uintptr_t)__kernel_phys_start;
	uint64_t e = (uint64_t)(uintptr_t)__kernel_phys_end, gap;
	if (!range_in_ram(b, e, &gap)) {
		kprintf("LFK error boot image_not_in_ram image=%#lx-%#lx "
			"first_not_ram=%#lx\n",
			b, e, gap);
		kprintf("LFK end status=fail reason=boot\n");
		kexit_fail();
	}
}

static void boot_info(uint64_t pa)
{
	if (pa == 0 || pa >= BOOT_DIRECT_LIMIT) {
		kprintf("LFK error boot no_start_info\n");
		kexit_fail();
	}
	struct hvm_start_info si;
	memcpy(&si, phys_to_virt(pa), sizeof(si));
	if (si.magic != HVM_START_MAGIC || si.version < 1 ||
	    si.memmap_paddr == 0 || si.memmap_entries == 0) {
		kprintf("LFK error boot bad_start_info magic=%#x version=%u\n",
			si.magic, si.version);
		kexit_fail();
	}
	mem_exclude(pa, pa + sizeof(si));
	if (si.cmdline_paddr) {
		const char *s = phys_to_virt(si.cmdline_paddr);
		size_t n = 0;
		/* Measured to its end (within the early direct map), so a
		 * line too long for the buffer is refused with its length. */
		while (si.cmdline_paddr + n < BOOT_DIRECT_LIMIT && s[n])
			n++;
		cmdline_len = n;
		memcpy(cmdline, s,
		       n < sizeof(cmdline) ? n : sizeof(cmdline) - 1);
		mem_exclude(si.cmdline_paddr, si.cmdline_paddr + n + 1);
	}
	rsdp_hint = si.rsdp_paddr;
	const struct hvm_memmap_entry *m = phys_to_virt(si.memmap_paddr);
	mem_exclude(si.memmap_paddr,
		    si.memmap_paddr + si.memmap_entries * sizeof(*m));
	for (uint32_t i = 0; i < si.memmap_entries; i++) {
		kprintf("LFK memmap base=%#lx end=%#lx type=%u\n", m[i].addr,
			m[i].addr + m[i].size, m[i].type);
		if (m[i].type != E820_RAM ||
		    bootmem.nram == BUDDY_MAX_REGIONS * 2)
			continue;
		bootmem.ram[bootmem.nram++] =
			(struct phys_range){ m[i].addr, m[i].addr + m[i].size };
	}
	boot_modules(&si);
	image_check();
}

static void bsp_cpus(void)
{
	uint32_t me = lapic_id();
	ncpus = acpi.ncpus;
	/* The BSP is CPU 0; the others keep their MADT order. */
	unsigned k = 1;
	bool seen = false;
	for (unsigned i = 0; i < acpi.ncpus; i++) {
		if (acpi.apic_ids[i] == me && !seen) {
			seen = true;
			continue;
		}
		cpus[k++].apic_id = acpi.apic_ids[i];
	}
	if (!seen) {
		kprintf("LFK error smp bsp_apic=%u not_in_madt\n", me);
		kexit_fail();
	}
	cpus[0].apic_id = me;
	for (unsigned i = 0; i < ncpus; i++) {
		cpus[i].idx = i;
		cpus[i].self = &cpus[i];
		cpus[i].erec = &erecs[i];
		cpus[i].rng = kconf.seed * 0x9e3779b97f4a7c15ull + i + 1;
	}
}

void cpu_join(struct cpu *c)
{
	if (lf_epoch_register(&kepoch, c->erec) != LF_EPOCH_OK ||
	    vas_ctx_register(&kvas, &c->vctx) != VAS_OK) {
		kprintf("LFK error cpu=%u cannot_register\n", c->idx);
		kexit_fail();
	}
	irq_enable();
}

_Noreturn void kmain_bsp(uint64_t start_info_phys)
{
	cpu_set_gs(&cpus[0]);
	console_init();
	pic_disable();
	trap_init();
	cpu_tables_load();
	kprintf("\nLFK boot kernel=lfalloc protocol=pvh\n");
	boot_info(start_info_phys);
	if (cmdline_len >= sizeof(cmdline)) {
		kprintf("LFK error cmdline too_long length=%zu max=%zu\n",
			cmdline_len, sizeof(cmdline) - 1);
		kprintf("LFK end status=fail reason=cmdline\n");
		kexit_fail();
	}
	kprintf("LFK cmdline \"%s\"\n", cmdline);
	if (cmdline_parse(cmdline) != 0) {
		kprintf("LFK end status=fail reason=cmdline\n");
		kexit_fail();
	}
	if (acpi_init(rsdp_hint) != 0) {
		kprintf("LFK end status=fail reason=acpi\n");
		kexit_fail();
	}
	if (kconf.selftest_acpi && acpi_selftest() != 0) {
		kprintf("LFK end status=fail reason=check\n");
		kexit_fail();
	}
	if (tsc_calibrate() != 0) {
		kprintf("LFK end status=fail reason=clock\n");
		kexit_fail();
	}
	ncpus = acpi.ncpus;
	mem_init();
	lapic_init();
	bsp_cpus();
	kprintf("LFK acpi cpus=%u madt_cpus=%u online_capable=%u disabled=%u "
		"lapic=%#lx bsp_apic=%u tsc_per_ms=%lu\n",
		ncpus, acpi.found, acpi.online_capable, acpi.disabled,
		acpi.lapic_phys, cpus[0].apic_id, tsc_per_ms);
	enum { KEPOCH_POLL = 16, KEPOCH_ADVANCE_POLLS = 32 };
	lf_epoch_domain_init(&kepoch, KEPOCH_POLL);
	/* The torture retires frames: 32 polls' worth keeps a CPU's pending
	 * frames below 544 (E7, docs/design.md 1.4), not the default's 2,080.
	 */
	lf_epoch_domain_set_advance_at(&kepoch,
				       KEPOCH_ADVANCE_POLLS * KEPOCH_POLL);
	mem_kmem_init();
	mem_vas_init();
	tlb_ack_init();
	torture_init();
	cpu_join(&cpus[0]);
	lf_store_u32(&cpus[0].up, 1, LF_RELAXED);
	if (smp_start_aps() != 0) {
		kprintf("LFK end status=fail reason=smp\n");
		kexit_fail();
	}
	if (kconf.fault != FAULT_NONE && kconf.fault_cpu >= ncpus) {
		kprintf("LFK error cmdline faultcpu=%u cpus=%u\n",
			kconf.fault_cpu, ncpus);
		kprintf("LFK end status=fail reason=cmdline\n");
		kexit_fail();
	}
	kprintf("LFK smp cpus=%u up=%u\n", ncpus, ncpus);
	cpu_run(&cpus[0]);
}

extern lf_atomic_u32 ap_booting;

_Noreturn void kmain_ap(void)
{
	/* Acquire: pairs with the release in smp_start_one(). */
	struct cpu *c = &cpus[lf_load_u32(&ap_booting, LF_ACQUIRE)];
	cpu_set_gs(c);
	cpu_tables_load();
	mem_nx_enable();
	write_cr3(kernel_cr3);
	lapic_init();
	if (lapic_id() != c->apic_id) {
		kprintf("LFK error smp cpu=%u apic=%u expected=%u\n", c->idx,
			lapic_id(), c->apic_id);
		kexit_fail();
	}
	cpu_join(c);
	/* Release: this CPU is set up; pairs with smp_start_one(). */
	lf_store_u32(&c->up, 1, LF_RELEASE);
	cpu_run(c);
}

/* ---- the test loop, on every CPU ---- */

static struct kbarrier run_bar;
static lf_atomic_u32 run_test; /* (a) the TEST_* bit to run, 0: done */
static const unsigned test_order[] = { TEST_BUDDY, TEST_VAS, TEST_EPOCH,
				       TEST_KMEM };

static unsigned next_test(unsigned after)
{
	bool past = after == 0;
	for (unsigned i = 0; i < sizeof(test_order) / sizeof(test_order[0]);
	     i++) {
		if (past && (kconf.tests & test_order[i]))
			return test_order[i];
		if (test_order[i] == after)
			past = true;
	}
	return 0;
}

static _Noreturn void bsp_finish(int failed, const char *reason)
{
	if (torture_final_check() != 0 || modules_check() != 0) {
		failed++;
		if (!reason)
			reason = "check";
	}
	if (failed) {
		kprintf("LFK end status=fail failed=%d reason=%s\n", failed,
			reason);
		kexit_fail();
	}
	kprintf("LFK end status=pass failed=0\n");
	kexit_pass();
}

_Noreturn void cpu_run(struct cpu *c)
{
	uint32_t sense = 0;
	int failed = 0;
	const char *first = NULL; /* the first failure's reason */
	if (c->idx == 0)
		lf_store_u32(&run_test, next_test(0), LF_RELAXED);
	if (kconf.fault == FAULT_HANG && c->idx == kconf.fault_cpu) {
		/* This CPU stops before the first barrier: the others' wait
		 * there must time out and name it. */
		kprintf("LFK fault_trigger kind=hang cpu=%u\n", c->idx);
		for (;;)
			__asm__ __volatile__("cli; hlt");
	}
	if (kconf.fault == FAULT_NOIRQ && c->idx == kconf.fault_cpu) {
		/* This CPU runs the tests but never takes the TLB IPI: the
		 * others' shootdowns must time out and name it. */
		kprintf("LFK fault_trigger kind=noirq cpu=%u\n", c->idx);
		irq_disable();
	} else if (kconf.fault != FAULT_NONE && c->idx == kconf.fault_cpu) {
		kbarrier_wait(&run_bar, ncpus, &sense);
		fault_trigger(kconf.fault);
	}
	for (;;) {
		kbarrier_wait(&run_bar, ncpus, &sense);
		unsigned t = lf_load_u32(&run_test, LF_RELAXED);
		if (t == 0)
			break;
		torture_run_cpu(c, t);
		kbarrier_wait(&run_bar, ncpus, &sense);
		if (c->idx == 0) {
			const char *why = torture_report(t);
			if (why) {
				failed++;
				first = first ? first : why;
			}
			lf_store_u32(&run_test, next_test(t), LF_RELAXED);
		}
	}
	if (c->idx == 0)
		bsp_finish(failed, first);
	for (;;)
		__asm__ __volatile__("sti; hlt");
}
