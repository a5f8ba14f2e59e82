/*
 * mem.c: physical memory into the buddy, page tables from buddy frames, and
 * the vmalloc-like kernel virtual region on vaspace.
 *
 * Regions: the RAM entries of the boot memory map (page-aligned inward),
 * minus the exclusions (low 1 MiB, which holds the AP trampoline; the
 * kernel image; the boot data; the ACPI tables; the buddy's own metadata),
 * sorted, holes left as holes. The metadata (buddy_meta_size() bytes) is
 * carved from the first piece of RAM below 4 GiB that fits, before the
 * allocator exists, and read through the direct map.
 *
 * Page tables: a new PML4 built from buddy frames (taken below 4 GiB while
 * only the boot tables' 4 GiB direct map exists): the RAM at DIRECT_BASE
 * (pt_build() has the details), the image at KERNEL_VMA with W^X and stack
 * guard pages, the local APIC uncached at LAPIC_VA,
 * and one PDPT for the vmalloc region, created up front so every later
 * change to that region is below a PML4 entry that all CPUs share. Lower
 * vmalloc tables are created on demand, by CAS on the empty entry (the
 * loser frees its frame), and never freed.
 *
 * vmalloc(): a range from the vas (one guard page after it), a buddy frame
 * mapped at each page; the vas has per-context caching on, so small
 * ranges come from the CPU's own reservation or cache, leaf-locally. vfree():
 * clear the PTEs (xchg) and invlpg here at once, then park the frames and the
 * range in this CPU's open batch (as Linux's lazy vunmap purge). A full batch
 * sends one shootdown (IPIs to every other CPU) for all its vfrees and is not
 * waited for; it is returned (frames to the buddy, ranges to the vas) only once
 * every other CPU acknowledged a flush made after that request, so neither a
 * frame nor an address is reused while a stale translation can exist (L1,
 * asserted in vbatch_release()). Two batches per CPU: one fills while the
 * other flushes. A vmalloc that finds no room or no frame purges this
 * CPU's batches and tries once more; at most 2 x VLAZY_PAGES frames and
 * 2 x VLAZY_RANGES ranges per CPU wait. Page-table entries are plain memory the
 * MMU reads; this kernel file accesses them with the compiler's __atomic
 * builtins (the core's lf_atomic.h rule is for the core).
 */
#include "kern.h"

struct boot_mem bootmem;
struct buddy_zone *zone;
uint64_t kernel_cr3;
lf_atomic_u64 kernel_frames;
lf_atomic_u64 kernel_blocks;
struct vas kvas;

extern char __kernel_phys_start[], __kernel_phys_end[];
extern char __text_start[], __text_end[], __rodata_end[];

#define PTE_P 0x001ull
#define PTE_W 0x002ull
#define PTE_PWT 0x008ull
#define PTE_PCD 0x010ull
#define PTE_PS 0x080ull
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull
#define SZ_2M (2ull << 20)

static struct buddy_region regions[BUDDY_MAX_REGIONS];
static unsigned nregions;
static bool pt_early = true; /* (i) page-table frames below 4 GiB */

void mem_exclude(uint64_t base, uint64_t end)
{
	if (bootmem.nexcl == MAX_EXCL) {
		kprintf("LFK error mem too_many_exclusions\n");
		kexit_fail();
	}
	base &= ~(PAGE_SIZE - 1);
	end = (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	bootmem.excl[bootmem.nexcl++] = (struct phys_range){ base, end };
}

static void ranges_sort(struct phys_range *r, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && r[j].base < r[j - 1].base; j--) {
			struct phys_range t = r[j];
			r[j] = r[j - 1];
			r[j - 1] = t;
		}
}

static void regions_add(uint64_t b, uint64_t e)
{
	if (e <= b)
		return;
	if (nregions == BUDDY_MAX_REGIONS) {
		kprintf("LFK error mem too_many_regions max=%u\n",
			BUDDY_MAX_REGIONS);
		kexit_fail();
	}
	regions[nregions++] = (struct buddy_region){ b, e - b };
}

