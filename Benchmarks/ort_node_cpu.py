#!/usr/bin/env python3
"""ONNX Runtime on one conv node alone, by CPU time: for shapes where the profiler's per-node wall
times (Benchmarks/ort_profile.py) mean nothing on a loaded machine. Builds a Conv(+bias)+Relu model
(all optimisations, 1 thread, the CPU provider: ORT runs it as NCHWc with reorders around it), times
RUNS runs by the process's CPU time, and scales the median by the conv's share of the profiled node
time (the rest is the reorders). Not used by Ply's build, tests or CI.

    taskset -c 0 $PLY_TORCH_VENV/bin/python Benchmarks/ort_node_cpu.py N C SIZE STRIDE OC [RUNS] [KERNEL]

e.g. `16 64 56 1 256` (ResNet-50's 56x56 64->256 at batch 16), `16 128 56 2 128 6 3` (a 3x3 stride 2).
Set beside `Benchmarks/pointwise_kernel.c N C SIZE STRIDE OC cold` for Ply's 1x1 kernel.
"""
import sys, time, json, os, tempfile, collections
import numpy as np, onnx, onnxruntime as ort
from onnx import helper, TensorProto, numpy_helper
N,C,S,st,OC = map(int, sys.argv[1:6]); runs = int(sys.argv[6]) if len(sys.argv)>6 else 10; KS = int(sys.argv[7]) if len(sys.argv)>7 else 1
w = numpy_helper.from_array((np.random.rand(OC,C,KS,KS).astype(np.float32)-0.5)*0.1, "w")
b = numpy_helper.from_array(np.random.rand(OC).astype(np.float32), "b")
conv = helper.make_node("Conv", ["x","w","b"], ["c"], kernel_shape=[KS,KS], strides=[st,st], pads=[KS//2]*4)
relu = helper.make_node("Relu", ["c"], ["y"])
O=(S+2*(KS//2)-KS)//st+1
g = helper.make_graph([conv,relu], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [N,C,S,S])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [N,OC,O,O])], [w,b])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("",13)]); m.ir_version=8
so = ort.SessionOptions(); so.intra_op_num_threads=1; so.inter_op_num_threads=1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.enable_profiling=True; so.profile_file_prefix=os.path.join(tempfile.mkdtemp(),"o")
s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
x = np.random.rand(N,C,S,S).astype(np.float32)
for _ in range(3): s.run(None, {"x":x})
cpu=[]
for _ in range(runs):
    t=time.process_time(); s.run(None,{"x":x}); cpu.append(time.process_time()-t)
ev=json.load(open(s.end_profiling()))
tot=collections.defaultdict(float)
for e in ev:
    if e.get("cat")=="Node" and e["name"].endswith("_kernel_time"): tot[e["args"].get("op_name")]+=e["dur"]
share = sum(v for k,v in tot.items() if "Conv" in k)/sum(tot.values())
cpu.sort(); med=cpu[len(cpu)//2]
fl=2*N*OC*C*O*O*KS*KS
print(f"ORT {N} {C}->{OC} {S}x{S} s{st}: run cpu median {med*1e3:.2f} ms, conv share {share:.2f} -> conv {med*share*1e3:.2f} ms = {fl/(med*share)/1e9:.1f} GFLOPS  {dict(tot)}")
