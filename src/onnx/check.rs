//! What the explorer checks in an ONNX file before handing it to the parser: every node is
//! an operator it can take, and every tensor holds the data its shape claims (inside the
//! file, or in an external data file that exists and is long enough). A file that claims a
//! 4 GB tensor in 1 KB, or names a missing data file, is one clear error here rather than
//! an allocation or a failure deep in the parser.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;

use onnx_ir::{Message, ModelProto, TensorProto};

use super::OnnxError;
use crate::model::LayerConfig;

/// The ONNX operators a graph may use (the default domain), besides the one-node kinds of
/// `layers/` (`LayerConfig::read_ops`: `Relu`, `Tanh`, ...). `Constant`, `Div`, `Mul`, `Erf`
/// appear in PyTorch's export of GELU; `Dropout` and `Identity` pass their input through.
const RAW_OPS: &[&str] = &[
    "Conv",
    "BatchNormalization",
    "Gelu",
    "Erf",
    "Div",
    "Mul",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "ReduceMean",
    "Add",
    "Concat",
    "Flatten",
    "Reshape",
    "Gemm",
    "MatMul",
    "LayerNormalization",
    "Dropout",
    "Identity",
    "Constant",
];

/// What [`model`] learned of the file.
pub(super) struct Checked {
    /// Some tensor lives in an external data file (beside the model).
    pub external: bool,
    /// The module each weight belongs to in the exporting framework, by a hash of the
    /// weight's values: `stem` for `stem.weight`, `blocks.0.c1` for a weight the exporter
    /// renamed (a batch norm folded into `/blocks/blocks.0/c1/Conv`). The parser renames
    /// nodes and drops initializer names; the values find them again.
    pub modules: HashMap<u64, String>,
}

/// The hash [`Checked::modules`] is keyed by: the weight's f32 values, little-endian.
pub(super) fn weight_hash(values: impl Iterator<Item = f32>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for v in values {
        v.to_bits().hash(&mut h);
    }
    h.finish()
}

/// The module path of a PyTorch-exported node name: `/blocks/blocks.0/c1/Conv` gives
/// `blocks.0.c1` (each scope either extends the path or is already the whole of it).
fn module_path(node_name: &str) -> Option<String> {
    let mut scopes: Vec<&str> = node_name.trim_start_matches('/').split('/').collect();
    scopes.pop();
    let mut path = String::new();
    for s in scopes.into_iter().filter(|s| !s.is_empty()) {
        if path.is_empty() || s.starts_with(&format!("{path}.")) {
            path = s.to_string();
        } else {
            path = format!("{path}.{s}");
        }
    }
    (!path.is_empty()).then_some(path)
}

/// [`Checked::modules`] of a graph.
fn modules(graph: &onnx_ir::GraphProto) -> HashMap<u64, String> {
    let mut out = HashMap::new();
    for t in &graph.initializer {
        let values: Vec<f32> = match (t.data_type, t.raw_data.is_empty()) {
            (1, false) => t
                .raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            (1, true) => t.float_data.clone(),
            _ => continue,
        };
        if values.len() < 2 {
            continue;
        }
        let module = match t.name.strip_suffix(".weight") {
            Some(m) => Some(m.to_string()),
            None => graph
                .node
                .iter()
                .find(|n| n.input.contains(&t.name))
                .and_then(|n| module_path(&n.name)),
        };
        if let Some(m) = module {
            out.entry(weight_hash(values.into_iter())).or_insert(m);
        }
    }
    out
}

/// Parses the model's protobuf and checks its operators and tensors; `path` names the file
/// in errors and locates its external data.
pub(super) fn model(bytes: &[u8], path: &Path) -> Result<Checked, OnnxError> {
    let model = ModelProto::parse_from_bytes(bytes).map_err(|e| OnnxError::Format {
        path: path.into(),
        message: e.to_string(),
    })?;
    let Some(graph) = model.graph.as_ref() else {
        return Err(OnnxError::Format {
            path: path.into(),
            message: "the model has no graph".into(),
        });
    };
    if graph.node.is_empty() {
        return Err(OnnxError::Format {
            path: path.into(),
            message: "the graph has no nodes".into(),
        });
    }
    for (i, node) in graph.node.iter().enumerate() {
        let default_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        let op = node.op_type.as_str();
        let known = RAW_OPS.contains(&op) || LayerConfig::read_from(op).is_some();
        if !default_domain || !known {
            let op = match default_domain {
                true => node.op_type.clone(),
                false => format!("{}::{}", node.domain, node.op_type),
            };
            return Err(OnnxError::Unsupported {
                path: path.into(),
                node: node_name(&node.name, i),
                op,
            });
        }
    }
    let mut external = false;
    let constants = graph
        .node
        .iter()
        .flat_map(|n| n.attribute.iter())
        .filter_map(|a| a.t.as_ref());
    for tensor in graph.initializer.iter().chain(constants) {
        external |= check_tensor(tensor, path)?;
    }
    Ok(Checked {
        external,
        modules: modules(graph),
    })
}