/* regions = RAM minus every exclusion. */
static void regions_build(void)
{
	ranges_sort(bootmem.ram, bootmem.nram);
	ranges_sort(bootmem.excl, bootmem.nexcl);
	nregions = 0;
	for (unsigned i = 0; i < bootmem.nram; i++) {
		uint64_t b = (bootmem.ram[i].base + PAGE_SIZE - 1) &
			     ~(PAGE_SIZE - 1);
		uint64_t e = bootmem.ram[i].end & ~(PAGE_SIZE - 1);
		for (unsigned k = 0; k < bootmem.nexcl && b < e; k++) {
			const struct phys_range *x = &bootmem.excl[k];
			if (x->end <= b || x->base >= e)
				continue;
			regions_add(b, x->base < e ? x->base : e);
			b = x->end > b ? x->end : b;
		}
		regions_add(b, e);
	}
}

/* Where the metadata goes: the first piece below 4 GiB that holds it. */
static uint64_t meta_carve(size_t size)
{
	for (unsigned i = 0; i < nregions; i++) {
		uint64_t b = regions[i].base;
		if (regions[i].size >= size && b + size <= BOOT_DIRECT_LIMIT)
			return b;
	}
	kprintf("LFK error mem no_room_for_metadata bytes=%zu\n", size);
	kexit_fail();
}

/*
 * Which buddy this image runs: kernel/CMakeLists.txt builds lfkernel with
 * the buddy sources at BUDDY_CORE_SHIFT 0 (version 2) and lfkernel_v3 at
 * 5 (version 3: units of 32 frames under the core, the lower level below
 * them; docs/design.md 2.7), and defines the shift for the whole image.
 * The library is checked to be that one by the metadata it asked for:
 * version 2 needs BUDDY_META_FRAME_BYTES a frame, version 3 0.625 and a
 * fixed part.
 */
#ifndef BUDDY_CORE_SHIFT
#define BUDDY_CORE_SHIFT 0
#endif
#define KBUDDY_VERSION (BUDDY_CORE_SHIFT > 0 ? 3 : 2)

static void buddy_version_check(size_t meta, uint64_t frames)
{
	bool v2 = meta >= frames * BUDDY_META_FRAME_BYTES;
	kprintf("LFK buddy version=%u core_shift=%u meta_bytes=%zu frames=%lu "
		"meta_milli_per_frame=%lu\n",
		KBUDDY_VERSION, BUDDY_CORE_SHIFT, meta, frames,
		frames ? (uint64_t)meta * 1000 / frames : 0);
	if (v2 != (KBUDDY_VERSION == 2)) {
		kprintf("LFK error mem buddy_version_mismatch version=%u "
			"meta_bytes=%zu frames=%lu\n",
			KBUDDY_VERSION, meta, frames);
		kexit_fail();
	}
}

static void buddy_setup(void)
{
	mem_exclude(0, 0x100000);
	mem_exclude((uint64_t)(uintptr_t)__kernel_phys_start,
		    (uint64_t)(uintptr_t)__kernel_phys_end);
	for (unsigned i = 0; i < acpi.ntables; i++)
		mem_exclude(acpi.tables[i].base, acpi.tables[i].end);
	regions_build();
	size_t need = buddy_meta_size(regions, nregions, ncpus);
	size_t carved = (need + PAGE_SIZE - 1) & ~(size_t)(PAGE_SIZE - 1);
	uint64_t meta = meta_carve(carved);
	mem_exclude(meta, meta + carved);
	regions_build();
	size_t need2 = buddy_meta_size(regions, nregions, ncpus);
	if (need == 0 || need2 > carved) {
		kprintf("LFK error mem meta_size=%zu carved=%zu\n", need2,
			carved);
		kexit_fail();
	}
	int rc = buddy_zone_init(&zone, phys_to_virt(meta), carved, regions,
				 nregions, ncpus);
	if (rc != BUDDY_OK) {
		kprintf("LFK error mem buddy_zone_init=%s\n",
			buddy_strerror(rc));
		kexit_fail();
	}
	for (unsigned i = 0; i < ncpus; i++)
		cpus[i].bc = buddy_zone_cpu(zone, i);
	uint64_t frames = 0;
	for (unsigned i = 0; i < nregions; i++)
		frames += regions[i].size / PAGE_SIZE;
	kprintf("LFK mem regions=%u frames=%lu free_mib=%lu meta_bytes=%zu "
		"meta_at=%#lx kernel_end=%#lx\n",
		nregions, frames, frames >> 8, need2, meta,
		(uint64_t)(uintptr_t)__kernel_phys_end);
	for (unsigned i = 0; i < nregions; i++)
		kprintf("LFK region base=%#lx end=%#lx\n", regions[i].base,
			regions[i].base + regions[i].size);
	buddy_version_check(need2, frames);
}

