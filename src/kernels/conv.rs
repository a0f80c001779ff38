//! 2D convolution (stride 1, no dilation, one group, symmetric zero padding) on host
//! slices in NCHW layout, forward and backward, as one gemm per image over an im2col
//! buffer that stays in cache.
//!
//! Per image, with `K = c_in * kh * kw` and `P = out_h * out_w`:
//! - forward: `y[c_out, P] = w[c_out, K] @ col[K, P] + b`;
//! - weight gradient: `dw[c_out, K] += dy[c_out, P] @ col[K, P]^T`;
//! - input gradient: `dcol[K, P] = w[c_out, K]^T @ dy[c_out, P]`, folded back by col2im.
//!
//! A few images share each gemm (their columns side by side); groups of images run in
//! parallel on rayon's pool, each gemm on one thread.

use rayon::prelude::*;

use super::gemm::matmul;

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
}

impl ConvGeometry {
    pub fn out_h(&self) -> usize {
        self.in_h + 2 * self.pad_h + 1 - self.kh
    }

    pub fn out_w(&self) -> usize {
        self.in_w + 2 * self.pad_w + 1 - self.kw
    }

    /// Rows of the im2col matrix: one per (input channel, kernel row, kernel column).
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

    /// The output columns `ox` whose input column `ox + kj - pad_w` lies inside the image.
    fn valid_columns(&self, kj: usize) -> (usize, usize) {
        let lo = self.pad_w.saturating_sub(kj);
        let hi = (self.in_w + self.pad_w)
            .saturating_sub(kj)
            .min(self.out_w());
        (lo, hi.max(lo))
    }
}

/// Images side by side in one im2col buffer: each gemm is that many times wider, so the
/// weight is packed once per group instead of once per image.
const IMAGES_PER_GEMM: usize = 4;

/// Lays one image `[c_in, in_h, in_w]` out as its `P` columns of `col[K, width]`, starting
/// at column `first`. Where the kernel reads padding the buffer must hold zeros: written
/// here when `write_padding`, otherwise left as they are (a buffer that last held the same
/// geometry and width has them already).
fn im2col(
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
                    let iy = (oy + ki) as isize - g.pad_h as isize;
                    if iy < 0 || iy >= g.in_h as isize {
                        if write_padding {
                            line.fill(0.0);
                        }
                        continue;
                    }
                    if write_padding {
                        line[..lo].fill(0.0);
                        line[hi..].fill(0.0);
                    }
                    let src = iy as usize * g.in_w + lo + kj - g.pad_w;
                    line[lo..hi].copy_from_slice(&plane[src..src + (hi - lo)]);
                }
            }
        }
    }
}

/// Adds the image gradient `[c_in, in_h, in_w]` from its `P` columns of `col[K, width]`
/// starting at column `first` onto `image` (the transpose of [`im2col`]).
fn col2im(g: &ConvGeometry, col: &[f32], width: usize, first: usize, image: &mut [f32]) {
    let (out_h, out_w) = (g.out_h(), g.out_w());
    for c in 0..g.c_in {
        let plane = &mut image[c * g.in_h * g.in_w..(c + 1) * g.in_h * g.in_w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let src = &col[row * width + first..row * width + first + g.out_pixels()];
                let (lo, hi) = g.valid_columns(kj);
                for oy in 0..out_h {
                    let iy = (oy + ki) as isize - g.pad_h as isize;
                    if iy < 0 || iy >= g.in_h as isize {
                        continue;
                    }
                    let dst = iy as usize * g.in_w + lo + kj - g.pad_w;
                    let line = &src[oy * out_w + lo..oy * out_w + hi];
                    for (d, s) in plane[dst..dst + (hi - lo)].iter_mut().zip(line) {
                        *d += s;
                    }
                }
            }
        }
    }
}

/// Groups of images each rayon job takes: one job per thread, so that the weight-gradient
/// partial sums are one per thread.
fn groups_per_thread(batch: usize) -> usize {
    batch
        .div_ceil(IMAGES_PER_GEMM)
        .div_ceil(rayon::current_num_threads())
        .max(1)
}

/// One thread's buffers for one geometry: the im2col matrix (whose padding positions stay
/// zero between calls), the input-gradient columns, and a `[c_out, width]` panel.
struct Scratch {
    key: (ConvGeometry, usize),
    col: Vec<f32>,
    dcol: Vec<f32>,
    panel: Vec<f32>,
}

