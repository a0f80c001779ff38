//! Adam in one in-place pass per parameter on host slices, with burn's own formula: the
//! host kernel that [`super::fused_adam::FusedAdam`] runs through the backend extension.

use rayon::prelude::*;

/// Adam's constants for one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub lr: f64,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// The step's number, from 1.
    pub time: usize,
}

/// One Adam step on host slices, in place: moments first, then the parameter. The
/// operations and their order are those of burn's `Adam`, so the results are the same.
pub fn adam_update(param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], s: AdamStep) {
    assert!(
        grad.len() == param.len() && m.len() == param.len() && v.len() == param.len(),
        "adam: parameter, gradient and moments differ in size"
    );
    let time = s.time as i32;
    let bias_correction2_sqrt = (1.0 - s.beta_2.powi(time)).sqrt();
    let combined = bias_correction2_sqrt / (1.0 - s.beta_1.powi(time));
    let eps = s.epsilon * bias_correction2_sqrt;
    let (f1, f2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    let lr = s.lr as f32;
    let update = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
        for i in 0..p.len() {
            let gi = g[i];
            let mi = m[i] * s.beta_1 + gi * f1;
            let vi = v[i] * s.beta_2 + (gi * gi) * f2;
            m[i] = mi;
            v[i] = vi;
            p[i] -= (mi * combined) / (vi.sqrt() + eps) * lr;
        }
    };
    // small parameters (biases, small layers) are not worth waking other threads for
    const CHUNK: usize = 1 << 15;
    if param.len() <= CHUNK {
        update(param, grad, m, v);
        return;
    }
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| update(p, g, m, v));
}
