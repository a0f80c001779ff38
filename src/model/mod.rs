//! The networks: stacks of layers ([`stack`]) built into one burn module ([`Network`]),
//! the built-in models as such stacks ([`builtin`]), and the host side of their
//! parameters (read, written, masked). What each kind of layer is and does lives in
//! `layers/`, one file per kind.

pub mod builtin;
pub mod network;
mod probes;
pub mod stack;
pub mod weights;

use std::fmt;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub use crate::layers::{HostTensor, LayerHandle, LayerHandleMut};
use crate::layers::{host_vector, set_param};
pub use network::Network;
pub use stack::{Layer, LayerConfig, Shape, StackConfig, StackError};
pub use weights::{WeightsError, read_state_dict};

use crate::prune::{LayerShape, LayerSpec};

/// Classes of every dataset the explorer reads.
pub const CLASSES: usize = 10;

/// A parameter file that does not fit the model.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamError {
    #[error("parameter {name} is missing")]
    Missing { name: String },
    #[error("parameter {name} has shape {found:?}, the model needs {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
}

/// Which model to train. Written as `mlp`, `lenet5`, `seed-cnn`, `small-cnn`, `resnet20`,
/// `vit-tiny`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// LeNet-300-100.
    #[default]
    #[value(alias = "lenet300")]
    Mlp,
    Lenet5,
    SeedCnn,
    SmallCnn,
    /// He et al.'s CIFAR-style ResNet-20, `ResNet20` of `bench/torch_reference.py`.
    Resnet20,
    /// A small vision transformer, `VitTiny` of `bench/torch_reference.py`.
    VitTiny,
    /// The plan's own stack of layers (`[[layers]]`).
    Custom,
}