/* ---- frames the kernel keeps: page tables, vaspace nodes ---- */

int kframe_alloc(uint64_t *pa)
{
	struct buddy_cpu *bc = this_cpu()->bc;
	int rc = pt_early ? buddy_alloc_below(bc, 0, BOOT_DIRECT_LIMIT, pa)
			  : buddy_alloc(bc, 0, pa);
	if (rc != BUDDY_OK)
		return rc;
	memset(phys_to_virt(*pa), 0, PAGE_SIZE);
	lf_fetch_add_u64(&kernel_frames, 1, LF_RELAXED);
	lf_fetch_add_u64(&kernel_blocks, 1, LF_RELAXED);
	return BUDDY_OK;
}

void kframe_free(uint64_t pa)
{
	int rc = buddy_free(this_cpu()->bc, pa, 0);
	LF_ASSERT(rc == BUDDY_OK);
	lf_fetch_sub_u64(&kernel_frames, 1, LF_RELAXED);
	lf_fetch_sub_u64(&kernel_blocks, 1, LF_RELAXED);
}

/* ---- page tables ---- */

/* The table below entry idx of table; created when create. */
static uint64_t *pt_next(uint64_t *table, unsigned idx, bool create)
{
	/* Acquire: the new table's zeroes, written before the CAS below. */
	uint64_t e = __atomic_load_n(&table[idx], __ATOMIC_ACQUIRE);
	if (e & PTE_P)
		return phys_to_virt(e & PTE_ADDR);
	if (!create)
		return NULL;
	uint64_t pa;
	if (kframe_alloc(&pa) != BUDDY_OK)
		return NULL;
	uint64_t exp = 0;
	/* Release: the zeroed table; pairs with the acquire load above. */
	if (__atomic_compare_exchange_n(&table[idx], &exp, pa | PTE_P | PTE_W,
					false, __ATOMIC_RELEASE,
					__ATOMIC_ACQUIRE))
		return phys_to_virt(pa);
	kframe_free(pa);
	return phys_to_virt(exp & PTE_ADDR);
}

static unsigned pt_idx(uint64_t va, unsigned level)
{
	return (unsigned)(va >> (12 + 9 * level)) & 511;
}

/* The PTE slot of va (4 KiB page), its tables created when create. */
static uint64_t *pt_slot(uint64_t va, bool create)
{
	uint64_t *t = phys_to_virt(kernel_cr3);
	for (unsigned level = 3; level > 0 && t; level--)
		t = pt_next(t, pt_idx(va, level), create);
	return t ? &t[pt_idx(va, 0)] : NULL;
}

static _Noreturn void pt_out_of_tables(void)
{
	kprintf("LFK error mem out_of_page_tables\n");
	kexit_fail();
}

static void pt_map_2m(uint64_t va, uint64_t pa, uint64_t flags)
{
	uint64_t *t = phys_to_virt(kernel_cr3);
	for (unsigned level = 3; level > 1 && t; level--)
		t = pt_next(t, pt_idx(va, level), true);
	if (!t)
		pt_out_of_tables();
	t[pt_idx(va, 1)] = pa | flags | PTE_PS;
}

static void pt_map_4k(uint64_t va, uint64_t pa, uint64_t flags)
{
	uint64_t *pte = pt_slot(va, true);
	if (!pte)
		pt_out_of_tables();
	*pte = pa | flags;
}

/* [pa, end) at base + pa: 2 MiB pages where a whole aligned 2 MiB lies
 * inside, 4 KiB pages at the edges. */
static void pt_map_range(uint64_t base, uint64_t pa, uint64_t end,
			 uint64_t flags)
{
	while (pa < end) {
		if ((pa & (SZ_2M - 1)) == 0 && pa + SZ_2M <= end) {
			pt_map_2m(base + pa, pa, flags);
			pa += SZ_2M;
		} else {
			pt_map_4k(base + pa, pa, flags);
			pa += PAGE_SIZE;
		}
	}
}

