//! The row layout: `rows[width, K]` with one row per output pixel holding its receptive
//! field channels-last, in `(ki, kj, c)` order. With the image turned channels-last (HWC),
//! one kernel row's window is one contiguous run of `kw * c_in` values, so the rows are
//! built from a few long copies, and none of the three products has to repack the large
//! `rows` operand (gemm reads it in place). Best when windows are wide (many input
//! channels).

use super::geometry::ConvGeometry;
use crate::kernels::transpose::transpose;

/// The weight `[c_out, c_in, kh, kw]` in im2row order `[c_out, kh, kw, c_in]`.
pub(super) fn channels_last_weight(g: &ConvGeometry, w: &[f32]) -> Vec<f32> {
    let (taps, k) = (g.kh * g.kw, g.col_rows());
    let mut out = vec![0.0f32; w.len()];
    for (dst, src) in out.chunks_mut(k).zip(w.chunks(k)) {
        for c in 0..g.c_in {
            for t in 0..taps {
                dst[t * g.c_in + c] = src[c * taps + t];
            }
        }
    }
    out
}

/// The inverse of [`channels_last_weight`].
pub(super) fn channels_first_weight(g: &ConvGeometry, w: &[f32]) -> Vec<f32> {
    let (taps, k) = (g.kh * g.kw, g.col_rows());
    let mut out = vec![0.0f32; w.len()];
    for (dst, src) in out.chunks_mut(k).zip(w.chunks(k)) {
        for c in 0..g.c_in {
            for t in 0..taps {
                dst[c * taps + t] = src[t * g.c_in + c];
            }
        }
    }
    out
}

/// One image `[c_in, in_h, in_w]` as `hwc[in_h, in_w, c_in]`.
pub(super) fn to_channels_last(g: &ConvGeometry, image: &[f32], hwc: &mut [f32]) {
    let pixels = g.in_h * g.in_w;
    transpose(g.c_in, pixels, (image, pixels), (hwc, g.c_in));
}

/// One image `hwc[in_h, in_w, c_in]` written as `[c_in, in_h, in_w]`.
pub(super) fn to_channels_first(g: &ConvGeometry, hwc: &[f32], image: &mut [f32]) {
    let pixels = g.in_h * g.in_w;
    transpose(pixels, g.c_in, (hwc, g.c_in), (image, pixels));
}

/// Writes the `P` rows of one channels-last image into `rows[.., K]`, starting at row
/// `first`. Where the kernel reads padding the buffer must hold zeros: written here when
/// `write_padding`, otherwise left as they are (a buffer that last held the same geometry
/// and width has them already).
pub(super) fn im2row(
    g: &ConvGeometry,
    hwc: &[f32],
    rows: &mut [f32],
    first: usize,
    write_padding: bool,
) {
    let (k, run) = (g.col_rows(), g.kw * g.c_in);
    for oy in 0..g.out_h() {
        for ox in 0..g.out_w() {
            let start = (first + oy * g.out_w() + ox) * k;
            let row = &mut rows[start..start + k];
            let (lo, hi) = g.valid_taps(ox);
            for (ki, window) in row.chunks_mut(run).enumerate() {
                let Some(iy) = g.input_row(oy, ki) else {
                    if write_padding {
                        window.fill(0.0);
                    }
                    continue;
                };
                if write_padding {
                    window[..lo * g.c_in].fill(0.0);
                    window[hi * g.c_in..].fill(0.0);
                }
                if hi > lo {
                    let src = (iy * g.in_w + g.input_column(ox, lo)) * g.c_in;
                    window[lo * g.c_in..hi * g.c_in]
                        .copy_from_slice(&hwc[src..src + (hi - lo) * g.c_in]);
                }
            }
        }
    }
}

/// Adds the `P` rows of `rows[.., K]` starting at row `first` onto the channels-last image
/// gradient `hwc` (the transpose of [`im2row`]).
pub(super) fn row2im(g: &ConvGeometry, rows: &[f32], first: usize, hwc: &mut [f32]) {
    let (k, run) = (g.col_rows(), g.kw * g.c_in);
    for oy in 0..g.out_h() {
        for ox in 0..g.out_w() {
            let start = (first + oy * g.out_w() + ox) * k;
            let row = &rows[start..start + k];
            let (lo, hi) = g.valid_taps(ox);
            for (ki, window) in row.chunks(run).enumerate() {
                let Some(iy) = g.input_row(oy, ki) else {
                    continue;
                };
                if hi == lo {
                    continue;
                }
                let dst = (iy * g.in_w + g.input_column(ox, lo)) * g.c_in;
                let taps = &window[lo * g.c_in..hi * g.c_in];
                for (d, s) in hwc[dst..dst + taps.len()].iter_mut().zip(taps) {
                    *d += s;
                }
            }
        }
    }
}
