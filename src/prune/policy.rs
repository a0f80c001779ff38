//! The pruning policy: granularity, criterion, scope, schedule and per-layer overrides (the
//! `[pruning]` part of an experiment plan), and how it turns into one rule per layer and
//! then into masks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::granularity::Granularity;
use super::group::{GroupKind, UnitGroup, apply_group, group_kept, group_scores};
use super::layer::LayerShape;
use super::mask::{GlobalLayer, MaskError, global_masks, layer_mask};
use super::schedule::ScheduleError;
use super::schedule::{At, Schedule};
use super::schedule_kind::ScheduleKind;
use super::score::Criterion;

/// Whether each layer hits its own target or one threshold ranks all layers together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    #[value(alias = "per-layer")]
    Layer,
    Global,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Layer => "layer",
            Scope::Global => "global",
        })
    }
}

/// What one layer does differently from the plan's defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerOverride {
    /// Leave the layer dense.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip: bool,
    /// The layer's own final sparsity; the schedule's curve is scaled to end there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<Granularity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criterion: Option<Criterion>,
}

/// How to prune: defaults for every prunable layer, a schedule, and per-layer overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruningPolicy {
    #[serde(default)]
    pub granularity: Granularity,
    #[serde(default)]
    pub criterion: Criterion,
    #[serde(default)]
    pub scope: Scope,
    #[serde(
        default,
        deserialize_with = "super::schedule_kind::deserialize_with_default_kind"
    )]
    pub schedule: Schedule,
    /// Lottery tickets: after every pruning step the surviving weights go back to their
    /// values at this moment (Frankle et al. 2019, 2020); with an iterative schedule this is
    /// iterative magnitude pruning with rewinding. It must come no later than the first
    /// pruning step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewind: Option<At>,
    /// Channel groups keep a multiple of this many channels (rounded up): widths that
    /// runtimes run fast (8 or 16 on most CPUs and GPUs). 1: no rounding.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub round_to: usize,
    /// Overrides by layer name (`conv1`, `fc2`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layers: BTreeMap<String, LayerOverride>,
}

fn one() -> usize {
    1
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

impl Default for PruningPolicy {
    /// Unstructured magnitude pruning, per layer, on the default schedule.
    fn default() -> Self {
        Self {
            granularity: Granularity::default(),
            criterion: Criterion::default(),
            scope: Scope::default(),
            schedule: Schedule::default(),
            rewind: None,
            round_to: 1,
            layers: BTreeMap::new(),
        }
    }
}

/// A prunable layer as the plan sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSpec {
    pub name: String,
    pub shape: LayerShape,
    /// The network's last layer: its outputs are the class scores.
    #[serde(default)]
    pub output: bool,
    /// For a projection of self-attention (its packed input projection or its output
    /// projection), the layer's heads: what the `head` granularity prunes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
}

impl LayerSpec {
    pub fn new(name: &str, shape: LayerShape) -> Self {
        Self {
            name: name.to_string(),
            shape,
            output: false,
            heads: None,
        }
    }

    /// A projection of self-attention with `heads` heads.
    pub fn projection(name: &str, shape: LayerShape, heads: usize) -> Self {
        Self {
            heads: Some(heads),
            ..Self::new(name, shape)
        }
    }

    /// The network's last layer, whose output neurons are the classes.
    pub fn output(name: &str, shape: LayerShape) -> Self {
        Self {
            output: true,
            ..Self::new(name, shape)
        }
    }

    /// Whether this layer can take `granularity`, and if not, why. Beyond the shape rules
    /// of [`Granularity::check_layer`], channel pruning cannot apply to the output layer:
    /// removing its neurons would remove classes.
    pub fn check(&self, granularity: &Granularity) -> Result<(), super::Ineligible> {
        if self.output && *granularity == Granularity::Channel {
            return Err(super::Ineligible(
                "its output neurons are the classes; removing them removes classes".into(),
            ));
        }
        if self.heads.is_none() && *granularity == Granularity::Head {
            return Err(super::Ineligible(
                "heads are a granularity of attention's projections (in_proj and out_proj)".into(),
            ));
        }
        granularity.check_layer(&self.shape)
    }
}

