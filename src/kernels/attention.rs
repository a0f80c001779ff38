//! Scaled dot-product attention of every head, forward and backward, on host slices: from
//! the packed projection `qkv[batch, n, 3 * inner]` (PyTorch's `in_proj` rows: queries,
//! keys, values, each `heads` blocks of `head_dim`) to the heads side by side
//! `[batch, n, inner]`. Per image and head, three small gemms read Q, K and V in place
//! (strided, no copies) and the softmax runs on rows that stay in cache; burn's composite
//! version splits, transposes, scales and copies the operands through a dozen tensor
//! operations each way.

use rayon::prelude::*;

use super::activation::exp_nonpositive;
use super::gemm::{GemmShape, Operand, matmul};

/// The shapes of one attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionGeometry {
    pub batch: usize,
    /// Tokens per image.
    pub tokens: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl AttentionGeometry {
    /// The product of a head's `[n, hd]` operands into its `[n, n]` scores: `q @ k^T`,
    /// `dy @ v^T`.
    fn scores_product(&self) -> GemmShape {
        GemmShape {
            m: self.tokens,
            n: self.tokens,
            k: self.head_dim,
        }
    }

    /// The product of `[n, n]` weights (or their gradient) and a head's `[n, hd]`
    /// operand: `p @ v`, `p^T @ dy`, `ds @ k`, `ds^T @ q`.
    fn mixing_product(&self) -> GemmShape {
        GemmShape {
            m: self.tokens,
            n: self.head_dim,
            k: self.tokens,
        }
    }

    /// The heads' features side by side.
    pub fn inner(&self) -> usize {
        self.heads * self.head_dim
    }

    /// One token's packed row: its query, key and value.
    fn row(&self) -> usize {
        3 * self.inner()
    }

    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
}

/// The forward pass: the heads' outputs side by side, and each head's attention weights
/// (`[batch, heads, n, n]`, rows summing to 1), which the backward pass needs.
pub struct AttentionForward {
    pub output: Vec<f32>,
    pub weights: Vec<f32>,
}

/// Each row of `scores` (`n` wide) times `scale`, then softmax, in place.
fn softmax_rows(scores: &mut [f32], n: usize, scale: f32) {
    for row in scores.chunks_mut(n) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = exp_nonpositive((*v - max) * scale);
            sum += *v;
        }
        let inverse = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inverse);
    }
}

/// Writes `block[n, width]` into columns `first..first + width` of `rows[n, stride]`.
fn place(block: &[f32], width: usize, rows: &mut [f32], stride: usize, first: usize) {
    for (src, dst) in block.chunks(width).zip(rows.chunks_mut(stride)) {
        dst[first..first + width].copy_from_slice(src);
    }
}

pub fn attention_forward(g: &AttentionGeometry, qkv: &[f32]) -> AttentionForward {
    let (n, hd, inner, row) = (g.tokens, g.head_dim, g.inner(), g.row());
    assert_eq!(qkv.len(), g.batch * n * row, "attention: input size");
    let mut output = vec![0.0f32; g.batch * n * inner];
    let mut weights = vec![0.0f32; g.batch * g.heads * n * n];
    if output.is_empty() || n == 0 {
        return AttentionForward { output, weights };
    }
    output
        .par_chunks_mut(n * inner)
        .zip(weights.par_chunks_mut(g.heads * n * n))
        .zip(qkv.par_chunks(n * row))
        .for_each(|((out, weights), qkv)| {
            let mut mixed = vec![0.0f32; n * hd];
            for (h, p) in weights.chunks_mut(n * n).enumerate() {
                let (q, k, v) = (
                    &qkv[h * hd..],
                    &qkv[inner + h * hd..],
                    &qkv[2 * inner + h * hd..],
                );
                // p[n, n] = q[n, hd] @ k^T[hd, n], then softmax of each row (scaled)
                let (q, kt) = (Operand::row_major(q, row), Operand::transposed(k, row));
                matmul(g.scores_product(), p, false, q, kt);
                softmax_rows(p, n, g.scale());
                // mixed[n, hd] = p[n, n] @ v[n, hd]
                let v = Operand::row_major(v, row);
                matmul(
                    g.mixing_product(),
                    &mut mixed,
                    false,
                    Operand::row_major(p, n),
                    v,
                );
                place(&mixed, hd, out, inner, h * hd);
            }
        });
    AttentionForward { output, weights }
}

