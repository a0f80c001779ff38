//! An ONNX graph, parsed by `onnx-ir`, as the plan's layers and their weights: one layer per
//! supported node (PyTorch's erf-form GELU as one), each reading the layer that produced its
//! input, parameters named `LAYER.weight`, `LAYER.bias`, ... in PyTorch's layouts. This
//! file walks the graph and keeps the values; `layers.rs` turns each kind of node into its
//! layer.

mod layers;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use onnx_ir::node::gelu::GeluApproximate;
use onnx_ir::node::reduce::ReduceAxes;
use onnx_ir::node::reshape::ReshapeInput;
use onnx_ir::{ArgType, Argument, Node, OnnxGraph, OnnxGraphBuilder, TensorDataExt};

use super::gelu::ErfGelu;
use super::{OnnxError, OnnxModel, check};
use crate::layers::Gelu;
use crate::model::stack::INPUT;
use crate::model::{HostTensor, Layer, LayerConfig, StackConfig};

/// The operators the import takes, as its errors list them, besides the one-node kinds of
/// `layers/` ([`supported_ops`] lists both).
const SUPPORTED_OPS: &[&str] = &[
    "Conv (groups, strides, symmetric pads)",
    "BatchNormalization",
    "Gelu (also PyTorch's Erf form)",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "ReduceMean over height and width",
    "Add",
    "Concat",
    "Flatten",
    "Reshape to [batch, features]",
    "Gemm",
    "MatMul (+ Add)",
    "LayerNormalization (last axis)",
    "Dropout",
    "Identity",
];

/// Every operator the import takes, as its errors list them.
pub fn supported_ops() -> String {
    let mut ops: Vec<&str> = SUPPORTED_OPS.to_vec();
    ops.extend(LayerConfig::read_ops());
    ops.join(", ")
}

/// The batch norm's and layer norm's epsilon in the explorer (PyTorch's default).
const EPSILON: f64 = 1e-5;

/// Reads an ONNX model from its bytes; `path` names it in errors and locates its external
/// data.
pub fn import_bytes(bytes: &[u8], path: &Path) -> Result<OnnxModel, OnnxError> {
    let checked = check::model(bytes, path)?;
    let graph = parse(bytes, path, checked.external)?;
    let mut importer = Importer::new(path);
    importer.modules = checked.modules;
    importer.run(&graph)
}

/// Runs `onnx-ir` on the checked bytes (on the file itself when tensors live beside it).
/// A panic inside the parser is reported as the file's error, not passed on.
fn parse(bytes: &[u8], path: &Path, external: bool) -> Result<OnnxGraph, OnnxError> {
    let run = || match external {
        true => OnnxGraphBuilder::new().parse_file(path),
        false => OnnxGraphBuilder::new().parse_bytes(bytes),
    };
    let format = |message: String| OnnxError::Format {
        path: path.into(),
        message,
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(graph)) => Ok(graph),
        Ok(Err(e)) => Err(format(e.to_string())),
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "no message".into());
            Err(format(format!("the ONNX parser failed: {text}")))
        }
    }
}

/// Whether a value is an image (`[batch, c, h, w]`) or flat features (`[batch, f]`) to the
/// explorer (a global pool's `[batch, c, 1, 1]` is already flat).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Image,
    Flat,
}

/// A value of the ONNX graph as the layer that produces it.
#[derive(Clone, Debug)]
struct Value {
    layer: String,
    kind: Kind,
}

/// A constant tensor of the graph: its shape and values.
struct Constant {
    dims: Vec<usize>,
    values: Vec<f32>,
}

struct Importer {
    path: PathBuf,
    layers: Vec<Layer>,
    params: Vec<HostTensor>,
    values: HashMap<String, Value>,
    names: HashSet<String>,
    gelu: ErfGelu,
    /// The exporting framework's module of each weight (see [`check::Checked::modules`]).
    modules: HashMap<u64, String>,
}

impl Importer {
    fn new(path: &Path) -> Self {
        Self {
            path: path.into(),
            layers: Vec::new(),
            params: Vec::new(),
            values: HashMap::new(),
            names: HashSet::from([INPUT.to_string()]),
            gelu: ErfGelu::default(),
            modules: HashMap::new(),
        }
    }

    fn run(mut self, graph: &OnnxGraph) -> Result<OnnxModel, OnnxError> {
        let input = self.input(graph)?;
        for node in &graph.nodes {
            self.node(node)?;
        }
        let [output] = graph.outputs.as_slice() else {
            return Err(self.network_error(format!(
                "the graph has {} outputs; the explorer takes one, the class scores",
                graph.outputs.len()
            )));
        };
        let last = self.layers.last().and_then(|l| l.name.clone());
        let out = self.values.get(&output.name).map(|v| v.layer.clone());
        if out.is_none() || out != last {
            return Err(self.network_error(format!(
                "the graph's output {:?} is not its last node's",
                output.name
            )));
        }
        let stack = StackConfig {
            input,
            layers: self.layers,
        };
        check_params(&stack, &self.params, &self.path)?;
        Ok(OnnxModel {
            stack,
            params: self.params,
        })
    }

