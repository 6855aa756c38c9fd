#!/usr/bin/env python3
"""Per-layer table of a multi-threaded forward from a PLY_REGION_TRACE file: for every node
(median over the traced forwards), its wall time, how much of it ran inside parallel regions,
each thread's busy time in those regions, and the loss that threads waiting cost.

    PLY_REGION_TRACE=/tmp/t.tsv taskset -c 0,1 .build/release/ply bench-model resnet18 \\
        --batch 1 --threads 2 --runs 3 --iterations 20
    python3 Benchmarks/region_trace.py /tmp/t.tsv [--top 25]
    python3 Benchmarks/region_trace.py --together /tmp/t-*.tsv   # what running together costs
    python3 Benchmarks/region_trace.py --skew --top 20 /tmp/t-*.tsv   # splits uneven in every forward
    python3 Benchmarks/region_trace.py --late /tmp/t-*.tsv   # the caller waiting for a worker not yet started

Columns (microseconds, medians over forwards): wall = the node's forward; regions = the count of
parallel regions in it (1-chunk calls counted apart as "1ch"); inside = wall time inside the
regions; busy t0/t1.. = each thread's wall time running its chunk; cpu t0/t1.. = the same in the
thread's CPU time (what a loaded machine does not inflate); serial = wall - inside (the node's
work outside parallel_for, run on one thread); wait = sum over regions of (region wall x threads
- sum of busy) / threads, the time the threads idle inside regions (imbalance plus post/finish
cost); lost = serial x (threads - 1) / threads + wait: what the node gives away against a perfect
split of the same work; --against gives each node's critical path in CPU time (per region the
slowest thread's CPU time, plus the caller's CPU time outside regions) for two builds; cpu imbalance = sum over regions of (the slowest thread's CPU time - the
threads' mean): the uneven split of the work itself, even on a loaded machine; fixed = sum over
regions of (region wall - its longest chunk): posting, waking and finishing. No Python package beyond the standard library; `nm` resolves symbols.
"""
import argparse
import bisect
import collections
import re
import statistics
import subprocess
import sys


def resolver():
    """file+0xoffset -> the static function there, via nm on that file (a plugin's .so or the
    binary that links it)."""
    tables = {}

    def table(path):
        if path not in tables:
            rows = []
            out = subprocess.run(["nm", "-C", path], capture_output=True, text=True).stdout
            for line in out.splitlines():
                parts = line.split(maxsplit=2)
                if len(parts) == 3 and parts[1] in "tTwW":
                    rows.append((int(parts[0], 16), parts[2]))
            tables[path] = sorted(rows)
        return tables[path]

    def resolve(sym):
        m = re.match(r"(.*)\+0x([0-9a-f]+)$", sym)
        if not m:
            return sym
        rows, off = table(m.group(1)), int(m.group(2), 16)
        i = bisect.bisect_right(rows, (off, "\U0010ffff")) - 1
        return rows[i][1] if i >= 0 else sym
    return resolve


def parse(path, resolve):
    """[{node: {"begin", "end", "regions": [(body, n, chunks, wall, [chunk wall], [chunk cpu])]}}]
    per forward (the first, warming up, dropped when there are more than 3), and the node order."""
    forwards = []
    current = None
    open_node = None
    order = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if f[0] == "mark":
            kind, name, t = f[1], f[2], int(f[3])
            if kind == "begin":
                if current is None or name in current:
                    current = collections.OrderedDict()
                    forwards.append(current)
                current[name] = {"begin": t, "cpu0": int(f[4]), "regions": []}
                open_node = name
                if len(forwards) == 1:
                    order.append(name)
            else:
                current[name]["end"] = t
                current[name]["cpu1"] = int(f[4])
                open_node = None
        elif f[0] == "region" and open_node is not None:
            sym, n, chunks, posted, done = f[1], int(f[2]), int(f[3]), int(f[4]), int(f[5])
            st = [int(x) for x in f[6:]]
            busy = [st[4 * c + 1] - st[4 * c] if st[4 * c] else 0 for c in range(chunks)]
            cpu = [st[4 * c + 3] - st[4 * c + 2] if st[4 * c] else 0 for c in range(chunks)]
            # the caller's CPU time from posting to seeing all done (its chunk and its spinning)
            span = st[4 * chunks + 1] - st[4 * chunks] if len(st) >= 4 * chunks + 2 else done - posted
            current[open_node]["regions"].append((resolve(sym), n, chunks, done - posted, busy, cpu, span))
    forwards = [fw for fw in forwards if all("end" in v for v in fw.values())]
    if len(forwards) > 3:
        forwards = forwards[1:]
    return forwards, order


