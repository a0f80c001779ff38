//! Any network as one burn module: the layers' modules in the network's order, and a forward
//! pass that walks its graph. The built-in models and the plans' own networks both train
//! through this.

mod modules;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Gelu, LayerNorm, LayerNormConfig, Linear,
    LinearConfig, PaddingConfig2d, Relu, Tanh,
};
use burn::tensor::{Device, Tensor};

pub use modules::{
    Add, Concat, Flatten, GlobalAvgPool, MeanTokens, Position, SelfAttention, Tokens,
};

use super::stack::{
    LayerConfig, Outputs, Readers, ResolvedLayer, Shape, Source, StackConfig, StackError,
    prunable_specs,
};
use super::{LayerHandle, LayerHandleMut};
use crate::kernels::{batch_norm, batch_norm_relu, conv2d, gelu, linear, max_pool2d};
use crate::prune::LayerSpec;

/// One layer's burn module.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum LayerModule {
    Conv2d(Conv2d),
    Linear(Linear),
    MaxPool(MaxPool2d),
    AvgPool(AvgPool2d),
    GlobalAvgPool(GlobalAvgPool),
    BatchNorm(BatchNorm),
    LayerNorm(LayerNorm),
    Relu(Relu),
    Gelu(Gelu),
    Tanh(Tanh),
    Dropout(Dropout),
    Flatten(Flatten),
    Tokens(Tokens),
    Position(Position),
    Attention(SelfAttention),
    MeanTokens(MeanTokens),
    Add(Add),
    Concat(Concat),
}

/// A network's modules, with its graph: each layer's name, inputs and shapes.
#[derive(Module, Debug)]
pub struct Network {
    layers: Vec<LayerModule>,
    #[module(skip)]
    graph: Vec<ResolvedLayer>,
    /// How many layers read the input and each layer's output.
    #[module(skip)]
    readers: Readers,
    /// The prunable weights, in order.
    #[module(skip)]
    specs: Vec<LayerSpec>,
}

impl Network {
    /// A network without layers or parameters, made without a device: what holds a
    /// network's place while something that takes it by value (an optimizer step) has it.
    pub fn empty() -> Self {
        Self {
            layers: Vec::new(),
            graph: Vec::new(),
            readers: Readers::of(&[]),
            specs: Vec::new(),
        }
    }
}

/// What a prunable weight multiplies: `[batch, c, h, w]` images for a convolution (with the
/// convolution, for its geometry), `[rows, features]` for a dense layer or a projection
/// (every token a row).
pub enum LayerInput<'a> {
    Conv2d(&'a Conv2d, &'a Tensor<4>),
    Linear(&'a Tensor<2>),
}

/// Between layers: images, flat features, or tokens.
#[derive(Clone)]
enum Activation {
    Image(Tensor<4>),
    Flat(Tensor<2>),
    Tokens(Tensor<3>),
}

/// The module of one resolved layer.
fn module(l: &ResolvedLayer, device: &Device) -> LayerModule {
    let c = l.input.channels();
    match &l.config {
        LayerConfig::Conv2d {
            out,
            kernel,
            stride,
            padding,
            groups,
            bias,
        } => {
            let p = *padding;
            LayerModule::Conv2d(
                Conv2dConfig::new([c, *out], [*kernel, *kernel])
                    .with_stride([*stride, *stride])
                    .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                    .with_groups(*groups)
                    .with_bias(*bias)
                    .init(device),
            )
        }
        LayerConfig::Linear { out, bias } => LayerModule::Linear(
            LinearConfig::new(l.input.last_axis().unwrap_or(c), *out)
                .with_bias(*bias)
                .init(device),
        ),
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
        LayerConfig::GlobalAvgpool => LayerModule::GlobalAvgPool(GlobalAvgPool),
        LayerConfig::Batchnorm2d => LayerModule::BatchNorm(BatchNormConfig::new(c).init(device)),
        LayerConfig::Layernorm => LayerModule::LayerNorm(LayerNormConfig::new(c).init(device)),
        LayerConfig::Relu => LayerModule::Relu(Relu::new()),
        LayerConfig::Gelu => LayerModule::Gelu(Gelu::new()),
        LayerConfig::Tanh => LayerModule::Tanh(Tanh::new()),
        LayerConfig::Dropout { p } => LayerModule::Dropout(DropoutConfig::new(*p).init()),
        LayerConfig::Flatten => LayerModule::Flatten(Flatten),
        LayerConfig::Tokens => LayerModule::Tokens(Tokens),
        LayerConfig::Position => {
            let Shape::Tokens { n, d } = l.input else {
                unreachable!("{}: checked by resolve", l.name)
            };
            LayerModule::Position(Position::new(n, d, device))
        }
        LayerConfig::Attention { .. } => {
            let (heads, head_dim) = l.config.heads_of(c).expect("an attention layer");
            LayerModule::Attention(SelfAttention::new(c, heads, head_dim, device))
        }
        LayerConfig::MeanTokens => LayerModule::MeanTokens(MeanTokens),
        LayerConfig::Add { .. } => LayerModule::Add(Add),
        LayerConfig::Concat { .. } => LayerModule::Concat(Concat),
        LayerConfig::Repeat { .. } => unreachable!("{}: written out by resolve", l.name),
    }
}

