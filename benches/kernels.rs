//! Sparse inference kernels against the dense kernel on LeNet-300-100's first layer
//! (300 x 784), at batch 1 and 128, for 50/80/90/95% unstructured sparsity and 2:4.
//!
//!     cargo bench --bench kernels
//!
//! Each group has the dense kernel as its reference; compare the times within a group.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use sparsity_explorer::infer::{Linear, choose};
use sparsity_explorer::prune::{
    Criterion as Rank, Granularity, LayerShape, layer_mask, random_score,
};

fn kernels(c: &mut Criterion) {
    let (out, inp) = (300usize, 784usize);
    let shape = LayerShape::linear(out, inp);
    let w: Vec<f32> = (0..out * inp)
        .map(|i| random_score(1, i as u64) as f32 - 0.5)
        .collect();
    let b = vec![0.1f32; out];
    for batch in [1usize, 128] {
        let x: Vec<f32> = (0..batch * inp)
            .map(|i| random_score(2, i as u64) as f32)
            .collect();
        let mut group = c.benchmark_group(format!("fc1 300x784 batch {batch}"));
        let dense = Linear::Dense {
            out,
            inp,
            w: w.clone(),
            b: b.clone(),
        };
        // batch 128 runs in the transposed layout, as Mlp::forward does
        let run = move |k: &Linear, x: &[f32]| {
            if batch >= sparsity_explorer::infer::BATCHED_FROM {
                k.forward_transposed(x, batch)
            } else {
                k.forward(x, batch)
            }
        };
        group.bench_function("dense", |bench| {
            bench.iter(|| black_box(run(&dense, black_box(&x))))
        });
        for sparsity in [0.5, 0.8, 0.9, 0.95] {
            let mask = layer_mask(
                &w,
                &shape,
                Granularity::Unstructured,
                Rank::Magnitude,
                sparsity,
                0,
            )
            .unwrap();
            let csr = choose(out, inp, &w, &mask, b.clone());
            group.bench_with_input(BenchmarkId::new("csr", sparsity), &csr, |bench, k| {
                bench.iter(|| black_box(run(k, black_box(&x))))
            });
        }
        let mask = layer_mask(
            &w,
            &shape,
            Granularity::NOfM { n: 2, m: 4 },
            Rank::Magnitude,
            0.5,
            0,
        )
        .unwrap();
        let nm = choose(out, inp, &w, &mask, b.clone());
        group.bench_function("2:4", |bench| {
            bench.iter(|| black_box(run(&nm, black_box(&x))))
        });
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
