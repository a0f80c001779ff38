//! Host inference of any stack: every convolution runs as its weight matrix
//! `[out, in * kh * kw]` over image patches (im2col), so the same dense, CSR and 2:4
//! kernels serve convolutions and dense layers. Batch norm (evaluation mode) is folded into
//! the convolution before it, which leaves the mask unchanged; dropout is the identity.

use super::{InferError, Linear, build_layer, param, transpose};
use crate::model::{HostTensor, LayerConfig, Shape, StackConfig};

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
        stride: usize,
        pad: usize,
    },
    Relu,
    Gelu,
    Tanh,
    Pool {
        k: usize,
        stride: usize,
        max: bool,
    },
    Flatten,
    Dense(Linear),
}

/// A model as a list of host operations.
#[derive(Clone, Debug, PartialEq)]
pub struct Net {
    ops: Vec<Op>,
    /// One example's input: channels, height, width.
    input: [usize; 3],
}

enum Act {
    Maps(Maps),
    /// `[features][n]`.
    Features(Vec<f32>, usize),
}

fn im2col(m: &Maps, k: usize, stride: usize, pad: usize) -> (Vec<f32>, usize, usize) {
    let (oh, ow) = (
        (m.h + 2 * pad - k) / stride + 1,
        (m.w + 2 * pad - k) / stride + 1,
    );
    let cols = m.n * oh * ow;
    let mut p = vec![0.0f32; m.c * k * k * cols];
    for ci in 0..m.c {
        for ky in 0..k {
            for kx in 0..k {
                let row = (ci * k + ky) * k + kx;
                let dst = &mut p[row * cols..(row + 1) * cols];
                for i in 0..m.n {
                    for oy in 0..oh {
                        let y = oy * stride + ky;
                        if y < pad || y - pad >= m.h {
                            continue;
                        }
                        let src = ((ci * m.n + i) * m.h + (y - pad)) * m.w;
                        for ox in 0..ow {
                            let x = ox * stride + kx;
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

/// A convolution's parameters before its operation is built.
struct PendingConv {
    w: Vec<f32>,
    b: Vec<f32>,
    mask: Vec<u8>,
    out: usize,
    in_c: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

impl PendingConv {
    /// Folds the batch norm that follows into the convolution (inference statistics):
    /// `w' = w * g / sqrt(var + eps)`, `b' = (b - mean) * g / sqrt(var + eps) + beta`.
    fn fold_norm(&mut self, gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32]) {
        let row = self.in_c * self.k * self.k;
        for o in 0..self.out {
            let scale = gamma[o] / (var[o] + 1e-5).sqrt();
            self.w[o * row..(o + 1) * row]
                .iter_mut()
                .for_each(|x| *x *= scale);
            self.b[o] = (self.b[o] - mean[o]) * scale + beta[o];
        }
    }

    fn into_op(self, sparse: bool) -> Op {
        let row = self.in_c * self.k * self.k;
        Op::Conv {
            layer: build_layer(self.out, row, &self.w, &self.mask, self.b, sparse),
            in_c: self.in_c,
            k: self.k,
            stride: self.stride,
            pad: self.pad,
        }
    }
}

/// GELU (exact, as PyTorch's default) or tanh of one value.
fn activate(op: &Op, v: f32) -> f32 {
    match op {
        Op::Gelu => 0.5 * v * (1.0 + erf(v / std::f32::consts::SQRT_2)),
        _ => v.tanh(),
    }
}

/// The error function (Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7).
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * (-x * x).exp();
    if x < 0.0 { -y } else { y }
}

/// Max or mean over `k x k` windows `stride` apart (no padding, PyTorch's floor).
fn pool(m: &Maps, k: usize, stride: usize, max: bool) -> Maps {
    let (h, w) = ((m.h - k) / stride + 1, (m.w - k) / stride + 1);
    let mut data = vec![0.0f32; m.c * m.n * h * w];
    for plane in 0..m.c * m.n {
        let src = &m.data[plane * m.h * m.w..(plane + 1) * m.h * m.w];
        for y in 0..h {
            for x in 0..w {
                let window = (0..k).flat_map(|dy| {
                    let row = (y * stride + dy) * m.w + x * stride;
                    src[row..row + k].iter().copied()
                });
                data[(plane * h + y) * w + x] = if max {
                    window.fold(f32::NEG_INFINITY, f32::max)
                } else {
                    window.sum::<f32>() / (k * k) as f32
                };
            }
        }
    }
    Maps {
        data,
        c: m.c,
        n: m.n,
        h,
        w,
    }
}

impl Op {
    /// The operation of a layer without parameters (`None` for dropout, nothing at
    /// inference). Convolutions, batch norms and dense layers are built with their weights.
    fn without_parameters(config: &LayerConfig) -> Option<Op> {
        Some(match config {
            LayerConfig::Maxpool2d { kernel, stride } => Op::Pool {
                k: *kernel,
                stride: stride.unwrap_or(*kernel),
                max: true,
            },
            LayerConfig::Avgpool2d { kernel, stride } => Op::Pool {
                k: *kernel,
                stride: stride.unwrap_or(*kernel),
                max: false,
            },
            LayerConfig::Relu => Op::Relu,
            LayerConfig::Gelu => Op::Gelu,
            LayerConfig::Tanh => Op::Tanh,
            LayerConfig::Flatten => Op::Flatten,
            LayerConfig::Dropout { .. }
            | LayerConfig::Conv2d { .. }
            | LayerConfig::Batchnorm2d { .. }
            | LayerConfig::Linear { .. } => return None,
        })
    }
}

/// A prunable layer's weight and bias, checked against its shape.
fn layer_weights(
    params: &[HostTensor],
    name: &str,
    numel: usize,
    out: usize,
) -> Result<(Vec<f32>, Vec<f32>), InferError> {
    let w = param(params, format!("{name}.weight"))?.values.clone();
    let b = param(params, format!("{name}.bias"))?.values.clone();
    if w.len() != numel || b.len() != out {
        return Err(InferError::Shape {
            name: name.into(),
            reason: "weight or bias does not match the layer".into(),
        });
    }
    Ok((w, b))
}

impl Net {
    /// Builds a stack's operations from its parameters (PyTorch names and layout) and
    /// masks (`masks[i]` for the i-th prunable layer), dense or in the best sparse storage.
    pub fn build(
        stack: &StackConfig,
        params: &[HostTensor],
        masks: &[Option<Vec<u8>>],
        sparse: bool,
    ) -> Result<Self, InferError> {
        let get = |n: String| param(params, n);
        let layers = stack
            .resolve(None)
            .map_err(|e| InferError::Unsupported(e.to_string()))?;
        let mut masks = masks.iter();
        let mut ops: Vec<Op> = Vec::new();
        let weights = |name: &str, numel, out| layer_weights(params, name, numel, out);
        // a convolution waits for a batch norm that may follow and fold into it
        let mut conv_pending: Option<PendingConv> = None;
        let flush = |pending: &mut Option<PendingConv>, ops: &mut Vec<Op>| {
            if let Some(p) = pending.take() {
                ops.push(p.into_op(sparse));
            }
        };
        for l in &layers {
            // the next prunable layer's mask (`None`: all kept)
            let mut take_mask = |numel: usize| {
                masks
                    .next()
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| vec![1; numel])
            };
            match &l.config {
                LayerConfig::Conv2d {
                    out,
                    kernel,
                    stride,
                    padding,
                    ..
                } => {
                    flush(&mut conv_pending, &mut ops);
                    let Shape::Image { c, .. } = l.input else {
                        unreachable!("checked by resolve")
                    };
                    let numel = out * c * kernel * kernel;
                    let (w, b) = weights(&l.name, numel, *out)?;
                    conv_pending = Some(PendingConv {
                        w,
                        b,
                        mask: take_mask(numel),
                        out: *out,
                        in_c: c,
                        k: *kernel,
                        stride: *stride,
                        pad: *padding,
                    });
                }
                LayerConfig::Batchnorm2d { .. } => {
                    let Some(conv) = conv_pending.as_mut() else {
                        return Err(InferError::Unsupported(format!(
                            "{}: batch norm runs on the host only right after a convolution",
                            l.name
                        )));
                    };
                    let v = |n: &str| get(format!("{}.{n}", l.name)).map(|t| t.values.clone());
                    conv.fold_norm(
                        &v("weight")?,
                        &v("bias")?,
                        &v("running_mean")?,
                        &v("running_var")?,
                    );
                }
                LayerConfig::Linear { out, .. } => {
                    flush(&mut conv_pending, &mut ops);
                    let inp = l.input.numel();
                    let (w, b) = weights(&l.name, out * inp, *out)?;
                    let mask = take_mask(out * inp);
                    ops.push(Op::Dense(build_layer(*out, inp, &w, &mask, b, sparse)));
                }
                other => {
                    flush(&mut conv_pending, &mut ops);
                    ops.extend(Op::without_parameters(other));
                }
            }
        }
        flush(&mut conv_pending, &mut ops);
        Ok(Self {
            ops,
            input: stack.input,
        })
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

    /// `x`: `[batch, c * h * w]` images; returns `[batch, classes]` logits.
    pub fn forward(&self, x: &[f32], batch: usize) -> Vec<f32> {
        let [c, h, w] = self.input;
        let data = if c == 1 {
            x.to_vec() // [n][1][h][w] is already channel-major
        } else {
            let hw = h * w;
            let mut d = vec![0.0f32; x.len()];
            for i in 0..batch {
                for ch in 0..c {
                    d[(ch * batch + i) * hw..(ch * batch + i + 1) * hw]
                        .copy_from_slice(&x[(i * c + ch) * hw..(i * c + ch + 1) * hw]);
                }
            }
            d
        };
        let mut act = Act::Maps(Maps {
            data,
            c,
            n: batch,
            h,
            w,
        });
        for op in &self.ops {
            act = match (op, act) {
                (
                    Op::Conv {
                        layer,
                        in_c,
                        k,
                        stride,
                        pad,
                    },
                    Act::Maps(m),
                ) => {
                    debug_assert_eq!(m.c, *in_c);
                    let (patches, oh, ow) = im2col(&m, *k, *stride, *pad);
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
                (Op::Gelu | Op::Tanh, Act::Maps(mut m)) => {
                    m.data.iter_mut().for_each(|v| *v = activate(op, *v));
                    Act::Maps(m)
                }
                (Op::Gelu | Op::Tanh, Act::Features(mut f, n)) => {
                    f.iter_mut().for_each(|v| *v = activate(op, *v));
                    Act::Features(f, n)
                }
                (Op::Pool { k, stride, max }, Act::Maps(m)) => {
                    Act::Maps(pool(&m, *k, *stride, *max))
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
