#!/usr/bin/env python3
"""coh_report.py: the plots and the validation table of the coherence
accounting mode (bench_coherence; README.md in this folder). Standard
library only; gnuplot draws the plots (PNG).

  coh_report.py [--timed TIMED_DIR] [--docs RESULTS_MD] DIR

DIR holds coherence.csv (bench_coherence --csv) and, if it was measured
there, coherence-latency.csv (bench_pingpong --csv). Written into DIR:

  coherence-P.png         coherence misses per operation (line transfers +
                          upgrades) against logical CPUs, one panel per
                          workload, every implementation a curve; the right
                          axis reads the same curves as the estimated
                          time per operation at the run's line latency
  coherence-sim-P.png     the simulated time per operation (all CPUs'
                          clocks / ops) against logical CPUs
                          (P: buddy, vas, lockfree, kmem)
  coherence-validation.md at 2 CPUs, the counts against the 2-thread CPU
                          time slowdowns of TIMED_DIR's buddy.csv, vas.csv,
                          lockfree.csv and kmem.csv (the timed benchmarks'
                          medians):
                          per workload, whether the implementations come in
                          the same order (predicted ties, within TIE_NS,
                          in any measured order), and the ratios (not with --docs:
                          the table goes into RESULTS_MD instead)

--docs RESULTS_MD replaces the part of RESULTS_MD between the lines
"<!-- coherence: begin -->" and "<!-- coherence: end -->" (appended if
absent) with DIR's coherence-summary.md, which is written by hand beside
the data (the analysis; its links are relative to docs/), followed by the
validation table.
"""
import csv
import os
import statistics
import subprocess
import sys

BEGIN = "<!-- coherence: begin -->"
END = "<!-- coherence: end -->"
PANELS = {
    "buddy": ["repeat", "bulk", "cross", "mixed", "huge"],
    "vas": ["lookup_1e4", "mix90_1e4", "mix50_1e4"],
    "lockfree": ["stack", "epoch", "epoch_retire", "epoch_sync"],
    "kmem": ["pair", "threadtest", "prodcons", "falseshare"],
}


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def series(rows, prog, col):
    """{bench: {impl: [(cpus, value)]}} in the CSV's order."""
    out = {}
    for r in rows:
        if r["prog"] != prog:
            continue
        b = out.setdefault(r["bench"], {})
        b.setdefault(r["impl"], []).append((int(r["cpus"]), float(r[col])))
    return out


def gnuplot(script):
    r = subprocess.run(["gnuplot"], input=script, text=True,
                       capture_output=True)
    if r.returncode != 0:
        sys.exit("coh_report.py: gnuplot failed:\n" + r.stderr)


# What each figure shows: the column, its axis, the file, the title.
FIGURES = [
    ("misses_per_op", "coherence misses / op", "coherence-%s.png",
     "%s: coherence misses (line transfers + upgrades) per operation"),
    ("sim_ns_per_op", "simulated ns / op (all CPUs)", "coherence-sim-%s.png",
     "%s: simulated time per operation, all CPUs' clocks / operations"),
]
COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e",
           "#17becf", "#000000", "#8c564b"]
WHAT = {
    "buddy": "buddy allocators, one op = alloc + free",
    "vas": "range allocators, 10^4 ranges",
    "lockfree": "stack: pop + push; epoch: enter + exit; epoch_retire: "
                "one retire; epoch_sync: one wait",
    "kmem": "object allocators; pair: alloc + free, the others: one object",
}


