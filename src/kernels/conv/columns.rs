//! The column layout: `col[K, width]` with one row per (input channel, kernel row, kernel
//! column) and one column per output pixel, built one output row at a time straight from
//! the NCHW image. Best when windows are narrow (a first layer's single input channel):
//! each copy is a whole output row.

use super::geometry::ConvGeometry;

/// Lays one image `[c_in, in_h, in_w]` out as its `P` columns of `col[K, width]`, starting
/// at column `first`. Where the kernel reads padding the buffer must hold zeros: written
/// here when `write_padding`, otherwise left as they are (a buffer that last held the same
/// geometry and width has them already).
pub(super) fn im2col(
    g: &ConvGeometry,
    image: &[f32],
    col: &mut [f32],
    width: usize,
    first: usize,
    write_padding: bool,
) {
    let (out_h, out_w) = (g.out_h(), g.out_w());
    for c in 0..g.c_in {
        let plane = &image[c * g.in_h * g.in_w..(c + 1) * g.in_h * g.in_w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let dst = &mut col[row * width + first..row * width + first + g.out_pixels()];
                let (lo, hi) = g.valid_columns(kj);
                for oy in 0..out_h {
                    let line = &mut dst[oy * out_w..(oy + 1) * out_w];
                    let Some(iy) = g.input_row(oy, ki) else {
                        if write_padding {
                            line.fill(0.0);
                        }
                        continue;
                    };
                    if write_padding {
                        line[..lo].fill(0.0);
                        line[hi..].fill(0.0);
                    }
                    let row = &plane[iy * g.in_w..(iy + 1) * g.in_w];
                    if hi > lo {
                        let src = g.input_column(lo, kj);
                        let taken = row[src..].iter().step_by(g.stride_w.max(1));
                        line[lo..hi]
                            .iter_mut()
                            .zip(taken)
                            .for_each(|(d, &v)| *d = v);
                    }
                }
            }
        }
    }
}

/// Adds the image gradient `[c_in, in_h, in_w]` from its `P` columns of `col[K, width]`
/// starting at column `first` onto `image` (the transpose of [`im2col`]).
pub(super) fn col2im(g: &ConvGeometry, col: &[f32], width: usize, first: usize, image: &mut [f32]) {
    let (out_h, out_w) = (g.out_h(), g.out_w());
    for c in 0..g.c_in {
        let plane = &mut image[c * g.in_h * g.in_w..(c + 1) * g.in_h * g.in_w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let src = &col[row * width + first..row * width + first + g.out_pixels()];
                let (lo, hi) = g.valid_columns(kj);
                for oy in 0..out_h {
                    let Some(iy) = g.input_row(oy, ki) else {
                        continue;
                    };
                    if hi == lo {
                        continue;
                    }
                    let line = &src[oy * out_w + lo..oy * out_w + hi];
                    let row = &mut plane[iy * g.in_w..(iy + 1) * g.in_w];
                    let dst = g.input_column(lo, kj);
                    let given = row[dst..].iter_mut().step_by(g.stride_w.max(1));
                    given.zip(line).for_each(|(d, s)| *d += s);
                }
            }
        }
    }
}
