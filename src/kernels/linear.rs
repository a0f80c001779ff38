//! Dense layers, `y[batch, out] = x[batch, in] @ w[in, out] + b` in burn's layout, forward
//! and backward, each product split by output columns (or weight rows) into one
//! single-threaded gemm per thread: each thread packs only its share of the weight.

use rayon::prelude::*;

use super::gemm::{GemmShape, Operand, assert_operands, matmul_raw};

/// `[rows, cols]` row-major matrix shapes of one dense layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearGeometry {
    pub batch: usize,
    pub inp: usize,
    pub out: usize,
}

/// Column ranges `[lo, hi)` splitting `n` columns into one share per thread, in multiples
/// of 16 (a vector of f32) where possible.
fn shares(n: usize) -> Vec<(usize, usize)> {
    let threads = rayon::current_num_threads().max(1);
    let step = n.div_ceil(threads).next_multiple_of(16).max(1);
    (0..n)
        .step_by(step)
        .map(|lo| (lo, (lo + step).min(n)))
        .collect()
}

/// `dst[m, lo..hi]` for each share, computed in parallel: `f(lo, hi, dst_block)` writes
/// the block whose row stride is `n`.
fn by_columns(dst: &mut [f32], m: usize, n: usize, f: impl Fn(usize, usize, *mut f32) + Sync) {
    assert!(dst.len() >= m * n);
    let base = SendPtr(dst.as_mut_ptr());
    shares(n).into_par_iter().for_each(|(lo, hi)| {
        let base = &base;
        // SAFETY: the shares are disjoint column ranges of `dst`, so the blocks written in
        // parallel never overlap, and each lies inside `dst` (asserted above).
        f(lo, hi, unsafe { base.0.add(lo) })
    });
}

struct SendPtr(*mut f32);
// SAFETY: used only to hand disjoint blocks of one buffer to rayon's threads.
unsafe impl Sync for SendPtr {}

/// `dst[m, n] = lhs[m, k] @ rhs[k, n]`, `dst` row-major, computed in column shares.
fn parallel_matmul(shape: GemmShape, dst: &mut [f32], lhs: Operand<'_>, rhs: Operand<'_>) {
    let (m, n) = (shape.m, shape.n);
    assert_operands(shape, &lhs, &rhs);
    by_columns(dst, m, n, |lo, hi, block| {
        let share = GemmShape {
            n: hi - lo,
            ..shape
        };
        // SAFETY: `block` points at column `lo` of row 0 of `dst`, so the product writes
        // rows 0..m of columns lo..hi with row stride n, inside `dst` and apart from the
        // other shares; columns lo..hi of `rhs` lie inside it (asserted).
        unsafe { matmul_raw(share, block, n, false, lhs, rhs.columns_from(lo)) }
    });
}

/// The forward pass: `y = x @ w + b`.
pub fn linear_forward(g: &LinearGeometry, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
    assert_eq!(x.len(), g.batch * g.inp, "linear: input size");
    assert_eq!(w.len(), g.inp * g.out, "linear: weight size");
    let mut y = vec![0.0f32; g.batch * g.out];
    // y[batch, out] = x[batch, inp] @ w[inp, out]
    let shape = GemmShape {
        m: g.batch,
        n: g.out,
        k: g.inp,
    };
    let (x, w) = (Operand::row_major(x, g.inp), Operand::row_major(w, g.out));
    parallel_matmul(shape, &mut y, x, w);
    if let Some(b) = b {
        for row in y.chunks_mut(g.out) {
            row.iter_mut().zip(b).for_each(|(y, b)| *y += b);
        }
    }
    y
}

/// Gradients of [`linear_forward`]: input (when asked), weight and bias.
pub struct LinearGradients {
    pub dx: Option<Vec<f32>>,
    pub dw: Vec<f32>,
    pub db: Vec<f32>,
}

/// `dx = dy @ w^T`, `dw = x^T @ dy`, `db = column sums of dy`.
pub fn linear_backward(
    g: &LinearGeometry,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    want_dx: bool,
) -> LinearGradients {
    assert_eq!(x.len(), g.batch * g.inp, "linear backward: input size");
    assert_eq!(w.len(), g.inp * g.out, "linear backward: weight size");
    assert_eq!(dy.len(), g.batch * g.out, "linear backward: gradient size");
    let dx = want_dx.then(|| {
        let mut dx = vec![0.0f32; g.batch * g.inp];
        // dx[batch, inp] = dy[batch, out] @ w^T[out, inp]
        let shape = GemmShape {
            m: g.batch,
            n: g.inp,
            k: g.out,
        };
        let (dy, w) = (Operand::row_major(dy, g.out), Operand::transposed(w, g.out));
        parallel_matmul(shape, &mut dx, dy, w);
        dx
    });
    let mut dw = vec![0.0f32; g.inp * g.out];
    // dw[inp, out] = x^T[inp, batch] @ dy[batch, out]
    let shape = GemmShape {
        m: g.inp,
        n: g.out,
        k: g.batch,
    };
    let (xt, dy_op) = (Operand::transposed(x, g.inp), Operand::row_major(dy, g.out));
    parallel_matmul(shape, &mut dw, xt, dy_op);
    let mut db = vec![0.0f32; g.out];
    for row in dy.chunks(g.out) {
        db.iter_mut().zip(row).for_each(|(d, r)| *d += r);
    }
    LinearGradients { dx, dw, db }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values as values;

    #[test]
    fn forward_and_gradients_match_the_definition() {
        for g in [
            LinearGeometry {
                batch: 3,
                inp: 5,
                out: 7,
            },
            LinearGeometry {
                batch: 2,
                inp: 40,
                out: 37,
            },
            LinearGeometry {
                batch: 1,
                inp: 3,
                out: 1,
            },
        ] {
            let (x, w, b, dy) = (
                values(g.batch * g.inp, 1),
                values(g.inp * g.out, 2),
                values(g.out, 3),
                values(g.batch * g.out, 4),
            );
            let y = linear_forward(&g, &x, &w, Some(&b));
            let grads = linear_backward(&g, &x, &w, &dy, true);
            let close = |a: f32, e: f64, what: &str| {
                assert!(
                    (a as f64 - e).abs() < 1e-4 * (1.0 + e.abs()),
                    "{g:?} {what}: {a} vs {e}"
                )
            };
            for s in 0..g.batch {
                for o in 0..g.out {
                    let e: f64 = b[o] as f64
                        + (0..g.inp)
                            .map(|i| x[s * g.inp + i] as f64 * w[i * g.out + o] as f64)
                            .sum::<f64>();
                    close(y[s * g.out + o], e, "y");
                }
                for i in 0..g.inp {
                    let e: f64 = (0..g.out)
                        .map(|o| dy[s * g.out + o] as f64 * w[i * g.out + o] as f64)
                        .sum();
                    close(grads.dx.as_ref().unwrap()[s * g.inp + i], e, "dx");
                }
            }
            for i in 0..g.inp {
                for o in 0..g.out {
                    let e: f64 = (0..g.batch)
                        .map(|s| x[s * g.inp + i] as f64 * dy[s * g.out + o] as f64)
                        .sum();
                    close(grads.dw[i * g.out + o], e, "dw");
                }
            }
            for o in 0..g.out {
                let e: f64 = (0..g.batch).map(|s| dy[s * g.out + o] as f64).sum();
                close(grads.db[o], e, "db");
            }
            assert!(linear_backward(&g, &x, &w, &dy, false).dx.is_none());
        }
    }
}
