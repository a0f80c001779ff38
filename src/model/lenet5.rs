//! LeNet-5: two convolutions and three dense layers.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor};

use crate::kernels::{conv2d, linear, max_pool2d};

use super::{Architecture, LayerHandle, LayerHandleMut};
use crate::prune::{LayerShape, LayerSpec};

/// conv 6@5x5 pad 2 -> pool 2 -> conv 16@5x5 -> pool 2 -> 120 -> 84 -> 10, ReLU throughout.
#[derive(Module, Debug)]
pub struct LeNet5 {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    pool: MaxPool2d,
    relu: Relu,
}

impl LeNet5 {
    pub fn new(device: &Device) -> Self {
        Self {
            conv1: Conv2dConfig::new([1, 6], [5, 5])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(device),
            conv2: Conv2dConfig::new([6, 16], [5, 5]).init(device),
            fc1: LinearConfig::new(16 * 5 * 5, 120).init(device),
            fc2: LinearConfig::new(120, 84).init(device),
            fc3: LinearConfig::new(84, 10).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            relu: Relu::new(),
        }
    }
}

impl Architecture for LeNet5 {
    fn layer_specs() -> Vec<LayerSpec> {
        vec![
            LayerSpec::new("conv1", LayerShape::conv2d(6, 1, 5, 5)),
            LayerSpec::new("conv2", LayerShape::conv2d(16, 6, 5, 5)),
            LayerSpec::new("fc1", LayerShape::linear(120, 400)),
            LayerSpec::new("fc2", LayerShape::linear(84, 120)),
            LayerSpec::output("fc3", LayerShape::linear(10, 84)),
        ]
    }

    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        // pooling before ReLU gives the same values and gradients on a quarter of the data
        let x = conv2d(&self.conv1, images); // [batch, 6, 28, 28]
        let x = self.relu.forward(max_pool2d(&self.pool, x)); // [batch, 6, 14, 14]
        let x = conv2d(&self.conv2, x); // [batch, 16, 10, 10]
        let x = self.relu.forward(max_pool2d(&self.pool, x)); // [batch, 16, 5, 5]
        let x = x.flatten::<2>(1, 3); // [batch, 400]
        let x = self.relu.forward(linear(&self.fc1, x)); // [batch, 120]
        let x = self.relu.forward(linear(&self.fc2, x)); // [batch, 84]
        linear(&self.fc3, x) // [batch, 10]
    }

    fn prunable(&self) -> Vec<LayerHandle<'_>> {
        vec![
            LayerHandle::Conv2d(&self.conv1),
            LayerHandle::Conv2d(&self.conv2),
            LayerHandle::Linear(&self.fc1),
            LayerHandle::Linear(&self.fc2),
            LayerHandle::Linear(&self.fc3),
        ]
    }

    fn prunable_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
        vec![
            LayerHandleMut::Conv2d(&mut self.conv1),
            LayerHandleMut::Conv2d(&mut self.conv2),
            LayerHandleMut::Linear(&mut self.fc1),
            LayerHandleMut::Linear(&mut self.fc2),
            LayerHandleMut::Linear(&mut self.fc3),
        ]
    }
}
