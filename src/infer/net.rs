//! Host inference of any network, graph included: every convolution runs as its weight
//! matrix `[out, in * kh * kw]` over image patches (im2col), and every dense layer and
//! attention projection as its weight matrix over feature columns, so the same dense, CSR
//! and 2:4 kernels serve them all. A batch norm (evaluation mode) right after the
//! convolution it alone reads is folded into it, which leaves the mask unchanged; dropout
//! is the identity.

use super::{InferError, param, transpose};
use crate::host::ops::{Act, Maps};
use crate::layers::{HostBuild, HostOp, HostWeight};
use crate::model::stack::{Outputs, Readers, Source};
use crate::model::{HostTensor, StackConfig};

/// One step per layer of the network: its operation and what it reads.
#[derive(Debug)]
struct Step {
    op: Box<dyn HostOp>,
    sources: Vec<Source>,
}

/// A model as a graph of host operations.
#[derive(Debug)]
pub struct Net {
    steps: Vec<Step>,
    /// How many steps read the input and each step's output.
    readers: Readers,
    /// One example's input: channels, height, width.
    input: [usize; 3],
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
            weights.push(HostWeight {
                w,
                b,
                mask,
                out: pw.shape.out,
                row,
            });
        }
        let mut build = HostBuild::new(params, weights, &readers.layers, sparse);
        for l in &layers {
            build.source = match l.sources[0] {
                Source::Layer(j) => Some(j),
                Source::Input => None,
            };
            let op = l.kind.host(&l.at(), &mut build)?;
            build.ops.push(op);
        }
        let steps = build
            .ops
            .into_iter()
            .zip(&layers)
            .map(|(mut op, l)| {
                op.finish(sparse);
                Step {
                    op,
                    sources: l.sources.clone(),
                }
            })
            .collect();
        Ok(Self {
            steps,
            readers,
            input: stack.input,
        })
    }

    /// Weights stored over all layers.
    pub fn stored(&self) -> usize {
        self.steps.iter().map(|s| s.op.stored()).sum()
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
            values.set(i, step.op.run(inputs));
        }
        match values.into_last() {
            Some(Act::Features(f)) => transpose(&f.data, f.f, f.columns()),
            Some(Act::Maps(m)) => m.data,
            None => Vec::new(),
        }
    }
}
