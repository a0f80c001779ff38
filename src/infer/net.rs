//! Host inference of the convolutional models: every convolution runs as its weight matrix
//! `[out, in * kh * kw]` over image patches (im2col), so the same dense, CSR and 2:4
//! kernels serve convolutions and dense layers. Batch norm (evaluation mode) is folded into
//! the convolution before it, which leaves the mask unchanged.

use super::{InferError, Linear, build_layer, param, transpose};
use crate::model::{HostTensor, ModelKind};

/// Activations channel-major: `[c][n][h][w]`.
struct Maps {
    data: Vec<f32>,
    c: usize,
    n: usize,
    h: usize,
    w: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Conv {
        layer: Linear,
        in_c: usize,
        k: usize,
        pad: usize,
    },
    Relu,
    MaxPool2,
    Flatten,
    Dense(Linear),
}

/// A model as a list of host operations.
#[derive(Clone, Debug, PartialEq)]
pub struct Net {
    ops: Vec<Op>,
}

enum Act {
    Maps(Maps),
    /// `[features][n]`.
    Features(Vec<f32>, usize),
}

fn im2col(m: &Maps, k: usize, pad: usize) -> (Vec<f32>, usize, usize) {
    let (oh, ow) = (m.h + 2 * pad + 1 - k, m.w + 2 * pad + 1 - k);
    let cols = m.n * oh * ow;
    let mut p = vec![0.0f32; m.c * k * k * cols];
    for ci in 0..m.c {
        for ky in 0..k {
            for kx in 0..k {
                let row = (ci * k + ky) * k + kx;
                let dst = &mut p[row * cols..(row + 1) * cols];
                for i in 0..m.n {
                    for oy in 0..oh {
                        let y = oy + ky;
                        if y < pad || y - pad >= m.h {
                            continue;
                        }
                        let src = ((ci * m.n + i) * m.h + (y - pad)) * m.w;
                        for ox in 0..ow {
                            let x = ox + kx;
                            if x >= pad && x - pad < m.w {
                                dst[(i * oh + oy) * ow + ox] = m.data[src + x - pad];
                            }
                        }
                    }
                }
            }
        }
    }
    (p, oh, ow)
}

impl Net {
    /// Builds the model's operations from its parameters (PyTorch names and layout) and
    /// masks (`masks[i]` for the i-th prunable layer), dense or in the best sparse storage.
    pub fn build(
        model: ModelKind,
        params: &[HostTensor],
        masks: &[Option<Vec<u8>>],
        sparse: bool,
    ) -> Result<Self, InferError> {
        let get = |n: String| param(params, n);
        let specs = model.layer_specs();
        let mut layers = Vec::new();
        for (spec, mask) in specs.iter().zip(masks) {
            let s = spec.shape;
            let mut w = get(format!("{}.weight", spec.name))?.values.clone();
            let mut b = get(format!("{}.bias", spec.name))?.values.clone();
            if w.len() != s.numel() || b.len() != s.out {
                return Err(InferError::Shape {
                    name: spec.name.clone(),
                    reason: "weight or bias does not match the layer".into(),
                });
            }
            // seed-cnn: batch norm after conv2, folded into it
            if model == ModelKind::SeedCnn && spec.name == "conv2" {
                let v = |n: &str| get(format!("norm.{n}")).map(|t| t.values.clone());
                let (g, beta, mean, var) = (
                    v("weight")?,
                    v("bias")?,
                    v("running_mean")?,
                    v("running_var")?,
                );
                for o in 0..s.out {
                    let scale = g[o] / (var[o] + 1e-5).sqrt();
                    w[o * s.row_len()..(o + 1) * s.row_len()]
                        .iter_mut()
                        .for_each(|x| *x *= scale);
                    b[o] = (b[o] - mean[o]) * scale + beta[o];
                }
            }
            let mask = mask.clone().unwrap_or_else(|| vec![1; s.numel()]);
            let layer = build_layer(s.out, s.row_len(), &w, &mask, b, sparse);
            layers.push((layer, s));
        }
        let mut it = layers.into_iter();
        let mut conv = |pad: usize| {
            let (layer, s) = it.next().expect("the model lists this layer");
            Op::Conv {
                layer,
                in_c: s.inp,
                k: s.kh,
                pad,
            }
        };
        let mut ops = match model {
            ModelKind::Mlp => vec![Op::Flatten],
            ModelKind::Lenet5 => vec![
                conv(2),
                Op::Relu,
                Op::MaxPool2,
                conv(0),
                Op::Relu,
                Op::MaxPool2,
                Op::Flatten,
            ],
            ModelKind::SeedCnn => vec![
                conv(2),
                Op::Relu,
                Op::MaxPool2,
                conv(2),
                Op::Relu,
                Op::MaxPool2,
                Op::Flatten,
            ],
            ModelKind::SmallCnn => vec![conv(0), Op::Relu, Op::MaxPool2, Op::Flatten],
        };
        let dense: Vec<Linear> = it.map(|(l, _)| l).collect();
        let last = dense.len().saturating_sub(1);
        for (i, l) in dense.into_iter().enumerate() {
            ops.push(Op::Dense(l));
            if i < last {
                ops.push(Op::Relu);
            }
        }
        Ok(Self { ops })
    }

