//! Max over `kernel x kernel` windows, `stride` apart (the kernel when not given).

use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{HostOp, HostPool};
use super::shape::{pool_attrs, pool_settings, pooled};
use super::{
    Activation, At, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan, See, Setting,
    Shape, WriteError,
};
use crate::host::InferError;
use crate::kernels::max_pool2d;

pub type Module = burn::nn::pool::MaxPool2d;

/// Pooling of `kernel x kernel` windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Maxpool2d {
    pub kernel: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
}

impl Maxpool2d {
    /// Windows of `kernel`, `kernel` apart.
    pub fn new(kernel: usize) -> Self {
        Self {
            kernel,
            stride: None,
        }
    }

    fn stride(&self) -> usize {
        self.stride.unwrap_or(self.kernel)
    }
}

impl Plan for Maxpool2d {
    type Kind = Self;

    fn resolve(self, _input: Shape) -> Result<Self, Fit> {
        Ok(self)
    }

    fn of(kind: Self) -> Self {
        kind
    }

    fn template() -> Self {
        Self::new(2)
    }

    fn settings(&mut self) -> Vec<Setting<'_>> {
        pool_settings(&mut self.kernel, &mut self.stride)
    }
}

impl Kind for Maxpool2d {
    const TYPE: &'static str = "maxpool2d";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        pooled(inputs[0].1, self.kernel, self.stride())
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        MaxPool2dConfig::new([self.kernel, self.kernel])
            .with_strides([self.stride(); 2])
            .init()
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(HostPool {
            k: self.kernel,
            stride: self.stride(),
            max: true,
        }))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        Ok(g.node("MaxPool", at.name, &[&xs[0]], out, pool_attrs(self.kernel, self.stride())))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // [batch, c, h, w] -> [batch, c, h', w']
        let x = Activation::single(inputs).image(Maxpool2d::TYPE);
        Activation::Image(max_pool2d(self, x))
    }
}
