#!/usr/bin/env python3
"""bench_report.py: turn the raw results of scripts/bench.sh into JSON,
plots and docs/results.md. Standard library only; the plots are drawn by
gnuplot (Debian's gnuplot-nox, `scripts/deps.sh plot`).

  bench_report.py DIR            JSON and plots for one results folder
  bench_report.py --docs OUT DIR...  also write OUT (docs/results.md) from
                                 the folders DIR... (one section each)
  bench_report.py --check DIR    also verify the folder (the smoke test):
                                 every (bench, impl) at every thread count
                                 with its CPU figures and load1, every
                                 JSON with the load average at start and
                                 end, every plot written and not empty

A results folder (bench/results/<machine>/) holds what bench.sh wrote:
machine.txt, and for each program P that ran, P.csv and P.txt. Throughput
programs (lockfree, buddy, vas) write `bench,impl,threads,repeat,ops,
seconds,ns_per_op,cpu_seconds,cpu_ns_per_op,load1` (older results lack
the last three: their CPU figures are left out, not invented); frag
writes a time series per allocator (see bench/README.md); mem writes
`what,impl,param,units,bytes,per`. Every P.txt has `loadavg: A B C (1, 5,
15 min) at the start` and `... at the end` lines (older ones do not).

Written into DIR:
  P.json                 the machine, the commit, the load average at the
                         start and the end of P ("loadavg"), and for each
                         (bench, impl, threads): every repeat's wall ns/op,
                         the median, min and max, the same for cpu ns/op
                         ("cpu_*"), every repeat's 1-minute load
                         ("load1"), throughput (ops/s, all threads) and
                         scaling efficiency against 1 thread (wall), and
                         cpu_ratio: cpu ns/op at T over cpu ns/op at 1
  P-throughput.png/.svg  throughput against threads, one panel per bench,
                         every implementation (ours and the baselines) a
                         curve, min-max as error bars; points past the
                         online CPUs (oversubscribed) right of a dashed line
  P-efficiency.png/.svg  throughput(T) / (T x throughput(1))
  P-nsop.png/.svg        wall ns per operation (median, min-max)
  P-cpunsop.png/.svg     CPU ns per operation (median, min-max): the
                         figure that survives a loaded host
  frag.png/.svg          the order-9 share of free memory over time
"""
import csv
import json
import os
import re
import statistics
import subprocess
import sys

THROUGHPUT_PROGS = ("lockfree", "buddy", "vas", "kmem")
PLOT_KINDS = ("throughput", "efficiency", "nsop", "cpunsop")
LOAD_RE = re.compile(r"^loadavg: (\S+) (\S+) (\S+) \(1, 5, 15 min\) at the "
                     r"(start|end)$")


def read_machine(d):
    """machine.txt as an ordered list of (key, value); commands kept all."""
    out = []
    path = os.path.join(d, "machine.txt")
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            m = re.match(r"^([a-z][a-z ]*):\s*(.*)$", line.rstrip("\n"))
            if m:
                out.append((m.group(1), m.group(2)))
    return out


def machine_get(machine, key, default=""):
    for k, v in machine:
        if k == key:
            return v
    return default


def online_cpus(machine):
    m = re.match(r"(\d+)", machine_get(machine, "cores", ""))
    return int(m.group(1)) if m else 0


def read_load(d, prog):
    """{"start": [1, 5, 15 min], "end": [...]} from P.txt; {} if none."""
    out = {}
    path = os.path.join(d, prog + ".txt")
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            m = LOAD_RE.match(line.rstrip("\n"))
            if m:
                out[m.group(4)] = [float(x) for x in m.group(1, 2, 3)]
    return out


def read_throughput(path):
    """{(bench, impl): {threads: [(ns, cpu ns or None, load1 or None)]}},
    in file order."""
    series = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["bench"], row["impl"])
            t = int(row["threads"])
            cpu = row.get("cpu_ns_per_op")
            load = row.get("load1")
            series.setdefault(key, {}).setdefault(t, []).append(
                (float(row["ns_per_op"]),
                 float(cpu) if cpu not in (None, "") else None,
                 float(load) if load not in (None, "") else None))
    return series


