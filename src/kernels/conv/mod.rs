//! 2D convolution (any stride, no dilation, one group, symmetric zero padding) on host
//! slices in NCHW layout, forward and backward, as one gemm per group of images over a
//! receptive-field buffer (im2col) that stays in cache.
//!
//! The buffer has one of two layouts ([`Fields`](layout::Fields)): columns (`col[K, width]`, see
//! [`columns`]) or rows (`rows[width, K]`, channels-last, see [`rows`]), with `K = c_in * kh
//! * kw` and `width` the output pixels of the group. A stride-1 convolution with wide
//! windows needs no such buffer: it reads each image's windows in place from a zero-padded
//! channels-last copy ([`shifted`]). Per group, `P` output pixels per image:
//! - forward: `y = w @ col` (columns) or `y^T = rows @ w'^T` (rows, `w'` the weight in the
//!   rows' tap order), then the bias;
//! - weight gradient: `dw += dy @ col^T` or `dw' += dy @ rows`;
//! - input gradient: `dcol = w^T @ dy` or `drows = dy^T @ w'`, folded back onto the image.
//!
//! A few images share each gemm (one image per product in the shifted layout); groups of
//! images run in parallel on rayon's pool, each gemm on one thread.
//!
//! [`geometry`] holds the shapes and where windows fall on the image, [`layout`] the choice
//! of layout per geometry, [`scratch`] the buffers each thread keeps between calls,
//! [`forward`] and [`backward`] the two passes, and [`sums`] the weight and bias gradients
//! each job of the backward pass sums.

mod backward;
mod columns;
mod forward;
mod geometry;
mod layout;
mod rows;
mod scratch;
mod shifted;
mod sums;

pub use backward::{ConvGradients, conv2d_backward};
pub use forward::conv2d_forward;
pub use geometry::{ConvGeometry, ConvSpacing, out_len};

#[cfg(test)]
mod tests;
