//! Each loader with its valid seed files and the bound on what it may allocate.
//!
//! The checkpoint and sparse-model loaders go as far as the window does with a file that
//! parses: they rebuild a session from it.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use burn::tensor::Device;

use super::Loader;
use crate::data::Dataset;
use crate::data::idx::{decompress, parse_images, parse_labels};
use crate::export::inspect::describe;
use crate::export::spx::decode;
use crate::export::{ExportInputs, ValueFormat};
use crate::masks_file::{parse_masks, save_masks};
use crate::model::ModelKind;
use crate::model::weights::parse_state_dict;
use crate::plan::{ExperimentPlan, PRESETS};
use crate::prune::{At, Schedule};
use crate::train::{BackendChoice, BackendInfo, CheckpointData, Session, select};

/// Deflate expands at most about 1,032 times; a growing buffer may hold twice its content.
fn compressed_allowed(len: usize) -> usize {
    2 * 1_032 * len + (1 << 20)
}

/// A parser that copies what it reads, plus a fixed allowance for bookkeeping.
fn plain_allowed(len: usize) -> usize {
    4 * len + (1 << 20)
}

/// A parser that also builds a session (a small CNN's weights and buffers).
fn session_allowed(len: usize) -> usize {
    4 * len + (16 << 20)
}

/// A small IDX images file (`count` images of 28 x 28) and its labels file.
fn idx_files(count: usize) -> (Vec<u8>, Vec<u8>) {
    let mut images = vec![0, 0, 8, 3];
    for dim in [count as u32, 28, 28] {
        images.extend(dim.to_be_bytes());
    }
    images.extend((0..count * 784).map(|i| (i * 37 % 251) as u8));
    let mut labels = vec![0, 0, 8, 1];
    labels.extend((count as u32).to_be_bytes());
    labels.extend((0..count).map(|i| (i % 10) as u8));
    (images, labels)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

const FUZZ_PATH: &str = "fuzzed-input";

pub fn idx_images() -> Loader {
    let (images, _) = idx_files(12);
    Loader {
        name: "IDX images",
        seeds: vec![gzip(&images), images],
        parse: |bytes| {
            let path = Path::new(FUZZ_PATH);
            decompress(path, bytes.to_vec())
                .and_then(|raw| parse_images(path, &raw))
                .is_ok()
        },
        allowed: compressed_allowed,
    }
}

pub fn idx_labels() -> Loader {
    let (_, labels) = idx_files(40);
    Loader {
        name: "IDX labels",
        seeds: vec![gzip(&labels), labels],
        parse: |bytes| {
            let path = Path::new(FUZZ_PATH);
            decompress(path, bytes.to_vec())
                .and_then(|raw| parse_labels(path, &raw))
                .is_ok()
        },
        allowed: compressed_allowed,
    }
}

/// An encoded image of `w x h` with a gradient, as PNG or JPEG.
fn encoded_image(w: u32, h: u32, format: image::ImageFormat, colour: bool) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let grey = image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 9 + y * 5) as u8]));
    let picture = if colour {
        image::DynamicImage::ImageRgb8(image::DynamicImage::ImageLuma8(grey).to_rgb8())
    } else {
        image::DynamicImage::ImageLuma8(grey)
    };
    picture
        .write_to(&mut out, format)
        .expect("encoding to memory");
    out.into_inner()
}

pub fn image_file() -> Loader {
    Loader {
        name: "image (PNG, JPEG)",
        seeds: vec![
            encoded_image(12, 9, image::ImageFormat::Png, false),
            encoded_image(10, 14, image::ImageFormat::Png, true),
            encoded_image(16, 16, image::ImageFormat::Jpeg, true),
        ],
        parse: |bytes| {
            crate::data::images::decode_image(Path::new(FUZZ_PATH), bytes, [3, 8, 8]).is_ok()
        },
        // a compressed image may claim 1,100 pixels per byte, 4 bytes each at most
        allowed: |len| 4 * 1_100 * len + (2 << 20),
    }
}

