#!/usr/bin/env python3
"""Where ONNX Runtime spends a model's inference, per layer kind: its profiler's per-node kernel
times (SessionOptions.enable_profiling), summed by kind, to set beside `ply bench-layers`. Not used
by Ply's build, tests or CI.

    $PLY_TORCH_VENV/bin/python Benchmarks/ort_profile.py MODEL.onnx [--runs 60] [--threads 1] [--nodes]

MODEL.onnx: e.g. one that `Benchmarks/peer_models.py prepare` wrote to ~/.cache/ply-peer-models.
The same settings as peer_models.py's ONNX Runtime runs (all graph optimisations, CPU provider).
After 5 untimed runs, --runs timed ones; each node's time is its minimum over the timed runs
(wall time: on a shared machine the minimum is the least disturbed), and the table also gives the
minimum whole run. Conv nodes are split by kernel size (ORT fuses bias and relu into "FusedConv").
--nodes also lists every node in execution order (its fastest time, kind, input and output shapes), to
set beside `ply bench-layers --layers` or Benchmarks/region_trace.py's per-layer table.
"""
import argparse
import collections
import json
import os
import tempfile

import numpy as np
import onnxruntime as ort


def kind_of(op, args):
    if op not in ("Conv", "FusedConv"):
        return op
    shapes = args.get("input_type_shape", [])
    w = list(shapes[1].values())[0] if len(shapes) > 1 and shapes[1] else []
    return f"conv {w[2]}x{w[3]}" if len(w) == 4 else "conv"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nodes", action="store_true", help="also list every node's fastest time")
    a = ap.parse_args()
    if a.runs < 1 or a.threads < 1:
        ap.error("--runs and --threads must be at least 1")
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    s = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = np.random.default_rng(7).random(shape, dtype=np.float32)
    for _ in range(5 + a.runs):
        s.run(None, {inp.name: x})
    path = s.end_profiling()
    events = json.load(open(path))
    os.remove(path)
    runs = [e["dur"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run"][5:]
    per_node = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[e["name"]].append((e["dur"], e["args"].get("op_name"), e["args"]))
    total, count = collections.defaultdict(float), collections.Counter()
    for lst in per_node.values():
        k = kind_of(lst[0][1], lst[0][2])
        total[k] += min(d for d, _, _ in lst[-a.runs:]) / 1000
        count[k] += 1
    print(f"{a.model}: input {shape}, {a.threads} thread(s), {a.runs} runs; fastest whole run {min(runs) / 1000:.2f} ms")
    print("| kind | nodes | ms (sum of each node's fastest) | share of the sum |")
    print("| --- | ---: | ---: | ---: |")
    s_all = sum(total.values())
    for k, v in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {count[k]} | {v:.2f} | {100 * v / s_all:.0f}% |")
    print(f"| **sum** | {sum(count.values())} | {s_all:.2f} | 100% |")
    if a.nodes:
        print()
        print("| node | kind | input shapes | output | ms (fastest) |")
        print("| --- | --- | --- | --- | ---: |")
        for name, lst in per_node.items():  # (insertion order: the first run's execution order)
            shapes = [list(d.values())[0] for d in lst[0][2].get("input_type_shape", [])]
            out = lst[0][2].get("output_type_shape", [])
            shape_out = "x".join(map(str, list(out[0].values())[0])) if out and out[0] else ""
            print(f"| {name[:-len('_kernel_time')]} | {kind_of(lst[0][1], lst[0][2])} | {shapes[:2]} | "
                  f"{shape_out} | {min(d for d, _, _ in lst[-a.runs:]) / 1000:.3f} |")


if __name__ == "__main__":
    main()