/// A pruning plan that cannot be applied to the model.
#[derive(Debug, Error, PartialEq, Clone)]
pub enum PolicyError {
    #[error("the plan names layer {name:?}, which the model does not have (it has {known})")]
    UnknownLayer { name: String, known: String },
    #[error("layer {layer}: {granularity} cannot be applied: {reason}")]
    Ineligible {
        layer: String,
        granularity: Granularity,
        reason: String,
    },
    #[error("layer {layer}: target sparsity must be in [0, 1), found {value}")]
    LayerTarget { layer: String, value: f64 },
    #[error("schedule: {0}")]
    Schedule(#[from] ScheduleError),
    #[error("{0}")]
    Mask(#[from] MaskError),
}

/// The rule one layer follows, after defaults, overrides and eligibility.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerRule {
    pub name: String,
    pub shape: LayerShape,
    /// `None`: the layer stays dense (skipped by the plan or unable to take the default).
    pub granularity: Option<Granularity>,
    pub criterion: Criterion,
    /// The layer's own final target, if it has one.
    pub own_target: Option<f64>,
    /// Why the layer stays dense, when it does.
    pub dense_reason: Option<String>,
}

impl LayerRule {
    /// Sparsity this layer aims at when the schedule says `value` out of a final `final_target`.
    pub fn target(&self, value: f64, final_target: f64) -> f64 {
        match (self.granularity, self.own_target) {
            (None, _) => 0.0,
            (Some(g), _) if g.fixed_sparsity().is_some() => {
                if value > 0.0 {
                    g.fixed_sparsity().unwrap_or(0.0)
                } else {
                    0.0
                }
            }
            (Some(_), Some(own)) if final_target > 0.0 => (value / final_target * own).min(own),
            (Some(_), Some(own)) => own,
            (Some(_), None) => value,
        }
    }

    /// The overall sparsity the rules plan at schedule value `value`: each layer's target
    /// weighted by its size, dense layers counting as zero. What the masks' overall
    /// sparsity will be (N:M layers hold their fixed pattern whatever the value).
    pub fn planned_sparsity(rules: &[LayerRule], value: f64, final_target: f64) -> f64 {
        let total: usize = rules.iter().map(|r| r.shape.numel()).sum();
        if total == 0 {
            return 0.0;
        }
        rules
            .iter()
            .map(|r| r.target(value, final_target) * r.shape.numel() as f64)
            .sum::<f64>()
            / total as f64
    }

    /// Whether this layer is cut by `|w|` alone, one weight at a time, so that a single
    /// magnitude (see [`super::cut_threshold`]) separates its kept weights from its pruned
    /// ones.
    pub fn cut_by_magnitude(&self) -> bool {
        self.granularity == Some(Granularity::Unstructured)
            && self.criterion == Criterion::Magnitude
    }

    /// Whether this layer joins the global ranking under `plan`.
    fn joins_global(&self, plan: &PruningPolicy) -> bool {
        plan.scope == Scope::Global
            && self.own_target.is_none()
            && self.granularity == Some(plan.granularity)
            && plan.granularity.fixed_sparsity().is_none()
            && plan.granularity != Granularity::Head
    }
}

impl PruningPolicy {
    /// Whether the schedule is dynamic sparse training (RigL or SET).
    pub fn is_dynamic(&self) -> bool {
        matches!(self.schedule.kind(), ScheduleKind::Rigl | ScheduleKind::Set)
    }

