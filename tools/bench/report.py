#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the raw results of tools/bench/bench.sh into the benchmark report.

    report.py BENCHDIR [--elapsed S] [--host-cpus N] [--host-load L]

Reads BENCHDIR/raw/<series>/ (one directory per kernel series) and writes
BENCHDIR/results.md, results.json and results.png (the chart needs
matplotlib; without it the chart is skipped with a note).  Prints the
Markdown table and, as its last line,

    bench: worst ratio ours/stock = X.XX (case)

Every case is measured in every round for both modules; the table shows
the median of the rounds.  The ratio is oriented so that above 1.00 means
ours is better: ours/stock for throughput (IOPS, MiB/s), stock/ours for
latency, time and memory.
"""
import argparse
import json
import os
import re
import statistics
import sys

FILE_RE = re.compile(r"^r(\d+)-(ours|stock)-(.+)\.(fio|vm|ctl|mem)\.json$")
MiB = 1024 * 1024

# Rows of the table, in order: (case, label, unit, better).
DEVKINDS = [("qsd", "qemu-storage-daemon null-co"), ("vblk", "vduse-blk --ram")]


def rows_for(devices):
    rows = []
    for k, _ in DEVKINDS:
        rows += [
            (f"{k}-randread-4k-qd1", "host 4k randread QD1", "IOPS", "higher"),
            (f"{k}-randread-4k-qd1:p50", "host 4k randread QD1 p50", "us", "lower"),
            (f"{k}-randread-4k-qd1:p99", "host 4k randread QD1 p99", "us", "lower"),
            (f"{k}-randread-4k-qd32", "host 4k randread QD32, 1 queue", "IOPS", "higher"),
            (f"{k}-randwrite-4k-qd32", "host 4k randwrite QD32, 1 queue", "IOPS", "higher"),
            (f"{k}-randread-4k-2j-qd32-2q", "host 4k randread 2 jobs x QD32, 2 queues", "IOPS", "higher"),
            (f"{k}-read-128k-qd8", "host 128k seq read QD8", "MiB/s", "higher"),
            (f"{k}-write-1m-qd4", "host 1M seq write QD4", "MiB/s", "higher"),
            (f"{k}-vm-read-4k-qd32", "VM path (qemu-io) 4k read, batches of 32", "IOPS", "higher"),
            (f"{k}-vm-write-1m-qd4", "VM path (qemu-io) 1M write, batches of 4", "MiB/s", "higher"),
            (f"{k}-mem-idle", "kernel memory held idle after 1 GiB of I/O", "KiB", "lower"),
        ]
    for phase in ("create", "attach", "detach", "destroy"):
        rows.append((f"ctl-{phase}", f"control plane: {phase} {devices} devices", "ms", "lower"))
    return rows


def kernel_kb(text):
    """Kernel memory in kB from a ';'-joined /proc/meminfo: what is neither
    free (MemFree, and PcpFree: the free pages on the per-CPU lists, which
    bench.sh adds from /proc/zoneinfo), nor page cache, nor anonymous user
    memory."""
    m = {}
    for line in text.split(";"):
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":"):
            m[parts[0][:-1]] = int(parts[1])
    k = (m["MemTotal"] - m["MemFree"] - m.get("PcpFree", 0) - m.get("Buffers", 0)
         - m.get("Cached", 0) - m.get("SwapCached", 0) - m.get("AnonPages", 0))
    return k, m


def fio_values(path):
    """{case: value} from one fio JSON report; each job (reporting group)
    is named after its case."""
    with open(path) as f:
        text = f.read()
    rep = json.loads(text[text.index("{"):])
    out = {}
    for j in rep["jobs"]:
        case = j["jobname"]
        if j.get("error"):
            continue
        if "-128k-" in case or "-1m-" in case:
            out[case] = (j["read"]["bw_bytes"] + j["write"]["bw_bytes"]) / MiB
        else:
            out[case] = j["read"]["iops"] + j["write"]["iops"]
        pct = j["read"].get("lat_ns", {}).get("percentile", {})
        if case.endswith("-qd1") and pct:
            out[case + ":p50"] = pct["50.000000"] / 1000.0
            out[case + ":p99"] = pct["99.000000"] / 1000.0
    return out


def load_series(d):
    """values[case][module] = [(round, value), ...], extra info."""
    values = {}
    extra = {"memory": {}}

    def add(case, module, rnd, v):
        values.setdefault(case, {}).setdefault(module, []).append((rnd, v))

    for name in sorted(os.listdir(d)):
        m = FILE_RE.match(name)
        if not m:
            continue
        rnd, module, case, kind = int(m.group(1)), m.group(2), m.group(3), m.group(4)
        path = os.path.join(d, name)
        try:
            if kind == "fio":
                for c, v in fio_values(path).items():
                    add(c, module, rnd, v)
            elif kind == "vm":
                with open(path) as f:
                    j = json.load(f)
                secs = j["seconds"]
                if secs <= 0:
                    continue
                if j["bs"] >= MiB:
                    add(case, module, rnd, j["requests"] * j["bs"] / MiB / secs)
                else:
                    add(case, module, rnd, j["requests"] / secs)
            elif kind == "ctl":
                with open(path) as f:
                    j = json.load(f)
                for phase in ("create", "attach", "detach", "destroy"):
                    add(f"ctl-{phase}", module, rnd, j[f"{phase}_ms"])
            elif kind == "mem":
                with open(path) as f:
                    j = json.load(f)
                kb0, m0 = kernel_kb(j["before"])
                kb1, m1 = kernel_kb(j["after"])
                add(case, module, rnd, kb1 - kb0)
                extra["memory"].setdefault(case, {}).setdefault(module, []).append({
                    "round": rnd, "kernel_kb": kb1 - kb0,
                    "slab_kb": m1.get("Slab", 0) - m0.get("Slab", 0),
                    "sunreclaim_kb": m1.get("SUnreclaim", 0) - m0.get("SUnreclaim", 0),
                    "percpu_kb": m1.get("Percpu", 0) - m0.get("Percpu", 0),
                    "memfree_kb": m0["MemFree"] - m1["MemFree"],
                    "burst_fio_rc": j.get("fio_rc")})
        except (OSError, ValueError, KeyError, IndexError, ZeroDivisionError) as e:
            print(f"# {name}: unreadable ({e})", file=sys.stderr)
    return values, extra


def fmt(v, unit):
    if v is None:
        return "-"
    if unit in ("IOPS", "KiB"):
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def ratio_of(stock, ours, better):
    if stock is None or ours is None:
        return None
    if better == "higher":
        return ours / stock if stock > 0 else None
    # Lower is better: stock/ours.  Memory can be close to zero or below
    # (pages freed late by what ran before); below 1 MiB both count as
    # 1 MiB, the noise of the measurement.
    floor = 1024 if better == "lower-mem" else 0
    s, o = max(stock, floor), max(ours, floor)
    return s / o if o > 0 else None


def verdict(stock, ours, better):
    """Do the rounds of the two modules overlap?  "ours" when every round
    of ours beat every round of stock, "stock" for the opposite, "overlap"
    otherwise (the difference is within the noise), None with fewer than
    two rounds each.  With equal modules, 3 rounds each fall apart one
    time in 10, 5 rounds one time in 126."""
    if len(stock) < 2 or len(ours) < 2:
        return None
    sign = 1 if better == "higher" else -1
    floor = 1024 if better == "lower-mem" else None
    if floor is not None:
        stock = [max(v, floor) for v in stock]
        ours = [max(v, floor) for v in ours]
    o = [sign * v for v in ours]
    st = [sign * v for v in stock]
    if min(o) > max(st):
        return "ours"
    if max(o) < min(st):
        return "stock"
    return "overlap"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("benchdir")
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--host-cpus", default="")
    ap.add_argument("--host-load", default="")
    ap.add_argument("--display-dir", default=None,
                    help="BENCHDIR as the user sees it (in the messages)")
    a = ap.parse_args()

    rawdir = os.path.join(a.benchdir, "raw")
    series_list = sorted(os.listdir(rawdir)) if os.path.isdir(rawdir) else []
    result = {"orientation": "ratio > 1.00 means ours is better: ours/stock for "
              "throughput, stock/ours for latency, time and memory",
              "elapsed_seconds": a.elapsed, "host_cpus": a.host_cpus,
              "host_load_at_end": a.host_load, "kernels": {}}
    md = []
    worst = None
    verdicts = {}
    for series in series_list:
        d = os.path.join(rawdir, series)
        meta = {}
        try:
            with open(os.path.join(d, "meta.json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            pass
        try:
            with open(os.path.join(d, "accel")) as f:
                meta["accel"] = f.read().strip()
        except OSError:
            pass
        values, extra = load_series(d)
        try:
            with open(os.path.join(d, "budget-stop")) as f:
                meta["budget_stop"] = f.read().strip()
        except OSError:
            pass
        cases = []
        for case, label, unit, better in rows_for(meta.get("devices", "N")):
            b = "lower-mem" if unit == "KiB" else better
            per = values.get(case, {})
            entry = {"case": case, "label": label, "unit": unit,
                     "better": better}
            med = {}
            for module in ("stock", "ours"):
                vals = [v for _, v in sorted(per.get(module, []))]
                med[module] = statistics.median(vals) if vals else None
                entry[module] = {"median": med[module], "rounds": vals}
            r = ratio_of(med["stock"], med["ours"], b)
            entry["ratio"] = r
            # Spread: the largest (max-min)/median of the two modules.
            spread = None
            for module in ("stock", "ours"):
                vals = entry[module]["rounds"]
                if len(vals) >= 2 and med[module]:
                    s = (max(vals) - min(vals)) / abs(med[module])
                    spread = s if spread is None else max(spread, s)
            entry["spread"] = spread
            entry["rounds"] = min(len(entry["stock"]["rounds"]), len(entry["ours"]["rounds"]))
            entry["verdict"] = verdict(entry["stock"]["rounds"], entry["ours"]["rounds"], b)
            if entry["verdict"]:
                verdicts[entry["verdict"]] = verdicts.get(entry["verdict"], 0) + 1
            cases.append(entry)
            if r is not None:
                name = case if len(series_list) == 1 else f"{series} {case}"
                if worst is None or r < worst[0]:
                    worst = (r, name)
        result["kernels"][series] = {"meta": meta, "cases": cases,
                                     "memory_detail": extra["memory"]}

        rounds = meta.get("rounds", "?")
        md.append(f"### Kernel {meta.get('kernel', series)}")
        md.append("")
        md.append(f"{meta.get('accel', '?').upper()}, {meta.get('vcpus', '?')} vCPUs, "
                  f"{int(meta.get('mem_kb', 0)) // 1024} MiB guest; {rounds} rounds, each "
                  f"running both modules in one boot (round 1 started with "
                  f"{meta.get('first', '?')}, the order flips every round); "
                  f"fio {meta.get('runtime', '?')} s per case after "
                  f"{meta.get('ramp', '?')} s of ramp; values are medians of the rounds.")
        md.append("")
        if meta.get("budget_stop"):
            md.append(f"**The time budget (BENCH_BUDGET) cut the run short** ({meta['budget_stop']}): "
                      "the rounds column says how many rounds each case got.")
            md.append("")
        md.append("Ratio ours/stock, oriented so that **> 1.00 means ours is better**: "
                  "ours/stock for throughput (IOPS, MiB/s), stock/ours for latency, "
                  "time and memory. Spread: largest (max - min) / median of the rounds "
                  "of either module. Rounds apart: **ours** when every round of ours "
                  "beat every round of stock, **stock** for the opposite, overlap when "
                  "the two modules' rounds overlap (a difference within the noise).")
        md.append("")
        md.append("| device | case | unit | stock | ours | ratio (>1 = ours better) | spread | rounds | rounds apart |")
        md.append("|---|---|---|---:|---:|---:|---:|---:|---|")
        for e in cases:
            dev = "-"
            for k, desc in DEVKINDS:
                if e["case"].startswith(k + "-"):
                    dev = desc
            rs = "-" if e["ratio"] is None else "%.2f" % e["ratio"]
            sp = "-" if e["spread"] is None else "%.0f%%" % (e["spread"] * 100)
            md.append(f"| {dev} | {e['label']} | {e['unit']} | "
                      f"{fmt(e['stock']['median'], e['unit'])} | "
                      f"{fmt(e['ours']['median'], e['unit'])} | {rs} | {sp} | {e['rounds']} | "
                      f"{'-' if not e['verdict'] else e['verdict'] if e['verdict'] == 'overlap' else '**' + e['verdict'] + '**'} |")
        md.append("")
        mem = extra["memory"]
        if mem:
            md.append("Kernel memory: MemTotal - MemFree - PcpFree - Buffers - Cached - "
                      "SwapCached - AnonPages, after dropping caches, from before the device existed to "
                      "the idle device after the burst (median; Slab and Percpu are part of it):")
            md.append("")
            for case in sorted(mem):
                for module in ("stock", "ours"):
                    lst = mem[case].get(module, [])
                    if not lst:
                        continue
                    def med(key):
                        return statistics.median(x[key] for x in lst)
                    md.append(f"- {case}, {module}: {med('kernel_kb'):,.0f} KiB "
                              f"(Slab {med('slab_kb'):+,.0f}, Percpu {med('percpu_kb'):+,.0f}, "
                              f"MemFree {-med('memfree_kb'):+,.0f})")
            md.append("")

    head = ["# make bench: our vduse.ko against the stock one", ""]
    if a.elapsed:
        head.append(f"Run time {a.elapsed // 60} min {a.elapsed % 60} s on a host with "
                    f"{a.host_cpus} CPUs (load average at the end: {a.host_load}). "
                    "Under TCG every layer is emulated and other VMs share the host: "
                    "compare the ratios, not the absolute numbers.")
        head.append("")
    md = head + md
    if worst is None:
        md.append("No results.")
    result["worst"] = None if worst is None else {"ratio": worst[0], "case": worst[1]}
    result["rounds_apart"] = verdicts

    chart = os.path.join(a.benchdir, "results.png")
    note = draw_chart(result, chart)
    if note:
        md.append(note)
        md.append("")
    with open(os.path.join(a.benchdir, "results.md.tmp"), "w") as f:
        f.write("\n".join(md) + "\n")
    os.replace(os.path.join(a.benchdir, "results.md.tmp"),
               os.path.join(a.benchdir, "results.md"))
    with open(os.path.join(a.benchdir, "results.json.tmp"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(os.path.join(a.benchdir, "results.json.tmp"),
               os.path.join(a.benchdir, "results.json"))

    print("\n".join(md))
    shown = a.display_dir or a.benchdir
    print(f"bench: report in {shown}/results.md, results.json, results.png")
    if worst is None:
        print("bench: worst ratio ours/stock = n/a (no results)")
        return 1
    if verdicts:
        print(f"bench: rounds apart: ours better in {verdicts.get('ours', 0)} cases, "
              f"stock better in {verdicts.get('stock', 0)}, overlapping in "
              f"{verdicts.get('overlap', 0)}")
    print(f"bench: worst ratio ours/stock = {worst[0]:.2f} ({worst[1]})")
    return 0


def draw_chart(result, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "(No chart: python3-matplotlib is not installed.)"
    kernels = result["kernels"]
    if not kernels:
        return None
    n = max(len(k["cases"]) for k in kernels.values())
    fig, axes = plt.subplots(1, len(kernels), figsize=(8 * len(kernels), 0.32 * n + 1.8),
                             squeeze=False)
    ticks = [0.25, 0.33, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3, 4]
    for ax, (series, k) in zip(axes[0], sorted(kernels.items())):
        cases = list(reversed(k["cases"]))
        labels = [c["case"] for c in cases]
        vals = [c["ratio"] for c in cases]
        known = [v for v in vals if v]
        lo = min(known + [0.8]) / 1.25
        hi = max(known + [1.25]) * 1.25
        for i, v in enumerate(vals):
            if not v:
                ax.text(1, i, " n/a", va="center", fontsize=7)
                continue
            ax.barh(i, v - 1, left=1, color="#2a9d4b" if v >= 1 else "#c8453b")
            ax.text(v, i, f" {v:.2f} " if v >= 1 else f"{v:.2f} ", va="center",
                    ha="left" if v >= 1 else "right", fontsize=7)
        ax.axvline(1.0, color="black", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_xticks([t for t in ticks if lo <= t <= hi])
        ax.set_xticklabels([f"{t:g}" for t in ticks if lo <= t <= hi])
        ax.minorticks_off()
        ax.set_yticks(range(len(vals)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_ylim(-0.7, len(vals) - 0.3)
        ax.grid(axis="x", linewidth=0.3)
        ax.set_xlabel("ours/stock, > 1 = ours better (latency, time, memory: stock/ours); log scale",
                      fontsize=8)
        ax.set_title(f"vduse.ko, ours vs stock, kernel {k['meta'].get('kernel', series)} "
                     f"({k['meta'].get('accel', '?')}), median of "
                     f"{k['meta'].get('rounds', '?')} rounds", fontsize=9)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return None


if __name__ == "__main__":
    sys.exit(main())
