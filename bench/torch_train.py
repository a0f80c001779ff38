"""Trains a module of torch_reference.py on Fashion-MNIST as the explorer's presets do
(Adam 1e-3, batch 128, pixels / 255, a fresh shuffle per epoch) and prints its test
accuracy: the PyTorch side of `run --preset resnet20-fashion` and `vit-fashion`. With
--save it also writes the trained `state_dict` as safetensors, which `--weights` loads; with
--onnx, the trained module exported by `torch.onnx.export`, which `--onnx` loads (its
accuracy printed here is what `sensitivity --onnx` must report).

    python3 bench/torch_train.py --model resnet20 [--epochs 3] [--threads 2] [--save FILE] [--onnx FILE]
"""
import argparse, gzip, json, os, sys, time
import numpy as np
import torch, torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import ResNet20, VitTiny  # noqa: E402
from onnx_fixtures import ConcatCnn, export  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def images(name):
    return torch.from_numpy(idx(name).astype(np.float32) / 255.0).unsqueeze(1)


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        hits = sum((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
                   for i in range(0, len(x), 1000))
    model.train()
    return hits / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["resnet20", "vit_tiny", "concat_cnn"], required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save")
    ap.add_argument("--onnx")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xs, ys = images("train-images-idx3-ubyte.gz"), torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    xt, yt = images("t10k-images-idx3-ubyte.gz"), torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    model = {"resnet20": ResNet20, "vit_tiny": VitTiny, "concat_cnn": ConcatCnn}[a.model]()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    t = time.perf_counter()
    per_epoch = []
    for _ in range(a.epochs):
        order = torch.randperm(len(xs))
        for i in range(0, len(xs), a.batch):
            b = order[i:i + a.batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xs[b]), ys[b]).backward()
            opt.step()
        per_epoch.append(round(accuracy(model, xt, yt), 4))
    if a.save:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, a.save)
    if a.onnx:
        export(model.eval(), a.onnx)
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "model": a.model, "epochs": a.epochs,
                      "batch": a.batch, "threads": a.threads, "accuracy_per_epoch": per_epoch,
                      "accuracy": per_epoch[-1], "train_s": round(time.perf_counter() - t, 1)}))


if __name__ == "__main__":
    main()
