//! The host side of inference: one dense layer in the storage that uses its sparsity
//! (CSR rows for unstructured layers, a dedicated kernel for 2:4, plain rows otherwise,
//! each written the same way so that they can be compared honestly), and the operations
//! between layers on channel-major activations ([`ops`]). Plain Rust on host slices.

pub mod ops;

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum InferError {
    #[error("layer {0} is not a dense layer (the stack of dense layers takes 2-D weights only)")]
    NotDense(String),
    #[error("parameter {0} is missing")]
    Missing(String),
    #[error("layer {name}: {reason}")]
    Shape { name: String, reason: String },
    #[error("this network does not run on the host: {0}")]
    Unsupported(String),
}

/// One fully connected layer, `y = W x + b`, in some storage.
#[derive(Clone, Debug, PartialEq)]
pub enum Linear {
    /// Row-major `[out, in]`.
    Dense {
        out: usize,
        inp: usize,
        w: Vec<f32>,
        b: Vec<f32>,
    },
    /// Compressed sparse rows, and the same weights by input column.
    Csr {
        out: usize,
        inp: usize,
        row_start: Vec<u32>,
        /// Input index of each kept weight (u16: inputs are fewer than 65,536).
        cols: Vec<u16>,
        vals: Vec<f32>,
        /// Input `i`'s kept weights are `col_vals[col_start[i]..col_start[i + 1]]`, at
        /// outputs `rows[..]` (u16: outputs are fewer than 65,536). Small batches whose
        /// inputs are mostly zero (most pixels of a digit, about half of the ReLU outputs)
        /// walk the layer this way and skip the zero inputs, so they gain from zero
        /// activations as well as from pruned weights.
        col_start: Vec<u32>,
        rows: Vec<u16>,
        col_vals: Vec<f32>,
        b: Vec<f32>,
    },
    /// 2 kept weights in every group of 4 inputs: a fixed `in / 2` kept weights per row,
    /// `vals[o][2g + k]` at input `cols[o][2g + k]`, inside group `g`.
    TwoOfFour {
        out: usize,
        inp: usize,
        cols: Vec<u16>,
        vals: Vec<f32>,
        b: Vec<f32>,
    },
}

/// Dot product with eight independent accumulators, so it vectorizes.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `sum v[k] * x[c[k]]`, four accumulators. Every column index is below `x.len()`
/// ([`choose`] and [`Mlp::sparse`] only build CSR rows from positions inside the row).
#[inline]
fn sparse_dot(c: &[u16], v: &[f32], x: &[f32]) -> f32 {
    debug_assert!(c.iter().all(|&i| (i as usize) < x.len()));
    assert!(c.len() == v.len() && c.last().is_none_or(|&i| (i as usize) < x.len()));
    let mut acc = [0.0f32; 4];
    let (cc, vc) = (c.chunks_exact(4), v.chunks_exact(4));
    let (cr, vr) = (cc.remainder(), vc.remainder());
    for (ci, vi) in cc.zip(vc) {
        for k in 0..4 {
            // SAFETY: column indices are strictly increasing within a row (CSR rows and 2:4
            // groups are built in input order), so the last one, checked above, bounds them.
            acc[k] += vi[k] * unsafe { *x.get_unchecked(ci[k] as usize) };
        }
    }
    let mut sum = acc[0] + acc[1] + acc[2] + acc[3];
    for (&ci, &vi) in cr.iter().zip(vr) {
        sum += vi * x[ci as usize];
    }
    sum
}

/// `y[r[k]] += a * v[k]` for every `k`. Every row index is below `y.len()` ([`choose`]
/// builds the column lists from positions inside the layer).
#[inline]
fn scatter_axpy(a: f32, r: &[u16], v: &[f32], y: &mut [f32]) {
    assert!(r.len() == v.len() && r.last().is_none_or(|&i| (i as usize) < y.len()));
    for (&ri, &vi) in r.iter().zip(v) {
        // SAFETY: row indices are strictly increasing within a column (columns are built in
        // output order), so the last one, checked above, bounds them.
        unsafe { *y.get_unchecked_mut(ri as usize) += a * vi };
    }
}