void mem_nx_enable(void)
{
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
}

/*
 * The kernel's tables. The direct map covers the RAM of the memory map
 * only (whole pages inside RAM entries; no reserved, ACPI or MMIO space
 * next to them), not executable; the image's own RAM in it is read-only.
 * The image at KERNEL_VMA in 4 KiB pages: text read-only and executable,
 * rodata read-only, data and bss writable, neither executable (W^X), the
 * guard page under each stack not mapped.
 */
static void pt_build(void)
{
	uint64_t pml4;
	if (kframe_alloc(&pml4) != BUDDY_OK) {
		kprintf("LFK error mem no_pml4\n");
		kexit_fail();
	}
	kernel_cr3 = pml4;
	uint64_t kps = (uint64_t)(uintptr_t)__kernel_phys_start;
	uint64_t kpe =
		((uint64_t)(uintptr_t)__kernel_phys_end + PAGE_SIZE - 1) &
		~(PAGE_SIZE - 1);
	const uint64_t rw = PTE_P | PTE_W | PTE_NX, ro = PTE_P | PTE_NX;
	for (unsigned i = 0; i < bootmem.nram; i++) {
		uint64_t b = (bootmem.ram[i].base + PAGE_SIZE - 1) &
			     ~(PAGE_SIZE - 1);
		uint64_t e = bootmem.ram[i].end & ~(PAGE_SIZE - 1);
		if (e <= b)
			continue;
		uint64_t lo = kps > e ? e : kps < b ? b : kps;
		uint64_t hi = kpe > e ? e : kpe < b ? b : kpe;
		pt_map_range(DIRECT_BASE, b, lo, rw);
		pt_map_range(DIRECT_BASE, lo, hi, ro);
		pt_map_range(DIRECT_BASE, hi, e, rw);
	}
	uint64_t ts = (uint64_t)(uintptr_t)__text_start;
	uint64_t te = (uint64_t)(uintptr_t)__text_end;
	uint64_t re = (uint64_t)(uintptr_t)__rodata_end;
	unsigned guards = 0;
	for (uint64_t pa = kps; pa < kpe; pa += PAGE_SIZE) {
		uint64_t va = KERNEL_VMA + pa;
		const char *which;
		if (va >= ts && va < te)
			pt_map_4k(va, pa, PTE_P);
		else if (va < re)
			pt_map_4k(va, pa, ro);
		else if (stack_guard_of(va, &which) >= 0)
			guards++;
		else
			pt_map_4k(va, pa, rw);
	}
	uint64_t *lapic = pt_slot(LAPIC_VA, true);
	uint64_t *vm = phys_to_virt(kernel_cr3);
	if (!lapic || !pt_next(vm, pt_idx(VMALLOC_BASE, 3), true))
		pt_out_of_tables();
	*lapic = (acpi.lapic_phys & PTE_ADDR) | PTE_P | PTE_W | PTE_PCD |
		 PTE_PWT | PTE_NX;
	mem_nx_enable();
	write_cr3(kernel_cr3);
	pt_early = false;
	kprintf("LFK mem image text=%#lx-%#lx rodata=-%#lx end=%#lx "
		"guard_pages=%u\n",
		ts, te, re, (uint64_t)(KERNEL_VMA + kpe), guards);
}

void mem_init(void)
{
	buddy_setup();
	pt_build();
	kprintf("LFK mem page_tables=%lu cr3=%#lx\n",
		lf_load_u64(&kernel_frames, LF_RELAXED), kernel_cr3);
}

/* ---- kmem over the buddy ---- */

/*
 * The page source of kmem: blocks of the buddy through the calling CPU's
 * context, addressed through the direct map; the frames kmem holds count
 * as frames the kernel keeps (kernel_frames, and its blocks in
 * kernel_blocks), so the buddy's accounting after each test holds
 * whatever kmem keeps.
 */
struct kmem *kmem;
struct kmem_cache *vas_node_cache;

