//! Batch normalization in training mode on host slices in NCHW layout: batch statistics per
//! channel, forward and backward, each in two passes over the activation (burn's composite
//! version transposes the activation and makes about a dozen passes).

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// The shape of a normalized activation: `[batch, channels, pixels]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormGeometry {
    pub batch: usize,
    pub channels: usize,
    pub pixels: usize,
}

impl NormGeometry {
    fn count(&self) -> usize {
        self.batch * self.pixels
    }

    /// The `batch` contiguous runs of channel `c`'s values.
    fn runs<'a>(&self, data: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (p, stride) = (self.pixels, self.channels * self.pixels);
        (0..self.batch).map(move |n| &data[n * stride + c * p..n * stride + (c + 1) * p])
    }
}

/// What a batch normalization does besides normalizing: its epsilon, and whether the ReLU
/// that reads it is folded into the same passes (forward, and its mask in the backward
/// pass, recomputed from the input instead of kept).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormOptions {
    pub epsilon: f64,
    pub relu: bool,
}

impl NormOptions {
    /// A batch normalization alone.
    pub fn plain(epsilon: f64) -> Self {
        Self {
            epsilon,
            relu: false,
        }
    }

    /// `y = x * scale + shift` for channel statistics `(mean, variance)`: the one
    /// definition the forward pass and the backward pass's ReLU mask both use.
    fn affine(&self, gamma: f32, beta: f32, mean: f32, variance: f32) -> (f32, f32) {
        let scale = gamma / (variance + self.epsilon as f32).sqrt();
        (scale, beta - mean * scale)
    }
}

/// The forward pass: normalized output, and the batch mean and (biased) variance per
/// channel, as burn's `batch_norm_train` defines them.
pub struct NormForward {
    pub output: Vec<f32>,
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
}

/// Mean and biased variance of channel `c` in one pass: the sums of `d = x - shift` and of
/// `d^2`, with `shift` one of the channel's own values so that `d` is of the spread's size
/// and the difference `mean(d^2) - mean(d)^2` loses no precision to a large mean. Each run
/// is summed in f32 lanes, runs in f64.
fn channel_stats(g: &NormGeometry, x: &[f32], c: usize) -> (f32, f32) {
    let n = g.count().max(1) as f64;
    let shift = g.runs(x, c).next().and_then(|run| run.first()).copied();
    let shift = shift.unwrap_or(0.0);
    let (mut sum, mut squares) = (0.0f64, 0.0f64);
    for run in g.runs(x, c) {
        let (s, q) = lane_sums(run, shift);
        sum += s;
        squares += q;
    }
    let mean_d = sum / n;
    let variance = (squares / n - mean_d * mean_d).max(0.0);
    ((shift as f64 + mean_d) as f32, variance as f32)
}

/// `sum(x - shift)` and `sum((x - shift)^2)` over a run, in sixteen f32 lanes each.
#[inline]
fn lane_sums(run: &[f32], shift: f32) -> (f64, f64) {
    let (mut acc, mut acc2) = ([0.0f32; 16], [0.0f32; 16]);
    let chunks = run.chunks_exact(16);
    let (mut rest, mut rest2) = (0.0f32, 0.0f32);
    for &v in chunks.remainder() {
        rest += v - shift;
        rest2 += (v - shift) * (v - shift);
    }
    for chunk in chunks {
        for k in 0..16 {
            let d = chunk[k] - shift;
            acc[k] += d;
            acc2[k] += d * d;
        }
    }
    let total = |a: [f32; 16], r: f32| a.iter().map(|&v| v as f64).sum::<f64>() + r as f64;
    (total(acc, rest), total(acc2, rest2))
}

