//! Physically smaller: a network with the channel groups and attention heads its masks
//! removed taken out, as a smaller network of its own (the convolutions, dense layers, norms
//! and embeddings that carried them narrower) with its parameters, and the multiply-adds
//! one example costs before and after.

use serde::Serialize;
use thiserror::Error;

use crate::model::HostTensor;
use crate::model::stack::{
    Layer, LayerConfig, ResolvedLayer, StackConfig, StackError, unit_groups,
};
use crate::prune::{GroupKind, LayerShape, Member, UnitGroup};

#[derive(Debug, Error, PartialEq)]
pub enum CompactError {
    #[error(transparent)]
    Network(#[from] StackError),
    #[error("parameter {0} is missing")]
    Missing(String),
    #[error("{layer}: {reason}")]
    Unsupported { layer: String, reason: String },
}

/// One layer made narrower.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Width {
    pub layer: String,
    /// Output channels, features or heads, before and after.
    pub before: usize,
    pub after: usize,
}

/// The smaller network.
#[derive(Clone, Debug, PartialEq)]
pub struct Compact {
    /// The network written out layer by layer (repeats expanded: copies differ now).
    pub stack: StackConfig,
    /// Its parameters, PyTorch names and layout.
    pub params: Vec<HostTensor>,
    /// The masks left inside the smaller weights (unstructured or N:M pruning within the
    /// kept channels), one per prunable weight.
    pub masks: Vec<Option<Vec<u8>>>,
    pub widths: Vec<Width>,
    pub macs_before: u64,
    pub macs_after: u64,
}

/// Which rows and which columns of each prunable weight survive.
struct Keep {
    rows: Vec<Vec<bool>>,
    cols: Vec<Vec<bool>>,
}

/// Whether unit `c` of `group` is pruned in every member (all its rows and columns masked).
fn removed(group: &UnitGroup, c: usize, shapes: &[LayerShape], masks: &[Option<Vec<u8>>]) -> bool {
    let zero_rows = |m: &Member| {
        let row = shapes[m.weight].row_len();
        masks[m.weight].as_ref().is_some_and(|mask| {
            m.range(c)
                .all(|r| mask[r * row..(r + 1) * row].iter().all(|&v| v == 0))
        })
    };
    let zero_cols = |m: &Member| {
        let row = shapes[m.weight].row_len();
        masks[m.weight].as_ref().is_some_and(|mask| {
            mask.chunks(row)
                .all(|w| w[m.range(c)].iter().all(|&v| v == 0))
        })
    };
    group.producers.iter().all(zero_rows) && group.readers.iter().all(zero_cols)
}

/// Each group's surviving units, and each weight's surviving rows and columns. A group
/// that a `fixed` weight writes or reads keeps every unit.
fn keep(
    groups: &[UnitGroup],
    shapes: &[LayerShape],
    masks: &[Option<Vec<u8>>],
    fixed: &[bool],
) -> (Vec<Vec<bool>>, Keep) {
    let mut keep = Keep {
        rows: shapes.iter().map(|s| vec![true; s.out]).collect(),
        cols: shapes.iter().map(|s| vec![true; s.row_len()]).collect(),
    };
    let kept: Vec<Vec<bool>> = groups
        .iter()
        .map(|g| {
            let pinned = g
                .producers
                .iter()
                .chain(&g.readers)
                .any(|m| fixed[m.weight]);
            let mut units: Vec<bool> = (0..g.channels)
                .map(|c| pinned || !removed(g, c, shapes, masks))
                .collect();
            if units.iter().all(|k| !k) {
                units[0] = true; // a layer keeps one channel at least
            }
            units
        })
        .collect();
    for (g, units) in groups.iter().zip(&kept) {
        for (c, _) in units.iter().enumerate().filter(|(_, k)| !**k) {
            for p in &g.producers {
                keep.rows[p.weight][p.range(c)].fill(false);
            }
            for r in &g.readers {
                keep.cols[r.weight][r.range(c)].fill(false);
            }
        }
    }
    (kept, keep)
}

