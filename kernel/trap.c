/*
 * trap.c: GDT and IDT, the exception report, the TLB shootdown IPI, the
 * platform shim's panic, and the exit through isa-debug-exit.
 *
 * An exception is always fatal here: the handler prints one machine-
 * readable line "LFK fault ..." (vector, name, error code, RIP, CR2, CPU;
 * what=stack_overflow when CR2 is a stack's guard page), a register dump,
 * "LFK end status=fail", and exits QEMU with EXIT_FAIL. #DF, NMI, #MC and
 * #PF run on interrupt stacks of their own (IST, from each CPU's TSS), so a
 * fault with a broken stack pointer, a stack overflow included, still gets
 * its report out instead of becoming a triple fault.
 *
 * TLB shootdown (kernel/README.md): an initiator that cleared PTEs bumps its
 * own request generation (release) and sends VEC_TLB to every other CPU. A
 * CPU taking VEC_TLB reads every initiator's generation (acquire), flushes
 * its whole TLB (CR3 reload; the kernel has no global pages), then stores
 * each generation it read as acknowledged (release). The initiator waits
 * until every other CPU has acknowledged its generation; its PTE clears
 * happened before the generation it published, so every CPU has flushed
 * after seeing them, and the frames may be reused. The initiator waits with
 * interrupts on, so two initiators serve each other's requests.
 */
#include "kern.h"

struct trapframe {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vec, err;
	uint64_t rip, cs, rflags, rsp, ss;
};

struct idt_gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
};
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate size");

struct __attribute__((packed)) dtr {
	uint16_t limit;
	uint64_t base;
};

/* The 64-bit TSS: only its interrupt stacks are used (no ring 3). */
struct __attribute__((packed)) tss {
	uint32_t rsvd0;
	uint64_t rsp[3];
	uint64_t rsvd1;
	uint64_t ist[7];
	uint64_t rsvd2;
	uint16_t rsvd3, iomap;
};
_Static_assert(sizeof(struct tss) == 104, "TSS size");
#define IST_DF 1
#define IST_NMI 2
#define IST_PF 3

/*
 * One GDT for all CPUs: null, code, data, then a TSS descriptor (16 bytes)
 * per CPU. Writable: ltr marks the descriptor busy.
 */
#define GDT_TSS 3
static uint64_t kgdt[GDT_TSS + 2 * MAX_CPUS] = {
	0, 0x00209a0000000000ull, /* 0x08: 64-bit code */
	0x0000920000000000ull,    /* 0x10: data */
};
static struct tss tss[MAX_CPUS];
static struct idt_gate idt[256];

extern const uint64_t trap_stubs[32];
extern const uint64_t trap_stub_tlb, trap_stub_spurious;

void trap_dispatch(struct trapframe *tf);

static void idt_set(unsigned vec, uint64_t fn, uint8_t ist)
{
	idt[vec] = (struct idt_gate){
		.off0 = (uint16_t)fn,
		.sel = 0x08,
		.ist = ist,
		.type = 0x8e, /* present, interrupt gate */
		.off1 = (uint16_t)(fn >> 16),
		.off2 = (uint32_t)(fn >> 32),
	};
}

void trap_init(void)
{
	for (unsigned v = 0; v < 32; v++)
		idt_set(v, trap_stubs[v],
			v == 8              ? IST_DF
			: v == 2 || v == 18 ? IST_NMI
			: v == 14           ? IST_PF
					    : 0);
	idt_set(VEC_TLB, trap_stub_tlb, 0);
	idt_set(VEC_SPURIOUS, trap_stub_spurious, 0);
}

void idt_drop(unsigned vec)
{
	idt[vec].type &= 0x7f;
}

