//! A network as plans write it (`input` and `[[layers]]`): a graph of layers, each reading
//! the one before it or the ones it names, and the shapes that flow through it. Pure data:
//! the burn modules are built from it in [`super::network`], the host inference in
//! `infer/`, and the plan's prunable layers come from [`StackConfig::layer_specs`]. The
//! built-in models are such networks too.

mod groups;
mod layer;
mod outputs;
mod repeat;
mod shape;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::prune::{LayerShape, LayerSpec};

pub use groups::unit_groups;
pub use layer::{Layer, LayerConfig};
pub use outputs::{Outputs, Readers};
pub use repeat::{MAX_LAYERS, expand, layer_name};
pub use shape::Shape;
use shape::{check_size, output_shape};

/// The name by which layers read the network's input.
pub const INPUT: &str = "input";

/// A network that cannot be built, naming the layer.
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
    #[error("layer {layer} reads {input:?}, which is not a layer before it (nor `input`)")]
    UnknownInput { layer: String, input: String },
    #[error(
        "the output of layer {0} is never read: every layer but the last feeds another (name it in an `input` or `inputs`)"
    )]
    Unused(String),
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

/// Where a layer's input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The network's input images.
    Input,
    /// The output of the layer at this position.
    Layer(usize),
}

/// One layer with the name, inputs and shapes the network gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedLayer {
    pub config: LayerConfig,
    /// The given name, or the type and the position in the network (`conv2d0`, `relu1`).
    pub name: String,
    /// What the layer reads: one source, or a merge layer's several.
    pub sources: Vec<Source>,
    /// The shape of its (first) input.
    pub input: Shape,
    pub output: Shape,
}

/// The `state_dict` name of a prunable weight's tensor: `{layer}.weight`, except for
/// attention's packed input projection, which PyTorch's `nn.MultiheadAttention` names
/// `in_proj_weight` (its output projection is a plain `out_proj.weight`).
pub fn weight_key(layer: &str) -> String {
    match layer.strip_suffix(".in_proj") {
        Some(attention) => format!("{attention}.in_proj_weight"),
        None => format!("{layer}.weight"),
    }
}

/// The `state_dict` name of a prunable weight's bias (see [`weight_key`]).
pub fn bias_key(layer: &str) -> String {
    match layer.strip_suffix(".in_proj") {
        Some(attention) => format!("{attention}.in_proj_bias"),
        None => format!("{layer}.bias"),
    }
}

/// A weight that pruning masks: a convolution's, a dense layer's, or one of attention's
/// two projections.
#[derive(Clone, Debug, PartialEq)]
pub struct PrunableWeight {
    /// The name rules and masks use (`blocks.0.c1`, `encoder.layers.0.self_attn.in_proj`).
    pub name: String,
    /// The weight's and the bias's names in a `state_dict`.
    pub weight_key: String,
    pub bias_key: Option<String>,
    pub shape: LayerShape,
    /// Attention's heads, for its projections.
    pub heads: Option<usize>,
}

impl ResolvedLayer {
    /// The weights pruning masks, in order: none, one, or attention's `in_proj` and
    /// `out_proj`.
    pub fn prunable(&self) -> Vec<PrunableWeight> {
        let plain = |shape: LayerShape, bias: bool| PrunableWeight {
            name: self.name.clone(),
            weight_key: weight_key(&self.name),
            bias_key: bias.then(|| bias_key(&self.name)),
            shape,
            heads: None,
        };
        match (&self.config, self.input) {
            (
                LayerConfig::Conv2d {
                    out,
                    kernel,
                    groups,
                    bias,
                    ..
                },
                Shape::Image { c, .. },
            ) => vec![plain(
                LayerShape::conv2d(*out, c / groups.max(&1), *kernel, *kernel),
                *bias,
            )],
            (LayerConfig::Linear { out, bias }, input) => vec![plain(
                LayerShape::linear(*out, input.last_axis().unwrap_or(0)),
                *bias,
            )],
            (LayerConfig::Attention { .. }, input) => {
                let d = input.channels();
                let (heads, head_dim) = self.config.heads_of(d).expect("an attention layer");
                let inner = heads * head_dim;
                vec![
                    PrunableWeight {
                        name: format!("{}.in_proj", self.name),
                        weight_key: weight_key(&format!("{}.in_proj", self.name)),
                        bias_key: Some(bias_key(&format!("{}.in_proj", self.name))),
                        shape: LayerShape::linear(3 * inner, d),
                        heads: Some(heads),
                    },
                    PrunableWeight {
                        name: format!("{}.out_proj", self.name),
                        weight_key: weight_key(&format!("{}.out_proj", self.name)),
                        bias_key: Some(bias_key(&format!("{}.out_proj", self.name))),
                        shape: LayerShape::linear(d, inner),
                        heads: Some(heads),
                    },
                ]
            }
            _ => Vec::new(),
        }
    }

