//! Any stack as one burn module: the layers' modules in order, and a forward pass that
//! walks them. The built-in models and the plans' own networks both train through this.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Gelu, Linear, LinearConfig,
    PaddingConfig2d, Relu, Tanh,
};
use burn::tensor::{Device, Tensor};

use super::stack::{LayerConfig, Shape, StackConfig, StackError, prunable_specs};
use super::{LayerHandle, LayerHandleMut};
use crate::kernels::{batch_norm, conv2d, linear, max_pool2d};
use crate::prune::LayerSpec;

/// `[batch, c, h, w]` to `[batch, c * h * w]`.
#[derive(Module, Debug, Default)]
pub struct Flatten;

/// One layer's burn module.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum LayerModule {
    Conv2d(Conv2d),
    Linear(Linear),
    MaxPool(MaxPool2d),
    AvgPool(AvgPool2d),
    BatchNorm(BatchNorm),
    Relu(Relu),
    Gelu(Gelu),
    Tanh(Tanh),
    Dropout(Dropout),
    Flatten(Flatten),
}

/// A stack's modules, with the layers' names.
#[derive(Module, Debug)]
pub struct Network {
    layers: Vec<LayerModule>,
    #[module(skip)]
    names: Vec<String>,
    /// The prunable layers, in order.
    #[module(skip)]
    specs: Vec<LayerSpec>,
}

/// What a prunable layer receives: `[batch, c, h, w]` images for a convolution (with the
/// convolution, for its geometry), `[batch, features]` for a linear layer.
pub enum LayerInput<'a> {
    Conv2d(&'a Conv2d, &'a Tensor<4>),
    Linear(&'a Tensor<2>),
}

/// Between layers: images, or flat features after a flatten.
enum Activation {
    Image(Tensor<4>),
    Flat(Tensor<2>),
}

impl Network {
    /// Builds the modules of `stack`, checked against `classes` outputs.
    pub fn new(stack: &StackConfig, classes: usize, device: &Device) -> Result<Self, StackError> {
        let resolved = stack.resolve(Some(classes))?;
        let mut layers = Vec::with_capacity(resolved.len());
        for l in &resolved {
            let c = match l.input {
                Shape::Image { c, .. } => c,
                Shape::Flat(n) => n,
            };
            layers.push(match &l.config {
                LayerConfig::Conv2d {
                    out,
                    kernel,
                    stride,
                    padding,
                    ..
                } => {
                    let p = *padding;
                    LayerModule::Conv2d(
                        Conv2dConfig::new([c, *out], [*kernel, *kernel])
                            .with_stride([*stride, *stride])
                            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                            .init(device),
                    )
                }
                LayerConfig::Linear { out, .. } => {
                    LayerModule::Linear(LinearConfig::new(l.input.numel(), *out).init(device))
                }
                LayerConfig::Maxpool2d { kernel, stride } => LayerModule::MaxPool(
                    MaxPool2dConfig::new([*kernel, *kernel])
                        .with_strides([stride.unwrap_or(*kernel); 2])
                        .init(),
                ),
                LayerConfig::Avgpool2d { kernel, stride } => LayerModule::AvgPool(
                    AvgPool2dConfig::new([*kernel, *kernel])
                        .with_strides([stride.unwrap_or(*kernel); 2])
                        .init(),
                ),
                LayerConfig::Batchnorm2d { .. } => {
                    LayerModule::BatchNorm(BatchNormConfig::new(c).init(device))
                }
                LayerConfig::Relu => LayerModule::Relu(Relu::new()),
                LayerConfig::Gelu => LayerModule::Gelu(Gelu::new()),
                LayerConfig::Tanh => LayerModule::Tanh(Tanh::new()),
                LayerConfig::Dropout { p } => LayerModule::Dropout(DropoutConfig::new(*p).init()),
                LayerConfig::Flatten => LayerModule::Flatten(Flatten),
            });
        }
        Ok(Self {
            layers,
            specs: prunable_specs(&resolved),
            names: resolved.into_iter().map(|l| l.name).collect(),
        })
    }

