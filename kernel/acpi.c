/*
 * acpi.c: find the CPUs. RSDP (from the PVH start info, else the BIOS
 * area 0xe0000-0xfffff) -> XSDT (revision 2+) or RSDT -> MADT: the local
 * APIC address and the APIC id of every enabled processor, xAPIC (type 0)
 * and x2APIC (type 9) entries alike (madt_cpu() has the rules). Every table
 * seen (and the DSDT and FACS the FADT names) is recorded, so mem.c keeps
 * them out of the buddy. Runs on the boot page tables: tables below 4 GiB
 * are read through the early direct map. Unaligned fields are read with
 * memcpy.
 */
#include "kern.h"

struct acpi_info acpi;

#define SDT_HDR 36

static uint32_t rd32(uint64_t pa)
{
	uint32_t v;
	memcpy(&v, phys_to_virt(pa), 4);
	return v;
}
static uint64_t rd64(uint64_t pa)
{
	uint64_t v;
	memcpy(&v, phys_to_virt(pa), 8);
	return v;
}
static uint8_t rd8(uint64_t pa)
{
	return *(const uint8_t *)phys_to_virt(pa);
}

static bool acpi_sum_ok(uint64_t pa, uint32_t len)
{
	uint8_t s = 0;
	for (uint32_t i = 0; i < len; i++)
		s = (uint8_t)(s + rd8(pa + i));
	return s == 0;
}

static bool acpi_sig(uint64_t pa, const char *sig)
{
	return memcmp(phys_to_virt(pa), sig, 4) == 0;
}

static void acpi_keep(uint64_t pa, uint64_t len)
{
	if (acpi.ntables < MAX_EXCL)
		acpi.tables[acpi.ntables++] = (struct phys_range){ pa, pa + len };
}

static bool acpi_reachable(uint64_t pa)
{
	return pa != 0 && pa + SDT_HDR < BOOT_DIRECT_LIMIT;
}

static uint64_t acpi_find_rsdp(uint64_t hint)
{
	if (hint && acpi_reachable(hint) &&
	    memcmp(phys_to_virt(hint), "RSD PTR ", 8) == 0 &&
	    acpi_sum_ok(hint, 20))
		return hint;
	for (uint64_t pa = 0xe0000; pa < 0x100000; pa += 16)
		if (memcmp(phys_to_virt(pa), "RSD PTR ", 8) == 0 &&
		    acpi_sum_ok(pa, 20))
			return pa;
	return 0;
}

/*
 * One processor entry. flags bit 0: enabled (started); bit 1 alone:
 * online capable, a CPU that could be hot-added later: counted, never
 * started. The same APIC id in two entries (an xAPIC and an x2APIC entry
 * for one CPU) is one CPU. The kernel drives the local APIC in xAPIC mode:
 * an id that does not fit 8 bits (or is the broadcast 0xff) is an error,
 * and so are more CPUs than it runs on.
 */
static int madt_cpu(uint32_t apic_id, uint32_t flags, const char *kind)
{
	if (!(flags & 1)) {
		if (flags & 2)
			acpi.online_capable++;
		return 0;
	}
	acpi.found++;
	for (unsigned i = 0; i < acpi.ncpus; i++)
		if (acpi.apic_ids[i] == apic_id)
			return 0;
	if (apic_id >= 0xff) {
		kprintf("LFK error acpi madt_%s apic=%u does_not_fit=xapic\n",
			kind, apic_id);
		return -1;
	}
	if (acpi.ncpus >= kconf.max_cpus) {
		kprintf("LFK error acpi too_many_cpus max=%u (the MADT lists "
			"more enabled CPUs)\n", kconf.max_cpus);
		return -1;
	}
	acpi.apic_ids[acpi.ncpus++] = apic_id;
	return 0;
}

