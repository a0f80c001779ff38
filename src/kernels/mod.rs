//! CPU training kernels for the flex backend: convolution, max pooling, batch
//! normalization, GELU and attention with their own backward passes, and a one-pass Adam, written against host slices (tested against their definitions) and
//! plugged into burn through its backend extension, so models keep one code path for flex
//! and wgpu.

pub mod activation;
pub mod adam;
pub mod attention;
pub mod conv;
mod extension;
mod fused_adam;
mod gemm;
pub mod linear;
pub mod norm;
pub mod pool;
mod transpose;

pub use extension::description::Description;
pub use extension::remote::{describe, with_kernels};
pub use extension::{
    TrainingKernels, attention, batch_norm, batch_norm_relu, conv2d, gelu, kernels_run_on, linear,
    max_pool2d, symmetric_padding,
};
pub use fused_adam::FusedAdam;

/// The name the flex device goes by, in the status bar and in a server's description.
pub const FLEX_DEVICE: &str = "CPU (flex)";

/// Deterministic test values in `[-1, 1]` (xorshift), shared by the kernels' tests.
#[cfg(test)]
fn test_values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}
