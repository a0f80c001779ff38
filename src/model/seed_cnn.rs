//! The reference CNN of tfmot's pruning examples.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, Relu};
use burn::tensor::{Device, Tensor};

use crate::kernels::{batch_norm, conv2d, linear, max_pool2d};

use super::{Architecture, LayerDef, LayerHandle, LayerHandleMut};

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

/// The seed recipe's CNN: two "same" convolutions and two dense layers, with the batch norm and dropout between them.
#[derive(Config, Debug)]
pub struct SeedCnnConfig {}

impl SeedCnnConfig {
    /// The prunable layers in forward order: the modules and the plan's layer list both
    /// come from here.
    pub fn layers(&self) -> [LayerDef; 4] {
        [
            LayerDef::conv("conv1", 32, 1, 5, 2),
            LayerDef::conv("conv2", 64, 32, 5, 2),
            LayerDef::dense("fc1", 1024, 64 * 7 * 7),
            LayerDef::dense("fc2", 10, 1024),
        ]
    }

    pub fn init(&self, device: &Device) -> SeedCnn {
        let [conv1, conv2, fc1, fc2] = self.layers();
        SeedCnn {
            conv1: conv1.conv2d(device),
            conv2: conv2.conv2d(device),
            norm: BatchNormConfig::new(conv2.shape.out).init(device),
            fc1: fc1.linear(device),
            fc2: fc2.linear(device),
            dropout: DropoutConfig::new(0.4).init(),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            relu: Relu::new(),
        }
    }
}

impl Architecture for SeedCnn {
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
