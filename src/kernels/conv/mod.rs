//! 2D convolution (any stride, no dilation, one group, symmetric zero padding) on host
//! slices in NCHW layout, forward and backward, as one gemm per group of images over a
//! receptive-field buffer (im2col) that stays in cache.
//!
//! The buffer has one of two layouts ([`Fields`]): columns (`col[K, width]`, see
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

mod columns;
mod rows;
mod shifted;

use std::borrow::Cow;

use rayon::prelude::*;

use super::gemm::matmul;
use super::transpose::transpose;
use shifted::{Buffers, Grid};

/// A convolution's zeros on each side and its steps, `[height, width]` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpacing {
    pub padding: [usize; 2],
    pub stride: [usize; 2],
}

/// The shapes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub c_in: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub pad_h: usize,
    pub pad_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
}

/// The output length of one axis: `(input + 2 pad - kernel) / stride + 1`, none when the
/// kernel does not fit.
pub fn out_len(input: usize, pad: usize, kernel: usize, stride: usize) -> usize {
    (input + 2 * pad)
        .checked_sub(kernel)
        .map_or(0, |room| room / stride.max(1) + 1)
}

impl ConvGeometry {
    pub fn out_h(&self) -> usize {
        out_len(self.in_h, self.pad_h, self.kh, self.stride_h)
    }

    pub fn out_w(&self) -> usize {
        out_len(self.in_w, self.pad_w, self.kw, self.stride_w)
    }

    /// Receptive-field length `K`: one value per (input channel, kernel row, kernel column).
    pub fn col_rows(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Output pixels per channel.
    pub fn out_pixels(&self) -> usize {
        self.out_h() * self.out_w()
    }

    fn in_image(&self) -> usize {
        self.c_in * self.in_h * self.in_w
    }

    fn out_image(&self) -> usize {
        self.c_out * self.out_pixels()
    }

    /// The output columns `ox` whose input column `ox * stride_w + kj - pad_w` lies inside
    /// the image.
    fn valid_columns(&self, kj: usize) -> (usize, usize) {
        let s = self.stride_w.max(1);
        let lo = self.pad_w.saturating_sub(kj).div_ceil(s);
        let hi = (self.in_w + self.pad_w)
            .saturating_sub(kj)
            .div_ceil(s)
            .min(self.out_w());
        (lo, hi.max(lo))
    }

    /// The kernel columns `kj` whose input column `ox * stride_w + kj - pad_w` lies inside
    /// the image.
    fn valid_taps(&self, ox: usize) -> (usize, usize) {
        let left = ox * self.stride_w;
        let lo = self.pad_w.saturating_sub(left);
        let hi = (self.in_w + self.pad_w).saturating_sub(left).min(self.kw);
        (lo, hi.max(lo))
    }

    /// The input row a kernel row reads for output row `oy`, if it is not padding.
    fn input_row(&self, oy: usize, ki: usize) -> Option<usize> {
        (oy * self.stride_h + ki)
            .checked_sub(self.pad_h)
            .filter(|&iy| iy < self.in_h)
    }

    /// The input column output column `ox` reads through kernel column `kj` (which must be
    /// one of [`ConvGeometry::valid_taps`]).
    fn input_column(&self, ox: usize, kj: usize) -> usize {
        ox * self.stride_w + kj - self.pad_w
    }
}

/// How a convolution's products read the images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Through a receptive-field buffer per group of images.
    Fields(Fields),
    /// No field buffer: `kh` products per image over windows read in place from the
    /// zero-padded channels-last image (stride 1 only).
    Shifted,
}

/// How a group's receptive fields are laid out for its gemms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fields {
    /// `col[K, width]`, built one output row per copy from the NCHW image.
    Columns,
    /// `rows[width, K]`, built one kernel-row window (`kw * c_in` values) per copy from the
    /// image turned channels-last.
    Rows,
}

