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

use crate::model::stack::{ResolvedLayer, Source};
use crate::model::{HostTensor, LayerConfig, Shape, StackConfig, StackError};

/// The ONNX operator set the file declares (LayerNormalization needs 17).
pub const OPSET: i64 = 17;

/// The graph's input and output names.
const IMAGE: &str = "image";
const LOGITS: &str = "logits";

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("the network cannot be written to ONNX: {0}")]
    Network(#[from] StackError),
    #[error("the network cannot be written to ONNX: no parameter {0}")]
    Missing(String),
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
        let last = i + 1 == layers.len();
        let out = g.layer(layer, &sources, last)?;
        outputs.push(out);
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

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = values.to_vec();
    a
}

fn int(name: &str, value: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = value;
    a
}

fn float(name: &str, value: f32) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::FLOAT.into();
    a.f = value;
    a
}

struct Builder<'p> {
    graph: GraphProto,
    params: HashMap<&'p str, &'p HostTensor>,
    /// Names handed out for intermediate values and constants.
    count: usize,
}

impl Builder<'_> {
    fn fresh(&mut self, hint: &str) -> String {
        self.count += 1;
        format!("{hint}/{}", self.count)
    }

    /// Adds a node; returns its output's name.
    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        out: String,
        attrs: Vec<AttributeProto>,
    ) -> String {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = format!("{name}/{op}_{}", self.graph.node.len());
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![out.clone()];
        n.attribute = attrs;
        self.graph.node.push(n);
        out
    }

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

    fn int_tensor(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.fresh(hint);
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.dims = vec![values.len() as i64];
        t.data_type = 7;
        t.int64_data = values.to_vec();
        self.graph.initializer.push(t);
        name
    }

    fn scalar(&mut self, hint: &str, value: f32) -> String {
        let name = self.fresh(hint);
        self.tensor(&name, &[], &[value])
    }

    /// A parameter of the network, written under its own name.
    fn param(&mut self, key: &str) -> Result<String, ExportError> {
        let p = *self
            .params
            .get(key)
            .ok_or_else(|| ExportError::Missing(key.into()))?;
        Ok(self.tensor(key, &p.dims, &p.values))
    }

    /// A `[out, in]` parameter stored transposed, `[in, out]`, for MatMul.
    fn param_transposed(&mut self, key: &str) -> Result<String, ExportError> {
        let p = *self
            .params
            .get(key)
            .ok_or_else(|| ExportError::Missing(key.into()))?;
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

    /// The nodes of one layer; returns the name of its output.
    fn layer(
        &mut self,
        layer: &ResolvedLayer,
        sources: &[String],
        last: bool,
    ) -> Result<String, ExportError> {
        let name = layer.name.as_str();
        let out = match last {
            true => LOGITS.to_string(),
            false => format!("{name}/out"),
        };
        let x = sources.first().map(String::as_str).unwrap_or(IMAGE);
        let key = |p: &str| format!("{name}.{p}");
        Ok(match &layer.config {
            LayerConfig::Conv2d {
                kernel,
                stride,
                padding,
                groups,
                bias,
                ..
            } => {
                let w = self.param(&key("weight"))?;
                let mut inputs = vec![x.to_string(), w];
                if *bias {
                    inputs.push(self.param(&key("bias"))?);
                }
                let (k, s, p) = (*kernel as i64, *stride as i64, *padding as i64);
                let attrs = vec![
                    ints("kernel_shape", &[k, k]),
                    ints("strides", &[s, s]),
                    ints("pads", &[p, p, p, p]),
                    ints("dilations", &[1, 1]),
                    int("group", *groups as i64),
                ];
                let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                self.node("Conv", name, &refs, out, attrs)
            }
            LayerConfig::Linear { bias, .. } => self.linear(name, x, *bias, &layer.input, out)?,
            LayerConfig::Maxpool2d { kernel, stride }
            | LayerConfig::Avgpool2d { kernel, stride } => {
                let op = match layer.config {
                    LayerConfig::Maxpool2d { .. } => "MaxPool",
                    _ => "AveragePool",
                };
                let (k, s) = (*kernel as i64, stride.unwrap_or(*kernel) as i64);
                let attrs = vec![ints("kernel_shape", &[k, k]), ints("strides", &[s, s])];
                self.node(op, name, &[x], out, attrs)
            }
            LayerConfig::GlobalAvgpool => {
                let pooled = self.fresh(name);
                self.node("GlobalAveragePool", name, &[x], pooled.clone(), vec![]);
                self.node("Flatten", name, &[&pooled], out, vec![int("axis", 1)])
            }
            LayerConfig::Batchnorm2d => {
                let inputs =
                    ["weight", "bias", "running_mean", "running_var"].map(|p| self.param(&key(p)));
                let [a, b, m, v] = inputs;
                let (a, b, m, v) = (a?, b?, m?, v?);
                let attrs = vec![float("epsilon", 1e-5)];
                self.node("BatchNormalization", name, &[x, &a, &b, &m, &v], out, attrs)
            }
            LayerConfig::Layernorm => {
                let (a, b) = (self.param(&key("weight"))?, self.param(&key("bias"))?);
                let attrs = vec![int("axis", -1), float("epsilon", 1e-5)];
                self.node("LayerNormalization", name, &[x, &a, &b], out, attrs)
            }
            LayerConfig::Relu => self.node("Relu", name, &[x], out, vec![]),
            LayerConfig::Tanh => self.node("Tanh", name, &[x], out, vec![]),
            LayerConfig::Gelu => self.gelu(name, x, out),
            LayerConfig::Dropout { .. } => self.node("Identity", name, &[x], out, vec![]),
            LayerConfig::Flatten => self.node("Flatten", name, &[x], out, vec![int("axis", 1)]),
            LayerConfig::Tokens => {
                let Shape::Image { c, h, w } = layer.input else {
                    unreachable!("a resolved tokens layer reads an image")
                };
                let shape = self.int_tensor(name, &[0, c as i64, (h * w) as i64]);
                let flat = self.fresh(name);
                self.node("Reshape", name, &[x, &shape], flat.clone(), vec![]);
                self.node(
                    "Transpose",
                    name,
                    &[&flat],
                    out,
                    vec![ints("perm", &[0, 2, 1])],
                )
            }
            LayerConfig::Position => {
                let p = self.param(name)?;
                self.node("Add", name, &[x, &p], out, vec![])
            }
            LayerConfig::Attention { .. } => self.attention(layer, x, out)?,
            LayerConfig::MeanTokens => {
                let attrs = vec![ints("axes", &[1]), int("keepdims", 0)];
                self.node("ReduceMean", name, &[x], out, attrs)
            }
            LayerConfig::Add { .. } => {
                let mut sum = sources[0].clone();
                for (i, s) in sources.iter().enumerate().skip(1) {
                    let target = match i + 1 == sources.len() {
                        true => out.clone(),
                        false => self.fresh(name),
                    };
                    sum = self.node("Add", name, &[&sum, s], target, vec![]);
                }
                sum
            }
            LayerConfig::Concat { .. } => {
                let axis = match layer.input {
                    Shape::Tokens { .. } => 2,
                    _ => 1,
                };
                let refs: Vec<&str> = sources.iter().map(String::as_str).collect();
                self.node("Concat", name, &refs, out, vec![int("axis", axis)])
            }
            LayerConfig::Repeat { .. } => unreachable!("resolved networks have no repeat"),
        })
    }

    /// A dense layer: Gemm on flat features, MatMul (+ Add) on tokens.
    fn linear(
        &mut self,
        name: &str,
        x: &str,
        bias: bool,
        input: &Shape,
        out: String,
    ) -> Result<String, ExportError> {
        let (wk, bk) = (format!("{name}.weight"), format!("{name}.bias"));
        if !matches!(input, Shape::Tokens { .. }) {
            let w = self.param(&wk)?;
            let mut inputs = vec![x.to_string(), w];
            if bias {
                inputs.push(self.param(&bk)?);
            }
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            return Ok(self.node("Gemm", name, &refs, out, vec![int("transB", 1)]));
        }
        self.matmul_add(name, x, &wk, bias.then_some(bk.as_str()), out)
    }

    /// `x @ W^T (+ b)` over the last axis, `W` the `[out, in]` parameter `wk`.
    fn matmul_add(
        &mut self,
        name: &str,
        x: &str,
        wk: &str,
        bk: Option<&str>,
        out: String,
    ) -> Result<String, ExportError> {
        let wt = self.param_transposed(wk)?;
        let Some(bk) = bk.filter(|b| self.has(b)) else {
            return Ok(self.node("MatMul", name, &[x, &wt], out, vec![]));
        };
        let b = self.param(bk)?;
        let product = self.fresh(name);
        self.node("MatMul", name, &[x, &wt], product.clone(), vec![]);
        Ok(self.node("Add", name, &[&product, &b], out, vec![]))
    }

    /// GELU as PyTorch exports it before opset 20: `x * (1 + erf(x / sqrt 2)) * 0.5`.
    fn gelu(&mut self, name: &str, x: &str, out: String) -> String {
        let sqrt2 = self.scalar(name, std::f32::consts::SQRT_2);
        let one = self.scalar(name, 1.0);
        let half = self.scalar(name, 0.5);
        let scaled = self.fresh(name);
        self.node("Div", name, &[x, &sqrt2], scaled.clone(), vec![]);
        let erf = self.fresh(name);
        self.node("Erf", name, &[&scaled], erf.clone(), vec![]);
        let one_plus = self.fresh(name);
        self.node("Add", name, &[&erf, &one], one_plus.clone(), vec![]);
        let times = self.fresh(name);
        self.node("Mul", name, &[x, &one_plus], times.clone(), vec![]);
        self.node("Mul", name, &[&times, &half], out, vec![])
    }

    /// Multi-head self-attention on `[batch, n, d]` tokens, as products: the packed Q/K/V
    /// projection, each head's softmax of `q k^T / sqrt(head_dim)`, then the output
    /// projection.
    fn attention(
        &mut self,
        layer: &ResolvedLayer,
        x: &str,
        out: String,
    ) -> Result<String, ExportError> {
        let name = layer.name.as_str();
        let Shape::Tokens { d, .. } = layer.input else {
            unreachable!("a resolved attention layer reads tokens")
        };
        let (heads, hd) = layer.config.heads_of(d).expect("an attention layer");
        let (h, hd64) = (heads as i64, hd as i64);
        // [batch, n, 3 h hd]
        let qkv = self.fresh(name);
        let in_w = format!("{name}.in_proj_weight");
        let in_b = format!("{name}.in_proj_bias");
        self.matmul_add(name, x, &in_w, Some(&in_b), qkv.clone())?;
        // [batch, n, 3, h, hd] -> [3, batch, h, n, hd]
        let split_shape = self.int_tensor(name, &[0, 0, 3, h, hd64]);
        let split = self.fresh(name);
        self.node(
            "Reshape",
            name,
            &[&qkv, &split_shape],
            split.clone(),
            vec![],
        );
        let per_head = self.fresh(name);
        let perm = ints("perm", &[2, 0, 3, 1, 4]);
        self.node("Transpose", name, &[&split], per_head.clone(), vec![perm]);
        let mut qkv_parts = Vec::new();
        for i in 0..3 {
            let index = self.fresh(name);
            let mut t = TensorProto::new();
            t.name = index.clone();
            t.data_type = 7;
            t.int64_data = vec![i];
            self.graph.initializer.push(t);
            let part = self.fresh(name);
            let axis = vec![int("axis", 0)];
            qkv_parts.push(self.node("Gather", name, &[&per_head, &index], part, axis));
        }
        let [q, k, v] = [&qkv_parts[0], &qkv_parts[1], &qkv_parts[2]];
        // [batch, h, n, n] scores
        let kt = self.fresh(name);
        self.node(
            "Transpose",
            name,
            &[k],
            kt.clone(),
            vec![ints("perm", &[0, 1, 3, 2])],
        );
        let raw = self.fresh(name);
        self.node("MatMul", name, &[q, &kt], raw.clone(), vec![]);
        let scale = self.scalar(name, 1.0 / (hd as f32).sqrt());
        let scaled = self.fresh(name);
        self.node("Mul", name, &[&raw, &scale], scaled.clone(), vec![]);
        let weights = self.fresh(name);
        self.node(
            "Softmax",
            name,
            &[&scaled],
            weights.clone(),
            vec![int("axis", -1)],
        );
        // [batch, h, n, hd] -> [batch, n, h hd]
        let mixed = self.fresh(name);
        self.node("MatMul", name, &[&weights, v], mixed.clone(), vec![]);
        let back = self.fresh(name);
        self.node(
            "Transpose",
            name,
            &[&mixed],
            back.clone(),
            vec![ints("perm", &[0, 2, 1, 3])],
        );
        let joined_shape = self.int_tensor(name, &[0, 0, h * hd64]);
        let joined = self.fresh(name);
        self.node(
            "Reshape",
            name,
            &[&back, &joined_shape],
            joined.clone(),
            vec![],
        );
        let out_w = format!("{name}.out_proj.weight");
        let out_b = format!("{name}.out_proj.bias");
        self.matmul_add(name, &joined, &out_w, Some(&out_b), out)
    }
}
