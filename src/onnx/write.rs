//! A network and its weights as an ONNX model (opset 17), written with the protobuf types
//! `onnx-ir` re-exports. Every layer becomes the standard operators any runtime has: GELU
//! in its erf form, attention as products, a softmax and reshapes. Weights are stored dense
//! (ONNX has no sparse convolution); a pruned export is smaller because its channel groups
//! and heads are gone from the shapes.

use std::collections::HashMap;

use onnx_ir::{
    AttributeProto, AttributeType, GraphProto, Message, ModelProto, NodeProto, TensorProto,
    TypeProto, ValueInfoProto,
};
use thiserror::Error;

use crate::layers::{Attr, NodeWriter, WriteError};
use crate::model::stack::Source;
use crate::model::{HostTensor, Shape, StackConfig, StackError};

/// The ONNX operator set the file declares (LayerNormalization needs 17).
pub const OPSET: i64 = 17;

/// The graph's input and output names.
const IMAGE: &str = "image";
const LOGITS: &str = "logits";

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("the network cannot be written to ONNX: {0}")]
    Network(#[from] StackError),
    #[error(transparent)]
    Layer(#[from] WriteError),
}

/// The ONNX model of `stack` with `params` (every parameter the network needs, by name).
pub fn to_onnx(stack: &StackConfig, params: &[HostTensor]) -> Result<Vec<u8>, ExportError> {
    let layers = stack.resolve(None)?;
    let params: HashMap<&str, &HostTensor> = params.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut g = Builder {
        graph: GraphProto::new(),
        params,
        count: 0,
    };
    g.graph.name = "sparsity-explorer".into();
    let [c, h, w] = stack.input;
    let mut outputs: Vec<String> = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let sources: Vec<String> = layer
            .sources
            .iter()
            .map(|s| match s {
                Source::Input => IMAGE.to_string(),
                Source::Layer(j) => outputs[*j].clone(),
            })
            .collect();
        let out = match i + 1 == layers.len() {
            true => LOGITS.to_string(),
            false => format!("{}/out", layer.name),
        };
        outputs.push(layer.kind.write(&layer.at(), &mut g, &sources, out)?);
    }
    let classes = match layers.last().map(|l| l.output) {
        Some(Shape::Flat(n)) => n,
        _ => 0,
    };
    g.graph
        .input
        .push(value_info(IMAGE, &[None, Some(c), Some(h), Some(w)]));
    g.graph
        .output
        .push(value_info(LOGITS, &[None, Some(classes)]));
    let mut model = ModelProto::new();
    model.ir_version = 8;
    model.producer_name = "sparsity-explorer".into();
    model.producer_version = env!("CARGO_PKG_VERSION").into();
    model.opset_import.push_default().version = OPSET;
    model.graph = Some(g.graph).into();
    Ok(model
        .write_to_bytes()
        .expect("an in-memory ONNX model always serializes"))
}

/// `push_default` on the repeated fields whose element type onnx-ir does not name.
trait PushDefault<T> {
    fn push_default(&mut self) -> &mut T;
}

impl<T: Default> PushDefault<T> for Vec<T> {
    fn push_default(&mut self) -> &mut T {
        self.push(T::default());
        self.last_mut().expect("just pushed")
    }
}

/// A float tensor `[batch, ...]` with the batch free.
fn value_info(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
    let mut ty = TypeProto::new();
    let tensor = ty.mut_tensor_type();
    tensor.elem_type = 1;
    let shape = tensor.shape.mut_or_insert_default();
    for d in dims {
        let dim = shape.dim.push_default();
        match d {
            Some(n) => dim.set_dim_value(*n as i64),
            None => dim.set_dim_param("batch".into()),
        }
    }
    let mut info = ValueInfoProto::new();
    info.name = name.into();
    info.type_ = Some(ty).into();
    info
}

/// A node attribute as ONNX writes it.
fn attribute(attr: Attr) -> AttributeProto {
    let mut a = AttributeProto::new();
    match attr {
        Attr::Int(name, value) => {
            a.name = name.into();
            a.type_ = AttributeType::INT.into();
            a.i = value;
        }
        Attr::Ints(name, values) => {
            a.name = name.into();
            a.type_ = AttributeType::INTS.into();
            a.ints = values;
        }
        Attr::Float(name, value) => {
            a.name = name.into();
            a.type_ = AttributeType::FLOAT.into();
            a.f = value;
        }
    }
    a
}

struct Builder<'p> {
    graph: GraphProto,
    params: HashMap<&'p str, &'p HostTensor>,
    /// Names handed out for intermediate values and constants.
    count: usize,
}

impl Builder<'_> {
    /// An initializer of f32 values; returns its name.
    fn tensor(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = 1;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        t.raw_data = bytes.into();
        self.graph.initializer.push(t);
        name.into()
    }

    fn host(&self, key: &str) -> Result<&HostTensor, WriteError> {
        self.params
            .get(key)
            .copied()
            .ok_or_else(|| WriteError::Missing(key.into()))
    }
}

impl NodeWriter for Builder<'_> {
    fn fresh(&mut self, hint: &str) -> String {
        self.count += 1;
        format!("{hint}/{}", self.count)
    }

    fn node(
        &mut self,
        op: &str,
        layer: &str,
        inputs: &[&str],
        out: String,
        attrs: Vec<Attr>,
    ) -> String {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = format!("{layer}/{op}_{}", self.graph.node.len());
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![out.clone()];
        n.attribute = attrs.into_iter().map(attribute).collect();
        self.graph.node.push(n);
        out
    }

    fn param(&mut self, key: &str) -> Result<String, WriteError> {
        let p = self.host(key)?;
        let (dims, values) = (p.dims.clone(), p.values.clone());
        Ok(self.tensor(key, &dims, &values))
    }

    fn param_transposed(&mut self, key: &str) -> Result<String, WriteError> {
        let p = self.host(key)?;
        let (out, inp) = (p.dims[0], p.dims[1]);
        let mut t = vec![0.0f32; p.values.len()];
        for o in 0..out {
            for i in 0..inp {
                t[i * out + o] = p.values[o * inp + i];
            }
        }
        let name = format!("{key}_t");
        Ok(self.tensor(&name, &[inp, out], &t))
    }

    fn has(&self, key: &str) -> bool {
        self.params.contains_key(key)
    }

    fn ints(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.fresh(hint);
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.dims = vec![values.len() as i64];
        t.data_type = 7;
        t.int64_data = values.to_vec();
        self.graph.initializer.push(t);
        name
    }

    fn index(&mut self, hint: &str, value: i64) -> String {
        let name = self.fresh(hint);
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.data_type = 7;
        t.int64_data = vec![value];
        self.graph.initializer.push(t);
        name
    }

    fn scalar(&mut self, hint: &str, value: f32) -> String {
        let name = self.fresh(hint);
        self.tensor(&name, &[], &[value])
    }
}
