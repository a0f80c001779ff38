//! One method per kind of node: the layer it becomes, its parameters, and the checks that
//! the explorer's layer can compute what the node does.

use onnx_ir::node::batch_norm::BatchNormConfig;
use onnx_ir::node::conv2d::Conv2dConfig;
use onnx_ir::node::padding::{AutoPad, PaddingConfig2d};
use onnx_ir::{Argument, Node, TensorDataExt};

use super::{EPSILON, Importer, Kind, Value};
use crate::layers::{
    Add, Avgpool2d, Batchnorm2d, Concat, Conv2d, Flatten, Gelu, GlobalAvgpool, Layernorm, Linear,
    Maxpool2d,
};
use crate::model::{Layer, LayerConfig};
use crate::onnx::OnnxError;
use crate::onnx::gelu::{Operand, Origin, Step};

impl Importer {
    /// A parameterless layer that keeps its input's kind (an activation).
    pub(super) fn simple(
        &mut self,
        node: &Node,
        config: impl Into<LayerConfig>,
    ) -> Result<(), OnnxError> {
        let v = self.value(node, &node.inputs()[0])?;
        self.push(node, config, Some(&v), v.kind);
        Ok(())
    }

    pub(super) fn conv(&mut self, node: &Node, c: &Conv2dConfig) -> Result<(), OnnxError> {
        let x = self.first(node, Kind::Image)?;
        let [kh, kw] = c.kernel_size;
        let [sh, sw] = c.stride;
        if kh != kw || sh != sw {
            return Err(self.node_error(
                node,
                format!("kernel {kh}x{kw}, stride {sh}x{sw}: the explorer takes square kernels and strides"),
            ));
        }
        if c.dilation != [1, 1] {
            return Err(
                self.node_error(node, format!("dilation {:?} is not supported", c.dilation))
            );
        }
        let padding = self.symmetric(node, &c.padding, &c.auto_pad)?;
        let weight = self.required(node, 1, "weight")?;
        let bias = self.constant(node, 2)?;
        let out = weight.dims.first().copied().unwrap_or(0);
        let config = Conv2d {
            out,
            kernel: kh,
            stride: sh,
            padding,
            groups: c.groups,
            bias: bias.is_some(),
        };
        let name = self.push(node, config, Some(&x), Kind::Image);
        self.param(&name, "weight", weight.dims, weight.values);
        if let Some(b) = bias {
            self.param(&name, "bias", b.dims, b.values);
        }
        Ok(())
    }

    /// Equal padding on every side, as the explorer's layers take it.
    pub(super) fn symmetric(
        &self,
        node: &Node,
        padding: &PaddingConfig2d,
        auto: &AutoPad,
    ) -> Result<usize, OnnxError> {
        if !matches!(auto, AutoPad::NotSet | AutoPad::Valid) {
            return Err(self.node_error(
                node,
                format!("auto_pad {auto:?} is not supported: export with explicit pads"),
            ));
        }
        match *padding {
            PaddingConfig2d::Valid => Ok(0),
            PaddingConfig2d::Explicit(t, l, b, r) if t == l && l == b && b == r => Ok(t),
            PaddingConfig2d::Explicit(t, l, b, r) => Err(self.node_error(
                node,
                format!(
                    "pads top {t}, left {l}, bottom {b}, right {r}: the explorer takes equal pads"
                ),
            )),
        }
    }

