//! Dynamic sparse training (RigL, SET): between pruning steps, the schedule exchanges
//! weights between kept and pruned, and the pruning part remembers which ones grew.

use burn::optim::GradientsParams;

use super::Pruning;
use crate::model::Network;
use crate::plan::{ExperimentPlan, PlanFileError};
use crate::prune::{Growth, GrowthScores, exchange};
use crate::train::session::training::Training;
use crate::train::session::{PruneReport, SessionError};

/// An exchange due at this step: the share of kept weights to move, and the dense
/// gradients RigL grows by (`None` for SET).
pub(in crate::train::session) struct ExchangeDue {
    fraction: f64,
    gradients: Option<Vec<Vec<f32>>>,
}

impl Pruning {
    /// The exchange the schedule asks for before training on `step`, with this step's
    /// gradients (`grads` of `network`) read when growth follows them.
    pub(in crate::train::session) fn exchange_due(
        &self,
        step: u64,
        network: &Network,
        grads: &GradientsParams,
    ) -> Option<ExchangeDue> {
        let fraction = self.schedule.exchange_fraction(step)?;
        let gradients = (self.schedule.growth() == Some(Growth::Gradient))
            .then(|| network.weight_gradients(grads));
        Some(ExchangeDue {
            fraction,
            gradients,
        })
    }

    /// Drops the weakest kept weights of every pruned layer and grows as many, then uploads
    /// the masks to `training`; the grown weights are zero until training moves them.
    pub(super) fn exchange(
        &mut self,
        training: &mut Training,
        plan: &ExperimentPlan,
        due: ExchangeDue,
    ) -> Result<PruneReport, SessionError> {
        let weights = training.network().read_weights();
        let seed = plan.training.seed;
        let step = training.step();
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.grown.clear();
            let rule = &layer.rule;
            let (Some(granularity), Some(mask)) = (rule.granularity, layer.mask.as_ref()) else {
                continue;
            };
            let growth = match &due.gradients {
                Some(g) => GrowthScores::Gradient(&g[i]),
                None => GrowthScores::Random {
                    seed: seed
                        .wrapping_mul(1_000_003)
                        .wrapping_add(step.wrapping_mul(1_009))
                        .wrapping_add(i as u64),
                },
            };
            let e = exchange(
                mask,
                &weights[i],
                &rule.shape,
                granularity,
                growth,
                due.fraction,
            )
            .map_err(|e| PlanFileError::from(crate::prune::PolicyError::from(e)))?;
            layer.mask = Some(e.mask);
            layer.grown = e.grown;
        }
        self.upload_masks(training);
        Ok(self.prune_report(step, plan, self.schedule.value(step), &weights))
    }
}
