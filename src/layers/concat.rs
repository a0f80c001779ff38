//! Layers side by side: channels for images, the last axis for features and tokens.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{HostMerge, HostOp};
use super::shape::{concatenated, list};
use super::{
    Activation, At, Attr, ChannelFlow, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan,
    See, Setting, Shape, View, WriteError,
};
use crate::host::InferError;

/// Its inputs merged.
#[derive(burn::module::Module, Debug, Default)]
pub struct Module;

/// A merge of the layers named in `inputs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Concat {
    pub inputs: Vec<String>,
}

impl Plan for Concat {
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

impl Kind for Concat {
    const TYPE: &'static str = "concat";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        concatenated(inputs).ok_or_else(|| {
            Fit::Invalid(format!(
                "concatenates images of one height and width, or features, or tokens of one count, but gets {}",
                list(inputs)
            ))
        })
    }

    /// A concatenation's channels come from several spaces, which no mask can follow: all
    /// of them stay whole.
    fn channels(&self, at: &At, flow: &mut ChannelFlow, ins: &[View]) -> View {
        for v in ins {
            flow.fix(v.space);
        }
        flow.new_space(at.output.channels(), true)
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        Module
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(HostMerge { add: false }))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let axis = match at.input {
            Shape::Tokens { .. } => 2,
            _ => 1,
        };
        let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
        Ok(g.node("Concat", at.name, &refs, out, vec![Attr::Int("axis", axis)]))
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        Activation::merged(inputs, false)
    }
}
