//! Dropout: zeroes each value with probability `p` while training (scaling the rest), the
//! identity in evaluation.

use burn::nn::DropoutConfig;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{HostOp, Identity};
use super::{
    Activation, At, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan, See, Setting,
    Shape, WriteError,
};
use crate::host::InferError;

pub type Module = burn::nn::Dropout;

/// Dropout with probability `p`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dropout {
    pub p: f64,
}

impl Plan for Dropout {
    type Kind = Self;

    fn resolve(self, _input: Shape) -> Result<Self, Fit> {
        Ok(self)
    }

    fn of(kind: Self) -> Self {
        kind
    }

    fn template() -> Self {
        Self { p: 0.2 }
    }

    fn settings(&mut self) -> Vec<Setting<'_>> {
        vec![Setting::Fraction {
            prefix: "p ",
            value: &mut self.p,
            max: 0.95,
        }]
    }
}

impl Kind for Dropout {
    const TYPE: &'static str = "dropout";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        let p = self.p;
        if !(0.0..1.0).contains(&p) {
            return Err(Fit::Invalid(format!("p must be in [0, 1), found {p}")));
        }
        Ok(inputs[0].1)
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        DropoutConfig::new(self.p).init()
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(Identity))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        Ok(g.node("Identity", at.name, &[&xs[0]], out, vec![]))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // any shape, element-wise
        Activation::single(inputs).map(|t| self.forward(t), |t| self.forward(t), |t| self.forward(t))
    }
}
