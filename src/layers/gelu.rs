//! GELU, exact (with `erf`), element-wise: PyTorch's `nn.GELU()`.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{Elementwise, HostOp};
use super::{
    Activation, At, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan, See, Shape,
    WriteError,
};
use crate::host::InferError;
use crate::kernels::activation::gelu as host_gelu;
use crate::kernels::gelu;

pub type Module = burn::nn::Gelu;

/// GELU, exact.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gelu {}

impl Plan for Gelu {
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

impl Kind for Gelu {
    const TYPE: &'static str = "gelu";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        Ok(inputs[0].1)
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        Module::new()
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(Elementwise(Self::TYPE, host_gelu)))
    }

    /// As PyTorch exports it before opset 20: `x * (1 + erf(x / sqrt 2)) * 0.5`.
    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let (name, x) = (at.name, xs[0].as_str());
        let sqrt2 = g.scalar(name, std::f32::consts::SQRT_2);
        let one = g.scalar(name, 1.0);
        let half = g.scalar(name, 0.5);
        let scaled = g.fresh(name);
        g.node("Div", name, &[x, &sqrt2], scaled.clone(), vec![]);
        let erf = g.fresh(name);
        g.node("Erf", name, &[&scaled], erf.clone(), vec![]);
        let one_plus = g.fresh(name);
        g.node("Add", name, &[&erf, &one], one_plus.clone(), vec![]);
        let times = g.fresh(name);
        g.node("Mul", name, &[x, &one_plus], times.clone(), vec![]);
        Ok(g.node("Mul", name, &[&times, &half], out, vec![]))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // any shape, element-wise
        Activation::single(inputs).map(gelu, gelu, gelu)
    }
}
