//! The reference CNN of tfmot's pruning examples.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu,
};
use burn::tensor::{Device, Tensor};

use crate::kernels::{batch_norm, conv2d, linear, max_pool2d};

use super::{Architecture, LayerHandle, LayerHandleMut};
use crate::prune::{LayerShape, LayerSpec};

/// conv 32@5x5 same, ReLU -> pool 2 -> conv 64@5x5 same -> batch norm -> ReLU -> pool 2 ->
/// dense 1024, ReLU -> dropout 0.4 -> dense 10.
#[derive(Module, Debug)]
pub struct SeedCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    norm: BatchNorm,
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
    pool: MaxPool2d,
    relu: Relu,
}

impl SeedCnn {
    pub fn new(device: &Device) -> Self {
        let same = PaddingConfig2d::Explicit(2, 2, 2, 2);
        Self {
            conv1: Conv2dConfig::new([1, 32], [5, 5])
                .with_padding(same.clone())
                .init(device),
            conv2: Conv2dConfig::new([32, 64], [5, 5])
                .with_padding(same)
                .init(device),
            norm: BatchNormConfig::new(64).init(device),
            fc1: LinearConfig::new(64 * 7 * 7, 1024).init(device),
            fc2: LinearConfig::new(1024, 10).init(device),
            dropout: DropoutConfig::new(0.4).init(),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            relu: Relu::new(),
        }
    }
}

impl Architecture for SeedCnn {
    fn layer_specs() -> Vec<LayerSpec> {
        vec![
            LayerSpec::new("conv1", LayerShape::conv2d(32, 1, 5, 5)),
            LayerSpec::new("conv2", LayerShape::conv2d(64, 32, 5, 5)),
            LayerSpec::new("fc1", LayerShape::linear(1024, 3136)),
            LayerSpec::output("fc2", LayerShape::linear(10, 1024)),
        ]
    }

    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        // pooling before ReLU gives the same values and gradients on a quarter of the data
        let x = conv2d(&self.conv1, images); // [batch, 32, 28, 28]
        let x = self.relu.forward(max_pool2d(&self.pool, x)); // [batch, 32, 14, 14]
        let x = batch_norm(&self.norm, conv2d(&self.conv2, x)); // [batch, 64, 14, 14]
        let x = self.relu.forward(max_pool2d(&self.pool, x)); // [batch, 64, 7, 7]
        let x = x.flatten::<2>(1, 3); // [batch, 3136]
        let x = self.relu.forward(linear(&self.fc1, x)); // [batch, 1024]
        linear(&self.fc2, self.dropout.forward(x)) // [batch, 10]
    }

    fn prunable(&self) -> Vec<LayerHandle<'_>> {
        vec![
            LayerHandle::Conv2d(&self.conv1),
            LayerHandle::Conv2d(&self.conv2),
            LayerHandle::Linear(&self.fc1),
            LayerHandle::Linear(&self.fc2),
        ]
    }

    fn batch_norms(&self) -> Vec<(&'static str, &BatchNorm)> {
        vec![("norm", &self.norm)]
    }

    fn batch_norms_mut(&mut self) -> Vec<(&'static str, &mut BatchNorm)> {
        vec![("norm", &mut self.norm)]
    }

    fn prunable_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
        vec![
            LayerHandleMut::Conv2d(&mut self.conv1),
            LayerHandleMut::Conv2d(&mut self.conv2),
            LayerHandleMut::Linear(&mut self.fc1),
            LayerHandleMut::Linear(&mut self.fc2),
        ]
    }
}
