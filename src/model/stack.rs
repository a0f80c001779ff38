//! A network as a stack of layers, as plans write it (`[[layers]]`), and the shapes that
//! flow through it. Pure data: the burn modules are built from it in [`super::network`], the
//! host inference in `infer/`, and the plan's prunable layers come from
//! [`StackConfig::layer_specs`]. The built-in models are such stacks too.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::prune::{LayerShape, LayerSpec};

fn one() -> usize {
    1
}
fn is_one(v: &usize) -> bool {
    *v == 1
}
fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// One layer of a stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LayerConfig {
    /// A square `kernel x kernel` convolution to `out` channels.
    Conv2d {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        out: usize,
        kernel: usize,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        stride: usize,
        #[serde(default, skip_serializing_if = "is_zero")]
        padding: usize,
    },
    Linear {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        out: usize,
    },
    /// Max over `kernel x kernel` windows, `stride` apart (the kernel when not given).
    Maxpool2d {
        kernel: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
    },
    Avgpool2d {
        kernel: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
    },
    Batchnorm2d {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    Relu,
    Gelu,
    Tanh,
    Dropout {
        p: f64,
    },
    Flatten,
}

impl LayerConfig {
    /// The type as plans write it.
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerConfig::Conv2d { .. } => "conv2d",
            LayerConfig::Linear { .. } => "linear",
            LayerConfig::Maxpool2d { .. } => "maxpool2d",
            LayerConfig::Avgpool2d { .. } => "avgpool2d",
            LayerConfig::Batchnorm2d { .. } => "batchnorm2d",
            LayerConfig::Relu => "relu",
            LayerConfig::Gelu => "gelu",
            LayerConfig::Tanh => "tanh",
            LayerConfig::Dropout { .. } => "dropout",
            LayerConfig::Flatten => "flatten",
        }
    }

    fn given_name(&self) -> Option<&str> {
        match self {
            LayerConfig::Conv2d { name, .. }
            | LayerConfig::Linear { name, .. }
            | LayerConfig::Batchnorm2d { name } => name.as_deref(),
            _ => None,
        }
    }
}

/// What flows between layers (per example).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Image { c: usize, h: usize, w: usize },
    Flat(usize),
}

impl Shape {
    pub fn numel(&self) -> usize {
        match *self {
            Shape::Image { c, h, w } => c * h * w,
            Shape::Flat(n) => n,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Image { c, h, w } => write!(f, "[{c}, {h}, {w}]"),
            Shape::Flat(n) => write!(f, "[{n}]"),
        }
    }
}

/// A stack that cannot be built, naming the layer.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum StackError {
    #[error("the network has no layers")]
    Empty,
    #[error("the input {0:?} has a zero dimension")]
    EmptyInput([usize; 3]),
    #[error("layer {layer} ({kind}) takes {expected} but gets {found}")]
    Mismatch {
        layer: String,
        kind: &'static str,
        expected: String,
        found: Shape,
    },
    #[error("layer {layer}: {reason}")]
    Invalid { layer: String, reason: String },
    #[error("two layers are named {0:?}")]
    DuplicateName(String),
    #[error(
        "the last layer outputs {found}, but there are {classes} classes: end with a linear layer of out = {classes}"
    )]
    Output { found: Shape, classes: usize },
    #[error("no linear layer: the last linear layer gives the class scores")]
    NoLinear,
    #[error(
        "layer {layer}: {what} has {found} values, more than the {MAX_VALUES} this explorer trains"
    )]
    TooLarge {
        layer: String,
        what: &'static str,
        found: u128,
    },
}

/// Most values one layer's weight or one example's activations may hold (1 GiB of f32).
pub const MAX_VALUES: u128 = 1 << 28;

/// One layer with the name and shapes the stack gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedLayer {
    pub config: LayerConfig,
    /// The given name, or the type and the position in the stack (`conv2d0`, `relu1`).
    pub name: String,
    pub input: Shape,
    pub output: Shape,
}

