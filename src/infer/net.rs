//! Host inference of any network, graph included: every convolution runs as its weight
//! matrix `[out, in * kh * kw]` over image patches (im2col), and every dense layer and
//! attention projection as its weight matrix over feature columns, so the same dense, CSR
//! and 2:4 kernels serve them all. A batch norm (evaluation mode) right after the
//! convolution it alone reads is folded into it, which leaves the mask unchanged; dropout
//! is the identity.

use super::ops::{self, Act, Features, Maps};
use super::{InferError, Linear, build_layer, param, transpose};
use crate::kernels::activation::gelu;
use crate::model::stack::{Outputs, Readers, ResolvedLayer, Source};
use crate::model::{HostTensor, LayerConfig, StackConfig};

#[derive(Clone, Debug, PartialEq)]
enum Op {
    /// One layer per group of channels (one for an ungrouped convolution).
    Conv {
        groups: Vec<Linear>,
        k: usize,
        stride: usize,
        pad: usize,
    },
    Dense(Linear),
    Attention {
        in_proj: Linear,
        out_proj: Linear,
        heads: usize,
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
    GlobalAvgPool,
    Tokens,
    /// `[tokens][d]`
    Position(Vec<f32>),
    LayerNorm {
        gamma: Vec<f32>,
        beta: Vec<f32>,
    },
    /// A batch norm that could not fold into a convolution.
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
    },
    MeanTokens,
    Add,
    Concat,
    /// Dropout, or a batch norm folded into the convolution it reads.
    Identity,
}

/// One step per layer of the network: its operation and what it reads.
#[derive(Clone, Debug, PartialEq)]
struct Step {
    op: Op,
    sources: Vec<Source>,
}

/// A model as a graph of host operations.
#[derive(Clone, Debug, PartialEq)]
pub struct Net {
    steps: Vec<Step>,
    /// How many steps read the input and each step's output.
    readers: Readers,
    /// One example's input: channels, height, width.
    input: [usize; 3],
}

/// A convolution's parameters before its operation is built (a batch norm may fold in).
struct PendingConv {
    w: Vec<f32>,
    b: Vec<f32>,
    mask: Vec<u8>,
    out: usize,
    row: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
}

impl PendingConv {
    /// Folds the batch norm that follows into the convolution (inference statistics):
    /// `w' = w * g / sqrt(var + eps)`, `b' = (b - mean) * g / sqrt(var + eps) + beta`.
    fn fold_norm(&mut self, norm: &Norm) {
        for o in 0..self.out {
            self.w[o * self.row..(o + 1) * self.row]
                .iter_mut()
                .for_each(|x| *x *= norm.scale[o]);
            self.b[o] = self.b[o] * norm.scale[o] + norm.shift[o];
        }
    }

    /// The operation: each group's filters (consecutive rows of the weight) as a layer.
    fn into_op(self, sparse: bool) -> Op {
        let out = self.out / self.groups;
        let part = |g: usize| g * out * self.row..(g + 1) * out * self.row;
        let groups = (0..self.groups)
            .map(|g| {
                let bias = self.b[g * out..(g + 1) * out].to_vec();
                build_layer(
                    out,
                    self.row,
                    &self.w[part(g)],
                    &self.mask[part(g)],
                    bias,
                    sparse,
                )
            })
            .collect();
        Op::Conv {
            groups,
            k: self.k,
            stride: self.stride,
            pad: self.pad,
        }
    }
}

/// An evaluation-mode batch norm as a per-channel scale and shift.
struct Norm {
    scale: Vec<f32>,
    shift: Vec<f32>,
}

impl Norm {
    fn read(params: &[HostTensor], name: &str) -> Result<Self, InferError> {
        let v = |p: &str| param(params, format!("{name}.{p}")).map(|t| t.values.clone());
        let (gamma, beta, mean, var) = (
            v("weight")?,
            v("bias")?,
            v("running_mean")?,
            v("running_var")?,
        );
        let scale: Vec<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + 1e-5).sqrt())
            .collect();
        let shift = beta
            .iter()
            .zip(&mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        Ok(Self { scale, shift })
    }
}

/// A prunable weight's values, bias (zeros when it has none) and mask, checked against
/// its shape.
struct Weight {
    w: Vec<f32>,
    b: Vec<f32>,
    mask: Vec<u8>,
    out: usize,
    row: usize,
}

