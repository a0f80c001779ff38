//! ONNX in and out. The fixtures (`bench/onnx_fixtures.py`) are PyTorch modules exported by
//! `torch.onnx.export`, with the logits PyTorch and ONNX Runtime gave on recorded images:
//! the import must give them. An export must import back as the same network, and (a test
//! needing `onnxruntime`) ONNX Runtime must compute our outputs from it.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use onnx_ir::{Message, ModelProto, TensorProto};
use safetensors::SafeTensors;
use sparsity_explorer::model::{CLASSES, Network, StackConfig};
use sparsity_explorer::onnx::{OnnxError, import, to_onnx};
use sparsity_explorer::plan::read_weights_file;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("se-onnx-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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

/// The logits of `stack` with the weights in `weights` (safetensors or ONNX) on `images`
/// (`[n, c, h, w]`).
fn logits(stack: &StackConfig, weights: &Path, images: &[f32], n: usize) -> Vec<f32> {
    let params = read_weights_file(weights, stack).unwrap();
    let device = Device::default();
    let mut network = Network::new(stack, CLASSES, &device).unwrap();
    network.write_params(&params).unwrap();
    let [c, h, w] = stack.input;
    let images = Tensor::<4>::from_data(TensorData::new(images.to_vec(), [n, c, h, w]), &device);
    network.forward(images).into_data().iter::<f32>().collect()
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32], tolerance: f32) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= tolerance * (1.0 + b.abs()),
            "{what}: logit {i} is {a}, expected {b}"
        );
    }
}

/// The imported fixture's logits against PyTorch's and ONNX Runtime's.
fn check_fixture(name: &str) -> StackConfig {
    check_fixture_in(name, "onnx-logits.safetensors")
}

/// The same, its logits recorded in `record`.
fn check_fixture_in(name: &str, record: &str) -> StackConfig {
    let path = fixture(&format!("{name}.onnx"));
    let model = import(&path).unwrap_or_else(|e| panic!("{e}"));
    let recorded = fixture(record);
    let (images, dims) = tensor(&recorded, "images");
    let ours = logits(&model.stack, &path, &images, dims[0]);
    let torch = tensor(&recorded, &format!("{name}.torch")).0;
    let ort = tensor(&recorded, &format!("{name}.ort")).0;
    assert_close(&format!("{name} against PyTorch"), &ours, &torch, 1e-4);
    assert_close(&format!("{name} against ONNX Runtime"), &ours, &ort, 1e-4);
    model.stack
}

fn types(stack: &StackConfig) -> Vec<&'static str> {
    stack.layers.iter().map(|l| l.config.type_name()).collect()
}

#[test]
fn pytorch_s_resnet20_exported_to_onnx_imports_and_gives_its_logits() {
    let stack = check_fixture("resnet20");
    let t = types(&stack);
    // the exporter folded each batch norm into its convolution
    assert_eq!(t.iter().filter(|&&t| t == "conv2d").count(), 21, "{t:?}");
    assert_eq!(t.iter().filter(|&&t| t == "add").count(), 9, "{t:?}");
    assert_eq!(stack.input, [1, 28, 28]);
    assert_eq!(t.last(), Some(&"linear"));
}

#[test]
fn a_cnn_with_concat_batch_norm_pools_gelu_and_layer_norm_imports_and_gives_its_logits() {
    let stack = check_fixture("concat-cnn");
    let t = types(&stack);
    for kind in [
        "concat",
        "batchnorm2d",
        "maxpool2d",
        "avgpool2d",
        "gelu",
        "add",
        "tanh",
        "flatten",
        "layernorm",
    ] {
        assert!(t.contains(&kind), "no {kind} in {t:?}");
    }
    // the layers keep PyTorch's module names, from their weights
    let names: Vec<&str> = stack
        .layers
        .iter()
        .filter_map(|l| l.name.as_deref())
        .collect();
    for name in ["stem", "left", "right", "norm", "mix", "fc1", "ln", "fc3"] {
        assert!(names.contains(&name), "no layer {name} in {names:?}");
    }
}

