//! The convolution checked against its definition, forward and backward, in both layouts.

use super::layout::{Fields, Layout};
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
                                let iy = (oy * g.stride_h + ki) as isize - g.pad_h as isize;
                                let ix = (ox * g.stride_w + kj) as isize - g.pad_w as isize;
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

/// Geometries of both layouts.
fn geometries() -> Vec<ConvGeometry> {
    // batches of 1 to 6 images: single, partial and several groups of IMAGES_PER_GEMM
    let strided =
        |batch, c_in, in_h, in_w, c_out, kh, kw, pad_h, pad_w, stride_h, stride_w| ConvGeometry {
            batch,
            c_in,
            in_h,
            in_w,
            c_out,
            kh,
            kw,
            pad_h,
            pad_w,
            stride_h,
            stride_w,
        };
    let g = |batch, c_in, in_h, in_w, c_out, kh, kw, pad_h, pad_w| {
        strided(batch, c_in, in_h, in_w, c_out, kh, kw, pad_h, pad_w, 1, 1)
    };
    vec![
        g(6, 1, 8, 8, 4, 5, 5, 2, 2),
        g(5, 3, 7, 6, 5, 3, 3, 0, 0),
        g(2, 2, 5, 9, 3, 3, 5, 1, 2),
        g(1, 4, 4, 4, 2, 5, 5, 2, 2),
        g(2, 2, 6, 6, 3, 1, 1, 0, 0),
        // wide windows, laid out as rows
        g(5, 8, 6, 7, 5, 3, 5, 1, 2),
        g(1, 16, 5, 5, 4, 3, 3, 0, 0),
        g(2, 32, 4, 4, 3, 1, 1, 0, 0),
        // wide windows on wide images, read in place (shifted): a ResNet block's 3x3, an
        // unequal kernel and padding, no padding, a 1x1
        g(5, 16, 8, 12, 6, 3, 3, 1, 1),
        g(3, 8, 7, 14, 5, 3, 5, 2, 1),
        g(2, 12, 6, 13, 4, 3, 3, 0, 0),
        g(3, 40, 5, 9, 7, 1, 1, 0, 0),
        // strides: a ResNet stage change (3x3 and its 1x1 projection), a ViT's patches, odd
        // sizes that leave a last column or row unread, unequal strides
        strided(5, 16, 7, 7, 4, 3, 3, 1, 1, 2, 2),
        strided(5, 16, 7, 7, 4, 1, 1, 0, 0, 2, 2),
        strided(3, 1, 8, 8, 5, 4, 4, 0, 0, 4, 4),
        strided(2, 3, 9, 8, 4, 3, 3, 1, 1, 2, 3),
        strided(2, 12, 6, 9, 3, 3, 2, 0, 1, 3, 2),
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
fn the_test_geometries_cover_both_layouts_with_and_without_strides() {
    let all = geometries();
    for strided in [false, true] {
        let layouts: Vec<Layout> = all
            .iter()
            .filter(|g| (g.stride_h * g.stride_w > 1) == strided)
            .map(Layout::of)
            .collect();
        let columns = Layout::Fields(Fields::Columns);
        assert!(layouts.contains(&columns), "strided: {strided}");
        let rows = Layout::Fields(Fields::Rows);
        assert!(layouts.contains(&rows), "strided: {strided}");
        assert_eq!(layouts.contains(&Layout::Shifted), !strided);
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

/// The weight gradient sums the same partials in the same order whichever thread ran
/// which images: bit for bit the same on every call.
#[test]
fn the_backward_pass_gives_the_same_bits_every_time() {
    let g = ConvGeometry {
        batch: 37,
        c_in: 8,
        in_h: 6,
        in_w: 6,
        c_out: 5,
        kh: 3,
        kw: 3,
        pad_h: 1,
        pad_w: 1,
        stride_h: 1,
        stride_w: 1,
    };
    let x = values(g.batch * g.c_in * g.in_h * g.in_w, 21);
    let w = values(g.c_out * g.col_rows(), 22);
    let dy = values(g.batch * g.c_out * g.out_pixels(), 23);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let first = pool.install(|| conv2d_backward(&g, &x, &w, &dy, true));
    for _ in 0..20 {
        let again = pool.install(|| conv2d_backward(&g, &x, &w, &dy, true));
        assert_eq!(again.dw, first.dw);
        assert_eq!(again.db, first.db);
        assert_eq!(again.dx, first.dx);
    }
}
