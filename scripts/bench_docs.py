"""bench_docs.py: docs/results.md from bench/results-template.md and the
results folders bench_report.py read.

The template is the text of the results section: the questions, what each
figure shows, the targets. Every figure and number in it is a placeholder
filled from the first folder's data, so that a new run cannot leave the
page quoting old numbers; a placeholder that names something the data
lacks is an error, not an empty cell. Placeholders:

  {{machine}}                 the machine, the commands, the load averages
  {{fig:NAME}}                the plot NAME.png of the folder
  {{cpu:P/BENCH/IMPL/T}}      CPU ns/op, median [95% interval]
  {{wall:P/BENCH/IMPL/T}}     wall ns/op, median [95% interval]
  {{mops:P/BENCH/IMPL/T}}     throughput of all threads, Mops/s
  {{ratio:P/BENCH/A/B/T/K}}   K (cpu or wall) median of A / median of B
  {{scale:P/BENCH/IMPL/T}}    throughput at T / throughput at 1 thread
  {{table:P}}                 every series of program P, wall and cpu
  {{targets:P}}               the targets P printed, met or not
  {{frag}}                    the order-9 shares, final and mean
  {{latency}}                 the latency percentiles
  {{lat:BENCH/OP/IMPL/SCEN/PCT}}  one of them (PCT: p50, p99, p999)
  {{mem}}                     the metadata and tree sizes
  {{load:P}}                  P's load average at its start and its end
  {{others}}                  a short section for every further folder
  {{keep:NAME}}               the block between `<!-- NAME: begin -->` and
                              `<!-- NAME: end -->` in the page as it was
                              (a section another program writes: `make
                              coherence`), or the two markers with a line
                              saying what fills them
"""
import os
import re
import statistics

MACHINE_KEYS = ("date", "cpu", "cpu id", "cores", "hypervisor", "memory",
                "kernel", "compiler", "build", "commit", "load",
                "load after")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(REPO, "bench", "results-template.md")
TARGET_RE = re.compile(r"^\s+(.*?)\s{2,}(\S+ ?\S*)\s+\((.*?)\): (met|NOT met)")
PH_RE = re.compile(r"\{\{([a-z0-9]+)(?::([^}]*))?\}\}")


def rel(path, docs):
    return os.path.relpath(path, os.path.dirname(os.path.abspath(docs)))


def fmt(x):
    if x is None:
        return "-"
    return "%.3g" % x if abs(x) < 100 else "%.0f" % x


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


class Missing(Exception):
    pass


def needed(info, key):
    """info[key], which the run must have produced (Missing if not)."""
    v = info.get(key)
    if not v:
        raise Missing(key)
    return v


def row_of(info, spec):
    try:
        prog, bench, impl, t = spec.split("/")
        t = int(t)
    except ValueError:
        raise Missing(spec)
    for r in info["progs"].get(prog, []):
        if (r["bench"], r["impl"], r["threads"]) == (bench, impl, t):
            return r
    raise Missing(spec)


def cell(r, cpu):
    if cpu:
        if r["cpu_median"] is None:
            return "-"
        return "%s [%s, %s]" % (fmt(r["cpu_median"]), fmt(r["cpu_lo"]),
                                fmt(r["cpu_hi"]))
    return "%s [%s, %s]" % (fmt(r["median"]), fmt(r["lo"]), fmt(r["hi"]))


def table(rows):
    threads = sorted({r["threads"] for r in rows})
    head = "| bench | impl | " + " | ".join(
        "%d thr wall | %d thr cpu" % (t, t) for t in threads) + " |"
    lines = [head, "|---|---|" + "---:|" * (2 * len(threads))]
    for b, i in dict.fromkeys((r["bench"], r["impl"]) for r in rows):
        cells = []
        for t in threads:
            p = [r for r in rows if (r["bench"], r["impl"], r["threads"]) ==
                 (b, i, t)]
            cells += [cell(p[0], False), cell(p[0], True)] if p else ["-"] * 2
        lines.append("| %s | %s | %s |" % (b, i, " | ".join(cells)))
    return "\n".join(lines)


def machine_text(info, docs):
    d, m = info["dir"], dict(info["machine"])
    out = ["| | |", "|---|---|"]
    out += ["| %s | %s |" % (k, m[k]) for k in MACHINE_KEYS if k in m]
    cmds = [v for k, v in info["machine"] if k == "command"]
    runs = [v for k, v in info["machine"] if k == "run"]
    if runs:
        out += ["", "When each program ran (a run of some programs keeps "
                "the others' results):", ""]
        out += ["- " + r for r in runs]
    out += ["", "Commands (`scripts/bench.sh`):", ""]
    out += ["    " + c for c in cmds]
    out += ["", "Data (one CSV row per run), the printed tables and the "
            "plots: [%s](%s)." % (rel(d, docs), rel(d, docs))]
    load = info.get("load", {})
    if load:
        out += ["", "Load average (`/proc/loadavg`: 1, 5, 15 min) at the "
                "start and the end of each program; the CSVs carry the "
                "1-minute figure of every run (`load1`):", "",
                "| program | start | end |", "|---|---|---|"]
        out += ["| %s | %s | %s |" % (
            p, " ".join("%.2f" % x for x in load[p].get("start", [])),
            " ".join("%.2f" % x for x in load[p].get("end", [])))
            for p in load]
    return "\n".join(out)


def frag_text(info):
    frag = needed(info, "frag")
    out = ["| allocator | threads | repeats | final share, median [min, "
           "max] | mean over the run |", "|---|---:|---:|---|---:|"]
    for (impl, t), smp in frag.items():
        last = smp[max(smp)][1]
        means = [statistics.mean(smp[k][1][r] for k in smp if k > 0)
                 for r in range(len(last))] if len(smp) > 1 else last
        out.append("| %s | %d | %d | %.3f [%.3f, %.3f] | %.3f |" % (
            impl, t, len(last), statistics.median(last), min(last),
            max(last), statistics.median(means)))
    return "\n".join(out)


