//! A dense layer on flat features, or on every token's features (the last axis).

use burn::nn::LinearConfig;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{HostOp, first};
use super::writer::matmul_add;
use super::{
    Activation, At, Attr, ChannelFlow, Fit, Forward, HostBuild, Inputs, Kind, LayerHandle,
    LayerHandleMut, LayerInput, NodeWriter, PrunableWeight, See, Setting, Shape, View,
    WriteError, Plan,
};
use crate::host::ops::{Act, Features};
use crate::host::{InferError, Linear as HostLinear};
use crate::kernels::linear;
use crate::prune::{LayerShape, Member};

pub type Module = burn::nn::Linear;

fn yes() -> bool {
    true
}
fn is_true(v: &bool) -> bool {
    *v
}

/// A dense layer to `out` features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    pub out: usize,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub bias: bool,
}

impl Plan for Linear {
    type Kind = Self;

    fn resolve(self, _input: Shape) -> Result<Self, Fit> {
        Ok(self)
    }

    fn of(kind: Self) -> Self {
        kind
    }

    fn template() -> Self {
        Self::new(10)
    }

    fn settings(&mut self) -> Vec<Setting<'_>> {
        vec![
            Setting::count("out ", &mut self.out, 1, 65_536),
            Setting::Flag {
                label: "bias",
                value: &mut self.bias,
            },
        ]
    }
}

impl Linear {
    /// A dense layer to `out` features with a bias.
    pub fn new(out: usize) -> Self {
        Self { out, bias: true }
    }

    fn shape(&self, input: Shape) -> LayerShape {
        LayerShape::linear(self.out, input.last_axis().unwrap_or(0))
    }
}

impl Kind for Linear {
    const TYPE: &'static str = "linear";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        if self.out == 0 {
            return Err(Fit::Invalid("out must be at least 1".into()));
        }
        match inputs[0].1 {
            Shape::Image { .. } => Err(Fit::Mismatch(
                "flat features or tokens (add a flatten or a tokens layer before it)".into(),
            )),
            Shape::Flat(_) => Ok(Shape::Flat(self.out)),
            Shape::Tokens { n, .. } => Ok(Shape::Tokens { n, d: self.out }),
        }
    }

    fn weight_values(&self, input: Shape) -> u128 {
        input.last_axis().unwrap_or(0) as u128 * self.out as u128
    }

    fn prunable(&self, at: &At) -> Vec<PrunableWeight> {
        vec![PrunableWeight::plain(
            at.name,
            self.shape(at.input),
            self.bias,
        )]
    }

    fn macs(&self, at: &At) -> u64 {
        let weights = self.shape(at.input).numel() as u64;
        match at.input {
            Shape::Tokens { n, .. } => weights * n as u64,
            _ => weights,
        }
    }

    fn channels(&self, at: &At, flow: &mut ChannelFlow, ins: &[View]) -> View {
        let x = ins[0];
        let w = flow.take_weight();
        flow.read(
            x.space,
            Member {
                weight: w,
                offset: 0,
                span: x.span,
            },
        );
        let v = flow.new_space(at.output.channels(), false);
        flow.produce(v.space, w);
        v
    }

    fn narrow(&mut self, _at: &At, rows: &dyn Fn(usize) -> usize) -> Result<Option<(usize, usize)>, String> {
        let (before, after) = (self.out, rows(0));
        self.out = after;
        Ok((after != before).then_some((before, after)))
    }

    fn module(&self, at: &At, device: &Device) -> Module {
        LinearConfig::new(
            at.input.last_axis().unwrap_or(at.input.channels()),
            self.out,
        )
        .with_bias(self.bias)
        .init(device)
    }

    fn host(&self, _at: &At, build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        let layer = build.weight()?.layer(build.sparse);
        Ok(Box::new(HostDense(layer)))
    }

    /// Gemm on flat features, MatMul (+ Add) on tokens.
    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let (wk, bk) = (at.key("weight"), at.key("bias"));
        let x = xs[0].as_str();
        if matches!(at.input, Shape::Tokens { .. }) {
            return matmul_add(g, at.name, x, (&wk, self.bias.then_some(&bk)), out);
        }
        let mut inputs = vec![x.to_string(), g.param(&wk)?];
        if self.bias {
            inputs.push(g.param(&bk)?);
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(g.node("Gemm", at.name, &refs, out, vec![Attr::Int("transB", 1)]))
    }


}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, see: See<'_>) -> Activation {
        match Activation::single(inputs) {
            Activation::Tokens(t) => {
                // [batch, n, d] -> [batch * n, d] -> [batch, n, out]
                let [batch, n, d] = t.dims();
                let rows = t.reshape([batch * n, d]);
                see(LayerInput::Linear(&rows));
                let out = self.weight.dims()[1];
                Activation::Tokens(linear(self, rows).reshape([batch, n, out]))
            }
            x => {
                // [batch, d] -> [batch, out]
                let t = x.flat();
                see(LayerInput::Linear(&t));
                Activation::Flat(linear(self, t))
            }
        }
    }

    fn weights(&self) -> Vec<LayerHandle<'_>> {
        vec![LayerHandle::Linear(self)]
    }

    fn weights_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
        vec![LayerHandleMut::Linear(self)]
    }
}

/// A dense layer on the host, over feature columns.
#[derive(Debug)]
struct HostDense(HostLinear);

impl HostOp for HostDense {
    fn run(&self, inputs: Vec<Act>) -> Act {
        match first(inputs) {
            Act::Features(f) => Act::Features(Features {
                data: self.0.forward_transposed(&f.data, f.columns()),
                f: self.0.out(),
                n: f.n,
                tokens: f.tokens,
            }),
            x => x,
        }
    }

    fn stored(&self) -> usize {
        self.0.stored()
    }
}
