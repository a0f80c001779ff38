//! Flatten: an image or tokens to flat features, per example.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{HostOp, first};
use super::{
    Activation, At, Attr, ChannelFlow, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan,
    See, Shape, View, WriteError,
};
use crate::host::InferError;
use crate::host::ops::{Act, flatten_maps, flatten_tokens};

/// `[batch, ...]` to `[batch, features]`.
#[derive(burn::module::Module, Debug, Default)]
pub struct Module;

/// Flatten.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Flatten {}

impl Plan for Flatten {
    type Kind = Self;

    fn resolve(self, _input: Shape) -> Result<Self, Fit> {
        Ok(self)
    }

    fn of(kind: Self) -> Self {
        kind
    }

    fn template() -> Self {
        Self {}
    }
}

impl Kind for Flatten {
    const TYPE: &'static str = "flatten";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        Ok(Shape::Flat(inputs[0].1.numel()))
    }

    /// An image's channels stay channels, each spanning its `h * w` values; tokens' features
    /// mix with their positions, so that space is kept whole.
    fn channels(&self, at: &At, flow: &mut ChannelFlow, ins: &[View]) -> View {
        let x = ins[0];
        match at.input {
            Shape::Image { h, w, .. } => View {
                space: x.space,
                span: x.span * h * w,
            },
            Shape::Tokens { .. } => {
                flow.fix(x.space);
                flow.new_space(at.output.channels(), true)
            }
            Shape::Flat(_) => x,
        }
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        Module
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(HostFlatten))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        Ok(g.node("Flatten", at.name, &[&xs[0]], out, vec![Attr::Int("axis", 1)]))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        Activation::Flat(Activation::single(inputs).flat())
    }
}

#[derive(Debug)]
struct HostFlatten;

impl HostOp for HostFlatten {
    fn run(&self, inputs: Vec<Act>) -> Act {
        match first(inputs) {
            Act::Maps(m) => Act::Features(flatten_maps(&m)),
            Act::Features(f) if f.tokens > 1 => Act::Features(flatten_tokens(&f)),
            x => x,
        }
    }
}