/// The entries of `values`, laid out `[rows.len(), cols.len()]`, whose row and column both
/// survive.
fn slice<T: Copy>(values: &[T], rows: &[bool], cols: &[bool]) -> Vec<T> {
    values
        .chunks(cols.len())
        .zip(rows)
        .filter(|(_, k)| **k)
        .flat_map(|(row, _)| row.iter().zip(cols).filter(|(_, k)| **k).map(|(v, _)| *v))
        .collect()
}

fn count(keep: &[bool]) -> usize {
    keep.iter().filter(|k| **k).count()
}

/// `stack` with its parameters `params` and masks `masks` (one per prunable weight),
/// without the channel groups and heads its masks removed whole.
pub fn compact(
    stack: &StackConfig,
    params: &[HostTensor],
    masks: &[Option<Vec<u8>>],
) -> Result<Compact, CompactError> {
    let layers = stack.resolve(None)?;
    let groups = unit_groups(&layers);
    let weights: Vec<_> = layers.iter().flat_map(|l| l.prunable()).collect();
    let shapes: Vec<LayerShape> = weights.iter().map(|w| w.shape).collect();
    // a grouped convolution other than a depthwise one splits its channels into groups of
    // fixed size: the channels it writes or reads keep their width
    let fixed: Vec<bool> = layers
        .iter()
        .flat_map(|l| {
            let grouped = l.kind.fixed_width();
            l.prunable().into_iter().map(move |_| grouped)
        })
        .collect();
    let (units, keep) = keep(&groups, &shapes, masks, &fixed);
    let find = |key: &str| {
        params
            .iter()
            .find(|t| t.name == key)
            .ok_or_else(|| CompactError::Missing(key.into()))
    };
    let mut out_params = Vec::new();
    let mut out_masks = Vec::new();
    for (w, pw) in weights.iter().enumerate() {
        let (rows, cols) = (&keep.rows[w], &keep.cols[w]);
        let t = find(&pw.weight_key)?;
        let mut dims = t.dims.clone();
        dims[0] = count(rows);
        if dims.len() == 4 {
            dims[1] = count(cols) / (pw.shape.kh * pw.shape.kw);
        } else {
            dims[1] = count(cols);
        }
        out_params.push(HostTensor {
            name: t.name.clone(),
            dims,
            values: slice(&t.values, rows, cols),
        });
        if let Some(b) = &pw.bias_key {
            let t = find(b)?;
            out_params.push(HostTensor {
                name: t.name.clone(),
                dims: vec![count(rows)],
                values: slice(&t.values, rows, &[true]),
            });
        }
        out_masks.push(masks[w].as_ref().map(|m| slice(m, rows, cols)));
    }
    carriers(&layers, &groups, &units, params, &mut out_params)?;
    let (stack, widths) = narrower(stack, &layers, &keep)?;
    let macs_before = layers.iter().map(ResolvedLayer::macs).sum();
    let macs_after = stack.resolve(None)?.iter().map(ResolvedLayer::macs).sum();
    Ok(Compact {
        stack,
        params: out_params,
        masks: out_masks,
        widths,
        macs_before,
        macs_after,
    })
}

/// The parameters of the layers that carry channels without a prunable weight (batch and
/// layer norms, position embeddings), narrowed to their groups' kept channels; every other
/// parameter of theirs as it is.
fn carriers(
    layers: &[ResolvedLayer],
    groups: &[UnitGroup],
    units: &[Vec<bool>],
    params: &[HostTensor],
    out: &mut Vec<HostTensor>,
) -> Result<(), CompactError> {
    for l in layers {
        if !l.prunable().is_empty() {
            continue;
        }
        let kept = groups
            .iter()
            .zip(units)
            .find(|(g, _)| g.kind == GroupKind::Channels && g.carriers.contains(&l.name))
            .map(|(_, u)| u.as_slice());
        for (key, _) in l.parameters() {
            let t = params
                .iter()
                .find(|t| t.name == key)
                .ok_or_else(|| CompactError::Missing(key.clone()))?;
            let t = match kept {
                // a vector per channel, or a position embedding [1, n, d] (channels last)
                Some(kept) => {
                    let mut dims = t.dims.clone();
                    *dims.last_mut().expect("a parameter has dimensions") = count(kept);
                    HostTensor {
                        name: t.name.clone(),
                        values: slice(&t.values, &vec![true; t.values.len() / kept.len()], kept),
                        dims,
                    }
                }
                None => t.clone(),
            };
            out.push(t);
        }
    }
    Ok(())
}

