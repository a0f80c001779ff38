//! A pruning policy as rules: one per layer, after the plan's defaults, its overrides and
//! what each layer can take.

use serde::{Deserialize, Serialize};

use super::{PolicyError, PruningPolicy, Scope};
use crate::prune::Ineligible;
use crate::prune::granularity::Granularity;
use crate::prune::layer::LayerShape;
use crate::prune::score::Criterion;

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
    pub fn check(&self, granularity: &Granularity) -> Result<(), Ineligible> {
        if self.output && *granularity == Granularity::Channel {
            return Err(Ineligible(
                "its output neurons are the classes; removing them removes classes".into(),
            ));
        }
        if self.heads.is_none() && *granularity == Granularity::Head {
            return Err(Ineligible(
                "heads are a granularity of attention's projections (in_proj and out_proj)".into(),
            ));
        }
        granularity.check_layer(&self.shape)
    }
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
    /// magnitude (see [`crate::prune::cut_threshold`]) separates its kept weights from its pruned
    /// ones.
    pub fn cut_by_magnitude(&self) -> bool {
        self.granularity == Some(Granularity::Unstructured)
            && self.criterion == Criterion::Magnitude
    }

    /// Whether this layer joins the global ranking under `plan`.
    pub(super) fn joins_global(&self, plan: &PruningPolicy) -> bool {
        plan.scope == Scope::Global
            && self.own_target.is_none()
            && self.granularity == Some(plan.granularity)
            && plan.granularity.fixed_sparsity().is_none()
            && plan.granularity != Granularity::Head
    }
}

impl PruningPolicy {
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
}

#[cfg(test)]
mod tests {
    use super::super::LayerOverride;
    use super::super::test_plans::{plan, specs};
    use super::*;
    use crate::prune::ScheduleKind;

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
}
