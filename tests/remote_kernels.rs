//! The training kernels on a served flex device (burn custom operations that `serve` runs
//! with the flex implementation) compute what they compute here: forward passes, every
//! gradient, and Adam steps, on loopback. A wgpu server has no kernels and says so.

use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNormConfig, LinearConfig, PaddingConfig2d};
use burn::optim::Optimizer;
use burn::tensor::{Device, Distribution, Tensor};
use sparsity_explorer::kernels::{
    FusedAdam, batch_norm, conv2d, kernels_run_on, linear, max_pool2d,
};
use sparsity_explorer::train::backend::connect;

mod common;
use common::Server;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn assert_close(what: &str, remote: Vec<f32>, local: Vec<f32>) {
    assert_eq!(remote.len(), local.len(), "{what}: sizes");
    assert!(!local.is_empty(), "{what}: nothing to compare");
    for (i, (r, l)) in remote.iter().zip(&local).enumerate() {
        assert!(
            (r - l).abs() <= 1e-5 * (1.0 + l.abs()),
            "{what}[{i}]: remote {r}, here {l}"
        );
    }
}

#[test]
fn the_kernels_on_a_served_device_compute_what_they_compute_here() {
    let server = Server::start(None);
    let (remote, info) = connect(&server.url, None).expect("the server answers");
    assert_eq!(info.device, format!("CPU (flex) on {}", server.url));
    assert!(info.note.is_none(), "{info:?}");
    assert!(
        kernels_run_on(&remote),
        "the server said it runs the kernels"
    );
    assert!(kernels_run_on(&remote.clone().autodiff()));

    let here = Device::flex().autodiff();
    let there = remote.autodiff();
    let conv = Conv2dConfig::new([2, 4], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&here);
    let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    let dense = LinearConfig::new(4 * 3 * 3, 5).init(&here);
    let x = Tensor::<4>::random([3, 2, 6, 6], Distribution::Default, &here);

    // the same layers and input on both devices, through every kernel (a batch norm is
    // made on each: clones of one would share their running statistics)
    let pass = |device: &Device| {
        let (conv, dense) = (conv.clone().fork(device), dense.clone().fork(device));
        let norm = BatchNormConfig::new(4).init(device);
        let x = x.clone().to_device(device).require_grad();
        let h = batch_norm(&norm, conv2d(&conv, x.clone())); // [3, 4, 6, 6]
        let h = max_pool2d(&pool, h).flatten::<2>(1, 3); // [3, 36]
        let y = linear(&dense, h); // [3, 5]
        let loss = (y.clone() * y.clone()).sum();
        let grads = loss.backward();
        vec![
            ("output", values(y)),
            ("dx", values(x.grad(&grads).unwrap())),
            ("conv dweight", values(conv.weight.grad(&grads).unwrap())),
            (
                "conv dbias",
                values(conv.bias.as_ref().unwrap().grad(&grads).unwrap()),
            ),
            ("norm dgamma", values(norm.gamma.grad(&grads).unwrap())),
            ("norm dbeta", values(norm.beta.grad(&grads).unwrap())),
            ("dense dweight", values(dense.weight.grad(&grads).unwrap())),
            (
                "dense dbias",
                values(dense.bias.as_ref().unwrap().grad(&grads).unwrap()),
            ),
            ("running mean", values(norm.running_mean.value_sync())),
        ]
    };
    for ((what, r), (_, l)) in pass(&there).into_iter().zip(pass(&here)) {
        assert_close(what, r, l);
    }

    // two Adam steps, one pass over parameter and moments each, on both devices
    let adam = FusedAdam::default();
    let param = Tensor::<2>::random([40, 30], Distribution::Default, &here.clone().inner());
    let grad = Tensor::<2>::random([40, 30], Distribution::Default, &here.clone().inner());
    let steps = |device: &Device| {
        let (mut p, mut state) = (param.clone().to_device(device), None);
        for _ in 0..2 {
            (p, state) = adam.step(1e-2, p, grad.clone().to_device(device), state);
        }
        let state = state.unwrap().momentum;
        [p, state.moment_1, state.moment_2].map(values)
    };
    let (r, l) = (steps(&there.clone().inner()), steps(&here.clone().inner()));
    assert_ne!(l[0], values(param), "the steps moved the parameter");
    for ((what, r), l) in ["parameter", "moment 1", "moment 2"].iter().zip(r).zip(l) {
        assert_close(what, r, l);
    }
}

#[test]
#[ignore = "needs a wgpu adapter: a GPU, or Mesa's mesa-vulkan-drivers (.ci/run installs it)"]
fn a_wgpu_server_names_its_adapter_and_a_run_there_uses_burns_operations() {
    // a test that cannot run says so: without an adapter it fails, naming what to install
    let server = Server::start_on("wgpu", None).unwrap_or_else(|e| {
        panic!("needs a wgpu adapter (a GPU, or Mesa's mesa-vulkan-drivers): {e}")
    });
    // "serving wgpu (llvmpipe (LLVM ...) (Vulkan)) on ws://127.0.0.1:PORT without a token"
    let adapter = server
        .banner
        .strip_prefix("serving wgpu (")
        .and_then(|rest| rest.rsplit_once(") on ws://"))
        .map(|(adapter, _)| adapter.to_string())
        .unwrap_or_else(|| panic!("{}", server.banner));
    let (device, info) = connect(&server.url, None).expect("the server answers");
    assert_eq!(info.device, format!("{adapter} on {}", server.url));
    assert_eq!(
        info.note.as_deref(),
        Some("wgpu server: burn's own operations, not the CPU kernels")
    );
    assert!(!kernels_run_on(&device));
    // a dense layer there is burn's, and computes what the kernel computes here
    let here = Device::flex();
    let dense = LinearConfig::new(6, 3).init(&here);
    let x = Tensor::<2>::random([4, 6], Distribution::Default, &here);
    let there = values(linear(
        &dense.clone().fork(&device),
        x.clone().to_device(&device),
    ));
    assert_close("dense layer", there, values(linear(&dense, x)));
}
