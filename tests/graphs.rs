//! The graph networks against PyTorch: `ResNet20` and `VitTiny` of
//! `bench/torch_reference.py`, loaded from a `state_dict` that `bench/graph_fixtures.py`
//! saved, give the logits PyTorch recorded for the same images.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::SafeTensors;
use sparsity_explorer::model::{CLASSES, ModelKind, Network, read_state_dict};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A tensor of a safetensors file: its values and shape.
fn tensor(path: &Path, key: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let view = file.tensor(key).unwrap();
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (values, view.shape().to_vec())
}

/// The logits of `stack` with the parameters in `weights` on the images recorded in
/// `recorded`.
fn logits_on_recorded_images(
    stack: &sparsity_explorer::model::StackConfig,
    weights: &Path,
    recorded: &Path,
) -> Vec<f32> {
    let params = read_state_dict(weights, stack).unwrap();
    let device = Device::default();
    let mut network = Network::new(stack, CLASSES, &device).unwrap();
    network.write_params(&params).unwrap();
    let (images, dims) = tensor(recorded, "images");
    let images = Tensor::<4>::from_data(
        TensorData::new(images, [dims[0], dims[1], dims[2], dims[3]]),
        &device,
    );
    network.forward(images).into_data().iter::<f32>().collect()
}

/// The model's logits on the recorded images, and PyTorch's.
fn logits(kind: ModelKind, stem: &str) -> (Vec<f32>, Vec<f32>) {
    let weights = fixture(&format!("{stem}.safetensors"));
    let recorded = fixture(&format!("{stem}-logits.safetensors"));
    let ours = logits_on_recorded_images(&kind.stack().unwrap(), &weights, &recorded);
    (ours, tensor(&recorded, "logits").0)
}

fn assert_close(kind: ModelKind, ours: &[f32], torch: &[f32]) {
    assert_eq!(ours.len(), torch.len(), "{kind}");
    for (i, (a, b)) in ours.iter().zip(torch).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
            "{kind}: logit {i} is {a}, PyTorch's {b}"
        );
    }
}

#[test]
fn resnet20_loads_pytorchs_state_dict_and_gives_its_logits() {
    let (ours, torch) = logits(ModelKind::Resnet20, "resnet20");
    assert_close(ModelKind::Resnet20, &ours, &torch);
}

#[test]
fn vit_tiny_loads_pytorchs_state_dict_and_gives_its_logits() {
    let (ours, torch) = logits(ModelKind::VitTiny, "vit_tiny");
    assert_close(ModelKind::VitTiny, &ours, &torch);
}

/// The host inference of a model (dense and sparse paths) on the recorded images, and
/// PyTorch's logits.
fn host_logits(kind: ModelKind, stem: &str, sparse: bool) -> (Vec<f32>, Vec<f32>) {
    let stack = kind.stack().unwrap();
    let params = read_state_dict(&fixture(&format!("{stem}.safetensors")), &stack).unwrap();
    let net = sparsity_explorer::infer::net::Net::build(&stack, &params, &[], sparse).unwrap();
    let recorded = fixture(&format!("{stem}-logits.safetensors"));
    let (images, dims) = tensor(&recorded, "images");
    (net.forward(&images, dims[0]), tensor(&recorded, "logits").0)
}

#[test]
fn host_inference_runs_both_graphs_as_pytorch_does() {
    for sparse in [false, true] {
        let (ours, torch) = host_logits(ModelKind::Resnet20, "resnet20", sparse);
        assert_close(ModelKind::Resnet20, &ours, &torch);
        let (ours, torch) = host_logits(ModelKind::VitTiny, "vit_tiny", sparse);
        assert_close(ModelKind::VitTiny, &ours, &torch);
    }
}

