//! The element-wise sum of layers of one shape (a residual connection).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{HostMerge, HostOp};
use super::shape::list;
use super::{
    Activation, At, ChannelFlow, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan,
    See, Setting, Shape, View, WriteError,
};
use crate::host::InferError;

/// Its inputs merged.
#[derive(burn::module::Module, Debug, Default)]
pub struct Module;

/// A merge of the layers named in `inputs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Add {
    pub inputs: Vec<String>,
}

impl Plan for Add {
    type Kind = Self;

    fn resolve(self, _input: Shape) -> Result<Self, Fit> {
        Ok(self)
    }

    fn of(kind: Self) -> Self {
        kind
    }

    fn template() -> Self {
        Self {
            inputs: vec![String::new(), String::new()],
        }
    }

    fn settings(&mut self) -> Vec<Setting<'_>> {
        vec![Setting::Names(&mut self.inputs)]
    }

    fn merged(&self) -> Option<&[String]> {
        Some(&self.inputs)
    }

    fn merged_mut(&mut self) -> Option<&mut Vec<String>> {
        Some(&mut self.inputs)
    }
}

impl Kind for Add {
    const TYPE: &'static str = "add";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        let shape = inputs[0].1;
        if inputs.iter().any(|(_, s)| *s != shape) {
            return Err(Fit::Invalid(format!(
                "adds layers of one shape, but gets {}",
                list(inputs)
            )));
        }
        Ok(shape)
    }

    /// Its inputs' spaces become one: a channel pruned in one is pruned in all.
    fn channels(&self, _at: &At, flow: &mut ChannelFlow, ins: &[View]) -> View {
        for v in &ins[1..] {
            flow.join(ins[0].space, v.space);
        }
        ins[0]
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        Module
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(HostMerge { add: true }))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let mut sum = xs[0].clone();
        for (i, s) in xs.iter().enumerate().skip(1) {
            let target = match i + 1 == xs.len() {
                true => out.clone(),
                false => g.fresh(at.name),
            };
            sum = g.node("Add", at.name, &[&sum, s], target, vec![]);
        }
        Ok(sum)
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        Activation::merged(inputs, true)
    }
}
