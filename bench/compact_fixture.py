"""Records what PyTorch computes with the smaller ResNet-20 that an export describes: builds
`ResNet20` (torch_reference.py) at the widths of the export's `model-compact.json`, loads
`model-compact.safetensors` into it with `strict=True` (every name and shape must fit;
the masks beside the weights are checked, then set aside),
and saves its logits on the images of the graph fixtures.

    SPX_COMPACT_EXPORT=DIR cargo test --release --test graphs compact -- --nocapture
    python3 bench/compact_fixture.py DIR [--out tests/fixtures]

The first command keeps the export the test makes (ResNet-20 from
tests/fixtures/resnet20.safetensors, every channel group halved by magnitude, widths
multiples of 8) in DIR. The test then checks, without PyTorch, that the explorer's smaller
network gives these logits and that its widths are the ones PyTorch was built with.
"""
import argparse, json, os, sys
import torch, torch.nn as nn
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import ResNet20  # noqa: E402


def resnet20_at(widths):
    """ResNet20 with each convolution's output width from `widths` (layer name -> width),
    the others as built; every layer's input width follows from what it reads."""
    model = ResNet20()
    width = lambda name, conv: widths.get(name, conv.out_channels)
    cin = width("stem", model.stem)
    model.stem, model.bn = nn.Conv2d(1, cin, 3, 1, 1, bias=False), nn.BatchNorm2d(cin)
    for i, block in enumerate(model.blocks):
        stride = block.c1.stride
        inner, out = width(f"blocks.{i}.c1", block.c1), width(f"blocks.{i}.c2", block.c2)
        block.c1, block.b1 = nn.Conv2d(cin, inner, 3, stride, 1, bias=False), nn.BatchNorm2d(inner)
        block.c2, block.b2 = nn.Conv2d(inner, out, 3, 1, 1, bias=False), nn.BatchNorm2d(out)
        if len(block.short) > 0:
            block.short = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        cin = out
    model.fc = nn.Linear(cin, 10)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export")
    ap.add_argument("--out", default="tests/fixtures")
    a = ap.parse_args()
    described = json.load(open(os.path.join(a.export, "model-compact.json")))
    widths = {w["layer"]: w["after"] for w in described["widths"]}
    model = resnet20_at(widths).eval()
    state = load_file(os.path.join(a.export, "model-compact.safetensors"))
    # the file carries each pruned weight's mask beside it (`NAME_mask`, what
    # torch.nn.utils.prune names its buffer); the weights are already zero where it is
    masks = {k: state.pop(k) for k in [k for k in state if k.endswith("_mask")]}
    for name, mask in masks.items():
        assert torch.all(state[name[: -len("_mask")]][mask == 0] == 0), name
    model.load_state_dict(state, strict=True)
    images = load_file(os.path.join(a.out, "resnet20-logits.safetensors"))["images"]
    with torch.no_grad():
        logits = model(images)
    save_file({"logits": logits.contiguous()},
              os.path.join(a.out, "resnet20-compact-logits.safetensors"),
              metadata={"torch": torch.__version__, "widths": json.dumps(widths, sort_keys=True)})
    print(len(widths), "narrower layers; logits[0]", logits[0].tolist())


if __name__ == "__main__":
    main()