def summarize(series):
    """Rows of the JSON: medians, min, max (wall and cpu), throughput,
    efficiency."""
    rows = []
    for (bench, impl), by_t in series.items():
        base = cpu_base = None
        for t in sorted(by_t):
            v = [p[0] for p in by_t[t]]
            c = [p[1] for p in by_t[t]]
            c = c if all(x is not None for x in c) else None
            load = [p[2] for p in by_t[t]]
            med = statistics.median(v)
            thr = t * 1e9 / med if med > 0 else 0.0
            cmed = statistics.median(c) if c else None
            if t == 1:
                base = thr
                cpu_base = cmed
            eff = thr / (t * base) if base else None
            rows.append({
                "bench": bench, "impl": impl, "threads": t,
                "ns_per_op": v, "median": med, "min": min(v),
                "max": max(v), "throughput": thr,
                "efficiency": eff,
                "cpu_ns_per_op": c, "cpu_median": cmed,
                "cpu_min": min(c) if c else None,
                "cpu_max": max(c) if c else None,
                "cpu_ratio": (cmed / cpu_base if cmed and cpu_base
                              else None),
                "load1": (load if all(x is not None for x in load)
                          else None),
            })
    return rows


def has_cpu(rows):
    """True if every row has CPU figures (results from before: none)."""
    return bool(rows) and all(r["cpu_median"] is not None for r in rows)