static int kmem_src_alloc(void *arg, unsigned cpu, unsigned order,
			  uintptr_t *addr)
{
	(void)arg;
	uint64_t pa;
	int rc = buddy_alloc(cpus[cpu].bc, order, &pa);
	if (rc == BUDDY_ENOMEM)
		return KMEM_ENOMEM;
	if (rc != BUDDY_OK)
		return KMEM_ESOURCE;
	lf_fetch_add_u64(&kernel_frames, 1ull << order, LF_RELAXED);
	lf_fetch_add_u64(&kernel_blocks, 1, LF_RELAXED);
	*addr = (uintptr_t)phys_to_virt(pa);
	return 0;
}

static void kmem_src_free(void *arg, unsigned cpu, uintptr_t addr,
			  unsigned order)
{
	(void)arg;
	int rc = buddy_free(cpus[cpu].bc, virt_to_phys((void *)addr), order);
	LF_ASSERT(rc == BUDDY_OK);
	lf_fetch_sub_u64(&kernel_frames, 1ull << order, LF_RELAXED);
	lf_fetch_sub_u64(&kernel_blocks, 1, LF_RELAXED);
}

void mem_kmem_init(void)
{
	uint64_t lo = regions[0].base;
	uint64_t hi = regions[nregions - 1].base + regions[nregions - 1].size;
	struct kmem_config cfg = {
		.base = (uintptr_t)phys_to_virt(lo),
		.size = hi - lo,
		.ncpus = ncpus,
		.max_caches = 32,
		.nmags = 16 * ncpus + 64,
		.empty_max = 1,
		.mag_rounds = 16, /* grows on contention */
		.source = { kmem_src_alloc, kmem_src_free, NULL },
	};
	/* The metadata: one buddy block (a run would be several). */
	size_t need = kmem_meta_size(&cfg);
	unsigned order = 0;
	while ((PAGE_SIZE << order) < need)
		order++;
	uint64_t frames = 1ull << order, pa = 0;
	int rc = need ? buddy_alloc(cpus[0].bc, order, &pa) : -1;
	if (rc == BUDDY_OK)
		rc = kmem_init(&kmem, phys_to_virt(pa), frames * PAGE_SIZE,
			       &cfg);
	if (rc == KMEM_OK)
		rc = kmem_cache_create(kmem, "vas_node", VAS_NODE_SIZE, 64,
				       NULL, NULL, NULL, &vas_node_cache);
	if (rc != 0) {
		kprintf("LFK error mem kmem_init=%d meta=%zu\n", rc, need);
		kexit_fail();
	}
	lf_fetch_add_u64(&kernel_frames, frames, LF_RELAXED);
	lf_fetch_add_u64(&kernel_blocks, 1, LF_RELAXED);
	kprintf("LFK mem kmem meta=%zu pages=%lu base=%#lx\n", need,
		(uint64_t)(cfg.size / PAGE_SIZE), (unsigned long)cfg.base);
}

/* ---- the vmalloc region ---- */

/* vaspace nodes come from a kmem cache (VAS_NODE_SIZE, 64-aligned). */
static void *vas_node_get(void *arg)
{
	(void)arg;
	void *p;
	if (kmem_cache_alloc(vas_node_cache, this_cpu()->idx, &p) != KMEM_OK)
		return NULL;
	memset(p, 0, VAS_NODE_SIZE);
	return p;
}

static void vas_node_put(void *arg, void *node)
{
	(void)arg;
	int rc = kmem_cache_free(vas_node_cache, this_cpu()->idx, node);
	LF_ASSERT(rc == KMEM_OK);
}