    pub(super) fn pool(
        &mut self,
        node: &Node,
        kernel: [usize; 2],
        strides: [usize; 2],
        padding: &PaddingConfig2d,
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> Result<(), OnnxError> {
        let x = self.first(node, Kind::Image)?;
        let pad = self.symmetric(node, padding, &AutoPad::NotSet)?;
        if kernel[0] != kernel[1]
            || strides[0] != strides[1]
            || pad != 0
            || ceil_mode
            || dilation != [1, 1]
        {
            return Err(self.node_error(
                node,
                format!("kernel {kernel:?}, strides {strides:?}, pads {pad}, ceil_mode {ceil_mode}: the explorer takes square windows without padding"),
            ));
        }
        let stride = (strides[0] != kernel[0]).then_some(strides[0]);
        let config = match node {
            Node::MaxPool2d(_) => LayerConfig::from(Maxpool2d {
                kernel: kernel[0],
                stride,
            }),
            _ => LayerConfig::from(Avgpool2d {
                kernel: kernel[0],
                stride,
            }),
        };
        self.push(node, config, Some(&x), Kind::Image);
        Ok(())
    }

    pub(super) fn global_pool(&mut self, node: &Node) -> Result<(), OnnxError> {
        let x = self.first(node, Kind::Image)?;
        self.push(node, GlobalAvgpool::default(), Some(&x), Kind::Flat);
        Ok(())
    }

    /// Flatten of an image; of flat features (after a global pool), nothing.
    pub(super) fn flatten(&mut self, node: &Node) -> Result<(), OnnxError> {
        let x = self.value(node, &node.inputs()[0])?;
        match x.kind {
            Kind::Image => {
                self.push(node, Flatten::default(), Some(&x), Kind::Flat);
            }
            Kind::Flat => self.set_output(node, x),
        }
        Ok(())
    }

    pub(super) fn set_output(&mut self, node: &Node, v: Value) {
        if let Some(out) = node.outputs().first() {
            self.values.insert(out.name.clone(), v);
        }
    }

    pub(super) fn alias(&mut self, node: &Node) -> Result<(), OnnxError> {
        let x = self.value(node, &node.inputs()[0])?;
        self.set_output(node, x);
        Ok(())
    }

    /// `y = alpha * x @ W^T + beta * b` as a linear layer with `W` `[out, in]`
    /// (`transposed`: stored so; otherwise stored `[in, out]`, as MatMul's operand).
    pub(super) fn linear(
        &mut self,
        node: &Node,
        alpha: f32,
        beta: f32,
        transposed: bool,
    ) -> Result<(), OnnxError> {
        let x = self.first(node, Kind::Flat)?;
        let w = self.required(node, 1, "weight")?;
        let [rows, cols] = w.dims[..] else {
            return Err(self.node_error(
                node,
                format!("weight of shape {:?}: the explorer takes a matrix", w.dims),
            ));
        };
        let (out, inp) = if transposed {
            (rows, cols)
        } else {
            (cols, rows)
        };
        let mut weight = vec![0.0f32; out * inp];
        for o in 0..out {
            for i in 0..inp {
                let v = if transposed {
                    w.values[o * inp + i]
                } else {
                    w.values[i * out + o]
                };
                weight[o * inp + i] = alpha * v;
            }
        }
        let bias = match self.constant(node, 2)? {
            Some(b) if b.values.len() == out => {
                Some(b.values.iter().map(|v| beta * v).collect::<Vec<_>>())
            }
            Some(b) => {
                return Err(self.node_error(node, format!("bias of shape {:?} for {out} outputs: the explorer takes one bias per output", b.dims)));
            }
            None => None,
        };
        let config = Linear {
            out,
            bias: bias.is_some(),
        };
        let name = self.push(node, config, Some(&x), Kind::Flat);
        self.param(&name, "weight", vec![out, inp], weight);
        if let Some(b) = bias {
            self.param(&name, "bias", vec![out], b);
        }
        Ok(())
    }

    pub(super) fn batch_norm(&mut self, node: &Node, c: &BatchNormConfig) -> Result<(), OnnxError> {
        let x = self.first(node, Kind::Image)?;
        let epsilon = match c {
            BatchNormConfig::Static(s) => s.epsilon,
            BatchNormConfig::Runtime(r) => r.epsilon,
        };
        let [scale, shift, mean, var] = [1, 2, 3, 4].map(|i| self.constant(node, i));
        let (Some(scale), Some(shift), Some(mean), Some(var)) = (scale?, shift?, mean?, var?)
        else {
            return Err(self.node_error(node, "needs constant scale, bias, mean and variance"));
        };
        let name = self.push(node, Batchnorm2d::default(), Some(&x), Kind::Image);
        // the explorer divides by sqrt(var + 1e-5): the file's epsilon moves into the
        // variance, which gives the same outputs
        let shift_eps = (epsilon - EPSILON) as f32;
        let var: Vec<f32> = var.values.iter().map(|v| v + shift_eps).collect();
        self.param(&name, "weight", scale.dims, scale.values);
        self.param(&name, "bias", shift.dims, shift.values);
        self.param(&name, "running_mean", mean.dims, mean.values);
        self.param(&name, "running_var", vec![var.len()], var);
        Ok(())
    }

    pub(super) fn layer_norm(
        &mut self,
        node: &Node,
        axis: i64,
        epsilon: f64,
    ) -> Result<(), OnnxError> {
        let x = self.first(node, Kind::Flat)?;
        if !(axis == -1 || axis == 1) {
            return Err(self.node_error(
                node,
                format!("axis {axis}: the explorer normalizes the last axis"),
            ));
        }
        if (epsilon - EPSILON).abs() > 1e-9 {
            return Err(self.node_error(
                node,
                format!("epsilon {epsilon}: the explorer's layer norm uses 1e-5"),
            ));
        }
        let scale = self.required(node, 1, "scale")?;
        let shift = match self.constant(node, 2)? {
            Some(b) => b.values,
            None => vec![0.0; scale.values.len()],
        };
        let name = self.push(node, Layernorm::default(), Some(&x), Kind::Flat);
        let d = scale.values.len();
        self.param(&name, "weight", vec![d], scale.values);
        self.param(&name, "bias", vec![d], shift);
        Ok(())
    }

    /// `add` or `concat` of layer values of one kind.
    pub(super) fn merge(&mut self, node: &Node, concat: bool) -> Result<(), OnnxError> {
        let mut sources = Vec::new();
        for arg in node.inputs() {
            sources.push(self.value(node, arg)?);
        }
        let kind = sources[0].kind;
        if sources.iter().any(|s| s.kind != kind) {
            return Err(self.node_error(node, "joins images with flat features"));
        }
        let inputs = sources.iter().map(|s| s.layer.clone()).collect();
        let config = match concat {
            true => LayerConfig::from(Concat { inputs }),
            false => LayerConfig::from(Add { inputs }),
        };
        self.push(node, config, None, kind);
        Ok(())
    }

    /// A residual `Add` of two layers, a bias after a MatMul, or a step of GELU's erf form.
    pub(super) fn add(&mut self, node: &Node) -> Result<(), OnnxError> {
        let inputs = node.inputs();
        let constants: Vec<bool> = inputs.iter().map(|a| a.value().is_some()).collect();
        match constants[..] {
            [false, false] if inputs.iter().all(|a| self.values.contains_key(&a.name)) => {
                self.merge(node, false)
            }
            [false, true] | [true, false] => {
                if self.gelu_part(node).is_ok() {
                    return Ok(());
                }
                self.bias_after_matmul(node, usize::from(constants[0]))
            }
            _ => self.gelu_part(node),
        }
    }

    /// `Add(MatMul(x, W), b)` that the parser left apart: `b` becomes the linear layer's bias.
    pub(super) fn bias_after_matmul(
        &mut self,
        node: &Node,
        constant: usize,
    ) -> Result<(), OnnxError> {
        let v = self.value(node, &node.inputs()[1 - constant])?;
        let b = self.required(node, constant, "bias")?;
        let not_matmul = || "adds a constant to something other than a MatMul".to_string();
        let last = self.layers.last_mut();
        let outcome = match last.filter(|l| l.name.as_deref() == Some(v.layer.as_str())) {
            Some(Layer {
                config: LayerConfig::Linear(Linear { out, bias }),
                ..
            }) if !*bias && b.values.len() == *out => {
                *bias = true;
                Ok(())
            }
            Some(Layer {
                config: LayerConfig::Linear(Linear { out, .. }),
                ..
            }) => Err(format!("a bias of shape {:?} for {out} outputs", b.dims)),
            _ => Err(not_matmul()),
        };
        outcome.map_err(|reason| self.node_error(node, reason))?;
        let name = v.layer.clone();
        self.param(&name, "bias", vec![b.values.len()], b.values);
        self.set_output(node, v);
        Ok(())
    }

    /// One node of PyTorch's erf-form GELU; the last makes the `gelu` layer.
    pub(super) fn gelu_part<'n>(&mut self, node: &'n Node) -> Result<(), OnnxError> {
        let operand = |a: &'n Argument| Operand {
            name: a.name.as_str(),
            scalar: a
                .value()
                .filter(|d| d.num_elements() == 1)
                .and_then(|d| d.scalar_f64().ok()),
        };
        let inputs = node.inputs();
        let origin = Origin {
            node: node.name().into(),
            op: onnx_op(node).into(),
        };
        let Some(out) = node.outputs().first() else {
            return Err(self.unsupported(node));
        };
        let step = self.gelu.feed(
            origin,
            operand(&inputs[0]),
            inputs.get(1).map(operand),
            &out.name,
        );
        match step {
            Step::Extended => Ok(()),
            Step::Done(x) => {
                let v = self.values.get(&x).cloned().ok_or_else(|| {
                    self.node_error(
                        node,
                        format!("GELU of {x:?}, which is not a supported layer's output"),
                    )
                })?;
                self.push(node, Gelu::default(), Some(&v), v.kind);
                Ok(())
            }
            Step::Unrelated => Err(self.node_error(
                node,
                "the explorer takes Mul, Div and Erf only as parts of GELU's erf form",
            )),
        }
    }
}

/// The ONNX operator a node came from, for the GELU pattern.
fn onnx_op(node: &Node) -> &'static str {
    match node {
        Node::Mul(_) => "Mul",
        Node::Div(_) => "Div",
        Node::Erf(_) => "Erf",
        Node::Add(_) => "Add",
        _ => "other",
    }
}
