#!/usr/bin/env python3
"""make-seeds.py: write the seed corpora of verify/fuzz/ (corpus/buddy/ and
corpus/vas/): small inputs in the encoding the harnesses read (see the
header comments of fuzz_buddy.c and fuzz_vas.c), one per behaviour worth
starting from, plus a few random ones from a fixed seed. The output is
deterministic; the files are checked in, so this only needs running again
when the encoding changes.

Usage: verify/fuzz/make-seeds.py [OUTDIR]   (default: verify/fuzz/corpus)
"""
import os
import random
import struct
import sys


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


# ---- fuzz_buddy.c ----

def bh(layout, ncpus=1, nocache=0):
    return bytes([layout | (ncpus - 1) << 2 | nocache << 4])


def b_alloc(cpu, order):
    return bytes([0, cpu, order])


def b_below(cpu, order, limit_pfn):
    return bytes([3, cpu, order]) + u16(limit_pfn)


def b_at(cpu, order, pfn, fl=1):
    return bytes([4, cpu, order, fl]) + u16(pfn)


def b_run(cpu, n):
    return bytes([5, cpu]) + u16(n)


def b_free(idx, cpu):
    return bytes([6, idx, cpu])


def b_bad(cpu, k, order, extra=b""):
    return bytes([9, cpu, k, order]) + extra


def b_drain(cpu):
    return bytes([10, cpu])


def b_drain_all(cpu):
    return bytes([11, cpu])


def b_sweep(cpu):
    return bytes([12, cpu])


def b_cache(cpu, on):
    return bytes([13, cpu, on])


def b_null(cpu, order):
    return bytes([14 | 0x10, cpu, order])


def b_frame(pfn, odd=0):
    return bytes([14]) + u16(pfn) + bytes([odd])


def b_check(quiesce, cpu=0):
    return bytes([15 | 0x10, cpu]) if quiesce else bytes([15])


