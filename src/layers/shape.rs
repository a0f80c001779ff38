//! What flows between layers, per example, and the window arithmetic of the kinds that
//! read windows.

use std::fmt;

/// What flows between layers (per example).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Image {
        c: usize,
        h: usize,
        w: usize,
    },
    Flat(usize),
    /// `n` tokens of `d` features each.
    Tokens {
        n: usize,
        d: usize,
    },
}

impl Shape {
    pub fn numel(&self) -> usize {
        match *self {
            Shape::Image { c, h, w } => c * h * w,
            Shape::Flat(n) => n,
            Shape::Tokens { n, d } => n * d,
        }
    }

    /// The axis a dense layer or a layer norm acts on: features, or each token's features.
    pub fn last_axis(&self) -> Option<usize> {
        match *self {
            Shape::Image { .. } => None,
            Shape::Flat(n) => Some(n),
            Shape::Tokens { d, .. } => Some(d),
        }
    }

    /// Channels of an image, features, or token features: the axis that channel groups
    /// and concatenation work on.
    pub fn channels(&self) -> usize {
        match *self {
            Shape::Image { c, .. } => c,
            Shape::Flat(n) => n,
            Shape::Tokens { d, .. } => d,
        }
    }

    /// Values per example, without overflow.
    pub fn size(&self) -> u128 {
        match *self {
            Shape::Image { c, h, w } => c as u128 * h as u128 * w as u128,
            Shape::Flat(n) => n as u128,
            Shape::Tokens { n, d } => n as u128 * d as u128,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Image { c, h, w } => write!(f, "[{c}, {h}, {w}]"),
            Shape::Flat(n) => write!(f, "[{n}]"),
            Shape::Tokens { n, d } => write!(f, "[{n} tokens, {d}]"),
        }
    }
}

/// Output side of a `k x k` window `stride` apart with `padding` zeros each side
/// (PyTorch's floor), or `None` when the window does not fit.
pub fn window_out(size: usize, k: usize, stride: usize, padding: usize) -> Option<usize> {
    padding
        .checked_mul(2)
        .and_then(|p| size.checked_add(p))
        .and_then(|padded| padded.checked_sub(k))
        .map(|room| room / stride + 1)
}

/// `c` channels of `k x k` windows `stride` apart over an `h x w` image with `padding`
/// zeros each side, or `None` when the window does not fit.
pub(super) fn windowed(
    c: usize,
    (h, w): (usize, usize),
    k: usize,
    stride: usize,
    padding: usize,
) -> Option<Shape> {
    Some(Shape::Image {
        c,
        h: window_out(h, k, stride, padding)?,
        w: window_out(w, k, stride, padding)?,
    })
}

/// The image a layer that takes images reads: channels, height, width.
pub(super) fn image_of(shape: Shape) -> Result<(usize, usize, usize), super::Fit> {
    match shape {
        Shape::Image { c, h, w } => Ok((c, h, w)),
        _ => Err(super::Fit::Mismatch(
            "an image [channels, height, width]".into(),
        )),
    }
}

/// The tokens a layer that takes tokens reads: their count and width.
pub(super) fn tokens_of(shape: Shape) -> Result<(usize, usize), super::Fit> {
    match shape {
        Shape::Tokens { n, d } => Ok((n, d)),
        _ => Err(super::Fit::Mismatch(
            "tokens (add a tokens layer before it)".into(),
        )),
    }
}

/// What a pool of square `kernel` windows `stride` apart gives from `input`.
pub(super) fn pooled(input: Shape, kernel: usize, stride: usize) -> Result<Shape, super::Fit> {
    let (c, h, w) = image_of(input)?;
    if kernel == 0 || stride == 0 {
        return Err(super::Fit::Invalid(
            "kernel and stride must be at least 1".into(),
        ));
    }
    windowed(c, (h, w), kernel, stride, 0)
        .ok_or_else(|| super::Fit::Mismatch(format!("an image of at least {kernel} x {kernel}")))
}

/// A pool's settings: its kernel, and its stride (the kernel when not given).
pub(super) fn pool_settings<'a>(
    kernel: &'a mut usize,
    stride: &'a mut Option<usize>,
) -> Vec<super::Setting<'a>> {
    let default = *kernel;
    vec![
        super::Setting::count("k ", kernel, 1, 16),
        super::Setting::CountOr {
            prefix: "s ",
            default,
            value: stride,
            max: 16,
        },
    ]
}

/// A pool's node attributes.
pub(super) fn pool_attrs(kernel: usize, stride: usize) -> Vec<super::Attr> {
    let (k, s) = (kernel as i64, stride as i64);
    vec![
        super::Attr::Ints("kernel_shape", vec![k, k]),
        super::Attr::Ints("strides", vec![s, s]),
    ]
}

/// The inputs of one layer: each source's name and shape.
pub type Inputs<'a> = &'a [(String, Shape)];

/// The inputs as an error lists them (`a [8, 4, 4], b [8, 4, 4]`).
pub(super) fn list(inputs: Inputs<'_>) -> String {
    inputs
        .iter()
        .map(|(n, s)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shapes side by side on their channel axis, or `None` when they do not line up.
pub(super) fn concatenated(inputs: Inputs<'_>) -> Option<Shape> {
    let mut total = inputs[0].1;
    for (_, s) in &inputs[1..] {
        total = match (total, *s) {
            (
                Shape::Image { c, h, w },
                Shape::Image {
                    c: c2,
                    h: h2,
                    w: w2,
                },
            ) if (h, w) == (h2, w2) => Shape::Image {
                c: c.checked_add(c2)?,
                h,
                w,
            },
            (Shape::Flat(a), Shape::Flat(b)) => Shape::Flat(a.checked_add(b)?),
            (Shape::Tokens { n, d }, Shape::Tokens { n: n2, d: d2 }) if n == n2 => Shape::Tokens {
                n,
                d: d.checked_add(d2)?,
            },
            _ => return None,
        };
    }
    Some(total)
}
