"""Writes the ONNX fixtures of the import tests, with the outputs PyTorch and ONNX Runtime
give on recorded images, so that the tests need neither.

    python3 bench/onnx_fixtures.py [--out tests/fixtures]

- `resnet20.onnx`: `ResNet20` of torch_reference.py with the weights of
  `resnet20.safetensors` (graph_fixtures.py), exported by `torch.onnx.export`. In eval mode
  the exporter folds each batch norm into the convolution before it, so the file holds
  Conv, Relu, Add, GlobalAveragePool (or ReduceMean), Flatten and Gemm.
- `concat-cnn.onnx`: a small CNN made to use every supported operator: two branches joined
  by Concat, a batch norm that cannot be folded (after the Concat), MaxPool, AveragePool, a
  residual Add, GELU in PyTorch's Erf form, Tanh, Flatten, Gemm, a MatMul followed by Add,
  and LayerNormalization.

- `gate-mlp.onnx` (`--models gate-mlp --record gate-mlp-logits.safetensors`): a dense
  layer gated by a `Sigmoid`, the first of the operators torchvision's families need.

`onnx-logits.safetensors` (or the `--record` file) holds, for each model, the images
(`images`, 16 of them, shared), PyTorch's logits (`NAME.torch`) and ONNX Runtime's
(`NAME.ort`).
"""
import argparse, os, sys
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import ResNet20  # noqa: E402


class ConcatCnn(nn.Module):
    """Input [batch, 1, 28, 28] to 10 logits."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.left = nn.Conv2d(8, 8, 3, padding=1)
        self.right = nn.Conv2d(8, 4, 1)
        self.norm = nn.BatchNorm2d(12)
        self.mix = nn.Conv2d(12, 12, 3, padding=1, groups=3)
        self.fc1 = nn.Linear(12 * 7 * 7, 32)
        self.w2 = nn.Parameter(torch.randn(32, 24) / 32 ** 0.5)
        self.b2 = nn.Parameter(torch.randn(24) * 0.1)
        self.ln = nn.LayerNorm(24)
        self.fc3 = nn.Linear(24, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))                                    # [b, 8, 28, 28]
        x = torch.cat([self.left(x), self.right(x)], 1)             # [b, 12, 28, 28]
        x = F.max_pool2d(F.relu(self.norm(x)), 2)                   # [b, 12, 14, 14]
        x = x + F.gelu(self.mix(x))                                 # [b, 12, 14, 14]
        x = torch.tanh(F.avg_pool2d(x, 2))                          # [b, 12, 7, 7]
        x = F.relu(self.fc1(torch.flatten(x, 1)))                   # [b, 32]
        x = self.ln(x @ self.w2 + self.b2)                          # [b, 24]
        return self.fc3(x)


class GateMlp(nn.Module):
    """Input [batch, 1, 28, 28] to 10 logits, through a sigmoid."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.sigmoid(self.fc1(torch.flatten(x, 1)))            # [b, 32]
        return self.fc2(x)                                          # [b, 10]


def randomized(model, seed):
    """Every parameter and statistic drawn at random, so that a wrong layout or a tensor
    read in the wrong place changes the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(("running_mean", "bias")) or name == "b2":
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.dim() == 1:
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) / t[0].numel() ** 0.5)
    return model.eval()


def export(model, path):
    torch.onnx.export(
        model, torch.zeros(1, 1, 28, 28), path, dynamo=False, opset_version=17,
        input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures")
    ap.add_argument("--models", default="resnet20,concat-cnn")
    ap.add_argument("--record", default="onnx-logits.safetensors")
    a = ap.parse_args()
    import onnxruntime as ort

    def resnet():
        m = ResNet20()
        m.load_state_dict(load_file(os.path.join(a.out, "resnet20.safetensors")))
        return m.eval()

    makers = {
        "resnet20": resnet,
        "concat-cnn": lambda: randomized(ConcatCnn(), 3),
        "gate-mlp": lambda: randomized(GateMlp(), 7),
    }
    models = {name: makers[name]() for name in a.models.split(",")}
    images = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    record = {"images": images}
    for name, model in models.items():
        path = os.path.join(a.out, f"{name}.onnx")
        export(model, path)
        with torch.no_grad():
            record[f"{name}.torch"] = model(images).contiguous()
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        (ort_logits,) = session.run(None, {"image": images.numpy()})
        record[f"{name}.ort"] = torch.from_numpy(np.ascontiguousarray(ort_logits))
        gap = (record[f"{name}.torch"] - record[f"{name}.ort"]).abs().max().item()
        print(f"{path}: {os.path.getsize(path)} bytes, PyTorch and ONNX Runtime differ by {gap:.2e}")
    save_file(record, os.path.join(a.out, a.record))


if __name__ == "__main__":
    main()
