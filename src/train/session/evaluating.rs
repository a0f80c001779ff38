//! Evaluating a session on its test split: by time, or by the plan's `eval_every`, and
//! around every cut (see [`super::cadence`]), on the whole split or on the cut-following
//! evaluations' fixed subset.

use std::time::Instant;

use burn::module::Module;

use super::cadence::{
    CutBudget, EVAL_COST_PER_TRAIN, Spent, evaluation_due, recovery_step, subset_indices,
    subset_size,
};
use super::{EVAL_BATCH, EvalPhase, Evaluation, PruneReport, Session, SessionError, scalar};
use crate::model::Network;
use crate::prune::same_kept;

impl Session {
    /// Accuracy and mean loss on the whole test split, in evaluation mode (no dropout,
    /// batch norm on running statistics), recorded as an evaluation of `phase`.
    pub fn evaluate(&mut self, phase: EvalPhase) -> Evaluation {
        self.record_evaluation(phase, None)
    }

    /// Evaluates on the whole split (`subset: None`) or on the given test examples, and
    /// counts the time it took.
    fn record_evaluation(&mut self, phase: EvalPhase, subset: Option<Vec<usize>>) -> Evaluation {
        let t0 = Instant::now();
        let score = self.score(self.network(), subset.as_deref());
        let cost = t0.elapsed();
        self.eval_time += cost;
        if subset.is_none() {
            // the cadence's cost estimate is of a whole-split evaluation
            self.last_eval_cost = Some(cost);
        }
        self.train_time_at_eval = self.train_time;
        let e = Evaluation {
            step: self.step,
            accuracy: score.accuracy,
            loss: score.loss,
            sparsity: self.mask_sparsity(),
            phase,
            subset: subset.map(|s| s.len()),
        };
        self.last_evaluation = Some(e);
        e
    }

    /// Cuts at `step` with `cut` (a pruning step or an exchange), with the evaluations that
    /// follow the pruning around it: the recovery from the last cut before it, and what
    /// this one cost right after it, when it changed a mask.
    pub(super) fn cut(
        &mut self,
        step: u64,
        evaluations: &mut Vec<Evaluation>,
        cut: impl FnOnce(&mut Self) -> Result<PruneReport, SessionError>,
    ) -> Result<PruneReport, SessionError> {
        if self.follows_cuts() && self.cuts.recovery_due(step, true) {
            evaluations.push(self.evaluate_recovery());
        }
        let before = self.follows_cuts().then(|| self.masks());
        let report = cut(self)?;
        if before.is_some_and(|b| !self.keeps_as(&b)) {
            evaluations.push(self.evaluate_after_cut(step));
        }
        Ok(report)
    }

    /// Whether the masks keep the same weights as `masks` (a cut that changed nothing).
    fn keeps_as(&self, masks: &[Option<Vec<u8>>]) -> bool {
        masks
            .iter()
            .zip(&self.layers)
            .all(|(a, b)| same_kept(a.as_deref(), b.mask.as_deref()))
    }

    /// Whether evaluations follow the pruning: with the automatic cadence only, so that an
    /// explicit `eval_every` keeps meaning what it says.
    pub(super) fn follows_cuts(&self) -> bool {
        self.plan.training.eval_every == 0
    }

    /// The evaluation right after a cut at `step` changed a mask, on the fixed subset; it
    /// also plans when the recovery from it is measured.
    fn evaluate_after_cut(&mut self, step: u64) -> Evaluation {
        let subset = self.cut_subset(step);
        let e = self.record_evaluation(EvalPhase::AfterCut, Some(subset));
        let end = (!self.plan.training.until_stopped).then(|| self.total_steps());
        let next = self.next_cut_after(step);
        self.cuts.recover_before =
            recovery_step(step, next, self.cuts.last_cut, self.steps_per_epoch, end);
        self.cuts.last_cut = Some(step);
        e
    }

    /// The evaluation of what training won back since the last cut, on the same subset.
    pub(super) fn evaluate_recovery(&mut self) -> Evaluation {
        self.cuts.recover_before = None;
        let subset = self.cut_subset(self.step);
        self.record_evaluation(EvalPhase::Recovered, Some(subset))
    }