/// The network written out layer by layer, each producer as wide as its kept rows.
fn narrower(
    stack: &StackConfig,
    layers: &[ResolvedLayer],
    keep: &Keep,
) -> Result<(StackConfig, Vec<Width>), CompactError> {
    let mut written = Vec::with_capacity(layers.len());
    let mut widths = Vec::new();
    let mut w = 0;
    for (l, given) in layers
        .iter()
        .zip(crate::model::stack::expand(&stack.layers)?)
    {
        let mut kind = l.kind.clone();
        let rows = |i: usize| count(&keep.rows[w + i]);
        let changed = kind
            .narrow(&l.at(), &rows)
            .map_err(|reason| CompactError::Unsupported {
                layer: l.name.clone(),
                reason,
            })?;
        if let Some((before, after)) = changed {
            widths.push(Width {
                layer: l.name.clone(),
                before,
                after,
            });
        }
        w += l.prunable().len();
        written.push(Layer {
            name: Some(l.name.clone()),
            input: given.input,
            config: LayerConfig::of(kind),
        });
    }
    Ok((
        StackConfig {
            input: stack.input,
            layers: written,
        },
        widths,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Attention, Resolved};
    use crate::model::ModelKind;

    /// Every parameter of `stack` with distinct values, and masks that prune channel
    /// groups and heads as `cut` says.
    fn params_of(stack: &StackConfig) -> Vec<HostTensor> {
        let mut next = 0.0f32;
        stack
            .resolve(None)
            .unwrap()
            .iter()
            .flat_map(|l| l.parameters())
            .map(|(name, dims)| {
                let n: usize = dims.iter().product();
                let values = (0..n)
                    .map(|_| {
                        next += 1.0;
                        (next * 0.618).fract() + 0.1
                    })
                    .collect();
                HostTensor { name, dims, values }
            })
            .collect()
    }

    #[test]
    fn resnet20_without_half_its_channels_is_a_smaller_network_that_loads_its_params() {
        let stack = ModelKind::Resnet20.stack().unwrap();
        let layers = stack.resolve(None).unwrap();
        let shapes: Vec<LayerShape> = layers
            .iter()
            .flat_map(|l| l.prunable())
            .map(|w| w.shape)
            .collect();
        let groups = unit_groups(&layers);
        let mut masks: Vec<Option<Vec<u8>>> = vec![None; shapes.len()];
        for g in &groups {
            // every odd channel of every group goes
            let kept: Vec<bool> = (0..g.channels).map(|c| c % 2 == 0).collect();
            crate::prune::apply_group(g, &kept, &shapes, &mut masks);
        }
        let params = params_of(&stack);
        let c = compact(&stack, &params, &masks).unwrap();
        let small = c.stack.resolve(Some(10)).unwrap();
        // the graph keeps its layers and names; every width is half
        assert_eq!(small.len(), layers.len());
        let stem = small.iter().find(|l| l.name == "stem").unwrap();
        assert_eq!(stem.output.channels(), 8);
        let fc = c.params.iter().find(|t| t.name == "fc.weight").unwrap();
        assert_eq!(fc.dims, [10, 32]);
        // the kept values are the originals: fc's column 1 of the small model is column 2
        let fc0 = params.iter().find(|t| t.name == "fc.weight").unwrap();
        assert_eq!(fc.values[1], fc0.values[2]);
        let bn = c
            .params
            .iter()
            .find(|t| t.name == "bn.running_var")
            .unwrap();
        assert_eq!(bn.dims, [8]);
        // every parameter the smaller network needs is there with its shape
        for l in &small {
            for (key, dims) in l.parameters() {
                let t = c
                    .params
                    .iter()
                    .find(|t| t.name == key)
                    .unwrap_or_else(|| panic!("{key}"));
                assert_eq!(t.dims, dims, "{key}");
                assert_eq!(t.values.len(), dims.iter().product::<usize>(), "{key}");
            }
        }
        assert!(
            c.macs_after * 4 <= c.macs_before + c.macs_before / 20,
            "{} -> {}",
            c.macs_before,
            c.macs_after
        );
        assert!(
            c.widths
                .iter()
                .any(|w| w.layer == "blocks.8.c1" && (w.before, w.after) == (64, 32))
        );
        // the masks left inside the kept weights are all ones: nothing else was pruned
        assert!(c.masks.iter().flatten().all(|m| m.iter().all(|&v| v == 1)));
    }

    #[test]
    fn channels_a_grouped_convolution_writes_or_reads_keep_their_width() {
        // b (2 groups) reads a's channels and writes its own; zero a channel of each
        let stack: StackConfig = toml::from_str(
            r#"
input = [1, 6, 6]
[[layers]]
type = "conv2d"
name = "a"
out = 4
kernel = 3
[[layers]]
type = "conv2d"
name = "b"
out = 4
kernel = 1
groups = 2
[[layers]]
type = "flatten"
[[layers]]
type = "linear"
name = "fc"
out = 10
"#,
        )
        .unwrap();
        let layers = stack.resolve(None).unwrap();
        let shapes: Vec<LayerShape> = layers
            .iter()
            .flat_map(|l| l.prunable())
            .map(|w| w.shape)
            .collect();
        let mut masks: Vec<Option<Vec<u8>>> =
            shapes.iter().map(|s| Some(vec![1u8; s.numel()])).collect();
        let a_row = shapes[0].row_len();
        masks[0].as_mut().unwrap()[..a_row].fill(0);
        let b_row = shapes[1].row_len();
        masks[1].as_mut().unwrap()[..b_row].fill(0);
        let fc_row = shapes[2].row_len();
        for row in masks[2].as_mut().unwrap().chunks_mut(fc_row) {
            row[..16].fill(0);
        }
        let c = compact(&stack, &params_of(&stack), &masks).unwrap();
        assert!(c.widths.is_empty(), "{:?}", c.widths);
        assert_eq!(c.macs_after, c.macs_before);
    }

    #[test]
    fn vit_tiny_without_heads_keeps_each_heads_width() {
        let stack = ModelKind::VitTiny.stack().unwrap();
        let layers = stack.resolve(None).unwrap();
        let shapes: Vec<LayerShape> = layers
            .iter()
            .flat_map(|l| l.prunable())
            .map(|w| w.shape)
            .collect();
        let groups = unit_groups(&layers);
        let mut masks: Vec<Option<Vec<u8>>> = vec![None; shapes.len()];
        for g in groups.iter().filter(|g| g.kind == GroupKind::Heads) {
            crate::prune::apply_group(g, &[true, false, true, false], &shapes, &mut masks);
        }
        let c = compact(&stack, &params_of(&stack), &masks).unwrap();
        let small = c.stack.resolve(Some(10)).unwrap();
        let attn = small
            .iter()
            .find(|l| l.name == "encoder.layers.0.self_attn")
            .unwrap();
        assert_eq!(
            attn.kind,
            Resolved::Attention(Attention {
                heads: 2,
                head_dim: 16
            })
        );
        let in_proj = c
            .params
            .iter()
            .find(|t| t.name == "encoder.layers.0.self_attn.in_proj_weight")
            .unwrap();
        assert_eq!(in_proj.dims, [96, 64]);
        let out_proj = c
            .params
            .iter()
            .find(|t| t.name == "encoder.layers.0.self_attn.out_proj.weight")
            .unwrap();
        assert_eq!(out_proj.dims, [64, 32]);
        assert!(c.macs_after < c.macs_before);
    }
}
