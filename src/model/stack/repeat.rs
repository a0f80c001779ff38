//! Writing out `repeat` entries: a block written once becomes its copies, numbered.

use super::StackError;
use super::layer::{Layer, LayerConfig, Repeat};

/// Most layers a network may have once its repeats are written out.
pub const MAX_LAYERS: usize = 2_048;

/// The name a layer goes by: the given one, or its type and position (`relu3`).
pub fn layer_name(layer: &Layer, position: usize) -> String {
    layer
        .name
        .clone()
        .unwrap_or_else(|| format!("{}{position}", layer.config.type_name()))
}

/// `layers` with every `repeat` written out: in copy `k` of a block, `{i}` is `first + k`
/// and `{input}` the name of the layer before the copy (`input` when there is none).
pub fn expand(layers: &[Layer]) -> Result<Vec<Layer>, StackError> {
    let mut out: Vec<Layer> = Vec::with_capacity(layers.len());
    for (position, layer) in layers.iter().enumerate() {
        let LayerConfig::Repeat(Repeat {
            times,
            first,
            layers: block,
        }) = &layer.config
        else {
            push(&mut out, layer.clone())?;
            continue;
        };
        let invalid = |reason: &str| StackError::Invalid {
            layer: layer_name(layer, position),
            reason: reason.into(),
        };
        if *times == 0 || block.is_empty() {
            return Err(invalid("a repeat needs times >= 1 and at least one layer"));
        }
        if block
            .iter()
            .any(|l| matches!(l.config, LayerConfig::Repeat(_)))
        {
            return Err(invalid("a repeat cannot hold another repeat"));
        }
        if times.saturating_mul(block.len()) > MAX_LAYERS {
            return Err(invalid(&format!(
                "{times} copies of {} layers is more than the {MAX_LAYERS} layers a network may have",
                block.len()
            )));
        }
        for k in 0..*times {
            let number = first.saturating_add(k).to_string();
            let before = out
                .last()
                .map(|l| layer_name(l, out.len() - 1))
                .unwrap_or_else(|| "input".into());
            let fill = |text: &str| text.replace("{i}", &number).replace("{input}", &before);
            for l in block {
                let mut copy = l.clone();
                copy.name = copy.name.as_deref().map(fill);
                copy.input = copy.input.as_deref().map(fill);
                if let Some(inputs) = copy.config.merged_mut() {
                    inputs.iter_mut().for_each(|n| *n = fill(n));
                }
                push(&mut out, copy)?;
            }
        }
    }
    Ok(out)
}

fn push(out: &mut Vec<Layer>, layer: Layer) -> Result<(), StackError> {
    if out.len() >= MAX_LAYERS {
        return Err(StackError::Invalid {
            layer: layer_name(&layer, out.len()),
            reason: format!("a network may have at most {MAX_LAYERS} layers"),
        });
    }
    out.push(layer);
    Ok(())
}
