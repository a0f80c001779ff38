//! Mask computation: per layer, N:M groups, and one global ranking across layers.
//!
//! A mask is a `Vec<u8>` in the weight's PyTorch layout: 1 kept, 0 pruned. Every function
//! here is pure: the same weights, shape, rule and seed give the same mask.

use std::cmp::Ordering;

use thiserror::Error;

use super::granularity::{Granularity, Ineligible};
use super::layer::LayerShape;
use super::score::{Criterion, UnitLayout, random_score};

/// A request that cannot be turned into a mask.
#[derive(Debug, Error, PartialEq, Clone)]
pub enum MaskError {
    #[error("target sparsity must be in [0, 1), found {0}")]
    TargetOutOfRange(f64),
    #[error("{granularity} cannot be applied to a {shape} weight: {reason}")]
    Ineligible {
        granularity: Granularity,
        shape: LayerShape,
        reason: Ineligible,
    },
    #[error("weight has {found} values but its shape {shape} needs {expected}")]
    ShapeMismatch {
        shape: LayerShape,
        expected: usize,
        found: usize,
    },
}

/// Units kept out of `count` at `target` sparsity: `round(count * (1 - target))`, as tfmot.
pub fn keep_count(count: usize, target: f64) -> usize {
    ((count as f64) * (1.0 - target)).round() as usize
}

/// Orders candidates by score, then by position, so ties never make a mask depend on the
/// sorting algorithm. NaN scores sort last (kept).
fn by_score_then_index(scores: &[f64]) -> impl Fn(&usize, &usize) -> Ordering + '_ {
    |&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b))
}

/// Which units survive when the `count - keep` lowest-scored ones are pruned.
pub(super) fn keep_highest(scores: &[f64], keep: usize) -> Vec<bool> {
    let n = scores.len();
    let prune = n - keep.min(n);
    let mut kept = vec![true; n];
    if prune == 0 {
        return kept;
    }
    let mut order: Vec<usize> = (0..n).collect();
    if prune < n {
        order.select_nth_unstable_by(prune - 1, by_score_then_index(scores));
    }
    for &u in &order[..prune] {
        kept[u] = false;
    }
    kept
}

fn check_request(
    weights: &[f32],
    shape: &LayerShape,
    granularity: Granularity,
    target: f64,
) -> Result<(), MaskError> {
    if !(0.0..1.0).contains(&target) {
        return Err(MaskError::TargetOutOfRange(target));
    }
    if weights.len() != shape.numel() {
        return Err(MaskError::ShapeMismatch {
            shape: *shape,
            expected: shape.numel(),
            found: weights.len(),
        });
    }
    granularity
        .check_layer(shape)
        .map_err(|reason| MaskError::Ineligible {
            granularity,
            shape: *shape,
            reason,
        })
}

/// The mask of one layer pruned on its own to `target` sparsity.
///
/// Unstructured, block and channel granularities keep exactly
/// [`keep_count`]`(units, target)` units, the highest by the criterion; a criterion that
/// ranks per row (Wanda) on unstructured weights keeps `keep_count(row, target)` weights of
/// every output row instead. N:M ignores the number and applies its pattern (its sparsity is
/// fixed at `1 - N/M`) as soon as `target` is above zero; at zero the layer stays dense.
pub fn layer_mask(
    weights: &[f32],
    shape: &LayerShape,
    granularity: Granularity,
    criterion: Criterion,
    target: f64,
    seed: u64,
) -> Result<Vec<u8>, MaskError> {
    check_request(weights, shape, granularity, target)?;
    if let Granularity::NOfM { n, m } = granularity {
        if target <= 0.0 {
            return Ok(vec![1; weights.len()]);
        }
        return Ok(nm_mask(weights, shape, n, m, criterion, seed));
    }
    let layout = UnitLayout::new(*shape, granularity);
    let scores = layout.scores(weights, criterion, seed);
    if granularity == Granularity::Unstructured && criterion.ranks_per_row() {
        let row = shape.row_len();
        let keep = keep_count(row, target);
        return Ok(scores
            .chunks(row)
            .flat_map(|r| keep_highest(r, keep))
            .map(u8::from)
            .collect());
    }
    let kept = keep_highest(&scores, keep_count(scores.len(), target));
    Ok(layout.expand(&kept))
}

