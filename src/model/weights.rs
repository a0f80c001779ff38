//! Starting weights from PyTorch: a `state_dict` saved as safetensors
//! (`safetensors.torch.save_file(model.state_dict(), path)`), keyed by the stack's layer
//! names (`c1.weight`, `norm.running_mean`) or by the positions of an `nn.Sequential` with
//! the same layers in the same order (`0.weight`, `4.running_var`), in PyTorch layout.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use thiserror::Error;

use super::HostTensor;
use super::stack::{StackConfig, StackError};

#[derive(Debug, Error)]
pub enum WeightsError {
    #[error("{path}: cannot read: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: not a safetensors file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: no tensor {key} (nor {position}) for the network's {key}, shape {expected:?}")]
    Missing {
        path: PathBuf,
        key: String,
        position: String,
        expected: Vec<usize>,
    },
    #[error("{path}: {key} has shape {found:?}, the network needs {expected:?}")]
    Shape {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{path}: {key} is {found}, the network needs F32")]
    Dtype {
        path: PathBuf,
        key: String,
        found: String,
    },
    #[error(transparent)]
    Network(#[from] StackError),
}

/// One parameter the stack needs: its name by layer, its name by position, its shape.
struct Needed {
    key: String,
    position: String,
    dims: Vec<usize>,
}

fn needed(stack: &StackConfig) -> Result<Vec<Needed>, StackError> {
    let mut out = Vec::new();
    for (i, l) in stack.resolve(None)?.iter().enumerate() {
        for (key, dims) in l.parameters() {
            // `blocks.0.c1.weight` is `4.weight` in an `nn.Sequential`; a parameter named
            // as its layer (a position embedding) is `4`
            let position = match key.strip_prefix(&l.name) {
                Some(rest) => format!("{i}{rest}"),
                None => i.to_string(),
            };
            out.push(Needed {
                key,
                position,
                dims,
            });
        }
    }
    Ok(out)
}

/// Reads the weights of `stack` from the PyTorch `state_dict` saved as safetensors at
/// `path`.
pub fn read_state_dict(path: &Path, stack: &StackConfig) -> Result<Vec<HostTensor>, WeightsError> {
    let bytes = std::fs::read(path).map_err(|cause| WeightsError::Read {
        path: path.into(),
        cause,
    })?;
    parse_state_dict(&bytes, path, stack)
}

/// Parses the bytes of a `state_dict` file; `path` names it in errors.
pub fn parse_state_dict(
    bytes: &[u8],
    path: &Path,
    stack: &StackConfig,
) -> Result<Vec<HostTensor>, WeightsError> {
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format {
        path: path.into(),
        message: e.to_string(),
    })?;
    let mut params = Vec::new();
    for n in needed(stack)? {
        let view = tensors
            .tensor(&n.key)
            .or_else(|_| tensors.tensor(&n.position))
            .map_err(|_| WeightsError::Missing {
                path: path.into(),
                key: n.key.clone(),
                position: n.position.clone(),
                expected: n.dims.clone(),
            })?;
        if view.dtype() != Dtype::F32 {
            return Err(WeightsError::Dtype {
                path: path.into(),
                key: n.key,
                found: format!("{:?}", view.dtype()),
            });
        }
        if view.shape() != n.dims.as_slice() {
            return Err(WeightsError::Shape {
                path: path.into(),
                key: n.key,
                expected: n.dims,
                found: view.shape().to_vec(),
            });
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        params.push(HostTensor {
            name: n.key,
            dims: n.dims,
            values,
        });
    }
    Ok(params)
}

/// The parameters `stack` needs, in its order, from the named parameters another reader
/// produced (a model file imported as the plan's layers); `path` names that file in errors.
pub fn take_needed(
    params: Vec<HostTensor>,
    path: &Path,
    stack: &StackConfig,
) -> Result<Vec<HostTensor>, WeightsError> {
    let mut by_name: std::collections::HashMap<String, HostTensor> =
        params.into_iter().map(|p| (p.name.clone(), p)).collect();
    needed(stack)?
        .into_iter()
        .map(|n| match by_name.remove(&n.key) {
            None => Err(WeightsError::Missing {
                path: path.into(),
                key: n.key,
                position: n.position,
                expected: n.dims,
            }),
            Some(p) if p.dims != n.dims => Err(WeightsError::Shape {
                path: path.into(),
                key: n.key,
                expected: n.dims,
                found: p.dims,
            }),
            Some(p) => Ok(p),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn stack() -> StackConfig {
        toml::from_str(
            r#"
input = [1, 4, 4]
[[layers]]
type = "conv2d"
name = "c1"
out = 2
kernel = 3
[[layers]]
type = "batchnorm2d"
name = "bn"
[[layers]]
type = "flatten"
[[layers]]
type = "linear"
out = 10
"#,
        )
        .unwrap()
    }

    /// A safetensors file holding `(key, dims, value)` tensors of f32 (or f64 when asked).
    fn file(tensors: &[(&str, Vec<usize>)], f64_key: Option<&str>) -> Vec<u8> {
        let data: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = tensors
            .iter()
            .enumerate()
            .map(|(i, (k, dims))| {
                let n: usize = dims.iter().product();
                let wide = Some(*k) == f64_key;
                let bytes: Vec<u8> = (0..n)
                    .flat_map(|j| {
                        let v = (i * 100 + j) as f32 * 0.5;
                        if wide {
                            (v as f64).to_le_bytes().to_vec()
                        } else {
                            v.to_le_bytes().to_vec()
                        }
                    })
                    .collect();
                (
                    k.to_string(),
                    dims.clone(),
                    bytes,
                    if wide { Dtype::F64 } else { Dtype::F32 },
                )
            })
            .collect();
        let views: Vec<(String, TensorView)> = data
            .iter()
            .map(|(k, d, b, t)| (k.clone(), TensorView::new(*t, d.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn by(prefixes: [&str; 3]) -> Vec<(String, Vec<usize>)> {
        let [c, bn, fc] = prefixes;
        vec![
            (format!("{c}.weight"), vec![2, 1, 3, 3]),
            (format!("{c}.bias"), vec![2]),
            (format!("{bn}.weight"), vec![2]),
            (format!("{bn}.bias"), vec![2]),
            (format!("{bn}.running_mean"), vec![2]),
            (format!("{bn}.running_var"), vec![2]),
            // PyTorch also saves this; it is not needed
            (format!("{bn}.num_batches_tracked"), vec![1]),
            (format!("{fc}.weight"), vec![10, 8]),
            (format!("{fc}.bias"), vec![10]),
        ]
    }

    fn bytes_of(keys: &[(String, Vec<usize>)], f64_key: Option<&str>) -> Vec<u8> {
        let refs: Vec<(&str, Vec<usize>)> =
            keys.iter().map(|(k, d)| (k.as_str(), d.clone())).collect();
        file(&refs, f64_key)
    }

    #[test]
    fn keys_by_layer_name_or_sequential_position_give_the_same_parameters() {
        let path = Path::new("w.safetensors");
        let named = parse_state_dict(
            &bytes_of(&by(["c1", "bn", "linear3"]), None),
            path,
            &stack(),
        )
        .unwrap();
        let positional =
            parse_state_dict(&bytes_of(&by(["0", "1", "3"]), None), path, &stack()).unwrap();
        assert_eq!(named, positional);
        let names: Vec<&str> = named.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "c1.weight",
                "c1.bias",
                "bn.weight",
                "bn.bias",
                "bn.running_mean",
                "bn.running_var",
                "linear3.weight",
                "linear3.bias"
            ]
        );
        assert_eq!(named[0].values[..3], [0.0, 0.5, 1.0]);
    }

    #[test]
    fn a_missing_key_a_wrong_shape_or_dtype_is_an_error_naming_the_key() {
        let path = Path::new("w.safetensors");
        let mut keys = by(["c1", "bn", "linear3"]);
        keys.remove(1);
        let e = parse_state_dict(&bytes_of(&keys, None), path, &stack())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("w.safetensors")
                && e.contains("c1.bias")
                && e.contains("0.bias")
                && e.contains("[2]"),
            "{e}"
        );
        let mut keys = by(["c1", "bn", "linear3"]);
        keys[7].1 = vec![10, 9];
        let e = parse_state_dict(&bytes_of(&keys, None), path, &stack())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linear3.weight") && e.contains("[10, 9]") && e.contains("[10, 8]"),
            "{e}"
        );
        let keys = by(["c1", "bn", "linear3"]);
        let e = parse_state_dict(&bytes_of(&keys, Some("bn.running_var")), path, &stack())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bn.running_var") && e.contains("F64"), "{e}");
        let e = parse_state_dict(b"not a file", path, &stack())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a safetensors file"), "{e}");
    }
}
