//! Saliencies for the criteria that rank them: gradients (taylor, movement, snip),
//! activations (wanda) and synaptic flow (synflow), handed to the mask code in place of the
//! weights. Running sums are kept only while some layer's criterion needs them.

use burn::module::Module;
use burn::optim::GradientsParams;

use super::{Masks, Pruning};
use crate::model::Network;
use crate::plan::{ExperimentPlan, PlanFileError};
use crate::prune::Criterion;
use crate::prune::score::{SYNFLOW_ITERATIONS, synflow_round_target, wanda_scores};
use crate::train::session::SessionError;
use crate::train::session::training::Training;

impl Pruning {
    /// Whether some layer ranks by `criterion`'s saliency.
    pub(super) fn layer_uses(&self, criterion: Criterion) -> bool {
        self.layers
            .iter()
            .any(|l| l.rule.granularity.is_some() && l.rule.criterion == criterion)
    }

    /// Adds this step's `w * dL/dw` (`grads` of `network`) to the saliencies the plan's
    /// criteria need.
    pub(in crate::train::session) fn accumulate_saliency(
        &mut self,
        network: &Network,
        grads: &GradientsParams,
    ) {
        let (taylor, movement) = (
            self.layer_uses(Criterion::Taylor),
            self.layer_uses(Criterion::Movement),
        );
        if !taylor && !movement {
            return;
        }
        let products = network.weight_gradient_products(grads);
        let grow = |acc: &mut Vec<f32>, len: usize| {
            if acc.len() != len {
                *acc = vec![0.0; len];
            }
        };
        for (layer, p) in self.layers.iter_mut().zip(&products) {
            if taylor {
                grow(&mut layer.taylor, p.len());
                layer
                    .taylor
                    .iter_mut()
                    .zip(p)
                    .for_each(|(a, v)| *a += v.abs());
            }
            if movement {
                grow(&mut layer.movement, p.len());
                layer.movement.iter_mut().zip(p).for_each(|(a, v)| *a -= v);
            }
        }
        if taylor {
            self.taylor_steps += 1;
        }
    }

    /// What each layer's criterion ranks (the mask code keeps the largest): the weights
    /// for magnitude, random and synflow (whose rounds [`Pruning::synflow_masks`] scores),
    /// saliencies for the others, measured on `training`'s current batch.
    pub(super) fn criterion_scores(
        &self,
        training: &Training,
        weights: Vec<Vec<f32>>,
    ) -> Vec<Vec<f32>> {
        let needs_batch = self.layer_uses(Criterion::Snip)
            || (self.layer_uses(Criterion::Taylor) && self.taylor_steps == 0);
        let batch = needs_batch.then(|| batch_saliency(training));
        let norms = self
            .layer_uses(Criterion::Wanda)
            .then(|| input_norms(training));
        weights
            .into_iter()
            .enumerate()
            .map(|(i, w)| match self.layers[i].rule.criterion {
                Criterion::Magnitude | Criterion::Random | Criterion::Synflow => w,
                Criterion::Wanda => match norms.as_ref().and_then(|n| n.get(i)) {
                    Some(n) if !n.is_empty() => wanda_scores(&w, n),
                    _ => w,
                },
                Criterion::Snip => batch.as_ref().map_or(w, |b| b[i].clone()),
                Criterion::Taylor => match (&self.layers[i].taylor, &batch) {
                    (acc, _) if self.taylor_steps > 0 && !acc.is_empty() => {
                        let n = self.taylor_steps as f32;
                        acc.iter().map(|a| a / n).collect()
                    }
                    (_, Some(b)) => b[i].clone(),
                    _ => w,
                },
                Criterion::Movement => match &self.layers[i].movement {
                    acc if acc.is_empty() => w,
                    // ranked by value: shifted so that every score is positive
                    acc => {
                        let low = acc.iter().copied().fold(f32::INFINITY, f32::min);
                        acc.iter().map(|a| a - low + f32::MIN_POSITIVE).collect()
                    }
                },
            })
            .collect()
    }

    /// The masks at schedule value `value` when some layer ranks by SynFlow: the other
    /// layers' `scores` stay as given; the SynFlow layers are scored on a positive copy of
    /// `training`'s network and pruned in [`SYNFLOW_ITERATIONS`] rounds, each pruning a
    /// little more of what the last kept and scoring again with its masks applied.
    pub(super) fn synflow_masks(
        &self,
        training: &Training,
        plan: &ExperimentPlan,
        mut scores: Vec<Vec<f32>>,
        value: f64,
    ) -> Result<Masks, SessionError> {
        let mut flow_network = training.network().linearized()?;
        let rounds = if value > 0.0 { SYNFLOW_ITERATIONS } else { 1 };
        let mut masks = Vec::new();
        for round in 1..=rounds {
            let flow = flow_network.synaptic_flow(training.data().shape);
            for (i, f) in flow.into_iter().enumerate() {
                if self.layers[i].rule.criterion == Criterion::Synflow {
                    scores[i] = f;
                }
            }
            masks = self.masks_for(plan, &scores, synflow_round_target(value, round, rounds))?;
            flow_network.apply_masks(
                self.to_device(training, masks.iter().map(Option::as_ref))
                    .iter()
                    .map(Option::as_ref),
            );
        }
        Ok(masks)
    }

    /// Every layer's mask from the scores its criterion ranks, at schedule value `value`.
    pub(super) fn masks_for(
        &self,
        plan: &ExperimentPlan,
        scores: &[Vec<f32>],
        value: f64,
    ) -> Result<Masks, SessionError> {
        let refs: Vec<&[f32]> = scores.iter().map(|w| w.as_slice()).collect();
        let rules = self.rules();
        let policy = &plan.pruning;
        let mut masks = policy
            .masks(&rules, &refs, value, plan.training.seed)
            .map_err(PlanFileError::from)?;
        policy.cut_groups(&rules, &refs, &self.groups, value, &mut masks);
        Ok(masks)
    }
}

/// `|w * dL/dw|` of every prunable weight on `training`'s current batch, without training.
fn batch_saliency(training: &Training) -> Vec<Vec<f32>> {
    let grads = training.batch_gradients();
    let mut products = training.network().weight_gradient_products(&grads);
    products
        .iter_mut()
        .for_each(|p| p.iter_mut().for_each(|v| *v = v.abs()));
    products
}

/// Wanda's input norms of every prunable layer on `training`'s current batch, with the
/// network in evaluation mode (the calibration batch).
fn input_norms(training: &Training) -> Vec<Vec<f32>> {
    let images = training.batch_images();
    training.network().valid().input_norms(images)
}