/// N:M mask: in every group of `m` consecutive weights along the input axis (Linear: input
/// features of one output row; Conv2d: input channels at one `(out, kh, kw)`), keep the `n`
/// highest by the criterion. The caller has checked that `m` divides the input size.
pub fn nm_mask(
    weights: &[f32],
    shape: &LayerShape,
    n: usize,
    m: usize,
    criterion: Criterion,
    seed: u64,
) -> Vec<u8> {
    let mut mask = vec![0u8; weights.len()];
    let score = |i: usize| match criterion {
        Criterion::Random => random_score(seed, i as u64),
        // saliency criteria arrive as saliencies in place of the weights
        _ => weights[i].abs() as f64,
    };
    let mut group: Vec<(f64, usize)> = Vec::with_capacity(m);
    for o in 0..shape.out {
        for y in 0..shape.kh {
            for x in 0..shape.kw {
                for g in 0..shape.inp / m {
                    group.clear();
                    group.extend((g * m..(g + 1) * m).map(|i| {
                        let idx = shape.index(o, i, y, x);
                        (score(idx), idx)
                    }));
                    // highest score first; on ties the lower index wins
                    group.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                    for &(_, idx) in &group[..n] {
                        mask[idx] = 1;
                    }
                }
            }
        }
    }
    mask
}

/// One layer taking part in a global ranking.
#[derive(Clone, Copy, Debug)]
pub struct GlobalLayer<'a> {
    pub weights: &'a [f32],
    pub shape: LayerShape,
    /// Seed of the random criterion for this layer.
    pub seed: u64,
}

/// One threshold across layers, as torch's `global_unstructured`: all units of all layers
/// are ranked together and the lowest are pruned until `round(target * total weights)`
/// weights are pruned (exact for unstructured; block and channel units may overshoot by
/// less than one unit). Layers end with different sparsities: that is the point.
///
/// N:M has no global form (its pattern is per group); it is rejected as ineligible.
pub fn global_masks(
    layers: &[GlobalLayer<'_>],
    granularity: Granularity,
    criterion: Criterion,
    target: f64,
) -> Result<Vec<Vec<u8>>, MaskError> {
    if let Granularity::NOfM { .. } = granularity
        && let Some(first) = layers.first()
    {
        return Err(MaskError::Ineligible {
            granularity,
            shape: first.shape,
            reason: Ineligible("N:M groups are per layer; there is no global ranking".into()),
        });
    }
    for l in layers {
        check_request(l.weights, &l.shape, granularity, target)?;
    }
    let layouts: Vec<UnitLayout> = layers
        .iter()
        .map(|l| UnitLayout::new(l.shape, granularity))
        .collect();
    // (score, layer, unit)
    let mut units: Vec<(f64, usize, usize)> = Vec::new();
    for (li, (l, layout)) in layers.iter().zip(&layouts).enumerate() {
        let scores = layout.scores(l.weights, criterion, l.seed);
        units.extend(scores.into_iter().enumerate().map(|(u, s)| (s, li, u)));
    }
    units.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let total: usize = layers.iter().map(|l| l.shape.numel()).sum();
    let goal = (total as f64 * target).round() as usize;
    let mut kept: Vec<Vec<bool>> = layouts.iter().map(|l| vec![true; l.count()]).collect();
    let mut pruned = 0usize;
    for &(_, li, u) in &units {
        if pruned >= goal {
            break;
        }
        kept[li][u] = false;
        pruned += layouts[li].size();
    }
    Ok(layouts
        .iter()
        .zip(&kept)
        .map(|(layout, k)| layout.expand(k))
        .collect())
}

/// Fraction of zeros in a mask.
pub fn sparsity(mask: &[u8]) -> f64 {
    if mask.is_empty() {
        return 0.0;
    }
    mask.iter().filter(|&&m| m == 0).count() as f64 / mask.len() as f64
}

/// Whether two masks keep the same weights, a missing mask (`None`) keeping them all: a
/// cut to 0% changes no mask, however it is stored.
pub fn same_kept(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        (Some(m), None) | (None, Some(m)) => !m.contains(&0),
        (None, None) => true,
    }
}