    /// `[batch, c, h, w]` images to `[batch, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_seeing(images, &mut |_| {})
    }

    /// The forward pass, showing `see` the input of every prunable layer, in order.
    pub fn forward_seeing(
        &self,
        images: Tensor<4>,
        see: &mut dyn FnMut(LayerInput<'_>),
    ) -> Tensor<2> {
        use Activation::{Flat, Image};
        let mut x = Image(images);
        let mut i = 0;
        while i < self.layers.len() {
            match (&self.layers[i], &x) {
                (LayerModule::Conv2d(c), Image(t)) => see(LayerInput::Conv2d(c, t)),
                (LayerModule::Linear(_), Flat(t)) => see(LayerInput::Linear(t)),
                _ => {}
            }
            // ReLU then max pooling: pooling first gives the same values and gradients on a
            // fraction of the data (max and ReLU commute)
            if let (LayerModule::Relu(relu), Some(LayerModule::MaxPool(pool)), Image(_)) =
                (&self.layers[i], self.layers.get(i + 1), &x)
            {
                // the activation moves into the pool: no second handle keeps its buffer
                let Image(t) = x else {
                    unreachable!("matched above")
                };
                x = Image(relu.forward(max_pool2d(pool, t)));
                i += 2;
                continue;
            }
            x = match (&self.layers[i], x) {
                (LayerModule::Conv2d(c), Image(t)) => Image(conv2d(c, t)),
                (LayerModule::Linear(l), Flat(t)) => Flat(linear(l, t)),
                (LayerModule::MaxPool(p), Image(t)) => Image(max_pool2d(p, t)),
                (LayerModule::AvgPool(p), Image(t)) => Image(p.forward(t)),
                (LayerModule::BatchNorm(b), Image(t)) => Image(batch_norm(b, t)),
                (LayerModule::Relu(r), Image(t)) => Image(r.forward(t)),
                (LayerModule::Relu(r), Flat(t)) => Flat(r.forward(t)),
                (LayerModule::Gelu(g), Image(t)) => Image(g.forward(t)),
                (LayerModule::Gelu(g), Flat(t)) => Flat(g.forward(t)),
                (LayerModule::Tanh(h), Image(t)) => Image(h.forward(t)),
                (LayerModule::Tanh(h), Flat(t)) => Flat(h.forward(t)),
                (LayerModule::Dropout(d), Image(t)) => Image(d.forward(t)),
                (LayerModule::Dropout(d), Flat(t)) => Flat(d.forward(t)),
                (LayerModule::Flatten(_), Image(t)) => Flat(t.flatten::<2>(1, 3)),
                (LayerModule::Flatten(_), Flat(t)) => Flat(t),
                (layer, _) => unreachable!(
                    "{}: shapes are checked when the stack is built ({layer:?})",
                    self.names[i]
                ),
            };
            i += 1;
        }
        match x {
            Flat(t) => t,
            Image(t) => t.flatten::<2>(1, 3),
        }
    }

    /// The prunable layers (convolutions and linear layers), in order.
    pub fn prunable(&self) -> Vec<LayerHandle<'_>> {
        self.layers
            .iter()
            .filter_map(|l| match l {
                LayerModule::Conv2d(c) => Some(LayerHandle::Conv2d(c)),
                LayerModule::Linear(l) => Some(LayerHandle::Linear(l)),
                _ => None,
            })
            .collect()
    }

    pub fn prunable_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
        self.layers
            .iter_mut()
            .filter_map(|l| match l {
                LayerModule::Conv2d(c) => Some(LayerHandleMut::Conv2d(c)),
                LayerModule::Linear(l) => Some(LayerHandleMut::Linear(l)),
                _ => None,
            })
            .collect()
    }

    /// Batch norms by name.
    pub fn batch_norms(&self) -> Vec<(&str, &BatchNorm)> {
        self.names
            .iter()
            .zip(&self.layers)
            .filter_map(|(n, l)| match l {
                LayerModule::BatchNorm(b) => Some((n.as_str(), b)),
                _ => None,
            })
            .collect()
    }

    pub fn batch_norms_mut(&mut self) -> Vec<(&str, &mut BatchNorm)> {
        self.names
            .iter()
            .zip(self.layers.iter_mut())
            .filter_map(|(n, l)| match l {
                LayerModule::BatchNorm(b) => Some((n.as_str(), b)),
                _ => None,
            })
            .collect()
    }

    /// The prunable layers' names and shapes, as the stack gives them.
    pub fn layer_specs(&self) -> Vec<LayerSpec> {
        self.specs.clone()
    }
}
