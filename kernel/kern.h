/*
 * kern.h: what the files of the lfalloc kernel share.
 *
 * The kernel is a test bed, not an operating system: it boots (PVH, see
 * boot.S), brings every CPU of the ACPI MADT up, hands all RAM to the
 * lock-free buddy (buddy/), builds its page tables from buddy frames, runs a
 * vmalloc-like kernel virtual region on the vaspace B+-tree (vaspace/), and
 * then runs the torture tests of torture.c on every CPU at once. The layout
 * and the boot protocol are described in kernel/README.md.
 *
 * Concurrency tags on fields: (a) atomic, (c) CPU-local,
 * (i) set before the other CPUs start, read-only after.
 */
#ifndef KERN_H
#define KERN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buddy.h"
#include "kmem.h"
#include "lf_atomic.h"
#include "lf_epoch.h"
#include "lf_platform.h"
#include "vas.h"

/* ---- layout (kernel/README.md, "Boot protocol: PVH": the address space) ----
 */
#define KERNEL_VMA 0xffffffff80000000ull   /* + physical: the image */
#define DIRECT_BASE 0xffff800000000000ull  /* + physical: RAM only */
#define VMALLOC_BASE 0xffffc00000000000ull /* the vaspace region */
#define VMALLOC_SIZE (1ull << 30)
#define MMIO_BASE 0xffffff0000000000ull /* uncached device pages */
#define LAPIC_VA MMIO_BASE
#define TRAMP_PHYS 0x8000u /* the AP trampoline page */
#define PAGE_SIZE 4096ull
#define BOOT_DIRECT_LIMIT (4ull << 30) /* the boot tables map 0-4 GiB */

/*
 * The most CPUs the kernel runs on. The local APIC is used in xAPIC mode
 * (8-bit destinations; 0xff is the broadcast), so an APIC id above 254 is
 * refused (acpi.c) and so is a MADT with more enabled CPUs than this.
 */
#define MAX_CPUS 255

/*
 * Every CPU's stacks (smp.c): its kernel stack and three interrupt stacks
 * (IST, the TSS of trap.c), each above an unmapped guard page (mem.c), so
 * that running off a stack faults instead of overwriting its neighbour.
 * #PF has its own stack: a fault on the guard page under the kernel stack
 * cannot push its frame there, and is reported, not a triple fault.
 */
/*
 * The large arrays (stacks, torture state) go to the end of the image
 * (kernel.ld), so that an image the loader put partly outside RAM still
 * runs far enough to say so (main.c, image_check()).
 */
#define KERN_LATE_BSS __attribute__((section(".bss.late")))
#define KSTACK_SIZE 16384
#define ISTACK_SIZE 8192
struct cpu_stack {
	uint8_t guard0[PAGE_SIZE];
	uint8_t kstack[KSTACK_SIZE];
	uint8_t guard1[PAGE_SIZE];
	uint8_t ist_df[ISTACK_SIZE]; /* IST1: #DF */
	uint8_t guard2[PAGE_SIZE];
	uint8_t ist_nmi[ISTACK_SIZE]; /* IST2: NMI, #MC */
	uint8_t guard3[PAGE_SIZE];
	uint8_t ist_pf[ISTACK_SIZE]; /* IST3: #PF */
} __attribute__((aligned(4096)));
extern struct cpu_stack cpu_stacks[];
/* The CPU whose guard page holds va, and which guard; -1 when none. */
int stack_guard_of(uint64_t va, const char **which);

static inline void *phys_to_virt(uint64_t pa)
{
	return (void *)(uintptr_t)(pa + DIRECT_BASE);
}
static inline uint64_t virt_to_phys(const void *va)
{
	return (uint64_t)(uintptr_t)va - DIRECT_BASE;
}
static inline uint64_t kimage_to_phys(const void *va)
{
	return (uint64_t)(uintptr_t)va - KERNEL_VMA;
}

/* ---- exit status through isa-debug-exit (port 0xf4) ---- */
/*
 * QEMU exits with (value << 1) | 1. Only kexit_pass() writes EXIT_PASS, and
 * only main.c calls it, after every check; every fault, panic and failed
 * check goes through kexit_fail(). A triple fault (-no-reboot) exits 0.
 */
#define DEBUG_EXIT_PORT 0xf4
#define EXIT_PASS 0x10 /* QEMU status 33 */
#define EXIT_FAIL 0x01 /* QEMU status 3 */
_Noreturn void kexit_fail(void);
_Noreturn void kexit_pass(void);
/*
 * A timeout found by several CPUs at once is reported by one: the first to
 * call this gets true (and the console in panic mode); the others never
 * return from it (they halt while the first reports and exits).
 */
bool fatal_claim(void);

/* ---- per-CPU data, reached through the GS base ---- */
struct torture_cpu; /* torture.c */