def plot(d, prog, rows, line_ns, fig):
    col, ylabel, fname, title = fig
    data = series(rows, prog, col)
    benches = [b for b in PANELS[prog] if b in data]
    if not benches:
        return None
    impls = []
    for b in benches:
        for impl in data[b]:
            if impl not in impls:
                impls.append(impl)
    dat = os.path.join(d, "coherence-%s-%s.dat" % (prog, col))
    index = {}
    with open(dat, "w") as f:
        for b in benches:
            for impl, pts in data[b].items():
                index[(b, impl)] = len(index)
                f.write("# %s %s\n" % (b, impl))
                for n, y in pts:
                    f.write("%d %g\n" % (n, y))
                f.write("\n\n")
    slots = len(benches) + 1  # the last slot holds the legend
    cols = slots if slots <= 4 else 3
    nrows = (slots + cols - 1) // cols
    w, h = 420 * cols, 340 * nrows + 50
    out = os.path.join(d, fname % prog)
    s = ["set terminal pngcairo noenhanced size %d,%d font ',9'" % (w, h),
         "set output '%s'" % out,
         "set multiplot layout %d,%d title \"%s (%s; line latency %.0f ns)\""
         % (nrows, cols, title % prog, WHAT[prog], line_ns),
         "set xrange [0:66]", "set xtics (1, 8, 16, 24, 32, 40, 48, 56, 64)",
         "set xlabel 'logical CPUs'", "set ylabel '%s'" % ylabel,
         "set yrange [0:*]", "set grid", "unset key"]
    if col == "misses_per_op":
        s += ["set ytics nomirror", "set y2tics",
              "set link y2 via y*%g inverse y/%g" % (line_ns, line_ns),
              "set y2label 'misses x latency, ns / op'",
              "set format y2 '%.0f'"]
    # Curves may lie on each other (kmem_cache and kmalloc, the two
    # epochs at 0): within a panel each later curve is drawn thinner and
    # with smaller points, so the one beneath still shows. A colour and a
    # point type per implementation; no yellow on white.
    for k, impl in enumerate(impls):
        s.append("set style line %d lw 2 pt %d ps 1 lc rgb '%s'"
                 % (k + 1, 5 + 2 * k, COLOURS[k % len(COLOURS)]))
    for b in benches:
        s.append("set title '%s'" % b)
        parts = ["'%s' index %d using 1:2 with linespoints ls %d lw %.1f "
                 "ps %.1f" % (dat, index[(b, impl)], impls.index(impl) + 1,
                              max(1.2, 3.6 - 1.2 * j), max(0.6, 1.4 - 0.4 * j))
                 for j, impl in enumerate(data[b])]
        s.append("plot " + ", ".join(parts))
    # The legend, alone in the last slot: it covers no data.
    s += ["unset title", "unset xlabel", "unset ylabel", "unset y2label",
          "unset tics", "unset border", "unset grid", "unset y2tics",
          "set key center center vertical box",
          "set xrange [0:1]", "set yrange [0:1]",
          "plot " + ", ".join("NaN with linespoints ls %d title '%s'"
                              % (k + 1, impl) for k, impl in enumerate(impls)),
          "unset multiplot"]
    gnuplot("\n".join(s) + "\n")
    os.remove(dat)
    return out


def timed_medians(timed_dir):
    """{(prog, bench, impl, threads): median cpu ns/op}."""
    out = {}
    for prog in PANELS:
        path = os.path.join(timed_dir, prog + ".csv")
        if not os.path.exists(path):
            continue
        acc = {}
        for r in read_rows(path):
            if r.get("cpu_ns_per_op", "") in ("", None):
                continue
            key = (prog, r["bench"], r["impl"], int(r["threads"]))
            acc.setdefault(key, []).append(float(r["cpu_ns_per_op"]))
        for k, v in acc.items():
            out[k] = statistics.median(v)
    return out


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0.0] * len(values)
    for pos, i in enumerate(order):
        r[i] = float(pos)
    return r


def spearman(a, b):
    if len(a) < 3:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return num / den if den else float("nan")


# Predictions closer than these are a tie: the model does not order them
# (1 ns: 1/80 of a miss per operation; 2% of a simulated 2/1 ratio).
TIE_NS = 1.0
TIE_RATIO = 0.02


def follows(measured, predicted, tie):
    """True if the measured order (cheapest first) puts no implementation
    before one that the model predicts cheaper by more than tie."""
    return all(predicted[a] <= predicted[b] + tie
               for k, a in enumerate(measured) for b in measured[k + 1:])


def order_text(predicted, tie):
    """The predicted order, cheapest first, ties joined by '='."""
    names = sorted(predicted, key=lambda n: predicted[n])
    out = names[:1]
    for prev, n in zip(names, names[1:]):
        out.append(("= " if predicted[n] - predicted[prev] <= tie else "< ")
                   + n)
    return " ".join(out)