/// Buffers kept per thread across calls, a few geometries at a time (one per layer), so a
/// training step allocates and zeroes no scratch memory.
const SCRATCH_KEPT: usize = 8;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<Scratch>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f(col, dcol, panel, padding_zeroed)` with this thread's buffers for `g` and
/// `width` columns.
fn with_scratch<R>(
    g: &ConvGeometry,
    width: usize,
    f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32], bool) -> R,
) -> R {
    let key = (ConvGeometry { batch: 0, ..*g }, width);
    SCRATCH.with(|cell| {
        let mut kept = cell.borrow_mut();
        let found = kept.iter().position(|s| s.key == key);
        let (index, fresh) = match found {
            Some(i) => (i, false),
            None => {
                if kept.len() == SCRATCH_KEPT {
                    kept.remove(0);
                }
                kept.push(Scratch {
                    key,
                    col: vec![0.0; g.col_rows() * width],
                    dcol: vec![0.0; g.col_rows() * width],
                    panel: vec![0.0; g.c_out * width],
                });
                (kept.len() - 1, true)
            }
        };
        let s = &mut kept[index];
        f(&mut s.col, &mut s.dcol, &mut s.panel, !fresh)
    })
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
    y.par_chunks_mut(IMAGES_PER_GEMM * g.out_image())
        .zip(x.par_chunks(IMAGES_PER_GEMM * g.in_image()))
        .for_each(|(y_group, x_group)| {
            let width = x_group.len() / g.in_image() * p;
            with_scratch(g, width, |col, _, panel, zeroed| {
                for (j, image) in x_group.chunks(g.in_image()).enumerate() {
                    im2col(g, image, col, width, j * p, !zeroed);
                }
                matmul(g.c_out, width, k, panel, false, w, (k, 1), col, (width, 1));
                for (j, y_img) in y_group.chunks_mut(g.out_image()).enumerate() {
                    for (co, row) in y_img.chunks_mut(p).enumerate() {
                        let bias = b.map_or(0.0, |b| b[co]);
                        let src = &panel[co * width + j * p..co * width + (j + 1) * p];
                        for (d, s) in row.iter_mut().zip(src) {
                            *d = s + bias;
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

/// The weight and bias gradients summed over some images.
type Partial = (Vec<f32>, Vec<f32>);

pub fn conv2d_backward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    want_dx: bool,
) -> ConvGradients {
    let (k, p) = (g.col_rows(), g.out_pixels());
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
    // One group of images: dy laid side by side as `panel[c_out, width]`, then
    // dw += panel @ col^T, db += row sums, and (for dx) col = w^T @ panel folded back.
    let group = |(mut dw, mut db): Partial,
                 x_group: &[f32],
                 dy_group: &[f32],
                 dx_group: Option<&mut [f32]>| {
        let width = x_group.len() / g.in_image() * p;
        with_scratch(g, width, |col, dcol, panel, zeroed| {
            for (j, (image, grad)) in x_group
                .chunks(g.in_image())
                .zip(dy_group.chunks(g.out_image()))
                .enumerate()
            {
                im2col(g, image, col, width, j * p, !zeroed);
                for (co, row) in grad.chunks(p).enumerate() {
                    panel[co * width + j * p..co * width + (j + 1) * p].copy_from_slice(row);
                    db[co] += row.iter().sum::<f32>();
                }
            }
            matmul(
                g.c_out,
                k,
                width,
                &mut dw,
                true,
                panel,
                (width, 1),
                col,
                (1, width),
            );
            if let Some(dx_group) = dx_group {
                matmul(k, width, g.c_out, dcol, false, w, (1, k), panel, (width, 1));
                for (j, dx_img) in dx_group.chunks_mut(g.in_image()).enumerate() {
                    col2im(g, dcol, width, j * p, dx_img);
                }
            }
        });
        (dw, db)
    };
    let add = |(mut aw, mut ab): Partial, (bw, bb): Partial| {
        aw.iter_mut().zip(&bw).for_each(|(a, b)| *a += b);
        ab.iter_mut().zip(&bb).for_each(|(a, b)| *a += b);
        (aw, ab)
    };
    let x_groups = x.par_chunks(IMAGES_PER_GEMM * g.in_image());
    let dy_groups = dy.par_chunks(IMAGES_PER_GEMM * g.out_image());
    let (dw, db) = match dx.as_mut() {
        Some(dx) => x_groups
            .zip(dy_groups)
            .zip(dx.par_chunks_mut(IMAGES_PER_GEMM * g.in_image()))
            .with_min_len(groups_per_thread(g.batch))
            .fold(zero, |acc, ((x_group, dy_group), dx_group)| {
                group(acc, x_group, dy_group, Some(dx_group))
            })
            .reduce(zero, add),
        None => x_groups
            .zip(dy_groups)
            .with_min_len(groups_per_thread(g.batch))
            .fold(zero, |acc, (x_group, dy_group)| {
                group(acc, x_group, dy_group, None)
            })
            .reduce(zero, add),
    };
    ConvGradients { dx, dw, db }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values as values;

    /// The convolution by its definition, one output at a time.
    fn naive_forward(g: &ConvGeometry, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        let (oh, ow) = (g.out_h(), g.out_w());
        let mut y = vec![0.0; g.batch * g.c_out * oh * ow];
        for n in 0..g.batch {
            for co in 0..g.c_out {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut s = b[co] as f64;
                        for ci in 0..g.c_in {
                            for ki in 0..g.kh {
                                for kj in 0..g.kw {
                                    let iy = (oy + ki) as isize - g.pad_h as isize;
                                    let ix = (ox + kj) as isize - g.pad_w as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= g.in_h as isize
                                        || ix >= g.in_w as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((n * g.c_in + ci) * g.in_h + iy as usize) * g.in_w
                                        + ix as usize;
                                    let wi = ((co * g.c_in + ci) * g.kh + ki) * g.kw + kj;
                                    s += x[xi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                        y[((n * g.c_out + co) * oh + oy) * ow + ox] = s as f32;
                    }
                }
            }
        }
        y
    }

    fn geometries() -> Vec<ConvGeometry> {
        // batches of 1 to 6 images: single, partial and several groups of IMAGES_PER_GEMM
        let g = |batch, c_in, in_h, in_w, c_out, kh, kw, pad_h, pad_w| ConvGeometry {
            batch,
            c_in,
            in_h,
            in_w,
            c_out,
            kh,
            kw,
            pad_h,
            pad_w,
        };
        vec![
            g(6, 1, 8, 8, 4, 5, 5, 2, 2),
            g(5, 3, 7, 6, 5, 3, 3, 0, 0),
            g(2, 2, 5, 9, 3, 3, 5, 1, 2),
            g(1, 4, 4, 4, 2, 5, 5, 2, 2),
            g(2, 2, 6, 6, 3, 1, 1, 0, 0),
        ]
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: length");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        for g in geometries() {
            let x = values(g.batch * g.c_in * g.in_h * g.in_w, 1);
            let w = values(g.c_out * g.col_rows(), 2);
            let b = values(g.c_out, 3);
            close(
                &conv2d_forward(&g, &x, &w, Some(&b)),
                &naive_forward(&g, &x, &w, &b),
                &format!("{g:?}"),
            );
        }
    }

    /// Each gradient is the derivative of `sum(y * dy)`, checked against central
    /// differences of the naive forward pass in f64-accumulated sums.
    #[test]
    fn gradients_match_finite_differences() {
        for g in geometries() {
            let x = values(g.batch * g.c_in * g.in_h * g.in_w, 4);
            let w = values(g.c_out * g.col_rows(), 5);
            let b = values(g.c_out, 6);
            let dy = values(g.batch * g.c_out * g.out_pixels(), 7);
            let objective = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
                naive_forward(&g, x, w, b)
                    .iter()
                    .zip(&dy)
                    .map(|(&y, &d)| y as f64 * d as f64)
                    .sum()
            };
            let grads = conv2d_backward(&g, &x, &w, &dy, true);
            let h = 1e-2f32;
            let numeric = |which: usize, i: usize| -> f32 {
                let (mut xp, mut wp, mut bp) = (x.clone(), w.clone(), b.clone());
                let (mut xm, mut wm, mut bm) = (x.clone(), w.clone(), b.clone());
                match which {
                    0 => {
                        xp[i] += h;
                        xm[i] -= h
                    }
                    1 => {
                        wp[i] += h;
                        wm[i] -= h
                    }
                    _ => {
                        bp[i] += h;
                        bm[i] -= h
                    }
                }
                ((objective(&xp, &wp, &bp) - objective(&xm, &wm, &bm)) / (2.0 * h as f64)) as f32
            };
            let dx = grads.dx.as_ref().expect("dx was asked for");
            for i in (0..x.len()).step_by(7) {
                let n = numeric(0, i);
                assert!((dx[i] - n).abs() < 1e-2 * (1.0 + n.abs()), "{g:?} dx[{i}]");
            }
            for i in (0..w.len()).step_by(3) {
                let n = numeric(1, i);
                assert!(
                    (grads.dw[i] - n).abs() < 1e-2 * (1.0 + n.abs()),
                    "{g:?} dw[{i}]"
                );
            }
            for i in 0..b.len() {
                let n = numeric(2, i);
                assert!(
                    (grads.db[i] - n).abs() < 1e-2 * (1.0 + n.abs()),
                    "{g:?} db[{i}]"
                );
            }
            let without_dx = conv2d_backward(&g, &x, &w, &dy, false);
            assert!(without_dx.dx.is_none());
            assert_eq!(without_dx.dw, grads.dw);
        }
    }
}