/// A node's name, or its position when it has none.
fn node_name(name: &str, index: usize) -> String {
    match name.is_empty() {
        true => format!("#{index}"),
        false => name.to_string(),
    }
}

#[cfg(test)]
#[test]
fn pytorch_scopes_give_module_paths() {
    assert_eq!(
        module_path("/blocks/blocks.0/c1/Conv").as_deref(),
        Some("blocks.0.c1")
    );
    assert_eq!(module_path("/stem/Conv").as_deref(), Some("stem"));
    assert_eq!(
        module_path("/encoder/layers.0/linear1/Gemm").as_deref(),
        Some("encoder.layers.0.linear1")
    );
    assert_eq!(module_path("/Relu"), None);
    assert_eq!(module_path("conv_7"), None);
}

/// Bytes per element of an ONNX data type, for the types a model's weights and shapes
/// use; `None` for the others (strings, complex, 4-bit).
fn element_size(data_type: i32) -> Option<u64> {
    match data_type {
        // float, int32, uint32
        1 | 6 | 12 => Some(4),
        // uint8, int8, bool, float8 variants
        2 | 3 | 9 | 17..=20 => Some(1),
        // uint16, int16, float16, bfloat16
        4 | 5 | 10 | 16 => Some(2),
        // int64, double, uint64
        7 | 11 | 13 => Some(8),
        _ => None,
    }
}

/// Checks that `tensor` holds what its shape claims; true when its data is external.
fn check_tensor(tensor: &TensorProto, path: &Path) -> Result<bool, OnnxError> {
    let fail = |reason: String| OnnxError::Tensor {
        path: path.into(),
        tensor: tensor.name.clone(),
        reason,
    };
    let mut count: u64 = 1;
    for &d in &tensor.dims {
        let d = u64::try_from(d).map_err(|_| fail(format!("has a negative dimension {d}")))?;
        count = count
            .checked_mul(d)
            .ok_or_else(|| fail(format!("claims more elements than fit: {:?}", tensor.dims)))?;
    }
    let Some(size) = element_size(tensor.data_type) else {
        return Err(fail(format!(
            "has ONNX data type {}, which the explorer does not read",
            tensor.data_type
        )));
    };
    let claimed = count.saturating_mul(size);
    let external = tensor.data_location.value() == 1;
    if external {
        check_external(tensor, claimed, path).map_err(fail)?;
        return Ok(true);
    }
    let held = match (tensor.raw_data.is_empty(), tensor.data_type) {
        (false, _) => tensor.raw_data.len() as u64,
        (true, 1) => tensor.float_data.len() as u64 * size,
        (true, 7) => tensor.int64_data.len() as u64 * size,
        (true, 11) => tensor.double_data.len() as u64 * size,
        (true, 13) => tensor.uint64_data.len() as u64 * size,
        (true, _) => tensor.int32_data.len() as u64 * size,
    };
    // int32_data packs the narrow types one per entry; only its count is comparable
    let held_count = match (tensor.raw_data.is_empty(), tensor.data_type) {
        (true, 2..=6 | 9 | 10 | 16..=20) => tensor.int32_data.len() as u64,
        _ => held / size,
    };
    if held_count != count {
        return Err(fail(format!(
            "its shape {:?} claims {count} values ({claimed} bytes), the file holds {held} bytes",
            tensor.dims
        )));
    }
    Ok(false)
}

/// An external tensor's data file must exist beside the model and hold the claimed bytes.
fn check_external(tensor: &TensorProto, claimed: u64, path: &Path) -> Result<(), String> {
    let entry = |key: &str| {
        tensor
            .external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.clone())
    };
    let location = entry("location").ok_or("is external but names no data file")?;
    let number = |key: &str| -> Result<Option<u64>, String> {
        entry(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{key} {v:?} is not a number"))
            })
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let length = number("length")?.unwrap_or(claimed);
    if length != claimed {
        return Err(format!(
            "claims {claimed} bytes by its shape {:?}, its external data {length}",
            tensor.dims
        ));
    }
    let relative = Path::new(&location);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!(
            "its data file {location:?} must lie in the model's folder"
        ));
    }
    let file = path.parent().unwrap_or(Path::new(".")).join(relative);
    let len = std::fs::metadata(&file)
        .map_err(|e| format!("its data file {} cannot be read: {e}", file.display()))?
        .len();
    if offset.saturating_add(length) > len {
        return Err(format!(
            "needs bytes {offset}..{} of {}, which holds {len}",
            offset.saturating_add(length),
            file.display()
        ));
    }
    Ok(())
}