    /// Weights stored over all layers.
    pub fn stored(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Conv { layer, .. } | Op::Dense(layer) => layer.stored(),
                _ => 0,
            })
            .sum()
    }

    /// `x`: `[batch, 784]` images; returns `[batch, 10]` logits.
    pub fn forward(&self, x: &[f32], batch: usize) -> Vec<f32> {
        // [n][1][28][28] is already channel-major for one channel
        let mut act = Act::Maps(Maps {
            data: x.to_vec(),
            c: 1,
            n: batch,
            h: 28,
            w: 28,
        });
        for op in &self.ops {
            act = match (op, act) {
                (
                    Op::Conv {
                        layer,
                        in_c,
                        k,
                        pad,
                    },
                    Act::Maps(m),
                ) => {
                    debug_assert_eq!(m.c, *in_c);
                    let (patches, oh, ow) = im2col(&m, *k, *pad);
                    let data = layer.forward_transposed(&patches, m.n * oh * ow);
                    Act::Maps(Maps {
                        data,
                        c: layer.out(),
                        n: m.n,
                        h: oh,
                        w: ow,
                    })
                }
                (Op::Relu, Act::Maps(mut m)) => {
                    m.data.iter_mut().for_each(|v| *v = v.max(0.0));
                    Act::Maps(m)
                }
                (Op::Relu, Act::Features(mut f, n)) => {
                    f.iter_mut().for_each(|v| *v = v.max(0.0));
                    Act::Features(f, n)
                }
                (Op::MaxPool2, Act::Maps(m)) => {
                    let (h, w) = (m.h / 2, m.w / 2);
                    let mut data = vec![0.0f32; m.c * m.n * h * w];
                    for plane in 0..m.c * m.n {
                        let src = &m.data[plane * m.h * m.w..];
                        for y in 0..h {
                            for x in 0..w {
                                let at =
                                    |dy: usize, dx: usize| src[(2 * y + dy) * m.w + 2 * x + dx];
                                data[(plane * h + y) * w + x] =
                                    at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                            }
                        }
                    }
                    Act::Maps(Maps {
                        data,
                        c: m.c,
                        n: m.n,
                        h,
                        w,
                    })
                }
                (Op::Flatten, Act::Maps(m)) => {
                    let hw = m.h * m.w;
                    let mut f = vec![0.0f32; m.data.len()];
                    for c in 0..m.c {
                        for i in 0..m.n {
                            for p in 0..hw {
                                f[(c * hw + p) * m.n + i] = m.data[(c * m.n + i) * hw + p];
                            }
                        }
                    }
                    Act::Features(f, m.n)
                }
                (Op::Dense(layer), Act::Features(f, n)) => {
                    Act::Features(layer.forward_transposed(&f, n), n)
                }
                (_, other) => other,
            };
        }
        match act {
            Act::Features(f, n) => transpose(&f, f.len() / n, n),
            Act::Maps(m) => m.data,
        }
    }
}
