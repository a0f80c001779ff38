//! The small CNN of tfmot's pruning guide: one convolution and one dense layer.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::tensor::{Device, Tensor};

use crate::kernels::{conv2d, linear, max_pool2d};

use super::{Architecture, LayerHandle, LayerHandleMut};
use crate::prune::{LayerShape, LayerSpec};

/// conv 12@3x3, ReLU -> pool 2 -> dense 10.
#[derive(Module, Debug)]
pub struct SmallCnn {
    conv1: Conv2d,
    fc1: Linear,
    pool: MaxPool2d,
    relu: Relu,
}

impl SmallCnn {
    pub fn new(device: &Device) -> Self {
        Self {
            conv1: Conv2dConfig::new([1, 12], [3, 3]).init(device),
            fc1: LinearConfig::new(12 * 13 * 13, 10).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            relu: Relu::new(),
        }
    }
}

impl Architecture for SmallCnn {
    fn layer_specs() -> Vec<LayerSpec> {
        vec![
            LayerSpec::new("conv1", LayerShape::conv2d(12, 1, 3, 3)),
            LayerSpec::output("fc1", LayerShape::linear(10, 2028)),
        ]
    }

    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        // pooling before ReLU gives the same values and gradients on a quarter of the data
        let x = conv2d(&self.conv1, images); // [batch, 12, 26, 26]
        let x = self.relu.forward(max_pool2d(&self.pool, x)); // [batch, 12, 13, 13]
        let x = x.flatten::<2>(1, 3); // [batch, 2028]
        linear(&self.fc1, x) // [batch, 10]
    }

    fn prunable(&self) -> Vec<LayerHandle<'_>> {
        vec![
            LayerHandle::Conv2d(&self.conv1),
            LayerHandle::Linear(&self.fc1),
        ]
    }

    fn prunable_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
        vec![
            LayerHandleMut::Conv2d(&mut self.conv1),
            LayerHandleMut::Linear(&mut self.fc1),
        ]
    }
}
