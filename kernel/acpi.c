/*
 * acpi.c: find the CPUs. RSDP (from the PVH start info, else the BIOS
 * area 0xe0000-0xfffff) -> XSDT (revision 2+) or RSDT -> MADT: the local
 * APIC address and the APIC id of every enabled processor, xAPIC (type 0)
 * and x2APIC (type 9) entries alike (madt_cpu() has the rules). Every table
 * seen (and the DSDT and FACS the FADT names) is recorded, so mem.c keeps
 * them out of the buddy. Every table is checked before it is used: the
 * RSDP's checksum and, from revision 2, its extended checksum; each
 * table's length (at least its header, at most 16 MiB, inside the early
 * direct map) and checksum; each MADT entry inside the MADT. A table that
 * fails is an error ("LFK error acpi ..."), not skipped. Runs on the boot page tables: tables below 4 GiB
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

/* An RSDP: signature, the ACPI 1.0 checksum over 20 bytes and, from
 * revision 2, a sane length and the extended checksum over all of it. */
static bool acpi_rsdp_ok(uint64_t pa)
{
	if (memcmp(phys_to_virt(pa), "RSD PTR ", 8) != 0 ||
	    !acpi_sum_ok(pa, 20))
		return false;
	if (rd8(pa + 15) < 2)
		return true;
	uint32_t len = rd32(pa + 20);
	return len >= 36 && len <= 4096 && pa + len < BOOT_DIRECT_LIMIT &&
	       acpi_sum_ok(pa, len);
}

static uint64_t acpi_find_rsdp(uint64_t hint)
{
	if (hint) {
		if (hint + 36 < BOOT_DIRECT_LIMIT && acpi_rsdp_ok(hint))
			return hint;
		kprintf("LFK error acpi bad_rsdp at=%#lx (signature, checksum "
			"or extended checksum)\n", hint);
		return 0;
	}
	for (uint64_t pa = 0xe0000; pa < 0x100000; pa += 16)
		if (acpi_rsdp_ok(pa))
			return pa;
	kprintf("LFK error acpi no_rsdp\n");
	return 0;
}

/*
 * A system description table at pa: reachable, a length from its header to
 * the limit, a checksum over that length. Anything else is an error: the
 * kernel does not guess around a broken table.
 */
#define SDT_MAX (16u << 20)
static int acpi_sdt_check(uint64_t pa, const char *what)
{
	char sig[5] = "????";
	if (!acpi_reachable(pa)) {
		kprintf("LFK error acpi table_unreachable what=%s at=%#lx\n",
			what, pa);
		return -1;
	}
	memcpy(sig, phys_to_virt(pa), 4);
	for (int i = 0; i < 4; i++)
		if (sig[i] < 0x20 || sig[i] > 0x7e)
			sig[i] = '?';
	uint32_t len = rd32(pa + 4);
	if (len < SDT_HDR || len > SDT_MAX || pa + len >= BOOT_DIRECT_LIMIT) {
		kprintf("LFK error acpi bad_table_length sig=%s at=%#lx "
			"length=%u\n", sig, pa, len);
		return -1;
	}
	if (!acpi_sum_ok(pa, len)) {
		kprintf("LFK error acpi bad_table_checksum sig=%s at=%#lx "
			"length=%u\n", sig, pa, len);
		return -1;
	}
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
		else
			acpi.disabled++;
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
static int acpi_fadt(uint64_t pa, uint32_t len)
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
	if (dsdt) {
		if (acpi_sdt_check(dsdt, "dsdt") != 0)
			return -1;
		acpi_keep(dsdt, rd32(dsdt + 4));
	}
	/* The FACS has a length but no checksum. */
	if (facs) {
		uint32_t flen = acpi_reachable(facs) ? rd32(facs + 4) : 0;
		if (flen < 64 || facs + flen >= BOOT_DIRECT_LIMIT ||
		    memcmp(phys_to_virt(facs), "FACS", 4) != 0) {
			kprintf("LFK error acpi bad_facs at=%#lx length=%u\n",
				facs, flen);
			return -1;
		}
		acpi_keep(facs, flen);
	}
	return 0;
}

static int acpi_table(uint64_t pa)
{
	if (acpi_sdt_check(pa, "sdt") != 0)
		return -1;
	uint32_t len = rd32(pa + 4);
	acpi_keep(pa, len);
	if (acpi_sig(pa, "APIC"))
		return acpi_madt(pa, len);
	if (acpi_sig(pa, "FACP"))
		return acpi_fadt(pa, len);
	return 0;
}

int acpi_init(uint64_t rsdp_hint)
{
	uint64_t rsdp = acpi_find_rsdp(rsdp_hint);
	if (!rsdp)
		return -1;
	acpi_keep(rsdp, rd8(rsdp + 15) >= 2 ? rd32(rsdp + 20) : 20);
	uint64_t xsdt = rd8(rsdp + 15) >= 2 ? rd64(rsdp + 24) : 0;
	uint64_t root = xsdt ? xsdt : rd32(rsdp + 16);
	unsigned esz = xsdt ? 8 : 4;
	if (acpi_sdt_check(root, xsdt ? "xsdt" : "rsdt") != 0)
		return -1;
	uint32_t len = rd32(root + 4);
	acpi_keep(root, len);
	for (uint64_t e = root + SDT_HDR; e + esz <= root + len; e += esz)
		if (acpi_table(esz == 8 ? rd64(e) : rd32(e)) != 0)
			return -1;
	kprintf("LFK acpi rsdp=%#lx revision=%u root=%s tables_checked=%u\n",
		rsdp, rd8(rsdp + 15), xsdt ? "xsdt" : "rsdt", acpi.ntables);
	if (acpi.ncpus == 0 || acpi.lapic_phys == 0) {
		kprintf("LFK error acpi no_madt_cpus\n");
		return -1;
	}
	return 0;
}