impl ResolvedLayer {
    /// The weight's shape for a convolution or a linear layer (the prunable layers).
    pub fn weight_shape(&self) -> Option<LayerShape> {
        match (&self.config, self.input) {
            (LayerConfig::Conv2d { out, kernel, .. }, Shape::Image { c, .. }) => {
                Some(LayerShape::conv2d(*out, c, *kernel, *kernel))
            }
            (LayerConfig::Linear { out, .. }, input) => {
                Some(LayerShape::linear(*out, input.numel()))
            }
            _ => None,
        }
    }

    /// The layer's parameters as PyTorch names and lays them out (`weight`, `bias`,
    /// `running_mean`, ...), with their shapes; none for layers without parameters.
    pub fn parameters(&self) -> Vec<(&'static str, Vec<usize>)> {
        match (&self.config, self.input) {
            (LayerConfig::Conv2d { out, .. } | LayerConfig::Linear { out, .. }, _) => {
                let weight = self.weight_shape().map(|s| s.dims()).unwrap_or_default();
                vec![("weight", weight), ("bias", vec![*out])]
            }
            (LayerConfig::Batchnorm2d { .. }, Shape::Image { c, .. }) => {
                ["weight", "bias", "running_mean", "running_var"]
                    .into_iter()
                    .map(|p| (p, vec![c]))
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}

/// The prunable layers (convolutions and linear layers) of resolved layers, in order; the
/// last linear layer is the output layer.
pub fn prunable_specs(layers: &[ResolvedLayer]) -> Vec<LayerSpec> {
    let last_linear = layers
        .iter()
        .rposition(|l| matches!(l.config, LayerConfig::Linear { .. }));
    layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let shape = l.weight_shape()?;
            Some(if Some(i) == last_linear {
                LayerSpec::output(&l.name, shape)
            } else {
                LayerSpec::new(&l.name, shape)
            })
        })
        .collect()
}

/// A network: the shape of one input example, and its layers in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StackConfig {
    /// Channels, height, width.
    pub input: [usize; 3],
    pub layers: Vec<LayerConfig>,
}

/// Output side of a `k x k` window `stride` apart with `padding` zeros each side
/// (PyTorch's floor), or `None` when the window does not fit.
fn window_out(size: usize, k: usize, stride: usize, padding: usize) -> Option<usize> {
    padding
        .checked_mul(2)
        .and_then(|p| size.checked_add(p))
        .and_then(|padded| padded.checked_sub(k))
        .map(|room| room / stride + 1)
}

impl StackConfig {
    /// Every layer with its name and shapes, checked: each layer fits its input, names are
    /// unique, and the last layer outputs one value per class (when `classes` is known:
    /// the data decides it).
    pub fn resolve(&self, classes: Option<usize>) -> Result<Vec<ResolvedLayer>, StackError> {
        let (layers, error) = self.trace();
        if let Some(e) = error {
            return Err(e);
        }
        let shape = layers.last().map(|l| l.output).ok_or(StackError::Empty)?;
        match (shape, classes) {
            (Shape::Image { .. }, _) => {
                return Err(StackError::Output {
                    found: shape,
                    classes: classes.unwrap_or(0),
                });
            }
            (Shape::Flat(n), Some(classes)) if n != classes => {
                return Err(StackError::Output {
                    found: shape,
                    classes,
                });
            }
            _ => {}
        }
        if !layers
            .iter()
            .any(|l| matches!(l.config, LayerConfig::Linear { .. }))
        {
            return Err(StackError::NoLinear);
        }
        Ok(layers)
    }

    /// The layers that fit, in order, and the error of the first one that does not (an
    /// editor shows every layer's shape up to it).
    pub fn trace(&self) -> (Vec<ResolvedLayer>, Option<StackError>) {
        let mut out = Vec::with_capacity(self.layers.len());
        let error = self.walk(&mut out).err();
        (out, error)
    }

