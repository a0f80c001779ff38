//! Batch normalization of an image's channels (PyTorch's `BatchNorm2d`, eps 1e-5): the
//! batch's statistics while training, the running ones in evaluation.

use burn::module::RunningState;
use burn::nn::BatchNormConfig;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::shape::image_of;
use super::host::{HostOp, Identity, Norm, first};
use super::{
    Activation, At, Attr, ChannelFlow, Fit, Forward, HostBuild, HostTensor, Inputs, Kind,
    NodeWriter, Plan, See, Shape, Take, View, WriteError, host_vector, set_vector,
};
use crate::host::InferError;
use crate::host::ops::{Act, affine};
use crate::kernels::batch_norm;

pub type Module = burn::nn::BatchNorm;

/// A batch norm.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Batchnorm2d {}

impl Plan for Batchnorm2d {
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

impl Kind for Batchnorm2d {
    const TYPE: &'static str = "batchnorm2d";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        image_of(inputs[0].1)?;
        Ok(inputs[0].1)
    }

    fn state(&self, at: &At) -> Vec<(String, Vec<usize>)> {
        ["weight", "bias", "running_mean", "running_var"]
            .map(|p| (at.key(p), vec![at.input.channels()]))
            .to_vec()
    }

    fn channels(&self, at: &At, flow: &mut ChannelFlow, ins: &[View]) -> View {
        flow.carry(ins[0].space, at.name);
        ins[0]
    }

    fn module(&self, at: &At, device: &Device) -> Module {
        BatchNormConfig::new(at.input.channels()).init(device)
    }

    /// Folded into the convolution it alone reads (the mask unchanged), else a
    /// per-channel scale and shift.
    fn host(&self, at: &At, build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        let norm = build.norm(at.name)?;
        match build.fold_into_source(&norm) {
            true => Ok(Box::new(Identity)),
            false => Ok(Box::new(HostAffine(norm))),
        }
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let [a, b, m, v] = ["weight", "bias", "running_mean", "running_var"].map(|p| g.param(&at.key(p)));
        let (a, b, m, v) = (a?, b?, m?, v?);
        let attrs = vec![Attr::Float("epsilon", 1e-5)];
        Ok(g.node("BatchNormalization", at.name, &[&xs[0], &a, &b, &m, &v], out, attrs))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // [batch, c, h, w] -> [batch, c, h, w]
        let x = Activation::single(inputs).image(Batchnorm2d::TYPE);
        Activation::Image(batch_norm(self, x))
    }

    fn read_state(&self, name: &str) -> Vec<HostTensor> {
        let key = |p: &str| format!("{name}.{p}");
        vec![
            host_vector(key("weight"), self.gamma.val()),
            host_vector(key("bias"), self.beta.val()),
            host_vector(key("running_mean"), self.running_mean.value()),
            host_vector(key("running_var"), self.running_var.value()),
        ]
    }

    /// Its scale, shift and running statistics, by their PyTorch names.
    fn write_state(&mut self, name: &str, take: Take<'_>) {
        let mut take = |p: &str| take(&format!("{name}.{p}"));
        set_vector(&mut self.gamma, take("weight"));
        set_vector(&mut self.beta, take("bias"));
        let n = self.gamma.dims()[0];
        let device = self.gamma.val().device().inner();
        let running = |v: Vec<f32>| {
            RunningState::new(Tensor::<1>::from_data(TensorData::new(v, [n]), &device))
        };
        self.running_mean = running(take("running_mean"));
        self.running_var = running(take("running_var"));
    }
}

/// A batch norm that could not fold into a convolution.
#[derive(Debug)]
struct HostAffine(Norm);

impl HostOp for HostAffine {
    fn run(&self, inputs: Vec<Act>) -> Act {
        let mut x = first(inputs);
        affine(&mut x, &self.0.scale, &self.0.shift);
        x
    }
}
