//! CPU training kernels for the flex backend: convolution, max pooling and batch
//! normalization with their own backward passes, and a one-pass Adam, written against host slices (tested against their definitions) and
//! plugged into burn through its backend extension, so models keep one code path for flex
//! and wgpu.

pub mod adam;
pub mod conv;
mod extension;
pub mod linear;
pub mod norm;
pub mod pool;

pub use adam::FusedAdam;
pub use extension::{TrainingKernels, batch_norm, conv2d, linear, max_pool2d};