def buddy_seeds():
    s = {}
    for layout in range(3):
        for ncpus in (1, 2, 4):
            body = b"".join(b_alloc(i % ncpus, i % 5) for i in range(12))
            body += b"".join(b_free(0, i % ncpus) for i in range(12))
            s[f"alloc-free-l{layout}-c{ncpus}"] = bh(layout, ncpus) + body
    s["exhaust-tiny"] = bh(1, 2) + b"".join(
        b_alloc(i % 2, 0) for i in range(70)) + b_check(True)
    s["exhaust-tiny-nocache"] = bh(1, 2, 0b11) + b"".join(
        b_alloc(i % 2, i % 3) for i in range(40)) + b_free(3, 1) + \
        b_alloc(0, 5)
    s["stranded-in-cache"] = bh(1, 2) + b_alloc(1, 0) + b_free(0, 1) + \
        b_alloc(0, 6) + b_alloc(0, 6)
    s["alloc-at"] = bh(0, 2) + b"".join(
        b_at(i % 2, o, p) for i, (o, p) in enumerate(
            [(0, 256), (3, 264), (9, 2048), (0, 2559), (4, 2560),
             (2, 1029), (0, 1029), (5, 300), (0, 100)])) + b_check(True)
    s["alloc-at-misaligned"] = bh(2, 1) + b_at(0, 2, 9, 0) + \
        b_at(0, 0, 10, 2) + b_at(0, 1, 0, 4 | 0x30) + b_at(0, 30, 8)
    s["alloc-below"] = bh(0, 3) + b"".join(
        b_below(i % 3, i % 4, lim) for i, lim in enumerate(
            [300, 260, 2100, 0, 0xFFFF, 0x8000 | 1100, 2600])) + \
        b_check(True, 1)
    s["runs"] = bh(0, 2) + b"".join(b_run(i % 2, n) for i, n in enumerate(
        [1, 3, 5, 7, 100, 299, 0x8000, 0x8001, 0x8002, 0x8003])) + \
        b_free(1, 0) + b_free(0, 1) + b_check(True)
    s["bad-free-tail"] = bh(2, 1) + b_alloc(0, 4) + b_bad(0, 0, 0, b"\0\3")
    s["bad-free-order"] = bh(2, 1) + b_alloc(0, 4) + b_bad(0, 0, 2, b"\0\0")
    s["double-free-cached"] = bh(2, 2) + b_alloc(0, 0) + \
        b_bad(0, 1, 0, b"\0\1")
    s["double-free-run"] = bh(0, 1) + b_run(0, 13) + b_bad(0, 5, 0, b"\0\0")
    s["bad-run-count"] = bh(0, 1) + b_run(0, 13) + \
        b_bad(0, 2 | 0x90, 0, b"\0") + b_bad(0, 6 | 0x30, 0, b"\0")
    s["bad-free-free"] = bh(0, 1) + b_bad(0, 3, 0, u16(300)) + \
        b_bad(0, 3 | 8, 1, u16(260)) + b_bad(0, 3, 255, u16(256)) + \
        b_bad(0, 3, 0, u16(5))
    s["null-args"] = bh(0, 2) + b_null(0, 1) + b_null(1, 3)
    s["frames"] = bh(0, 1) + b_alloc(0, 2) + b"".join(
        b_frame(p, p & 1) for p in (0, 256, 257, 1028, 1029, 2559, 2560,
                                    2760, 9000))
    s["cache-toggle"] = bh(0, 3) + b_alloc(0, 0) + b_alloc(1, 1) + \
        b_free(0, 1) + b_cache(1, 0) + b_alloc(1, 0) + b_cache(1, 1) + \
        b_drain(0) + b_drain_all(2) + b_sweep(1) + b_check(False) + \
        b_check(True, 2)
    s["cache-high"] = bh(2, 2) + b"".join(
        b_alloc(0, 0) for _ in range(90)) + b"".join(
        b_free(0, 1) for _ in range(90)) + b_check(True)
    s["merge-across-cpus"] = bh(2, 4) + b"".join(
        b_alloc(i % 4, 0) for i in range(32)) + b"".join(
        b_free(i, 3 - i % 4) for i in range(32)) + b_sweep(0) + \
        b_check(True)
    s["raw-valid"] = bh(3, 2) + bytes([2]) + \
        bytes([0, 3]) + u16(100) + bytes([0, 0]) + u16(37) + \
        bytes([1]) + u16(4000) + u16(513) + b_alloc(0, 5) + b_run(1, 77) + \
        b_check(True)
    s["raw-unsorted"] = bh(3, 1) + bytes([1]) + bytes([1]) + u16(500) + \
        u16(10) + bytes([1]) + u16(100) + u16(10)
    s["raw-unaligned"] = bh(3, 1) + bytes([0]) + bytes([2, 0]) + u16(10)
    s["raw-empty"] = bh(3, 1) + bytes([0]) + bytes([0, 5]) + u16(0)
    s["raw-wraps"] = bh(3, 1) + bytes([0]) + bytes([8 | 0x30, 0]) + u16(1)
    rnd = random.Random(6)
    for i in range(6):
        s[f"random-{i}"] = bytes(rnd.randrange(256)
                                 for _ in range(40 + 40 * i))
    return s


# ---- fuzz_vas.c ----

def vh(shape, nctx=1, cfail=0, keys=0, hw=0, caching=False):
    return bytes([shape | (nctx - 1) << 2 | cfail << 4 |
                  (0x40 if caching else 0), keys, hw])


# After a call that succeeds, the harness reads one byte more: the context
# of its lookups around what the call touched (fv_probe_around).
PROBE = bytes([0])


def v_alloc(ctx, quanta, align=0, best=False, k=1, tag=200, extra=b"",
            ok=None):
    """quanta: a byte for 1-4 (0x00-0x3f) or 1-64 (0x40-0x7f); ok: the
    call succeeds (a probe byte follows), by default unless bad input."""
    k = (k & ~0x04) | (0x04 if best else 0)
    if ok is None:
        ok = k & 3 and not k & 0x10 and align != 255 and k & 0xe0 != 0xe0
    return bytes([0, ctx, k, quanta, align]) + extra + bytes([tag]) + \
        (PROBE if ok else b"")


