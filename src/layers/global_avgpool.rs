//! Global average pooling: an image `[c, h, w]` to `[c]`, each channel's mean.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::shape::image_of;
use super::host::{HostOp, first};
use super::{
    Activation, At, Attr, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan, See, Shape,
    WriteError,
};
use crate::host::InferError;
use crate::host::ops::{Act, global_avgpool};

/// `[batch, c, h, w]` to `[batch, c]`.
#[derive(burn::module::Module, Debug, Default)]
pub struct Module;

/// Each channel's mean.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalAvgpool {}

impl Plan for GlobalAvgpool {
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

impl Kind for GlobalAvgpool {
    const TYPE: &'static str = "global_avgpool";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        Ok(Shape::Flat(image_of(inputs[0].1)?.0))
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        Module
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(HostGlobalAvgpool))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let pooled = g.fresh(at.name);
        g.node("GlobalAveragePool", at.name, &[&xs[0]], pooled.clone(), vec![]);
        let axis = vec![Attr::Int("axis", 1)];
        Ok(g.node("Flatten", at.name, &[&pooled], out, axis))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // [batch, c, h, w] -> [batch, c, h * w] -> [batch, c, 1] -> [batch, c]
        let x = Activation::single(inputs).image(GlobalAvgpool::TYPE);
        Activation::Flat(x.flatten::<3>(2, 3).mean_dim(2).flatten::<2>(1, 2))
    }
}

#[derive(Debug)]
struct HostGlobalAvgpool;

impl HostOp for HostGlobalAvgpool {
    fn run(&self, inputs: Vec<Act>) -> Act {
        match first(inputs) {
            Act::Maps(m) => Act::Features(global_avgpool(&m)),
            x => x,
        }
    }
}
