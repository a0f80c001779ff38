//! Channel groups: channels that must be pruned together because they flow into the same
//! place (and, with the same rules, an attention layer's heads). In a residual network a block's last convolution, its shortcut and every layer
//! that reads their sum share channels; removing channel 5 from one and not the others
//! breaks the sum. A group is ranked by its members' summed scores and every member loses
//! the same channels: the producers their output rows, the readers their input columns.
//! Which channels form a group is the network's to say (`model::stack::unit_groups`);
//! the rules here are plain functions on host slices.

use serde::{Deserialize, Serialize};

use super::LayerShape;
use super::mask::{keep_count, keep_highest};

/// What a group's units are: the channels a graph ties together, or an attention layer's
/// heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    Channels,
    Heads,
}

/// Units (channels or heads) pruned together, by position among the network's prunable
/// weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitGroup {
    pub kind: GroupKind,
    /// How many units the group has.
    pub channels: usize,
    /// Weights whose output rows hold the units.
    pub producers: Vec<Member>,
    /// Weights whose input columns read the units.
    pub readers: Vec<Member>,
    /// The layers that carry the channels without a prunable weight (batch and layer
    /// norms, position embeddings): what physical removal also shrinks.
    pub carriers: Vec<String>,
}

/// Where a group's units lie in one member weight: unit `c` is rows (for a producer) or
/// columns (for a reader) `offset + c * span .. offset + (c + 1) * span`. A convolution
/// reads a channel as `kh * kw` columns, a dense layer after a flatten as `h * w`; an
/// attention head is `head_dim` rows of each of Q, K and V (three members at offsets 0,
/// `d` and `2d`) and `head_dim` columns of the output projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub weight: usize,
    pub offset: usize,
    pub span: usize,
}

impl Member {
    /// One unit per row or column, from the first.
    pub fn single(weight: usize) -> Self {
        Self {
            weight,
            offset: 0,
            span: 1,
        }
    }

    /// Unit `c`'s rows or columns.
    pub fn range(&self, c: usize) -> std::ops::Range<usize> {
        self.offset + c * self.span..self.offset + (c + 1) * self.span
    }
}

impl UnitGroup {
    /// Every prunable weight in the group (producers first; a weight may repeat).
    pub fn members(&self) -> impl Iterator<Item = usize> + '_ {
        self.producers.iter().chain(&self.readers).map(|m| m.weight)
    }

    /// Whether weight `w` holds units of the group in its rows.
    pub fn produced_by(&self, w: usize) -> bool {
        self.producers.iter().any(|m| m.weight == w)
    }
}

/// Channels kept out of `channels` at `target` sparsity, rounded up to a multiple of
/// `round_to` (runtimes are fastest on widths that are multiples of 8 or 16), never more
/// than the group has and never none.
pub fn group_keep(channels: usize, target: f64, round_to: usize) -> usize {
    let keep = keep_count(channels, target).max(1);
    let round_to = round_to.max(1);
    keep.div_ceil(round_to)
        .saturating_mul(round_to)
        .min(channels)
}

/// The score of every channel of `group`: over its members, the root mean square of the
/// scores (weights, or a criterion's saliencies) in the channel's rows and columns,
/// summed. `scores[w]` and `shapes[w]` are prunable weight `w`'s.
pub fn group_scores(group: &UnitGroup, scores: &[&[f32]], shapes: &[LayerShape]) -> Vec<f64> {
    let mut total = vec![0.0f64; group.channels];
    let mut add = |c: usize, values: &mut dyn Iterator<Item = f32>| {
        let (mut sq, mut n) = (0.0f64, 0usize);
        for v in values {
            sq += (v as f64) * (v as f64);
            n += 1;
        }
        if n > 0 {
            total[c] += (sq / n as f64).sqrt();
        }
    };
    for p in &group.producers {
        let row = shapes[p.weight].row_len();
        for c in 0..group.channels {
            let rows = p.range(c);
            add(
                c,
                &mut scores[p.weight][rows.start * row..rows.end * row]
                    .iter()
                    .copied(),
            );
        }
    }
    for r in &group.readers {
        let row = shapes[r.weight].row_len();
        for c in 0..group.channels {
            let cols = r.range(c);
            add(
                c,
                &mut scores[r.weight]
                    .chunks(row)
                    .flat_map(|w| w[cols.clone()].iter().copied()),
            );
        }
    }
    total
}

/// Which channels of a group survive at `target` sparsity: the highest by
/// [`group_scores`], [`group_keep`] of them.
pub fn group_kept(scores: &[f64], target: f64, round_to: usize) -> Vec<bool> {
    keep_highest(scores, group_keep(scores.len(), target, round_to))
}