impl Layout {
    /// Rows once a window's contiguous run is long enough that its copies beat copying
    /// whole output rows, and the products then skip repacking the large operand; columns
    /// for narrow windows (a first layer's single channel), where rows would mean many tiny
    /// copies and a thin output panel. Wide windows at stride 1 are read in place
    /// (shifted) instead of copied as rows, unless the dropped columns (`kw - 1` per output
    /// row) cost more than the copies save: measured on ResNet-20's 3x3 layers, in place
    /// wins at 28 pixels wide (30 computed per 28), loses at 14 (16 per 14).
    fn of(g: &ConvGeometry) -> Self {
        if g.kw * g.c_in < ROW_LAYOUT_MIN_RUN {
            Layout::Fields(Fields::Columns)
        } else if g.stride_h == 1 && g.stride_w == 1 && Grid::of(g).waste(g) <= SHIFTED_MAX_WASTE {
            Layout::Shifted
        } else {
            Layout::Fields(Fields::Rows)
        }
    }
}

/// The most grid columns per output column for which [`Layout::Shifted`] is used.
const SHIFTED_MAX_WASTE: f64 = 1.1;

/// Shortest window run (`kw * c_in` values) for which [`Fields::Rows`] is used.
const ROW_LAYOUT_MIN_RUN: usize = 32;

/// Images in one receptive-field buffer: each gemm covers that many images, so the weight
/// is packed once per group instead of once per image.
const IMAGES_PER_GEMM: usize = 4;

/// Groups of images each job of the backward pass takes: one job per thread, so that the
/// weight-gradient partial sums are one per thread.
fn groups_per_thread(batch: usize) -> usize {
    batch
        .div_ceil(IMAGES_PER_GEMM)
        .div_ceil(rayon::current_num_threads())
        .max(1)
}

/// One thread's buffers for one geometry and group width (`width` output pixels).
struct Scratch {
    key: (ConvGeometry, usize),
    /// The receptive fields (`K * width`, in the geometry's layout), whose padding positions
    /// stay zero between calls; for [`Layout::Shifted`], one zero-padded channels-last image.
    fields: Vec<f32>,
    /// The receptive fields' gradient, same shape; for [`Layout::Shifted`], the product of
    /// one image (its output, or its input gradient, on the padded grid).
    dfields: Vec<f32>,
    /// `c_out * width`: the output gradient `[c_out, width]`, or the product before it is
    /// written out as the output; for [`Layout::Shifted`], one image's output gradient on
    /// the padded grid behind its zero frame.
    panel: Vec<f32>,
    /// One image channels-last (row layout only).
    hwc: Vec<f32>,
    /// False the first time the buffers are handed out (padding not yet written).
    padding_zeroed: bool,
}

impl Scratch {
    fn new(key: (ConvGeometry, usize), g: &ConvGeometry, width: usize) -> Self {
        let zeros = |n: usize| vec![0.0f32; n];
        let (fields, dfields, panel, hwc) = match Layout::of(g) {
            Layout::Shifted => {
                let grid = Grid::of(g);
                let product = grid.output_len(g).max(grid.input_gradient_len(g));
                (
                    zeros(grid.image_len(g)),
                    zeros(product),
                    zeros(grid.framed_gradient_len(g)),
                    Vec::new(),
                )
            }
            Layout::Fields(fields) => (
                zeros(g.col_rows() * width),
                zeros(g.col_rows() * width),
                zeros(g.c_out * width),
                if fields == Fields::Rows {
                    zeros(g.in_image())
                } else {
                    Vec::new()
                },
            ),
        };
        Self {
            key,
            fields,
            dfields,
            panel,
            hwc,
            padding_zeroed: false,
        }
    }

    /// The shifted layout's buffers for one image.
    fn shifted(&mut self) -> Buffers<'_> {
        Buffers {
            image: &mut self.fields,
            product: &mut self.dfields,
            gradient: &mut self.panel,
        }
    }
}

