//! The backward pass: per group of images, the output gradient laid side by side as a
//! panel, then the weight gradient, the bias gradient and (when asked) the input gradient
//! folded back from the fields' gradient; or, in the shifted layout, one image at a time.
//! Jobs of a fixed run of images each sum their own weight and bias gradients.

use std::borrow::Cow;

use rayon::prelude::*;

use super::geometry::ConvGeometry;
use super::layout::{Fields, IMAGES_PER_GEMM, Layout};
use super::scratch::{Scratch, with_scratch};
use super::sums::GradientSums;
use super::{columns, rows, shifted};
use crate::kernels::gemm::{GemmShape, Operand, matmul};
use crate::kernels::transpose::transpose;

/// Gradients of [`conv2d_forward`](super::conv2d_forward) given the output gradient `dy`:
/// the input gradient (only when `want_dx`; an image fed to the first layer needs none),
/// the weight gradient and the bias gradient.
pub struct ConvGradients {
    pub dx: Option<Vec<f32>>,
    pub dw: Vec<f32>,
    pub db: Vec<f32>,
}

/// Groups of images each job of the backward pass takes: one job per thread, so that the
/// weight-gradient partial sums are one per thread.
fn groups_per_thread(batch: usize) -> usize {
    batch
        .div_ceil(IMAGES_PER_GEMM)
        .div_ceil(rayon::current_num_threads())
        .max(1)
}

/// The gradients of [`conv2d_forward`](super::conv2d_forward) for the output gradient `dy`
/// (see [`ConvGradients`]).
pub fn conv2d_backward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    want_dx: bool,
) -> ConvGradients {
    let k = g.col_rows();
    assert_eq!(
        x.len(),
        g.batch * g.in_image(),
        "conv2d backward: input size"
    );
    assert_eq!(w.len(), g.c_out * k, "conv2d backward: weight size");
    assert_eq!(
        dy.len(),
        g.batch * g.out_image(),
        "conv2d backward: gradient size"
    );
    let mut dx = want_dx.then(|| vec![0.0f32; x.len()]);
    let zero = || GradientSums::zeros(g);
    if g.batch == 0 || g.out_image() == 0 || g.in_image() == 0 {
        let GradientSums { dw, db } = zero();
        return ConvGradients { dx, dw, db };
    }
    let layout = Layout::of(g);
    // what the input gradient multiplies by: the weight in the fields' tap order, or the
    // mirrored taps in the shifted layout
    let w = match layout {
        Layout::Fields(fields) => fields.weight(g, w),
        Layout::Shifted => Cow::Owned(shifted::flipped_weight(g, w)),
    };
    let group =
        |acc: GradientSums, x_group: &[f32], dy_group: &[f32], dx_group: Option<&mut [f32]>| {
            match layout {
                Layout::Fields(fields) => {
                    backward_group(g, fields, &w, acc, x_group, dy_group, dx_group)
                }
                Layout::Shifted => shifted_group(g, &w, acc, x_group, dy_group, dx_group),
            }
        };
    // Each job sums the partials of a fixed run of images, and the jobs' sums are added in
    // order: the same gradients whatever thread ran what (a rayon fold would group the
    // sums as work-stealing happened to split the batch, and training would differ from
    // run to run in the last bits, then in the accuracy).
    let images = groups_per_thread(g.batch) * IMAGES_PER_GEMM;
    let (in_len, out_len) = (
        IMAGES_PER_GEMM * g.in_image(),
        IMAGES_PER_GEMM * g.out_image(),
    );
    let x_jobs = x.par_chunks(images * g.in_image());
    let dy_jobs = dy.par_chunks(images * g.out_image());
    let partials: Vec<GradientSums> = match dx.as_mut() {
        Some(dx) => x_jobs
            .zip(dy_jobs)
            .zip(dx.par_chunks_mut(images * g.in_image()))
            .map(|((x_job, dy_job), dx_job)| {
                let groups = x_job
                    .chunks(in_len)
                    .zip(dy_job.chunks(out_len))
                    .zip(dx_job.chunks_mut(in_len));
                groups.fold(zero(), |acc, ((x_group, dy_group), dx_group)| {
                    group(acc, x_group, dy_group, Some(dx_group))
                })
            })
            .collect(),
        None => x_jobs
            .zip(dy_jobs)
            .map(|(x_job, dy_job)| {
                let groups = x_job.chunks(in_len).zip(dy_job.chunks(out_len));
                groups.fold(zero(), |acc, (x_group, dy_group)| {
                    group(acc, x_group, dy_group, None)
                })
            })
            .collect(),
    };
    let GradientSums { dw, db } = partials
        .into_iter()
        .reduce(GradientSums::add)
        .unwrap_or_else(zero);
    let dw = match layout {
        Layout::Fields(Fields::Columns) => dw,
        Layout::Fields(Fields::Rows) => rows::channels_first_weight(g, &dw),
        Layout::Shifted => {
            // [K, c_out] -> [c_out, K]
            let mut rows_order = vec![0.0f32; dw.len()];
            transpose(k, g.c_out, (&dw, g.c_out), (&mut rows_order, k));
            rows::channels_first_weight(g, &rows_order)
        }
    };
    ConvGradients { dx, dw, db }
}

