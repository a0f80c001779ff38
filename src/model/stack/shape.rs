//! What flows between layers and each layer's shape rule.

use std::fmt;

use super::StackError;
use super::layer::LayerConfig;

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

    fn size(&self) -> u128 {
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
pub(super) fn window_out(size: usize, k: usize, stride: usize, padding: usize) -> Option<usize> {
    padding
        .checked_mul(2)
        .and_then(|p| size.checked_add(p))
        .and_then(|padded| padded.checked_sub(k))
        .map(|room| room / stride + 1)
}

/// `c` channels of `k x k` windows `stride` apart over an `h x w` image with `padding`
/// zeros each side, or `None` when the window does not fit.
fn windowed(
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

/// The inputs of one layer: each source's name and shape.
pub(super) type Inputs<'a> = &'a [(String, Shape)];

fn list(inputs: Inputs<'_>) -> String {
    inputs
        .iter()
        .map(|(n, s)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What layer `config` (named `name`) outputs from `inputs`, or why it does not fit.
pub(super) fn output_shape(
    config: &LayerConfig,
    name: &str,
    inputs: Inputs<'_>,
) -> Result<Shape, StackError> {
    let shape = inputs[0].1;
    let mismatch = |expected: &str| StackError::Mismatch {
        layer: name.to_string(),
        kind: config.type_name(),
        expected: expected.into(),
        found: shape,
    };
    let invalid = |reason: String| StackError::Invalid {
        layer: name.to_string(),
        reason,
    };
    let image = || match shape {
        Shape::Image { c, h, w } => Ok((c, h, w)),
        _ => Err(mismatch("an image [channels, height, width]")),
    };
    let tokens = || match shape {
        Shape::Tokens { n, d } => Ok((n, d)),
        _ => Err(mismatch("tokens (add a tokens layer before it)")),
    };
    Ok(match config {
        LayerConfig::Conv2d {
            out,
            kernel,
            stride,
            padding,
            groups,
            ..
        } => {
            let (c, h, w) = image()?;
            if *out == 0 || *kernel == 0 || *stride == 0 || *groups == 0 {
                return Err(invalid(
                    "out, kernel, stride and groups must be at least 1".into(),
                ));
            }
            if c % groups != 0 || out % groups != 0 {
                return Err(invalid(format!(
                    "groups = {groups} must divide its {c} input channels and its {out} outputs"
                )));
            }
            windowed(*out, (h, w), *kernel, *stride, *padding).ok_or_else(|| {
                mismatch(&format!(
                    "an image of at least {kernel} x {kernel} with its padding"
                ))
            })?
        }
        LayerConfig::Maxpool2d { kernel, stride } | LayerConfig::Avgpool2d { kernel, stride } => {
            let (c, h, w) = image()?;
            let stride = stride.unwrap_or(*kernel);
            if *kernel == 0 || stride == 0 {
                return Err(invalid("kernel and stride must be at least 1".into()));
            }
            windowed(c, (h, w), *kernel, stride, 0)
                .ok_or_else(|| mismatch(&format!("an image of at least {kernel} x {kernel}")))?
        }
        LayerConfig::GlobalAvgpool => Shape::Flat(image()?.0),
        LayerConfig::Batchnorm2d => {
            image()?;
            shape
        }
        LayerConfig::Layernorm => {
            shape
                .last_axis()
                .ok_or_else(|| mismatch("flat features or tokens"))?;
            shape
        }
        LayerConfig::Linear { out, .. } => {
            if *out == 0 {
                return Err(invalid("out must be at least 1".into()));
            }
            match shape {
                Shape::Image { .. } => {
                    return Err(mismatch(
                        "flat features or tokens (add a flatten or a tokens layer before it)",
                    ));
                }
                Shape::Flat(_) => Shape::Flat(*out),
                Shape::Tokens { n, .. } => Shape::Tokens { n, d: *out },
            }
        }
        LayerConfig::Flatten => Shape::Flat(shape.numel()),
        LayerConfig::Dropout { p } => {
            if !(0.0..1.0).contains(p) {
                return Err(invalid(format!("p must be in [0, 1), found {p}")));
            }
            shape
        }
        LayerConfig::Relu | LayerConfig::Gelu | LayerConfig::Tanh => shape,
        LayerConfig::Tokens => {
            let (c, h, w) = image()?;
            Shape::Tokens { n: h * w, d: c }
        }
        LayerConfig::Position => {
            tokens()?;
            shape
        }
        LayerConfig::Attention { heads, head_dim } => {
            let (_, d) = tokens()?;
            match head_dim {
                _ if *heads == 0 => return Err(invalid("heads must be at least 1".into())),
                Some(0) => return Err(invalid("head_dim must be at least 1".into())),
                None if d % heads != 0 => {
                    return Err(invalid(format!(
                        "heads = {heads} must divide the {d} features (or give head_dim)"
                    )));
                }
                _ => {}
            }
            shape
        }
        LayerConfig::MeanTokens => Shape::Flat(tokens()?.1),
        LayerConfig::Add { .. } => {
            if inputs.iter().any(|(_, s)| *s != shape) {
                return Err(invalid(format!(
                    "adds layers of one shape, but gets {}",
                    list(inputs)
                )));
            }
            shape
        }
        LayerConfig::Concat { .. } => concatenated(inputs).ok_or_else(|| {
            invalid(format!(
                "concatenates images of one height and width, or features, or tokens of one count, but gets {}",
                list(inputs)
            ))
        })?,
        LayerConfig::Repeat { .. } => {
            return Err(invalid("a repeat is written out before shapes flow".into()));
        }
    })
}

/// Shapes side by side on their channel axis, or `None` when they do not line up.
fn concatenated(inputs: Inputs<'_>) -> Option<Shape> {
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

/// Checks that layer `config` (named `name`), taking `input` and giving `output`, holds
/// no more than [`super::MAX_VALUES`] values in its output or its weight.
pub(super) fn check_size(
    config: &LayerConfig,
    name: &str,
    input: Shape,
    output: Shape,
) -> Result<(), StackError> {
    let weights: u128 = match (config, input) {
        (
            LayerConfig::Conv2d {
                out,
                kernel,
                groups,
                ..
            },
            Shape::Image { c, .. },
        ) => (c / groups.max(&1)) as u128 * *out as u128 * (*kernel as u128).pow(2),
        (LayerConfig::Linear { out, .. }, input) => {
            input.last_axis().unwrap_or(0) as u128 * *out as u128
        }
        (LayerConfig::Attention { heads, head_dim }, input) => {
            let d = input.channels() as u128;
            3 * d * (*heads as u128) * head_dim.map_or(d / (*heads).max(1) as u128, |h| h as u128)
        }
        _ => 0,
    };
    for (what, found) in [("its output", output.size()), ("its weight", weights)] {
        if found > super::MAX_VALUES {
            return Err(StackError::TooLarge {
                layer: name.to_string(),
                what,
                found,
            });
        }
    }
    Ok(())
}
