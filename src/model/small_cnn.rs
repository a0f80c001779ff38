//! The small CNN of tfmot's pruning guide: one convolution and one dense layer.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, Relu};
use burn::tensor::{Device, Tensor};

use crate::kernels::{conv2d, linear, max_pool2d};

use super::{Architecture, LayerDef, LayerHandle, LayerHandleMut};

/// conv 12@3x3, ReLU -> pool 2 -> dense 10.
#[derive(Module, Debug)]
pub struct SmallCnn {
    conv1: Conv2d,
    fc1: Linear,
    pool: MaxPool2d,
    relu: Relu,
}

/// tfmot's guide CNN: one 3x3 convolution and one dense layer.
#[derive(Config, Debug)]
pub struct SmallCnnConfig {}

impl SmallCnnConfig {
    /// The prunable layers in forward order: the modules and the plan's layer list both
    /// come from here.
    pub fn layers(&self) -> [LayerDef; 2] {
        [
            LayerDef::conv("conv1", 12, 1, 3, 0),
            LayerDef::dense("fc1", 10, 12 * 13 * 13),
        ]
    }

    pub fn init(&self, device: &Device) -> SmallCnn {
        let [conv1, fc1] = self.layers();
        SmallCnn {
            conv1: conv1.conv2d(device),
            fc1: fc1.linear(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            relu: Relu::new(),
        }
    }
}

impl Architecture for SmallCnn {
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