static int acpi_madt(uint64_t pa, uint32_t len)
{
	if (len < SDT_HDR + 8) {
		kprintf("LFK error acpi madt_too_short length=%u\n", len);
		return -1;
	}
	acpi.lapic_phys = rd32(pa + SDT_HDR);
	uint64_t e = pa + SDT_HDR + 8;
	while (e < pa + len) {
		if (e + 2 > pa + len || rd8(e + 1) < 2 ||
		    e + rd8(e + 1) > pa + len) {
			kprintf("LFK error acpi madt_bad_entry at=%#lx\n", e);
			return -1;
		}
		uint8_t type = rd8(e), elen = rd8(e + 1);
		int rc = 0;
		if (type == 0 && elen >= 8)
			rc = madt_cpu(rd8(e + 3), rd32(e + 4), "xapic");
		else if (type == 9 && elen >= 16)
			rc = madt_cpu(rd32(e + 4), rd32(e + 8), "x2apic");
		else if (type == 5 && elen >= 12)
			acpi.lapic_phys = rd64(e + 4);
		if (rc != 0)
			return rc;
		e += elen;
	}
	return 0;
}

/*
 * The FADT: the DSDT and FACS (kept out of the buddy) and the PM timer's
 * port (PM_TMR_BLK, or X_PM_TMR_BLK when it is in I/O space), 32 bits wide
 * when flag TMR_VAL_EXT is set.
 */
static void acpi_fadt(uint64_t pa, uint32_t len)
{
	uint64_t pmt = len >= 80 ? rd32(pa + 76) : 0;
	if (len >= 220 && rd8(pa + 208) == 1 && rd64(pa + 212))
		pmt = rd64(pa + 212);
	bool ext = len >= 116 && (rd32(pa + 112) & (1u << 8));
	if (pmt && pmt < 0x10000)
		clock_set_pm_timer((uint16_t)pmt, ext);
	uint64_t facs = rd32(pa + 36), dsdt = rd32(pa + 40);
	if (len >= 148 && rd64(pa + 140))
		dsdt = rd64(pa + 140);
	if (len >= 140 && rd64(pa + 132))
		facs = rd64(pa + 132);
	if (acpi_reachable(dsdt))
		acpi_keep(dsdt, rd32(dsdt + 4));
	if (acpi_reachable(facs))
		acpi_keep(facs, rd32(facs + 4));
}

static int acpi_table(uint64_t pa)
{
	if (!acpi_reachable(pa))
		return 0;
	uint32_t len = rd32(pa + 4);
	if (len < SDT_HDR || !acpi_sum_ok(pa, len))
		return 0;
	acpi_keep(pa, len);
	if (acpi_sig(pa, "APIC"))
		return acpi_madt(pa, len);
	if (acpi_sig(pa, "FACP"))
		acpi_fadt(pa, len);
	return 0;
}

int acpi_init(uint64_t rsdp_hint)
{
	uint64_t rsdp = acpi_find_rsdp(rsdp_hint);
	if (!rsdp) {
		kprintf("LFK error acpi no_rsdp\n");
		return -1;
	}
	acpi_keep(rsdp, 36);
	uint64_t xsdt = rd8(rsdp + 15) >= 2 ? rd64(rsdp + 24) : 0;
	uint64_t root = xsdt ? xsdt : rd32(rsdp + 16);
	unsigned esz = xsdt ? 8 : 4;
	if (!acpi_reachable(root) || !acpi_sum_ok(root, rd32(root + 4))) {
		kprintf("LFK error acpi bad_root=%#lx\n", root);
		return -1;
	}
	uint32_t len = rd32(root + 4);
	acpi_keep(root, len);
	for (uint64_t e = root + SDT_HDR; e + esz <= root + len; e += esz)
		if (acpi_table(esz == 8 ? rd64(e) : rd32(e)) != 0)
			return -1;
	if (acpi.ncpus == 0 || acpi.lapic_phys == 0) {
		kprintf("LFK error acpi no_madt_cpus\n");
		return -1;
	}
	return 0;
}
