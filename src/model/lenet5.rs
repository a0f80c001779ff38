//! LeNet-5: two convolutions and three dense layers.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, Relu};
use burn::tensor::{Device, Tensor};

use crate::kernels::{conv2d, linear, max_pool2d};

use super::{Architecture, LayerDef, LayerHandle, LayerHandleMut};

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

/// LeNet-5: its five prunable layers (pooling, ReLU and shapes between them are fixed).
#[derive(Config, Debug)]
pub struct LeNet5Config {}

impl LeNet5Config {
    /// The prunable layers in forward order: the modules and the plan's layer list both
    /// come from here.
    pub fn layers(&self) -> [LayerDef; 5] {
        [
            LayerDef::conv("conv1", 6, 1, 5, 2),
            LayerDef::conv("conv2", 16, 6, 5, 0),
            LayerDef::dense("fc1", 120, 16 * 5 * 5),
            LayerDef::dense("fc2", 84, 120),
            LayerDef::dense("fc3", 10, 84),
        ]
    }

    pub fn init(&self, device: &Device) -> LeNet5 {
        let [conv1, conv2, fc1, fc2, fc3] = self.layers();
        LeNet5 {
            conv1: conv1.conv2d(device),
            conv2: conv2.conv2d(device),
            fc1: fc1.linear(device),
            fc2: fc2.linear(device),
            fc3: fc3.linear(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            relu: Relu::new(),
        }
    }
}

impl Architecture for LeNet5 {
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
