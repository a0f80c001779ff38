//! Tokens: an image `[c, h, w]` as `h * w` tokens of `c` features, one per position.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::shape::image_of;
use super::host::{HostOp, first};
use super::{
    Activation, At, Attr, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan, See, Shape,
    WriteError,
};
use crate::host::InferError;
use crate::host::ops::{Act, tokens};

/// `[batch, c, h, w]` to `[batch, h * w, c]`.
#[derive(burn::module::Module, Debug, Default)]
pub struct Module;

/// Tokens from an image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tokens {}

impl Plan for Tokens {
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

impl Kind for Tokens {
    const TYPE: &'static str = "tokens";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        let (c, h, w) = image_of(inputs[0].1)?;
        Ok(Shape::Tokens { n: h * w, d: c })
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        Module
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(HostTokens))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let name = at.name;
        let Shape::Tokens { n, d } = at.output else {
            return Err(WriteError::Network(format!("{name} does not output tokens")));
        };
        let shape = g.ints(name, &[0, d as i64, n as i64]);
        let flat = g.fresh(name);
        g.node("Reshape", name, &[&xs[0], &shape], flat.clone(), vec![]);
        let perm = vec![Attr::Ints("perm", vec![0, 2, 1])];
        Ok(g.node("Transpose", name, &[&flat], out, perm))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // [batch, c, h, w] -> [batch, c, h * w] -> [batch, h * w, c]
        let x = Activation::single(inputs).image(Tokens::TYPE);
        Activation::Tokens(x.flatten::<3>(2, 3).swap_dims(1, 2))
    }
}

#[derive(Debug)]
struct HostTokens;

impl HostOp for HostTokens {
    fn run(&self, inputs: Vec<Act>) -> Act {
        match first(inputs) {
            Act::Maps(m) => Act::Features(tokens(m)),
            x => x,
        }
    }
}