#[test]
fn pytorch_s_sigmoid_imports_as_the_sigmoid_layer_and_gives_its_logits() {
    let stack = check_fixture_in("gate-mlp", "gate-mlp-logits.safetensors");
    assert_eq!(types(&stack), ["flatten", "linear", "sigmoid", "linear"]);
}

/// Writes `stack` with `weights` to ONNX, imports it back, and checks the network and its
/// logits on the recorded images.
fn round_trip(label: &str, stack: &StackConfig, weights: &Path) {
    let params = read_weights_file(weights, stack).unwrap();
    let dir = temp_dir(label);
    let path = dir.join("model.onnx");
    std::fs::write(&path, to_onnx(stack, &params).unwrap()).unwrap();
    let back = import(&path).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(back.stack.input, stack.input, "{label}");
    let configs = |s: &StackConfig| -> Vec<String> {
        s.resolve(None)
            .unwrap()
            .into_iter()
            .filter(|l| l.kind.type_name() != "dropout")
            .map(|l| format!("{:?} -> {:?}", l.kind.type_name(), l.output))
            .collect()
    };
    assert_eq!(configs(&back.stack), configs(stack), "{label}");
    let recorded = fixture("onnx-logits.safetensors");
    let (images, dims) = tensor(&recorded, "images");
    let before = logits(stack, weights, &images, dims[0]);
    let after = logits(&back.stack, &path, &images, dims[0]);
    assert_close(label, &after, &before, 1e-5);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn an_export_imports_back_as_the_same_network_with_the_same_outputs() {
    let concat = import(&fixture("concat-cnn.onnx")).unwrap();
    round_trip("concat-cnn", &concat.stack, &fixture("concat-cnn.onnx"));
    // the built-in ResNet-20 keeps its batch norms in the file
    let resnet = sparsity_explorer::model::ModelKind::Resnet20
        .stack()
        .unwrap();
    round_trip("resnet20", &resnet, &fixture("resnet20.safetensors"));
}

/// The error `bytes` written as `name` give, as text.
fn error_of(name: &str, bytes: &[u8]) -> String {
    let dir = temp_dir(&format!("bad-{}", name.replace('.', "-")));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let e: OnnxError = import(&path).expect_err(name);
    std::fs::remove_dir_all(dir).ok();
    e.to_string()
}

fn concat_cnn() -> ModelProto {
    ModelProto::parse_from_bytes(&std::fs::read(fixture("concat-cnn.onnx")).unwrap()).unwrap()
}

/// `tensor` with its data said to be in the file `location` beside the model: the fields
/// `data_location = EXTERNAL` (14) and `external_data` (13) appended to its encoding, which
/// protobuf merges into the message.
fn external(tensor: &TensorProto, location: &str) -> TensorProto {
    let mut bytes = tensor.write_to_bytes().unwrap();
    bytes.extend([14 << 3, 1]);
    let mut entry = vec![1 << 3 | 2, 8];
    entry.extend(b"location");
    entry.extend([2 << 3 | 2, location.len() as u8]);
    entry.extend(location.as_bytes());
    bytes.extend([13 << 3 | 2, entry.len() as u8]);
    bytes.extend(entry);
    TensorProto::parse_from_bytes(&bytes).unwrap()
}

fn bytes_of(model: &ModelProto) -> Vec<u8> {
    model.write_to_bytes().unwrap()
}

#[test]
fn a_bad_file_is_one_clear_error_naming_what_is_wrong() {
    let good = std::fs::read(fixture("concat-cnn.onnx")).unwrap();
    let e = error_of("truncated.onnx", &good[..good.len() / 2]);
    assert!(e.contains("truncated.onnx") && e.contains("ONNX"), "{e}");

    let mut m = concat_cnn();
    let tanh = m
        .graph
        .mut_or_insert_default()
        .node
        .iter_mut()
        .find(|n| n.op_type == "Tanh")
        .unwrap();
    tanh.op_type = "Softplus".into();
    let e = error_of("unsupported.onnx", &bytes_of(&m));
    assert!(
        e.contains("\"/Tanh\"") && e.contains("Softplus") && e.contains("Conv"),
        "{e}"
    );

    // a weight that does not fit the channels its layer reads
    let mut m = concat_cnn();
    let w = m
        .graph
        .mut_or_insert_default()
        .initializer
        .iter_mut()
        .find(|t| t.name == "left.weight")
        .unwrap();
    w.dims = vec![8, 4, 3, 3];
    w.raw_data = w.raw_data.slice(..8 * 4 * 9 * 4);
    let e = error_of("mismatched-weight.onnx", &bytes_of(&m));
    assert!(e.contains("left") && e.contains("[8, 4, 3, 3]"), "{e}");

    // a residual sum of a 28x28 and a 14x14 image
    let mut m = concat_cnn();
    let add = m
        .graph
        .mut_or_insert_default()
        .node
        .iter_mut()
        .find(|n| n.name == "/Add_1")
        .unwrap();
    add.input[0] = "/Concat_output_0".into();
    let e = error_of("mismatched-add.onnx", &bytes_of(&m));
    assert!(e.contains("Add") || e.contains("add"), "{e}");

    let mut m = concat_cnn();
    let w = m
        .graph
        .mut_or_insert_default()
        .initializer
        .iter_mut()
        .find(|t| t.name == "fc1.weight")
        .unwrap();
    w.raw_data = Default::default();
    *w = external(w, "weights.bin");
    let e = error_of("external.onnx", &bytes_of(&m));
    assert!(e.contains("fc1.weight") && e.contains("weights.bin"), "{e}");

    let mut m = concat_cnn();
    let w = m
        .graph
        .mut_or_insert_default()
        .initializer
        .iter_mut()
        .find(|t| t.name == "fc1.weight")
        .unwrap();
    w.dims = vec![1 << 30];
    w.raw_data = w.raw_data.slice(..16);
    let e = error_of("claims-4gb.onnx", &bytes_of(&m));
    assert!(e.contains("fc1.weight") && e.contains("1073741824"), "{e}");

    // an input whose height and width are not fixed
    let mut m = concat_cnn();
    let input = &mut m.graph.mut_or_insert_default().input[0];
    let dims = &mut input
        .type_
        .mut_or_insert_default()
        .mut_tensor_type()
        .shape
        .mut_or_insert_default()
        .dim;
    dims[2].set_dim_param("height".into());
    let e = error_of("free-size.onnx", &bytes_of(&m));
    assert!(e.contains("image") && e.contains("height"), "{e}");
}

/// The Python that has `onnxruntime`: `SPX_PYTHON` (which `.ci/run` sets to its virtual
/// environment), else `python3`.
fn python() -> String {
    std::env::var("SPX_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// ONNX Runtime's logits for the model at `path` on `images` (`[n, c, h, w]`).
fn onnx_runtime_logits(path: &Path, images: &[f32], dims: [usize; 4]) -> Vec<f32> {
    let dir = path.parent().unwrap();
    let (input, output) = (dir.join("images.f32"), dir.join("ort-logits.f32"));
    let bytes: Vec<u8> = images.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&input, bytes).unwrap();
    let shape = dims.map(|d| d.to_string()).join(",");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/ort_logits.py");
    let run = std::process::Command::new(python())
        .arg(script)
        .arg(path)
        .arg(&input)
        .arg(shape)
        .arg(&output)
        .output()
        .expect("python runs");
    assert!(
        run.status.success(),
        "ONNX Runtime failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read(&output)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Exports a pruned session and checks ONNX Runtime's logits on the first 100 test images
/// against the explorer's smaller network (or its network, when nothing was removed).
fn check_export_in_onnx_runtime(label: &str, session: &sparsity_explorer::train::Session) {
    let dir = temp_dir(label);
    let report = sparsity_explorer::train::export_session(session, &dir).unwrap();
    let data = sparsity_explorer::data::Dataset::builtin().unwrap();
    let indices: Vec<usize> = (0..100).collect();
    let (images, _) = data.test.gather(&indices);
    let (stack, weights) = match &report.compact {
        Some(c) => {
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&c.description).unwrap()).unwrap();
            let stack: StackConfig = toml::from_str(json["network"].as_str().unwrap()).unwrap();
            (stack, c.weights.clone())
        }
        None => (session.plan().stack().unwrap(), report.stripped.clone()),
    };
    let ours = logits(&stack, &weights, &images, 100);
    let [c, h, w] = stack.input;
    let theirs = onnx_runtime_logits(&report.onnx, &images, [100, c, h, w]);
    assert_close(&format!("{label} in ONNX Runtime"), &theirs, &ours, 1e-4);
    std::fs::remove_dir_all(dir).ok();
}

fn session_of(
    plan: sparsity_explorer::plan::ExperimentPlan,
    weights: &Path,
) -> sparsity_explorer::train::Session {
    use sparsity_explorer::train::{BackendChoice, Session, select};
    let data = std::sync::Arc::new(sparsity_explorer::data::Dataset::builtin().unwrap());
    let (device, info) = select(BackendChoice::Flex).unwrap();
    let mut s = Session::new(plan, data, device, info).unwrap();
    s.load_weights(weights).unwrap();
    s
}

#[test]
#[ignore = "needs onnxruntime: python3 (or SPX_PYTHON) with the onnxruntime and numpy packages"]
fn onnx_runtime_computes_our_outputs_from_every_export() {
    use sparsity_explorer::plan::ExperimentPlan;
    // ResNet-20, channel groups halved (widths multiples of 8): a smaller file
    let mut plan = ExperimentPlan::preset("resnet20").unwrap();
    plan.pruning.granularity = "channel".parse().unwrap();
    plan.pruning.round_to = 8;
    let mut s = session_of(plan, &fixture("resnet20.safetensors"));
    s.prune(0.5).unwrap();
    check_export_in_onnx_runtime("resnet20-channel", &s);

    // the ViT with half its heads removed, and at 2:4 (zeros stored as they are)
    for granularity in ["head", "2:4"] {
        let mut plan = ExperimentPlan::preset("vit-tiny").unwrap();
        plan.pruning.granularity = granularity.parse().unwrap();
        let mut s = session_of(plan, &fixture("vit_tiny.safetensors"));
        s.prune(0.5).unwrap();
        check_export_in_onnx_runtime(&format!("vit-{}", granularity.replace(':', "by")), &s);
    }

    // an imported model, pruned unstructured, written back out
    let plan = ExperimentPlan::preset("quick-demo")
        .unwrap()
        .with_onnx(&fixture("concat-cnn.onnx"))
        .unwrap();
    let mut s = session_of(plan, &fixture("concat-cnn.onnx"));
    s.prune(0.5).unwrap();
    check_export_in_onnx_runtime("concat-cnn", &s);
}

#[test]
fn a_model_for_other_images_than_the_data_is_an_error_naming_both_shapes() {
    use sparsity_explorer::plan::ExperimentPlan;
    use sparsity_explorer::train::{BackendChoice, Session, select};
    let stack: StackConfig = toml::from_str(
        r#"
input = [3, 8, 8]
[[layers]]
type = "conv2d"
name = "c"
out = 4
kernel = 3
[[layers]]
type = "flatten"
[[layers]]
type = "linear"
name = "fc"
out = 10
"#,
    )
    .unwrap();
    let params: Vec<_> = stack
        .resolve(None)
        .unwrap()
        .iter()
        .flat_map(|l| l.parameters())
        .map(|(name, dims)| sparsity_explorer::model::HostTensor {
            values: vec![0.1; dims.iter().product()],
            name,
            dims,
        })
        .collect();
    let dir = temp_dir("colour");
    let path = dir.join("colour.onnx");
    std::fs::write(&path, to_onnx(&stack, &params).unwrap()).unwrap();
    let plan = ExperimentPlan::preset("quick-demo")
        .unwrap()
        .with_onnx(&path)
        .unwrap();
    let data = std::sync::Arc::new(sparsity_explorer::data::Dataset::builtin().unwrap());
    let (device, info) = select(BackendChoice::Flex).unwrap();
    let e = Session::new(plan, data, device, info)
        .err()
        .expect("a 3x8x8 model on 1x28x28 digits")
        .to_string();
    assert!(
        e.contains("colour.onnx") && e.contains("[3, 8, 8]") && e.contains("[1, 28, 28]"),
        "{e}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_plan_naming_an_onnx_model_beside_it_reads_its_network_and_weights() {
    use sparsity_explorer::plan::ExperimentPlan;
    let dir = temp_dir("plan");
    std::fs::copy(fixture("concat-cnn.onnx"), dir.join("model.onnx")).unwrap();
    let plan_path = dir.join("plan.toml");
    std::fs::write(
        &plan_path,
        "name = \"mine\"\nmodel = \"custom\"\nonnx = \"model.onnx\"\n[pruning]\ngranularity = \"2:4\"\n",
    )
    .unwrap();
    let plan = ExperimentPlan::load(&plan_path).unwrap();
    assert_eq!(plan.input, Some([1, 28, 28]));
    assert_eq!(plan.name, "mine");
    assert!(plan.layers.iter().any(|l| l.name.as_deref() == Some("mix")));
    assert_eq!(
        plan.starting_weights(),
        Some(dir.join("model.onnx").as_path())
    );
    // the specs the pruning sees are the model's layers
    let names: Vec<String> = plan
        .layer_specs()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(names.contains(&"fc1".to_string()), "{names:?}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_command_line_takes_an_onnx_model_as_its_network() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sparsity-explorer"))
        .args(["run", "--print-plan", "--onnx"])
        .arg(fixture("resnet20.onnx"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let plan = sparsity_explorer::plan::ExperimentPlan::from_toml(&text, "printed").unwrap();
    assert_eq!(plan.model, sparsity_explorer::model::ModelKind::Custom);
    let names: Vec<&str> = plan
        .layers
        .iter()
        .filter_map(|l| l.name.as_deref())
        .collect();
    for name in ["stem", "blocks.0.c1", "blocks.8.c2", "fc"] {
        assert!(names.contains(&name), "no {name} in {names:?}");
    }
    // a bad file is the command's error, not a panic
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sparsity-explorer"))
        .args(["run", "--print-plan", "--onnx", "Cargo.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Cargo.toml") && !err.contains("panicked"),
        "{err}"
    );
}

/// Host inference (`bench-infer`'s) runs an imported network, grouped convolution and all,
/// dense and sparse, and gives PyTorch's logits.
#[test]
fn host_inference_runs_an_imported_network_with_a_grouped_convolution() {
    use sparsity_explorer::infer::net::Net;
    let path = fixture("concat-cnn.onnx");
    let model = import(&path).unwrap();
    let recorded = fixture("onnx-logits.safetensors");
    let (images, dims) = tensor(&recorded, "images");
    let torch = tensor(&recorded, "concat-cnn.torch").0;
    for sparse in [false, true] {
        let net = Net::build(&model.stack, &model.params, &[], sparse).unwrap();
        let ours = net.forward(&images, dims[0]);
        assert_close(&format!("host, sparse {sparse}"), &ours, &torch, 1e-4);
    }
}
