//! Dynamic sparse training (RigL, SET): between pruning steps, the schedule exchanges
//! weights between kept and pruned, and the session remembers which ones grew.

use burn::optim::GradientsParams;

use super::{PruneReport, Session, SessionError};
use crate::plan::PlanFileError;
use crate::prune::{Growth, GrowthScores, exchange};

/// An exchange due at this step: the share of kept weights to move, and the dense
/// gradients RigL grows by (`None` for SET).
pub(super) struct ExchangeDue {
    fraction: f64,
    gradients: Option<Vec<Vec<f32>>>,
}

impl Session {
    /// The exchange the schedule asks for before training on `step`, with this step's
    /// gradients read when growth follows them.
    pub(super) fn exchange_due(&self, step: u64, grads: &GradientsParams) -> Option<ExchangeDue> {
        let fraction = self.schedule.exchange_fraction(step)?;
        let gradients = (self.schedule.growth() == Some(Growth::Gradient))
            .then(|| self.network().weight_gradients(grads));
        Some(ExchangeDue {
            fraction,
            gradients,
        })
    }

    /// Drops the weakest kept weights of every pruned layer and grows as many, then uploads
    /// the masks; the grown weights are zero until training moves them.
    pub(super) fn exchange(&mut self, due: ExchangeDue) -> Result<PruneReport, SessionError> {
        let weights = self.network().read_weights();
        let seed = self.plan.training.seed;
        let step = self.step;
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
        self.upload_masks();
        Ok(self.prune_report(self.schedule.value(self.step), &weights))
    }
}
