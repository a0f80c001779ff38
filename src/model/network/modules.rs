//! The burn modules of the layer kinds burn does not have as such: self-attention with
//! PyTorch's packed projection, a learned position embedding, and the parameterless
//! reshapes and merges of a graph.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::kernels::{attention, linear};

/// `[batch, c, h, w]` to `[batch, c * h * w]`.
#[derive(Module, Debug, Default)]
pub struct Flatten;

/// `[batch, c, h, w]` to `[batch, c]`: each channel's mean.
#[derive(Module, Debug, Default)]
pub struct GlobalAvgPool;

/// `[batch, c, h, w]` to `[batch, h * w, c]`.
#[derive(Module, Debug, Default)]
pub struct Tokens;

/// `[batch, n, d]` to `[batch, d]`: the mean of the tokens.
#[derive(Module, Debug, Default)]
pub struct MeanTokens;

/// The element-wise sum of its inputs.
#[derive(Module, Debug, Default)]
pub struct Add;

/// Its inputs side by side on the channel axis.
#[derive(Module, Debug, Default)]
pub struct Concat;

/// A learned embedding per token position, added to the tokens: PyTorch's
/// `nn.Parameter(torch.zeros(1, n, d))`.
#[derive(Module, Debug)]
pub struct Position {
    /// `[1, n, d]`
    pub embedding: Param<Tensor<3>>,
}

impl Position {
    pub fn new(n: usize, d: usize, device: &Device) -> Self {
        Self {
            embedding: Initializer::Zeros.init([1, n, d], device),
        }
    }

    /// `[batch, n, d]` to `[batch, n, d]`.
    pub fn forward(&self, tokens: Tensor<3>) -> Tensor<3> {
        tokens + self.embedding.val()
    }
}

/// PyTorch's `nn.MultiheadAttention` as self-attention: one packed projection to queries,
/// keys and values (`in_proj`, PyTorch rows `[q; k; v]`), `heads` scaled dot-product
/// attentions side by side, and the output projection (`out_proj`).
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// `[d, 3d]` in burn's layout: PyTorch's `in_proj_weight` `[3d, d]` transposed.
    pub in_proj: Linear,
    /// `[d, d]`
    pub out_proj: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl SelfAttention {
    /// `heads` heads of `head_dim` features on `d` features, initialized as PyTorch does:
    /// Xavier-uniform projections into Q, K and V, zero biases.
    pub fn new(d: usize, heads: usize, head_dim: usize, device: &Device) -> Self {
        let inner = heads * head_dim;
        let mut in_proj = LinearConfig::new(d, 3 * inner)
            .with_initializer(Initializer::XavierUniform { gain: 1.0 })
            .init(device);
        in_proj.bias = Some(Initializer::Zeros.init([3 * inner], device));
        let mut out_proj = LinearConfig::new(inner, d).init(device);
        out_proj.bias = Some(Initializer::Zeros.init([d], device));
        Self {
            in_proj,
            out_proj,
            heads,
        }
    }

    /// `[batch, n, d]` to `[batch, n, d]`, showing `see` what each projection reads
    /// (`[batch * n, d]`): the tokens, then the heads' concatenated outputs.
    pub fn forward(&self, x: Tensor<3>, see: &mut dyn FnMut(&Linear, &Tensor<2>)) -> Tensor<3> {
        let [batch, n, d] = x.dims();
        // the heads side by side: `inner` features
        let inner = self.out_proj.weight.dims()[0];
        let rows = x.reshape([batch * n, d]);
        see(&self.in_proj, &rows);
        let qkv = linear(&self.in_proj, rows).reshape([batch, n, 3 * inner]);
        // [batch, n, 3 * inner] -> [batch, n, inner] -> [batch * n, inner]
        let mixed = attention(qkv, self.heads).reshape([batch * n, inner]);
        see(&self.out_proj, &mixed);
        linear(&self.out_proj, mixed).reshape([batch, n, d])
    }
}
