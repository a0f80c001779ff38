//! The hyperbolic tangent, element-wise.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{Elementwise, HostOp};
use super::{
    Activation, At, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan, See, Shape,
    WriteError,
};
use crate::host::InferError;

pub type Module = burn::nn::Tanh;

/// The hyperbolic tangent, element-wise.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tanh {}

impl Plan for Tanh {
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

impl Kind for Tanh {
    const TYPE: &'static str = "tanh";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        Ok(inputs[0].1)
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        Module::new()
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(Elementwise(Self::TYPE, f32::tanh)))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        Ok(g.node("Tanh", at.name, &[&xs[0]], out, vec![]))
    }

    fn read_from() -> Option<&'static str> {
        Some("Tanh")
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // any shape, element-wise
        Activation::single(inputs).map(|t| self.forward(t), |t| self.forward(t), |t| self.forward(t))
    }
}