#[test]
fn the_graph_models_prunable_layers_are_pytorchs_names() {
    let names = |kind: ModelKind| -> Vec<String> {
        kind.layer_specs().into_iter().map(|s| s.name).collect()
    };
    let resnet = names(ModelKind::Resnet20);
    assert_eq!(
        resnet.len(),
        1 + 9 * 2 + 2 + 1,
        "stem, 18 block convs, 2 shortcuts, fc"
    );
    for expected in [
        "stem",
        "blocks.0.c1",
        "blocks.3.short.0",
        "blocks.8.c2",
        "fc",
    ] {
        assert!(
            resnet.iter().any(|n| n == expected),
            "{expected} in {resnet:?}"
        );
    }
    let vit = names(ModelKind::VitTiny);
    assert_eq!(
        vit.len(),
        1 + 4 * 4 + 1,
        "patch, 4 x (in_proj, out_proj, linear1, linear2), fc"
    );
    for expected in [
        "patch",
        "encoder.layers.0.self_attn.in_proj",
        "encoder.layers.3.self_attn.out_proj",
        "encoder.layers.2.linear1",
        "fc",
    ] {
        assert!(vit.iter().any(|n| n == expected), "{expected} in {vit:?}");
    }
}

/// A small network with every new layer kind: a residual block, tokens with positions,
/// a pre-norm attention block and an MLP on tokens, on the built-in 28x28 digits.
const TINY_GRAPH: &str = r#"
name = "tiny graph"
model = "custom"
input = [1, 28, 28]
dataset = "builtin"

[training]
epochs = 3
batch = 32
backend = "flex"

[[layers]]
type = "conv2d"
name = "stem"
out = 8
kernel = 4
stride = 4
[[layers]]
type = "batchnorm2d"
name = "stem_bn"
[[layers]]
type = "relu"
name = "stem_out"
[[layers]]
type = "conv2d"
name = "block.c1"
out = 8
kernel = 3
padding = 1
bias = false
[[layers]]
type = "batchnorm2d"
name = "block.b1"
[[layers]]
type = "add"
name = "block.add"
inputs = ["block.b1", "stem_out"]
[[layers]]
type = "tokens"
[[layers]]
type = "position"
name = "pos"
[[layers]]
type = "layernorm"
name = "norm1"
[[layers]]
type = "attention"
name = "attn"
heads = 2
[[layers]]
type = "add"
name = "attended"
inputs = ["attn", "pos"]
[[layers]]
type = "linear"
name = "mlp1"
out = 16
[[layers]]
type = "gelu"
[[layers]]
type = "linear"
name = "mlp2"
out = 8
[[layers]]
type = "mean_tokens"
[[layers]]
type = "linear"
name = "fc"
out = 10
"#;

fn tiny_session(
    granularity: &str,
    criterion: sparsity_explorer::prune::Criterion,
) -> sparsity_explorer::train::Session {
    use sparsity_explorer::data::Dataset;
    use sparsity_explorer::plan::ExperimentPlan;
    use sparsity_explorer::train::{BackendChoice, Session, select};
    use std::sync::Arc;
    let mut plan = ExperimentPlan::from_toml(TINY_GRAPH, "tiny graph").unwrap();
    plan.pruning.granularity = granularity.parse().unwrap();
    plan.pruning.criterion = criterion;
    let data = Arc::new(Dataset::builtin().unwrap());
    let (device, info) = select(BackendChoice::Flex).unwrap();
    Session::new(plan, data, device, info).unwrap()
}

#[test]
fn every_criterion_prunes_every_new_layer_and_training_goes_on() {
    use sparsity_explorer::prune::{Criterion, sparsity};
    for criterion in Criterion::ALL {
        let mut s = tiny_session("unstructured", criterion);
        for _ in 0..3 {
            s.train_step().unwrap();
        }
        s.prune(0.5).unwrap();
        let rules = s.rules();
        for (rule, mask) in rules.iter().zip(s.masks()) {
            let mask = mask.unwrap_or_else(|| panic!("{criterion}: {} has no mask", rule.name));
            let got = sparsity(&mask);
            assert!(
                (got - 0.5).abs() < 0.05,
                "{criterion}: {} at {got}",
                rule.name
            );
        }
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "stem",
                "block.c1",
                "attn.in_proj",
                "attn.out_proj",
                "mlp1",
                "mlp2",
                "fc"
            ]
        );
        let loss = s.train_step().unwrap().loss;
        assert!(loss.is_finite(), "{criterion}: loss {loss}");
    }
}