/// `y += a * x`, elementwise; vectorizes.
#[inline]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Batches at least this large run in the transposed layout, where every stored weight is
/// one vectorized multiply-add over the whole batch.
pub const BATCHED_FROM: usize = 8;

impl Linear {
    /// The layer on transposed activations: `xt` is `[in, batch]`; returns `[out, batch]`.
    /// Each stored weight `w[o][i]` becomes `y[o][..] += w * x[i][..]`, so dense and sparse
    /// kinds do the same work per stored weight and sparsity pays in proportion.
    pub fn forward_transposed(&self, xt: &[f32], batch: usize) -> Vec<f32> {
        let (out, inp) = (self.out(), self.inp());
        let mut yt = vec![0.0f32; out * batch];
        let col = |i: usize| &xt[i * batch..(i + 1) * batch];
        for o in 0..out {
            let y = &mut yt[o * batch..(o + 1) * batch];
            match self {
                Linear::Dense { w, b, .. } => {
                    y.fill(b[o]);
                    for (i, &wi) in w[o * inp..(o + 1) * inp].iter().enumerate() {
                        axpy(wi, col(i), y);
                    }
                }
                Linear::Csr {
                    row_start,
                    cols,
                    vals,
                    b,
                    ..
                } => {
                    y.fill(b[o]);
                    for k in row_start[o] as usize..row_start[o + 1] as usize {
                        axpy(vals[k], col(cols[k] as usize), y);
                    }
                }
                Linear::TwoOfFour { cols, vals, b, .. } => {
                    y.fill(b[o]);
                    let half = inp / 2;
                    for k in o * half..(o + 1) * half {
                        axpy(vals[k], col(cols[k] as usize), y);
                    }
                }
            }
        }
        yt
    }

    pub fn out(&self) -> usize {
        match self {
            Linear::Dense { out, .. } | Linear::Csr { out, .. } | Linear::TwoOfFour { out, .. } => {
                *out
            }
        }
    }

    pub fn inp(&self) -> usize {
        match self {
            Linear::Dense { inp, .. } | Linear::Csr { inp, .. } | Linear::TwoOfFour { inp, .. } => {
                *inp
            }
        }
    }

    /// Stored weights (kept values only for sparse kinds).
    pub fn stored(&self) -> usize {
        match self {
            Linear::Dense { w, .. } => w.len(),
            Linear::Csr { vals, .. } | Linear::TwoOfFour { vals, .. } => vals.len(),
        }
    }

    /// `x`: `[batch, in]` row-major; returns `[batch, out]`.
    pub fn forward(&self, x: &[f32], batch: usize) -> Vec<f32> {
        let (out, inp) = (self.out(), self.inp());
        let mut y = vec![0.0f32; batch * out];
        match self {
            Linear::Dense { w, b, .. } => {
                for o in 0..out {
                    let row = &w[o * inp..(o + 1) * inp];
                    for s in 0..batch {
                        y[s * out + o] = dot(row, &x[s * inp..(s + 1) * inp]) + b[o];
                    }
                }
            }
            Linear::Csr {
                row_start,
                cols,
                vals,
                col_start,
                rows,
                col_vals,
                b,
                ..
            } => {
                for (xs, ys) in x.chunks(inp).zip(y.chunks_mut(out)) {
                    // a scatter costs about 1.5 gathers: walk by column when at most two
                    // thirds of the inputs are non-zero, by row otherwise
                    let nonzero = xs.iter().filter(|&&v| v != 0.0).count();
                    if 3 * nonzero > 2 * inp {
                        for (o, y) in ys.iter_mut().enumerate() {
                            let (lo, hi) = (row_start[o] as usize, row_start[o + 1] as usize);
                            *y = sparse_dot(&cols[lo..hi], &vals[lo..hi], xs) + b[o];
                        }
                        continue;
                    }
                    ys.copy_from_slice(b);
                    for (i, &xi) in xs.iter().enumerate() {
                        if xi == 0.0 {
                            continue;
                        }
                        let (lo, hi) = (col_start[i] as usize, col_start[i + 1] as usize);
                        scatter_axpy(xi, &rows[lo..hi], &col_vals[lo..hi], ys);
                    }
                }
            }
            Linear::TwoOfFour { cols, vals, b, .. } => {
                let half = inp / 2;
                for o in 0..out {
                    let (c, v) = (
                        &cols[o * half..(o + 1) * half],
                        &vals[o * half..(o + 1) * half],
                    );
                    for s in 0..batch {
                        let xs = &x[s * inp..(s + 1) * inp];
                        y[s * out + o] = sparse_dot(c, v, xs) + b[o];
                    }
                }
            }
        }
        y
    }
}