impl Net {
    /// Builds a network's operations from its parameters (PyTorch names and layout) and
    /// masks (`masks[i]` for the i-th prunable weight), dense or in the best sparse storage.
    pub fn build(
        stack: &StackConfig,
        params: &[HostTensor],
        masks: &[Option<Vec<u8>>],
        sparse: bool,
    ) -> Result<Self, InferError> {
        let layers = stack
            .resolve(None)
            .map_err(|e| InferError::Unsupported(e.to_string()))?;
        let readers = Readers::of(&layers);
        let mut weights = Vec::new();
        for (i, pw) in layers.iter().flat_map(|l| l.prunable()).enumerate() {
            let row = pw.shape.row_len();
            let w = param(params, pw.weight_key.clone())?.values.clone();
            let b = match &pw.bias_key {
                Some(key) => param(params, key.clone())?.values.clone(),
                None => vec![0.0; pw.shape.out],
            };
            if w.len() != pw.shape.numel() || b.len() != pw.shape.out {
                return Err(InferError::Shape {
                    name: pw.name,
                    reason: "weight or bias does not match the layer".into(),
                });
            }
            let mask = masks
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or_else(|| vec![1; w.len()]);
            weights.push(Weight {
                w,
                b,
                mask,
                out: pw.shape.out,
                row,
            });
        }
        let steps = steps(&layers, weights, &readers.layers, params, sparse)?;
        Ok(Self {
            steps,
            readers,
            input: stack.input,
        })
    }

    /// Weights stored over all layers.
    pub fn stored(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match &s.op {
                Op::Conv { groups, .. } => groups.iter().map(Linear::stored).sum(),
                Op::Dense(layer) => layer.stored(),
                Op::Attention {
                    in_proj, out_proj, ..
                } => in_proj.stored() + out_proj.stored(),
                _ => 0,
            })
            .sum()
    }

    /// `x`: `[batch, c * h * w]` images; returns `[batch, classes]` logits.
    pub fn forward(&self, x: &[f32], batch: usize) -> Vec<f32> {
        let [c, h, w] = self.input;
        let hw = h * w;
        let mut data = vec![0.0f32; x.len()];
        for i in 0..batch {
            for ch in 0..c {
                data[(ch * batch + i) * hw..(ch * batch + i + 1) * hw]
                    .copy_from_slice(&x[(i * c + ch) * hw..(i * c + ch + 1) * hw]);
            }
        }
        let mut values = Outputs::new(
            Act::Maps(Maps {
                data,
                c,
                n: batch,
                h,
                w,
            }),
            &self.readers,
        );
        for (i, step) in self.steps.iter().enumerate() {
            let inputs: Vec<Act> = step.sources.iter().map(|s| values.take(*s)).collect();
            values.set(i, run(&step.op, inputs));
        }
        match values.into_last() {
            Some(Act::Features(f)) => transpose(&f.data, f.f, f.columns()),
            Some(Act::Maps(m)) => m.data,
            None => Vec::new(),
        }
    }
}

/// The host steps of resolved `layers`, each prunable weight taken in order from `weights`.
fn steps(
    layers: &[ResolvedLayer],
    weights: Vec<Weight>,
    readers: &[usize],
    params: &[HostTensor],
    sparse: bool,
) -> Result<Vec<Step>, InferError> {
    let mut weights = weights.into_iter();
    let mut next = || weights.next().expect("one weight per prunable weight");
    let dense = |w: Weight| build_layer(w.out, w.row, &w.w, &w.mask, w.b, sparse);
    let mut pending: Vec<Option<PendingConv>> = (0..layers.len()).map(|_| None).collect();
    let mut ops: Vec<Op> = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let op = match &l.config {
            LayerConfig::Conv2d {
                kernel,
                stride,
                padding,
                groups,
                ..
            } => {
                let w = next();
                pending[i] = Some(PendingConv {
                    w: w.w,
                    b: w.b,
                    mask: w.mask,
                    out: w.out,
                    row: w.row,
                    k: *kernel,
                    stride: *stride,
                    pad: *padding,
                    groups: *groups,
                });
                Op::Identity // built below, once a batch norm may have folded in
            }
            LayerConfig::Batchnorm2d => {
                let norm = Norm::read(params, &l.name)?;
                match l.sources[0] {
                    Source::Layer(j) if readers[j] == 1 && pending[j].is_some() => {
                        pending[j].as_mut().expect("checked").fold_norm(&norm);
                        Op::Identity
                    }
                    _ => Op::Affine {
                        scale: norm.scale,
                        shift: norm.shift,
                    },
                }
            }
            LayerConfig::Linear { .. } => Op::Dense(dense(next())),
            LayerConfig::Attention { .. } => {
                let (heads, _) = l.config.heads_of(l.input.channels()).expect("attention");
                let (a, b) = (next(), next());
                Op::Attention {
                    in_proj: dense(a),
                    out_proj: dense(b),
                    heads,
                }
            }
            LayerConfig::Layernorm => {
                let v =
                    |p: &str| param(params, format!("{}.{p}", l.name)).map(|t| t.values.clone());
                Op::LayerNorm {
                    gamma: v("weight")?,
                    beta: v("bias")?,
                }
            }
            LayerConfig::Position => Op::Position(param(params, l.name.clone())?.values.clone()),
            other => parameterless(other),
        };
        ops.push(op);
    }
    Ok(ops
        .into_iter()
        .zip(pending)
        .zip(layers)
        .map(|((op, conv), l)| Step {
            op: conv.map_or(op, |c| c.into_op(sparse)),
            sources: l.sources.clone(),
        })
        .collect())
}

