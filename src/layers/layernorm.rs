//! Layer normalization of the last axis (features, or each token's features), PyTorch's
//! `LayerNorm(d)` with eps 1e-5.

use burn::nn::LayerNormConfig;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{HostOp, first};
use super::{
    Activation, At, Attr, ChannelFlow, Fit, Forward, HostBuild, HostTensor, Inputs, Kind,
    NodeWriter, Plan, See, Shape, Take, View, WriteError, host_vector, set_vector,
};
use crate::host::InferError;
use crate::host::ops::{Act, layer_norm};

pub type Module = burn::nn::LayerNorm;

/// A layer norm.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Layernorm {}

impl Plan for Layernorm {
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

impl Kind for Layernorm {
    const TYPE: &'static str = "layernorm";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        let shape = inputs[0].1;
        shape
            .last_axis()
            .ok_or_else(|| Fit::Mismatch("flat features or tokens".into()))?;
        Ok(shape)
    }

    fn state(&self, at: &At) -> Vec<(String, Vec<usize>)> {
        ["weight", "bias"]
            .map(|p| (at.key(p), vec![at.input.channels()]))
            .to_vec()
    }

    /// Its mean and variance read every channel: a masked channel would still count, so the
    /// channels it normalizes stay whole.
    fn channels(&self, at: &At, flow: &mut ChannelFlow, ins: &[View]) -> View {
        flow.carry(ins[0].space, at.name);
        flow.fix(ins[0].space);
        ins[0]
    }

    fn module(&self, at: &At, device: &Device) -> Module {
        LayerNormConfig::new(at.input.channels()).init(device)
    }

    fn host(&self, at: &At, build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(HostLayerNorm {
            gamma: build.param(at.key("weight"))?,
            beta: build.param(at.key("bias"))?,
        }))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let (a, b) = (g.param(&at.key("weight"))?, g.param(&at.key("bias"))?);
        let attrs = vec![Attr::Int("axis", -1), Attr::Float("epsilon", 1e-5)];
        Ok(g.node("LayerNormalization", at.name, &[&xs[0], &a, &b], out, attrs))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // [..., d] -> [..., d]
        match Activation::single(inputs) {
            Activation::Tokens(t) => Activation::Tokens(self.forward(t)),
            x => Activation::Flat(self.forward(x.flat())),
        }
    }

    fn read_state(&self, name: &str) -> Vec<HostTensor> {
        let mut out = vec![host_vector(format!("{name}.weight"), self.gamma.val())];
        if let Some(beta) = &self.beta {
            out.push(host_vector(format!("{name}.bias"), beta.val()));
        }
        out
    }

    fn write_state(&mut self, name: &str, take: Take<'_>) {
        set_vector(&mut self.gamma, take(&format!("{name}.weight")));
        if let Some(beta) = self.beta.as_mut() {
            set_vector(beta, take(&format!("{name}.bias")));
        }
    }
}

#[derive(Debug)]
struct HostLayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl HostOp for HostLayerNorm {
    fn run(&self, inputs: Vec<Act>) -> Act {
        let mut x = first(inputs);
        if let Act::Features(f) = &mut x {
            layer_norm(f, &self.gamma, &self.beta);
        }
        x
    }
}