def lat_value(info, spec):
    lat = info.get("latency")
    try:
        b, op, impl, scen, pct = spec.split("/")
        return statistics.median(lat[(b, op, impl, scen)][pct])
    except (KeyError, ValueError, TypeError):
        raise Missing(spec)


def latency_text(info):
    lat = needed(info, "latency")
    from bench_report import ci95
    out = ["| bench | op | impl | scenario | p50 | p99 | p99.9 [95% "
           "interval] | max |", "|---|---|---|---|---:|---:|---:|---:|"]
    for (b, op, impl, scen), e in lat.items():
        if op == "timer":
            continue
        lo, hi, _ = ci95(e["p999"])
        out.append("| %s | %s | %s | %s | %.0f | %.0f | %.0f [%.0f, %.0f] "
                   "| %.0f |" % (b, op, impl, scen,
                                 statistics.median(e["p50"]),
                                 statistics.median(e["p99"]),
                                 statistics.median(e["p999"]), lo, hi,
                                 statistics.median(e["max"])))
    timer = [e for k, e in lat.items() if k[1] == "timer"]
    if timer:
        out += ["", "The clock's own cost (two reads, nothing between) is "
                "in every figure: p50 %.0f ns, p99 %.0f ns." % (
                    statistics.median(timer[0]["p50"]),
                    statistics.median(timer[0]["p99"]))]
    return "\n".join(out)


def mem_text(info):
    rows = needed(info, "mem")
    cols = list(rows[0].keys())
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    return "\n".join(out)


def targets_text(info, prog):
    tg = targets(info["dir"], prog)
    if not tg:
        raise Missing("targets:" + prog)
    out = ["| target | measured | wanted | |", "|---|---:|---|---|"]
    out += ["| %s | %s | %s | %s |" % (w, v, t, "met" if s == "met" else
                                       "**not met**")
            for w, v, t, s in tg]
    return "\n".join(out)


def others_text(infos, docs):
    out = []
    for info in infos:
        name = os.path.basename(os.path.normpath(info["dir"]))
        out += ["### Machine `%s`" % name, "", machine_text(info, docs), ""]
        for prog, rows in info["progs"].items():
            for kind in ("throughput", "cpu"):
                png = os.path.join(info["dir"], "%s-%s.png" % (prog, kind))
                if os.path.exists(png):
                    out += ["![%s %s](%s)" % (prog, kind, rel(png, docs)),
                            ""]
            out += [table(rows), ""]
    return "\n".join(out).rstrip() if out else "(none)"


KEEP_HINT = {"coherence": "(Run `make coherence` to write this section.)"}


def keep_text(docs, name):
    begin, end = "<!-- %s: begin -->" % name, "<!-- %s: end -->" % name
    old = open(docs).read() if os.path.exists(docs) else ""
    if begin in old and end in old:
        return old[old.index(begin):old.index(end) + len(end)]
    return "%s\n%s\n%s" % (begin, KEEP_HINT.get(name, ""), end)


def fill(name, arg, info, infos, docs):
    if name == "keep":
        return keep_text(docs, arg)
    if name == "machine":
        return machine_text(info, docs)
    if name == "fig":
        png = os.path.join(info["dir"], arg + ".png")
        if not os.path.exists(png):
            raise Missing("fig:" + arg)
        return "![%s](%s)" % (arg, rel(png, docs))
    if name in ("cpu", "wall"):
        return cell(row_of(info, arg), name == "cpu")
    if name == "mops":
        return fmt(row_of(info, arg)["throughput"])
    if name == "ratio":
        try:
            prog, bench, a, b, t, kind = arg.split("/")
        except ValueError:
            raise Missing(arg)
        key = "cpu_median" if kind == "cpu" else "median"
        ra = row_of(info, "/".join((prog, bench, a, t)))
        rb = row_of(info, "/".join((prog, bench, b, t)))
        if not ra[key] or not rb[key]:
            raise Missing(arg)
        return "%.3gx" % (ra[key] / rb[key])
    if name == "scale":
        prog, bench, impl, t = arg.split("/")
        r1 = row_of(info, "/".join((prog, bench, impl, "1")))
        rt = row_of(info, arg)
        return "%.2fx" % (rt["throughput"] / r1["throughput"])
    if name == "table":
        if arg not in info["progs"]:
            raise Missing("table:" + arg)
        return table(info["progs"][arg])
    if name == "targets":
        return targets_text(info, arg)
    if name == "frag":
        return frag_text(info)
    if name == "latency":
        return latency_text(info)
    if name == "lat":
        return "%.0f" % lat_value(info, arg)
    if name == "mem":
        return mem_text(info)
    if name == "load":
        load = info["load"].get(arg)
        if not load:
            raise Missing("load:" + arg)
        return "load average %.2f at the start, %.2f at the end" % (
            load["start"][0], load["end"][0])
    if name == "others":
        return others_text(infos[1:], docs)
    raise Missing(name)


def write(docs, infos, template=TEMPLATE):
    with open(template) as f:
        text = f.read()
    info = infos[0]
    missing = []

    def sub(m):
        try:
            return fill(m.group(1), m.group(2), info, infos, docs)
        except Missing as e:
            missing.append("%s (%s)" % (m.group(0), e))
            return m.group(0)
    out = PH_RE.sub(sub, text)
    if missing:
        raise SystemExit("bench_docs.py: the data of %s lacks: %s" %
                         (info["dir"], "; ".join(missing)))
    with open(docs, "w") as f:
        f.write(out.rstrip() + "\n")