    /// Every parameter as a PyTorch `state_dict` names and shapes it
    /// (`blocks.0.c1.weight`, `bn.running_mean`, `pos`), prunable weights with their biases
    /// first.
    pub fn parameters(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for w in self.prunable() {
            out.push((w.weight_key, w.shape.dims()));
            if let Some(b) = w.bias_key {
                out.push((b, vec![w.shape.out]));
            }
        }
        let key = |p: &str| format!("{}.{p}", self.name);
        match (&self.config, self.input) {
            (LayerConfig::Batchnorm2d, Shape::Image { c, .. }) => {
                for p in ["weight", "bias", "running_mean", "running_var"] {
                    out.push((key(p), vec![c]));
                }
            }
            (LayerConfig::Layernorm, input) => {
                for p in ["weight", "bias"] {
                    out.push((key(p), vec![input.channels()]));
                }
            }
            (LayerConfig::Position, Shape::Tokens { n, d }) => {
                out.push((self.name.clone(), vec![1, n, d]));
            }
            _ => {}
        }
        out
    }

    /// Multiply-adds of one example through the layer: its convolution, dense layer or
    /// attention (projections and the two products of the scores); zero for the rest.
    pub fn macs(&self) -> u64 {
        let weights = |w: &PrunableWeight| w.shape.numel() as u64;
        match (&self.config, self.input, self.output) {
            (LayerConfig::Conv2d { .. }, _, Shape::Image { h, w, .. }) => {
                self.prunable().iter().map(weights).sum::<u64>() * (h * w) as u64
            }
            (LayerConfig::Linear { .. }, Shape::Tokens { n, .. }, _) => {
                self.prunable().iter().map(weights).sum::<u64>() * n as u64
            }
            (LayerConfig::Linear { .. }, _, _) => self.prunable().iter().map(weights).sum(),
            (LayerConfig::Attention { .. }, Shape::Tokens { n, d }, _) => {
                let (heads, hd) = self.config.heads_of(d).expect("an attention layer");
                let projections: u64 = self.prunable().iter().map(weights).sum();
                n as u64 * projections + 2 * (n * n * heads * hd) as u64
            }
            _ => 0,
        }
    }

    /// How many numbers the layer learns (and a batch norm keeps).
    pub fn parameter_count(&self) -> usize {
        self.parameters()
            .iter()
            .map(|(_, dims)| dims.iter().product::<usize>())
            .sum()
    }
}

/// The prunable weights of resolved layers, in order; the last linear layer is the output
/// layer.
pub fn prunable_specs(layers: &[ResolvedLayer]) -> Vec<LayerSpec> {
    let last_linear = layers
        .iter()
        .rposition(|l| matches!(l.config, LayerConfig::Linear { .. }));
    layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| {
            l.prunable().into_iter().map(move |w| match w.heads {
                Some(heads) => LayerSpec::projection(&w.name, w.shape, heads),
                None if Some(i) == last_linear => LayerSpec::output(&w.name, w.shape),
                None => LayerSpec::new(&w.name, w.shape),
            })
        })
        .collect()
}

/// A network: the shape of one input example, and its layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StackConfig {
    /// Channels, height, width.
    pub input: [usize; 3],
    pub layers: Vec<Layer>,
}

