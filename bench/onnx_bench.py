"""Times ONNX Runtime on a dense export and a pruned export of the same network, in the same
run, at batch 1 and 128, and prints the speed-ups and the file sizes.

    sparsity-explorer export --checkpoint dense.ckpt --out dense/
    sparsity-explorer export --checkpoint pruned.ckpt --out pruned/
    python3 bench/onnx_bench.py dense/model.onnx pruned/model.onnx [--threads 2]

Both models take the same input (random images here; ONNX Runtime's time does not depend on
the values). Needs `onnxruntime` and `numpy`. One JSON line per model and batch, then a
summary line.
"""
import argparse, json, os, time
import numpy as np
import onnxruntime as ort


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def images_per_s(s, batch, seconds):
    inp = s.get_inputs()[0]
    c, h, w = inp.shape[1:]
    x = np.random.default_rng(0).random((batch, c, h, w), dtype=np.float32)
    feed = {inp.name: x}
    for _ in range(5):
        s.run(None, feed)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or runs < 5:
        s.run(None, feed)
        runs += 1
    return runs * batch / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dense")
    ap.add_argument("pruned")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    sessions = {name: session(path, a.threads) for name, path in (("dense", a.dense), ("pruned", a.pruned))}
    speed = {}
    for batch in (1, 128):
        for name, s in sessions.items():
            speed[name, batch] = images_per_s(s, batch, a.seconds)
            print(json.dumps({"model": name, "batch": batch, "images_per_s": round(speed[name, batch], 1),
                              "onnxruntime": ort.__version__, "threads": a.threads}), flush=True)
    print(json.dumps({
        "dense_bytes": os.path.getsize(a.dense), "pruned_bytes": os.path.getsize(a.pruned),
        "size_ratio": round(os.path.getsize(a.dense) / os.path.getsize(a.pruned), 2),
        "speedup_batch_1": round(speed["pruned", 1] / speed["dense", 1], 2),
        "speedup_batch_128": round(speed["pruned", 128] / speed["dense", 128], 2),
    }))


if __name__ == "__main__":
    main()