#[test]
fn heads_are_pruned_whole_in_both_projections() {
    use sparsity_explorer::prune::Criterion;
    for criterion in [Criterion::Magnitude, Criterion::Wanda] {
        let mut s = tiny_session("head", criterion);
        s.train_step().unwrap();
        s.prune(0.5).unwrap();
        let masks = s.masks();
        let (d, hd) = (8, 4);
        let in_proj = masks[2].as_ref().expect("in_proj is cut by heads");
        let out_proj = masks[3].as_ref().expect("out_proj is cut by heads");
        let row_kept = |r: usize| in_proj[r * d..(r + 1) * d].iter().all(|&m| m == 1);
        let row_gone = |r: usize| in_proj[r * d..(r + 1) * d].iter().all(|&m| m == 0);
        let pruned: Vec<usize> = (0..2).filter(|&h| row_gone(h * hd)).collect();
        assert_eq!(pruned.len(), 1, "{criterion}: one of two heads goes");
        for h in 0..2 {
            let gone = pruned.contains(&h);
            for part in 0..3 {
                for r in part * d + h * hd..part * d + (h + 1) * hd {
                    assert!(if gone { row_gone(r) } else { row_kept(r) }, "row {r}");
                }
            }
            for row in out_proj.chunks(d) {
                assert!(
                    row[h * hd..(h + 1) * hd]
                        .iter()
                        .all(|&m| m == u8::from(!gone))
                );
            }
        }
        // the other layers cannot take heads and stay dense, saying why
        let rules = s.rules();
        assert!(rules[0].granularity.is_none());
        assert!(
            rules[0]
                .dense_reason
                .as_deref()
                .unwrap()
                .contains("attention")
        );
        assert!(s.train_step().unwrap().loss.is_finite());
    }
}

#[test]
fn a_channel_group_loses_the_same_channels_in_every_member() {
    use sparsity_explorer::prune::{Criterion, GroupKind};
    let mut s = tiny_session("channel", Criterion::Magnitude);
    for _ in 0..3 {
        s.train_step().unwrap();
    }
    s.prune(0.5).unwrap();
    let masks = s.masks();
    let rules = s.rules();
    let groups: Vec<_> = s
        .unit_groups()
        .iter()
        .filter(|g| g.kind == GroupKind::Channels)
        .cloned()
        .collect();
    // the residual block's channels meet a layer norm (no group); the MLP's hidden
    // channels and its outputs, which the classifier reads through the mean, are groups
    assert_eq!(groups.len(), 2);
    for g in &groups {
        // the channels each member lost, from its rows or its columns
        let mut lost: Vec<Vec<usize>> = Vec::new();
        for p in &g.producers {
            let m = masks[p.weight].as_ref().unwrap();
            let row = rules[p.weight].shape.row_len();
            lost.push(
                (0..g.channels)
                    .filter(|&c| {
                        p.range(c)
                            .all(|r| m[r * row..(r + 1) * row].iter().all(|&v| v == 0))
                    })
                    .collect(),
            );
        }
        for r in &g.readers {
            let m = masks[r.weight].as_ref().unwrap();
            let row = rules[r.weight].shape.row_len();
            lost.push(
                (0..g.channels)
                    .filter(|&c| m.chunks(row).all(|w| w[r.range(c)].iter().all(|&v| v == 0)))
                    .collect(),
            );
        }
        assert_eq!(lost[0].len(), g.channels / 2, "{g:?}");
        assert!(lost.iter().all(|l| *l == lost[0]), "{g:?}: {lost:?}");
    }
}

