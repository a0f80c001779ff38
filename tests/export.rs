//! The sparse model file and the sparse inference kernels.

use proptest::prelude::*;
use sparsity_explorer::export::spx::{FormatError, decode};
use sparsity_explorer::export::{ExportInputs, ValueFormat};
use sparsity_explorer::infer::{Linear, Mlp, choose};
use sparsity_explorer::model::{HostTensor, ModelKind};
use sparsity_explorer::plan::ExperimentPlan;
use sparsity_explorer::prune::{At, Granularity, Schedule, random_score};

/// Parameters of a model with random weights, and the masks a plan gives them.
fn pruned(
    model: ModelKind,
    granularity: &str,
    target: f64,
) -> (ExperimentPlan, Vec<HostTensor>, Vec<Option<Vec<u8>>>) {
    let mut plan = ExperimentPlan::preset("quick-demo").unwrap();
    plan.model = model;
    plan.pruning.granularity = granularity.parse().unwrap();
    plan.pruning.schedule = Schedule::OneShot {
        target,
        at: At::Step(0),
    };
    let specs = model.layer_specs();
    let rules = plan.pruning.rules(&specs).unwrap();
    let mut params = Vec::new();
    let mut masks_in = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let n = spec.shape.numel();
        let w: Vec<f32> = (0..n)
            .map(|k| random_score(i as u64 + 7, k as u64) as f32 - 0.5)
            .collect();
        masks_in.push(w.clone());
        params.push(HostTensor {
            name: format!("{}.weight", spec.name),
            dims: spec.shape.dims(),
            values: w,
        });
        params.push(HostTensor {
            name: format!("{}.bias", spec.name),
            dims: vec![spec.shape.out],
            values: (0..spec.shape.out).map(|k| k as f32 * 0.01).collect(),
        });
    }
    let refs: Vec<&[f32]> = masks_in.iter().map(|w| w.as_slice()).collect();
    let masks = plan.pruning.masks(&rules, &refs, target, 1).unwrap();
    for (p, m) in params
        .iter_mut()
        .filter(|p| p.name.ends_with(".weight"))
        .zip(&masks)
    {
        if let Some(m) = m {
            p.values
                .iter_mut()
                .zip(m)
                .for_each(|(v, &k)| *v *= k as f32);
        }
    }
    (plan, params, masks)
}