    fn network_error(&self, reason: String) -> OnnxError {
        OnnxError::Format {
            path: self.path.clone(),
            message: reason,
        }
    }

    /// The graph's one input: a float image of fixed channels, height and width.
    fn input(&mut self, graph: &OnnxGraph) -> Result<[usize; 3], OnnxError> {
        let inputs: Vec<&Argument> = graph.inputs.iter().filter(|a| !a.is_static()).collect();
        let describe = |a: &Argument| format!("{:?} {:?}", a.name, a.ty);
        let fail = |found: String| OnnxError::Input {
            path: self.path.clone(),
            found,
        };
        let [arg] = inputs.as_slice() else {
            let all: Vec<String> = inputs.iter().map(|a| describe(a)).collect();
            return Err(fail(format!("{} inputs: {}", inputs.len(), all.join(", "))));
        };
        let ArgType::Tensor(t) = &arg.ty else {
            return Err(fail(describe(arg)));
        };
        let dims = t.static_shape.clone().unwrap_or_default();
        let float = matches!(t.dtype, onnx_ir::DType::F32);
        match dims.as_slice() {
            [_, Some(c), Some(h), Some(w)] if float && c * h * w > 0 => {
                self.values.insert(
                    arg.name.clone(),
                    Value {
                        layer: INPUT.into(),
                        kind: Kind::Image,
                    },
                );
                Ok([*c, *h, *w])
            }
            _ => Err(fail(format!(
                "{:?} of {:?}, shape {}",
                arg.name,
                t.dtype,
                shape_text(&dims)
            ))),
        }
    }

    fn node(&mut self, node: &Node) -> Result<(), OnnxError> {
        match node {
            Node::Conv2d(n) => self.conv(node, &n.config),
            Node::BatchNormalization(n) => self.batch_norm(node, &n.config),
            Node::Gelu(n) => match n.config.approximate {
                GeluApproximate::Exact => self.simple(node, Gelu::default()),
                GeluApproximate::Tanh => {
                    Err(self.node_error(node, "GELU's tanh approximation is not supported"))
                }
            },
            Node::MaxPool2d(n) => {
                let c = &n.config;
                self.pool(
                    node,
                    c.kernel_size,
                    c.strides,
                    &c.padding,
                    c.dilation,
                    c.ceil_mode,
                )
            }
            Node::AveragePool2d(n) => {
                let c = &n.config;
                self.pool(
                    node,
                    c.kernel_size,
                    c.strides,
                    &c.padding,
                    c.dilation,
                    c.ceil_mode,
                )
            }
            Node::GlobalAveragePool(_) => self.global_pool(node),
            Node::ReduceMean(n) => match &n.config.axes {
                ReduceAxes::Static(axes) if axes[..] == [2, 3] => self.global_pool(node),
                _ => Err(self.node_error(node, "only a mean over height and width is supported")),
            },
            Node::Flatten(n) if n.config.axis == 1 => self.flatten(node),
            Node::Reshape(n) => match &n.config.shape {
                ReshapeInput::Static(shape) if shape.len() == 2 && shape[0] <= 0 => {
                    self.flatten(node)
                }
                _ => Err(self.node_error(node, "only a reshape to [batch, features] is supported")),
            },
            Node::Linear(n) => self.linear(node, 1.0, 1.0, n.config.transpose_weight),
            Node::Gemm(n) => {
                let c = &n.config;
                if c.trans_a != 0 {
                    return Err(self.node_error(node, "a Gemm with transA is not supported"));
                }
                self.linear(node, c.alpha, c.beta, c.trans_b != 0)
            }
            Node::MatMul(_) => self.linear(node, 1.0, 1.0, false),
            Node::LayerNormalization(n) => self.layer_norm(node, n.config.axis, n.config.epsilon),
            Node::Concat(n) if n.config.axis == 1 => self.merge(node, true),
            Node::Add(_) => self.add(node),
            Node::Mul(_) | Node::Div(_) | Node::Erf(_) => self.gelu_part(node),
            Node::Dropout(_) | Node::Identity(_) => self.alias(node),
            Node::Constant(_) => Ok(()),
            other => match LayerConfig::read_from(&Self::op(other)) {
                Some(config) => self.simple(node, config),
                None => Err(self.unsupported(node)),
            },
        }
    }

    fn op(node: &Node) -> String {
        format!("{:?}", node.node_type())
    }

    fn unsupported(&self, node: &Node) -> OnnxError {
        OnnxError::Unsupported {
            path: self.path.clone(),
            node: node.name().into(),
            op: Self::op(node),
        }
    }

