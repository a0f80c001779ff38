//! Gradient saliencies for the criteria that rank them (taylor, movement, snip): kept
//! while some layer's criterion needs them, and handed to the mask code in place of the
//! weights.

use burn::optim::GradientsParams;

use super::{Session, batch_tensors};
use crate::prune::Criterion;

impl Session {
    /// Whether some layer ranks by `criterion`'s saliency.
    fn layer_uses(&self, criterion: Criterion) -> bool {
        self.rules
            .iter()
            .any(|r| r.granularity.is_some() && r.criterion == criterion)
    }

    /// Adds this step's `w * dL/dw` to the saliencies the plan's criteria need.
    pub(super) fn accumulate_saliency(&mut self, grads: &GradientsParams) {
        let (taylor, movement) = (
            self.layer_uses(Criterion::Taylor),
            self.layer_uses(Criterion::Movement),
        );
        if !taylor && !movement {
            return;
        }
        let products = self.network().weight_gradient_products(grads);
        let grow = |acc: &mut Vec<Vec<f32>>| {
            if acc.len() != products.len() {
                *acc = products.iter().map(|p| vec![0.0; p.len()]).collect();
            }
        };
        if taylor {
            grow(&mut self.taylor);
            for (acc, p) in self.taylor.iter_mut().zip(&products) {
                acc.iter_mut().zip(p).for_each(|(a, v)| *a += v.abs());
            }
            self.taylor_steps += 1;
        }
        if movement {
            grow(&mut self.movement);
            for (acc, p) in self.movement.iter_mut().zip(&products) {
                acc.iter_mut().zip(p).for_each(|(a, v)| *a -= v);
            }
        }
    }

    /// `|w * dL/dw|` of every prunable weight on this step's batch, without training.
    fn batch_saliency(&self) -> Vec<Vec<f32>> {
        let indices = self.current_batch();
        let (images, labels) =
            batch_tensors(&self.data.train, self.data.shape, &indices, &self.device);
        let loss = self.loss_fn.forward(self.network().forward(images), labels);
        let grads = GradientsParams::from_grads(loss.backward(), self.network());
        let mut products = self.network().weight_gradient_products(&grads);
        products
            .iter_mut()
            .for_each(|p| p.iter_mut().for_each(|v| *v = v.abs()));
        products
    }

    /// What each layer's criterion ranks (the mask code keeps the largest): the weights
    /// for magnitude and random, gradient saliencies for the others.
    pub(super) fn criterion_scores(&self, weights: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
        let needs_batch = self.layer_uses(Criterion::Snip)
            || (self.layer_uses(Criterion::Taylor) && self.taylor_steps == 0);
        let batch = needs_batch.then(|| self.batch_saliency());
        weights
            .into_iter()
            .enumerate()
            .map(|(i, w)| match self.rules[i].criterion {
                Criterion::Magnitude | Criterion::Random => w,
                Criterion::Snip => batch.as_ref().map_or(w, |b| b[i].clone()),
                Criterion::Taylor => match (self.taylor.get(i), &batch) {
                    (Some(acc), _) if self.taylor_steps > 0 => {
                        let n = self.taylor_steps as f32;
                        acc.iter().map(|a| a / n).collect()
                    }
                    (_, Some(b)) => b[i].clone(),
                    _ => w,
                },
                Criterion::Movement => match self.movement.get(i) {
                    // ranked by value: shifted so that every score is positive
                    Some(acc) => {
                        let low = acc.iter().copied().fold(f32::INFINITY, f32::min);
                        acc.iter().map(|a| a - low + f32::MIN_POSITIVE).collect()
                    }
                    None => w,
                },
            })
            .collect()
    }
}
