//! A network as plans write it (`input` and `[[layers]]`): a graph of layers, each reading
//! the one before it or the ones it names, and the shapes that flow through it. Pure data:
//! the burn modules are built from it in [`super::network`], the host inference in
//! `infer/`, and the plan's prunable layers come from [`StackConfig::layer_specs`]. The
//! built-in models are such networks too.

mod groups;
mod layer;
mod outputs;
mod repeat;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::layers::{At, Fit, Resolved};
use crate::prune::LayerSpec;

pub use crate::layers::{PrunableWeight, Shape, bias_key, weight_key};
pub use groups::unit_groups;
pub use layer::{Layer, LayerConfig, Repeat};
pub use outputs::{Outputs, Readers};
pub use repeat::{MAX_LAYERS, expand, layer_name};

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
    /// What it is, checked against what it reads (no `repeat`: resolution wrote them out).
    pub kind: Resolved,
    /// The given name, or the type and the position in the network (`conv2d0`, `relu1`).
    pub name: String,
    /// What the layer reads: one source, or a merge layer's several.
    pub sources: Vec<Source>,
    /// The shape of its (first) input.
    pub input: Shape,
    pub output: Shape,
}

impl ResolvedLayer {
    /// The layer as its kind sees it.
    pub fn at(&self) -> At<'_> {
        At {
            name: &self.name,
            input: self.input,
            output: self.output,
        }
    }

    /// The weights pruning masks, in order: none, one, or attention's `in_proj` and
    /// `out_proj`.
    pub fn prunable(&self) -> Vec<PrunableWeight> {
        self.kind.prunable(&self.at())
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
        out.extend(self.kind.state(&self.at()));
        out
    }

    /// Multiply-adds of one example through the layer: its convolution, dense layer or
    /// attention (projections and the two products of the scores); zero for the rest.
    pub fn macs(&self) -> u64 {
        self.kind.macs(&self.at())
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
        .rposition(|l| matches!(l.kind, Resolved::Linear(_)));
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
        if !layers.iter().any(|l| matches!(l.kind, Resolved::Linear(_))) {
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
            let type_name = layer.config.type_name();
            let fit = |e: Fit| match e {
                Fit::Mismatch(expected) => StackError::Mismatch {
                    layer: name.clone(),
                    kind: type_name,
                    expected,
                    found: inputs[0].1,
                },
                Fit::Invalid(reason) => StackError::Invalid {
                    layer: name.clone(),
                    reason,
                },
            };
            let kind = layer.config.resolve(inputs[0].1).map_err(fit)?;
            let next = kind.output(&inputs).map_err(fit)?;
            check_size(&kind, &name, inputs[0].1, next)?;
            out.push(ResolvedLayer {
                kind,
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

/// Checks that layer `kind` (named `name`), taking `input` and giving `output`, holds no
/// more than [`MAX_VALUES`] values in its output or its weight.
fn check_size(kind: &Resolved, name: &str, input: Shape, output: Shape) -> Result<(), StackError> {
    for (what, found) in [
        ("its output", output.size()),
        ("its weight", kind.weight_values(input)),
    ] {
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