    fn node_error(&self, node: &Node, reason: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            path: self.path.clone(),
            node: node.name().into(),
            op: Self::op(node),
            reason: reason.into(),
        }
    }

    /// The layer value behind a node's input.
    fn value(&self, node: &Node, arg: &Argument) -> Result<Value, OnnxError> {
        if let Some(v) = self.values.get(&arg.name) {
            return Ok(v.clone());
        }
        Err(match self.gelu.origin(&arg.name) {
            Some(o) => self.node_error(
                node,
                format!(
                    "reads {:?}, from node {:?} ({}), which the explorer takes only as part of GELU's erf form",
                    arg.name, o.node, o.op
                ),
            ),
            None => self.node_error(
                node,
                format!("reads {:?}, which is not a supported layer's output", arg.name),
            ),
        })
    }

    /// The node's first input, which must be of `kind`.
    fn first(&self, node: &Node, kind: Kind) -> Result<Value, OnnxError> {
        let arg = node
            .inputs()
            .first()
            .ok_or_else(|| self.node_error(node, "has no input"))?;
        let v = self.value(node, arg)?;
        if v.kind != kind {
            let (want, got) = match kind {
                Kind::Image => ("an image [batch, c, h, w]", "flat features"),
                Kind::Flat => ("flat features [batch, f]", "an image"),
            };
            return Err(self.node_error(node, format!("takes {want} but gets {got}")));
        }
        Ok(v)
    }

    /// A constant input (a weight): its shape and values as f32.
    fn constant(&self, node: &Node, index: usize) -> Result<Option<Constant>, OnnxError> {
        let Some(arg) = node.inputs().get(index).filter(|a| !a.is_optional()) else {
            return Ok(None);
        };
        let data = arg.value().ok_or_else(|| {
            self.node_error(
                node,
                format!("input {:?} must be a constant (a weight)", arg.name),
            )
        })?;
        let values = data.to_f32_vec().map_err(|e| {
            self.node_error(node, format!("input {:?} is not numeric: {e:?}", arg.name))
        })?;
        let dims = data.shape().to_vec();
        Ok(Some(Constant { dims, values }))
    }

    fn required(&self, node: &Node, index: usize, what: &str) -> Result<Constant, OnnxError> {
        self.constant(node, index)?
            .ok_or_else(|| self.node_error(node, format!("has no {what}")))
    }

    /// A unique layer name: the exporting framework's module of the node's weight (`stem`,
    /// `blocks.0.c1`), else the parser's name of the node (`relu3`).
    fn name_for(&mut self, node: &Node) -> String {
        let weight = node.inputs().get(1).and_then(|a| a.value());
        let module = weight
            .and_then(|w| w.to_f32_vec().ok())
            .and_then(|v| self.modules.get(&check::weight_hash(v.into_iter())))
            .cloned();
        let base: String = module
            .unwrap_or_else(|| match node {
                // the last node of GELU's erf form
                Node::Mul(_) => "gelu".into(),
                _ => node.name().to_string(),
            })
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                    true => c,
                    false => '_',
                },
            )
            .collect();
        let base = match base.is_empty() {
            true => "layer".to_string(),
            false => base,
        };
        let mut name = base.clone();
        let mut n = 2;
        while !self.names.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        name
    }

    /// Appends a layer reading `source`, producing the node's first output as `kind`;
    /// returns the layer's name (its parameters' prefix).
    fn push(
        &mut self,
        node: &Node,
        config: impl Into<LayerConfig>,
        source: Option<&Value>,
        kind: Kind,
    ) -> String {
        let name = self.name_for(node);
        let previous = self.layers.last().and_then(|l| l.name.clone());
        let previous = previous.unwrap_or_else(|| INPUT.to_string());
        let mut layer = Layer::named(name.clone(), config);
        if let Some(source) = source
            && source.layer != previous
        {
            layer = layer.reading(source.layer.clone());
        }
        self.layers.push(layer);
        if let Some(out) = node.outputs().first() {
            let value = Value {
                layer: name.clone(),
                kind,
            };
            self.values.insert(out.name.clone(), value);
        }
        name
    }

    fn param(&mut self, layer: &str, what: &str, dims: Vec<usize>, values: Vec<f32>) {
        self.params.push(HostTensor {
            name: format!("{layer}.{what}"),
            dims,
            values,
        });
    }
}

fn shape_text(dims: &[Option<usize>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("?".into(), |d| d.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Every parameter the network needs is in the file with its shape (a weight that does not
/// fit its layer's input is the error here, naming both shapes).
fn check_params(stack: &StackConfig, params: &[HostTensor], path: &Path) -> Result<(), OnnxError> {
    let layers = stack.resolve(None).map_err(|source| OnnxError::Network {
        path: path.into(),
        source,
    })?;
    let found: HashMap<&str, &HostTensor> = params.iter().map(|p| (p.name.as_str(), p)).collect();
    for layer in &layers {
        for (key, dims) in layer.parameters() {
            let fail = |reason: String| OnnxError::Tensor {
                path: path.into(),
                tensor: key.clone(),
                reason,
            };
            match found.get(key.as_str()) {
                None => return Err(fail("is missing".into())),
                Some(p) if p.dims != dims => {
                    return Err(fail(format!(
                        "has shape {:?}, but layer {} ({}) on its input {} needs {dims:?}",
                        p.dims,
                        layer.name,
                        layer.kind.type_name(),
                        layer.input
                    )));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}