/// Where a cut drew its line on `|w|`: the smallest magnitude among the kept weights, the
/// weights just grown back excepted (they start at zero and were not ranked). `None` when
/// nothing is pruned or nothing ranked is kept. It is the threshold only for a layer ranked
/// by `|w|` alone, one weight at a time (see [`LayerRule::cut_by_magnitude`]).
///
/// [`LayerRule::cut_by_magnitude`]: super::LayerRule::cut_by_magnitude
pub fn cut_threshold(weights: &[f32], mask: &[u8], grown: &[u32]) -> Option<f64> {
    if !mask.contains(&0) {
        return None;
    }
    let mut fresh = vec![false; mask.len()];
    for &g in grown {
        if let Some(f) = fresh.get_mut(g as usize) {
            *f = true;
        }
    }
    weights
        .iter()
        .zip(mask)
        .zip(&fresh)
        .filter(|((_, m), f)| **m == 1 && !**f)
        .map(|((w, _), _)| w.abs() as f64)
        .min_by(f64::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::BlockScore;

    #[test]
    fn a_missing_mask_keeps_everything() {
        assert!(same_kept(None, None));
        assert!(same_kept(None, Some(&[1, 1, 1])));
        assert!(same_kept(Some(&[1, 1]), None));
        assert!(!same_kept(None, Some(&[1, 0, 1])));
        assert!(same_kept(Some(&[1, 0]), Some(&[1, 0])));
        assert!(!same_kept(Some(&[1, 0]), Some(&[0, 1])));
    }

    #[test]
    fn a_cut_threshold_separates_what_a_magnitude_cut_kept_from_what_it_pruned() {
        let w = [0.5f32, -0.1, 0.3, -0.7, 0.05, 0.2];
        let shape = LayerShape::linear(1, 6);
        let mask = layer_mask(
            &w,
            &shape,
            Granularity::Unstructured,
            Criterion::Magnitude,
            0.5,
            0,
        )
        .unwrap();
        let line = cut_threshold(&w, &mask, &[]).unwrap();
        assert_eq!(line, 0.3f32 as f64);
        for (v, m) in w.iter().zip(&mask) {
            if *m == 1 {
                assert!(v.abs() as f64 >= line);
            } else {
                assert!((v.abs() as f64) < line);
            }
        }
        // a weight grown back at zero is not part of the ranking
        let grown = [1u8, 0, 1, 1, 1, 0];
        let w_grown = [0.5f32, -0.1, 0.3, -0.7, 0.0, 0.2];
        assert_eq!(cut_threshold(&w_grown, &grown, &[4]), Some(0.3f32 as f64));
        assert_eq!(cut_threshold(&w_grown, &grown, &[]), Some(0.0));
        // nothing pruned: no line; nothing ranked kept: no line
        assert_eq!(cut_threshold(&w, &[1; 6], &[]), None);
        assert_eq!(cut_threshold(&w, &[0; 6], &[]), None);
    }

    #[test]
    fn keep_count_rounds_like_tfmot() {
        assert_eq!(keep_count(10, 0.5), 5);
        assert_eq!(keep_count(10, 0.86), 1); // 1.4 -> 1
        assert_eq!(keep_count(10, 0.84), 2); // 1.6 -> 2
        assert_eq!(keep_count(235_200, 0.9), 23_520);
        assert_eq!(keep_count(7, 0.0), 7);
    }

    #[test]
    fn unstructured_prunes_the_smallest_magnitudes() {
        let w = [0.5f32, -0.1, 0.3, -0.9, 0.05, 0.7];
        let shape = LayerShape::linear(2, 3);
        let m = layer_mask(
            &w,
            &shape,
            Granularity::Unstructured,
            Criterion::Magnitude,
            0.5,
            0,
        )
        .unwrap();
        assert_eq!(m, vec![1, 0, 0, 1, 0, 1]);
    }

    #[test]
    fn ties_are_broken_by_position() {
        let w = [0.0f32; 8];
        let shape = LayerShape::linear(2, 4);
        let m = layer_mask(
            &w,
            &shape,
            Granularity::Unstructured,
            Criterion::Magnitude,
            0.25,
            0,
        )
        .unwrap();
        assert_eq!(m, vec![0, 0, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn two_of_four_keeps_the_two_largest_of_each_group() {
        let w = [
            0.1f32, -0.4, 0.3, 0.2, /* group 2 */ 9.0, 8.0, -7.0, 0.0, //
            1.0, 1.0, 1.0, 1.0, /* ties */ 0.0, 0.0, -0.0, 5.0,
        ];
        let shape = LayerShape::linear(2, 8);
        let m = layer_mask(
            &w,
            &shape,
            Granularity::NOfM { n: 2, m: 4 },
            Criterion::Magnitude,
            0.5,
            0,
        )
        .unwrap();
        assert_eq!(m, vec![0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1]);
    }

    #[test]
    fn conv_nm_groups_run_along_input_channels() {
        // [out=1, in=4, kh=1, kw=2]: the groups are (i=0..4, x=0) and (i=0..4, x=1)
        let shape = LayerShape::conv2d(1, 4, 1, 2);
        // layout: index = i*2 + x
        let w = [4.0f32, 0.1, 3.0, 0.2, 2.0, 0.3, 1.0, 0.4];
        let m = layer_mask(
            &w,
            &shape,
            Granularity::NOfM { n: 1, m: 4 },
            Criterion::Magnitude,
            0.75,
            0,
        )
        .unwrap();
        assert_eq!(m, vec![1, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn nm_is_dense_until_pruning_starts() {
        let shape = LayerShape::linear(1, 4);
        let m = layer_mask(
            &[1.0, 2.0, 3.0, 4.0],
            &shape,
            Granularity::NOfM { n: 2, m: 4 },
            Criterion::Magnitude,
            0.0,
            0,
        )
        .unwrap();
        assert_eq!(m, vec![1, 1, 1, 1]);
    }

    #[test]
    fn channel_prunes_whole_rows_by_norm() {
        let w = [1.0f32, 1.0, 0.1, 0.1, 5.0, 0.0, 0.2, -0.1];
        let m = layer_mask(
            &w,
            &LayerShape::linear(4, 2),
            Granularity::Channel,
            Criterion::Magnitude,
            0.5,
            0,
        )
        .unwrap();
        assert_eq!(m, vec![1, 1, 0, 0, 1, 1, 0, 0]);
    }

    #[test]
    fn block_max_and_mean_can_disagree() {
        // two 1x2 blocks: [0.9, 0.0] (mean .45, max .9) and [0.5, 0.5] (mean .5, max .5)
        let w = [0.9f32, 0.0, 0.5, 0.5];
        let shape = LayerShape::linear(1, 4);
        let block = |score| Granularity::Block {
            rows: 1,
            cols: 2,
            score,
        };
        let mean = layer_mask(
            &w,
            &shape,
            block(BlockScore::Mean),
            Criterion::Magnitude,
            0.5,
            0,
        )
        .unwrap();
        let max = layer_mask(
            &w,
            &shape,
            block(BlockScore::Max),
            Criterion::Magnitude,
            0.5,
            0,
        )
        .unwrap();
        assert_eq!(mean, vec![0, 0, 1, 1]);
        assert_eq!(max, vec![1, 1, 0, 0]);
    }

    #[test]
    fn bad_requests_are_errors() {
        let shape = LayerShape::linear(2, 2);
        let w = [1.0f32; 4];
        for t in [1.0, 1.5, -0.1, f64::NAN] {
            assert!(matches!(
                layer_mask(
                    &w,
                    &shape,
                    Granularity::Unstructured,
                    Criterion::Magnitude,
                    t,
                    0
                ),
                Err(MaskError::TargetOutOfRange(_))
            ));
        }
        assert!(matches!(
            layer_mask(
                &w[..3],
                &shape,
                Granularity::Unstructured,
                Criterion::Magnitude,
                0.5,
                0
            ),
            Err(MaskError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            layer_mask(
                &w,
                &shape,
                Granularity::NOfM { n: 2, m: 4 },
                Criterion::Magnitude,
                0.5,
                0
            ),
            Err(MaskError::Ineligible { .. })
        ));
    }

    #[test]
    fn global_ranking_prunes_the_weaker_layer_harder() {
        let strong = [1.0f32, 2.0, 3.0, 4.0];
        let weak = [0.1f32, 0.2, 0.3, 5.0];
        let layers = [
            GlobalLayer {
                weights: &strong,
                shape: LayerShape::linear(1, 4),
                seed: 0,
            },
            GlobalLayer {
                weights: &weak,
                shape: LayerShape::linear(1, 4),
                seed: 1,
            },
        ];
        let masks = global_masks(
            &layers,
            Granularity::Unstructured,
            Criterion::Magnitude,
            0.5,
        )
        .unwrap();
        assert_eq!(masks[0], vec![0, 1, 1, 1]);
        assert_eq!(masks[1], vec![0, 0, 0, 1]);
    }

    #[test]
    fn raising_the_target_only_adds_to_the_pruned_set() {
        let shape = LayerShape::linear(8, 8);
        let w: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 32.0) / 10.0)
            .collect();
        for criterion in [Criterion::Magnitude, Criterion::Random] {
            let mut prev = vec![1u8; 64];
            let mut weights = w.clone();
            for t in [0.2, 0.4, 0.6, 0.8] {
                let m = layer_mask(&weights, &shape, Granularity::Unstructured, criterion, t, 3)
                    .unwrap();
                for (a, b) in prev.iter().zip(&m) {
                    assert!(*b <= *a, "a pruned weight came back at {t}");
                }
                weights
                    .iter_mut()
                    .zip(&m)
                    .for_each(|(w, &k)| *w *= k as f32);
                prev = m;
            }
        }
    }
}
