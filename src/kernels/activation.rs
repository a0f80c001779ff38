//! GELU, the exact one (PyTorch's default, `x Φ(x)` with the normal distribution's CDF),
//! forward and backward on host slices in one pass each. burn's computes `erf` with a
//! scalar library call per value and builds the derivative from half a dozen tensor
//! operations; here both share one `exp(-x² / 2)`, and every step is plain arithmetic
//! the compiler vectorizes.

use rayon::prelude::*;

/// Values per parallel job: large enough that a job outweighs its scheduling.
const CHUNK: usize = 1 << 14;

/// `e^v` for `v <= 0` (relative error below 2e-7; 0 below -87): `2^n e^r` with `n` the
/// nearest integer to `v / ln 2` and `|r| <= ln 2 / 2` by a degree-7 Taylor polynomial.
#[inline(always)]
pub(super) fn exp_nonpositive(v: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // adding 1.5 * 2^23 rounds to an integer, which then sits in the low mantissa bits
    const ROUND: f32 = 12_582_912.0;
    let v = v.max(-87.0);
    let shifted = v * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (v - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let exponent = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    p * f32::from_bits(((exponent + 127) as u32) << 23)
}

/// `Φ(x)` and the normal density `φ(x)`, from one exponential: `Φ` by Abramowitz and
/// Stegun 7.1.26 for `erfc` (absolute error below 1.5e-7), written without cancellation
/// on either side.
#[inline(always)]
fn normal_cdf_and_density(x: f32) -> (f32, f32) {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let gauss = exp_nonpositive(-0.5 * x * x); // e^(-z²)
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let tail = 0.5 * poly * gauss; // Φ(-|x|) = erfc(z) / 2
    let cdf = if x < 0.0 { tail } else { 1.0 - tail };
    (cdf, INV_SQRT_2PI * gauss)
}

/// GELU of one value: `x Φ(x)`.
#[inline]
pub fn gelu(x: f32) -> f32 {
    x * normal_cdf_and_density(x).0
}

/// GELU of every value.
pub fn gelu_forward(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| y.iter_mut().zip(x).for_each(|(y, &x)| *y = gelu(x)));
    y
}

/// The input gradient for the output gradient `dy`: `dy (Φ(x) + x φ(x))`.
pub fn gelu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), dy.len(), "gelu backward: gradient size");
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (x, dy))| {
            for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                let (cdf, density) = normal_cdf_and_density(x);
                *dx = dy * (cdf + x * density);
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `erf` in f64 by its Maclaurin series (|x| <= 3) or its continued fraction, far more
    /// accurate than the f32 kernel it checks.
    fn erf64(x: f64) -> f64 {
        let a = x.abs();
        let y = if a <= 3.0 {
            let (mut term, mut sum, mut n) = (a, a, 0.0f64);
            while term.abs() > 1e-17 * sum.abs() {
                n += 1.0;
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            2.0 / std::f64::consts::PI.sqrt() * sum
        } else {
            // erfc(a) = e^(-a²) / sqrt(pi) * 1 / (a + 1/2 / (a + 1 / (a + 3/2 / (a + ...))))
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
        };
        y.copysign(x)
    }

    fn gelu64(x: f64) -> f64 {
        0.5 * x * (1.0 + erf64(x / std::f64::consts::SQRT_2))
    }

    fn grid() -> Vec<f32> {
        (-12_000..=12_000).map(|i| i as f32 * 1e-3).collect()
    }

    #[test]
    fn the_reference_erf_is_right_where_it_is_known() {
        assert!((erf64(0.5) - 0.520_499_877_813_046_5).abs() < 1e-15);
        assert!((erf64(2.0) - 0.995_322_265_018_952_7).abs() < 1e-15);
        assert!((erf64(3.5) - 0.999_999_256_901_627_7).abs() < 1e-15);
    }

    #[test]
    fn exp_matches_the_standard_library() {
        for i in 0..=8_700 {
            let v = -(i as f32) * 0.01;
            let (got, want) = (exp_nonpositive(v), v.exp());
            assert!(
                (got - want).abs() <= 2e-7 * want + 1e-38,
                "exp({v}): {got} vs {want}"
            );
        }
        assert_eq!(exp_nonpositive(-1000.0), exp_nonpositive(-87.0));
    }

    #[test]
    fn forward_matches_the_definition() {
        let x = grid();
        let y = gelu_forward(&x);
        for (&x, &y) in x.iter().zip(&y) {
            let want = gelu64(x as f64);
            assert!(
                (y as f64 - want).abs() < 4e-7 * (1.0 + want.abs()),
                "gelu({x}) = {y}, not {want}"
            );
        }
    }

    #[test]
    fn backward_is_the_derivative() {
        let x = grid();
        let dy: Vec<f32> = x.iter().map(|v| 1.0 + 0.1 * v).collect();
        let dx = gelu_backward(&x, &dy);
        let h = 1e-4f64;
        for ((&x, &dy), &dx) in x.iter().zip(&dy).zip(&dx) {
            let x = x as f64;
            let slope = (gelu64(x + h) - gelu64(x - h)) / (2.0 * h);
            let want = dy as f64 * slope;
            assert!(
                (dx as f64 - want).abs() < 1e-6 * (1.0 + want.abs()),
                "gelu'({x}): {dx} vs {want}"
            );
        }
    }

    #[test]
    fn lengths_must_agree() {
        assert!(std::panic::catch_unwind(|| gelu_backward(&[1.0, 2.0], &[1.0])).is_err());
        assert!(gelu_forward(&[]).is_empty());
    }
}
