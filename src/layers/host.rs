//! A layer's host-inference operation: what it does to the channel-major activations of
//! `infer/`, built from the network's parameters by [`crate::layers::Kind::host`].

use std::fmt::Debug;

use super::HostTensor;
use crate::host::ops::{Act, merge, pool};
use crate::host::{InferError, Linear, build_layer};

/// One layer's operation in host inference.
pub trait HostOp: Debug + Send + Sync {
    /// The operation on its inputs (one, or a merge's several).
    fn run(&self, inputs: Vec<Act>) -> Act;

    /// Weights it stores.
    fn stored(&self) -> usize {
        0
    }

    /// Takes in the batch norm that alone reads it, if it can (a convolution).
    fn fold_norm(&mut self, _norm: &Norm) -> bool {
        false
    }

    /// Builds its storage, once nothing more will fold into it.
    fn finish(&mut self, _sparse: bool) {}
}

/// A prunable weight's values, bias (zeros when it has none) and mask, checked against
/// its shape.
#[derive(Debug)]
pub struct HostWeight {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub mask: Vec<u8>,
    pub out: usize,
    pub row: usize,
}

impl HostWeight {
    /// The dense layer over feature columns, dense or in the best sparse storage.
    pub fn layer(self, sparse: bool) -> Linear {
        build_layer(self.out, self.row, &self.w, &self.mask, self.b, sparse)
    }
}

/// An evaluation-mode batch norm as a per-channel scale and shift.
#[derive(Clone, Debug)]
pub struct Norm {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
}

/// What the layers' host operations are built from: the parameters, the prunable weights
/// in order, and the operations built so far (a batch norm folds into the one it reads).
pub struct HostBuild<'a> {
    params: &'a [HostTensor],
    weights: std::vec::IntoIter<HostWeight>,
    /// How many layers read each layer's output.
    readers: &'a [usize],
    /// The operations so far, one per layer.
    pub ops: Vec<Box<dyn HostOp>>,
    /// The layer whose output the layer being built reads first (`None`: the input).
    pub source: Option<usize>,
    pub sparse: bool,
}

impl<'a> HostBuild<'a> {
    pub fn new(
        params: &'a [HostTensor],
        weights: Vec<HostWeight>,
        readers: &'a [usize],
        sparse: bool,
    ) -> Self {
        Self {
            params,
            weights: weights.into_iter(),
            readers,
            ops: Vec::with_capacity(readers.len()),
            source: None,
            sparse,
        }
    }

    /// The next prunable weight.
    pub fn weight(&mut self) -> Result<HostWeight, InferError> {
        self.weights
            .next()
            .ok_or_else(|| InferError::Unsupported("a layer has no weight to take".into()))
    }

    /// The values of parameter `name`.
    pub fn param(&self, name: String) -> Result<Vec<f32>, InferError> {
        param(self.params, name).map(|t| t.values.clone())
    }

    /// The evaluation-mode batch norm named `name`.
    pub fn norm(&self, name: &str) -> Result<Norm, InferError> {
        let v = |p: &str| self.param(format!("{name}.{p}"));
        let (gamma, beta, mean, var) = (
            v("weight")?,
            v("bias")?,
            v("running_mean")?,
            v("running_var")?,
        );
        let scale: Vec<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + 1e-5).sqrt())
            .collect();
        let shift = beta
            .iter()
            .zip(&mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        Ok(Norm { scale, shift })
    }

    /// Folds `norm` into the operation the current layer reads, when that layer's output
    /// goes to this one alone and it can take it in.
    pub fn fold_into_source(&mut self, norm: &Norm) -> bool {
        match self.source {
            Some(j) if self.readers[j] == 1 => self.ops[j].fold_norm(norm),
            _ => false,
        }
    }
}

/// The parameter named `name`, or an error naming it.
pub fn param(params: &[HostTensor], name: String) -> Result<&HostTensor, InferError> {
    params
        .iter()
        .find(|t| t.name == name)
        .ok_or(InferError::Missing(name))
}

/// The identity: dropout, or a batch norm folded into the convolution before it.
#[derive(Debug)]
pub struct Identity;

impl HostOp for Identity {
    fn run(&self, inputs: Vec<Act>) -> Act {
        first(inputs)
    }
}

/// The one input of an operation that reads one.
pub fn first(mut inputs: Vec<Act>) -> Act {
    inputs.swap_remove(0)
}

/// An element-wise function applied in place, named for debugging (generic over the
/// function, so each kind's loop is compiled with its function inlined).
pub struct Elementwise<F>(pub &'static str, pub F);

impl<F> Debug for Elementwise<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Elementwise({})", self.0)
    }
}

impl<F: Fn(f32) -> f32 + Send + Sync> HostOp for Elementwise<F> {
    fn run(&self, inputs: Vec<Act>) -> Act {
        let mut x = first(inputs);
        x.data_mut().iter_mut().for_each(|v| *v = (self.1)(*v));
        x
    }
}

/// A merge on the host: a sum, or inputs side by side.
#[derive(Debug)]
pub struct HostMerge {
    pub add: bool,
}

impl HostOp for HostMerge {
    fn run(&self, inputs: Vec<Act>) -> Act {
        merge(inputs, self.add)
    }
}

/// Max or average pooling on the host.
#[derive(Debug)]
pub struct HostPool {
    pub k: usize,
    pub stride: usize,
    pub max: bool,
}

impl HostOp for HostPool {
    fn run(&self, inputs: Vec<Act>) -> Act {
        match first(inputs) {
            Act::Maps(m) => Act::Maps(pool(&m, self.k, self.stride, self.max)),
            x => x,
        }
    }
}