struct cpu {
	struct cpu *self;             /* (i) %gs:0 */
	unsigned idx;                 /* (i) %gs:8: 0 is the BSP */
	unsigned apic_id;             /* (i) */
	lf_atomic_u32 up;             /* (a) 1 once the CPU runs the kernel */
	struct buddy_cpu *bc;         /* (i) the CPU's buddy context */
	struct vas_ctx vctx;          /* (c) the CPU's vaspace context */
	struct lf_epoch_record *erec; /* (i) the CPU's epoch participant */
	struct torture_cpu *t;        /* (c) torture state */
	uint64_t rng;                 /* (c) */
} LF_CACHE_ALIGNED;

extern struct cpu cpus[MAX_CPUS];
extern unsigned ncpus; /* (i) CPUs found in the MADT, capped at MAX_CPUS */

static inline struct cpu *this_cpu(void)
{
	struct cpu *c;
	__asm__ __volatile__("mov %%gs:0, %0" : "=r"(c));
	return c;
}

/* ---- x86 ---- */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ __volatile__("outb %0, %1" ::"a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ __volatile__("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ __volatile__("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ __volatile__("wrmsr" ::"c"(msr), "a"((uint32_t)v),
			     "d"((uint32_t)(v >> 32)));
}
static inline uint64_t read_cr2(void)
{
	uint64_t v;
	__asm__ __volatile__("mov %%cr2, %0" : "=r"(v));
	return v;
}
static inline uint64_t read_cr3(void)
{
	uint64_t v;
	__asm__ __volatile__("mov %%cr3, %0" : "=r"(v));
	return v;
}
static inline void write_cr3(uint64_t v)
{
	__asm__ __volatile__("mov %0, %%cr3" ::"r"(v) : "memory");
}
static inline void invlpg(uint64_t va)
{
	__asm__ __volatile__("invlpg (%0)" ::"r"(va) : "memory");
}
static inline void irq_enable(void)
{
	__asm__ __volatile__("sti" ::: "memory");
}
static inline void irq_disable(void)
{
	__asm__ __volatile__("cli" ::: "memory");
}
#define MSR_GS_BASE 0xc0000101u
#define MSR_EFER 0xc0000080u
#define EFER_NXE (1ull << 11)

/* ---- lib.c ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t kstrlen(const char *s);
int kstrncmp(const char *a, const char *b, size_t n);
uint64_t krand(uint64_t *state);

/* ---- console.c: COM1, one line at a time ---- */
void console_init(void);
__attribute__((format(printf, 1, 2))) void kprintf(const char *fmt, ...);
__attribute__((format(printf, 3, 4))) int ksnprintf(char *buf, size_t n,
						    const char *fmt, ...);
int kvsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
void console_panic_mode(void);

/* ---- time.c ---- */
extern uint64_t tsc_per_ms;                         /* (i) */
void clock_set_pm_timer(uint16_t port, bool ext32); /* acpi.c, the FADT */
int tsc_calibrate(void); /* 0, or -1 after reporting: no plausible clock */
void delay_us(uint64_t us);

/* ---- trap.c ---- */
void cpu_tables_load(void); /* GDT, TSS, IDT of the calling CPU (GS set) */
void trap_init(void);
#define VEC_TLB 0xf0
#define VEC_SPURIOUS 0xff
void tlb_shootdown(void);            /* every other CPU flushes, then acks */
uint64_t tlb_shootdown_begin(void);  /* the IPI only: a generation */
bool tlb_shootdown_done(uint64_t g); /* every other CPU acked g */
void tlb_shootdown_wait(uint64_t g); /* until then (ipi_ms: fatal) */
void tlb_ack_init(void);
void idt_drop(unsigned vec); /* mark a gate not present (fault=df) */

/* ---- cmdline.c ---- */
enum {
	TEST_BUDDY = 1u << 0,
	TEST_VAS = 1u << 1,
	TEST_EPOCH = 1u << 2,
	TEST_KMEM = 1u << 3,
	TEST_ALL = TEST_BUDDY | TEST_VAS | TEST_EPOCH | TEST_KMEM,
};
enum fault_kind {
	FAULT_NONE,
	FAULT_PF,
	FAULT_GP,
	FAULT_UD,
	FAULT_DE,
	FAULT_NOIRQ,
	FAULT_STACK,
	FAULT_WTEXT,
	FAULT_NX,
	FAULT_HOLE,
	FAULT_HANG,
	FAULT_DF,
	FAULT_NMI
};
struct kconfig {
	unsigned tests; /* TEST_* bits */
	uint64_t ms;    /* per test */
	enum fault_kind fault;
	unsigned fault_cpu;
	uint64_t seed;
	uint64_t min_ops;  /* per CPU and test, or the test fails */
	unsigned max_cpus; /* refuse a machine with more (<= MAX_CPUS) */
	uint64_t ipi_ms;   /* how long to wait for another CPU to answer */
	enum { CLOCK_AUTO, CLOCK_PIT, CLOCK_PMTIMER } clock; /* time.c */
	bool selftest_acpi; /* run acpi_selftest() at boot */
};
extern struct kconfig kconf;
int cmdline_parse(const char *s); /* 0, or -1 after reporting */
const char *fault_name(enum fault_kind f);