/// Buffers kept per thread across calls, a few geometries at a time (one per layer), so a
/// training step allocates and zeroes no scratch memory.
const SCRATCH_KEPT: usize = 8;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<Scratch>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's buffers for `g` and `width` output pixels.
fn with_scratch<R>(g: &ConvGeometry, width: usize, f: impl FnOnce(&mut Scratch) -> R) -> R {
    let key = (ConvGeometry { batch: 0, ..*g }, width);
    SCRATCH.with(|cell| {
        let mut kept = cell.borrow_mut();
        let index = match kept.iter().position(|s| s.key == key) {
            Some(i) => i,
            None => {
                if kept.len() == SCRATCH_KEPT {
                    kept.remove(0);
                }
                kept.push(Scratch::new(key, g, width));
                kept.len() - 1
            }
        };
        let scratch = &mut kept[index];
        let result = f(scratch);
        scratch.padding_zeroed = true;
        result
    })
}

/// Fills `s.fields` with the receptive fields of a group of images (`[n, c_in, in_h,
/// in_w]`), `width` output pixels in all.
fn fields_of_group(
    g: &ConvGeometry,
    layout: Fields,
    x_group: &[f32],
    width: usize,
    s: &mut Scratch,
) {
    let p = g.out_pixels();
    let write_padding = !s.padding_zeroed;
    for (j, image) in x_group.chunks(g.in_image()).enumerate() {
        match layout {
            Fields::Columns => {
                columns::im2col(g, image, &mut s.fields, width, j * p, write_padding)
            }
            Fields::Rows => {
                rows::to_channels_last(g, image, &mut s.hwc);
                rows::im2row(g, &s.hwc, &mut s.fields, j * p, write_padding);
            }
        }
    }
}