#[test]
fn an_export_takes_the_pruned_channel_groups_out_and_the_smaller_network_loads_its_files() {
    use sparsity_explorer::model::StackConfig;
    use sparsity_explorer::prune::Criterion;
    use sparsity_explorer::train::export_session;
    let mut s = tiny_session("channel", Criterion::Magnitude);
    for _ in 0..20 {
        s.train_step().unwrap();
    }
    s.prune(0.5).unwrap();
    let dir = std::env::temp_dir().join(format!("se-graph-export-{}", std::process::id()));
    let report = export_session(&s, &dir).unwrap();
    let compact = report.compact.expect("channel groups were removed");
    assert!(compact.macs_after < compact.macs_before);
    assert!(compact.params_after < compact.params_before);
    let narrower: Vec<(&str, usize, usize)> = compact
        .widths
        .iter()
        .map(|w| (w.layer.as_str(), w.before, w.after))
        .collect();
    assert_eq!(narrower, [("mlp1", 16, 8), ("mlp2", 8, 4)]);
    // the same function as the masked network: pruned channels only ever met masked weights
    assert!(
        (compact.accuracy - report.accuracy).abs() <= 0.001,
        "{} against {}",
        compact.accuracy,
        report.accuracy
    );
    // the description's network and the weights file load on their own
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&compact.description).unwrap()).unwrap();
    let stack: StackConfig = toml::from_str(json["network"].as_str().unwrap()).unwrap();
    let params = read_state_dict(&compact.weights, &stack).unwrap();
    let mut network = Network::new(&stack, CLASSES, &Device::default()).unwrap();
    network.write_params(&params).unwrap();
    let mlp2 = params.iter().find(|t| t.name == "mlp2.weight").unwrap();
    assert_eq!(mlp2.dims, [4, 8]);
    assert_eq!(json["macs_after"], compact.macs_after);
    std::fs::remove_dir_all(dir).unwrap();
}

/// ResNet-20 from the recorded state_dict, every channel group halved by magnitude (widths
/// multiples of 8) and exported without training. PyTorch's `ResNet20`, built at the
/// widths of the export's JSON by `bench/compact_fixture.py`, loaded the export's weights
/// file strictly and recorded its logits: the smaller network gives them, and the JSON
/// still gives those widths. `SPX_COMPACT_EXPORT=DIR` keeps the export in DIR for the
/// script.
#[test]
fn a_pytorch_module_built_at_the_exports_widths_loads_its_file_and_computes_the_same() {
    use sparsity_explorer::data::Dataset;
    use sparsity_explorer::model::StackConfig;
    use sparsity_explorer::plan::ExperimentPlan;
    use sparsity_explorer::train::{BackendChoice, Session, export_session, select};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    let mut plan = ExperimentPlan::preset("resnet20").unwrap();
    plan.pruning.granularity = "channel".parse().unwrap();
    plan.pruning.round_to = 8;
    let data = Arc::new(Dataset::builtin().unwrap());
    let (device, info) = select(BackendChoice::Flex).unwrap();
    let mut s = Session::new(plan, data, device, info).unwrap();
    s.load_weights(&fixture("resnet20.safetensors")).unwrap();
    s.prune(0.5).unwrap();
    let dir = match std::env::var_os("SPX_COMPACT_EXPORT") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("se-compact-torch-{}", std::process::id())),
    };
    let compact = export_session(&s, &dir).unwrap().compact.unwrap();

    let recorded = std::fs::read(fixture("resnet20-compact-logits.safetensors")).unwrap();
    let (_, metadata) = SafeTensors::read_metadata(&recorded).unwrap();
    let pytorch_widths: BTreeMap<String, usize> =
        serde_json::from_str(&metadata.metadata().as_ref().unwrap()["widths"]).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&compact.description).unwrap()).unwrap();
    let widths: BTreeMap<String, usize> = json["widths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["layer"].as_str().unwrap().into(),
                w["after"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert_eq!(widths, pytorch_widths);
    assert_eq!(widths["blocks.8.c2"], 32, "64 channels halved");

    let stack: StackConfig = toml::from_str(json["network"].as_str().unwrap()).unwrap();
    let recorded = fixture("resnet20-logits.safetensors");
    let ours = logits_on_recorded_images(&stack, &compact.weights, &recorded);
    let (theirs, _) = tensor(&fixture("resnet20-compact-logits.safetensors"), "logits");
    assert_close(ModelKind::Resnet20, &ours, &theirs);
    if std::env::var_os("SPX_COMPACT_EXPORT").is_none() {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
