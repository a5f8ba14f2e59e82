#!/usr/bin/env python3
"""bench_report.py: turn the raw results of scripts/bench.sh into plots
and docs/results.md. Standard library only; the plots are drawn by gnuplot
(Debian's gnuplot-nox, `scripts/deps.sh plot`).

  bench_report.py DIR                plots for one results folder
  bench_report.py --docs OUT DIR...  also write OUT (docs/results.md) from
                                     bench/results-template.md, filled
                                     from the folders DIR... (the first
                                     is the one the text is about)
  bench_report.py --check DIR        also verify the folder (the smoke
                                     test): every (bench, impl) at every
                                     thread count with its CPU figures
                                     and load1, every plot written and not
                                     empty, every share in [0, 1], every
                                     latency row in order

A results folder (bench/results/<machine>/) holds what bench.sh wrote:
machine.txt, and for each program P that ran, P.csv (the data: one row
per run, nothing else repeats it) and P.txt (what P printed: tables,
targets, `loadavg: A B C (1, 5, 15 min) at the start` and `... at the
end`). Throughput programs (lockfree, buddy, vas) write `bench,impl,
threads,repeat,ops,seconds,ns_per_op,cpu_seconds,cpu_ns_per_op,load1`;
frag a time series per allocator and repeat; latency one row of
percentiles per (bench, impl, scenario, op, repeat); mem
`what,impl,param,units,bytes,per` (bench/README.md).

Every figure is a median over the repeats with its distribution-free 95%
confidence interval (the order statistics that bench_median_ci() in
bench/bench_harness.c picks; min and max below 6 repeats). Plots, PNG
only, written into DIR:
  P-throughput.png  Mops/s of all threads against threads, one panel per
                    bench, every implementation a curve
  P-cpu.png         CPU ns per operation (the thread's own CPU time / its
                    operations): the figure that survives a loaded host
  frag.png          the order-9 share of free memory as the workload runs:
                    the median over the repeats (seeds) and the band from
                    their minimum to their maximum, one panel per thread
                    count
  latency.png       p50, p99, p99.9 per operation, alone and with writers
A y axis is linear unless the values in a panel span more than a factor
of 10; points past the online CPUs (oversubscribed) lie right of a dashed
line.
"""
import csv
import math
import os
import re
import statistics
import subprocess
import sys

THROUGHPUT_PROGS = ("lockfree", "buddy", "vas", "kmem")
PLOT_KINDS = ("throughput", "cpu")
LOAD_RE = re.compile(r"^loadavg: (\S+) (\S+) (\S+) \(1, 5, 15 min\) at the "
                     r"(start|end)$")


def ci95(v):
    """(lo, hi, True): the distribution-free 95% interval of the median of
    v; (min, max, False) below 6 values (bench_median_ci's rule)."""
    w = sorted(v)
    n = len(w)
    if n < 6:
        return w[0], w[-1], False
    p, cum, j = 0.5 ** n, 0.0, 0
    for i in range(n):
        cum += p
        if cum > 0.025:
            break
        j = i + 1
        p = p * (n - i) / (i + 1)
    return w[j - 1], w[n - j], True


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
    """One row per (bench, impl, threads): medians and 95% intervals of
    wall and CPU ns/op, throughput (all threads) with its interval."""
    rows = []
    for (bench, impl), by_t in series.items():
        for t in sorted(by_t):
            v = [p[0] for p in by_t[t]]
            c = [p[1] for p in by_t[t]]
            c = c if all(x is not None for x in c) else None
            load = [p[2] for p in by_t[t]]
            med = statistics.median(v)
            lo, hi, _ = ci95(v)

            def mops(ns):
                return t * 1e3 / ns if ns > 0 else 0.0
            row = {"bench": bench, "impl": impl, "threads": t, "n": len(v),
                   "median": med, "lo": lo, "hi": hi,
                   "throughput": mops(med), "thr_lo": mops(hi),
                   "thr_hi": mops(lo), "cpu_median": None,
                   "load1": (load if all(x is not None for x in load)
                             else None)}
            if c:
                clo, chi, _ = ci95(c)
                row.update(cpu_median=statistics.median(c), cpu_lo=clo,
                           cpu_hi=chi)
            rows.append(row)
    return rows