/// Picks a storage for a masked `[out, in]` weight: 2:4 when every group of 4 keeps exactly
/// 2, CSR when at least a third is pruned, dense otherwise.
pub fn choose(out: usize, inp: usize, w: &[f32], mask: &[u8], b: Vec<f32>) -> Linear {
    let kept = mask.iter().filter(|&&m| m == 1).count();
    if inp > u16::MAX as usize {
        return masked_dense(out, inp, w, mask, b);
    }
    let two_of_four = inp.is_multiple_of(4)
        && mask
            .chunks(4)
            .all(|g| g.iter().filter(|&&m| m == 1).count() == 2);
    if two_of_four {
        let mut cols = Vec::with_capacity(out * inp / 2);
        let mut vals = Vec::with_capacity(out * inp / 2);
        for (i, &m) in mask.iter().enumerate() {
            if m == 1 {
                cols.push((i % inp) as u16);
                vals.push(w[i]);
            }
        }
        return Linear::TwoOfFour {
            out,
            inp,
            cols,
            vals,
            b,
        };
    }
    if (kept as f64) < 2.0 / 3.0 * mask.len() as f64 && out <= u16::MAX as usize {
        let (row_start, cols, vals) = compress(out, inp, kept, |o, i| o * inp + i, w, mask);
        let (col_start, rows, col_vals) = compress(inp, out, kept, |i, o| o * inp + i, w, mask);
        return Linear::Csr {
            out,
            inp,
            row_start,
            cols,
            vals,
            col_start,
            rows,
            col_vals,
            b,
        };
    }
    masked_dense(out, inp, w, mask, b)
}

/// The kept weights of `w` grouped by `outer` (rows, or columns), each group in `inner`
/// order: group starts, inner indices and values. `at(outer, inner)` is the position in
/// `w` and `mask`.
fn compress(
    outer: usize,
    inner: usize,
    kept: usize,
    at: impl Fn(usize, usize) -> usize,
    w: &[f32],
    mask: &[u8],
) -> (Vec<u32>, Vec<u16>, Vec<f32>) {
    let mut starts = Vec::with_capacity(outer + 1);
    starts.push(0u32);
    let (mut index, mut values) = (Vec::with_capacity(kept), Vec::with_capacity(kept));
    for a in 0..outer {
        for b in 0..inner {
            if mask[at(a, b)] == 1 {
                index.push(b as u16);
                values.push(w[at(a, b)]);
            }
        }
        starts.push(index.len() as u32);
    }
    (starts, index, values)
}

/// A dense layer holding every weight, pruned ones as zeros.
pub fn masked_dense(out: usize, inp: usize, w: &[f32], mask: &[u8], b: Vec<f32>) -> Linear {
    let w = w.iter().zip(mask).map(|(v, &m)| v * m as f32).collect();
    Linear::Dense { out, inp, w, b }
}

/// The layer in its best sparse storage ([`choose`]) or dense ([`masked_dense`]).
pub fn build_layer(
    out: usize,
    inp: usize,
    w: &[f32],
    mask: &[u8],
    b: Vec<f32>,
    sparse: bool,
) -> Linear {
    if sparse {
        choose(out, inp, w, mask, b)
    } else {
        masked_dense(out, inp, w, mask, b)
    }
}

/// `[rows, cols]` row-major to `[cols, rows]`.
pub fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}