def validation(rows, timed, line_ns):
    """The 2-CPU table (markdown lines) and a one-line summary."""
    by = {(r["prog"], r["bench"], r["impl"], int(r["cpus"])): r for r in rows}
    lines = ["| workload | impl | misses/op | remote RMW/op | predicted +ns "
             "| sim ns 1 | sim ns 2 | cpu ns 1 thr | cpu ns 2 thr "
             "| measured +ns | predicted 2/1 | sim 2/1 | measured 2/1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    groups = {}
    for (prog, bench, impl, n), r in by.items():
        if n != 2 or (prog, bench, impl, 1) not in by:
            continue
        c1, c2 = timed.get((prog, bench, impl, 1)), timed.get((prog, bench, impl, 2))
        if c1 is None or c2 is None:
            continue
        pred = float(r["misses_per_op"]) * line_ns
        s1 = float(by[(prog, bench, impl, 1)]["sim_ns_per_op"])
        s2 = float(r["sim_ns_per_op"])
        groups.setdefault((prog, bench), []).append(
            (impl, float(r["misses_per_op"]), float(r["rmw_remote_per_op"]),
             pred, c1, c2, s1, s2))
    agree, sim_agree, ties, total, all_pred, all_meas = 0, 0, 0, 0, [], []
    all_sim, all_ratio = [], []
    verdicts = []
    for (prog, bench), items in sorted(groups.items()):
        for impl, m, rr, pred, c1, c2, s1, s2 in items:
            lines.append("| %s | %s | %.2f | %.2f | %.0f | %.1f | %.1f | %.1f "
                         "| %.1f | %.0f | %.2f | %.2f | %.2f |"
                         % (bench, impl, m, rr, pred, s1, s2, c1, c2, c2 - c1,
                            (c1 + pred) / c1, s2 / s1, c2 / c1))
            all_pred.append(pred)
            all_meas.append(c2 - c1)
            all_sim.append(s2 / s1)
            all_ratio.append(c2 / c1)
        if len(items) >= 2:
            total += 1
            pred_of = {i[0]: i[3] for i in items}
            sim_of = {i[0]: i[7] / i[6] for i in items}
            mo = [i[0] for i in sorted(items, key=lambda i: i[5] - i[4])]
            ro = [i[0] for i in sorted(items, key=lambda i: i[5] / i[4])]
            same = follows(mo, pred_of, TIE_NS)
            # Same only thanks to a tie: not in strictly increasing
            # predicted order (equal predictions included).
            tied = same and not follows(mo, pred_of, -1e-9)
            agree += same
            ties += tied
            sim_agree += follows(ro, sim_of, TIE_RATIO)
            verdicts.append("| %s | %s | %s | %s |" % (
                bench, order_text(pred_of, TIE_NS), " < ".join(mo),
                "same up to a tie" if tied else
                "same" if same else "differs"))
    rho = spearman(all_pred, all_meas)
    rho_sim = spearman(all_sim, all_ratio)
    summary = ("At 2 CPUs the order of the implementations by predicted "
               "extra cost per operation (misses x line latency) matches the "
               "order by measured extra CPU time in %d of %d workloads (%d "
               "of them only because the model predicts a tie: within %g "
               "ns, any measured order of the tied ones counts as the "
               "same), and the order by simulated 2/1 slowdown matches the "
               "measured 2/1 CPU-time slowdown in %d (ties within %g); over "
               "all %d rows the rank correlation (Spearman) is %.2f for "
               "predicted and measured extra ns/op, %.2f for simulated and "
               "measured 2/1 ratios."
               % (agree, total, ties, TIE_NS, sim_agree, TIE_RATIO,
                  len(all_pred), rho, rho_sim))
    order = ["| workload | predicted order (cheapest first) | measured order "
             "| |", "|---|---|---|---|"] + verdicts
    return lines, order, summary


def line_latency(d, rows):
    lat = os.path.join(d, "coherence-latency.csv")
    ns = {float(r["line_ns"]) for r in rows}
    note = ""
    if os.path.exists(lat):
        lr = read_rows(lat)
        if lr:
            r = lr[0]
            note = ("line latency %s ns: bench_pingpong, the median of %s "
                    "samples' handoff time / 2 (p10 %s, p90 %s ns a handoff; "
                    "load %s at the start, %s at the end), CPUs %s and %s"
                    % (r["line_ns"], "its", r["sample_p10"], r["sample_p90"],
                       r["load1_start"], r["load1_end"], r["cpu0"], r["cpu1"]))
    return (ns.pop() if len(ns) == 1 else statistics.median(ns)), note


def main(argv):
    timed_dir, docs, args = None, None, []
    it = iter(argv[1:])
    for a in it:
        if a == "--timed":
            timed_dir = next(it)
        elif a == "--docs":
            docs = next(it)
        else:
            args.append(a)
    if len(args) != 1:
        sys.exit(__doc__)
    d = args[0]
    rows = read_rows(os.path.join(d, "coherence.csv"))
    if not rows:
        sys.exit("coh_report.py: %s/coherence.csv is empty" % d)
    line_ns, note = line_latency(d, rows)
    for prog in PANELS:
        for fig in FIGURES:
            plot(d, prog, rows, line_ns, fig)
    timed = timed_medians(timed_dir) if timed_dir else {}
    table, order, summary = validation(rows, timed, line_ns)
    print(summary)
    if docs:
        write_docs(docs, d, summary, order, table, note)
        return
    with open(os.path.join(d, "coherence-validation.md"), "w") as f:
        f.write(summary + "\n\n" + "\n".join(order) + "\n\n" +
                "\n".join(table) + "\n")
        if note:
            f.write("\n(" + note + ")\n")


def write_docs(docs, d, summary, order, table, note):
    hand = os.path.join(d, "coherence-summary.md")
    body = open(hand).read().rstrip() + "\n\n" if os.path.exists(hand) else ""
    section = (BEGIN + "\n" + body + summary + "\n\n" + "\n".join(order) +
               "\n\n" + "\n".join(table) + "\n" +
               ("\n(" + note + ")\n" if note else "") + END + "\n")
    text = open(docs).read() if os.path.exists(docs) else ""
    if BEGIN in text and END in text:
        a, b = text.index(BEGIN), text.index(END) + len(END) + 1
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip() + "\n\n" + section
    with open(docs, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main(sys.argv)
