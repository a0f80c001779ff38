//! The four built-in models, as stacks: the same layers, names and order as their papers
//! and the seed recipe, so plans' per-layer overrides (`conv1`, `fc2`, ...) name them.

use super::ModelKind;
use super::stack::{LayerConfig, StackConfig};

fn conv(name: &str, out: usize, kernel: usize, padding: usize) -> LayerConfig {
    LayerConfig::Conv2d {
        name: Some(name.into()),
        out,
        kernel,
        stride: 1,
        padding,
    }
}

fn dense(name: &str, out: usize) -> LayerConfig {
    LayerConfig::Linear {
        name: Some(name.into()),
        out,
    }
}

fn pool() -> LayerConfig {
    LayerConfig::Maxpool2d {
        kernel: 2,
        stride: None,
    }
}

/// The stack of a built-in model; `None` for [`ModelKind::Custom`], whose stack is the
/// plan's.
pub fn builtin_stack(kind: ModelKind) -> Option<StackConfig> {
    use LayerConfig::{Flatten, Relu};
    let layers = match kind {
        // LeNet-300-100: 784-300-100-10
        ModelKind::Mlp => vec![
            Flatten,
            dense("fc1", 300),
            Relu,
            dense("fc2", 100),
            Relu,
            dense("fc3", 10),
        ],
        // LeNet-5: conv 6@5x5 pad 2, pool, conv 16@5x5, pool, 120, 84, 10
        ModelKind::Lenet5 => vec![
            conv("conv1", 6, 5, 2),
            Relu,
            pool(),
            conv("conv2", 16, 5, 0),
            Relu,
            pool(),
            Flatten,
            dense("fc1", 120),
            Relu,
            dense("fc2", 84),
            Relu,
            dense("fc3", 10),
        ],
        // the seed recipe: Conv2D(32, 5x5, same, relu), MaxPool 2, Conv2D(64, 5x5, same),
        // BatchNorm, ReLU, MaxPool 2, Flatten, Dense(1024, relu), Dropout(0.4), Dense(10)
        ModelKind::SeedCnn => vec![
            conv("conv1", 32, 5, 2),
            Relu,
            pool(),
            conv("conv2", 64, 5, 2),
            LayerConfig::Batchnorm2d {
                name: Some("norm".into()),
            },
            Relu,
            pool(),
            Flatten,
            dense("fc1", 1024),
            Relu,
            LayerConfig::Dropout { p: 0.4 },
            dense("fc2", 10),
        ],
        // tfmot's guide: Conv2D(12, 3x3, relu), MaxPool 2, Flatten, Dense(10)
        ModelKind::SmallCnn => vec![
            conv("conv1", 12, 3, 0),
            Relu,
            pool(),
            Flatten,
            dense("fc1", 10),
        ],
        ModelKind::Custom => return None,
    };
    Some(StackConfig {
        input: [1, 28, 28],
        layers,
    })
}