impl ModelKind {
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Mlp,
        ModelKind::Lenet5,
        ModelKind::SeedCnn,
        ModelKind::SmallCnn,
        ModelKind::Resnet20,
        ModelKind::VitTiny,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Lenet5 => "lenet5",
            ModelKind::SeedCnn => "seed-cnn",
            ModelKind::SmallCnn => "small-cnn",
            ModelKind::Resnet20 => "resnet20",
            ModelKind::VitTiny => "vit-tiny",
            ModelKind::Custom => "custom",
        }
    }

    /// One line on what the model is.
    pub fn describe(&self) -> &'static str {
        match self {
            ModelKind::Mlp => "LeNet-300-100: 784-300-100-10, ReLU",
            ModelKind::Lenet5 => "LeNet-5: conv 6, conv 16, dense 120-84-10",
            ModelKind::SeedCnn => "tfmot CNN: conv 32, conv 64 + batch norm, dense 1024, dropout",
            ModelKind::SmallCnn => "tfmot guide CNN: conv 12 3x3, dense 10",
            ModelKind::Resnet20 => "ResNet-20: 3 stages of 3 residual blocks (16, 32, 64 channels)",
            ModelKind::VitTiny => "ViT: 49 patch tokens of width 64, 4 encoder layers of 4 heads",
            ModelKind::Custom => "the plan's own stack of layers",
        }
    }

    /// The built-in model's stack; `None` for [`ModelKind::Custom`].
    pub fn stack(&self) -> Option<StackConfig> {
        builtin::builtin_stack(*self)
    }

    /// The built-in model's prunable layers (none for [`ModelKind::Custom`]: a plan's own
    /// stack gives them, see `ExperimentPlan::layer_specs`).
    pub fn layer_specs(&self) -> Vec<LayerSpec> {
        self.stack()
            .map(|s| {
                s.layer_specs(Some(CLASSES))
                    .expect("the built-in stacks are valid")
            })
            .unwrap_or_default()
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Network {
    /// `w * dL/dw` of every prunable weight, on the host, in PyTorch layout, from one
    /// backward pass's gradients (zero where a weight has none).
    pub fn weight_gradient_products(&self, grads: &burn::optim::GradientsParams) -> Vec<Vec<f32>> {
        self.per_weight_of_gradients(grads, true)
    }

    /// `dL/dw` of every prunable weight, on the host, in PyTorch layout (zero where a
    /// weight has none): pruned weights have one too, what RigL grows by.
    pub fn weight_gradients(&self, grads: &burn::optim::GradientsParams) -> Vec<Vec<f32>> {
        self.per_weight_of_gradients(grads, false)
    }

    fn per_weight_of_gradients(
        &self,
        grads: &burn::optim::GradientsParams,
        times_weight: bool,
    ) -> Vec<Vec<f32>> {
        self.prunable()
            .iter()
            .map(|layer| {
                let data = match layer {
                    LayerHandle::Linear(l) => {
                        let w = l.weight.val().inner();
                        let g = grads
                            .get::<2>(l.weight.id)
                            .unwrap_or_else(|| w.zeros_like());
                        let v = if times_weight { w * g } else { g };
                        v.transpose().into_data()
                    }
                    LayerHandle::Conv2d(c) => {
                        let w = c.weight.val().inner();
                        let g = grads
                            .get::<4>(c.weight.id)
                            .unwrap_or_else(|| w.zeros_like());
                        if times_weight { w * g } else { g }.into_data()
                    }
                };
                data.iter::<f32>().collect()
            })
            .collect()
    }

    /// Weights of every prunable layer, on the host, in PyTorch layout.
    pub fn read_weights(&self) -> Vec<Vec<f32>> {
        self.prunable().iter().map(read_weight).collect()
    }

    /// Every parameter on the host, PyTorch names and layout, prunable weights first (in
    /// layer order, each followed by its bias), then the norms and position embeddings.
    pub fn read_params(&self) -> Vec<HostTensor> {
        let weights = self.graph().iter().flat_map(|l| l.prunable());
        let mut out = Vec::new();
        for (w, layer) in weights.zip(self.prunable()) {
            out.push(HostTensor {
                name: w.weight_key,
                dims: w.shape.dims(),
                values: read_weight(&layer),
            });
            let bias = match layer {
                LayerHandle::Linear(l) => l.bias.as_ref().map(|b| b.val()),
                LayerHandle::Conv2d(c) => c.bias.as_ref().map(|b| b.val()),
            };
            if let (Some(key), Some(b)) = (w.bias_key, bias) {
                out.push(host_vector(key, b));
            }
        }
        for (l, module) in self.layers() {
            out.extend(module.read_state(&l.name));
        }
        out
    }

    /// Replaces every parameter with the named host values (as [`Network::read_params`]
    /// gives them). Every parameter must be present with its exact shape; nothing changes
    /// when one is not.
    pub fn write_params(&mut self, params: &[HostTensor]) -> Result<(), ParamError> {
        let find = |name: &str, dims: &[usize]| -> Result<&HostTensor, ParamError> {
            let t = params
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| ParamError::Missing { name: name.into() })?;
            if t.dims != dims || t.values.len() != dims.iter().product::<usize>() {
                return Err(ParamError::Shape {
                    name: name.into(),
                    expected: dims.to_vec(),
                    found: t.dims.clone(),
                });
            }
            Ok(t)
        };
        let mut found = std::collections::HashMap::new();
        for t in self.read_params() {
            found.insert(t.name.clone(), find(&t.name, &t.dims)?.values.clone());
        }
        let mut take = |key: &str| found.remove(key).expect("checked above");
        let weights: Vec<_> = self.graph().iter().flat_map(|l| l.prunable()).collect();
        for (w, layer) in weights.into_iter().zip(self.prunable_mut()) {
            let s = w.shape;
            let values = take(&w.weight_key);
            let bias = |b: &mut Param<Tensor<1>>, take: &mut dyn FnMut(&str) -> Vec<f32>| {
                let key = w.bias_key.as_deref().expect("a bias the graph names");
                let v = take(key);
                set_param(b, |d| {
                    Tensor::<1>::from_data(TensorData::new(v, [s.out]), d)
                });
            };
            match layer {
                LayerHandleMut::Linear(l) => {
                    set_param(&mut l.weight, |d| {
                        Tensor::<2>::from_data(TensorData::new(values, [s.out, s.inp]), d)
                            .transpose()
                    });
                    if let Some(b) = l.bias.as_mut() {
                        bias(b, &mut take);
                    }
                }
                LayerHandleMut::Conv2d(c) => {
                    set_param(&mut c.weight, |d| {
                        Tensor::<4>::from_data(
                            TensorData::new(values, [s.out, s.inp, s.kh, s.kw]),
                            d,
                        )
                    });
                    if let Some(b) = c.bias.as_mut() {
                        bias(b, &mut take);
                    }
                }
            }
        }
        for (l, module) in self.layers_mut() {
            module.write_state(&l.name, &mut take);
        }
        Ok(())
    }

    /// Multiplies every prunable weight by its mask (`None`: left as is). Pruned weights
    /// become exactly 0.0 and the parameters stay leaves that require gradients.
    pub fn apply_masks<'a>(&mut self, masks: impl IntoIterator<Item = Option<&'a DeviceMask>>) {
        for (layer, mask) in self.prunable_mut().into_iter().zip(masks) {
            match (layer, mask) {
                (LayerHandleMut::Linear(l), Some(DeviceMask::Linear(m))) => {
                    mask_param(&mut l.weight, m)
                }
                (LayerHandleMut::Conv2d(c), Some(DeviceMask::Conv2d(m))) => {
                    mask_param(&mut c.weight, m)
                }
                _ => {}
            }
        }
    }
}

