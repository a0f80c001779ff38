//! The training kernels on the seed CNN's shapes (batch 128), each beside burn's own flex
//! operation on the same data, so each group's first line is its reference:
//!
//!     cargo bench --bench training
//!
//! conv2 is 32 -> 64 channels, 5x5, padding 2, on 14x14; fc1 is 3136 -> 1024; batch norm
//! with its ReLU apart and folded in on ResNet-20's first stage (16 channels, 28x28). Then one 3x3
//! convolution of each ResNet-20 stage (16 channels on 28x28, 32 on 14x14, 64 on 7x7): the
//! first is read in place from a padded channels-last copy, the others through
//! channels-last receptive-field rows.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNormConfig, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};
use sparsity_explorer::kernels::{batch_norm, batch_norm_relu, conv2d, linear};

fn training(c: &mut Criterion) {
    let device = Device::flex();
    let train = device.clone().autodiff();
    let conv = Conv2dConfig::new([32, 64], [5, 5])
        .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
        .init(&train);
    let x = Tensor::<4>::random([128, 32, 14, 14], Distribution::Default, &train);

    let mut group = c.benchmark_group("conv2 forward and backward");
    group.sample_size(10);
    group.bench_function("burn flex", |b| {
        b.iter(|| {
            let y = conv.forward(x.clone().require_grad());
            black_box(y.sum().backward())
        })
    });
    group.bench_function("kernels", |b| {
        b.iter(|| {
            let y = conv2d(&conv, x.clone().require_grad());
            black_box(y.sum().backward())
        })
    });
    group.finish();

    let inference = conv.valid();
    let xi = x.clone().inner();
    let mut group = c.benchmark_group("conv2 forward");
    group.sample_size(10);
    group.bench_function("burn flex", |b| {
        b.iter(|| black_box(inference.forward(xi.clone())))
    });
    group.bench_function("kernels", |b| {
        b.iter(|| black_box(conv2d(&inference, xi.clone())))
    });
    group.finish();

    let norm = BatchNormConfig::new(64).init(&train);
    let h = Tensor::<4>::random([128, 64, 14, 14], Distribution::Default, &train);
    let mut group = c.benchmark_group("batch norm forward and backward");
    group.sample_size(10);
    group.bench_function("burn flex", |b| {
        b.iter(|| black_box(norm.forward(h.clone().require_grad()).sum().backward()))
    });
    group.bench_function("kernels", |b| {
        b.iter(|| black_box(batch_norm(&norm, h.clone().require_grad()).sum().backward()))
    });
    group.finish();

    let norm = BatchNormConfig::new(16).init(&train);
    let h = Tensor::<4>::random([128, 16, 28, 28], Distribution::Default, &train);
    let mut group = c.benchmark_group("batch norm and ReLU forward and backward");
    group.sample_size(20);
    group.bench_function("kernels, ReLU apart", |b| {
        b.iter(|| {
            let y = relu(batch_norm(&norm, h.clone().require_grad()));
            black_box(y.sum().backward())
        })
    });
    group.bench_function("kernels, ReLU folded in", |b| {
        b.iter(|| {
            black_box(
                batch_norm_relu(&norm, h.clone().require_grad())
                    .sum()
                    .backward(),
            )
        })
    });
    group.finish();

    let fc1 = LinearConfig::new(3136, 1024).init(&train);
    let f = Tensor::<2>::random([128, 3136], Distribution::Default, &train);
    let mut group = c.benchmark_group("fc1 forward and backward");
    group.sample_size(10);
    group.bench_function("burn flex", |b| {
        b.iter(|| black_box(fc1.forward(f.clone().require_grad()).sum().backward()))
    });
    group.bench_function("kernels", |b| {
        b.iter(|| black_box(linear(&fc1, f.clone().require_grad()).sum().backward()))
    });
    group.finish();

    for (channels, side) in [(16, 28), (32, 14), (64, 7)] {
        let conv = Conv2dConfig::new([channels, channels], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init(&train);
        let x = Tensor::<4>::random([128, channels, side, side], Distribution::Default, &train);
        let name = format!("resnet20 3x3 {channels} channels {side}x{side} forward and backward");
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        group.bench_function("burn flex", |b| {
            b.iter(|| black_box(conv.forward(x.clone().require_grad()).sum().backward()))
        });
        group.bench_function("kernels", |b| {
            b.iter(|| black_box(conv2d(&conv, x.clone().require_grad()).sum().backward()))
        });
        group.finish();
    }
}

criterion_group!(benches, training);
criterion_main!(benches);
