//! CPU inference that uses the sparsity: CSR rows for unstructured layers, a dedicated
//! kernel for 2:4, and channel-pruned layers physically shrunk. Plain Rust on host weights,
//! beside a dense path written the same way, so the two can be compared honestly.

pub mod bench;
pub mod net;
mod ops;

use thiserror::Error;

use crate::model::HostTensor;

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
pub(crate) fn build_layer(
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

/// The parameter named `name`, or an error naming it.
pub(crate) fn param(params: &[HostTensor], name: String) -> Result<&HostTensor, InferError> {
    params
        .iter()
        .find(|t| t.name == name)
        .ok_or(InferError::Missing(name))
}

/// `[rows, cols]` row-major to `[cols, rows]`.
pub(crate) fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

/// A stack of fully connected layers with ReLU between them.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// `x`: `[batch, in]`; returns the logits `[batch, classes]`. Batches of
    /// [`BATCHED_FROM`] or more run in the transposed layout.
    pub fn forward(&self, x: &[f32], batch: usize) -> Vec<f32> {
        let last = self.layers.len().saturating_sub(1);
        if batch >= BATCHED_FROM {
            let inp = x.len() / batch;
            let mut h = transpose(x, batch, inp); // [in, batch]
            for (i, l) in self.layers.iter().enumerate() {
                h = l.forward_transposed(&h, batch);
                if i < last {
                    h.iter_mut().for_each(|v| *v = v.max(0.0));
                }
            }
            let out = h.len() / batch;
            return transpose(&h, out, batch);
        }
        let mut h = x.to_vec();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h, batch);
            if i < last {
                h.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        h
    }

    /// Multiply-adds per example.
    pub fn macs(&self) -> usize {
        self.layers.iter().map(Linear::stored).sum()
    }

    /// The dense model: every weight stored, masks applied as zeros.
    pub fn dense(
        names: &[String],
        params: &[HostTensor],
        masks: &[Option<Vec<u8>>],
    ) -> Result<Self, InferError> {
        Self::build(names, params, masks, false)
    }

    /// The sparse model: each layer in its best storage; output neurons whose weights are
    /// all pruned are removed, and what they still contribute (their bias through ReLU) is
    /// folded into the next layer's bias, so the result is unchanged.
    pub fn sparse(
        names: &[String],
        params: &[HostTensor],
        masks: &[Option<Vec<u8>>],
    ) -> Result<Self, InferError> {
        Self::build(names, params, masks, true)
    }

    fn build(
        names: &[String],
        params: &[HostTensor],
        masks: &[Option<Vec<u8>>],
        sparse: bool,
    ) -> Result<Self, InferError> {
        let get = |n: String| param(params, n);
        // (out, in, weights, mask, bias) per layer, shrunk as we go
        let mut raw = Vec::new();
        for (name, mask) in names.iter().zip(masks) {
            let w = get(format!("{name}.weight"))?;
            let [out, inp] = w.dims[..] else {
                return Err(InferError::NotDense(name.clone()));
            };
            let b = get(format!("{name}.bias"))?.values.clone();
            let mask = mask.clone().unwrap_or_else(|| vec![1; out * inp]);
            if mask.len() != out * inp || b.len() != out {
                return Err(InferError::Shape {
                    name: name.clone(),
                    reason: "mask or bias does not match the weight".into(),
                });
            }
            raw.push((out, inp, w.values.clone(), mask, b));
        }
        if sparse {
            for l in 0..raw.len().saturating_sub(1) {
                let (out, inp) = (raw[l].0, raw[l].1);
                let dead: Vec<usize> = (0..out)
                    .filter(|&o| raw[l].3[o * inp..(o + 1) * inp].iter().all(|&m| m == 0))
                    .collect();
                if dead.is_empty() {
                    continue;
                }
                let keep: Vec<usize> = (0..out).filter(|o| !dead.contains(o)).collect();
                // a dead neuron outputs relu(bias): fold it into the next layer's bias
                let (nout, ninp) = (raw[l + 1].0, raw[l + 1].1);
                for &j in &dead {
                    let act = raw[l].4[j].max(0.0);
                    for o in 0..nout {
                        let k = o * ninp + j;
                        raw[l + 1].4[o] += raw[l + 1].2[k] * raw[l + 1].3[k] as f32 * act;
                    }
                }
                let rows = |v: &Vec<f32>| {
                    keep.iter()
                        .flat_map(|&o| v[o * inp..(o + 1) * inp].to_vec())
                        .collect::<Vec<f32>>()
                };
                let mask_rows: Vec<u8> = keep
                    .iter()
                    .flat_map(|&o| raw[l].3[o * inp..(o + 1) * inp].to_vec())
                    .collect();
                raw[l].2 = rows(&raw[l].2);
                raw[l].3 = mask_rows;
                raw[l].4 = keep.iter().map(|&o| raw[l].4[o]).collect();
                raw[l].0 = keep.len();
                let cols = |v: &Vec<f32>| {
                    (0..nout)
                        .flat_map(|o| {
                            keep.iter()
                                .map(move |&j| v[o * ninp + j])
                                .collect::<Vec<f32>>()
                        })
                        .collect::<Vec<f32>>()
                };
                let mask_cols: Vec<u8> = (0..nout)
                    .flat_map(|o| {
                        keep.iter()
                            .map(|&j| raw[l + 1].3[o * ninp + j])
                            .collect::<Vec<u8>>()
                    })
                    .collect();
                raw[l + 1].2 = cols(&raw[l + 1].2);
                raw[l + 1].3 = mask_cols;
                raw[l + 1].1 = keep.len();
            }
        }
        let layers = raw
            .into_iter()
            .map(|(out, inp, w, mask, b)| build_layer(out, inp, &w, &mask, b, sparse))
            .collect();
        Ok(Self { layers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        (0..n)
            .map(|i| crate::prune::random_score(seed, i as u64) as f32 - 0.5)
            .collect()
    }

    #[test]
    fn every_storage_computes_the_same_layer() {
        let (out, inp) = (6, 16);
        let w = random(out * inp, 1);
        let b = random(out, 2);
        let x = random(3 * inp, 3);
        let nm = crate::prune::nm_mask(
            &w,
            &crate::prune::LayerShape::linear(out, inp),
            2,
            4,
            crate::prune::Criterion::Magnitude,
            0,
        );
        let dense = Linear::Dense {
            out,
            inp,
            w: w.iter().zip(&nm).map(|(v, &m)| v * m as f32).collect(),
            b: b.clone(),
        };
        let sparse = choose(out, inp, &w, &nm, b.clone());
        assert!(matches!(sparse, Linear::TwoOfFour { .. }));
        let (y0, y1) = (dense.forward(&x, 3), sparse.forward(&x, 3));
        for (a, c) in y0.iter().zip(&y1) {
            assert!((a - c).abs() < 1e-5);
        }
        let mut unstructured = vec![0u8; out * inp];
        for i in (0..out * inp).step_by(5) {
            unstructured[i] = 1;
        }
        let csr = choose(out, inp, &w, &unstructured, b.clone());
        assert!(matches!(csr, Linear::Csr { .. }));
        assert_eq!(
            csr.stored(),
            unstructured.iter().filter(|&&m| m == 1).count()
        );
        // both small-batch walks: by row (dense inputs) and by column (mostly zero inputs)
        let masked = masked_dense(out, inp, &w, &unstructured, b.clone());
        let mut sparse_x = x.clone();
        sparse_x.iter_mut().step_by(3).for_each(|v| *v = 0.0);
        sparse_x
            .iter_mut()
            .skip(1)
            .step_by(3)
            .for_each(|v| *v = 0.0);
        for input in [&x, &sparse_x] {
            let (want, got) = (masked.forward(input, 3), csr.forward(input, 3));
            for (a, c) in want.iter().zip(&got) {
                assert!((a - c).abs() < 1e-5, "{a} vs {c}");
            }
        }
    }
}