/// The weight `[c_out, K]` in the fields' tap order.
fn weight_for<'w>(g: &ConvGeometry, layout: Fields, w: &'w [f32]) -> Cow<'w, [f32]> {
    match layout {
        Fields::Columns => Cow::Borrowed(w),
        Fields::Rows => Cow::Owned(rows::channels_last_weight(g, w)),
    }
}

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
    let w = weight_for(g, layout, w);
    y.par_chunks_mut(IMAGES_PER_GEMM * g.out_image())
        .zip(x.par_chunks(IMAGES_PER_GEMM * g.in_image()))
        .for_each(|(y_group, x_group)| {
            let width = x_group.len() / g.in_image() * p;
            with_scratch(g, width, |s| {
                fields_of_group(g, layout, x_group, width, s);
                let (fields, panel) = (&s.fields, &mut s.panel);
                // Where output (channel, pixel) of the group lands in the panel.
                let (co_stride, px_stride) = match layout {
                    Fields::Columns => {
                        // panel[c_out, width] = w[c_out, K] @ col[K, width]
                        matmul(
                            g.c_out,
                            width,
                            k,
                            panel,
                            false,
                            &w,
                            (k, 1),
                            fields,
                            (width, 1),
                        );
                        (width, 1)
                    }
                    Fields::Rows => {
                        // panel[width, c_out] = rows[width, K] @ w'[c_out, K]^T
                        matmul(width, g.c_out, k, panel, false, fields, (k, 1), &w, (1, k));
                        (1, g.c_out)
                    }
                };
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

/// Gradients of [`conv2d_forward`] given the output gradient `dy`: the input gradient (only
/// when `want_dx`; an image fed to the first layer needs none), the weight gradient and the
/// bias gradient.
pub struct ConvGradients {
    pub dx: Option<Vec<f32>>,
    pub dw: Vec<f32>,
    pub db: Vec<f32>,
}

/// The weight (in the layout's tap order; transposed, `[K, c_out]`, in the shifted layout)
/// and bias gradients summed over some images.
type Partial = (Vec<f32>, Vec<f32>);

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
    let zero = || (vec![0.0f32; g.c_out * k], vec![0.0f32; g.c_out]);
    if g.batch == 0 || g.out_image() == 0 || g.in_image() == 0 {
        let (dw, db) = zero();
        return ConvGradients { dx, dw, db };
    }
    let layout = Layout::of(g);
    // what the input gradient multiplies by: the weight in the fields' tap order, or the
    // mirrored taps in the shifted layout
    let w = match layout {
        Layout::Fields(fields) => weight_for(g, fields, w),
        Layout::Shifted => Cow::Owned(shifted::flipped_weight(g, w)),
    };
    let group = |acc: Partial, x_group: &[f32], dy_group: &[f32], dx_group: Option<&mut [f32]>| {
        match layout {
            Layout::Fields(fields) => {
                backward_group(g, fields, &w, acc, x_group, dy_group, dx_group)
            }
            Layout::Shifted => shifted_group(g, &w, acc, x_group, dy_group, dx_group),
        }
    };
    let add = |(mut aw, mut ab): Partial, (bw, bb): Partial| {
        aw.iter_mut().zip(&bw).for_each(|(a, b)| *a += b);
        ab.iter_mut().zip(&bb).for_each(|(a, b)| *a += b);
        (aw, ab)
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
    let partials: Vec<Partial> = match dx.as_mut() {
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
    let (dw, db) = partials.into_iter().reduce(add).unwrap_or_else(zero);
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
    (mut dw, mut db): Partial,
    x_group: &[f32],
    dy_group: &[f32],
    dx_group: Option<&mut [f32]>,
) -> Partial {
    with_scratch(g, g.out_pixels(), |s| {
        let images = x_group
            .chunks(g.in_image())
            .zip(dy_group.chunks(g.out_image()));
        let mut dx_images = dx_group.map(|dx| dx.chunks_mut(g.in_image()));
        for (image, dy) in images {
            let dx = dx_images.as_mut().and_then(Iterator::next);
            let buffers = s.shifted();
            shifted::backward_image(g, flipped, image, dy, dx, &mut dw, &mut db, buffers);
        }
    });
    (dw, db)
}

/// One group of images: dy laid side by side as `panel[c_out, width]`, then the weight
/// gradient, the bias gradient as row sums and (for dx) the fields' gradient folded back.
/// `w` is the weight in the fields' tap order.
fn backward_group(
    g: &ConvGeometry,
    layout: Fields,
    w: &[f32],
    (mut dw, mut db): Partial,
    x_group: &[f32],
    dy_group: &[f32],
    dx_group: Option<&mut [f32]>,
) -> Partial {
    let (k, p) = (g.col_rows(), g.out_pixels());
    let width = x_group.len() / g.in_image() * p;
    with_scratch(g, width, |s| {
        fields_of_group(g, layout, x_group, width, s);
        for (j, grad) in dy_group.chunks(g.out_image()).enumerate() {
            for (co, plane) in grad.chunks(p).enumerate() {
                s.panel[co * width + j * p..co * width + (j + 1) * p].copy_from_slice(plane);
                db[co] += plane.iter().sum::<f32>();
            }
        }
        let (fields, panel) = (&s.fields, &s.panel);
        // The fields as a [width, K] matrix: (pixel, tap) strides.
        let field_strides = match layout {
            Fields::Columns => (1, width),
            Fields::Rows => (k, 1),
        };
        // dw[c_out, K] += dy[c_out, width] @ fields[width, K]
        matmul(
            g.c_out,
            k,
            width,
            &mut dw,
            true,
            panel,
            (width, 1),
            fields,
            field_strides,
        );
        if let Some(dx_group) = dx_group {
            input_gradient(g, layout, w, width, s, dx_group);
        }
    });
    (dw, db)
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
            // dcol[K, width] = w^T @ dy
            matmul(
                k,
                width,
                g.c_out,
                dfields,
                false,
                w,
                (1, k),
                panel,
                (width, 1),
            );
            for (j, dx_img) in dx_group.chunks_mut(g.in_image()).enumerate() {
                columns::col2im(g, dfields, width, j * p, dx_img);
            }
        }
        Fields::Rows => {
            // drows[width, K] = dy^T @ w'
            matmul(
                width,
                k,
                g.c_out,
                dfields,
                false,
                panel,
                (1, width),
                w,
                (k, 1),
            );
            for (j, dx_img) in dx_group.chunks_mut(g.in_image()).enumerate() {
                s.hwc.fill(0.0);
                rows::row2im(g, dfields, j * p, &mut s.hwc);
                rows::to_channels_first(g, &s.hwc, dx_img);
            }
        }
    }
}

#[cfg(test)]
mod tests;