/* This CPU's TSS (its interrupt stacks) and its descriptor, loaded. */
static void tss_load(unsigned idx)
{
	struct cpu_stack *st = &cpu_stacks[idx];
	struct tss *t = &tss[idx];
	memset(t, 0, sizeof(*t));
	t->ist[IST_DF - 1] = (uint64_t)(uintptr_t)(st->ist_df + ISTACK_SIZE);
	t->ist[IST_NMI - 1] = (uint64_t)(uintptr_t)(st->ist_nmi + ISTACK_SIZE);
	t->ist[IST_PF - 1] = (uint64_t)(uintptr_t)(st->ist_pf + ISTACK_SIZE);
	t->iomap = sizeof(*t); /* no I/O bitmap */
	uint64_t base = (uint64_t)(uintptr_t)t, limit = sizeof(*t) - 1;
	unsigned d = GDT_TSS + 2 * idx;
	kgdt[d] = (limit & 0xffff) | (base & 0xffffff) << 16 |
		  0x89ull << 40 /* present, 64-bit TSS (available) */ |
		  ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	kgdt[d + 1] = base >> 32;
	__asm__ __volatile__("ltr %w0" ::"r"((uint16_t)(d * 8)) : "memory");
}

void cpu_tables_load(void)
{
	struct dtr g = { sizeof(kgdt) - 1, (uint64_t)(uintptr_t)kgdt };
	struct dtr i = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	__asm__ __volatile__("lgdt %0\n\t"
			     "movw $0x10, %%ax\n\t"
			     "movw %%ax, %%ds\n\t"
			     "movw %%ax, %%es\n\t"
			     "movw %%ax, %%ss\n\t"
			     "pushq $0x08\n\t"
			     "leaq 1f(%%rip), %%rax\n\t"
			     "pushq %%rax\n\t"
			     "lretq\n"
			     "1:\n\t"
			     "lidt %1"
			     :
			     : "m"(g), "m"(i)
			     : "rax", "memory");
	tss_load(this_cpu()->idx);
}

_Noreturn void kexit_fail(void)
{
	irq_disable();
	outb(DEBUG_EXIT_PORT, EXIT_FAIL);
	for (;;)
		__asm__ __volatile__("hlt");
}

_Noreturn void kexit_pass(void)
{
	irq_disable();
	outb(DEBUG_EXIT_PORT, EXIT_PASS);
	for (;;)
		__asm__ __volatile__("hlt");
}

static lf_atomic_u32 fatal_claimed; /* (a) */

bool fatal_claim(void)
{
	uint32_t exp = 0;
	/* Relaxed: only who reports is decided; exit is what follows. */
	if (lf_cas_u32(&fatal_claimed, &exp, 1, LF_RELAXED)) {
		console_panic_mode();
		return true;
	}
	for (;;)
		__asm__ __volatile__("cli; hlt");
}

