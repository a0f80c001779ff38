"""Dense CPU inference time of PyTorch on weights exported by `sparsity-explorer export`.

    python3 torch_infer.py model.safetensors [--model mlp|resnet20|vit_tiny] [--seconds 1] [--threads 2]

Prints one JSON line: batch-1 latency (microseconds) and batch-128 throughput of the model
in the file (LeNet-300-100 by default; ResNet20 or VitTiny of torch_reference.py, loaded
from the file's state_dict), the reference for `sparsity-explorer bench-infer`.
"""
import argparse, json, os, sys, time
import torch
from safetensors.torch import load_file

def timed(fn, seconds):
    for _ in range(3):
        fn()
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        fn()
        n += 1
    return (time.perf_counter() - t) / n

def mlp(w):
    layers = [n[:-len(".weight")] for n in w if n.endswith(".weight") and not n.endswith("_mask")]
    layers.sort()
    def forward(x):
        x = x.flatten(1)
        for i, l in enumerate(layers):
            x = torch.nn.functional.linear(x, w[l + ".weight"], w[l + ".bias"])
            if i + 1 < len(layers):
                x = torch.relu(x)
        return x
    return forward

def module(name, w):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_reference import ResNet20, VitTiny
    model = {"resnet20": ResNet20, "vit_tiny": VitTiny}[name]()
    state = {k: v for k, v in w.items() if not k.endswith("_mask")}
    model.load_state_dict(state, strict=False)
    return model.eval()

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--model", default="mlp", choices=["mlp", "resnet20", "vit_tiny"])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w = load_file(a.weights)
    forward = mlp(w) if a.model == "mlp" else module(a.model, w)
    one, batch = torch.rand(1, 1, 28, 28), torch.rand(128, 1, 28, 28)
    with torch.inference_mode():
        b1 = timed(lambda: forward(one), a.seconds)
        b128 = timed(lambda: forward(batch), a.seconds)
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "model": a.model, "batch1_us": b1 * 1e6,
                      "batch128_samples_per_s": 128 / b128}))