impl StackConfig {
    /// Every layer with its name, inputs and shapes, checked: each layer fits its inputs,
    /// names are unique, every output is read, and the last layer outputs one value per
    /// class (when `classes` is known: the data decides it).
    pub fn resolve(&self, classes: Option<usize>) -> Result<Vec<ResolvedLayer>, StackError> {
        let (layers, error) = self.trace();
        if let Some(e) = error {
            return Err(e);
        }
        let shape = layers.last().map(|l| l.output).ok_or(StackError::Empty)?;
        match (shape, classes) {
            (Shape::Image { .. } | Shape::Tokens { .. }, _) => {
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
        let mut read = vec![false; layers.len()];
        for l in &layers {
            for s in &l.sources {
                if let Source::Layer(j) = s {
                    read[*j] = true;
                }
            }
        }
        if let Some(unused) = read[..read.len() - 1].iter().position(|r| !r) {
            return Err(StackError::Unused(layers[unused].name.clone()));
        }
        Ok(layers)
    }

    /// The layers that fit, in order (repeats written out), and the error of the first one
    /// that does not (an editor shows every layer's shape up to it).
    pub fn trace(&self) -> (Vec<ResolvedLayer>, Option<StackError>) {
        let mut out = Vec::with_capacity(self.layers.len());
        let error = self.walk(&mut out).err();
        (out, error)
    }

    fn walk(&self, out: &mut Vec<ResolvedLayer>) -> Result<(), StackError> {
        let input = self.input_shape()?;
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (i, layer) in expand(&self.layers)?.into_iter().enumerate() {
            let name = layer_name(&layer, i);
            if name == INPUT || by_name.insert(name.clone(), i).is_some() {
                return Err(StackError::DuplicateName(name));
            }
            let sources = sources(&layer, &name, &by_name)?;
            let inputs: Vec<(String, Shape)> = sources
                .iter()
                .map(|s| match s {
                    Source::Input => (INPUT.to_string(), input),
                    Source::Layer(j) => (out[*j].name.clone(), out[*j].output),
                })
                .collect();
            let next = output_shape(&layer.config, &name, &inputs)?;
            check_size(&layer.config, &name, inputs[0].1, next)?;
            out.push(ResolvedLayer {
                config: layer.config,
                name,
                sources,
                input: inputs[0].1,
                output: next,
            });
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

    /// The channel groups and attention heads pruning may take out whole (see
    /// [`unit_groups`]).
    pub fn unit_groups(&self) -> Result<Vec<crate::prune::UnitGroup>, StackError> {
        Ok(unit_groups(&self.resolve(None)?))
    }

    /// The prunable weights in order; the last linear layer is the output layer.
    pub fn layer_specs(&self, classes: Option<usize>) -> Result<Vec<LayerSpec>, StackError> {
        Ok(prunable_specs(&self.resolve(classes)?))
    }
}

/// What `layer` (named `name`, at position `by_name[name]`) reads among the layers before
/// it (`by_name`: every layer so far by name): the layers a merge names, the one its
/// `input` names, or the layer before it.
fn sources(
    layer: &Layer,
    name: &str,
    by_name: &HashMap<String, usize>,
) -> Result<Vec<Source>, StackError> {
    let position = by_name[name];
    let find = |wanted: &str| -> Result<Source, StackError> {
        if wanted == INPUT {
            return Ok(Source::Input);
        }
        match by_name.get(wanted) {
            Some(&j) if j < position => Ok(Source::Layer(j)),
            _ => Err(StackError::UnknownInput {
                layer: name.to_string(),
                input: wanted.to_string(),
            }),
        }
    };
    match (layer.config.merged(), &layer.input) {
        (Some(_), Some(_)) => Err(StackError::Invalid {
            layer: name.to_string(),
            reason: "a merge layer names what it reads in `inputs`, not `input`".into(),
        }),
        (Some(names), None) if names.len() < 2 => Err(StackError::Invalid {
            layer: name.to_string(),
            reason: format!(
                "a {} reads at least two layers, named in `inputs`",
                layer.config.type_name()
            ),
        }),
        (Some(names), None) => names.iter().map(|n| find(n)).collect(),
        (None, Some(wanted)) => Ok(vec![find(wanted)?]),
        (None, None) => Ok(vec![match position {
            0 => Source::Input,
            n => Source::Layer(n - 1),
        }]),
    }
}

#[cfg(test)]
mod tests;
