//! One entry of a network as plans write it (`[[layers]]`): what the layer does
//! ([`LayerConfig`]), its name, and which layer's output it takes.

use serde::{Deserialize, Serialize};

fn one() -> usize {
    1
}
fn is_one(v: &usize) -> bool {
    *v == 1
}
fn is_zero(v: &usize) -> bool {
    *v == 0
}
fn yes() -> bool {
    true
}
fn is_true(v: &bool) -> bool {
    *v
}

/// One layer of a network: what it does, the name others and per-layer overrides use, and
/// the layer it reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// The layer's name, also the prefix of its parameters' names (`blocks.0.c1` gives
    /// `blocks.0.c1.weight`); the type and position when not given (`relu3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The layer whose output this one takes (`input` for the network's input); the layer
    /// before it when not given. Merge layers name theirs in `inputs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(flatten)]
    pub config: LayerConfig,
}

impl Layer {
    /// An unnamed layer reading the one before it.
    pub fn new(config: LayerConfig) -> Self {
        Self {
            name: None,
            input: None,
            config,
        }
    }

    /// A named layer reading the one before it.
    pub fn named(name: impl Into<String>, config: LayerConfig) -> Self {
        Self {
            name: Some(name.into()),
            input: None,
            config,
        }
    }

    /// The same layer reading `input`.
    pub fn reading(self, input: impl Into<String>) -> Self {
        Self {
            input: Some(input.into()),
            ..self
        }
    }
}

impl From<LayerConfig> for Layer {
    fn from(config: LayerConfig) -> Self {
        Layer::new(config)
    }
}

/// What a layer does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerConfig {
    /// A square `kernel x kernel` convolution to `out` channels; `groups` splits input and
    /// output channels into that many independent convolutions (depthwise when it equals
    /// the input channels).
    Conv2d {
        out: usize,
        kernel: usize,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        stride: usize,
        #[serde(default, skip_serializing_if = "is_zero")]
        padding: usize,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        groups: usize,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        bias: bool,
    },
    /// A dense layer on flat features, or on every token's features (the last axis).
    Linear {
        out: usize,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        bias: bool,
    },
    /// Max over `kernel x kernel` windows, `stride` apart (the kernel when not given).
    Maxpool2d {
        kernel: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
    },
    Avgpool2d {
        kernel: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
    },
    /// `[c, h, w]` to `[c]`: each channel's mean.
    GlobalAvgpool,
    Batchnorm2d,
    /// Normalizes the last axis (features or each token's features), PyTorch's
    /// `LayerNorm(d)` with eps 1e-5.
    Layernorm,
    Relu,
    Gelu,
    Tanh,
    Dropout {
        p: f64,
    },
    Flatten,
    /// `[c, h, w]` to `[h * w, c]`: one token per position, its channels as features.
    Tokens,
    /// A learned embedding of each token's position, added to the tokens.
    Position,
    /// Multi-head self-attention over tokens, with PyTorch's packed projection
    /// (`in_proj_weight` `[3d, d]`: Q, K and V rows) and `out_proj`.
    Attention {
        heads: usize,
        /// Each head's width; the features over the heads when not given. A pruned export
        /// that removes heads keeps the width and lowers `heads`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        head_dim: Option<usize>,
    },
    /// `[n, d]` tokens to `[d]`: their mean.
    MeanTokens,
    /// The element-wise sum of layers of one shape (a residual connection).
    Add {
        inputs: Vec<String>,
    },
    /// Layers side by side: channels for images, the last axis for features and tokens.
    Concat {
        inputs: Vec<String>,
    },
    /// `layers`, written once, `times` times in a row. In each copy `{i}` in a name or an
    /// input is the copy's number (`first`, `first + 1`, ...) and `{input}` the layer before
    /// the copy.
    Repeat {
        times: usize,
        #[serde(default, skip_serializing_if = "is_zero")]
        first: usize,
        layers: Vec<Layer>,
    },
}

impl LayerConfig {
    /// Self-attention of `heads` heads of the default width.
    pub fn attention(heads: usize) -> Self {
        LayerConfig::Attention {
            heads,
            head_dim: None,
        }
    }

    /// An attention layer's heads and each head's width, on `d` features.
    pub fn heads_of(&self, d: usize) -> Option<(usize, usize)> {
        match *self {
            LayerConfig::Attention { heads, head_dim } => {
                Some((heads, head_dim.unwrap_or(d / heads.max(1))))
            }
            _ => None,
        }
    }

    /// The type as plans write it.
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerConfig::Conv2d { .. } => "conv2d",
            LayerConfig::Linear { .. } => "linear",
            LayerConfig::Maxpool2d { .. } => "maxpool2d",
            LayerConfig::Avgpool2d { .. } => "avgpool2d",
            LayerConfig::GlobalAvgpool => "global_avgpool",
            LayerConfig::Batchnorm2d => "batchnorm2d",
            LayerConfig::Layernorm => "layernorm",
            LayerConfig::Relu => "relu",
            LayerConfig::Gelu => "gelu",
            LayerConfig::Tanh => "tanh",
            LayerConfig::Dropout { .. } => "dropout",
            LayerConfig::Flatten => "flatten",
            LayerConfig::Tokens => "tokens",
            LayerConfig::Position => "position",
            LayerConfig::Attention { .. } => "attention",
            LayerConfig::MeanTokens => "mean_tokens",
            LayerConfig::Add { .. } => "add",
            LayerConfig::Concat { .. } => "concat",
            LayerConfig::Repeat { .. } => "repeat",
        }
    }

    /// The layers a merge layer names; `None` for a layer that reads one.
    pub fn merged(&self) -> Option<&[String]> {
        match self {
            LayerConfig::Add { inputs } | LayerConfig::Concat { inputs } => Some(inputs),
            _ => None,
        }
    }
}