def has_cpu(rows):
    return bool(rows) and all(r["cpu_median"] is not None for r in rows)


def gnuplot(script):
    r = subprocess.run(["gnuplot"], input=script, text=True,
                       capture_output=True)
    if r.returncode != 0:
        sys.exit("bench_report.py: gnuplot failed:\n" + r.stderr)


def terminal(w, h):
    return "set terminal pngcairo noenhanced size %d,%d font ',9'" % (w, h)


def grid(n, maxcols=3):
    cols = min(n, maxcols)
    return (n + cols - 1) // cols, cols


def yscale(values):
    """'set logscale y' if the positive values span more than 10x, else a
    linear axis from 0."""
    pos = [v for v in values if v > 0]
    if pos and max(pos) > 10 * min(pos):
        return "set logscale y; set yrange [*:*]"
    return "unset logscale y; set yrange [0:*]"


def value(row, kind):
    """(y, ylow, yhigh) of one point for the figure kind."""
    if kind == "throughput":
        return row["throughput"], row["thr_lo"], row["thr_hi"]
    return row["cpu_median"], row["cpu_lo"], row["cpu_hi"]


YLABEL = {"throughput": "Mops/s, all threads (wall)",
          "cpu": "CPU ns per operation"}


def plot_program(d, prog, rows, cpus):
    kinds = [k for k in PLOT_KINDS if k != "cpu" or has_cpu(rows)]
    benches = list(dict.fromkeys(r["bench"] for r in rows))
    tmax = max(r["threads"] for r in rows)
    nr, nc = grid(len(benches))
    for kind in kinds:
        datf = os.path.join(d, "%s-%s.dat" % (prog, kind))
        s = [terminal(420 * nc, 330 * nr + 40),
             "set output '%s'" % os.path.join(d, "%s-%s.png" % (prog, kind)),
             "set multiplot layout %d,%d title '%s: %s against threads; "
             "median and 95%% interval over the repeats (%s)'" %
             (nr, nc, prog, YLABEL[kind], os.path.basename(d)),
             "set key below horizontal maxcols 3 font ',8'", "set grid",
             "set xrange [0.8:%g]" % (tmax + 0.2),
             "set xtics 1" if tmax <= 16 else "set xtics auto"]
        if 0 < cpus < tmax:
            s.append("set arrow 1 from %g, graph 0 to %g, graph 1 nohead "
                     "dt 2" % (cpus + 0.5, cpus + 0.5))
        with open(datf, "w") as f:
            idx = 0
            for b in benches:
                impls = list(dict.fromkeys(r["impl"] for r in rows
                                           if r["bench"] == b))
                ys, parts = [], []
                for impl in impls:
                    f.write("# %s %s\n" % (b, impl))
                    for r in rows:
                        if r["bench"] == b and r["impl"] == impl:
                            y, lo, hi = value(r, kind)
                            ys += [y, lo, hi]
                            f.write("%d %g %g %g\n" % (r["threads"], y,
                                                       lo, hi))
                    f.write("\n\n")
                    parts.append("'%s' index %d using 1:2:3:4 with "
                                 "yerrorlines lw 2 title '%s'" %
                                 (datf, idx, impl))
                    idx += 1
                s += [yscale(ys), "set title '%s'" % b,
                      "plot " + ", ".join(parts)]
        s.append("unset multiplot")
        gnuplot("\n".join(s) + "\n")
        os.remove(datf)