void mem_vas_init(void)
{
	static const struct vas_node_source src = { vas_node_get, vas_node_put,
						    NULL };
	/*
	 * Nodes of 32 keys and a low high-water mark: the torture still
	 * splits, merges and retires nodes, and a carve from a reservation
	 * (an insert into its leaf) mostly finds room and stays leaf-local;
	 * with 8 keys leaves were often full and a vmalloc went exclusive
	 * (docs/design.md 3.3: about 5x its mean cost at 8 CPUs, TCG).
	 */
	int rc = vas_create(&kvas, VMALLOC_BASE, VMALLOC_SIZE, PAGE_SIZE, &src,
			    32, 4);
	if (rc != VAS_OK) {
		kprintf("LFK error mem vas_create=%s\n", vas_strerror(rc));
		kexit_fail();
	}
	/*
	 * Per-context caching (docs/design.md 3.3): a vmalloc of up to 15
	 * pages (16 with its guard) is carved from its CPU's reservation or
	 * reuses a range that CPU freed, a vfree's range is cached by the CPU
	 * that returns its batch: leaf-local writes, no writer lock. Safe for
	 * L1: a range reaches vas_free() (its CPU's cache) only once its
	 * batch's shootdown was acknowledged, as before. No vas call runs in
	 * an interrupt handler (a leaf-local call interrupted by an exclusive
	 * one on its CPU would wait for itself).
	 */
	rc = vas_set_caching(&kvas, true);
	if (rc != VAS_OK) {
		kprintf("LFK error mem vas_set_caching=%s\n", vas_strerror(rc));
		kexit_fail();
	}
}

uint64_t vmalloc_phys(uint64_t va)
{
	uint64_t *pte = pt_slot(va, false);
	uint64_t e = pte ? __atomic_load_n(pte, __ATOMIC_RELAXED) : 0;
	return (e & PTE_P) ? (e & PTE_ADDR) : 0;
}

#define VMALLOC_MAX 64   /* pages per vmalloc */
#define VLAZY_RANGES 128 /* vfrees per batch */
#define VLAZY_PAGES 1024 /* frames per batch (>= VMALLOC_MAX) */

/*
 * A batch of lazily freed ranges and their frames (frame numbers: 32 bits
 * reach 16 TiB of RAM). gen: the shootdown that covers it, once sent.
 */
struct vbatch {
	uint64_t va[VLAZY_RANGES];
	uint8_t pages[VLAZY_RANGES];
	uint32_t pfn[VLAZY_PAGES];
	unsigned nr, np;
	uint64_t gen;  /* tlb_shootdown_begin()'s, if flushing */
	bool flushing; /* the IPIs are out, the acks not all in */
};

/*
 * A CPU's two batches, (c) used by that CPU only (12 KiB): one filling,
 * the other flushing. When the open one is full its shootdown is sent and
 * not waited for; the other is returned first, once its own shootdown was
 * acknowledged (long ago, usually: no wait at all).
 */
struct vlazy {
	struct vbatch b[2];
	unsigned open;
	uint64_t purges, parked; /* statistics */
} LF_CACHE_ALIGNED;

static struct vlazy vlazy[MAX_CPUS];

_Static_assert(VMALLOC_MAX < 256, "a vmalloc's pages fit a byte");

/* Clear the PTEs of pages [0, n) of va, invlpg here; frames into pfn[]. */
static void vunmap_ptes(uint64_t va, uint64_t n, uint32_t *pfn)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t *pte = pt_slot(va + i * PAGE_SIZE, false);
		LF_ASSERT(pte != NULL);
		uint64_t pa = __atomic_exchange_n(pte, 0, __ATOMIC_ACQ_REL) &
			      PTE_ADDR;
		LF_ASSERT(pa / PAGE_SIZE <= UINT32_MAX);
		pfn[i] = (uint32_t)(pa / PAGE_SIZE);
		invlpg(va + i * PAGE_SIZE);
	}
}

/*
 * Batch b, whose shootdown every other CPU acknowledged (L1): its frames
 * to the buddy, its ranges to the vas.
 */
static void vbatch_release(struct cpu *c, struct vbatch *b)
{
	LF_ASSERT(tlb_shootdown_done(b->gen));
	for (unsigned i = 0; i < b->np; i++) {
		int rc = buddy_free(c->bc, (uint64_t)b->pfn[i] * PAGE_SIZE, 0);
		LF_ASSERT(rc == BUDDY_OK);
	}
	for (unsigned i = 0; i < b->nr; i++) {
		int rc = vas_free(&c->vctx, b->va[i],
				  ((uint64_t)b->pages[i] + 1) * PAGE_SIZE);
		LF_ASSERT(rc == VAS_OK);
	}
	b->nr = b->np = 0;
	b->flushing = false;
}

/* The flushing batch, if any: wait for its acks, return it. */
static void vlazy_drain(struct cpu *c, struct vlazy *z)
{
	struct vbatch *f = &z->b[z->open ^ 1];
	if (!f->flushing)
		return;
	tlb_shootdown_wait(f->gen);
	vbatch_release(c, f);
}

