//! One point of a sweep: what it is (granularity, target, criterion), how it is
//! fine-tuned from the sweep's starting checkpoint on whatever device runs it, and what it
//! measured. The one rule of both the one-device sweep and the spread one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::backend::BackendInfo;
use super::checkpoint::CheckpointData;
use super::session::{Session, SessionError};
use super::spread::Prepare;
use crate::data::Dataset;
use crate::plan::ExperimentPlan;
use crate::prune::{At, Criterion, Granularity, LayerOverride, Schedule, Scope};

/// One point of a sweep: granularity, target and criterion.
pub type PointSpec = (Granularity, f64, Criterion);

/// One finished point of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub granularity: String,
    /// The criterion that ranked the weights.
    #[serde(default)]
    pub criterion: String,
    pub target: f64,
    /// Achieved fraction of zero weights over all prunable layers.
    pub sparsity: f64,
    pub accuracy: f64,
    /// The server that ran the point, when the sweep was spread over several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

impl SweepPoint {
    /// The point `spec` as `session`, fine-tuned to the end of its budget, measures it.
    pub fn finished((granularity, target, criterion): PointSpec, session: &mut Session) -> Self {
        let summary = session.summary();
        Self {
            granularity: granularity.to_string(),
            criterion: criterion.to_string(),
            target,
            sparsity: summary.sparsity,
            accuracy: summary.final_accuracy,
            server: None,
        }
    }
}

/// How a sweep's point is fine-tuned, whatever the device: from the sweep's starting
/// checkpoint, with the point's own plan, for a fixed number of steps. The one rule of both
/// the one-device sweep and the spread one.
#[derive(Clone)]
pub struct PointRecipe {
    pub base: CheckpointData,
    /// The plan the sweep started from.
    pub base_plan: ExperimentPlan,
    pub dataset: Arc<Dataset>,
    pub budget_steps: u64,
}

impl PointRecipe {
    /// The plan of one point: the base plan with this granularity and criterion everywhere
    /// (skips kept), pruned per layer by a polynomial schedule over the first half of the
    /// budget, from the base step.
    pub fn plan(&self, (granularity, target, criterion): PointSpec) -> ExperimentPlan {
        let mut plan = self.base_plan.clone();
        let begin = self.base.step;
        let end = begin + (self.budget_steps / 2).max(1);
        let spe = plan.steps_per_epoch(self.dataset.train.len());
        plan.training.epochs = (begin + self.budget_steps).div_ceil(spe) as u32;
        // a point is measured once, at the end of its budget: no evaluations after its cuts
        plan.training.eval_every = begin + self.budget_steps;
        plan.pruning.granularity = granularity;
        plan.pruning.criterion = criterion;
        plan.pruning.scope = Scope::Layer;
        plan.pruning.layers.retain(|_, o| o.skip);
        for o in plan.pruning.layers.values_mut() {
            *o = LayerOverride {
                skip: true,
                ..Default::default()
            };
        }
        plan.pruning.schedule = Schedule::Polynomial {
            initial: 0.0,
            final_sparsity: target.min(0.99),
            begin: At::Step(begin),
            end: At::Step(end),
            power: 3.0,
            frequency: ((end - begin) / 10).max(1),
        };
        plan
    }

    /// A session of the point on `device`, from the base checkpoint, and the step its
    /// budget ends at.
    pub fn session(
        &self,
        spec: PointSpec,
        device: Device,
        backend: BackendInfo,
    ) -> Result<(Session, u64), SessionError> {
        let mut data = self.base.clone();
        data.plan_toml = self.plan(spec).to_toml();
        let session = Session::from_checkpoint(&data, self.dataset.clone(), device, backend)?;
        Ok((session, self.base.step + self.budget_steps))
    }

    /// A server's runner of sweep points: each fine-tuned to the end of its budget, and
    /// named with the server.
    pub fn prepare(self) -> Prepare<PointSpec, SweepPoint> {
        Arc::new(move |device, backend, server| {
            let recipe = self.clone();
            Ok(Box::new(move |spec, cancel: &AtomicBool| {
                let (mut session, stop) = recipe.session(spec, device.clone(), backend.clone())?;
                while session.step() < stop {
                    if cancel.load(Ordering::Relaxed) {
                        return Ok(None);
                    }
                    session.train_step()?;
                }
                Ok(Some(SweepPoint {
                    server: Some(server.clone()),
                    ..SweepPoint::finished(spec, &mut session)
                }))
            }))
        })
    }
}
