//! The mean of the tokens: `[n, d]` tokens to `[d]` features.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{HostOp, first};
use super::shape::tokens_of;
use super::{
    Activation, At, Attr, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan, See, Shape,
    WriteError,
};
use crate::host::InferError;
use crate::host::ops::{Act, mean_tokens};

/// `[batch, n, d]` to `[batch, d]`.
#[derive(burn::module::Module, Debug, Default)]
pub struct Module;

/// The tokens' mean.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanTokens {}

impl Plan for MeanTokens {
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

impl Kind for MeanTokens {
    const TYPE: &'static str = "mean_tokens";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        Ok(Shape::Flat(tokens_of(inputs[0].1)?.1))
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        Module
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(HostMeanTokens))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let attrs = vec![Attr::Ints("axes", vec![1]), Attr::Int("keepdims", 0)];
        Ok(g.node("ReduceMean", at.name, &[&xs[0]], out, attrs))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // [batch, n, d] -> [batch, 1, d] -> [batch, d]
        let x = Activation::single(inputs).tokens(MeanTokens::TYPE);
        Activation::Flat(x.mean_dim(1).flatten::<2>(1, 2))
    }
}

#[derive(Debug)]
struct HostMeanTokens;

impl HostOp for HostMeanTokens {
    fn run(&self, inputs: Vec<Act>) -> Act {
        match first(inputs) {
            Act::Features(f) => Act::Features(mean_tokens(&f)),
            x => x,
        }
    }
}