/// A vector of `len` values computed in parallel, `chunk` at a time: `values(i)` gives the
/// `i`-th chunk's values (exactly `chunk` of them, fewer for a last short chunk). Each value
/// is written once into fresh memory, without first zeroing it.
fn par_collect<I>(len: usize, chunk: usize, values: impl Fn(usize) -> I + Sync) -> Vec<f32>
where
    I: Iterator<Item = f32>,
{
    let mut out = Vec::with_capacity(len);
    if len > 0 {
        out.spare_capacity_mut()[..len]
            .par_chunks_mut(chunk.max(1))
            .enumerate()
            .for_each(|(i, dst): (usize, &mut [MaybeUninit<f32>])| {
                let mut written = 0;
                for (d, v) in dst.iter_mut().zip(values(i)) {
                    d.write(v);
                    written += 1;
                }
                assert_eq!(written, dst.len(), "par_collect: chunk {i} short");
            });
    }
    // SAFETY: every chunk of the first `len` values was written in full (checked above; a
    // short chunk panics before this point).
    unsafe { out.set_len(len) };
    out
}

/// `y = (x - mean) / sqrt(var + eps) * gamma + beta` with the batch's statistics, then
/// `max(y, 0)` when the options fold a ReLU in.
pub fn batch_norm_forward(
    g: &NormGeometry,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    options: NormOptions,
) -> NormForward {
    assert_eq!(
        x.len(),
        g.batch * g.channels * g.pixels,
        "batch norm: input size"
    );
    assert!(
        gamma.len() == g.channels && beta.len() == g.channels,
        "batch norm: parameters"
    );
    let stats: Vec<(f32, f32)> = (0..g.channels)
        .into_par_iter()
        .map(|c| channel_stats(g, x, c))
        .collect();
    let p = g.pixels;
    let relu = options.relu;
    let output = par_collect(x.len(), p, |i| {
        let c = i % g.channels;
        let (mean, var) = stats[c];
        let (scale, shift) = options.affine(gamma[c], beta[c], mean, var);
        x[i * p..(i + 1) * p].iter().map(move |&x| {
            // a NaN stays NaN, for the run's check of the loss to see
            let y = x * scale + shift;
            if relu && y < 0.0 { 0.0 } else { y }
        })
    });
    NormForward {
        output,
        mean: stats.iter().map(|s| s.0).collect(),
        variance: stats.iter().map(|s| s.1).collect(),
    }
}

impl NormForward {
    /// The batch statistics the backward pass reads.
    pub fn statistics(&self) -> BatchStatistics<'_> {
        BatchStatistics {
            mean: &self.mean,
            variance: &self.variance,
        }
    }
}

/// The batch mean and biased variance per channel that the forward pass normalized with,
/// kept for the backward pass: one pair, so that a call cannot swap them.
#[derive(Clone, Copy, Debug)]
pub struct BatchStatistics<'a> {
    pub mean: &'a [f32],
    pub variance: &'a [f32],
}

/// Gradients of [`batch_norm_forward`] for input, `gamma` and `beta`.
pub struct NormGradients {
    pub dx: Vec<f32>,
    pub dgamma: Vec<f32>,
    pub dbeta: Vec<f32>,
}

