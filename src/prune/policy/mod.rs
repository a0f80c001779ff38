//! The pruning policy: granularity, criterion, scope, schedule and per-layer overrides (the
//! `[pruning]` part of an experiment plan). How it turns into one rule per layer is in
//! [`rules`], how the rules turn into masks in [`masks`].

mod masks;
mod rules;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::granularity::Granularity;
use super::mask::MaskError;
use super::schedule::ScheduleError;
use super::schedule::{At, Schedule};
use super::schedule_kind::ScheduleKind;
use super::score::Criterion;

pub use rules::{LayerRule, LayerSpec};

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
        deserialize_with = "crate::prune::schedule_kind::deserialize_with_default_kind"
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

impl PruningPolicy {
    /// Whether the schedule is dynamic sparse training (RigL or SET).
    pub fn is_dynamic(&self) -> bool {
        matches!(self.schedule.kind(), ScheduleKind::Rigl | ScheduleKind::Set)
    }
}

/// The small plans and layers the tests of [`rules`] and [`masks`] share.
#[cfg(test)]
mod test_plans {
    use super::*;
    use crate::prune::LayerShape;

    pub(super) fn specs() -> Vec<LayerSpec> {
        vec![
            LayerSpec::new("conv1", LayerShape::conv2d(4, 1, 3, 3)),
            LayerSpec::output("fc1", LayerShape::linear(8, 16)),
        ]
    }

    pub(super) fn plan(g: &str) -> PruningPolicy {
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
}
