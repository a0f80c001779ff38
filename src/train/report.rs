//! What a session reports about itself: its layers, their snapshots and sparsity, and the
//! summary of a run. Plain data, sent by the worker in its events.

use serde::{Deserialize, Serialize};

use crate::prune::LayerShape;

/// One layer's state on the host: weights and mask in PyTorch layout.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSnapshot {
    pub step: u64,
    pub name: String,
    pub shape: LayerShape,
    pub weights: Vec<f32>,
    /// 1 kept, 0 pruned.
    pub mask: Vec<u8>,
    /// Weights grown back by the last exchange of a dynamic schedule (flat indices).
    pub grown: Vec<u32>,
}

/// A layer's target and achieved sparsity at a pruning step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerSparsity {
    pub name: String,
    /// Granularity in its text form, or `dense`.
    pub granularity: String,
    /// What ranked the layer's weights.
    pub criterion: String,
    pub target: f64,
    pub sparsity: f64,
    /// Weights grown back at this step (dynamic schedules' exchanges; 0 when pruning).
    pub grown: usize,
    /// The `|w|` the cut drew its line at: the smallest kept magnitude right after it, for
    /// a layer ranked by `|w|` alone (unstructured magnitude); `None` where no single
    /// magnitude separates kept from pruned (N:M, blocks, channels, other criteria).
    pub threshold: Option<f64>,
}

/// A prunable layer as reported when a run starts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerInfo {
    pub name: String,
    pub shape: LayerShape,
    pub params: usize,
    /// Granularity in its text form, or `dense`.
    pub granularity: String,
    /// Why the layer stays dense, when it does.
    pub dense_reason: Option<String>,
    /// The channel groups the layer belongs to.
    pub groups: Vec<GroupRole>,
}

/// A layer's place in a channel group: the group's number, and whether the layer writes the
/// group's channels (its rows) or reads them (its columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GroupRole {
    pub group: usize,
    pub writes: bool,
}

impl std::fmt::Display for GroupRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let arrow = if self.writes { "out" } else { "in" };
        write!(f, "g{} {arrow}", self.group)
    }
}

/// Every layer's places in `groups`, by prunable weight.
pub fn group_roles(groups: &[crate::prune::UnitGroup], layers: usize) -> Vec<Vec<GroupRole>> {
    let mut roles = vec![Vec::new(); layers];
    for (group, g) in groups.iter().enumerate() {
        for m in &g.producers {
            let role = GroupRole {
                group,
                writes: true,
            };
            if !roles[m.weight].contains(&role) {
                roles[m.weight].push(role);
            }
        }
        for r in &g.readers {
            roles[r.weight].push(GroupRole {
                group,
                writes: false,
            });
        }
    }
    roles
}

/// Per-layer line of the final summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerSummary {
    pub name: String,
    /// PyTorch layout.
    pub shape: Vec<usize>,
    pub granularity: String,
    /// What ranked the layer's weights.
    pub criterion: String,
    pub target: f64,
    pub sparsity: f64,
}

/// The result of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub model: String,
    pub dataset: String,
    /// Test accuracy right before the first pruning step (or at the end if none came).
    pub dense_accuracy: f64,
    pub final_accuracy: f64,
    /// Fraction of zero weights over all prunable layers.
    pub sparsity: f64,
    pub layers: Vec<LayerSummary>,
    pub steps: u64,
    pub wall_s: f64,
    /// Training examples per second over the training steps alone.
    pub train_samples_per_s: f64,
    /// Seconds spent evaluating on the test split (part of `wall_s`).
    pub eval_s: f64,
    pub backend: String,
    pub device: String,
}

/// What one step did.
#[derive(Clone, Debug)]
pub struct StepOutcome {
    /// The step that was trained (0-based).
    pub step: u64,
    pub loss: f64,
    /// Set when masks were recomputed at this step.
    pub pruned: Option<PruneReport>,
    /// Evaluations taken during the step, in order: the dense baseline or the recovery
    /// before a cut, then the one right after it.
    pub evaluations: Vec<Evaluation>,
}

/// Masks recomputed at a step.
#[derive(Clone, Debug)]
pub struct PruneReport {
    pub step: u64,
    pub target: f64,
    pub sparsity: f64,
    pub layers: Vec<LayerSparsity>,
}

/// Which moment of a run an evaluation measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalPhase {
    /// The dense network, right before the first cut (whole test split).
    Baseline,
    /// Right after a cut changed a mask: what the cut cost.
    AfterCut,
    /// Right before the next cut (or as long after the last one as cuts were spaced):
    /// what training won back.
    Recovered,
    /// By the cadence alone (time, or the plan's `eval_every`).
    Scheduled,
    /// The run's closing figure (whole test split).
    Final,
}

impl EvalPhase {
    /// How the CLI names the phase.
    pub fn describe(self) -> &'static str {
        match self {
            EvalPhase::Baseline => "dense baseline",
            EvalPhase::AfterCut => "after cut",
            EvalPhase::Recovered => "recovered",
            EvalPhase::Scheduled => "scheduled",
            EvalPhase::Final => "final",
        }
    }
}

/// Accuracy and mean loss on the test split, or on its fixed subset.
#[derive(Clone, Copy, Debug)]
pub struct Evaluation {
    pub step: u64,
    pub accuracy: f64,
    pub loss: f64,
    /// The masks' overall sparsity when it was taken.
    pub sparsity: f64,
    pub phase: EvalPhase,
    /// Test examples it used when a fixed subset of the split (`None`: the whole split).
    pub subset: Option<usize>,
}
