//! 2x2 max pooling with stride 2 (the only pooling the models use) on host slices in NCHW
//! layout, keeping which of the four inputs won so the backward pass is one scatter.

use rayon::prelude::*;

/// `if take { a } else { b }` by bit masks: data-dependent branches in the pooling loop
/// mispredict half the time, and cost more than the pooling itself.
#[inline(always)]
fn select(take: bool, a: f32, b: f32) -> f32 {
    let mask = (take as u32).wrapping_neg();
    f32::from_bits((a.to_bits() & mask) | (b.to_bits() & !mask))
}

/// The largest of a window `[a b; c d]` and its position (0..4); the first of equal values
/// wins, and a NaN anywhere makes the result NaN, as in burn's pooling.
#[inline(always)]
fn window_max(a: f32, b: f32, c: f32, d: f32) -> (f32, u8) {
    let (right_top, right_bottom) = (b > a, d > c);
    let (top, bottom) = (select(right_top, b, a), select(right_bottom, d, c));
    let lower = bottom > top;
    let best = select(lower, bottom, top);
    let at = if lower {
        2 + right_bottom as u8
    } else {
        right_top as u8
    };
    let nan = a.is_nan() | b.is_nan() | c.is_nan() | d.is_nan();
    (select(nan, f32::NAN, best), at)
}

/// The output of [`max_pool2x2_forward`]: pooled values and, per output, the winner's
/// position in its window (`dy * 2 + dx`).
pub struct Pooled {
    pub values: Vec<f32>,
    pub winners: Vec<u8>,
}

/// Pools `x[planes, h, w]` (`planes` = batch x channels) to `[planes, h / 2, w / 2]`; an odd
/// last row or column is dropped, as burn and PyTorch do. The first of equal values wins.
pub fn max_pool2x2_forward(x: &[f32], planes: usize, h: usize, w: usize) -> Pooled {
    assert_eq!(x.len(), planes * h * w, "max pool: input size");
    let (oh, ow) = (h / 2, w / 2);
    let mut values = vec![0.0f32; planes * oh * ow];
    let mut winners = vec![0u8; planes * oh * ow];
    if oh * ow == 0 {
        return Pooled { values, winners };
    }
    values
        .par_chunks_mut(oh * ow)
        .zip(winners.par_chunks_mut(oh * ow))
        .zip(x.par_chunks(h * w))
        .for_each(|((out, win), plane)| {
            for oy in 0..oh {
                let top = &plane[2 * oy * w..2 * oy * w + w];
                let bottom = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + w];
                for ox in 0..ow {
                    let (best, at) = window_max(
                        top[2 * ox],
                        top[2 * ox + 1],
                        bottom[2 * ox],
                        bottom[2 * ox + 1],
                    );
                    out[oy * ow + ox] = best;
                    win[oy * ow + ox] = at;
                }
            }
        });
    Pooled { values, winners }
}

/// The gradient of [`max_pool2x2_forward`]: each output gradient goes to its window's
/// winner, every other input gets zero.
pub fn max_pool2x2_backward(
    dy: &[f32],
    winners: &[u8],
    planes: usize,
    h: usize,
    w: usize,
) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    assert_eq!(
        dy.len(),
        planes * oh * ow,
        "max pool backward: gradient size"
    );
    assert_eq!(winners.len(), dy.len(), "max pool backward: winners size");
    let mut dx = vec![0.0f32; planes * h * w];
    if oh * ow == 0 {
        return dx;
    }
    dx.par_chunks_mut(h * w)
        .zip(dy.par_chunks(oh * ow))
        .zip(winners.par_chunks(oh * ow))
        .for_each(|((plane, g), win)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let i = oy * ow + ox;
                    let (r, c) = ((win[i] >> 1) as usize, (win[i] & 1) as usize);
                    plane[(2 * oy + r) * w + 2 * ox + c] = g[i];
                }
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_largest_of_each_window_and_routes_the_gradient_there() {
        // one plane 4x5: the last column is dropped
        #[rustfmt::skip]
        let x = [
            1.0, 9.0, 2.0, 3.0, 100.0,
            4.0, 5.0, 8.0, 7.0, 100.0,
            -1.0, -2.0, 0.5, 0.5, 100.0,
            -3.0, -0.5, 0.0, 0.25, 100.0,
        ];
        let p = max_pool2x2_forward(&x, 1, 4, 5);
        assert_eq!(p.values, vec![9.0, 8.0, -0.5, 0.5]);
        assert_eq!(p.winners, vec![1, 2, 3, 0]);
        let dx = max_pool2x2_backward(&[1.0, 2.0, 3.0, 4.0], &p.winners, 1, 4, 5);
        #[rustfmt::skip]
        let expected = vec![
            0.0, 1.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 2.0, 0.0, 0.0,
            0.0, 0.0, 4.0, 0.0, 0.0,
            0.0, 3.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(dx, expected);
    }

    #[test]
    fn planes_are_independent() {
        let x: Vec<f32> = (0..2 * 2 * 2).map(|i| i as f32).collect();
        let p = max_pool2x2_forward(&x, 2, 2, 2);
        assert_eq!(p.values, vec![3.0, 7.0]);
        assert_eq!(p.winners, vec![3, 3]);
    }

    #[test]
    fn nan_propagates() {
        let p = max_pool2x2_forward(&[1.0, f32::NAN, 2.0, 3.0], 1, 2, 2);
        assert!(p.values[0].is_nan());
    }
}