    fn walk(&self, out: &mut Vec<ResolvedLayer>) -> Result<(), StackError> {
        let mut shape = self.input_shape()?;
        for (i, config) in self.layers.iter().enumerate() {
            let name = config
                .given_name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}{i}", config.type_name()));
            if out.iter().any(|l: &ResolvedLayer| l.name == name) {
                return Err(StackError::DuplicateName(name));
            }
            let next = output_shape(config, &name, shape)?;
            check_size(config, &name, shape, next)?;
            out.push(ResolvedLayer {
                config: config.clone(),
                name,
                input: shape,
                output: next,
            });
            shape = next;
        }
        Ok(())
    }

    /// The shape of one input example, checked: no side is zero, it is not too large, and
    /// there are layers to take it.
    fn input_shape(&self) -> Result<Shape, StackError> {
        let [c, h, w] = self.input;
        if c == 0 || h == 0 || w == 0 {
            return Err(StackError::EmptyInput(self.input));
        }
        let pixels = c as u128 * h as u128 * w as u128;
        if pixels > MAX_VALUES {
            return Err(StackError::TooLarge {
                layer: "input".into(),
                what: "one example",
                found: pixels,
            });
        }
        if self.layers.is_empty() {
            return Err(StackError::Empty);
        }
        Ok(Shape::Image { c, h, w })
    }

    /// The prunable layers (convolutions and linear layers) in order; the last linear layer
    /// is the output layer.
    pub fn layer_specs(&self, classes: Option<usize>) -> Result<Vec<LayerSpec>, StackError> {
        Ok(prunable_specs(&self.resolve(classes)?))
    }
}

