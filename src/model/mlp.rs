//! LeNet-300-100: the classic fully connected network of the pruning literature.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::tensor::{Device, Tensor};

use crate::kernels::linear;

use super::{Architecture, LayerHandle, LayerHandleMut};
use crate::prune::{LayerShape, LayerSpec};

/// 784 -> 300 -> 100 -> 10 with ReLU.
#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    relu: Relu,
}

impl Mlp {
    pub fn new(device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(784, 300).init(device),
            fc2: LinearConfig::new(300, 100).init(device),
            fc3: LinearConfig::new(100, 10).init(device),
            relu: Relu::new(),
        }
    }
}

impl Architecture for Mlp {
    fn layer_specs() -> Vec<LayerSpec> {
        vec![
            LayerSpec::new("fc1", LayerShape::linear(300, 784)),
            LayerSpec::new("fc2", LayerShape::linear(100, 300)),
            LayerSpec::output("fc3", LayerShape::linear(10, 100)),
        ]
    }

    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = images.flatten::<2>(1, 3); // [batch, 784]
        let x = self.relu.forward(linear(&self.fc1, x)); // [batch, 300]
        let x = self.relu.forward(linear(&self.fc2, x)); // [batch, 100]
        linear(&self.fc3, x) // [batch, 10]
    }

    fn prunable(&self) -> Vec<LayerHandle<'_>> {
        vec![
            LayerHandle::Linear(&self.fc1),
            LayerHandle::Linear(&self.fc2),
            LayerHandle::Linear(&self.fc3),
        ]
    }

    fn prunable_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
        vec![
            LayerHandleMut::Linear(&mut self.fc1),
            LayerHandleMut::Linear(&mut self.fc2),
            LayerHandleMut::Linear(&mut self.fc3),
        ]
    }
}
