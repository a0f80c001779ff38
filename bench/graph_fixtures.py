"""Writes the PyTorch fixtures of the graph networks' tests: a `state_dict` of `ResNet20` and
of `VitTiny` (the modules of torch_reference.py), and each module's logits on a few images.

    python3 bench/graph_fixtures.py [--out tests/fixtures]

Every parameter and batch-norm statistic is drawn at random (not PyTorch's initial values,
which leave batch norms and position embeddings at identities), so a test that loads the
file and matches the logits checks every tensor's name, layout and use. The test reads
the files without PyTorch.
"""
import argparse, os, sys
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import ResNet20, VitTiny  # noqa: E402


def randomized(model):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(("running_mean", "bias")) or name == "pos":
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.dim() == 1:  # norm scales
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) / fan_in ** 0.5)
    return model.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    images = torch.rand(4, 1, 28, 28)
    for name, module in (("resnet20", ResNet20), ("vit_tiny", VitTiny)):
        model = randomized(module())
        with torch.no_grad():
            logits = model(images)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(a.out, f"{name}.safetensors"))
        save_file({"images": images, "logits": logits.contiguous()},
                  os.path.join(a.out, f"{name}-logits.safetensors"),
                  metadata={"torch": torch.__version__})
        print(name, sum(v.numel() for v in state.values()), "values;", "logits[0]", logits[0].tolist())


if __name__ == "__main__":
    main()