/// What layer `config` (named `name`) outputs from `shape`, or why it does not fit.
fn output_shape(config: &LayerConfig, name: &str, shape: Shape) -> Result<Shape, StackError> {
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
        Shape::Flat(_) => Err(mismatch("an image [channels, height, width]")),
    };
    Ok(match config {
        LayerConfig::Conv2d {
            out,
            kernel,
            stride,
            padding,
            ..
        } => {
            let (_, h, w) = image()?;
            if *out == 0 || *kernel == 0 || *stride == 0 {
                return Err(invalid("out, kernel and stride must be at least 1".into()));
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
        LayerConfig::Batchnorm2d { .. } => {
            image()?;
            shape
        }
        LayerConfig::Linear { out, .. } => {
            if let Shape::Image { .. } = shape {
                return Err(mismatch("a flat input (add a flatten layer before it)"));
            }
            if *out == 0 {
                return Err(invalid("out must be at least 1".into()));
            }
            Shape::Flat(*out)
        }
        LayerConfig::Flatten => Shape::Flat(shape.numel()),
        LayerConfig::Dropout { p } => {
            if !(0.0..1.0).contains(p) {
                return Err(invalid(format!("p must be in [0, 1), found {p}")));
            }
            shape
        }
        LayerConfig::Relu | LayerConfig::Gelu | LayerConfig::Tanh => shape,
    })
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

/// Checks that layer `config` (named `name`), taking `input` and giving `output`, holds
/// no more than [`MAX_VALUES`] values in its output or its weight.
fn check_size(
    config: &LayerConfig,
    name: &str,
    input: Shape,
    output: Shape,
) -> Result<(), StackError> {
    let size = |s: &Shape| -> u128 {
        match *s {
            Shape::Image { c, h, w } => c as u128 * h as u128 * w as u128,
            Shape::Flat(n) => n as u128,
        }
    };
    let weights: u128 = match (config, input) {
        (LayerConfig::Conv2d { out, kernel, .. }, Shape::Image { c, .. }) => {
            c as u128 * *out as u128 * (*kernel as u128).pow(2)
        }
        (LayerConfig::Linear { out, .. }, input) => size(&input) * *out as u128,
        _ => 0,
    };
    for (what, found) in [("its output", size(&output)), ("its weight", weights)] {
        if found > MAX_VALUES {
            return Err(StackError::TooLarge {
                layer: name.to_string(),
                what,
                found,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> StackConfig {
        toml::from_str(text).unwrap()
    }

    const SMALL: &str = r#"
input = [1, 28, 28]
[[layers]]
type = "conv2d"
name = "c1"
out = 8
kernel = 3
padding = 1
[[layers]]
type = "relu"
[[layers]]
type = "maxpool2d"
kernel = 2
[[layers]]
type = "flatten"
[[layers]]
type = "linear"
out = 10
"#;

    #[test]
    fn shapes_flow_through_the_stack_and_unnamed_layers_get_type_and_position() {
        let layers = parse(SMALL).resolve(Some(10)).unwrap();
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["c1", "relu1", "maxpool2d2", "flatten3", "linear4"]);
        assert_eq!(layers[0].output, Shape::Image { c: 8, h: 28, w: 28 });
        assert_eq!(layers[2].output, Shape::Image { c: 8, h: 14, w: 14 });
        assert_eq!(layers[3].output, Shape::Flat(8 * 14 * 14));
        let specs = parse(SMALL).layer_specs(Some(10)).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].shape, LayerShape::conv2d(8, 1, 3, 3));
        assert_eq!(specs[1].shape, LayerShape::linear(10, 1568));
        assert!(specs[1].output && !specs[0].output);
    }

    #[test]
    fn strides_and_pools_follow_pytorchs_floor() {
        assert_eq!(window_out(28, 5, 1, 2), Some(28));
        assert_eq!(window_out(28, 3, 2, 1), Some(14));
        assert_eq!(window_out(7, 2, 2, 0), Some(3));
        assert_eq!(window_out(2, 3, 1, 0), None);
    }

    #[test]
    fn a_layer_that_does_not_fit_is_an_error_naming_it_and_both_shapes() {
        let mut s = parse(SMALL);
        s.layers.remove(3); // no flatten before the linear layer
        let e = s.resolve(Some(10)).unwrap_err().to_string();
        assert!(
            e.contains("linear3") && e.contains("[8, 14, 14]") && e.contains("flat"),
            "{e}"
        );
        let mut s = parse(SMALL);
        s.layers[4] = LayerConfig::Linear { name: None, out: 7 };
        let e = s.resolve(Some(10)).unwrap_err().to_string();
        assert!(e.contains("[7]") && e.contains("10 classes"), "{e}");
        let mut s = parse(SMALL);
        s.layers[0] = LayerConfig::Conv2d {
            name: Some("big".into()),
            out: 4,
            kernel: 40,
            stride: 1,
            padding: 0,
        };
        let e = s.resolve(Some(10)).unwrap_err().to_string();
        assert!(e.contains("big") && e.contains("[1, 28, 28]"), "{e}");
        let mut s = parse(SMALL);
        s.layers[2] = LayerConfig::Conv2d {
            name: Some("c1".into()),
            out: 4,
            kernel: 1,
            stride: 1,
            padding: 0,
        };
        assert_eq!(
            s.resolve(Some(10)),
            Err(StackError::DuplicateName("c1".into()))
        );
        let s = StackConfig {
            input: [1, 28, 28],
            layers: vec![],
        };
        assert_eq!(s.resolve(Some(10)), Err(StackError::Empty));
        // sizes no machine could train are errors, not attempts
        let mut s = parse(SMALL);
        s.layers[4] = LayerConfig::Linear {
            name: None,
            out: usize::MAX,
        };
        let e = s.resolve(Some(10)).unwrap_err().to_string();
        assert!(e.contains("linear4") && e.contains("more than"), "{e}");
        let mut s = parse(SMALL);
        s.layers[0] = LayerConfig::Conv2d {
            name: None,
            out: 8,
            kernel: 3,
            stride: 1,
            padding: usize::MAX,
        };
        assert!(s.resolve(Some(10)).is_err());
    }

    #[test]
    fn stacks_round_trip_through_toml() {
        let s = parse(SMALL);
        let text = toml::to_string(&s).unwrap();
        assert_eq!(parse(&text), s);
        assert!(!text.contains("stride"), "defaults are not written: {text}");
    }
}