/* The open batch starts flushing; the other one (drained) opens. */
static void vlazy_rotate(struct cpu *c, struct vlazy *z)
{
	vlazy_drain(c, z);
	struct vbatch *b = &z->b[z->open];
	b->gen = tlb_shootdown_begin();
	b->flushing = true;
	z->open ^= 1;
	z->purges++;
}

void vfree_purge(struct cpu *c)
{
	struct vlazy *z = &vlazy[c->idx];
	if (z->b[z->open].nr > 0)
		vlazy_rotate(c, z);
	vlazy_drain(c, z);
}

void vfree_stats(unsigned cpu, uint64_t *purges, uint64_t *parked)
{
	*purges = vlazy[cpu].purges;
	*parked = vlazy[cpu].parked;
}

/* Unmap [va, va + n pages) now; park it (rotating first if full). */
static void vunmap_lazy(struct cpu *c, uint64_t va, uint64_t n)
{
	struct vlazy *z = &vlazy[c->idx];
	struct vbatch *f = &z->b[z->open ^ 1];
	if (f->flushing && tlb_shootdown_done(f->gen))
		vbatch_release(c, f); /* early: acked already */
	struct vbatch *b = &z->b[z->open];
	if (b->nr == VLAZY_RANGES || b->np + n > VLAZY_PAGES) {
		vlazy_rotate(c, z);
		b = &z->b[z->open];
	}
	vunmap_ptes(va, n, &b->pfn[b->np]);
	b->np += (unsigned)n;
	b->va[b->nr] = va;
	b->pages[b->nr++] = (uint8_t)n;
	z->parked++;
}

static void *vmalloc_try(struct cpu *c, uint64_t npages, uintptr_t tag,
			 int *err)
{
	uint64_t va;
	int rc = vas_alloc(&c->vctx, (npages + 1) * PAGE_SIZE, 0, VAS_FIRST_FIT,
			   tag, &va);
	if (rc != VAS_OK) {
		*err = rc;
		return NULL;
	}
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t pa, *pte = pt_slot(va + i * PAGE_SIZE, true);
		if (!pte || buddy_alloc(c->bc, 0, &pa) != BUDDY_OK) {
			/* Never mapped anywhere but here: parked like a vfree.
			 */
			vunmap_lazy(c, va, i);
			*err = VAS_ENOMEM;
			return NULL;
		}
		/* Release: nothing to publish but the mapping itself. */
		__atomic_store_n(pte, pa | PTE_P | PTE_W | PTE_NX,
				 __ATOMIC_RELEASE);
	}
	return (void *)(uintptr_t)va;
}

void *vmalloc(struct cpu *c, uint64_t npages, uintptr_t tag, int *err)
{
	if (npages == 0 || npages > VMALLOC_MAX) {
		*err = VAS_EINVAL;
		return NULL;
	}
	void *p = vmalloc_try(c, npages, tag, err);
	if (p == NULL && (*err == VAS_ENOSPC || *err == VAS_ENOMEM)) {
		vfree_purge(c); /* what this CPU parked, back first */
		p = vmalloc_try(c, npages, tag, err);
	}
	return p;
}

/*
 * The range must be one vmalloc of npages, still mapped (a range parked
 * by an earlier vfree is still allocated in the vas, but unmapped):
 * otherwise VAS_ENOTALLOC and nothing changes.
 */
int vfree(struct cpu *c, void *va, uint64_t npages)
{
	uint64_t a = (uint64_t)(uintptr_t)va;
	struct vas_range r;
	if (npages == 0 || npages > VMALLOC_MAX)
		return VAS_EINVAL;
	int rc = vas_lookup(&c->vctx, a, &r);
	if (rc != VAS_OK || r.start != a ||
	    r.size != (npages + 1) * PAGE_SIZE || vmalloc_phys(a) == 0)
		return rc == VAS_OK || rc == VAS_ENOENT ? VAS_ENOTALLOC : rc;
	if (a & (PAGE_SIZE - 1))
		return VAS_EALIGN;
	vunmap_lazy(c, a, npages);
	return VAS_OK;
}
