//! Timing dense against sparse inference of one model on the test split.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::net::Net;
use super::{InferError, Mlp};
use crate::data::Split;
use crate::export::compact;
use crate::layers::{Flatten, Kind, Linear, Relu};
use crate::model::stack::Source;
use crate::model::{HostTensor, StackConfig};

/// Dense against sparse, measured in one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InferBench {
    pub sparsity: f64,
    pub dense_batch1_us: f64,
    pub sparse_batch1_us: f64,
    pub dense_batch128_samples_per_s: f64,
    pub sparse_batch128_samples_per_s: f64,
    /// Largest difference between dense and sparse logits over the test split.
    pub max_abs_diff: f32,
    pub batch1_speedup: f64,
    pub batch128_speedup: f64,
    /// Weights each path stores (multiply-adds per example).
    pub dense_macs: usize,
    pub sparse_macs: usize,
}

/// Mean seconds per call of `f`, over at least `budget`.
fn time_per_call(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let t0 = Instant::now();
    let mut calls = 0u64;
    while t0.elapsed() < budget {
        f();
        calls += 1;
    }
    t0.elapsed().as_secs_f64() / calls as f64
}

/// Flatten, then linear layers with a bias and a ReLU between each two, each layer reading
/// the one before it: the shape the dense-layer path (with its removal of dead neurons)
/// serves.
fn is_dense_stack(stack: &StackConfig) -> bool {
    let Ok(layers) = stack.resolve(None) else {
        return false;
    };
    let chain = layers.iter().enumerate().all(|(i, l)| {
        let before = i.checked_sub(1).map_or(Source::Input, Source::Layer);
        l.sources == [before]
    });
    let kinds: Vec<&str> = layers.iter().map(|l| l.kind.type_name()).collect();
    let dense_relu = |i: usize| match i % 2 {
        0 => Linear::TYPE,
        _ => Relu::TYPE,
    };
    let expected: Vec<&str> = std::iter::once(Flatten::TYPE)
        .chain((0..layers.len().saturating_sub(1)).map(dense_relu))
        .collect();
    let biased = layers
        .iter()
        .flat_map(|l| l.prunable())
        .all(|w| w.bias_key.is_some());
    chain && biased && kinds == expected && layers.len() % 2 == 0
}

/// A model on the host, dense or sparse: the MLP with its shrinking of dead neurons and
/// its row-major batch-1 path, or any model as a list of operations.
enum Host {
    Mlp(Mlp),
    Net(Net),
}

impl Host {
    fn build(
        stack: &StackConfig,
        params: &[HostTensor],
        masks: &[Option<Vec<u8>>],
        sparse: bool,
    ) -> Result<Self, InferError> {
        if is_dense_stack(stack) {
            let names: Vec<String> = stack
                .layer_specs(None)
                .map_err(|e| InferError::Unsupported(e.to_string()))?
                .into_iter()
                .map(|s| s.name)
                .collect();
            let m = if sparse {
                Mlp::sparse(&names, params, masks)?
            } else {
                Mlp::dense(&names, params, masks)?
            };
            Ok(Host::Mlp(m))
        } else if sparse {
            // the channel groups and heads the masks removed whole are taken out for real
            let small = compact(stack, params, masks)
                .map_err(|e| InferError::Unsupported(e.to_string()))?;
            Ok(Host::Net(if small.widths.is_empty() {
                Net::build(stack, params, masks, true)?
            } else {
                Net::build(&small.stack, &small.params, &small.masks, true)?
            }))
        } else {
            Ok(Host::Net(Net::build(stack, params, masks, false)?))
        }
    }

    fn forward(&self, x: &[f32], batch: usize) -> Vec<f32> {
        match self {
            Host::Mlp(m) => m.forward(x, batch),
            Host::Net(n) => n.forward(x, batch),
        }
    }

    fn macs(&self) -> usize {
        match self {
            Host::Mlp(m) => m.macs(),
            Host::Net(n) => n.stored(),
        }
    }
}

/// Builds both paths of `model` from its parameters and masks (`masks[i]` for the i-th
/// prunable layer) and times them on `test`: batch-1 latency and batch-128 throughput,
/// `seconds` each.
pub fn measure(
    stack: &StackConfig,
    params: &[HostTensor],
    masks: &[Option<Vec<u8>>],
    test: &Split,
    seconds: f64,
) -> Result<InferBench, InferError> {
    let dense = Host::build(stack, params, masks, false)?;
    let sparse = Host::build(stack, params, masks, true)?;
    let all: Vec<usize> = (0..test.len()).collect();
    let mut max_abs_diff = 0.0f32;
    for chunk in all.chunks(128) {
        let (x, _) = test.gather(chunk);
        let (a, b) = (
            dense.forward(&x, chunk.len()),
            sparse.forward(&x, chunk.len()),
        );
        for (p, q) in a.iter().zip(&b) {
            max_abs_diff = max_abs_diff.max((p - q).abs());
        }
    }
    for i in all.iter().take(64) {
        let (x, _) = test.gather(&[*i]);
        for (p, q) in dense.forward(&x, 1).iter().zip(&sparse.forward(&x, 1)) {
            max_abs_diff = max_abs_diff.max((p - q).abs());
        }
    }
    let budget = Duration::from_secs_f64(seconds.max(0.05));
    let (one, _) = test.gather(&all[..1]);
    let (batch, _) = test.gather(&all[..128.min(all.len())]);
    let n = batch.len() / test.image_len().max(1);
    let dense_1 = time_per_call(budget, || {
        black_box(dense.forward(black_box(&one), 1));
    });
    let sparse_1 = time_per_call(budget, || {
        black_box(sparse.forward(black_box(&one), 1));
    });
    let dense_128 = time_per_call(budget, || {
        black_box(dense.forward(black_box(&batch), n));
    });
    let sparse_128 = time_per_call(budget, || {
        black_box(sparse.forward(black_box(&batch), n));
    });
    let (zeros, total) = masks.iter().flatten().fold((0usize, 0usize), |(z, t), m| {
        (z + m.iter().filter(|&&k| k == 0).count(), t + m.len())
    });
    Ok(InferBench {
        sparsity: zeros as f64 / total.max(1) as f64,
        dense_batch1_us: dense_1 * 1e6,
        sparse_batch1_us: sparse_1 * 1e6,
        dense_batch128_samples_per_s: n as f64 / dense_128,
        sparse_batch128_samples_per_s: n as f64 / sparse_128,
        max_abs_diff,
        batch1_speedup: dense_1 / sparse_1,
        batch128_speedup: dense_128 / sparse_128,
        dense_macs: dense.macs(),
        sparse_macs: sparse.macs(),
    })
}
