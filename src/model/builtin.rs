//! The built-in models, as networks: the same layers, names and order as their papers, the
//! seed recipe and the PyTorch modules of `bench/torch_reference.py`, so plans' per-layer
//! overrides (`conv1`, `fc2`, `blocks.3.c1`, ...) name them and a `state_dict` saved from
//! those modules loads as it is.

use super::ModelKind;
use super::stack::{Layer, Repeat, StackConfig};
use crate::layers::{
    Add, AttentionPlan, Batchnorm2d, Conv2d, Dropout, Flatten, Gelu, GlobalAvgpool, Layernorm,
    Linear, Maxpool2d, MeanTokens, Position, Relu, Tokens,
};

fn conv(name: &str, out: usize, kernel: usize, padding: usize) -> Layer {
    Layer::named(
        name,
        Conv2d {
            padding,
            ..Conv2d::new(out, kernel)
        },
    )
}

/// A convolution without bias, as ResNets have before a batch norm.
fn conv_no_bias(name: &str, out: usize, kernel: usize, stride: usize) -> Layer {
    Layer::named(
        name,
        Conv2d {
            stride,
            padding: kernel / 2,
            bias: false,
            ..Conv2d::new(out, kernel)
        },
    )
}

fn relu() -> Layer {
    Layer::new(Relu::default())
}

fn dense(name: &str, out: usize) -> Layer {
    Layer::named(name, Linear::new(out))
}

fn norm(name: &str) -> Layer {
    Layer::named(name, Batchnorm2d::default())
}

fn pool() -> Layer {
    Layer::new(Maxpool2d::new(2))
}

fn repeat(times: usize, first: usize, layers: Vec<Layer>) -> Layer {
    Layer::new(Repeat {
        times,
        first,
        layers,
    })
}

fn add(name: &str, inputs: [&str; 2]) -> Layer {
    Layer::named(
        name,
        Add {
            inputs: inputs.map(String::from).to_vec(),
        },
    )
}

/// `Block` of `bench/torch_reference.py`, as copy `{i}` of a repeat: conv, BN, ReLU, conv,
/// BN, plus the block's input, through a 1x1 conv and BN (`short.0`, `short.1`) when
/// `project` (the shape changes), then ReLU.
fn basic_block(out: usize, stride: usize, project: bool) -> Vec<Layer> {
    let mut layers = vec![
        conv_no_bias("blocks.{i}.c1", out, 3, stride),
        norm("blocks.{i}.b1"),
        Layer::named("blocks.{i}.relu", Relu::default()),
        conv_no_bias("blocks.{i}.c2", out, 3, 1),
        norm("blocks.{i}.b2"),
    ];
    let shortcut = if project {
        layers.push(conv_no_bias("blocks.{i}.short.0", out, 1, stride).reading("{input}"));
        layers.push(norm("blocks.{i}.short.1"));
        "blocks.{i}.short.1"
    } else {
        "{input}"
    };
    layers.push(add("blocks.{i}.add", ["blocks.{i}.b2", shortcut]));
    layers.push(Layer::named("blocks.{i}.out", Relu::default()));
    layers
}

/// `ResNet20` of `bench/torch_reference.py`: a 3x3 stem of 16 channels, three stages of
/// three basic blocks at 16, 32 and 64 channels (the first of the last two with stride 2
/// and a projection shortcut), global average pooling, fc10.
fn resnet20() -> Vec<Layer> {
    vec![
        conv_no_bias("stem", 16, 3, 1),
        norm("bn"),
        relu(),
        repeat(3, 0, basic_block(16, 1, false)),
        repeat(1, 3, basic_block(32, 2, true)),
        repeat(2, 4, basic_block(32, 1, false)),
        repeat(1, 6, basic_block(64, 2, true)),
        repeat(2, 7, basic_block(64, 1, false)),
        Layer::new(GlobalAvgpool::default()),
        dense("fc", 10),
    ]
}

/// `VitTiny` of `bench/torch_reference.py`: 4x4 patches of a 28x28 image (49 tokens) of
/// width 64, learned positions, four pre-norm encoder layers (4 heads, an MLP of 128 with
/// GELU), a layer norm, the tokens' mean and fc10. The names are those of PyTorch's
/// `nn.TransformerEncoderLayer` (`norm_first = True`).
fn vit_tiny() -> Vec<Layer> {
    let layer = |p: &str| format!("encoder.layers.{{i}}.{p}");
    let encoder_layer = vec![
        Layer::named(layer("norm1"), Layernorm::default()),
        Layer::named(layer("self_attn"), AttentionPlan::new(4)),
        add(&layer("attended"), [&layer("self_attn"), "{input}"]),
        Layer::named(layer("norm2"), Layernorm::default()),
        dense(&layer("linear1"), 128),
        Layer::named(layer("gelu"), Gelu::default()),
        dense(&layer("linear2"), 64),
        add(&layer("out"), [&layer("linear2"), &layer("attended")]),
    ];
    vec![
        Layer::named(
            "patch",
            Conv2d {
                stride: 4,
                ..Conv2d::new(64, 4)
            },
        ),
        Layer::new(Tokens::default()),
        Layer::named("pos", Position::default()),
        repeat(4, 0, encoder_layer),
        Layer::named("norm", Layernorm::default()),
        Layer::new(MeanTokens::default()),
        dense("fc", 10),
    ]
}

/// The network of a built-in model; `None` for [`ModelKind::Custom`], whose network is
/// the plan's.
pub fn builtin_stack(kind: ModelKind) -> Option<StackConfig> {
    let flatten = || Layer::new(Flatten::default());
    let layers: Vec<Layer> = match kind {
        // LeNet-300-100: 784-300-100-10
        ModelKind::Mlp => vec![
            flatten(),
            dense("fc1", 300),
            relu(),
            dense("fc2", 100),
            relu(),
            dense("fc3", 10),
        ],
        // LeNet-5: conv 6@5x5 pad 2, pool, conv 16@5x5, pool, 120, 84, 10
        ModelKind::Lenet5 => vec![
            conv("conv1", 6, 5, 2),
            relu(),
            pool(),
            conv("conv2", 16, 5, 0),
            relu(),
            pool(),
            flatten(),
            dense("fc1", 120),
            relu(),
            dense("fc2", 84),
            relu(),
            dense("fc3", 10),
        ],
        // the seed recipe: Conv2D(32, 5x5, same, relu), MaxPool 2, Conv2D(64, 5x5, same),
        // BatchNorm, ReLU, MaxPool 2, Flatten, Dense(1024, relu), Dropout(0.4), Dense(10)
        ModelKind::SeedCnn => vec![
            conv("conv1", 32, 5, 2),
            relu(),
            pool(),
            conv("conv2", 64, 5, 2),
            norm("norm"),
            relu(),
            pool(),
            flatten(),
            dense("fc1", 1024),
            relu(),
            Layer::new(Dropout { p: 0.4 }),
            dense("fc2", 10),
        ],
        // tfmot's guide: Conv2D(12, 3x3, relu), MaxPool 2, Flatten, Dense(10)
        ModelKind::SmallCnn => vec![
            conv("conv1", 12, 3, 0),
            relu(),
            pool(),
            flatten(),
            dense("fc1", 10),
        ],
        ModelKind::Resnet20 => resnet20(),
        ModelKind::VitTiny => vit_tiny(),
        ModelKind::Custom => return None,
    };
    Some(StackConfig {
        input: [1, 28, 28],
        layers,
    })
}