pub fn cifar() -> Loader {
    let record =
        |label: u8| std::iter::once(label).chain((0..3072).map(move |i| (i % 253) as u8 ^ label));
    Loader {
        name: "CIFAR-10 binary",
        seeds: vec![(0..4).flat_map(record).collect()],
        parse: |bytes| crate::data::cifar::parse_cifar(Path::new(FUZZ_PATH), bytes).is_ok(),
        allowed: plain_allowed,
    }
}

/// A small CNN trained two steps with half of every layer pruned, and its files.
struct Trained {
    dataset: Arc<Dataset>,
    device: Device,
    info: BackendInfo,
    checkpoint: Vec<u8>,
    sparse_f32: Vec<u8>,
    sparse_int8: Vec<u8>,
    masks: Vec<u8>,
    /// The small CNN's parameters as a PyTorch state_dict file.
    state_dict: Vec<u8>,
}

fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let dataset = Arc::new(Dataset::builtin().expect("the built-in digits load"));
        let (device, info) = select(BackendChoice::Flex).expect("flex always starts");
        let mut plan = ExperimentPlan::preset("quick-demo").expect("a built-in preset");
        plan.model = ModelKind::SmallCnn;
        plan.training.batch = 16;
        plan.training.eval_every = 1_000_000;
        plan.pruning.schedule = Schedule::Constant {
            target: 0.5,
            begin: At::Step(1),
            end: None,
            frequency: 1,
        };
        let mut session =
            Session::new(plan, dataset.clone(), device.clone(), info.clone()).expect("a session");
        for _ in 0..2 {
            session.train_step().expect("a training step");
        }
        let dir = tempfile::tempdir().expect("a temporary folder");
        let checkpoint_path = dir.path().join("run.ckpt");
        session
            .to_checkpoint("{}".into())
            .and_then(|c| Ok(c.write(&checkpoint_path)?))
            .expect("a checkpoint");
        let params = session.network().read_params();
        let plan_toml = session.plan().to_toml();
        let (rules, layer_masks) = (session.rules(), session.masks());
        let inputs = ExportInputs {
            model: session.plan().model.name(),
            plan_toml: &plan_toml,
            rules: &rules,
            masks: &layer_masks,
            params: &params,
        };
        let masks = session.named_masks();
        let masks_path = dir.path().join("masks.safetensors");
        save_masks(&masks_path, &masks, &plan_toml).expect("a masks file");
        // the export's PyTorch file is a state_dict (its masks are keys the loader ignores)
        let state_dict_path = dir.path().join("model.safetensors");
        inputs
            .write_stripped(&state_dict_path)
            .expect("a state_dict file");
        Trained {
            state_dict: std::fs::read(&state_dict_path).expect("the state_dict"),
            checkpoint: std::fs::read(&checkpoint_path).expect("the checkpoint"),
            sparse_f32: inputs.sparse_file(ValueFormat::F32).expect("an f32 file"),
            sparse_int8: inputs.sparse_file(ValueFormat::Int8).expect("an int8 file"),
            masks: std::fs::read(&masks_path).expect("the masks"),
            dataset,
            device,
            info,
        }
    })
}

pub fn checkpoint() -> Loader {
    let t = trained();
    Loader {
        name: "checkpoint",
        seeds: vec![t.checkpoint.clone()],
        parse: |bytes| {
            let t = trained();
            CheckpointData::from_bytes(bytes, FUZZ_PATH).is_ok_and(|data| {
                Session::from_checkpoint(&data, t.dataset.clone(), t.device.clone(), t.info.clone())
                    .is_ok()
            })
        },
        allowed: session_allowed,
    }
}

pub fn sparse_model() -> Loader {
    let t = trained();
    Loader {
        name: "sparse model (.spx)",
        seeds: vec![t.sparse_f32.clone(), t.sparse_int8.clone()],
        parse: |bytes| {
            let t = trained();
            decode(bytes).is_ok_and(|decoded| {
                describe(&decoded, FUZZ_PATH, bytes.len() as u64).is_ok()
                    && Session::from_sparse(
                        &decoded,
                        t.dataset.clone(),
                        t.device.clone(),
                        t.info.clone(),
                    )
                    .is_ok()
            })
        },
        allowed: |len| compressed_allowed(len) + session_allowed(0),
    }
}