def v_addr(idx, off=None, raw=None):
    if raw is not None:
        return bytes([0x80, idx]) + u16(raw)
    if off is None:
        return bytes([0, idx])
    return bytes([1, idx]) + u16(off)


def v_alloc_at(ctx, addr, n, tag=200):
    return bytes([4, ctx]) + addr + bytes([1]) + u16(n - 1) + \
        bytes([tag]) + PROBE


def v_free(ctx, j, k=0, args=b""):
    return bytes([6, ctx, j, k]) + args + PROBE


def v_bad_free(ctx, addr, k, extra=b""):
    return bytes([9, ctx]) + addr + bytes([k]) + extra + PROBE


def v_lookup(ctx, addr, k=0, extra=b""):
    return bytes([10, ctx]) + addr + bytes([k]) + extra


def v_iterate(ctx, addr, k, n):
    return bytes([12, ctx]) + addr + bytes([k]) + u16(n)


def v_toggle(ctx):
    return bytes([13, ctx])


def v_fault(k):
    return bytes([14, k])


V_VERIFY = bytes([15])
V_CACHING = bytes([0xcf])  # caching on or off


def vas_seeds():
    s = {}
    for shape in range(3):
        for keys in (0, 1, 14):
            body = b"".join(v_alloc(i % 2, 0x40 | (i * 7 % 64))
                            for i in range(20))
            body += b"".join(v_free(0, (i * 5) % 40, i % 4, u16(i * 3) +
                                    u16(i)) for i in range(20))
            s[f"alloc-free-s{shape}-k{keys}"] = vh(shape, 2, keys=keys) + \
                body + V_VERIFY
    s["best-fit"] = vh(0, 1, keys=0) + b"".join(
        v_alloc(0, 0x40 | q) for q in (10, 3, 20, 5, 30, 7)) + \
        v_free(0, 1) + v_free(0, 5) + v_free(0, 9) + b"".join(
        v_alloc(0, q, best=True) for q in (1, 2, 3)) + V_VERIFY
    s["aligned"] = vh(2, 1, keys=1) + b"".join(
        v_alloc(0, 0x40 | q, align=a, best=bool(q & 1))
        for q, a in ((3, 100), (9, 110), (1, 140), (33, 180), (2, 254),
                     (5, 224), (7, 96))) + V_VERIFY
    s["bad-alloc"] = vh(0, 1) + v_alloc(0, 1, k=0) + \
        v_alloc(0, 1, k=0x10, extra=b"\1") + \
        v_alloc(0, 1, k=0x10, extra=b"\0\3") + \
        v_alloc(0, 1, align=255, extra=b"\5") + v_alloc(0, 1, k=0xe1) + \
        v_alloc(0, 0xc0, extra=u16(65000)) + V_VERIFY
    s["tight-enospc"] = vh(1, 1, keys=0) + b"".join(
        v_alloc(0, 0x40 | 9) for _ in range(9)) + V_VERIFY
    s["alloc-at"] = vh(0, 2, keys=0) + v_alloc_at(0, v_addr(0, 10), 5) + \
        v_alloc_at(1, v_addr(0, 0), 3) + v_alloc_at(0, v_addr(1), 4) + \
        v_alloc_at(0, v_addr(2, 7), 9) + \
        v_alloc_at(1, v_addr(0, raw=1), 2) + V_VERIFY
    s["free-pieces"] = vh(0, 1, keys=0) + v_alloc(0, 0x40 | 40) + \
        v_free(0, 0, 3, u16(10) + u16(5)) + v_free(0, 0, 1, u16(3)) + \
        v_free(0, 0, 2, u16(4)) + v_free(0, 0) + V_VERIFY
    s["bad-free"] = vh(0, 1) + v_alloc(0, 0x40 | 8) + v_alloc(0, 3) + \
        v_bad_free(0, v_addr(0), 1) + v_bad_free(0, v_addr(1), 0) + \
        v_bad_free(0, v_addr(0, 2), 8, b"\7") + \
        v_bad_free(0, v_addr(0), 0x10) + v_bad_free(0, v_addr(0), 0x30) + \
        v_bad_free(0, v_addr(0), 0xc0) + v_bad_free(0, v_addr(0), 0xe0) + \
        V_VERIFY
    s["lookups"] = vh(2, 2) + v_alloc(0, 0x40 | 12) + v_alloc(1, 2) + \
        v_lookup(0, v_addr(0)) + v_lookup(1, v_addr(1), 1) + \
        v_lookup(0, v_addr(0, raw=3), 2, u64(0)) + \
        v_lookup(1, v_addr(2), 0xfc) + v_lookup(0, v_addr(0), 2, u64(-1))
    s["iterate"] = vh(0, 1, keys=0) + b"".join(
        v_alloc(0, i) for i in range(10)) + v_free(0, 3) + v_free(0, 5) + \
        v_iterate(0, v_addr(2), 0, 100) + v_iterate(0, v_addr(0), 0x40, 9) + \
        v_iterate(0, v_addr(4), 1, 0) + v_iterate(0, v_addr(0, raw=0), 0, 30)
    s["contexts"] = vh(0, 4, keys=0) + v_alloc(1, 5) + v_toggle(1) + \
        v_alloc(1, 5) + v_lookup(1, v_addr(0)) + v_free(1, 0) + \
        v_iterate(1, v_addr(0), 0, 4) + v_toggle(1) + v_free(1, 0) + \
        v_toggle(0) + v_toggle(2) + v_toggle(3) + V_VERIFY + v_toggle(2)
    s["faults"] = vh(0, 1, keys=0, hw=0) + b"".join(
        v_fault(i) + v_alloc(0, 0x40 | i) + v_free(0, i, 1, u16(1))
        for i in range(12)) + V_VERIFY
    s["retire-high-water"] = vh(0, 2, keys=0, hw=0) + b"".join(
        v_alloc(i % 2, 0) for i in range(40)) + b"".join(
        v_free(i % 2, 2 * i) for i in range(40)) + v_toggle(1) + V_VERIFY
    for k in (1, 2, 3):
        s[f"create-fault-{k}"] = vh(0, 1, cfail=k) + v_alloc(0, 1)
    s["raw-valid"] = vh(3, 1, keys=5) + bytes([12]) + u64(0x40000000) + \
        u32(5000) + v_alloc(0, 0x40 | 9) + v_alloc(0, 0xc0, extra=u16(6000))
    s["raw-huge"] = vh(3, 1, keys=160) + bytes([20]) + u64(1 << 40) + \
        u32(0xFFFFFFFF) + v_alloc(0, 0xc0, extra=u16(999), align=130)
    s["raw-bad-quantum"] = vh(3, 1, keys=4) + bytes([0x40 | 3]) + \
        u64(0) + u32(10)
    s["raw-zero-quantum"] = vh(3, 1, keys=4) + bytes([0x80]) + u64(0) + \
        u32(10)
    s["raw-misaligned"] = vh(3, 1, keys=4) + bytes([0x20 | 12]) + u64(0) + \
        u32(10)
    s["raw-wraps"] = vh(3, 1, keys=4) + bytes([12]) + u64(-4096 * 5) + \
        u32(10)
    s["raw-bad-keys"] = vh(3, 1, keys=2) + bytes([12]) + u64(0) + u32(10)
    s["raw-too-many-quanta"] = vh(3, 1, keys=4) + bytes([0x10]) + u64(0) + \
        u32(0) + u64(1 << 32)
    rnd = random.Random(6)
    for i in range(6):
        s[f"random-{i}"] = bytes([i & 3, 3, 2]) + bytes(
            rnd.randrange(256) for _ in range(40 + 60 * i))
    # The mmap-grade calls (opcode 15 + 16 k: map, replace, unmap,
    # protect, find), among allocations, frees and lookups, random args.
    rnd = random.Random(16)
    for i in range(6):
        body = b""
        for _ in range(120):
            op = rnd.choice((0x1f, 0x2f, 0x3f, 0x4f, 0x5f)) \
                if rnd.random() < 0.6 else rnd.choice((0, 4, 6, 10, 15))
            body += bytes([op]) + bytes(rnd.randrange(256) for _ in range(8))
        s[f"mmap-{i}"] = bytes([i % 3, 3 + i, i % 4]) + body + V_VERIFY
    s.update(vas_caching_seeds())
    return s