/// A mask uploaded to the device in burn's layout for its layer (Linear `[in, out]`,
/// Conv2d `[out, in, kh, kw]`), without autodiff.
#[derive(Clone, Debug)]
pub enum DeviceMask {
    Linear(Tensor<2>),
    Conv2d(Tensor<4>),
}

impl DeviceMask {
    /// Uploads a host mask (PyTorch layout, 1 kept / 0 pruned).
    pub fn upload(mask: &[u8], shape: &LayerShape, device: &Device) -> Self {
        let values: Vec<f32> = mask.iter().map(|&m| m as f32).collect();
        let device = device.clone().inner();
        match shape.kind {
            crate::prune::LayerKind::Linear => {
                // transposed here, once, so that the mask re-applied after every step is a
                // contiguous [in, out] tensor like the weight it multiplies
                let (out, inp) = (shape.out, shape.inp);
                let mut transposed = vec![0.0f32; values.len()];
                for (o, row) in values.chunks(inp).enumerate() {
                    for (i, &m) in row.iter().enumerate() {
                        transposed[i * out + o] = m;
                    }
                }
                DeviceMask::Linear(Tensor::<2>::from_data(
                    TensorData::new(transposed, [inp, out]),
                    &device,
                ))
            }
            crate::prune::LayerKind::Conv2d => DeviceMask::Conv2d(Tensor::<4>::from_data(
                TensorData::new(values, [shape.out, shape.inp, shape.kh, shape.kw]),
                &device,
            )),
        }
    }
}

fn read_weight(layer: &LayerHandle<'_>) -> Vec<f32> {
    let data = match layer {
        // burn stores Linear as [in, out]; PyTorch layout is [out, in]
        LayerHandle::Linear(l) => l.weight.val().transpose().into_data(),
        LayerHandle::Conv2d(c) => c.weight.val().into_data(),
    };
    data.iter::<f32>().collect()
}

fn mask_param<const D: usize>(param: &mut Param<Tensor<D>>, mask: &Tensor<D>) {
    *param = param.clone().map(|w| {
        let requires_grad = w.is_require_grad();
        let tracked = w.is_autodiff();
        let masked = w.inner() * mask.clone();
        let masked = if tracked { masked.autodiff() } else { masked };
        if requires_grad {
            masked.require_grad()
        } else {
            masked
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_model_builds_the_layers_its_stack_lists() {
        let device = Device::default();
        for kind in ModelKind::ALL {
            let stack = kind.stack().unwrap();
            let specs = kind.layer_specs();
            assert!(
                specs.last().unwrap().output,
                "{kind}: the last layer gives the scores"
            );
            assert!(specs.iter().rev().skip(1).all(|s| !s.output));
            let network = Network::new(&stack, CLASSES, &device).unwrap();
            assert_eq!(network.layer_specs(), specs, "{kind}");
            let params = network.read_params();
            for spec in &specs {
                let weight = params
                    .iter()
                    .find(|p| p.name == stack::weight_key(&spec.name))
                    .unwrap_or_else(|| panic!("{kind}: no {}.weight", spec.name));
                assert_eq!(weight.dims, spec.shape.dims(), "{kind} {}", spec.name);
            }
        }
        assert!(ModelKind::Custom.stack().is_none());
    }
}