/// Multiplies into `masks` (one per prunable weight, PyTorch layout, 1 kept; `None`: dense,
/// made a mask when the group cuts it) what a group with channels `kept` removes: the
/// producers' rows and the readers' columns of every channel not kept.
pub fn apply_group(
    group: &UnitGroup,
    kept: &[bool],
    shapes: &[LayerShape],
    masks: &mut [Option<Vec<u8>>],
) {
    let pruned: Vec<usize> = (0..kept.len()).filter(|&c| !kept[c]).collect();
    for p in &group.producers {
        let row = shapes[p.weight].row_len();
        let m = dense_if_none(masks, shapes, p.weight);
        for &c in &pruned {
            let rows = p.range(c);
            m[rows.start * row..rows.end * row].fill(0);
        }
    }
    for r in &group.readers {
        let row = shapes[r.weight].row_len();
        for w in dense_if_none(masks, shapes, r.weight).chunks_mut(row) {
            for &c in &pruned {
                w[r.range(c)].fill(0);
            }
        }
    }
}

/// Weight `w`'s mask, all kept when it had none.
fn dense_if_none<'a>(
    masks: &'a mut [Option<Vec<u8>>],
    shapes: &[LayerShape],
    w: usize,
) -> &'a mut Vec<u8> {
    masks[w].get_or_insert_with(|| vec![1; shapes[w].numel()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// conv a (2 -> 3 channels, 1x1) producing the group; conv b (3 -> 2, 3x3) reading it.
    fn pair() -> (UnitGroup, Vec<LayerShape>) {
        let group = UnitGroup {
            kind: GroupKind::Channels,
            channels: 3,
            producers: vec![Member::single(0)],
            readers: vec![Member {
                weight: 1,
                offset: 0,
                span: 9,
            }],
            carriers: vec!["norm".into()],
        };
        (
            group,
            vec![
                LayerShape::conv2d(3, 2, 1, 1),
                LayerShape::conv2d(2, 3, 3, 3),
            ],
        )
    }

    #[test]
    fn kept_widths_round_up_to_the_multiple_and_stay_in_range() {
        assert_eq!(group_keep(64, 0.5, 1), 32);
        assert_eq!(group_keep(64, 0.7, 1), 19);
        assert_eq!(group_keep(64, 0.7, 8), 24);
        assert_eq!(group_keep(16, 0.3, 8), 16);
        assert_eq!(group_keep(10, 0.99, 1), 1, "never no channel");
        assert_eq!(group_keep(10, 0.0, 8), 10, "never more than the group");
        for channels in 1..40 {
            for t in [0.0, 0.1, 0.5, 0.9] {
                for round in [1, 4, 8] {
                    let k = group_keep(channels, t, round);
                    assert!(k >= 1 && k <= channels);
                    assert!(
                        k == channels || k.is_multiple_of(round),
                        "{channels} {t} {round}"
                    );
                    assert!(k >= keep_count(channels, t));
                }
            }
        }
    }

    #[test]
    fn a_channels_score_sums_its_rows_and_columns_over_members() {
        let (group, shapes) = pair();
        let a: Vec<f32> = vec![3.0, 4.0, 0.0, 0.0, 1.0, 1.0];
        let mut b = vec![0.0f32; 2 * 27];
        // channel 1 of reader b: columns 9..18 of both rows, all 2.0
        for row in b.chunks_mut(27) {
            row[9..18].fill(2.0);
        }
        let s = group_scores(&group, &[&a, &b], &shapes);
        // channel 0: rms(3, 4) = sqrt(12.5); channel 1: rms(0, 0) + rms(2 x 18) = 2
        assert!((s[0] - 12.5f64.sqrt()).abs() < 1e-9);
        assert!((s[1] - 2.0).abs() < 1e-9);
        assert!((s[2] - 1.0).abs() < 1e-9);
        assert_eq!(group_kept(&s, 1.0 / 3.0, 1), [true, true, false]);
    }

    #[test]
    fn a_pruned_channel_leaves_its_producer_rows_and_its_readers_columns() {
        let (group, shapes) = pair();
        let mut masks = vec![None, Some(vec![1u8; 54])];
        apply_group(&group, &[true, false, true], &shapes, &mut masks);
        assert_eq!(masks[0].as_deref(), Some(&[1u8, 1, 0, 0, 1, 1][..]));
        for row in masks[1].as_ref().unwrap().chunks(27) {
            assert!(row[..9].iter().all(|&m| m == 1));
            assert!(row[9..18].iter().all(|&m| m == 0));
            assert!(row[18..].iter().all(|&m| m == 1));
        }
        // masks multiply: a second group's cut keeps the first's
        let second = UnitGroup {
            kind: GroupKind::Channels,
            channels: 2,
            producers: vec![Member::single(1)],
            readers: vec![],
            carriers: vec![],
        };
        apply_group(&second, &[false, true], &shapes, &mut masks);
        let m = masks[1].as_ref().unwrap();
        assert!(m[..27].iter().all(|&v| v == 0));
        assert!(m[27 + 9..27 + 18].iter().all(|&v| v == 0));
        assert_eq!(m.iter().filter(|&&v| v == 1).count(), 18);
    }
}
