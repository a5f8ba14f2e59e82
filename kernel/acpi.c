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
 * fails is an error ("LFK error acpi ..."), not skipped. Runs on the boot page
 * tables: tables below 4 GiB are read through the early direct map. Unaligned
 * fields are read with memcpy.
 */
#include "kern.h"

struct acpi_info acpi;

/* acpi_selftest() feeds broken tables on purpose: its errors are expected. */
static bool acpi_quiet;
#define acpi_err(...)                                                          \
	do {                                                                   \
		if (!acpi_quiet)                                               \
			kprintf(__VA_ARGS__);                                  \
	} while (0)

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
		acpi.tables[acpi.ntables++] =
			(struct phys_range){ pa, pa + len };
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
		acpi_err("LFK error acpi bad_rsdp at=%#lx (signature, checksum "
			 "or extended checksum)\n",
			 hint);
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
		acpi_err("LFK error acpi table_unreachable what=%s at=%#lx\n",
			 what, pa);
		return -1;
	}
	memcpy(sig, phys_to_virt(pa), 4);
	for (int i = 0; i < 4; i++)
		if (sig[i] < 0x20 || sig[i] > 0x7e)
			sig[i] = '?';
	uint32_t len = rd32(pa + 4);
	if (len < SDT_HDR || len > SDT_MAX || pa + len >= BOOT_DIRECT_LIMIT) {
		acpi_err("LFK error acpi bad_table_length sig=%s at=%#lx "
			 "length=%u\n",
			 sig, pa, len);
		return -1;
	}
	if (!acpi_sum_ok(pa, len)) {
		acpi_err("LFK error acpi bad_table_checksum sig=%s at=%#lx "
			 "length=%u\n",
			 sig, pa, len);
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
static int madt_cpu(struct acpi_info *a, unsigned max, uint32_t apic_id,
		    uint32_t flags, const char *kind)
{
	if (!(flags & 1)) {
		if (flags & 2)
			a->online_capable++;
		else
			a->disabled++;
		return 0;
	}
	a->found++;
	for (unsigned i = 0; i < a->ncpus; i++)
		if (a->apic_ids[i] == apic_id)
			return 0;
	if (apic_id >= 0xff) {
		acpi_err("LFK error acpi madt_%s apic=%u does_not_fit=xapic\n",
			 kind, apic_id);
		return -1;
	}
	if (a->ncpus >= max) {
		acpi_err("LFK error acpi too_many_cpus max=%u (the MADT lists "
			 "more enabled CPUs)\n",
			 max);
		return -1;
	}
	a->apic_ids[a->ncpus++] = apic_id;
	return 0;
}

static int acpi_madt(struct acpi_info *a, unsigned max, uint64_t pa,
		     uint32_t len)
{
	if (len < SDT_HDR + 8) {
		acpi_err("LFK error acpi madt_too_short length=%u\n", len);
		return -1;
	}
	a->lapic_phys = rd32(pa + SDT_HDR);
	uint64_t e = pa + SDT_HDR + 8;
	while (e < pa + len) {
		if (e + 2 > pa + len || rd8(e + 1) < 2 ||
		    e + rd8(e + 1) > pa + len) {
			acpi_err("LFK error acpi madt_bad_entry at=%#lx\n", e);
			return -1;
		}
		uint8_t type = rd8(e), elen = rd8(e + 1);
		int rc = 0;
		if (type == 0 && elen >= 8)
			rc = madt_cpu(a, max, rd8(e + 3), rd32(e + 4), "xapic");
		else if (type == 9 && elen >= 16)
			rc = madt_cpu(a, max, rd32(e + 4), rd32(e + 8),
				      "x2apic");
		else if (type == 5 && elen >= 12)
			a->lapic_phys = rd64(e + 4);
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
			acpi_err("LFK error acpi bad_facs at=%#lx length=%u\n",
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
		return acpi_madt(&acpi, kconf.max_cpus, pa, len);
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

/* ---- acpi_selftest(): the checks above on crafted tables ---- */

static uint8_t st_buf[256] __attribute__((aligned(16)));

static uint64_t st_pa(void)
{
	return kimage_to_phys(st_buf);
}

static void st_put32(unsigned off, uint32_t v)
{
	memcpy(st_buf + off, &v, 4);
}

/* The byte at sum_off makes bytes [0, len) sum to zero. */
static void st_sum(unsigned sum_off, unsigned len)
{
	uint8_t s = 0;
	st_buf[sum_off] = 0;
	for (unsigned i = 0; i < len; i++)
		s = (uint8_t)(s + st_buf[i]);
	st_buf[sum_off] = (uint8_t)-s;
}

static unsigned st_madt_begin(void)
{
	memset(st_buf, 0, sizeof(st_buf));
	memcpy(st_buf, "APIC", 4);
	st_put32(SDT_HDR, 0xfee00000u);
	return SDT_HDR + 8;
}

static unsigned st_xapic(unsigned at, uint8_t id, uint32_t flags)
{
	st_buf[at] = 0;
	st_buf[at + 1] = 8;
	st_buf[at + 3] = id;
	st_put32(at + 4, flags);
	return at + 8;
}

static unsigned st_x2apic(unsigned at, uint32_t id, uint32_t flags)
{
	st_buf[at] = 9;
	st_buf[at + 1] = 16;
	st_put32(at + 4, id);
	st_put32(at + 8, flags);
	return at + 16;
}

static int st_madt(unsigned len, unsigned max, struct acpi_info *a)
{
	st_put32(4, len);
	st_sum(9, len);
	memset(a, 0, sizeof(*a));
	return acpi_madt(a, max, st_pa(), len);
}

static unsigned st_cases;

static int st_case(const char *name, bool ok)
{
	st_cases++;
	kprintf("LFK check name=acpi_selftest case=%s status=%s\n", name,
		ok ? "pass" : "fail");
	return ok ? 0 : 1;
}

int acpi_selftest(void)
{
	struct acpi_info a;
	int bad = 0;
	unsigned e;
	acpi_quiet = true;

	/* Enabled CPUs started once each; the others only counted. */
	e = st_madt_begin();
	e = st_xapic(e, 0, 1);
	e = st_x2apic(e, 0, 1); /* the same CPU again */
	e = st_xapic(e, 1, 2);  /* online capable only */
	e = st_xapic(e, 2, 0);  /* disabled */
	e = st_x2apic(e, 3, 1);
	e = st_xapic(e, 4, 3); /* enabled and online capable */
	int rc = st_madt(e, MAX_CPUS, &a);
	bad += st_case("madt_rules",
		       rc == 0 && a.ncpus == 3 && a.apic_ids[0] == 0 &&
			       a.apic_ids[1] == 3 && a.apic_ids[2] == 4 &&
			       a.found == 4 && a.online_capable == 1 &&
			       a.disabled == 1 && a.lapic_phys == 0xfee00000u);
	/* An x2APIC id beyond xAPIC, and the broadcast id, are errors. */
	e = st_x2apic(st_madt_begin(), 300, 1);
	bad += st_case("madt_x2apic_id_too_big", st_madt(e, MAX_CPUS, &a) != 0);
	e = st_xapic(st_madt_begin(), 0xff, 1);
	bad += st_case("madt_broadcast_id", st_madt(e, MAX_CPUS, &a) != 0);
	/* Disabled, an id too big is no error: it is never started. */
	e = st_x2apic(st_madt_begin(), 300, 0);
	bad += st_case("madt_disabled_big_id",
		       st_madt(e, MAX_CPUS, &a) == 0 && a.ncpus == 0);
	/* More enabled CPUs than the limit. */
	e = st_madt_begin();
	e = st_xapic(e, 0, 1);
	e = st_xapic(e, 1, 1);
	e = st_xapic(e, 2, 1);
	bad += st_case("madt_over_limit", st_madt(e, 2, &a) != 0);
	bad += st_case("madt_at_limit", st_madt(e, 3, &a) == 0 && a.ncpus == 3);
	/* An entry of length 0, and one running past the table. */
	e = st_xapic(st_madt_begin(), 0, 1);
	st_buf[e - 7] = 0;
	bad += st_case("madt_entry_len0", st_madt(e, MAX_CPUS, &a) != 0);
	e = st_xapic(st_madt_begin(), 0, 1);
	bad += st_case("madt_entry_past_end",
		       st_madt(e - 4, MAX_CPUS, &a) != 0);

	/* A table's checksum and length. */
	e = st_xapic(st_madt_begin(), 0, 1);
	st_put32(4, e);
	st_sum(9, e);
	bad += st_case("sdt_good", acpi_sdt_check(st_pa(), "selftest") == 0);
	st_buf[e - 1] ^= 1;
	bad += st_case("sdt_bad_checksum",
		       acpi_sdt_check(st_pa(), "selftest") != 0);
	st_put32(4, SDT_HDR - 1);
	st_sum(9, SDT_HDR - 1);
	bad += st_case("sdt_too_short",
		       acpi_sdt_check(st_pa(), "selftest") != 0);

	/* The RSDP: revision 0 (20 bytes), revision 2 (extended checksum). */
	memset(st_buf, 0, sizeof(st_buf));
	memcpy(st_buf, "RSD PTR ", 8);
	st_sum(8, 20);
	bad += st_case("rsdp_v0_good", acpi_rsdp_ok(st_pa()));
	st_buf[9] ^= 1;
	bad += st_case("rsdp_v0_bad_checksum", !acpi_rsdp_ok(st_pa()));
	st_buf[9] ^= 1;
	st_buf[15] = 2;
	st_put32(20, 36);
	st_sum(8, 20);
	st_sum(32, 36);
	bad += st_case("rsdp_v2_good", acpi_rsdp_ok(st_pa()));
	st_buf[33] ^= 1; /* outside the first 20 bytes */
	bad += st_case("rsdp_v2_bad_extended_checksum", !acpi_rsdp_ok(st_pa()));
	st_buf[33] ^= 1;
	st_put32(20, 20);
	st_sum(8, 20);
	st_sum(32, 36);
	bad += st_case("rsdp_v2_bad_length", !acpi_rsdp_ok(st_pa()));

	acpi_quiet = false;
	kprintf("LFK check name=acpi_selftest status=%s cases=%u failed=%d\n",
		bad ? "fail" : "pass", st_cases, bad);
	return bad;
}