def work(forwards, name):
    """A node's CPU time over all threads: with one thread the caller's CPU time over the node;
    with more, the regions' chunks plus the caller's wall time outside regions."""
    per = [fw[name] for fw in forwards if name in fw]
    if all(r[2] == 1 for v in per for r in v["regions"]):
        return statistics.median(v["cpu1"] - v["cpu0"] for v in per)
    return statistics.median(sum(sum(r[5]) for r in v["regions"])
                             + max(0, v["end"] - v["begin"] - sum(r[3] for r in v["regions"])) for v in per)


def critical(forwards, name):
    """A node's critical path in CPU time: per region its slowest thread's CPU time, plus the
    caller's CPU time outside regions. What a quiet machine's wall time would be, less the
    posting and waking (not counted) -- comparable across builds on a loaded machine."""
    per = [fw[name] for fw in forwards if name in fw]
    return statistics.median(sum(max(r[5]) for r in v["regions"])
                             + max(0, v["cpu1"] - v["cpu0"] - sum(r[6] for r in v["regions"])) for v in per)


def together(paths, resolve):
    """Per (node, region index): the median summed chunk CPU time of the instances where both
    chunks of a 2-chunk region ran at the same time (overlapping >= 90% of the shorter, each
    chunk's CPU time >= 97% of its wall time: not preempted) and of those whose chunks did not
    overlap (<= 5%). On a loaded machine the threads of a region mostly run apart, so "apart" is
    the work of the split without the other thread beside it, "together" the same work with it: their
    ratio is what sharing caches and memory with the other thread costs that region."""
    inst = collections.OrderedDict()
    for path in paths:
        node, idx, first, forward = None, 0, None, -1
        for line in open(path):
            f = line.rstrip("\n").split("\t")
            if f[0] == "mark":
                node, idx = (f[2], 0) if f[1] == "begin" else (None, 0)
                if f[1] == "begin" and f[2] == (first or f[2]):
                    first, forward = f[2], forward + 1
                continue
            # (the first forward of each trace left out: it also transforms weights and plans)
            if f[0] != "region" or node is None or forward < 1:
                continue
            key = (node, idx)
            idx += 1
            d = inst.setdefault(key, {"body": f[1], "together": [], "apart": []})
            st = [int(x) for x in f[6:]]
            if int(f[3]) != 2 or len(st) < 8 or not st[0] or not st[4]:
                continue
            wall = [(st[0], st[1]), (st[4], st[5])]
            busy = [e - b for b, e in wall]
            cpu = [st[3] - st[2], st[7] - st[6]]
            if min(busy) <= 0:
                continue
            overlap = max(0, min(wall[0][1], wall[1][1]) - max(wall[0][0], wall[1][0]))
            if overlap >= 0.9 * min(busy) and all(c >= 0.97 * b for c, b in zip(cpu, busy)):
                d["together"].append(sum(cpu))
            elif overlap <= 0.05 * min(busy):
                d["apart"].append(sum(cpu))
    print("| node | region | body | n together / apart | CPU together | CPU apart | together / apart |")
    print("|---|---:|---|---:|---:|---:|---:|")
    tt = ta = 0
    for (node, idx), d in inst.items():
        n1, n2 = len(d["together"]), len(d["apart"])
        body = resolve(d["body"])
        if n1 < 3 or n2 < 3:
            print(f"| {node} | {idx} | {body} | {n1} / {n2} | | | (too few) |")
            continue
        t, p = statistics.median(d["together"]), statistics.median(d["apart"])
        tt += t
        ta += p
        print(f"| {node} | {idx} | {body} | {n1} / {n2} | {t/1e3:.0f} | {p/1e3:.0f} | {t/max(p, 1):.2f} |")
    print(f"| total (regions with both) | | | | {tt/1e3:.0f} | {ta/1e3:.0f} | {tt/max(ta, 1):.3f} |")


