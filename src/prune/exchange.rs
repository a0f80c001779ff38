//! Dynamic sparse training's update of one layer (RigL, SET): drop the weakest kept units
//! and grow as many pruned ones, so the sparsity stays put while the mask moves.

use super::granularity::Granularity;
use super::layer::LayerShape;
use super::mask::{MaskError, keep_highest};
use super::score::{Criterion, UnitLayout, random_score};

/// What decides which pruned units grow back.
#[derive(Clone, Copy, Debug)]
pub enum GrowthScores<'a> {
    /// The dense gradient of the loss for every weight (PyTorch layout): the largest
    /// aggregated `|dL/dw|` grow (RigL).
    Gradient(&'a [f32]),
    /// A seeded random order (SET).
    Random { seed: u64 },
}

/// A layer's mask after one exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct Exchange {
    /// 1 kept, 0 pruned: as many kept as before.
    pub mask: Vec<u8>,
    /// The weights grown by this exchange (flat indices, ascending): pruned before, kept now.
    pub grown: Vec<u32>,
}

/// Drops `round(fraction * kept units)` of the kept units with the smallest magnitude
/// (aggregated as the granularity scores magnitude) and grows as many of the units that were
/// pruned, the highest by `growth`. Units dropped now are not grown back in the same
/// exchange. Fewer are exchanged when fewer units are pruned than would be dropped.
///
/// N:M has no free units to exchange (its pattern fixes the count in every group) and is
/// rejected; the plan refuses it with a dynamic schedule before training starts.
pub fn exchange(
    mask: &[u8],
    weights: &[f32],
    shape: &LayerShape,
    granularity: Granularity,
    growth: GrowthScores<'_>,
    fraction: f64,
) -> Result<Exchange, MaskError> {
    if let Granularity::NOfM { .. } = granularity {
        return Err(MaskError::Ineligible {
            granularity,
            shape: *shape,
            reason: super::Ineligible(
                "N:M fixes the count of every group: there is nothing to exchange".into(),
            ),
        });
    }
    let gradients = match growth {
        GrowthScores::Gradient(g) => Some(g.len()),
        GrowthScores::Random { .. } => None,
    };
    for len in [mask.len(), weights.len()].into_iter().chain(gradients) {
        if len != shape.numel() {
            return Err(MaskError::ShapeMismatch {
                shape: *shape,
                expected: shape.numel(),
                found: len,
            });
        }
    }
    let layout = UnitLayout::new(*shape, granularity);
    let mut kept = vec![false; layout.count()];
    for (i, &m) in mask.iter().enumerate() {
        kept[layout.unit_of(i)] |= m == 1;
    }
    let kept_units = kept.iter().filter(|&&k| k).count();
    let exchanged = ((kept_units as f64 * fraction.clamp(0.0, 1.0)).round() as usize)
        .min(kept.len() - kept_units);
    if exchanged == 0 {
        return Ok(Exchange {
            mask: mask.to_vec(),
            grown: Vec::new(),
        });
    }
    // drop: among the kept, the `exchanged` smallest magnitudes (the rest scored +inf)
    let magnitude = layout.scores(weights, Criterion::Magnitude, 0);
    let drop_scores: Vec<f64> = magnitude
        .iter()
        .zip(&kept)
        .map(|(&s, &k)| if k { s } else { f64::INFINITY })
        .collect();
    let survives = keep_highest(&drop_scores, drop_scores.len() - exchanged);
    // grow: among those pruned before, the `exchanged` highest scores (the rest -inf)
    let growth_scores: Vec<f64> = match growth {
        GrowthScores::Gradient(g) => layout.scores(g, Criterion::Magnitude, 0),
        GrowthScores::Random { seed } => (0..kept.len() as u64)
            .map(|u| random_score(seed, u))
            .collect(),
    };
    let grow_scores: Vec<f64> = growth_scores
        .iter()
        .zip(&kept)
        .map(|(&s, &k)| if k { f64::NEG_INFINITY } else { s })
        .collect();
    let grows = keep_highest(&grow_scores, exchanged);
    let now_kept: Vec<bool> = (0..kept.len())
        .map(|u| (kept[u] && survives[u]) || (!kept[u] && grows[u]))
        .collect();
    let new_mask = layout.expand(&now_kept);
    let grown = (0..new_mask.len())
        .filter(|&i| !kept[layout.unit_of(i)] && new_mask[i] == 1)
        .map(|i| i as u32)
        .collect();
    Ok(Exchange {
        mask: new_mask,
        grown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rigl_drops_the_smallest_kept_and_grows_the_largest_gradients() {
        // 1x6: kept are 0, 1, 2 (|w| 0.5, 3, 1); pruned 3, 4, 5 with gradients 0.1, 9, 4
        let mask = [1, 1, 1, 0, 0, 0];
        let w = [0.5, -3.0, 1.0, 0.0, 0.0, 0.0];
        let g = [0.0, 0.0, 0.0, 0.1, -9.0, 4.0];
        let shape = LayerShape::linear(1, 6);
        let e = exchange(
            &mask,
            &w,
            &shape,
            Granularity::Unstructured,
            GrowthScores::Gradient(&g),
            0.67,
        )
        .unwrap();
        // round(0.67 * 3) = 2 exchanged: 0 and 2 go, 4 and 5 grow
        assert_eq!(e.mask, vec![0, 1, 0, 0, 1, 1]);
        assert_eq!(e.grown, vec![4, 5]);
    }

    #[test]
    fn a_dropped_unit_is_not_grown_back_at_once() {
        // the dropped weight has the largest gradient, but only pruned units may grow
        let mask = [1, 1, 0, 0];
        let w = [0.1, 2.0, 0.0, 0.0];
        let g = [50.0, 0.0, 1.0, 2.0];
        let e = exchange(
            &mask,
            &w,
            &LayerShape::linear(1, 4),
            Granularity::Unstructured,
            GrowthScores::Gradient(&g),
            0.5,
        )
        .unwrap();
        assert_eq!(e.mask, vec![0, 1, 0, 1]);
        assert_eq!(e.grown, vec![3]);
    }

    #[test]
    fn channels_are_exchanged_whole() {
        // 4 neurons of 2 inputs; neurons 0 and 1 kept
        let mask = [1, 1, 1, 1, 0, 0, 0, 0];
        let w = [0.1, 0.1, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0];
        let g = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 3.0, 0.0];
        let e = exchange(
            &mask,
            &w,
            &LayerShape::linear(4, 2),
            Granularity::Channel,
            GrowthScores::Gradient(&g),
            0.5,
        )
        .unwrap();
        assert_eq!(e.mask, vec![0, 0, 1, 1, 0, 0, 1, 1]);
        assert_eq!(e.grown, vec![6, 7]);
    }

    #[test]
    fn n_of_m_and_mismatched_sizes_are_errors() {
        let shape = LayerShape::linear(1, 4);
        let nm = exchange(
            &[1, 1, 0, 0],
            &[1.0; 4],
            &shape,
            Granularity::NOfM { n: 2, m: 4 },
            GrowthScores::Random { seed: 1 },
            0.3,
        );
        assert!(matches!(nm, Err(MaskError::Ineligible { .. })));
        let short = exchange(
            &[1, 1, 0, 0],
            &[1.0; 4],
            &shape,
            Granularity::Unstructured,
            GrowthScores::Gradient(&[1.0; 3]),
            0.3,
        );
        assert!(matches!(
            short,
            Err(MaskError::ShapeMismatch { found: 3, .. })
        ));
    }
}