#[test]
fn every_model_and_granularity_round_trips() {
    for model in [
        ModelKind::Mlp,
        ModelKind::Lenet5,
        ModelKind::SmallCnn,
        ModelKind::SeedCnn,
    ] {
        for g in ["unstructured", "2:4", "1:4", "block:4x4", "channel"] {
            let (plan, params, masks) = pruned(model, g, 0.8);
            let rules = plan.pruning.rules(&model.layer_specs()).unwrap();
            let toml = plan.to_toml();
            let inputs = ExportInputs {
                model: model.name(),
                plan_toml: &toml,
                rules: &rules,
                masks: &masks,
                params: &params,
            };
            let f32_file = decode(&inputs.sparse_file(ValueFormat::F32).unwrap()).unwrap();
            assert_eq!(f32_file.params.len(), params.len());
            for p in &params {
                let back = f32_file.params.iter().find(|t| t.name == p.name).unwrap();
                assert_eq!(
                    back.values, p.values,
                    "{model} {g} {}: f32 is exact",
                    p.name
                );
                assert_eq!(back.dims, p.dims);
            }
            assert_eq!(f32_file.header.plan, toml);
            let int8_file = decode(&inputs.sparse_file(ValueFormat::Int8).unwrap()).unwrap();
            for p in &params {
                let back = int8_file.params.iter().find(|t| t.name == p.name).unwrap();
                let row = p.values.len() / p.dims[0];
                for (o, (a, b)) in p
                    .values
                    .chunks(row)
                    .zip(back.values.chunks(row))
                    .enumerate()
                {
                    let max = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    for (x, y) in a.iter().zip(b) {
                        assert!(
                            (x - y).abs() <= max / 127.0 / 2.0 + 1e-7,
                            "{model} {g} {} row {o}",
                            p.name
                        );
                        if *x == 0.0 {
                            assert_eq!(*y, 0.0, "a pruned weight came back");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn two_of_four_and_eighty_percent_files_are_small() {
    let (plan, params, masks) = pruned(ModelKind::Mlp, "unstructured", 0.8);
    let rules = plan.pruning.rules(&ModelKind::Mlp.layer_specs()).unwrap();
    let toml = plan.to_toml();
    let inputs = ExportInputs {
        model: "mlp",
        plan_toml: &toml,
        rules: &rules,
        masks: &masks,
        params: &params,
    };
    let r = inputs.size_report().unwrap();
    let ratio = |b: u64| b as f64 / r.dense_f32_bytes as f64;
    // random weights do not compress: this is the hard case for the value bytes
    assert!(
        ratio(r.sparse_f32_bytes) <= 0.25,
        "{}",
        ratio(r.sparse_f32_bytes)
    );
    assert!(
        ratio(r.sparse_int8_bytes) <= 0.08,
        "{}",
        ratio(r.sparse_int8_bytes)
    );
    assert!(ratio(r.floor_f32_bytes) > 0.2 && ratio(r.floor_f32_bytes) < 0.23);
    let (plan, params, masks) = pruned(ModelKind::Mlp, "2:4", 0.5);
    let rules = plan.pruning.rules(&ModelKind::Mlp.layer_specs()).unwrap();
    let inputs = ExportInputs {
        model: "mlp",
        plan_toml: &toml,
        rules: &rules,
        masks: &masks,
        params: &params,
    };
    let r = inputs.size_report().unwrap();
    assert!(r.sparse_f32_bytes as f64 / r.dense_f32_bytes as f64 <= 0.57);
}

fn sample_file() -> Vec<u8> {
    let (plan, params, masks) = pruned(ModelKind::Mlp, "unstructured", 0.9);
    let rules = plan.pruning.rules(&ModelKind::Mlp.layer_specs()).unwrap();
    let toml = plan.to_toml();
    ExportInputs {
        model: "mlp",
        plan_toml: &toml,
        rules: &rules,
        masks: &masks,
        params: &params,
    }
    .sparse_file(ValueFormat::Int8)
    .unwrap()
}

#[test]
fn bad_files_are_named_errors() {
    let good = sample_file();
    assert!(decode(&good).is_ok());
    assert_eq!(
        decode(b"PK\x03\x04 not ours at all......"),
        Err(FormatError::BadMagic)
    );
    let mut v2 = good.clone();
    v2[4] = 2;
    assert_eq!(decode(&v2), Err(FormatError::Version(2)));
    assert!(matches!(
        decode(&good[..good.len() - 10]),
        Err(FormatError::Truncated(_))
    ));
    let mut flipped = good.clone();
    let mid = 20 + (good.len() - 20) / 2;
    flipped[mid] ^= 0x10;
    assert_eq!(decode(&flipped), Err(FormatError::Checksum));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn truncations_and_bit_flips_are_errors_never_panics(cut in 0usize..10_000, flip in 0usize..100_000, bit in 0u8..8) {
        let good = sample_file();
        let cut = cut % good.len();
        prop_assert!(decode(&good[..cut]).is_err());
        let mut bad = good.clone();
        let at = flip % bad.len();
        bad[at] ^= 1 << bit;
        prop_assert!(decode(&bad).is_err());
    }

    #[test]
    fn sparse_kernels_equal_the_dense_layer(
        out in 1usize..24,
        groups in 1usize..20,
        sparsity in 0.0f64..0.99,
        two_of_four in any::<bool>(),
        batch in 1usize..5,
        seed in any::<u64>(),
    ) {
        let inp = groups * 4;
        let w: Vec<f32> = (0..out * inp).map(|i| random_score(seed, i as u64) as f32 - 0.5).collect();
        let b: Vec<f32> = (0..out).map(|i| random_score(seed ^ 1, i as u64) as f32).collect();
        let x: Vec<f32> = (0..batch * inp).map(|i| random_score(seed ^ 2, i as u64) as f32).collect();
        let shape = sparsity_explorer::prune::LayerShape::linear(out, inp);
        let g = if two_of_four { Granularity::NOfM { n: 2, m: 4 } } else { Granularity::Unstructured };
        let mask = sparsity_explorer::prune::layer_mask(&w, &shape, g, sparsity_explorer::prune::Criterion::Magnitude, sparsity.max(0.01), 0).unwrap();
        let dense = Linear::Dense { out, inp, w: w.iter().zip(&mask).map(|(v, &m)| v * m as f32).collect(), b: b.clone() };
        let sparse = choose(out, inp, &w, &mask, b);
        let (y0, y1) = (dense.forward(&x, batch), sparse.forward(&x, batch));
        for (a, c) in y0.iter().zip(&y1) {
            prop_assert!((a - c).abs() <= 1e-4, "{} vs {}", a, c);
        }
        // the transposed (batched) layout gives the same layer
        let mut xt = vec![0.0f32; x.len()];
        for s in 0..batch {
            for i in 0..inp {
                xt[i * batch + s] = x[s * inp + i];
            }
        }
        let yt = sparse.forward_transposed(&xt, batch);
        for s in 0..batch {
            for o in 0..out {
                prop_assert!((yt[o * batch + s] - y0[s * out + o]).abs() <= 1e-4);
            }
        }
    }

    #[test]
    fn channel_pruned_layers_shrink_and_keep_the_outputs(
        hidden in 4usize..30,
        dead_frac in 0.0f64..0.9,
        seed in any::<u64>(),
    ) {
        let (inp, out) = (12usize, 5usize);
        let r = |s: u64, n: usize| -> Vec<f32> { (0..n).map(|i| random_score(seed ^ s, i as u64) as f32 - 0.3).collect() };
        let (w1, b1, w2, b2) = (r(1, hidden * inp), r(2, hidden), r(3, out * hidden), r(4, out));
        let dead = (hidden as f64 * dead_frac) as usize;
        let mut m1 = vec![1u8; hidden * inp];
        m1[..dead * inp].fill(0);
        let params = vec![
            HostTensor { name: "fc1.weight".into(), dims: vec![hidden, inp], values: w1 },
            HostTensor { name: "fc1.bias".into(), dims: vec![hidden], values: b1 },
            HostTensor { name: "fc2.weight".into(), dims: vec![out, hidden], values: w2 },
            HostTensor { name: "fc2.bias".into(), dims: vec![out], values: b2 },
        ];
        let names = vec!["fc1".to_string(), "fc2".to_string()];
        let masks = vec![Some(m1), None];
        let dense = Mlp::dense(&names, &params, &masks).unwrap();
        let sparse = Mlp::sparse(&names, &params, &masks).unwrap();
        prop_assert_eq!(sparse.layers[0].out(), hidden - dead);
        prop_assert_eq!(sparse.layers[1].inp(), hidden - dead);
        for batch in [3usize, 16] {
            let x = r(5, batch * inp);
            for (a, c) in dense.forward(&x, batch).iter().zip(&sparse.forward(&x, batch)) {
                prop_assert!((a - c).abs() <= 1e-4);
            }
        }
    }
}
