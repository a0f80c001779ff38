//! A small graph with every layer kind a graph brings (a strided and a depthwise
//! convolution, a residual add, concatenations of images and of features, global average
//! pooling, tokens, positions, layer norm, attention, GELU, dense layers on tokens, the
//! mean of the tokens) computes the same logits and the same input gradient on every
//! device: here on flex (the host kernels), on a served flex device (the kernels shipped
//! as custom operations), and on wgpu (burn's own operations) where an adapter exists.

use burn::tensor::{Device, Tensor, TensorData};
use sparsity_explorer::model::{CLASSES, Network, StackConfig};
use sparsity_explorer::plan::ExperimentPlan;
use sparsity_explorer::train::backend::connect;
use sparsity_explorer::train::{BackendChoice, select};

mod common;
use common::Server;

const GRAPH: &str = r#"
model = "custom"
input = [1, 28, 28]

[[layers]]
type = "conv2d"
name = "stem"
out = 8
kernel = 3
stride = 2
padding = 1
[[layers]]
type = "batchnorm2d"
[[layers]]
type = "relu"
name = "a"
[[layers]]
type = "conv2d"
name = "depthwise"
out = 8
kernel = 3
padding = 1
groups = 8
bias = false
[[layers]]
type = "conv2d"
name = "pointwise"
out = 8
kernel = 1
[[layers]]
type = "add"
name = "sum"
inputs = ["a", "pointwise"]
[[layers]]
type = "conv2d"
name = "side"
input = "a"
out = 4
kernel = 1
[[layers]]
type = "concat"
name = "cat"
inputs = ["sum", "side"]
[[layers]]
type = "conv2d"
name = "patch"
out = 16
kernel = 2
stride = 2
[[layers]]
type = "tokens"
[[layers]]
type = "position"
name = "pos"
[[layers]]
type = "layernorm"
[[layers]]
type = "attention"
name = "attn"
heads = 2
[[layers]]
type = "linear"
name = "up"
out = 32
[[layers]]
type = "gelu"
[[layers]]
type = "linear"
name = "down"
out = 16
[[layers]]
type = "mean_tokens"
name = "pooled_tokens"
[[layers]]
type = "global_avgpool"
name = "pooled_image"
input = "cat"
[[layers]]
type = "concat"
name = "features"
inputs = ["pooled_tokens", "pooled_image"]
[[layers]]
type = "linear"
name = "fc"
out = 10
"#;

fn graph() -> StackConfig {
    ExperimentPlan::from_toml(GRAPH, "test")
        .unwrap()
        .stack()
        .unwrap()
}

/// The logits and the input gradient of `sum(logits²)`, for the network built here with
/// the same parameters on `device`.
fn pass(here: &Network, device: &Device, images: &Tensor<4>) -> [Vec<f32>; 2] {
    let mut network = Network::new(&graph(), CLASSES, device).unwrap();
    network.write_params(&here.read_params()).unwrap();
    let x = images.clone().to_device(device).require_grad();
    let logits = network.forward(x.clone());
    let grads = (logits.clone() * logits.clone()).sum().backward();
    let dx = x.grad(&grads).expect("the input has a gradient");
    [logits, dx.flatten::<2>(1, 3)].map(|t| t.into_data().try_to_vec::<f32>().unwrap())
}

fn here_and_images() -> (Network, Tensor<4>) {
    let device = Device::flex().autodiff();
    let network = Network::new(&graph(), CLASSES, &device).unwrap();
    // the same images on every run, so that a difference is reproducible
    let values: Vec<f32> = (0..3 * 28 * 28)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let images = Tensor::<4>::from_data(TensorData::new(values, [3, 1, 28, 28]), &device);
    (network, images)
}

fn assert_close(what: &str, there: &[f32], here: &[f32], tolerance: f32) {
    assert_eq!(there.len(), here.len(), "{what}: sizes");
    assert!(here.iter().any(|&v| v != 0.0), "{what}: all zero here");
    let scale = here.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (t, h)) in there.iter().zip(here).enumerate() {
        assert!(
            (t - h).abs() <= tolerance * scale,
            "{what}[{i}]: {t} there, {h} here (largest {scale})"
        );
    }
}

#[test]
fn a_graph_computes_the_same_on_a_served_flex_device() {
    let (here, images) = here_and_images();
    let server = Server::start(None);
    let (remote, _) = connect(&server.url, None).expect("the server answers");
    let local = pass(&here, &Device::flex().autodiff(), &images);
    let served = pass(&here, &remote.autodiff(), &images);
    assert_close("logits", &served[0], &local[0], 1e-5);
    assert_close("input gradient", &served[1], &local[1], 1e-5);
}

#[test]
#[ignore = "needs a wgpu adapter: a GPU, or Mesa's mesa-vulkan-drivers (.ci/run installs it)"]
fn a_graph_computes_on_wgpu_what_the_kernels_compute() {
    // a test that cannot run says so: without an adapter it fails, naming what to install
    let (device, info) = select(BackendChoice::Wgpu).unwrap_or_else(|e| {
        panic!("needs a wgpu adapter (a GPU, or Mesa's mesa-vulkan-drivers): {e}")
    });
    println!("on {} ({})", info.device, info.backend);
    let (here, images) = here_and_images();
    let local = pass(&here, &Device::flex().autodiff(), &images);
    let gpu = pass(&here, &device.autodiff(), &images);
    // burn's operations on the GPU sum in other orders than the kernels through some twenty
    // layers of f32: the input gradient differed by up to 1.02e-4 of its largest value
    assert_close("logits", &gpu[0], &local[0], 1e-3);
    assert_close("input gradient", &gpu[1], &local[1], 1e-3);
}
