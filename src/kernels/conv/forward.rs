//! The forward pass: per group of images, the receptive fields times the weight into a
//! panel, written out as NCHW with the bias; or, in the shifted layout, one image at a time.

use rayon::prelude::*;

use super::geometry::ConvGeometry;
use super::layout::{Fields, IMAGES_PER_GEMM, Layout};
use super::scratch::{Scratch, with_scratch};
use super::{rows, shifted};
use crate::kernels::gemm::{GemmShape, Operand, matmul};
use crate::kernels::transpose::transpose;

/// `y[batch, c_out, out_h, out_w]` from `x[batch, c_in, in_h, in_w]`, `w[c_out, c_in, kh,
/// kw]` and `b[c_out]`.
pub fn conv2d_forward(g: &ConvGeometry, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
    let (k, p) = (g.col_rows(), g.out_pixels());
    assert_eq!(x.len(), g.batch * g.in_image(), "conv2d: input size");
    assert_eq!(w.len(), g.c_out * k, "conv2d: weight size");
    assert!(b.is_none_or(|b| b.len() == g.c_out), "conv2d: bias size");
    let mut y = vec![0.0f32; g.batch * g.out_image()];
    if g.out_image() == 0 || g.in_image() == 0 {
        return y;
    }
    let layout = match Layout::of(g) {
        Layout::Fields(fields) => fields,
        Layout::Shifted => {
            let w = rows::channels_last_weight(g, w);
            y.par_chunks_mut(g.out_image())
                .zip(x.par_chunks(g.in_image()))
                .for_each(|(y_img, image)| {
                    with_scratch(g, p, |s| {
                        shifted::forward_image(g, &w, b, image, y_img, s.shifted())
                    })
                });
            return y;
        }
    };
    let w = layout.weight(g, w);
    y.par_chunks_mut(IMAGES_PER_GEMM * g.out_image())
        .zip(x.par_chunks(IMAGES_PER_GEMM * g.in_image()))
        .for_each(|(y_group, x_group)| {
            let width = x_group.len() / g.in_image() * p;
            with_scratch(g, width, |s| {
                s.fill_fields(g, layout, x_group, width);
                let (co_stride, px_stride) = panel_product(g, layout, &w, width, s);
                let panel = &s.panel;
                for (j, y_img) in y_group.chunks_mut(g.out_image()).enumerate() {
                    if px_stride == 1 {
                        for (co, plane) in y_img.chunks_mut(p).enumerate() {
                            let first = co * co_stride + j * p;
                            plane.copy_from_slice(&panel[first..first + p]);
                        }
                    } else {
                        // [p, c_out] -> [c_out, p]
                        let rows = (&panel[j * p * px_stride..], px_stride);
                        transpose(p, g.c_out, rows, (y_img, p));
                    }
                    if let Some(b) = b {
                        for (plane, b) in y_img.chunks_mut(p).zip(b) {
                            plane.iter_mut().for_each(|v| *v += b);
                        }
                    }
                }
            })
        });
    y
}

/// A group's output before it is written out: `panel[c_out, width] = w @ col` (columns)
/// or `panel[width, c_out] = rows @ w'^T` (rows), from the fields in `s` and the weight
/// `w` in their tap order. Returns where output (channel, pixel) lands in the panel: its
/// channel and pixel strides.
fn panel_product(
    g: &ConvGeometry,
    layout: Fields,
    w: &[f32],
    width: usize,
    s: &mut Scratch,
) -> (usize, usize) {
    let k = g.col_rows();
    let (fields, panel) = (&s.fields, &mut s.panel);
    match layout {
        Fields::Columns => {
            // panel[c_out, width] = w[c_out, K] @ col[K, width]
            let shape = GemmShape {
                m: g.c_out,
                n: width,
                k,
            };
            let (w, col) = (Operand::row_major(w, k), Operand::row_major(fields, width));
            matmul(shape, panel, false, w, col);
            (width, 1)
        }
        Fields::Rows => {
            // panel[width, c_out] = rows[width, K] @ w'[c_out, K]^T
            let shape = GemmShape {
                m: width,
                n: g.c_out,
                k,
            };
            let (rows, wt) = (Operand::row_major(fields, k), Operand::transposed(w, k));
            matmul(shape, panel, false, rows, wt);
            (1, g.c_out)
        }
    }
}
