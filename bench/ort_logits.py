"""ONNX Runtime's outputs for a model on images, for the test that compares them with the
explorer's (tests/onnx.rs).

    python3 bench/ort_logits.py MODEL.onnx IMAGES.f32 N,C,H,W OUT.f32

IMAGES.f32 holds N*C*H*W little-endian float32 values; OUT.f32 gets the model's first
output, float32, in the same layout. Needs `onnxruntime` and `numpy`.
"""
import sys
import numpy as np
import onnxruntime as ort

model, images, shape, out = sys.argv[1:5]
x = np.fromfile(images, dtype="<f4").reshape([int(d) for d in shape.split(",")])
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
(y,) = session.run(None, {session.get_inputs()[0].name: x})[:1]
np.ascontiguousarray(y, dtype="<f4").tofile(out)
print(f"{model}: onnxruntime {ort.__version__}, output {list(y.shape)}")