/// One group of images in the shifted layout, one image at a time.
fn shifted_group(
    g: &ConvGeometry,
    flipped: &[f32],
    mut sums: GradientSums,
    x_group: &[f32],
    dy_group: &[f32],
    dx_group: Option<&mut [f32]>,
) -> GradientSums {
    with_scratch(g, g.out_pixels(), |s| {
        let images = x_group
            .chunks(g.in_image())
            .zip(dy_group.chunks(g.out_image()));
        let mut dx_images = dx_group.map(|dx| dx.chunks_mut(g.in_image()));
        for (image, dy) in images {
            let dx = dx_images.as_mut().and_then(Iterator::next);
            let buffers = s.shifted();
            shifted::backward_image(g, flipped, image, dy, dx, &mut sums, buffers);
        }
    });
    sums
}

/// One group of images: dy laid side by side as `panel[c_out, width]`, then the weight
/// gradient, the bias gradient as row sums and (for dx) the fields' gradient folded back.
/// `w` is the weight in the fields' tap order.
fn backward_group(
    g: &ConvGeometry,
    layout: Fields,
    w: &[f32],
    mut sums: GradientSums,
    x_group: &[f32],
    dy_group: &[f32],
    dx_group: Option<&mut [f32]>,
) -> GradientSums {
    let (k, p) = (g.col_rows(), g.out_pixels());
    let width = x_group.len() / g.in_image() * p;
    with_scratch(g, width, |s| {
        s.fill_fields(g, layout, x_group, width);
        for (j, grad) in dy_group.chunks(g.out_image()).enumerate() {
            for (co, plane) in grad.chunks(p).enumerate() {
                s.panel[co * width + j * p..co * width + (j + 1) * p].copy_from_slice(plane);
                sums.db[co] += plane.iter().sum::<f32>();
            }
        }
        let (fields, panel) = (&s.fields, &s.panel);
        // The fields as a [width, K] matrix.
        let fields = match layout {
            Fields::Columns => Operand::transposed(fields, width),
            Fields::Rows => Operand::row_major(fields, k),
        };
        // dw[c_out, K] += dy[c_out, width] @ fields[width, K]
        let shape = GemmShape {
            m: g.c_out,
            n: k,
            k: width,
        };
        let dy = Operand::row_major(panel, width);
        matmul(shape, &mut sums.dw, true, dy, fields);
        if let Some(dx_group) = dx_group {
            input_gradient(g, layout, w, width, s, dx_group);
        }
    });
    sums
}

/// The input gradient of a group of images, from the output gradient in `s.panel`: the
/// fields' gradient, folded back onto each image of `dx_group`.
fn input_gradient(
    g: &ConvGeometry,
    layout: Fields,
    w: &[f32],
    width: usize,
    s: &mut Scratch,
    dx_group: &mut [f32],
) {
    let (k, p) = (g.col_rows(), g.out_pixels());
    let (dfields, panel) = (&mut s.dfields, &s.panel);
    match layout {
        Fields::Columns => {
            // dcol[K, width] = w^T[K, c_out] @ dy[c_out, width]
            let shape = GemmShape {
                m: k,
                n: width,
                k: g.c_out,
            };
            let (wt, dy) = (Operand::transposed(w, k), Operand::row_major(panel, width));
            matmul(shape, dfields, false, wt, dy);
            for (j, dx_img) in dx_group.chunks_mut(g.in_image()).enumerate() {
                columns::col2im(g, dfields, width, j * p, dx_img);
            }
        }
        Fields::Rows => {
            // drows[width, K] = dy^T[width, c_out] @ w'[c_out, K]
            let shape = GemmShape {
                m: width,
                n: k,
                k: g.c_out,
            };
            let (dyt, w) = (Operand::transposed(panel, width), Operand::row_major(w, k));
            matmul(shape, dfields, false, dyt, w);
            for (j, dx_img) in dx_group.chunks_mut(g.in_image()).enumerate() {
                s.hwc.fill(0.0);
                rows::row2im(g, dfields, j * p, &mut s.hwc);
                rows::to_channels_first(g, &s.hwc, dx_img);
            }
        }
    }
}
