//! LeNet-300-100: the classic fully connected network of the pruning literature.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, Relu};
use burn::tensor::{Device, Tensor};

use crate::kernels::linear;

use super::{Architecture, LayerDef, LayerHandle, LayerHandleMut};

/// 784 -> 300 -> 100 -> 10 with ReLU.
#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    relu: Relu,
}

/// LeNet-300-100: three dense layers.
#[derive(Config, Debug)]
pub struct MlpConfig {}

impl MlpConfig {
    /// The prunable layers in forward order: the modules and the plan's layer list both
    /// come from here.
    pub fn layers(&self) -> [LayerDef; 3] {
        [
            LayerDef::dense("fc1", 300, 784),
            LayerDef::dense("fc2", 100, 300),
            LayerDef::dense("fc3", 10, 100),
        ]
    }

    pub fn init(&self, device: &Device) -> Mlp {
        let [fc1, fc2, fc3] = self.layers();
        Mlp {
            fc1: fc1.linear(device),
            fc2: fc2.linear(device),
            fc3: fc3.linear(device),
            relu: Relu::new(),
        }
    }
}

impl Architecture for Mlp {
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