impl Network {
    /// Builds the modules of `stack`, checked against `classes` outputs.
    pub fn new(stack: &StackConfig, classes: usize, device: &Device) -> Result<Self, StackError> {
        let graph = stack.resolve(Some(classes))?;
        Ok(Self {
            layers: graph.iter().map(|l| module(l, device)).collect(),
            specs: prunable_specs(&graph),
            readers: Readers::of(&graph),
            graph,
        })
    }

    /// `[batch, c, h, w]` images to `[batch, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_seeing(images, &mut |_| {})
    }

    /// The forward pass, showing `see` what every prunable weight multiplies, in order.
    pub fn forward_seeing(
        &self,
        images: Tensor<4>,
        see: &mut dyn FnMut(LayerInput<'_>),
    ) -> Tensor<2> {
        let mut values = Outputs::new(Activation::Image(images), &self.readers);
        let mut i = 0;
        while i < self.layers.len() {
            // ReLU read only by a max pooling: pooling first gives the same values and
            // gradients on a fraction of the data (max and ReLU commute)
            if let (LayerModule::Relu(relu), Some(LayerModule::MaxPool(pool))) =
                (&self.layers[i], self.layers.get(i + 1))
                && self.feeds_only_the_next(i)
                && let Activation::Image(t) = values.take(self.graph[i].sources[0])
            {
                // the activation moves into the pool: no second handle keeps its buffer
                values.set(i + 1, Activation::Image(relu.forward(max_pool2d(pool, t))));
                i += 2;
                continue;
            }
            // a batch norm read only by a ReLU: both in one pass each way
            if let (LayerModule::BatchNorm(norm), Some(LayerModule::Relu(_))) =
                (&self.layers[i], self.layers.get(i + 1))
                && self.feeds_only_the_next(i)
                && let Activation::Image(t) = values.take(self.graph[i].sources[0])
            {
                values.set(i + 1, Activation::Image(batch_norm_relu(norm, t)));
                i += 2;
                continue;
            }
            let inputs: Vec<Activation> = self.graph[i]
                .sources
                .iter()
                .map(|s| values.take(*s))
                .collect();
            values.set(i, self.step(i, inputs, see));
            i += 1;
        }
        match values.into_last() {
            Some(Activation::Flat(t)) => t,
            Some(Activation::Image(t)) => t.flatten::<2>(1, 3),
            Some(Activation::Tokens(t)) => t.flatten::<2>(1, 2),
            None => unreachable!("a network has layers"),
        }
    }

    /// Whether layer `i` takes images and its output goes to the next layer alone, which
    /// reads nothing else: the two can run as one.
    fn feeds_only_the_next(&self, i: usize) -> bool {
        self.readers.layers[i] == 1
            && self
                .graph
                .get(i + 1)
                .is_some_and(|next| next.sources == [Source::Layer(i)])
            && matches!(self.graph[i].input, Shape::Image { .. })
    }

    /// Layer `i` on its inputs.
    fn step(
        &self,
        i: usize,
        mut inputs: Vec<Activation>,
        see: &mut dyn FnMut(LayerInput<'_>),
    ) -> Activation {
        use Activation::{Flat, Image, Tokens};
        match &self.layers[i] {
            LayerModule::Add(_) => return merged(inputs, true),
            LayerModule::Concat(_) => return merged(inputs, false),
            _ => {}
        }
        let x = inputs.swap_remove(0);
        match (&self.layers[i], x) {
            (LayerModule::Conv2d(c), Image(t)) => {
                see(LayerInput::Conv2d(c, &t));
                Image(conv2d(c, t))
            }
            (LayerModule::Linear(l), Flat(t)) => {
                see(LayerInput::Linear(&t));
                Flat(linear(l, t))
            }
            (LayerModule::Linear(l), Tokens(t)) => {
                // [batch, n, d] -> [batch * n, d] -> [batch, n, out]
                let [batch, n, d] = t.dims();
                let rows = t.reshape([batch * n, d]);
                see(LayerInput::Linear(&rows));
                let out = l.weight.dims()[1];
                Tokens(linear(l, rows).reshape([batch, n, out]))
            }
            (LayerModule::Attention(a), Tokens(t)) => {
                Tokens(a.forward(t, &mut |_, rows| see(LayerInput::Linear(rows))))
            }
            (LayerModule::MaxPool(p), Image(t)) => Image(max_pool2d(p, t)),
            (LayerModule::AvgPool(p), Image(t)) => Image(p.forward(t)),
            // [batch, c, h, w] -> [batch, c]
            (LayerModule::GlobalAvgPool(_), Image(t)) => {
                Flat(t.flatten::<3>(2, 3).mean_dim(2).flatten::<2>(1, 2))
            }
            (LayerModule::BatchNorm(b), Image(t)) => Image(batch_norm(b, t)),
            (LayerModule::LayerNorm(n), Flat(t)) => Flat(n.forward(t)),
            (LayerModule::LayerNorm(n), Tokens(t)) => Tokens(n.forward(t)),
            (LayerModule::Relu(r), x) => {
                x.map(|t| r.forward(t), |t| r.forward(t), |t| r.forward(t))
            }
            (LayerModule::Gelu(_), x) => x.map(gelu, gelu, gelu),
            (LayerModule::Tanh(h), x) => {
                x.map(|t| h.forward(t), |t| h.forward(t), |t| h.forward(t))
            }
            (LayerModule::Dropout(d), x) => {
                x.map(|t| d.forward(t), |t| d.forward(t), |t| d.forward(t))
            }
            (LayerModule::Flatten(_), Image(t)) => Flat(t.flatten::<2>(1, 3)),
            (LayerModule::Flatten(_), Tokens(t)) => Flat(t.flatten::<2>(1, 2)),
            (LayerModule::Flatten(_), Flat(t)) => Flat(t),
            // [batch, c, h, w] -> [batch, h * w, c]
            (LayerModule::Tokens(_), Image(t)) => Tokens(t.flatten::<3>(2, 3).swap_dims(1, 2)),
            (LayerModule::Position(p), Tokens(t)) => Tokens(p.forward(t)),
            // [batch, n, d] -> [batch, d]
            (LayerModule::MeanTokens(_), Tokens(t)) => Flat(t.mean_dim(1).flatten::<2>(1, 2)),
            (layer, _) => unreachable!(
                "{}: shapes are checked when the network is built ({layer:?})",
                self.graph[i].name
            ),
        }
    }

    /// The prunable weights' layers (convolutions, dense layers, attention's two
    /// projections), in order.
    pub fn prunable(&self) -> Vec<LayerHandle<'_>> {
        let mut out = Vec::with_capacity(self.specs.len());
        for l in &self.layers {
            match l {
                LayerModule::Conv2d(c) => out.push(LayerHandle::Conv2d(c)),
                LayerModule::Linear(l) => out.push(LayerHandle::Linear(l)),
                LayerModule::Attention(a) => {
                    out.push(LayerHandle::Linear(&a.in_proj));
                    out.push(LayerHandle::Linear(&a.out_proj));
                }
                _ => {}
            }
        }
        out
    }

    pub fn prunable_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
        let mut out = Vec::with_capacity(self.specs.len());
        for l in &mut self.layers {
            match l {
                LayerModule::Conv2d(c) => out.push(LayerHandleMut::Conv2d(c)),
                LayerModule::Linear(l) => out.push(LayerHandleMut::Linear(l)),
                LayerModule::Attention(a) => {
                    out.push(LayerHandleMut::Linear(&mut a.in_proj));
                    out.push(LayerHandleMut::Linear(&mut a.out_proj));
                }
                _ => {}
            }
        }
        out
    }

    /// The layers with their graph entries, in order.
    pub(super) fn layers(&self) -> impl Iterator<Item = (&ResolvedLayer, &LayerModule)> {
        self.graph.iter().zip(&self.layers)
    }

    pub(super) fn layers_mut(
        &mut self,
    ) -> impl Iterator<Item = (&ResolvedLayer, &mut LayerModule)> {
        self.graph.iter().zip(self.layers.iter_mut())
    }

    /// The network's graph: each layer's name, inputs and shapes.
    pub fn graph(&self) -> &[ResolvedLayer] {
        &self.graph
    }

    /// The prunable weights' names and shapes, as the network gives them.
    pub fn layer_specs(&self) -> Vec<LayerSpec> {
        self.specs.clone()
    }
}