static const char *const trap_names[32] = {
	"#DE", "#DB",     "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
	"#DF", "#MF-old", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
	"#MF", "#AC",     "#MC", "#XM", "#VE", "#CP", "#22", "#23",
	"#24", "#25",     "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

static _Noreturn void trap_fatal(struct trapframe *tf)
{
	console_panic_mode();
	struct cpu *c = this_cpu();
	uint64_t cr2 = read_cr2();
	const char *guard = NULL;
	char what[64] = "";
	int owner = tf->vec == 14 || tf->vec == 8 ? stack_guard_of(cr2, &guard)
						  : -1;
	if (owner >= 0)
		ksnprintf(what, sizeof(what),
			  " what=stack_overflow stack=%s stack_cpu=%d", guard,
			  owner);
	kprintf("LFK fault vector=%lu name=%s error=%#lx rip=%#lx cr2=%#lx%s "
		"cpu=%u\n",
		tf->vec, tf->vec < 32 ? trap_names[tf->vec] : "?", tf->err,
		tf->rip, cr2, what, c ? c->idx : 0);
	kprintf("  rax=%016lx rbx=%016lx rcx=%016lx rdx=%016lx\n", tf->rax,
		tf->rbx, tf->rcx, tf->rdx);
	kprintf("  rsi=%016lx rdi=%016lx rbp=%016lx rsp=%016lx\n", tf->rsi,
		tf->rdi, tf->rbp, tf->rsp);
	kprintf("  r8=%016lx  r9=%016lx  r10=%016lx r11=%016lx\n", tf->r8,
		tf->r9, tf->r10, tf->r11);
	kprintf("  r12=%016lx r13=%016lx r14=%016lx r15=%016lx\n", tf->r12,
		tf->r13, tf->r14, tf->r15);
	kprintf("  cs=%lx ss=%lx rflags=%016lx cr3=%016lx\n", tf->cs, tf->ss,
		tf->rflags, read_cr3());
	kprintf("LFK end status=fail reason=fault\n");
	kexit_fail();
}

/* ---- TLB shootdown ---- */

struct tlb_slot {
	lf_atomic_u64 gen;             /* (a) requests this CPU has made */
	lf_atomic_u64 acked[MAX_CPUS]; /* (a) [i]: gen of CPU i flushed for */
} LF_CACHE_ALIGNED;

static struct tlb_slot tlb[MAX_CPUS];

void tlb_ack_init(void)
{
	for (unsigned i = 0; i < MAX_CPUS; i++) {
		lf_init_u64(&tlb[i].gen, 0);
		for (unsigned j = 0; j < MAX_CPUS; j++)
			lf_init_u64(&tlb[i].acked[j], 0);
	}
}

static void tlb_handle(struct cpu *c)
{
	uint64_t seen[MAX_CPUS];
	for (unsigned i = 0; i < ncpus; i++)
		/* Acquire: pairs with the release in tlb_shootdown(). */
		seen[i] = lf_load_u64(&tlb[i].gen, LF_ACQUIRE);
	write_cr3(read_cr3());
	for (unsigned i = 0; i < ncpus; i++)
		/* Release: the flush before it; pairs with the waiter. */
		lf_store_u64(&tlb[c->idx].acked[i], seen[i], LF_RELEASE);
}

/*
 * Ask every other CPU to flush (the IPI), without waiting: the request's
 * generation, for tlb_shootdown_wait(). 0 with one CPU.
 */
uint64_t tlb_shootdown_begin(void)
{
	struct cpu *c = this_cpu();
	if (ncpus < 2)
		return 0;
	/* Release: the PTE clears before it; pairs with tlb_handle(). */
	uint64_t g = lf_fetch_add_u64(&tlb[c->idx].gen, 1, LF_RELEASE) + 1;
	lapic_ipi_others(VEC_TLB);
	return g;
}

/* Every other CPU flushed after this CPU's request g was made? */
bool tlb_shootdown_done(uint64_t g)
{
	struct cpu *c = this_cpu();
	for (unsigned j = 0; j < ncpus && g > 0; j++)
		/* Acquire: pairs with the release in tlb_handle(). */
		if (j != c->idx &&
		    lf_load_u64(&tlb[j].acked[c->idx], LF_ACQUIRE) < g)
			return false;
	return true;
}

void tlb_shootdown(void)
{
	tlb_shootdown_wait(tlb_shootdown_begin());
}

/* Wait until every other CPU flushed for this CPU's request g. */
void tlb_shootdown_wait(uint64_t g)
{
	struct cpu *c = this_cpu();
	if (g == 0)
		return;
	uint64_t t0 = rdtsc(), limit = kconf.ipi_ms * tsc_per_ms;
	for (unsigned j = 0; j < ncpus; j++) {
		if (j == c->idx)
			continue;
		/* Acquire: pairs with the release in tlb_handle(). */
		while (lf_load_u64(&tlb[j].acked[c->idx], LF_ACQUIRE) < g) {
			if (rdtsc() - t0 > limit) {
				fatal_claim();
				kprintf("LFK error tlb cpu=%u did_not_ack "
					"initiator=%u gen=%lu ms=%lu\n",
					j, c->idx, g, kconf.ipi_ms);
				kprintf("LFK end status=fail "
					"reason=ipi_timeout\n");
				kexit_fail();
			}
			lf_platform_pause();
		}
	}
}

void trap_dispatch(struct trapframe *tf)
{
	if (tf->vec == VEC_TLB) {
		tlb_handle(this_cpu());
		lapic_eoi();
		return;
	}
	if (tf->vec == VEC_SPURIOUS)
		return;
	trap_fatal(tf);
}

/* ---- the platform shim (lockfree/lf_platform.h) ---- */

unsigned lf_platform_cpu_id(void)
{
	unsigned id;
	__asm__ __volatile__("movl %%gs:8, %0" : "=r"(id));
	return id;
}

_Noreturn void lf_platform_panic(const char *file, int line, const char *what)
{
	console_panic_mode();
	kprintf("LFK panic file=%s line=%d what=\"%s\" cpu=%u\n", file, line,
		what, lf_platform_cpu_id());
	kprintf("LFK end status=fail reason=panic\n");
	kexit_fail();
}

/*
 * The heavy barrier (lf_platform.h): an IPI to every other CPU that is up,
 * waiting until each has answered. It rides on the TLB shootdown's vector
 * and generations: tlb_handle() runs as an interrupt (which serializes the
 * CPU: every store it made before is visible, every load after it is
 * satisfied later), reloads CR3 (serializing too) and acknowledges with a
 * release store; the initiator's acquire load of that acknowledgement ends
 * the wait. So every CPU that is up has executed a full barrier since the
 * call began. A CPU that is not up yet is not waited for: CPUs come up one
 * at a time while the BSP waits in smp_start_aps() and those already up
 * wait at the first run barrier, so no heavy barrier runs while a CPU
 * joins (registers its epoch record and vas context). The price of the
 * shared vector is a TLB flush on each CPU per heavy barrier, cheap next to
 * the IPI round trip under TCG. A CPU that never answers (interrupts off)
 * is named after ipims, like a shootdown, and the run fails. (Every platform
 * defines these shim functions: platform/user.c, bench/coherence/.)
 */
bool lf_platform_heavy_barrier_init(void)
{
	return true;
}

/* Not for the buddy's drains: see lf_platform.h. */
bool lf_platform_heavy_barrier_cheap(void)
{
	return false;
}

void lf_platform_heavy_barrier(void)
{
	struct cpu *c = this_cpu();
	bool wait[MAX_CPUS];
	unsigned n = 0;
	/* Seq_cst: our stores before the call, then the snapshot of up. */
	uint64_t g = lf_fetch_add_u64(&tlb[c->idx].gen, 1, LF_SEQ_CST) + 1;
	for (unsigned j = 0; j < ncpus; j++) {
		/* Seq_cst: after the generation is published. */
		wait[j] = j != c->idx && lf_load_u32(&cpus[j].up, LF_SEQ_CST);
		n += wait[j];
	}
	if (n == 0)
		return;
	lapic_ipi_others(VEC_TLB);
	uint64_t t0 = rdtsc(), limit = kconf.ipi_ms * tsc_per_ms;
	for (unsigned j = 0; j < ncpus; j++) {
		/* Acquire: pairs with the release in tlb_handle(). */
		while (wait[j] &&
		       lf_load_u64(&tlb[j].acked[c->idx], LF_ACQUIRE) < g) {
			if (rdtsc() - t0 > limit) {
				fatal_claim();
				kprintf("LFK error tlb cpu=%u did_not_ack "
					"initiator=%u gen=%lu ms=%lu "
					"what=heavy_barrier\n",
					j, c->idx, g, kconf.ipi_ms);
				kprintf("LFK end status=fail "
					"reason=ipi_timeout\n");
				kexit_fail();
			}
			lf_platform_pause();
		}
	}
}

/* One thread per CPU and no scheduler: nothing to yield to but a pause. */
void lf_platform_yield(void)
{
	lf_platform_pause();
}

/* RFLAGS.IF (bit 9) saved, then cleared; set again only if it was set. */
lf_irqflags lf_platform_irq_save(void)
{
	uint64_t flags;
	__asm__ __volatile__("pushfq; popq %0; cli" : "=r"(flags)::"memory");
	return (lf_irqflags)flags;
}

void lf_platform_irq_restore(lf_irqflags flags)
{
	if (flags & 0x200)
		irq_enable();
}
