//! What flows between the layers of a burn network, and what a layer module does with it.

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};

/// A parameter on the host, named and laid out as PyTorch names and lays it out
/// (`fc1.weight` `[out, in]`, `conv1.bias`, `norm.running_mean`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub name: String,
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
}

/// Reads a parameter's values by its `state_dict` name.
pub type Take<'a> = &'a mut dyn FnMut(&str) -> Vec<f32>;

/// Between layers: images, flat features, or tokens.
#[derive(Clone, Debug)]
pub enum Activation {
    /// `[batch, c, h, w]`
    Image(Tensor<4>),
    /// `[batch, features]`
    Flat(Tensor<2>),
    /// `[batch, tokens, features]`
    Tokens(Tensor<3>),
}

/// What a prunable weight multiplies: `[batch, c, h, w]` images for a convolution (with the
/// convolution, for its geometry), `[rows, features]` for a dense layer or a projection
/// (every token a row).
pub enum LayerInput<'a> {
    Conv2d(&'a Conv2d, &'a Tensor<4>),
    Linear(&'a Tensor<2>),
}

/// Shown what every prunable weight multiplies, in order (the activation criteria).
pub type See<'a> = &'a mut dyn FnMut(LayerInput<'_>);

/// A prunable layer, borrowed.
pub enum LayerHandle<'a> {
    Linear(&'a Linear),
    Conv2d(&'a Conv2d),
}

/// A prunable layer, borrowed mutably.
pub enum LayerHandleMut<'a> {
    Linear(&'a mut Linear),
    Conv2d(&'a mut Conv2d),
}

/// A layer's burn module in a network: its forward step and its prunable weights.
pub trait Forward {
    /// The step on its inputs (one, or a merge's several), shapes checked when the network
    /// was built.
    fn forward(&self, inputs: Vec<Activation>, see: See<'_>) -> Activation;

    /// Its prunable weights, in order.
    fn weights(&self) -> Vec<LayerHandle<'_>> {
        Vec::new()
    }

    fn weights_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
        Vec::new()
    }

    /// Its parameters other than the prunable weights (a norm's, a position embedding's),
    /// on the host, named after layer `name` as a `state_dict` names them.
    fn read_state(&self, _name: &str) -> Vec<HostTensor> {
        Vec::new()
    }

    /// Replaces them, each value read by `take` from its name.
    fn write_state(&mut self, _name: &str, _take: Take<'_>) {}
}

/// A vector on the host.
pub fn host_vector(name: String, t: Tensor<1>) -> HostTensor {
    let values: Vec<f32> = t.into_data().iter::<f32>().collect();
    HostTensor {
        name,
        dims: vec![values.len()],
        values,
    }
}

/// Replaces a vector parameter's values.
pub fn set_vector(param: &mut Param<Tensor<1>>, values: Vec<f32>) {
    let n = values.len();
    set_param(param, |d| {
        Tensor::<1>::from_data(TensorData::new(values, [n]), d)
    });
}

/// Replaces a parameter's value, keeping its id, device and whether it requires gradients.
pub fn set_param<const D: usize>(
    param: &mut Param<Tensor<D>>,
    make: impl FnOnce(&Device) -> Tensor<D>,
) {
    *param = param.clone().map(|old| {
        let requires_grad = old.is_require_grad();
        let tracked = old.is_autodiff();
        let fresh = make(&old.device().inner());
        let fresh = if tracked { fresh.autodiff() } else { fresh };
        if requires_grad {
            fresh.require_grad()
        } else {
            fresh
        }
    });
}

impl Activation {
    /// The one input of a layer that reads one.
    pub fn single(mut inputs: Vec<Activation>) -> Activation {
        inputs.swap_remove(0)
    }

    /// The images a layer that takes images reads; `kind` names it if the network's shape
    /// check was ever bypassed.
    pub fn image(self, kind: &str) -> Tensor<4> {
        match self {
            Activation::Image(t) => t,
            other => panic!(
                "{kind} reads images, got {other:?}: the network's shapes are checked when it is built"
            ),
        }
    }

    /// The tokens a layer that takes tokens reads.
    pub fn tokens(self, kind: &str) -> Tensor<3> {
        match self {
            Activation::Tokens(t) => t,
            other => panic!(
                "{kind} reads tokens, got {other:?}: the network's shapes are checked when it is built"
            ),
        }
    }

    /// The same element-wise function on whichever kind of value this is.
    pub fn map(
        self,
        image: impl FnOnce(Tensor<4>) -> Tensor<4>,
        flat: impl FnOnce(Tensor<2>) -> Tensor<2>,
        tokens: impl FnOnce(Tensor<3>) -> Tensor<3>,
    ) -> Activation {
        match self {
            Activation::Image(t) => Activation::Image(image(t)),
            Activation::Flat(t) => Activation::Flat(flat(t)),
            Activation::Tokens(t) => Activation::Tokens(tokens(t)),
        }
    }

    /// The value as `[batch, features]`: images and tokens flattened.
    pub fn flat(self) -> Tensor<2> {
        match self {
            Activation::Flat(t) => t,
            // [batch, c, h, w] -> [batch, c * h * w]
            Activation::Image(t) => t.flatten::<2>(1, 3),
            // [batch, n, d] -> [batch, n * d]
            Activation::Tokens(t) => t.flatten::<2>(1, 2),
        }
    }

    /// Inputs of one shape summed (`add`), or side by side on the channel axis.
    pub fn merged(inputs: Vec<Activation>, add: bool) -> Activation {
        fn join<const D: usize>(ts: Vec<Tensor<D>>, add: bool, axis: usize) -> Tensor<D> {
            if add {
                let mut ts = ts.into_iter();
                let first = ts.next().expect("a merge reads two inputs or more");
                ts.fold(first, |a, b| a + b)
            } else {
                Tensor::cat(ts, axis)
            }
        }
        match &inputs[0] {
            Activation::Image(_) => {
                let ts = inputs.into_iter().map(|a| a.image("a merge")).collect();
                Activation::Image(join(ts, add, 1))
            }
            Activation::Tokens(_) => {
                let ts = inputs.into_iter().map(|a| a.tokens("a merge")).collect();
                Activation::Tokens(join(ts, add, 2))
            }
            Activation::Flat(_) => {
                let ts = inputs.into_iter().map(Activation::flat).collect();
                Activation::Flat(join(ts, add, 1))
            }
        }
    }
}