pub fn weights() -> Loader {
    Loader {
        name: "weights (state_dict safetensors)",
        seeds: vec![trained().state_dict.clone()],
        parse: |bytes| {
            let stack = ModelKind::SmallCnn.stack().expect("a built-in model");
            parse_state_dict(bytes, Path::new(FUZZ_PATH), &stack).is_ok()
        },
        allowed: plain_allowed,
    }
}

/// A small network with every kind of node the import takes, as ONNX, with made-up weights.
fn onnx_seed() -> Vec<u8> {
    let stack: crate::model::StackConfig = toml::from_str(
        r#"
input = [1, 6, 6]
[[layers]]
type = "conv2d"
name = "a"
out = 4
kernel = 3
padding = 1
[[layers]]
type = "batchnorm2d"
name = "bn"
[[layers]]
type = "conv2d"
name = "b"
input = "a"
out = 4
kernel = 1
groups = 2
[[layers]]
type = "concat"
inputs = ["bn", "b"]
[[layers]]
type = "gelu"
[[layers]]
type = "maxpool2d"
kernel = 2
[[layers]]
type = "global_avgpool"
[[layers]]
type = "layernorm"
name = "ln"
[[layers]]
type = "linear"
name = "fc"
out = 10
"#,
    )
    .expect("a valid network");
    let layers = stack.resolve(None).expect("a valid network");
    let params: Vec<crate::model::HostTensor> = layers
        .iter()
        .flat_map(|l| l.parameters())
        .map(|(name, dims)| {
            let n: usize = dims.iter().product();
            let values = (0..n).map(|i| (i % 7) as f32 * 0.25 + 0.5).collect();
            crate::model::HostTensor { name, dims, values }
        })
        .collect();
    crate::onnx::to_onnx(&stack, &params).expect("a valid network")
}

/// The protobuf decoder reserves room for a packed repeated field from its claimed length
/// before reading it, up to its own cap of 10 million elements (`READ_RAW_BYTES_MAX_ALLOC`
/// in rust-protobuf): 80 MB for 64-bit integers, whatever the file's size. A claim beyond
/// that is not honoured, so the bound is fixed.
const PROTOBUF_RESERVE: usize = 80_000_000;

pub fn onnx_model() -> Loader {
    Loader {
        name: "ONNX model",
        seeds: vec![onnx_seed()],
        parse: |bytes| crate::onnx::import_bytes(bytes, Path::new(FUZZ_PATH)).is_ok(),
        allowed: |len| session_allowed(len) + PROTOBUF_RESERVE,
    }
}

pub fn masks() -> Loader {
    Loader {
        name: "masks (safetensors)",
        seeds: vec![trained().masks.clone()],
        parse: |bytes| parse_masks(bytes, Path::new(FUZZ_PATH)).is_ok(),
        allowed: plain_allowed,
    }
}

pub fn plan_toml() -> Loader {
    // every preset as written, and with its network written out as a stack of layers
    let seeds = PRESETS
        .iter()
        .flat_map(|(name, _)| {
            let plan = ExperimentPlan::preset(name).expect("a built-in preset");
            let stack = plan
                .with_layers_written_out()
                .expect("built-in stacks are valid");
            [plan.to_toml().into_bytes(), stack.to_toml().into_bytes()]
        })
        .collect();
    Loader {
        name: "plan (TOML)",
        seeds,
        parse: |bytes| {
            let text = String::from_utf8_lossy(bytes);
            ExperimentPlan::from_toml(&text, FUZZ_PATH).is_ok_and(|plan| {
                plan.validate(10_000).is_ok()
                    && plan
                        .layer_specs()
                        .is_ok_and(|specs| plan.pruning.rules(&specs).is_ok())
            })
        },
        allowed: |len| 64 * len + (1 << 20),
    }
}

pub fn plan_string() -> Loader {
    let seeds = PRESETS
        .iter()
        .map(|(name, _)| {
            let plan = ExperimentPlan::preset(name).expect("a built-in preset");
            crate::plan_code::encode(&plan).into_bytes()
        })
        .collect();
    Loader {
        name: "plan string (spx1.)",
        seeds,
        parse: |bytes| crate::plan_code::decode(&String::from_utf8_lossy(bytes)).is_ok(),
        // the unpacked TOML is capped at a megabyte
        allowed: |len| 64 * len + (4 << 20),
    }
}
