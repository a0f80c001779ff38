//! Any network as one burn module: the layers' modules in the network's order, and a forward
//! pass that walks its graph. The built-in models and the plans' own networks both train
//! through this.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::layers::{Activation, LayerHandle, LayerHandleMut, See};
pub use crate::layers::{LayerInput, LayerModule};

use super::stack::{
    Outputs, Readers, ResolvedLayer, Shape, Source, StackConfig, StackError, prunable_specs,
};
use crate::kernels::{batch_norm_relu, max_pool2d};
use crate::prune::LayerSpec;

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

    /// Builds the modules of `stack`, checked against `classes` outputs.
    pub fn new(stack: &StackConfig, classes: usize, device: &Device) -> Result<Self, StackError> {
        let graph = stack.resolve(Some(classes))?;
        Ok(Self {
            layers: graph
                .iter()
                .map(|l| l.kind.module(&l.at(), device))
                .collect(),
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
    pub fn forward_seeing(&self, images: Tensor<4>, see: See<'_>) -> Tensor<2> {
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
            values.set(i, self.layers[i].forward(inputs, &mut *see));
            i += 1;
        }
        // a network has layers: resolution refuses an empty one
        values
            .into_last()
            .map(Activation::flat)
            .expect("a resolved network has layers")
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

    /// The prunable weights' layers (convolutions, dense layers, attention's two
    /// projections), in order.
    pub fn prunable(&self) -> Vec<LayerHandle<'_>> {
        self.layers.iter().flat_map(LayerModule::prunable).collect()
    }

    pub fn prunable_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
        self.layers
            .iter_mut()
            .flat_map(LayerModule::prunable_mut)
            .collect()
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