    /// The steps that cut (prune or exchange), from `from` on, up to the run's planned end
    /// (for a run until stopped, at least twenty epochs ahead).
    fn cut_steps_from(&self, from: u64) -> impl Iterator<Item = u64> + '_ {
        let end = if self.plan.training.until_stopped {
            self.total_steps().max(from + 20 * self.steps_per_epoch)
        } else {
            self.total_steps()
        };
        (from..end).filter(|&k| {
            self.schedule.should_prune(k) || self.schedule.exchange_fraction(k).is_some()
        })
    }

    fn next_cut_after(&self, step: u64) -> Option<u64> {
        self.cut_steps_from(step + 1).next()
    }

    /// The test subset of the cut-following evaluations, sized at the first of them from
    /// what evaluating and training cost so far (see [`cadence::subset_size`]).
    fn cut_subset(&mut self, step: u64) -> Vec<usize> {
        if let Some(s) = &self.cuts.subset {
            return s.clone();
        }
        let test = self.data.test.len();
        let batch = self.plan.training.batch as f64;
        let rate = self.samples_per_s();
        let s_per_example = match self.last_eval_cost {
            Some(c) => c.as_secs_f64() / test.max(1) as f64,
            None if rate > 0.0 => EVAL_COST_PER_TRAIN / rate,
            None => 0.0,
        };
        let s_per_step = if rate > 0.0 {
            batch / rate
        } else {
            batch * s_per_example / EVAL_COST_PER_TRAIN
        };
        let n = subset_size(CutBudget {
            planned_train_s: self.total_steps() as f64 * s_per_step,
            evaluations: 2 * self.cut_steps_from(step).count() as u64,
            s_per_example,
            test_examples: test,
        });
        let subset = subset_indices(test, n, self.plan.training.seed);
        self.cuts.subset = Some(subset.clone());
        subset
    }

    /// Whether to evaluate after the step just trained: every `eval_every` steps when the
    /// plan sets it, otherwise by time, so that evaluating takes a small share of the run
    /// whatever the dataset and model (and not when the next step measures a recovery).
    pub fn evaluation_due(&self) -> bool {
        if self.follows_cuts() && self.cuts.recovery_due(self.step, false) {
            return false;
        }
        let rate = self.samples_per_s();
        let estimate =
            (rate > 0.0).then(|| self.data.test.len() as f64 * EVAL_COST_PER_TRAIN / rate);
        evaluation_due(
            self.step,
            self.plan.training.eval_every,
            Spent {
                since_eval_s: (self.train_time - self.train_time_at_eval).as_secs_f64(),
                training_s: self.train_time.as_secs_f64(),
                evaluating_s: self.eval_time.as_secs_f64(),
            },
            self.last_eval_cost.map(|c| c.as_secs_f64()).or(estimate),
        )
    }

    /// Seconds spent evaluating on the test split so far.
    pub fn eval_seconds(&self) -> f64 {
        self.eval_time.as_secs_f64()
    }

    /// Accuracy and mean loss of `model` (any copy of this session's network) on the whole
    /// test split, in evaluation mode.
    pub fn evaluate_network(&self, model: &Network) -> TestScore {
        self.score(model, None)
    }

    /// Accuracy and mean loss of `model` on the test examples `subset` (`None`: all).
    fn score(&self, model: &Network, subset: Option<&[usize]>) -> TestScore {
        let model = model.valid();
        let all: Vec<usize>;
        let indices = match subset {
            Some(s) => s,
            None => {
                all = (0..self.data.test.len()).collect();
                &all
            }
        };
        let (mut correct, mut loss_sum) = (0usize, 0.0f64);
        for chunk in indices.chunks(EVAL_BATCH) {
            if let Some(h) = &self.heartbeat {
                h.beat();
            }
            let (images, labels) = self.test_batch(chunk);
            let logits = model.forward(images); // [n, classes]
            let loss = self.loss_fn.forward(logits.clone(), labels.clone());
            loss_sum += scalar(&loss) * chunk.len() as f64;
            let predicted = logits.argmax(1).squeeze_dim::<1>(1); // [n]
            let hits = predicted.equal(labels).int().sum(); // [1]
            correct += hits.into_data().iter::<i64>().next().unwrap_or(0) as usize;
        }
        let n = indices.len().max(1) as f64;
        TestScore {
            accuracy: correct as f64 / n,
            loss: loss_sum / n,
        }
    }
}

/// Accuracy and mean loss on test examples.
#[derive(Clone, Copy, Debug)]
pub struct TestScore {
    pub accuracy: f64,
    pub loss: f64,
}
