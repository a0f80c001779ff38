//! A pruning policy's masks: every layer's at a schedule value, by layer or ranked
//! globally, and the channel groups and heads cut whole on top of them.

use super::{LayerRule, PolicyError, PruningPolicy};
use crate::prune::granularity::Granularity;
use crate::prune::group::{GroupKind, UnitGroup, apply_group, group_kept, group_scores};
use crate::prune::layer::LayerShape;
use crate::prune::mask::{GlobalLayer, global_masks, layer_mask};

impl PruningPolicy {
    /// Masks for every layer at schedule value `value`. `weights[i]` belongs to `rules[i]`;
    /// dense layers get `None`. `seed` feeds the random criterion (each layer mixes in its
    /// position so layers do not share a pattern).
    pub fn masks(
        &self,
        rules: &[LayerRule],
        weights: &[&[f32]],
        value: f64,
        seed: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, PolicyError> {
        let final_target = self.schedule.final_target();
        let layer_seed = |i: usize| seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let mut out: Vec<Option<Vec<u8>>> = vec![None; rules.len()];
        let global: Vec<usize> = (0..rules.len())
            .filter(|&i| rules[i].joins_global(self))
            .collect();
        if !global.is_empty() {
            let members: Vec<GlobalLayer> = global
                .iter()
                .map(|&i| GlobalLayer {
                    weights: weights[i],
                    shape: rules[i].shape,
                    seed: layer_seed(i),
                })
                .collect();
            let masks = global_masks(&members, self.granularity, self.criterion, value)?;
            for (&i, m) in global.iter().zip(masks) {
                out[i] = Some(m);
            }
        }
        for (i, rule) in rules.iter().enumerate() {
            let Some(g) = rule.granularity else { continue };
            // heads are cut by their groups (see `cut_groups`)
            if out[i].is_some() || g == Granularity::Head {
                continue;
            }
            let target = rule.target(value, final_target);
            out[i] = Some(layer_mask(
                weights[i],
                &rule.shape,
                g,
                rule.criterion,
                target,
                layer_seed(i),
            )?);
        }
        Ok(out)
    }

    /// Re-cuts, on top of [`PruningPolicy::masks`], the groups whose every producer prunes
    /// their unit (channel groups by `channel`, attention layers by `head`): each group
    /// keeps its units with the highest summed scores (at the lowest target among its
    /// producers: a channel leaves only when every layer that writes it lets it go; channel
    /// widths rounded up to [`PruningPolicy::round_to`]) and every member loses the
    /// others, readers included (a dense layer that reads a group loses the columns of its
    /// pruned channels).
    pub fn cut_groups(
        &self,
        rules: &[LayerRule],
        scores: &[&[f32]],
        groups: &[UnitGroup],
        value: f64,
        masks: &mut [Option<Vec<u8>>],
    ) {
        let final_target = self.schedule.final_target();
        let shapes: Vec<LayerShape> = rules.iter().map(|r| r.shape).collect();
        let cut: Vec<&UnitGroup> = groups
            .iter()
            .filter(|g| {
                let unit = match g.kind {
                    GroupKind::Channels => Granularity::Channel,
                    GroupKind::Heads => Granularity::Head,
                };
                !g.producers.is_empty()
                    && g.producers
                        .iter()
                        .all(|m| rules[m.weight].granularity == Some(unit))
            })
            .collect();
        // a producer's own cut is its groups' now
        for m in cut.iter().flat_map(|g| &g.producers) {
            masks[m.weight] = Some(vec![1; shapes[m.weight].numel()]);
        }
        for group in cut {
            let target = group
                .producers
                .iter()
                .map(|m| rules[m.weight].target(value, final_target))
                .fold(f64::INFINITY, f64::min);
            let round_to = match group.kind {
                GroupKind::Channels => self.round_to,
                GroupKind::Heads => 1,
            };
            let kept = group_kept(&group_scores(group, scores, &shapes), target, round_to);
            apply_group(group, &kept, &shapes, masks);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_plans::{plan, specs};
    use super::super::{LayerOverride, LayerSpec, Scope};
    use super::*;
    use crate::prune::Criterion;
    use crate::prune::mask::sparsity;

    /// Two 1x1 convolutions writing one 8-channel sum (a stem and a block's last
    /// convolution), at 50% and 25%: the group is cut at the lower target, in both.
    #[test]
    fn a_group_is_cut_at_the_lowest_target_among_its_writers() {
        use crate::prune::group::{GroupKind, Member, UnitGroup};
        let specs = vec![
            LayerSpec::new("stem", LayerShape::conv2d(8, 4, 1, 1)),
            LayerSpec::new("block", LayerShape::conv2d(8, 4, 1, 1)),
        ];
        let group = UnitGroup {
            kind: GroupKind::Channels,
            channels: 8,
            producers: vec![Member::single(0), Member::single(1)],
            readers: vec![],
            carriers: vec![],
        };
        let kept_rows = |stem: f64, block: f64| -> [usize; 2] {
            let mut p = plan("channel");
            for (name, target) in [("stem", stem), ("block", block)] {
                p.layers.insert(
                    name.into(),
                    LayerOverride {
                        target: Some(target),
                        ..Default::default()
                    },
                );
            }
            let rules = p.rules(&specs).unwrap();
            let weights: Vec<Vec<f32>> = (0..2)
                .map(|w| (0..32).map(|i| (i + w) as f32).collect())
                .collect();
            let scores: Vec<&[f32]> = weights.iter().map(|w| w.as_slice()).collect();
            let mut masks = vec![None, None];
            p.cut_groups(
                &rules,
                &scores,
                std::slice::from_ref(&group),
                0.5,
                &mut masks,
            );
            [0, 1].map(|w| {
                let m = masks[w].as_ref().expect("a cut member has a mask");
                m.chunks(4)
                    .filter(|row| row.iter().all(|&k| k == 1))
                    .count()
            })
        };
        assert_eq!(kept_rows(0.5, 0.25), [6, 6]);
        assert_eq!(kept_rows(0.25, 0.5), [6, 6], "whichever writer comes first");
        assert_eq!(
            kept_rows(0.0, 0.5),
            [8, 8],
            "a writer at 0 keeps the group whole"
        );
        assert_eq!(kept_rows(0.5, 0.5), [4, 4]);
    }

    #[test]
    fn own_targets_scale_the_schedule() {
        let mut p = plan("unstructured");
        p.layers.insert(
            "conv1".into(),
            LayerOverride {
                target: Some(0.25),
                criterion: Some(Criterion::Random),
                ..Default::default()
            },
        );
        let rules = p.rules(&specs()).unwrap();
        assert_eq!(rules[0].target(0.5, 0.5), 0.25);
        assert_eq!(rules[0].target(0.25, 0.5), 0.125);
        assert_eq!(rules[1].target(0.25, 0.5), 0.25);
        let w0 = vec![1.0f32; 36];
        let w1: Vec<f32> = (0..128).map(|i| i as f32).collect();
        let masks = p.masks(&rules, &[&w0, &w1], 0.5, 1).unwrap();
        assert_eq!(sparsity(masks[0].as_ref().unwrap()), 9.0 / 36.0);
        assert_eq!(sparsity(masks[1].as_ref().unwrap()), 0.5);
    }

    #[test]
    fn global_scope_hits_the_overall_target() {
        let mut p = plan("unstructured");
        p.scope = Scope::Global;
        let rules = p.rules(&specs()).unwrap();
        let w0: Vec<f32> = (0..36).map(|i| 10.0 + i as f32).collect();
        let w1: Vec<f32> = (0..128).map(|i| i as f32 / 100.0).collect();
        let masks = p.masks(&rules, &[&w0, &w1], 0.5, 1).unwrap();
        let zeros: usize = masks
            .iter()
            .flatten()
            .map(|m| m.iter().filter(|&&k| k == 0).count())
            .sum();
        assert_eq!(zeros, 82); // round(0.5 * 164)
        assert_eq!(sparsity(masks[0].as_ref().unwrap()), 0.0);
    }
}