def vas_caching_seeds():
    """Per-context caching (header bit 6, 0xcf toggles it)."""
    s = {}
    # Small allocations (leaf-local once a reservation is taken), whole
    # frees (cached), allocations again (reused), on 2-3 contexts; then
    # off (everything returned), exact placement, on again.
    for keys in (0, 1, 4):
        body = b"".join(v_alloc(i % 3, i % 4, best=bool(i & 4))
                        for i in range(24))
        body += b"".join(v_free(i % 3, (i * 7) % 30) for i in range(12))
        body += v_lookup(0, v_addr(3)) + v_iterate(1, v_addr(2), 0, 40)
        body += b"".join(v_alloc(i % 3, i % 4) for i in range(12))
        body += V_VERIFY + V_CACHING + b"".join(
            v_alloc(0, i % 4) for i in range(6)) + V_VERIFY + V_CACHING
        body += b"".join(v_free(i % 2, i * 3) for i in range(8)) + \
            b"".join(v_alloc(1, 0x40 | 2) for _ in range(4)) + V_VERIFY
        s[f"caching-small-k{keys}"] = vh(0, 3, keys=keys,
                                         caching=True) + body
    # Off at the start, on by the toggle, a tight region: ENOSPC only
    # after the caches are drained.
    s["caching-enospc"] = vh(1, 2, keys=0) + V_CACHING + b"".join(
        v_alloc(i % 2, 1) for i in range(20)) + b"".join(
        v_free(i % 2, 2 * i) for i in range(10)) + b"".join(
        v_alloc(0, 0x40 | 9) for _ in range(6)) + V_VERIFY
    # A failing source while the caches are returned (alloc_at over held
    # space, caching off: ENOMEM, caching still on).
    s["caching-faults"] = vh(0, 2, keys=0, hw=0, caching=True) + b"".join(
        v_alloc(i % 2, 0) for i in range(16)) + b"".join(
        v_free(i % 2, 2 * i) for i in range(8)) + v_fault(0) + \
        V_CACHING + v_fault(1) + v_alloc_at(0, v_addr(3), 2) + \
        v_fault(2) + V_CACHING + V_VERIFY + V_CACHING + V_CACHING
    # Contexts unregistered while they hold ranges, registered again.
    s["caching-contexts"] = vh(0, 4, keys=0, caching=True) + b"".join(
        v_alloc(i % 4, 1) for i in range(12)) + b"".join(
        v_free(i % 4, i) for i in range(6)) + v_toggle(1) + v_toggle(2) + \
        v_alloc(0, 0x40 | 30) + V_VERIFY + v_toggle(1) + v_alloc(1, 1) + \
        V_CACHING + V_VERIFY
    # The mmap-grade calls among small allocations and frees, caching
    # toggled now and then.
    rnd = random.Random(26)
    for i in range(4):
        body = b""
        for _ in range(120):
            r = rnd.random()
            if r < 0.03:
                body += V_CACHING
                continue
            op = rnd.choice((0x1f, 0x2f, 0x3f, 0x4f, 0x5f)) \
                if r < 0.4 else rnd.choice((0, 1, 6, 7, 10, 12))
            body += bytes([op]) + bytes(rnd.randrange(256) for _ in range(8))
        s[f"caching-mmap-{i}"] = bytes([0x40 | i % 3, 3 + i, i % 4]) + \
            body + V_VERIFY
    return s


def write(outdir, name, seeds):
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if not f.startswith("regress-"):  # crash inputs kept by hand
            os.remove(os.path.join(d, f))
    for i, (k, v) in enumerate(sorted(seeds.items())):
        with open(os.path.join(d, f"{i:02d}-{k}"), "wb") as fp:
            fp.write(v)
    print(f"{d}: {len(seeds)} seeds")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here,
                                                                "corpus")
    write(outdir, "buddy", buddy_seeds())
    write(outdir, "vas", vas_seeds())


if __name__ == "__main__":
    main()