/// With `xhat = (x - mean) / std`: `dbeta = sum(dy)`, `dgamma = sum(dy * xhat)` and
/// `dx = gamma / std * (dy - mean(dy) - xhat * mean(dy * xhat))`, where `dy` is first
/// zeroed wherever a folded ReLU cut the output (`x * scale + shift <= 0`).
pub fn batch_norm_backward(
    g: &NormGeometry,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    statistics: BatchStatistics<'_>,
    options: NormOptions,
    dy: &[f32],
) -> NormGradients {
    let BatchStatistics { mean, variance } = statistics;
    assert_eq!(
        x.len(),
        g.batch * g.channels * g.pixels,
        "batch norm backward: input size"
    );
    assert_eq!(dy.len(), x.len(), "batch norm backward: gradient size");
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|&v| 1.0 / (v + options.epsilon as f32).sqrt())
        .collect();
    // the folded ReLU's gradient: dy where the output was positive, zero elsewhere
    let relu = options.relu;
    let affine: Vec<(f32, f32)> = (0..g.channels)
        .map(|c| options.affine(gamma[c], beta[c], mean[c], variance[c]))
        .collect();
    let gate = move |(scale, shift): (f32, f32), x: f32, d: f32| {
        if !relu || x * scale + shift > 0.0 {
            d
        } else {
            0.0
        }
    };
    let sums: Vec<(f32, f32)> = (0..g.channels)
        .into_par_iter()
        .map(|c| {
            let (mut s, mut sx) = (0.0f64, 0.0f64);
            let (m, r, a) = (mean[c], inv_std[c], affine[c]);
            for (xs, ds) in g.runs(x, c).zip(g.runs(dy, c)) {
                let (mut acc, mut acc_x) = ([0.0f32; 16], [0.0f32; 16]);
                let (xc, dc) = (xs.chunks_exact(16), ds.chunks_exact(16));
                for (&x, &d) in xc.remainder().iter().zip(dc.remainder()) {
                    let d = gate(a, x, d);
                    acc[0] += d;
                    acc_x[0] += d * ((x - m) * r);
                }
                for (x, d) in xc.zip(dc) {
                    for k in 0..16 {
                        let d = gate(a, x[k], d[k]);
                        acc[k] += d;
                        acc_x[k] += d * ((x[k] - m) * r);
                    }
                }
                s += acc.iter().map(|&a| a as f64).sum::<f64>();
                sx += acc_x.iter().map(|&a| a as f64).sum::<f64>();
            }
            (s as f32, sx as f32)
        })
        .collect();
    let n = g.count().max(1) as f32;
    let p = g.pixels;
    let dx = par_collect(x.len(), p, |i| {
        let c = i % g.channels;
        let (mean_dy, mean_dy_xhat) = (sums[c].0 / n, sums[c].1 / n);
        let (scale, m, r, a) = (gamma[c] * inv_std[c], mean[c], inv_std[c], affine[c]);
        let (x, dy) = (&x[i * p..(i + 1) * p], &dy[i * p..(i + 1) * p]);
        x.iter().zip(dy).map(move |(&x, &dy)| {
            let dy = gate(a, x, dy);
            scale * (dy - mean_dy - (x - m) * r * mean_dy_xhat)
        })
    });
    NormGradients {
        dx,
        dgamma: sums.iter().map(|s| s.1).collect(),
        dbeta: sums.iter().map(|s| s.0).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test values in `[-2, 2]`.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        crate::kernels::test_values(n, seed)
            .iter()
            .map(|v| 2.0 * v)
            .collect()
    }

    const G: NormGeometry = NormGeometry {
        batch: 3,
        channels: 2,
        pixels: 5,
    };

    #[test]
    fn forward_normalizes_each_channel_over_batch_and_pixels() {
        let x = values(30, 1);
        let f = batch_norm_forward(&G, &x, &[1.0, 2.0], &[0.0, -1.0], NormOptions::plain(1e-5));
        for c in 0..2 {
            let ys: Vec<f32> = G.runs(&f.output, c).flatten().copied().collect();
            let mean = ys.iter().sum::<f32>() / 15.0;
            let var = ys.iter().map(|y| (y - mean) * (y - mean)).sum::<f32>() / 15.0;
            let (want_mean, want_std) = [(0.0, 1.0), (-1.0, 2.0)][c];
            assert!((mean - want_mean).abs() < 1e-4, "channel {c} mean {mean}");
            assert!(
                (var.sqrt() - want_std).abs() < 1e-3,
                "channel {c} std {}",
                var.sqrt()
            );
            let xs: Vec<f32> = G.runs(&x, c).flatten().copied().collect();
            let xm = xs.iter().sum::<f32>() / 15.0;
            assert!((f.mean[c] - xm).abs() < 1e-5);
        }
    }

    /// A channel far from zero (a mean 10,000 times its spread): the one-pass statistics
    /// keep the variance to the precision of a two-pass sum in f64.
    #[test]
    fn statistics_hold_for_a_large_mean() {
        let x: Vec<f32> = values(30, 4).iter().map(|v| 1000.0 + 0.1 * v).collect();
        let f = batch_norm_forward(&G, &x, &[1.0, 1.0], &[0.0, 0.0], NormOptions::plain(0.0));
        for c in 0..2 {
            let xs: Vec<f64> = G.runs(&x, c).flatten().map(|&v| v as f64).collect();
            let mean = xs.iter().sum::<f64>() / 15.0;
            let var = xs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 15.0;
            assert!((f.mean[c] as f64 - mean).abs() < 1e-3, "channel {c} mean");
            assert!(
                (f.variance[c] as f64 - var).abs() < 1e-3 * var,
                "channel {c} variance {} vs {var}",
                f.variance[c]
            );
        }
    }

    /// The gradients of `sum(y * w)` against central differences of the forward pass.
    #[test]
    fn gradients_match_finite_differences() {
        let (x, gamma, beta, w) = (
            values(30, 2),
            vec![0.7, -1.3],
            vec![0.2, 0.4],
            values(30, 3),
        );
        let objective = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
            let f = batch_norm_forward(&G, x, gamma, beta, NormOptions::plain(1e-5));
            f.output
                .iter()
                .zip(&w)
                .map(|(&y, &w)| y as f64 * w as f64)
                .sum()
        };
        let f = batch_norm_forward(&G, &x, &gamma, &beta, NormOptions::plain(1e-5));
        let stats = f.statistics();
        let grads = batch_norm_backward(&G, &x, &gamma, &beta, stats, NormOptions::plain(1e-5), &w);
        let h = 1e-2f32;
        for i in 0..x.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let n = ((objective(&xp, &gamma, &beta) - objective(&xm, &gamma, &beta))
                / (2.0 * h as f64)) as f32;
            assert!(
                (grads.dx[i] - n).abs() < 2e-2 * (1.0 + n.abs()),
                "dx[{i}] {} vs {n}",
                grads.dx[i]
            );
        }
        for c in 0..2 {
            let (mut gp, mut gm) = (gamma.clone(), gamma.clone());
            gp[c] += h;
            gm[c] -= h;
            let n =
                ((objective(&x, &gp, &beta) - objective(&x, &gm, &beta)) / (2.0 * h as f64)) as f32;
            assert!(
                (grads.dgamma[c] - n).abs() < 1e-2 * (1.0 + n.abs()),
                "dgamma[{c}]"
            );
            let (mut bp, mut bm) = (beta.clone(), beta.clone());
            bp[c] += h;
            bm[c] -= h;
            let n = ((objective(&x, &gamma, &bp) - objective(&x, &gamma, &bm)) / (2.0 * h as f64))
                as f32;
            assert!(
                (grads.dbeta[c] - n).abs() < 1e-2 * (1.0 + n.abs()),
                "dbeta[{c}]"
            );
        }
    }

    /// A folded ReLU is the ReLU of the plain output, and its gradient the plain gradient
    /// of `dy` zeroed where that output was not positive.
    #[test]
    fn a_folded_relu_is_the_relu_of_the_output_and_masks_the_gradient() {
        let (x, gamma, beta, dy) = (values(30, 5), [0.9, -1.1], [0.3, -0.2], values(30, 6));
        let plain = NormOptions::plain(1e-5);
        let relu = NormOptions {
            relu: true,
            ..plain
        };
        let p = batch_norm_forward(&G, &x, &gamma, &beta, plain);
        let r = batch_norm_forward(&G, &x, &gamma, &beta, relu);
        assert!(p.output.iter().any(|&y| y < 0.0) && p.output.iter().any(|&y| y > 0.0));
        for (y, want) in r.output.iter().zip(&p.output) {
            assert_eq!(*y, want.max(0.0));
        }
        let gated: Vec<f32> = dy
            .iter()
            .zip(&p.output)
            .map(|(&d, &y)| if y > 0.0 { d } else { 0.0 })
            .collect();
        let stats = p.statistics();
        let want = batch_norm_backward(&G, &x, &gamma, &beta, stats, plain, &gated);
        let got = batch_norm_backward(&G, &x, &gamma, &beta, stats, relu, &dy);
        assert_eq!(got.dx, want.dx);
        assert_eq!(got.dgamma, want.dgamma);
        assert_eq!(got.dbeta, want.dbeta);
    }
}
