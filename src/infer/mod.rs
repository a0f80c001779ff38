//! Inference on the host: any network as a graph of host operations ([`net::Net`], each
//! layer's operation from its kind in `layers/`), the stack of dense layers with its own
//! fast path ([`Mlp`]), and the timing of dense against sparse ([`bench`]). The storages
//! and operations themselves are in `host/`.

pub mod bench;
pub mod net;

pub use crate::host::{
    BATCHED_FROM, InferError, Linear, build_layer, choose, masked_dense, transpose,
};
use crate::layers::param;
use crate::model::HostTensor;

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