def read_frag(path):
    """{(impl, threads): {sample: (ops, [share per repeat])}}"""
    out = {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        key = (r["impl"], int(r["threads"]))
        smp = out.setdefault(key, {}).setdefault(int(r["sample"]),
                                                 [int(r["ops"]), []])
        smp[1].append(float(r["share"]))
    return out


def plot_frag(d, frag):
    threads = sorted({t for _, t in frag})
    impls = list(dict.fromkeys(i for i, _ in frag))
    datf = os.path.join(d, "frag.dat")
    s = [terminal(520 * len(threads), 420),
         "set output '%s'" % os.path.join(d, "frag.png"),
         "set multiplot layout 1,%d title 'share of free memory in order-9 "
         "blocks as the workload runs: median over the seeds, band from "
         "min to max (%s)'" % (len(threads), os.path.basename(d)),
         "set xlabel 'free + alloc replacements (millions)'",
         "set ylabel 'order-9 share'", "set grid",
         "set key inside bottom right vertical opaque",
         "set style fill transparent solid 0.2 noborder"]
    idx = 0
    with open(datf, "w") as f:
        for t in threads:
            parts, ys = [], []
            for n, impl in enumerate(impls):
                smp = frag.get((impl, t))
                if not smp:
                    continue
                f.write("# %s %d\n" % (impl, t))
                for k in sorted(smp):
                    ops, sh = smp[k]
                    ys += sh
                    f.write("%g %g %g %g\n" % (ops / 1e6,
                                               statistics.median(sh),
                                               min(sh), max(sh)))
                f.write("\n\n")
                parts.append("'%s' index %d using 1:3:4 with filledcurves "
                             "lc %d notitle" % (datf, idx, n + 1))
                parts.append("'%s' index %d using 1:2 with lines lw 2 lc "
                             "%d title '%s'" % (datf, idx, n + 1, impl))
                idx += 1
            lo = min(ys) if ys else 0
            s += ["set yrange [%g:1.0]" % max(0.0, math.floor(lo * 20) / 20
                                              - 0.1),
                  "set title '%d thread%s'" % (t, "" if t == 1 else "s"),
                  "plot " + ", ".join(parts)]
    s.append("unset multiplot")
    gnuplot("\n".join(s) + "\n")
    os.remove(datf)


LAT_OPS = (("buddy", "alloc"), ("buddy", "free"), ("vas", "lookup"),
           ("vas", "alloc"), ("vas", "free"))


def read_latency(path):
    """{(bench, op, impl, scenario): {"p50": [...], ...}} per repeat."""
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            k = (r["bench"], r["op"], r["impl"], r["scenario"])
            e = out.setdefault(k, {"p50": [], "p99": [], "p999": [],
                                   "max": [], "samples": [],
                                   "writer_ops": []})
            e["p50"].append(float(r["p50_ns"]))
            e["p99"].append(float(r["p99_ns"]))
            e["p999"].append(float(r["p999_ns"]))
            e["max"].append(float(r["max_ns"]))
            e["samples"].append(int(r["samples"]))
            e["writer_ops"].append(int(r["writer_ops"]))
    return out


def plot_latency(d, lat):
    panels = [p for p in LAT_OPS if any(k[:2] == p for k in lat)]
    nr, nc = grid(len(panels))
    datf = os.path.join(d, "latency.dat")
    s = [terminal(460 * nc, 360 * nr + 40),
         "set output '%s'" % os.path.join(d, "latency.png"),
         "set multiplot layout %d,%d title 'latency of one operation, ns: "
         "median over the repeats of p50, p99 and p99.9 (bar: 95%% "
         "interval of p99.9), alone and while other threads write (%s)'" %
         (nr, nc, os.path.basename(d)),
         "set grid ytics", "set key below", "set logscale y",
         "set xtics rotate by -30 font ',8'", "set bars 2",
         "set offsets 0.5, 0.5, 0, 0"]
    idx = 0
    with open(datf, "w") as f:
        for b, op in panels:
            keys = [k for k in lat if k[:2] == (b, op)]
            low = min(min(lat[k]["p50"]) for k in keys)
            s.append("set yrange [%g:*]" %
                     10 ** math.floor(math.log10(max(low * 0.8, 1e-3))))
            f.write("# %s %s\n" % (b, op))
            for x, k in enumerate(keys):
                e = lat[k]
                lo, hi, _ = ci95(e["p999"])
                f.write("%d \"%s %s\" %g %g %g %g %g\n" % (
                    x, k[2], k[3], statistics.median(e["p50"]),
                    statistics.median(e["p99"]),
                    statistics.median(e["p999"]), lo, hi))
            f.write("\n\n")
            s += ["set title '%s %s'" % (b, op),
                  "plot '%s' index %d using 1:3:xtic(2) with points pt 7 "
                  "ps 1.2 title 'p50', '' index %d using 1:4 with points "
                  "pt 9 ps 1.2 title 'p99', '' index %d using 1:5:6:7 with "
                  "yerrorbars pt 5 ps 1.2 title 'p99.9'" %
                  (datf, idx, idx, idx)]
            idx += 1
    s.append("unset multiplot")
    gnuplot("\n".join(s) + "\n")
    os.remove(datf)


def process(d):
    """Plots for one folder; returns what the docs and the check need."""
    machine = read_machine(d)
    cpus = online_cpus(machine)
    info = {"dir": d, "machine": machine, "progs": {}, "frag": None,
            "latency": None, "mem": None, "load": {}}
    for prog in THROUGHPUT_PROGS:
        path = os.path.join(d, prog + ".csv")
        if not os.path.exists(path):
            continue
        rows = summarize(read_throughput(path))
        plot_program(d, prog, rows, cpus)
        info["progs"][prog] = rows
    path = os.path.join(d, "frag.csv")
    if os.path.exists(path):
        info["frag"] = read_frag(path)
        if info["frag"]:
            plot_frag(d, info["frag"])
    path = os.path.join(d, "latency.csv")
    if os.path.exists(path):
        info["latency"] = read_latency(path)
        if info["latency"]:
            plot_latency(d, info["latency"])
    path = os.path.join(d, "mem.csv")
    if os.path.exists(path):
        with open(path, newline="") as f:
            info["mem"] = list(csv.DictReader(f))
    for prog in list(info["progs"]) + ["frag", "latency", "mem"]:
        load = read_load(d, prog)
        if load:
            info["load"][prog] = load
    return info


def check(info):
    """The smoke test's verdict: a list of problems (empty: good)."""
    bad = []
    d = info["dir"]

    def plot_ok(name):
        f = os.path.join(d, name)
        if not os.path.exists(f) or os.path.getsize(f) == 0:
            bad.append("missing or empty plot " + f)
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
            plot_ok("%s-%s.png" % (prog, kind))
    progs = list(info["progs"]) + [p for p in ("frag", "latency", "mem")
                                   if info.get(p)]
    for prog in progs:
        load = info["load"].get(prog, {})
        if sorted(load) != ["end", "start"]:
            bad.append(prog + ".txt: no load average at start and end")
    if info["frag"]:
        plot_ok("frag.png")
        for (impl, t), smp in info["frag"].items():
            if any(not 0.0 <= s <= 1.0 for _, sh in smp.values()
                   for s in sh):
                bad.append("frag: a share outside [0, 1] for " + impl)
    if info["latency"]:
        plot_ok("latency.png")
        for k, e in info["latency"].items():
            for i in range(len(e["p50"])):
                if not (0 <= e["p50"][i] <= e["p99"][i] <= e["p999"][i]
                        <= e["max"][i]) or e["samples"][i] <= 0:
                    bad.append("latency: %s out of order" % "/".join(k))
    if not info["progs"]:
        bad.append(d + ": no throughput results")
    for f in os.listdir(d):
        if f.endswith((".json", ".svg", ".dat")):
            bad.append("%s: %s: only CSV, TXT and PNG belong here" % (d, f))
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
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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