impl Activation {
    /// The same element-wise function on whichever kind of value this is.
    fn map(
        self,
        image: impl FnOnce(Tensor<4>) -> Tensor<4>,
        flat: impl FnOnce(Tensor<2>) -> Tensor<2>,
        tokens: impl FnOnce(Tensor<3>) -> Tensor<3>,
    ) -> Activation {
        match self {
            Activation::Image(t) => Activation::Image(image(t)),
            Activation::Flat(t) => Activation::Flat(flat(t)),
            Activation::Tokens(t) => Activation::Tokens(tokens(t)),
        }
    }
}

/// Inputs of one shape summed (`add`), or side by side on the channel axis.
fn merged(inputs: Vec<Activation>, add: bool) -> Activation {
    macro_rules! merge {
        ($variant:ident, $axis:expr) => {{
            let ts: Vec<_> = inputs
                .into_iter()
                .map(|a| match a {
                    Activation::$variant(t) => t,
                    _ => unreachable!("merged shapes are checked when the network is built"),
                })
                .collect();
            Activation::$variant(if add {
                ts.into_iter()
                    .reduce(|a, b| a + b)
                    .expect("two inputs or more")
            } else {
                Tensor::cat(ts, $axis)
            })
        }};
    }
    match &inputs[0] {
        Activation::Image(_) => merge!(Image, 1),
        Activation::Flat(_) => merge!(Flat, 1),
        Activation::Tokens(_) => merge!(Tokens, 2),
    }
}
