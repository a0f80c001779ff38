//! The shifted layout, for stride-1 convolutions with wide windows: no receptive-field
//! buffer at all. The image is copied once, channels-last, into a zero-padded grid
//! `xpad[hp, wp, c_in]`. Output pixel `(oy, ox)` then reads, for kernel row `ki`, the `kw *
//! c_in` values that start at grid pixel `(oy + ki) * wp + ox`: one contiguous run, and the
//! next pixel's run starts `c_in` values later. So the windows of every pixel form a matrix
//! `[pixels, kw * c_in]` with row stride `c_in` that gemm reads in place, and the
//! convolution is `kh` products, one per kernel row.
//!
//! The output is computed on the padded grid's width: pixel `q = oy * wp + ox`, and `M =
//! (out_h - 1) * wp + out_w` of them, of which the `wp - out_w = kw - 1` at the end of each
//! row are not outputs (their windows wrap onto the next row) and are dropped. That is `kw -
//! 1` wasted columns per row, the price of not copying each pixel's window (nine copies of
//! the image for a 3x3 kernel, in the forward pass and again in the backward pass).
//!
//! The backward pass works on the same grid:
//! - weight gradient, per kernel row: `dw^T[kw * c_in, c_out] += windows^T @ dy`, with `dy`
//!   laid out on the grid (zero in the dropped columns, so they add nothing), kept
//!   transposed (taps by output channels) so that gemm walks the output channels in its
//!   wide direction and reads both operands in place;
//! - input gradient, as a gather instead of folding windows back: the input pixel `r` of
//!   the grid receives `dy` at `r - ki * wp - kj` through tap `(ki, kj)`. With `dy` on the
//!   grid behind a frame of zeros, those `kw` pixels are one contiguous run for each `ki`,
//!   so `dxpad[pixels, c_in] = sum over ki of runs[pixels, kw * c_out] @ wflip_ki`, the
//!   weight's taps mirrored. A run that leaves a row lands in the dropped columns, which
//!   hold zeros.

use super::geometry::ConvGeometry;
use super::sums::GradientSums;
use crate::kernels::gemm::{GemmShape, Operand, matmul_into};
use crate::kernels::transpose::transpose;

/// The padded grid of a stride-1 convolution.
#[derive(Clone, Copy, Debug)]
pub(super) struct Grid {
    /// Padded width: the grid's row length in pixels.
    pub wp: usize,
    /// Padded height.
    pub hp: usize,
    /// Output pixels on the grid, the dropped columns included: `(out_h - 1) * wp + out_w`.
    pub virtual_pixels: usize,
    /// Zero pixels in front of the output gradient on the grid, so that every tap of every
    /// input pixel reads inside the buffer: `(kh - 1) * wp + kw - 1`.
    pub frame: usize,
}

impl Grid {
    pub fn of(g: &ConvGeometry) -> Self {
        let (wp, hp) = (g.in_w + 2 * g.pad_w, g.in_h + 2 * g.pad_h);
        Self {
            wp,
            hp,
            virtual_pixels: (g.out_h() - 1) * wp + g.out_w(),
            frame: (g.kh - 1) * wp + g.kw - 1,
        }
    }

    /// Values of the zero-padded channels-last image.
    pub fn image_len(&self, g: &ConvGeometry) -> usize {
        self.hp * self.wp * g.c_in
    }

    /// Values of the output on the grid.
    pub fn output_len(&self, g: &ConvGeometry) -> usize {
        self.virtual_pixels * g.c_out
    }

    /// Values of the output gradient on the grid, with the zero frame before it and enough
    /// zeros after it for the last input pixel's taps.
    pub fn framed_gradient_len(&self, g: &ConvGeometry) -> usize {
        ((g.out_h() + 2 * (g.kh - 1)) * self.wp + g.kw + self.frame) * g.c_out
    }

    /// Values of the input gradient on the grid's rows that hold the image.
    pub fn input_gradient_len(&self, g: &ConvGeometry) -> usize {
        g.in_h * self.wp * g.c_in
    }

    /// Output columns computed per useful one: `wp / out_w`.
    pub fn waste(&self, g: &ConvGeometry) -> f64 {
        self.wp as f64 / g.out_w().max(1) as f64
    }
}

/// Buffers of one image, kept by the caller between calls. The zeros (padding, dropped
/// columns, frame) are never written, so they stay zero while the geometry stays the same.
pub(super) struct Buffers<'a> {
    /// `xpad[hp, wp, c_in]`.
    pub image: &'a mut [f32],
    /// The output on the grid `[virtual_pixels, c_out]` (forward), or the input gradient
    /// `[in_h * wp, c_in]` (backward).
    pub product: &'a mut [f32],
    /// The output gradient on the grid behind its zero frame.
    pub gradient: &'a mut [f32],
}

/// Writes one image `[c_in, in_h, in_w]` inside the zero padding of `xpad`.
fn pad_channels_last(g: &ConvGeometry, grid: &Grid, image: &[f32], xpad: &mut [f32]) {
    let plane = g.in_h * g.in_w;
    for iy in 0..g.in_h {
        // [c_in, in_w] -> [in_w, c_in]
        let row = ((iy + g.pad_h) * grid.wp + g.pad_w) * g.c_in;
        transpose(
            g.c_in,
            g.in_w,
            (&image[iy * g.in_w..], plane),
            (&mut xpad[row..], g.c_in),
        );
    }
}