/// The gradient of `qkv` for the output gradient `dy` (`[batch, n, inner]`), from the
/// forward pass's `weights`: per head `dV = P^T dY`, `dP = dY V^T`, the softmax's
/// `dS = P (dP - rowsum(dP P))` (scaled), `dQ = dS K`, `dK = dS^T Q`.
pub fn attention_backward(
    g: &AttentionGeometry,
    qkv: &[f32],
    weights: &[f32],
    dy: &[f32],
) -> Vec<f32> {
    let (n, hd, inner, row) = (g.tokens, g.head_dim, g.inner(), g.row());
    assert_eq!(
        qkv.len(),
        g.batch * n * row,
        "attention backward: input size"
    );
    assert_eq!(
        weights.len(),
        g.batch * g.heads * n * n,
        "attention backward: weights size"
    );
    assert_eq!(
        dy.len(),
        g.batch * n * inner,
        "attention backward: gradient size"
    );
    let mut dqkv = vec![0.0f32; qkv.len()];
    if dqkv.is_empty() || n == 0 || inner == 0 {
        return dqkv;
    }
    dqkv.par_chunks_mut(n * row)
        .zip(qkv.par_chunks(n * row))
        .zip(weights.par_chunks(g.heads * n * n))
        .zip(dy.par_chunks(n * inner))
        .for_each(|(((dqkv, qkv), weights), dy)| {
            let (mut ds, mut block) = (vec![0.0f32; n * n], vec![0.0f32; n * hd]);
            for (h, p) in weights.chunks(n * n).enumerate() {
                let (q, k, v) = (
                    &qkv[h * hd..],
                    &qkv[inner + h * hd..],
                    &qkv[2 * inner + h * hd..],
                );
                let dy = Operand::row_major(&dy[h * hd..], inner);
                // dV[n, hd] = p^T[n, n] @ dy[n, hd]
                matmul(
                    g.mixing_product(),
                    &mut block,
                    false,
                    Operand::transposed(p, n),
                    dy,
                );
                place(&block, hd, dqkv, row, 2 * inner + h * hd);
                // dP[n, n] = dy[n, hd] @ v^T[hd, n]
                let vt = Operand::transposed(v, row);
                matmul(g.scores_product(), &mut ds, false, dy, vt);
                for (d, p) in ds.chunks_mut(n).zip(p.chunks(n)) {
                    let dot: f32 = d.iter().zip(p).map(|(d, p)| d * p).sum();
                    d.iter_mut()
                        .zip(p)
                        .for_each(|(d, &p)| *d = p * (*d - dot) * g.scale());
                }
                // dQ[n, hd] = dS[n, n] @ k[n, hd]
                let k = Operand::row_major(k, row);
                matmul(
                    g.mixing_product(),
                    &mut block,
                    false,
                    Operand::row_major(&ds, n),
                    k,
                );
                place(&block, hd, dqkv, row, h * hd);
                // dK[n, hd] = dS^T[n, n] @ q[n, hd]
                let q = Operand::row_major(q, row);
                matmul(
                    g.mixing_product(),
                    &mut block,
                    false,
                    Operand::transposed(&ds, n),
                    q,
                );
                place(&block, hd, dqkv, row, inner + h * hd);
            }
        });
    dqkv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values as values;

    /// Attention by its definition, in f64: per image and head, softmax(q k^T / sqrt(hd)) v.
    fn naive(g: &AttentionGeometry, qkv: &[f32]) -> Vec<f64> {
        let (n, hd, inner, row) = (g.tokens, g.head_dim, g.inner(), g.row());
        let mut out = vec![0.0f64; g.batch * n * inner];
        for b in 0..g.batch {
            let at = |t: usize, c: usize| qkv[(b * n + t) * row + c] as f64;
            for h in 0..g.heads {
                for i in 0..n {
                    let scores: Vec<f64> = (0..n)
                        .map(|j| {
                            (0..hd)
                                .map(|d| at(i, h * hd + d) * at(j, inner + h * hd + d))
                                .sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let sum: f64 = e.iter().sum();
                    for d in 0..hd {
                        out[(b * n + i) * inner + h * hd + d] = (0..n)
                            .map(|j| e[j] / sum * at(j, 2 * inner + h * hd + d))
                            .sum();
                    }
                }
            }
        }
        out
    }

    fn geometries() -> Vec<AttentionGeometry> {
        let g = |batch, tokens, heads, head_dim| AttentionGeometry {
            batch,
            tokens,
            heads,
            head_dim,
        };
        vec![g(3, 5, 2, 4), g(1, 7, 1, 3), g(2, 1, 3, 2), g(2, 9, 4, 8)]
    }

    #[test]
    fn forward_matches_the_definition_and_weights_are_distributions() {
        for g in geometries() {
            let qkv: Vec<f32> = values(g.batch * g.tokens * g.row(), 11)
                .iter()
                .map(|v| 3.0 * v)
                .collect();
            let f = attention_forward(&g, &qkv);
            for (i, (a, b)) in f.output.iter().zip(naive(&g, &qkv)).enumerate() {
                assert!(
                    (*a as f64 - b).abs() < 1e-5 * (1.0 + b.abs()),
                    "{g:?}[{i}]: {a} vs {b}"
                );
            }
            for row in f.weights.chunks(g.tokens) {
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{g:?}: a row sums to {sum}");
            }
        }
    }

    /// The gradient of `sum(y * dy)` against central differences of the definition.
    #[test]
    fn backward_matches_finite_differences() {
        for g in geometries() {
            let qkv = values(g.batch * g.tokens * g.row(), 12);
            let dy = values(g.batch * g.tokens * g.inner(), 13);
            let f = attention_forward(&g, &qkv);
            let dqkv = attention_backward(&g, &qkv, &f.weights, &dy);
            let objective = |x: &[f32]| -> f64 {
                naive(&g, x)
                    .iter()
                    .zip(&dy)
                    .map(|(y, &d)| y * d as f64)
                    .sum()
            };
            let h = 1e-3f32;
            for i in (0..qkv.len()).step_by(3) {
                let (mut plus, mut minus) = (qkv.clone(), qkv.clone());
                plus[i] += h;
                minus[i] -= h;
                let numeric = (objective(&plus) - objective(&minus)) / (2.0 * h as f64);
                assert!(
                    (dqkv[i] as f64 - numeric).abs() < 1e-3 * (1.0 + numeric.abs()),
                    "{g:?} dqkv[{i}]: {} vs {numeric}",
                    dqkv[i]
                );
            }
        }
    }
}