/* ---- acpi.c ---- */
struct phys_range {
	uint64_t base, end;
};
#define MAX_EXCL 64
struct acpi_info {
	unsigned ncpus; /* enabled CPUs, each APIC id once */
	uint32_t apic_ids[MAX_CPUS];
	unsigned found;          /* enabled MADT entries, duplicates too */
	unsigned online_capable; /* not enabled, not started */
	unsigned disabled;       /* neither: not started */
	uint64_t lapic_phys;
	struct phys_range tables[MAX_EXCL]; /* to keep out of the buddy */
	unsigned ntables;
};
extern struct acpi_info acpi;
int acpi_init(uint64_t rsdp_hint);
int acpi_selftest(void); /* the table checks on crafted tables: failures */

/* ---- mem.c ---- */
struct boot_mem {
	struct phys_range ram[BUDDY_MAX_REGIONS * 2];
	unsigned nram;
	struct phys_range excl[MAX_EXCL];
	unsigned nexcl;
};
extern struct boot_mem bootmem;
extern struct buddy_zone *zone;
extern uint64_t kernel_cr3;         /* (i) */
extern lf_atomic_u64 kernel_frames; /* (a) frames the kernel itself holds */
extern lf_atomic_u64 kernel_blocks; /* (a) in buddy blocks (kmem's: 2^k) */
extern struct vas kvas;
void mem_exclude(uint64_t base, uint64_t end);
void mem_init(void);      /* buddy, page tables, switch to them */
void mem_nx_enable(void); /* EFER.NXE, before loading kernel_cr3 */
void mem_vas_init(void);  /* the vmalloc region */
extern struct kmem *kmem; /* (i) the object allocator over the buddy */
extern struct kmem_cache *vas_node_cache; /* (i) the vaspace tree nodes */
void mem_kmem_init(void); /* before mem_vas_init: vas nodes come from it */
int kframe_alloc(uint64_t *pa); /* a zeroed frame the kernel keeps */
void kframe_free(uint64_t pa);
void *vmalloc(struct cpu *c, uint64_t npages, uintptr_t tag, int *err);
int vfree(struct cpu *c, void *va, uint64_t npages); /* lazy: see mem.c */
void vfree_purge(struct cpu *c); /* parked vfrees flushed and returned */
void vfree_stats(unsigned cpu, uint64_t *purges,
		 uint64_t *parked); /* lazy: see mem.c */
void vfree_purge(struct cpu *c);    /* one shootdown, parked frees returned */
void vfree_stats(unsigned cpu, uint64_t *purges, uint64_t *parked);
uint64_t vmalloc_phys(uint64_t va); /* 0 when unmapped */

/* ---- smp.c ---- */
void pic_disable(void);
void lapic_init(void);
void lapic_eoi(void);
uint32_t lapic_id(void);
void lapic_ipi_others(uint8_t vector);
void lapic_nmi_self(void);
int smp_start_aps(void);
void cpu_set_gs(struct cpu *c);
struct kbarrier {
	lf_atomic_u32 count;        /* (a) */
	lf_atomic_u32 sense;        /* (a) */
	lf_atomic_u32 at[MAX_CPUS]; /* (a) the sense each CPU last came with */
};
/* Waits at most kconf.ms + 6 * kconf.ipi_ms (a minute by default), then
 * reports the CPUs that never came. */
void kbarrier_wait(struct kbarrier *b, unsigned n, uint32_t *local_sense);

/* ---- main.c / torture.c ---- */
extern struct lf_epoch_domain kepoch;
_Noreturn void kmain_bsp(uint64_t start_info_phys);
_Noreturn void kmain_ap(void);
void cpu_join(struct cpu *c);          /* register the CPU's participants */
_Noreturn void cpu_run(struct cpu *c); /* the test loop of every CPU */
void torture_init(void);
void torture_run_cpu(struct cpu *c, unsigned test);
/* BSP, CPUs quiescent: NULL on a pass, else the reason of the failure. */
const char *torture_report(unsigned test);
int torture_final_check(void); /* BSP, at the end */
/* torture_kmem.c: the kmem test on one CPU, and its check on the BSP. */
void torture_kmem(struct cpu *c, uint64_t *ops, uint64_t *errors,
		  uint64_t *remote, uint64_t deadline);
int torture_kmem_check(void);
void fault_trigger(enum fault_kind f);

#endif /* KERN_H */