/// The weight `[c_out, c_in, kh, kw]` as `wflip[kh, kw, c_out, c_in]` with each kernel row
/// mirrored (`kj` runs backwards): the input gradient's right-hand operands.
pub(super) fn flipped_weight(g: &ConvGeometry, w: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; w.len()];
    for co in 0..g.c_out {
        for ci in 0..g.c_in {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let t = ki * g.kw + (g.kw - 1 - kj);
                    out[(t * g.c_out + co) * g.c_in + ci] =
                        w[((co * g.c_in + ci) * g.kh + ki) * g.kw + kj];
                }
            }
        }
    }
    out
}

/// One image's output `y[c_out, out_h, out_w]` from the image `[c_in, in_h, in_w]` and the
/// weight `w'[c_out, (ki, kj, c_in)]`.
pub(super) fn forward_image(
    g: &ConvGeometry,
    w: &[f32],
    bias: Option<&[f32]>,
    image: &[f32],
    y: &mut [f32],
    buffers: Buffers<'_>,
) {
    let grid = Grid::of(g);
    let (k, run) = (g.col_rows(), g.kw * g.c_in);
    pad_channels_last(g, &grid, image, buffers.image);
    let out = &mut *buffers.product;
    let shape = GemmShape {
        m: grid.virtual_pixels,
        n: g.c_out,
        k: run,
    };
    for ki in 0..g.kh {
        // out[M, c_out] (+)= windows_ki[M, kw * c_in] @ w'_ki[kw * c_in, c_out]
        let windows = Operand::row_major(&buffers.image[ki * grid.wp * g.c_in..], g.c_in);
        let w = Operand::transposed(&w[ki * run..], k);
        matmul_into(shape, out, g.c_out, ki > 0, windows, w);
    }
    let p = g.out_pixels();
    for oy in 0..g.out_h() {
        // [out_w, c_out] -> [c_out, out_w]
        transpose(
            g.out_w(),
            g.c_out,
            (&out[oy * grid.wp * g.c_out..], g.c_out),
            (&mut y[oy * g.out_w()..], p),
        );
    }
    if let Some(bias) = bias {
        for (plane, b) in y.chunks_mut(p).zip(bias) {
            plane.iter_mut().for_each(|v| *v += b);
        }
    }
}

/// One image's backward pass: adds its weight gradient to `sums.dw` (`[K, c_out]`, taps in
/// `(ki, kj, c_in)` order) and its bias gradient to `sums.db`, and writes its input
/// gradient when `dx` is given.
pub(super) fn backward_image(
    g: &ConvGeometry,
    flipped: &[f32],
    image: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    sums: &mut GradientSums,
    buffers: Buffers<'_>,
) {
    let grid = Grid::of(g);
    let (run, p) = (g.kw * g.c_in, g.out_pixels());
    pad_channels_last(g, &grid, image, buffers.image);
    let framed = &mut *buffers.gradient;
    for (plane, db) in dy.chunks(p).zip(sums.db.iter_mut()) {
        *db += plane.iter().sum::<f32>();
    }
    for oy in 0..g.out_h() {
        // [c_out, out_w] -> [out_w, c_out]
        transpose(
            g.c_out,
            g.out_w(),
            (&dy[oy * g.out_w()..], p),
            (
                &mut framed[(grid.frame + oy * grid.wp) * g.c_out..],
                g.c_out,
            ),
        );
    }
    let gradient = Operand::row_major(&framed[grid.frame * g.c_out..], g.c_out);
    let weight_shape = GemmShape {
        m: run,
        n: g.c_out,
        k: grid.virtual_pixels,
    };
    for ki in 0..g.kh {
        // dw^T_ki[kw * c_in, c_out] += windows_ki^T[kw * c_in, M] @ dy[M, c_out]
        let windows = Operand::transposed(&buffers.image[ki * grid.wp * g.c_in..], g.c_in);
        let dw_t = &mut sums.dw[ki * run * g.c_out..];
        matmul_into(weight_shape, dw_t, g.c_out, true, windows, gradient);
    }
    let Some(dx) = dx else { return };
    let (rows, taps) = (g.in_h * grid.wp, g.kw * g.c_out);
    let first_row = g.pad_h * grid.wp;
    let dxpad = &mut *buffers.product;
    let shape = GemmShape {
        m: rows,
        n: g.c_in,
        k: taps,
    };
    for ki in 0..g.kh {
        // dxpad[rows, c_in] (+)= runs_ki[rows, kw * c_out] @ wflip_ki[kw * c_out, c_in]
        let start = (first_row + (g.kh - 1 - ki) * grid.wp) * g.c_out;
        let runs = Operand::row_major(&framed[start..], g.c_out);
        let wflip = Operand::row_major(&flipped[ki * taps * g.c_in..], g.c_in);
        matmul_into(shape, dxpad, g.c_in, ki > 0, runs, wflip);
    }
    let plane = g.in_h * g.in_w;
    for iy in 0..g.in_h {
        // [in_w, c_in] -> [c_in, in_w]
        transpose(
            g.in_w,
            g.c_in,
            (&dxpad[(iy * grid.wp + g.pad_w) * g.c_in..], g.c_in),
            (&mut dx[iy * g.in_w..], plane),
        );
    }
}