    /// Checks the plan against a model's layers and returns one rule per layer, in the
    /// model's order. A layer that cannot take the *default* granularity stays dense with a
    /// reason; one whose *own* granularity does not fit is an error naming it.
    pub fn rules(&self, layers: &[LayerSpec]) -> Result<Vec<LayerRule>, PolicyError> {
        self.granularity
            .validate()
            .map_err(|e| PolicyError::Ineligible {
                layer: "(all)".into(),
                granularity: self.granularity,
                reason: e.to_string(),
            })?;
        for name in self.layers.keys() {
            if !layers.iter().any(|l| &l.name == name) {
                return Err(PolicyError::UnknownLayer {
                    name: name.clone(),
                    known: layers
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        layers
            .iter()
            .map(|spec| {
                let o = self.layers.get(&spec.name).cloned().unwrap_or_default();
                if let Some(t) = o.target
                    && !(0.0..1.0).contains(&t)
                {
                    return Err(PolicyError::LayerTarget {
                        layer: spec.name.clone(),
                        value: t,
                    });
                }
                let mut rule = LayerRule {
                    name: spec.name.clone(),
                    shape: spec.shape,
                    granularity: None,
                    criterion: o.criterion.unwrap_or(self.criterion),
                    own_target: o.target,
                    dense_reason: None,
                };
                if o.skip {
                    rule.dense_reason = Some("skipped by the plan".into());
                    return Ok(rule);
                }
                let g = o.granularity.unwrap_or(self.granularity);
                let explicit = o.granularity.is_some();
                if let Err(e) = g.validate() {
                    return Err(PolicyError::Ineligible {
                        layer: spec.name.clone(),
                        granularity: g,
                        reason: e.to_string(),
                    });
                }
                if self.is_dynamic() && matches!(g, Granularity::NOfM { .. }) {
                    return Err(PolicyError::Ineligible {
                        layer: spec.name.clone(),
                        granularity: g,
                        reason: format!(
                            "the {} schedule exchanges weights between kept and pruned, and N:M fixes the count of every group; choose unstructured, block or channel",
                            self.schedule.kind().name()
                        ),
                    });
                }
                match spec.check(&g) {
                    Ok(()) => rule.granularity = Some(g),
                    Err(why) if explicit => {
                        return Err(PolicyError::Ineligible {
                            layer: spec.name.clone(),
                            granularity: g,
                            reason: why.0,
                        });
                    }
                    Err(why) => {
                        rule.dense_reason = Some(format!("left dense: {g} does not fit: {why}"))
                    }
                }
                Ok(rule)
            })
            .collect()
    }

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
    use super::*;
    use crate::prune::{At, mask::sparsity};

    fn specs() -> Vec<LayerSpec> {
        vec![
            LayerSpec::new("conv1", LayerShape::conv2d(4, 1, 3, 3)),
            LayerSpec::output("fc1", LayerShape::linear(8, 16)),
        ]
    }

    fn plan(g: &str) -> PruningPolicy {
        PruningPolicy {
            granularity: g.parse().unwrap(),
            criterion: Criterion::Magnitude,
            scope: Scope::Layer,
            schedule: Schedule::Constant {
                target: 0.5,
                begin: At::Step(0),
                end: None,
                frequency: 10,
            },
            rewind: None,
            round_to: 1,
            layers: BTreeMap::new(),
        }
    }

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
    fn planned_sparsity_weights_each_layer_by_its_size() {
        // conv1 (36 weights) cannot take 2:4 and stays dense; fc1 (128) holds 2:4's 50%
        let rules = plan("2:4").rules(&specs()).unwrap();
        let planned = LayerRule::planned_sparsity(&rules, 0.9, 0.9);
        assert!((planned - 0.5 * 128.0 / 164.0).abs() < 1e-12, "{planned}");
        assert_eq!(LayerRule::planned_sparsity(&rules, 0.0, 0.9), 0.0);
        // unstructured follows the value in every layer
        let rules = plan("unstructured").rules(&specs()).unwrap();
        assert!((LayerRule::planned_sparsity(&rules, 0.6, 0.9) - 0.6).abs() < 1e-12);
    }

    #[test]
    fn dynamic_schedules_refuse_n_of_m_naming_the_layer() {
        let mut p = plan("unstructured");
        p.schedule = p.schedule.with_kind(ScheduleKind::Rigl);
        assert!(p.rules(&specs()).is_ok());
        p.layers.insert(
            "fc1".into(),
            LayerOverride {
                granularity: Some("2:4".parse().unwrap()),
                ..Default::default()
            },
        );
        let e = p.rules(&specs()).unwrap_err().to_string();
        assert!(
            e.contains("fc1") && e.contains("rigl") && e.contains("N:M"),
            "{e}"
        );
    }

    #[test]
    fn default_pattern_skips_layers_that_cannot_take_it() {
        let rules = plan("2:4").rules(&specs()).unwrap();
        assert_eq!(rules[0].granularity, None);
        assert!(rules[0].dense_reason.as_ref().unwrap().contains("2:4"));
        assert_eq!(rules[1].granularity, Some("2:4".parse().unwrap()));
    }

    #[test]
    fn an_explicit_pattern_that_does_not_fit_is_an_error_naming_the_layer() {
        let mut p = plan("unstructured");
        p.layers.insert(
            "conv1".into(),
            LayerOverride {
                granularity: Some("2:4".parse().unwrap()),
                ..Default::default()
            },
        );
        let err = p.rules(&specs()).unwrap_err();
        assert!(err.to_string().contains("conv1"), "{err}");
    }

    #[test]
    fn channel_pruning_leaves_the_output_layer_dense() {
        let rules = plan("channel").rules(&specs()).unwrap();
        assert_eq!(rules[0].granularity, Some(Granularity::Channel));
        assert_eq!(rules[1].granularity, None);
        assert!(rules[1].dense_reason.as_ref().unwrap().contains("classes"));
    }

    #[test]
    fn unknown_layers_and_bad_targets_are_errors() {
        let mut p = plan("unstructured");
        p.layers.insert("fc9".into(), LayerOverride::default());
        assert!(matches!(
            p.rules(&specs()),
            Err(PolicyError::UnknownLayer { .. })
        ));
        let mut p = plan("unstructured");
        p.layers.insert(
            "fc1".into(),
            LayerOverride {
                target: Some(1.0),
                ..Default::default()
            },
        );
        assert!(matches!(
            p.rules(&specs()),
            Err(PolicyError::LayerTarget { .. })
        ));
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