/// The operation of a layer without parameters.
fn parameterless(config: &LayerConfig) -> Op {
    match config {
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
        LayerConfig::GlobalAvgpool => Op::GlobalAvgPool,
        LayerConfig::Tokens => Op::Tokens,
        LayerConfig::MeanTokens => Op::MeanTokens,
        LayerConfig::Add { .. } => Op::Add,
        LayerConfig::Concat { .. } => Op::Concat,
        _ => Op::Identity,
    }
}

/// One operation on its inputs.
fn run(op: &Op, mut inputs: Vec<Act>) -> Act {
    if let Op::Add | Op::Concat = op {
        return ops::merge(inputs, matches!(op, Op::Add));
    }
    let mut x = inputs.swap_remove(0);
    // the element-wise and per-channel operations work in place
    let done_in_place = match (op, &mut x) {
        (Op::Relu, x) => {
            x.data_mut().iter_mut().for_each(|v| *v = v.max(0.0));
            true
        }
        (Op::Gelu, x) => {
            x.data_mut().iter_mut().for_each(|v| *v = gelu(*v));
            true
        }
        (Op::Tanh, x) => {
            x.data_mut().iter_mut().for_each(|v| *v = v.tanh());
            true
        }
        (Op::Affine { scale, shift }, x) => {
            ops::affine(x, scale, shift);
            true
        }
        (Op::Position(pos), Act::Features(f)) => {
            ops::add_position(f, pos);
            true
        }
        (Op::LayerNorm { gamma, beta }, Act::Features(f)) => {
            ops::layer_norm(f, gamma, beta);
            true
        }
        _ => false,
    };
    if done_in_place { x } else { transform(op, x) }
}

/// An operation that gives a value of another size or kind.
fn transform(op: &Op, x: Act) -> Act {
    match (op, x) {
        (
            Op::Conv {
                groups,
                k,
                stride,
                pad,
            },
            Act::Maps(m),
        ) => Act::Maps(ops::grouped_conv(groups, &m, *k, *stride, *pad)),
        (Op::Dense(layer), Act::Features(f)) => Act::Features(Features {
            data: layer.forward_transposed(&f.data, f.columns()),
            f: layer.out(),
            n: f.n,
            tokens: f.tokens,
        }),
        (
            Op::Attention {
                in_proj,
                out_proj,
                heads,
            },
            Act::Features(f),
        ) => Act::Features(ops::attention(&f, in_proj, out_proj, *heads)),
        (Op::Pool { k, stride, max }, Act::Maps(m)) => Act::Maps(ops::pool(&m, *k, *stride, *max)),
        (Op::Flatten, Act::Maps(m)) => Act::Features(ops::flatten_maps(&m)),
        (Op::Flatten, Act::Features(f)) if f.tokens > 1 => Act::Features(ops::flatten_tokens(&f)),
        (Op::GlobalAvgPool, Act::Maps(m)) => Act::Features(ops::global_avgpool(&m)),
        (Op::Tokens, Act::Maps(m)) => Act::Features(ops::tokens(m)),
        (Op::MeanTokens, Act::Features(f)) => Act::Features(ops::mean_tokens(&f)),
        (_, x) => x,
    }
}