def skew(paths, resolve, top):
    """Per (node, region index) of 2-chunk regions, over every forward of all the traces given: the
    median of (chunk 0's CPU time - chunk 1's), and the share of forwards with that sign. On a loaded
    machine each region's CPU imbalance is mostly noise that changes sign from forward to forward;
    a split that is uneven by construction (or a thread that consistently finds its data further
    away) keeps its sign: the sum of |median| / 2 is the imbalance a quiet machine would still see."""
    diffs, bodies = collections.OrderedDict(), {}
    for path in paths:
        forwards, order = parse(path, resolve)
        for fw in forwards:
            for name in order:
                for i, r in enumerate(fw.get(name, {"regions": []})["regions"]):
                    if r[2] == 2:
                        diffs.setdefault((name, i), []).append((r[5][0] - r[5][1], min(r[5])))
                        bodies[(name, i)] = r[0]
    rows = []
    for k, v in diffs.items():
        med = statistics.median(d for d, _ in v)
        same = sum(1 for d, _ in v if (d > 0) == (med > 0)) / len(v)
        rows.append((abs(med), k, med, statistics.median(m for _, m in v), same, len(v)))
    rows.sort(key=lambda r: -r[0])
    print(f"skew of 2-chunk regions: sum of |median chunk 0 - chunk 1| / 2 = {sum(r[0] for r in rows) / 2e3:.0f} us "
          "per forward (CPU time, microseconds)")
    print("| node | region | body | chunk 0 - chunk 1 | faster chunk | same sign | forwards |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for _, (name, i), med, low, same, n in rows[:top or len(rows)]:
        print(f"| {name} | {i} | {bodies[(name, i)]} | {med/1e3:.0f} | {low/1e3:.0f} | {same:.2f} | {n} |")


def late(paths):
    """Over the multi-chunk regions of all the traces given (whole run, warm-up included): when each
    worker chunk started after the post, how long the caller waited after finishing its own chunk 0,
    and the regions where no worker chunk had started by then -- the caller idle, waiting for a
    worker that was not yet running (asleep or its vCPU not scheduled), while the work left could
    have been the caller's. Microseconds, wall time."""
    lags, waits, late_n, late_wait, total, n = [], [], 0, 0, 0, 0
    for path in paths:
        for line in open(path):
            f = line.rstrip("\n").split("\t")
            if f[0] != "region" or int(f[3]) < 2:
                continue
            chunks, posted, done = int(f[3]), int(f[4]), int(f[5])
            st = [int(x) for x in f[6:]]
            starts = [st[4 * c] for c in range(1, chunks) if st[4 * c]]
            if not starts or not st[0]:
                continue
            n += 1
            total += done - posted
            lags += [s - posted for s in starts]
            waits.append(max(0, done - st[1]))
            if min(starts) > st[1]:
                late_n += 1
                late_wait += done - st[1]
    if not n:
        print("no multi-chunk regions")
        return
    q = lambda a, p: sorted(a)[int(p * (len(a) - 1))] / 1e3
    print(f"{n} regions; worker start after the post p50 {q(lags, .5):.1f} p90 {q(lags, .9):.1f} "
          f"p99 {q(lags, .99):.1f} us; caller's wait after its chunk p50 {q(waits, .5):.1f} p90 {q(waits, .9):.1f} us")
    print(f"no worker started when the caller finished its chunk: {late_n} regions ({100 * late_n / n:.0f}%), "
          f"{late_wait / 1e6:.1f} ms of the regions' {total / 1e6:.1f} ms wall spent waiting there")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace", nargs="+", help="a trace (--together: one or more of the same model and build)")
    ap.add_argument("--compare", help="a 1-thread trace of the same model: adds each node's CPU time there "
                    "and the ratio of this trace's total CPU time to it (work inflation)")
    ap.add_argument("--against", help="a trace of another build, same model and threads: per node the "
                    "critical path in CPU time of both (the slowest thread per region plus the serial part)")
    ap.add_argument("--together", action="store_true", help="per region, the summed CPU time of its "
                    "2-thread instances whose chunks ran at the same time unpreempted against those that ran "
                    "apart, over all the traces given: what running together costs, measurable on a loaded machine")
    ap.add_argument("--skew", action="store_true", help="per 2-thread region, the median over the forwards of "
                    "all the traces given of chunk 0's CPU time minus chunk 1's and how often it has that sign: "
                    "uneven splits that persist through a loaded machine's noise (with --top N: the N largest)")
    ap.add_argument("--late", action="store_true", help="over all the traces given: the workers' start after each "
                    "post, the caller's wait after its own chunk, and how often and how long it waited for a worker "
                    "that had not started yet (what chunks the caller could claim itself would recover)")
    ap.add_argument("--top", type=int, default=0, help="only the N nodes losing most (0: all, in order)")
    a = ap.parse_args()
    resolve = resolver()

    if a.together:
        return together(a.trace, resolve)
    if a.skew:
        return skew(a.trace, resolve, a.top)
    if a.late:
        return late(a.trace)
    forwards, order = parse(a.trace[0], resolve)
    threads = max((r[2] for fw in forwards for v in fw.values() for r in v["regions"]), default=1)

    rows = []
    for name in order:
        per = [fw[name] for fw in forwards if name in fw]
        if not per:
            continue
        def med(fn):
            return statistics.median(fn(v) for v in per)
        wall = med(lambda v: v["end"] - v["begin"])
        inside = med(lambda v: sum(r[3] for r in v["regions"] if r[2] > 1))
        one = med(lambda v: sum(r[3] for r in v["regions"] if r[2] == 1))
        busy = [med(lambda v, t=t: sum(r[4][t] if t < len(r[4]) else 0 for r in v["regions"] if r[2] > 1))
                for t in range(threads)]
        wait = med(lambda v: sum((r[3] * threads - sum(r[4])) / threads for r in v["regions"] if r[2] > 1))
        cpu = [med(lambda v, t=t: sum(r[5][t] if t < len(r[5]) else 0 for r in v["regions"] if r[2] > 1))
               for t in range(threads)]
        # imbalance of the work itself: per region, the slowest thread's CPU time minus the mean
        imb = med(lambda v: sum(max(r[5]) - sum(r[5]) / threads for r in v["regions"] if r[2] > 1))
        # fixed cost: region wall minus its longest chunk (posting, waking, finishing)
        fixed = med(lambda v: sum(r[3] - max(r[4]) for r in v["regions"] if r[2] > 1))
        serial = max(wall - inside, 0)
        lost = serial * (threads - 1) / threads + wait
        regs = per[0]["regions"]
        kinds = collections.Counter(r[0] for r in regs)
        nreg = sum(1 for r in regs if r[2] > 1)
        n1 = sum(1 for r in regs if r[2] == 1)
        rows.append((name, wall, nreg, n1, inside, busy, serial, one, wait, lost, cpu, imb, fixed,
                     ", ".join(f"{k} x{c}" if c > 1 else k for k, c in kinds.items())))

    total = [sum(r[i] for r in rows) for i in (1, 4, 6, 8, 9, 11, 12)]
    show = sorted(rows, key=lambda r: -r[9])[:a.top] if a.top else rows
    tcpu = [sum(r[10][t] for r in rows) for t in range(threads)]
    print(f"{len(forwards)} forwards, {threads} threads; microseconds, medians per node")
    head = "| node | wall | regions | 1ch | inside | " + " | ".join(f"busy t{t}" for t in range(threads)) \
        + " | " + " | ".join(f"cpu t{t}" for t in range(threads)) \
        + " | serial | wait | lost | cpu imbalance | fixed | bodies |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    if a.compare:
        one, _ = parse(a.compare, resolve)
        print("\n| node | CPU 1 thread | CPU all threads | inflation |")
        print("|---|---:|---:|---:|")
        t1 = tn = 0
        for name in order:
            w1, wn = work(one, name), work(forwards, name)
            t1 += w1
            tn += wn
            print(f"| {name} | {w1/1e3:.0f} | {wn/1e3:.0f} | {wn/max(w1, 1):.2f} |")
        print(f"| total | {t1/1e3:.0f} | {tn/1e3:.0f} | {tn/max(t1, 1):.2f} |\n")
    if a.against:
        other, _ = parse(a.against, resolve)
        print("\n| node | critical CPU, this trace | critical CPU, --against | against / this |")
        print("|---|---:|---:|---:|")
        t1 = t2 = 0
        for name in order:
            c1, c2 = critical(forwards, name), critical(other, name)
            t1 += c1
            t2 += c2
            print(f"| {name} | {c1/1e3:.0f} | {c2/1e3:.0f} | {c2/max(c1, 1):.2f} |")
        print(f"| total | {t1/1e3:.0f} | {t2/1e3:.0f} | {t2/max(t1, 1):.2f} |\n")
    for r in show:
        print(f"| {r[0]} | {r[1]/1e3:.0f} | {r[2]} | {r[3]} | {r[4]/1e3:.0f} | "
              + " | ".join(f"{b/1e3:.0f}" for b in r[5])
              + " | " + " | ".join(f"{b/1e3:.0f}" for b in r[10])
              + f" | {r[6]/1e3:.0f} | {r[8]/1e3:.0f} | {r[9]/1e3:.0f} | {r[11]/1e3:.0f} | {r[12]/1e3:.0f} | {r[13]} |")
    print(f"| total | {total[0]/1e3:.0f} | | | {total[1]/1e3:.0f} | " + " | ".join("" for _ in range(threads))
          + " | " + " | ".join(f"{c/1e3:.0f}" for c in tcpu)
          + f" | {total[2]/1e3:.0f} | {total[3]/1e3:.0f} | {total[4]/1e3:.0f} | {total[5]/1e3:.0f} | {total[6]/1e3:.0f} | |")


if __name__ == "__main__":
    sys.exit(main())