def write_json(d, prog, machine, payload):
    doc = {
        "program": prog,
        "machine": {k: v for k, v in machine if k != "command"},
        "commands": [v for k, v in machine if k == "command"],
        "commit": machine_get(machine, "commit", "unknown"),
    }
    doc.update(payload)
    with open(os.path.join(d, prog + ".json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def gnuplot(script):
    r = subprocess.run(["gnuplot"], input=script, text=True,
                       capture_output=True)
    if r.returncode != 0:
        sys.exit("bench_report.py: gnuplot failed:\n" + r.stderr)


def terminals(base):
    """The two outputs of one figure: (terminal line, file) pairs."""
    return [("set terminal pngcairo noenhanced size {w},{h} font ',9'",
             base + ".png"),
            ("set terminal svg noenhanced size {w},{h} font 'sans,10' "
             "background 'white'", base + ".svg")]


def grid(n):
    cols = min(n, 4)
    return (n + cols - 1) // cols, cols


def value(row, kind):
    """(y, ylow, yhigh) of one point for the figure kind."""
    if kind == "throughput":
        t = row["threads"]
        # A point that did nothing has 0 ns/op (the program's check
        # failed and says so): plot it at 0 rather than divide by it.
        def mops(ns):
            return t * 1e3 / ns if ns > 0 else 0.0
        return (row["throughput"] / 1e6, mops(row["max"]), mops(row["min"]))
    if kind == "nsop":
        return row["median"], row["min"], row["max"]
    if kind == "cpunsop":
        return row["cpu_median"], row["cpu_min"], row["cpu_max"]
    e = row["efficiency"] or 0.0
    return e, e, e


YLABEL = {"throughput": "Mops/s (all threads)",
          "efficiency": "throughput / (T x 1 thread)",
          "nsop": "wall ns per op (thread time / ops)",
          "cpunsop": "CPU ns per op (thread CPU time / ops)"}


def plot_kinds(rows):
    """The figures rows can give: no CPU plot for results without it."""
    return [k for k in PLOT_KINDS if k != "cpunsop" or has_cpu(rows)]


def plot_program(d, prog, rows, cpus):
    benches = list(dict.fromkeys(r["bench"] for r in rows))
    datf = os.path.join(d, prog + "-plot.dat")
    blocks = {}  # (bench, impl) -> index in datf, per kind
    kinds = plot_kinds(rows)
    with open(datf, "w") as f:
        idx = 0
        for kind in kinds:
            for b in benches:
                for impl in dict.fromkeys(r["impl"] for r in rows
                                          if r["bench"] == b):
                    f.write("# %s %s %s\n" % (kind, b, impl))
                    for r in rows:
                        if r["bench"] == b and r["impl"] == impl:
                            y, lo, hi = value(r, kind)
                            f.write("%d %g %g %g\n" % (r["threads"], y,
                                                       lo, hi))
                    f.write("\n\n")
                    blocks[(kind, b, impl)] = idx
                    idx += 1
    tmax = max(r["threads"] for r in rows)
    nr, nc = grid(len(benches))
    for kind in kinds:
        for term, out in terminals(os.path.join(d, "%s-%s" % (prog, kind))):
            s = [term.format(w=330 * nc, h=260 * nr + 30),
                 "set output '%s'" % out,
                 "set multiplot layout %d,%d title '%s: %s (%s)'" %
                 (nr, nc, prog, YLABEL[kind], os.path.basename(d)),
                 "set key top left font ',7' opaque",
                 "set grid", "set xlabel 'threads'",
                 "set xrange [0.8:%g]" % (tmax + 0.2),
                 "set xtics 1" if tmax <= 16 else "set xtics auto"]
            s.append("set logscale y" if kind != "efficiency"
                     else "unset logscale y; set yrange [0:1.3]")
            if 0 < cpus < tmax:
                s.append("set arrow from %g, graph 0 to %g, graph 1 nohead "
                         "dt 2" % (cpus + 0.5, cpus + 0.5))
            for b in benches:
                impls = [k[2] for k in blocks if k[0] == kind and k[1] == b]
                style = ("yerrorlines" if kind != "efficiency"
                         else "linespoints")
                cols = "1:2:3:4" if kind != "efficiency" else "1:2"
                parts = ["'%s' index %d using %s with %s title '%s'" %
                         (datf, blocks[(kind, b, i)], cols, style,
                          i) for i in impls]
                s.append("set title '%s'" % b)
                s.append("plot " + ", ".join(parts))
            s.append("unset multiplot")
            gnuplot("\n".join(s) + "\n")
    os.remove(datf)


def read_frag(path):
    """{impl: [(ops, share), ...]} from the frag CSV (any threads/repeat:
    the first repeat at the fewest threads is plotted)."""
    out = {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return out, rows
    t0 = min(int(r["threads"]) for r in rows)
    r0 = min(int(r["repeat"]) for r in rows)
    for r in rows:
        if int(r["threads"]) == t0 and int(r["repeat"]) == r0:
            out.setdefault(r["impl"], []).append(
                (int(r["ops"]), float(r["share"])))
    return out, rows


def plot_frag(d, series):
    datf = os.path.join(d, "frag-plot.dat")
    with open(datf, "w") as f:
        for impl, pts in series.items():
            f.write("# %s\n" % impl)
            for ops, share in pts:
                f.write("%d %g\n" % (ops, share))
            f.write("\n\n")
    for term, out in terminals(os.path.join(d, "frag")):
        parts = ["'%s' index %d using 1:2 with lines lw 2 title '%s'" %
                 (datf, i, impl)
                 for i, impl in enumerate(series)]
        gnuplot("\n".join([
            term.format(w=640, h=400), "set output '%s'" % out,
            "set title 'share of free memory available as order-9 blocks "
            "(%s)'" % os.path.basename(d),
            "set xlabel 'operations'", "set ylabel 'order-9 share'",
            "set yrange [0:1.05]", "set grid", "set key bottom left",
            "plot " + ", ".join(parts), ""]))
    os.remove(datf)


def process(d):
    """JSON and plots for one folder; returns what the docs need."""
    machine = read_machine(d)
    cpus = online_cpus(machine)
    info = {"dir": d, "machine": machine, "progs": {}, "frag": None,
            "load": {}}
    for prog in THROUGHPUT_PROGS:
        path = os.path.join(d, prog + ".csv")
        if not os.path.exists(path):
            continue
        rows = summarize(read_throughput(path))
        write_json(d, prog, machine, {"loadavg": read_load(d, prog),
                                      "series": rows})
        plot_program(d, prog, rows, cpus)
        info["progs"][prog] = rows
    path = os.path.join(d, "frag.csv")
    if os.path.exists(path):
        series, raw = read_frag(path)
        write_json(d, "frag", machine, {"loadavg": read_load(d, "frag"),
                                        "samples": raw})
        if series:
            plot_frag(d, series)
        info["frag"] = series
    path = os.path.join(d, "mem.csv")
    if os.path.exists(path):
        with open(path, newline="") as f:
            info["mem"] = list(csv.DictReader(f))
        write_json(d, "mem", machine, {"loadavg": read_load(d, "mem"),
                                       "rows": info["mem"]})
    for prog in list(info["progs"]) + ["frag", "mem"]:
        load = read_load(d, prog)
        if load:
            info["load"][prog] = load
    return info


def check(info):
    """The smoke test's verdict: a list of problems (empty: good)."""
    bad = []
    d = info["dir"]
    for prog, rows in info["progs"].items():
        threads = sorted({r["threads"] for r in rows})
        keys = {(r["bench"], r["impl"]) for r in rows}
        have = {(r["bench"], r["impl"], r["threads"]) for r in rows}
        for b, i in sorted(keys):
            for t in threads:
                if (b, i, t) not in have:
                    bad.append("%s: no %s/%s at %d threads" % (prog, b, i, t))
        for r in rows:
            if not (r["cpu_median"] or 0) > 0 or r["load1"] is None:
                bad.append("%s: %s/%s at %d threads: no CPU time or load1"
                           % (prog, r["bench"], r["impl"], r["threads"]))
        for kind in PLOT_KINDS:
            for ext in ("png", "svg"):
                f = os.path.join(d, "%s-%s.%s" % (prog, kind, ext))
                if not os.path.exists(f) or os.path.getsize(f) == 0:
                    bad.append("missing or empty plot " + f)
        with open(os.path.join(d, prog + ".json")) as f:
            doc = json.load(f)
        if len(doc["series"]) != len(rows):
            bad.append(prog + ".json: wrong number of series")
        if any(s.get("cpu_median") is None for s in doc["series"]):
            bad.append(prog + ".json: a series without cpu_median")
    for prog in list(info["progs"]) + [p for p in ("frag", "mem")
                                       if info.get(p) is not None]:
        with open(os.path.join(d, prog + ".json")) as f:
            load = json.load(f).get("loadavg", {})
        if sorted(load) != ["end", "start"] or \
                any(len(v) != 3 for v in load.values()):
            bad.append(prog + ".json: no load average at start and end")
    if info["frag"] is not None:
        for ext in ("png", "svg"):
            f = os.path.join(d, "frag." + ext)
            if not os.path.exists(f) or os.path.getsize(f) == 0:
                bad.append("missing or empty plot " + f)
        for impl, pts in info["frag"].items():
            if any(not 0.0 <= s <= 1.0 for _, s in pts):
                bad.append("frag: a share outside [0, 1] for " + impl)
    if not info["progs"]:
        bad.append(d + ": no throughput results")
    return bad


def main(argv):
    docs, do_check, dirs = None, False, []
    i = 0
    while i < len(argv):
        if argv[i] == "--docs":
            docs = argv[i + 1]
            i += 2
        elif argv[i] == "--check":
            do_check = True
            i += 1
        else:
            dirs.append(argv[i])
            i += 1
    if not dirs:
        sys.exit(__doc__)
    infos = [process(d) for d in dirs]
    if docs:
        import bench_docs
        bench_docs.write(docs, infos)
    if do_check:
        bad = [p for info in infos for p in check(info)]
        for p in bad:
            print("bench_report.py: " + p)
        if bad:
            sys.exit(1)
        print("bench_report.py: every series and plot present")


if __name__ == "__main__":
    main(sys.argv[1:])
