//! The mean over `kernel x kernel` windows, `stride` apart (the kernel when not given).

use burn::nn::pool::AvgPool2dConfig;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::shape::image_of;
use super::host::{HostOp, first};
use super::shape::windowed;
use super::{
    Activation, At, Attr, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan, See,
    Setting, Shape, WriteError,
};
use crate::host::InferError;
use crate::host::ops::{Act, pool};


pub type Module = burn::nn::pool::AvgPool2d;

/// Pooling of `kernel x kernel` windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Avgpool2d {
    pub kernel: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
}

impl Avgpool2d {
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

impl Plan for Avgpool2d {
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
        let kernel = self.kernel;
        vec![
            Setting::count("k ", &mut self.kernel, 1, 16),
            Setting::CountOr {
                prefix: "s ",
                default: kernel,
                value: &mut self.stride,
                max: 16,
            },
        ]
    }
}

impl Kind for Avgpool2d {
    const TYPE: &'static str = "avgpool2d";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        let (c, h, w) = image_of(inputs[0].1)?;
        let (kernel, stride) = (self.kernel, self.stride());
        if kernel == 0 || stride == 0 {
            return Err(Fit::Invalid("kernel and stride must be at least 1".into()));
        }
        windowed(c, (h, w), kernel, stride, 0).ok_or_else(|| {
            Fit::Mismatch(format!("an image of at least {kernel} x {kernel}"))
        })
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        AvgPool2dConfig::new([self.kernel, self.kernel])
            .with_strides([self.stride(); 2])
            .init()
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(HostPool {
            k: self.kernel,
            stride: self.stride(),
        }))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let (k, s) = (self.kernel as i64, self.stride() as i64);
        let attrs = vec![
            Attr::Ints("kernel_shape", vec![k, k]),
            Attr::Ints("strides", vec![s, s]),
        ];
        Ok(g.node("AveragePool", at.name, &[&xs[0]], out, attrs))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // [batch, c, h, w] -> [batch, c, h', w']
        let x = Activation::single(inputs).image(Avgpool2d::TYPE);
        Activation::Image(self.forward(x))
    }
}

#[derive(Debug)]
struct HostPool {
    k: usize,
    stride: usize,
}

impl HostOp for HostPool {
    fn run(&self, inputs: Vec<Act>) -> Act {
        match first(inputs) {
            Act::Maps(m) => Act::Maps(pool(&m, self.k, self.stride, false)),
            x => x,
        }
    }
}
