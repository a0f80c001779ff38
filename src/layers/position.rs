//! A learned embedding of each token's position, added to the tokens: PyTorch's
//! `nn.Parameter(torch.zeros(1, n, d))`.

use burn::module::Param;
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::host::{HostOp, first};
use super::shape::tokens_of;
use super::{
    Activation, At, ChannelFlow, Fit, Forward, HostBuild, HostTensor, Inputs, Kind, NodeWriter,
    Plan, See, Shape, Take, View, WriteError, set_param,
};
use crate::host::InferError;
use crate::host::ops::{Act, add_position};

/// The embedding, `[1, n, d]`.
#[derive(burn::module::Module, Debug)]
pub struct Module {
    pub embedding: Param<Tensor<3>>,
}

/// Position embeddings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {}

impl Plan for Position {
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

impl Kind for Position {
    const TYPE: &'static str = "position";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        tokens_of(inputs[0].1)?;
        Ok(inputs[0].1)
    }

    /// Named as its layer, as PyTorch names a bare parameter (`pos`).
    fn state(&self, at: &At) -> Vec<(String, Vec<usize>)> {
        match at.input {
            Shape::Tokens { n, d } => vec![(at.name.to_string(), vec![1, n, d])],
            _ => Vec::new(),
        }
    }

    fn channels(&self, at: &At, flow: &mut ChannelFlow, ins: &[View]) -> View {
        flow.carry(ins[0].space, at.name);
        ins[0]
    }

    fn module(&self, at: &At, device: &Device) -> Module {
        let (n, d) = tokens_of(at.input).unwrap_or((0, 0));
        Module {
            embedding: Initializer::Zeros.init([1, n, d], device),
        }
    }

    fn host(&self, at: &At, build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(HostPosition(build.param(at.name.to_string())?)))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let p = g.param(at.name)?;
        Ok(g.node("Add", at.name, &[&xs[0], &p], out, vec![]))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // [batch, n, d] + [1, n, d]
        let x = Activation::single(inputs).tokens(Position::TYPE);
        Activation::Tokens(x + self.embedding.val())
    }

    /// Named as its layer (`pos`).
    fn read_state(&self, name: &str) -> Vec<HostTensor> {
        let t = self.embedding.val();
        vec![HostTensor {
            name: name.to_string(),
            dims: t.dims().to_vec(),
            values: t.into_data().iter::<f32>().collect(),
        }]
    }

    fn write_state(&mut self, name: &str, take: Take<'_>) {
        let dims: [usize; 3] = self.embedding.dims();
        let v = take(name);
        set_param(&mut self.embedding, |d| {
            Tensor::<3>::from_data(TensorData::new(v, dims), d)
        });
    }
}

/// The embedding on the host, `[tokens][d]`.
#[derive(Debug)]
struct HostPosition(Vec<f32>);

impl HostOp for HostPosition {
    fn run(&self, inputs: Vec<Act>) -> Act {
        let mut x = first(inputs);
        if let Act::Features(f) = &mut x {
            add_position(f, &self.0);
        }
        x
    }
}
