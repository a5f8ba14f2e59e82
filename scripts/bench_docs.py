"""bench_docs.py: docs/results.md from the folders bench_report.py read.

Everything in the page comes from the results folders: the machine from
machine.txt, the load averages from the programs' `loadavg:` lines, the
plots and tables (wall and cpu ns/op) from the CSVs, the targets (met or
not) from the lines the benchmark programs print after their tables,
where each ratio was measured within one run.
"""
import os
import re

MACHINE_KEYS = ("date", "cpu", "cpu id", "cores", "hypervisor", "memory",
                "kernel", "compiler", "build", "commit", "load",
                "load after")
TITLES = {"lockfree": "lockfree/: stack and epoch",
          "buddy": "buddy/: the page-frame allocator",
          "vas": "vaspace/: the address range allocator",
          "kmem": "kmem/: the object allocator"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_RE = re.compile(r"^\s+(.*?)\s{2,}(\S+ ?\S*)\s+\((.*?)\): (met|NOT met)")


def rel(path, docs):
    return os.path.relpath(path, os.path.dirname(os.path.abspath(docs)))


def targets(d, prog):
    """(what, measured, target, met) from P.txt's targets block."""
    path = os.path.join(d, prog + ".txt")
    if not os.path.exists(path):
        return []
    out, inside = [], False
    with open(path) as f:
        for line in f:
            if line.startswith("targets"):
                inside = True
                continue
            m = TARGET_RE.match(line) if inside else None
            if m:
                out.append(m.groups())
    return out


def fmt(x):
    return "%.3g" % x if x < 100 else "%.0f" % x


def cell(p, key):
    """"median (min-max)" of one clock ("" wall, "cpu_" cpu), or "-"."""
    if not p or p[0].get(key + "median") is None:
        return "-"
    r = p[0]
    mk = "median" if key == "" else key + "median"
    return "%s (%s-%s)" % (fmt(r[mk]), fmt(r[key + "min"]),
                           fmt(r[key + "max"]))


def table(rows):
    """bench | impl | wall and cpu ns/op, median (min-max), at each thread
    count (cpu: "-" for results from before it was measured)."""
    threads = sorted({r["threads"] for r in rows})
    head = "| bench | impl | " + " | ".join(
        "%d thr wall | %d thr cpu" % (t, t) for t in threads)
    lines = [head + " |", "|---|---|" + "---:|" * (2 * len(threads))]
    seen = []
    for r in rows:
        if (r["bench"], r["impl"]) not in seen:
            seen.append((r["bench"], r["impl"]))
    for b, i in seen:
        cells = []
        for t in threads:
            p = [r for r in rows if (r["bench"], r["impl"], r["threads"]) ==
                 (b, i, t)]
            cells.append(cell(p, ""))
            cells.append(cell(p, "cpu_"))
        lines.append("| %s | %s | %s |" % (b, i, " | ".join(cells)))
    return lines


def machine_section(info, docs):
    d, m = info["dir"], dict(info["machine"])
    name = os.path.basename(os.path.normpath(d))
    out = ["## Machine `%s`" % name, ""]
    out += ["| | |", "|---|---|"]
    out += ["| %s | %s |" % (k, m[k]) for k in MACHINE_KEYS if k in m]
    cmds = [v for k, v in info["machine"] if k == "command"]
    out += ["", "Commands (from `scripts/bench.sh`):", ""]
    out += ["    " + c for c in cmds]
    out += ["", "Raw data, JSON and the printed tables: [%s](%s)." %
            (rel(d, docs), rel(d, docs)), ""]
    load = info.get("load", {})
    if load:
        out += ["Load average (`/proc/loadavg`, 1, 5 and 15 min) at the "
                "start and the end of each program; the CSVs carry the "
                "1-minute figure after every point (`load1`):", "",
                "| program | start | end |", "|---|---|---|"]
        out += ["| %s | %s | %s |" % (
            p, " ".join("%.2f" % x for x in load[p].get("start", [])),
            " ".join("%.2f" % x for x in load[p].get("end", [])))
            for p in load]
        out.append("")
    tg = (targets(d, "buddy") + targets(d, "vas") + targets(d, "frag") +
          targets(d, "mem") + targets(d, "kmem"))
    if tg:
        out += ["### Targets", "",
                "From the issues (buddy, vaspace, fragmentation, metadata), "
                "measured in this run "
                "(medians; ratios within one run; `cpu`: CPU time, "
                "`wall`: elapsed):", "",
                "| target | measured | wanted | |", "|---|---:|---|---|"]
        out += ["| %s | %s | %s | %s |" % (w, v, t,
                                           "met" if s == "met" else
                                           "**not met**")
                for w, v, t, s in tg]
        out.append("")
    for prog, rows in info["progs"].items():
        out += ["### %s" % TITLES.get(prog, prog), ""]
        for kind in ("throughput", "efficiency", "nsop", "cpunsop"):
            png = os.path.join(d, "%s-%s.png" % (prog, kind))
            svg = os.path.join(d, "%s-%s.svg" % (prog, kind))
            if not os.path.exists(png):
                continue  # cpunsop: not in results from before
            out += ["[![%s %s](%s)](%s)" % (prog, kind, rel(png, docs),
                                            rel(svg, docs)), ""]
        out += ["ns per operation, median of the repeats (min-max): wall "
                "(elapsed) and cpu (the thread's CPU time), both summed "
                "over the threads and divided by the operations:", ""]
        out += table(rows) + [""]
    if info.get("frag"):
        png = os.path.join(d, "frag.png")
        out += ["### Fragmentation", "",
                "[![fragmentation](%s)](%s)" % (rel(png, docs),
                                               rel(os.path.join(
                                                   d, "frag.svg"), docs)),
                "", "| allocator | first | mean | last |",
                "|---|---:|---:|---:|"]
        for impl, pts in info["frag"].items():
            s = [p[1] for p in pts]
            out.append("| %s | %.3f | %.3f | %.3f |" %
                       (impl, s[0], sum(s) / len(s), s[-1]))
        out.append("")
    if info.get("mem"):
        rows = info["mem"]
        cols = list(rows[0].keys())
        out += ["### Memory", "", "| " + " | ".join(cols) + " |",
                "|" + "---|" * len(cols)]
        out += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
        out.append("")
    return out


def write(docs, infos):
    out = ["# Results", "",
           "Generated by `scripts/bench_report.py --docs` from the folders "
           "under `bench/results/` (`make bench` writes them and this "
           "page); do not edit by hand. What each benchmark does, and "
           "how to read ns/op, is in [bench/README.md](%s)." %
           rel(os.path.join(REPO, "bench", "README.md"), docs),
           "", "Throughput is operations per second of all threads "
           "together; scaling efficiency is throughput at T threads over "
           "T times the 1-thread throughput (1.0: perfect). Points past "
           "the machine's online CPUs are oversubscribed (right of the "
           "dashed line). Wall ns/op is elapsed time, cpu ns/op the "
           "threads' own CPU time (`CLOCK_THREAD_CPUTIME_ID`), each summed "
           "over the threads and divided by the operations: on a loaded "
           "host the CPU figure is the one that survives, so read every "
           "result beside its load average. Click a plot for its SVG.",
           ""]
    for info in infos:
        out += machine_section(info, docs)
    with open(docs, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")
