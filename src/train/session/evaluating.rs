//! The evaluation part of a session: when it evaluates on its test split (by time, or by
//! the plan's `eval_every`, and around every cut; see [`super::cadence`]), on the whole
//! split or on the cut-following evaluations' fixed subset, and what the evaluations so
//! far cost and found.

use std::time::{Duration, Instant};

use super::cadence::{
    CutBudget, CutFollow, EVAL_COST_PER_TRAIN, Spent, evaluation_due, recovery_step,
    subset_indices, subset_size,
};
use super::training::Training;
use super::{EvalPhase, Evaluation};
use crate::plan::ExperimentPlan;
use crate::prune::StepSchedule;

/// A session's evaluations: their cost, their cadence, and the results kept.
#[derive(Default)]
pub(super) struct Evaluations {
    /// Time spent evaluating on the test split, and how long the last whole-split
    /// evaluation took.
    eval_time: Duration,
    last_eval_cost: Option<Duration>,
    /// The training time when the last evaluation ran.
    train_time_at_eval: Duration,
    /// The evaluations that follow the pruning (automatic cadence).
    cuts: CutFollow,
    /// The most recent evaluation.
    last: Option<Evaluation>,
    /// The accuracy before the first pruning step.
    dense_accuracy: Option<f64>,
}

impl Evaluations {
    /// Whether evaluations follow the pruning: with the automatic cadence only, so that an
    /// explicit `eval_every` keeps meaning what it says.
    pub(super) fn follow_cuts(plan: &ExperimentPlan) -> bool {
        plan.training.eval_every == 0
    }

    pub(super) fn last(&self) -> Option<Evaluation> {
        self.last
    }

    pub(super) fn dense_accuracy(&self) -> Option<f64> {
        self.dense_accuracy
    }

    /// The dense accuracy of the run a checkpoint continues.
    pub(super) fn set_dense_accuracy(&mut self, accuracy: Option<f64>) {
        self.dense_accuracy = accuracy;
    }

    /// Seconds spent evaluating on the test split so far.
    pub(super) fn eval_seconds(&self) -> f64 {
        self.eval_time.as_secs_f64()
    }

    /// Accuracy and mean loss of the trained network on the whole test split, in
    /// evaluation mode, recorded as an evaluation of `phase` at masks of `sparsity`.
    pub(super) fn evaluate(
        &mut self,
        training: &Training,
        sparsity: f64,
        phase: EvalPhase,
    ) -> Evaluation {
        self.record(training, sparsity, phase, None)
    }

    /// The dense baseline, before the first pruning step: measured once (`None` when it
    /// already was).
    pub(super) fn baseline(&mut self, training: &Training, sparsity: f64) -> Option<Evaluation> {
        if self.dense_accuracy.is_some() {
            return None;
        }
        let e = self.evaluate(training, sparsity, EvalPhase::Baseline);
        self.dense_accuracy = Some(e.accuracy);
        Some(e)
    }

    /// Evaluates on the whole split (`subset: None`) or on the given test examples, and
    /// counts the time it took.
    fn record(
        &mut self,
        training: &Training,
        sparsity: f64,
        phase: EvalPhase,
        subset: Option<Vec<usize>>,
    ) -> Evaluation {
        let t0 = Instant::now();
        let score = training.score(training.network(), subset.as_deref());
        let cost = t0.elapsed();
        self.eval_time += cost;
        if subset.is_none() {
            // the cadence's cost estimate is of a whole-split evaluation
            self.last_eval_cost = Some(cost);
        }
        self.train_time_at_eval = training.train_time();
        let e = Evaluation {
            step: training.step(),
            accuracy: score.accuracy,
            loss: score.loss,
            sparsity,
            phase,
            subset: subset.map(|s| s.len()),
        };
        self.last = Some(e);
        e
    }

    /// Whether the recovery from the last cut is measured before training on `step` (with
    /// a cut about to come: `cut_due`).
    pub(super) fn recovery_due(&self, plan: &ExperimentPlan, step: u64, cut_due: bool) -> bool {
        Self::follow_cuts(plan) && self.cuts.recovery_due(step, cut_due)
    }

    /// The evaluation right after a cut at `step` changed a mask (now at `sparsity`), on
    /// the fixed subset; it also plans, by the cuts of `schedule`, when the recovery from it
    /// is measured.
    pub(super) fn evaluate_after_cut(
        &mut self,
        training: &Training,
        plan: &ExperimentPlan,
        schedule: &StepSchedule,
        sparsity: f64,
        step: u64,
    ) -> Evaluation {
        let subset = self.cut_subset(training, plan, schedule, step);
        let e = self.record(training, sparsity, EvalPhase::AfterCut, Some(subset));
        let end = (!plan.training.until_stopped).then(|| training.total_steps(plan));
        let next = cut_steps_from(training, plan, schedule, step + 1).next();
        let spe = training.steps_per_epoch();
        self.cuts.recover_before = recovery_step(step, next, self.cuts.last_cut, spe, end);
        self.cuts.last_cut = Some(step);
        e
    }

    /// The evaluation of what training won back since the last cut, on the same subset
    /// (sized, at the first, by the cuts of `schedule`), at masks of `sparsity`.
    pub(super) fn evaluate_recovery(
        &mut self,
        training: &Training,
        plan: &ExperimentPlan,
        schedule: &StepSchedule,
        sparsity: f64,
    ) -> Evaluation {
        self.cuts.recover_before = None;
        let subset = self.cut_subset(training, plan, schedule, training.step());
        self.record(training, sparsity, EvalPhase::Recovered, Some(subset))
    }

    /// The test subset of the cut-following evaluations, sized at the first of them from
    /// what evaluating and training cost so far (see [`subset_size`]).
    fn cut_subset(
        &mut self,
        training: &Training,
        plan: &ExperimentPlan,
        schedule: &StepSchedule,
        step: u64,
    ) -> Vec<usize> {
        if let Some(s) = &self.cuts.subset {
            return s.clone();
        }
        let test = training.data().test.len();
        let batch = plan.training.batch as f64;
        let rate = training.samples_per_s();
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
            planned_train_s: training.total_steps(plan) as f64 * s_per_step,
            evaluations: 2 * cut_steps_from(training, plan, schedule, step).count() as u64,
            s_per_example,
            test_examples: test,
        });
        let subset = subset_indices(test, n, plan.training.seed);
        self.cuts.subset = Some(subset.clone());
        subset
    }

    /// Whether to evaluate after the step just trained: every `eval_every` steps when the
    /// plan sets it, otherwise by time, so that evaluating takes a small share of the run
    /// whatever the dataset and model (and not when the next step measures a recovery).
    pub(super) fn due(&self, training: &Training, plan: &ExperimentPlan) -> bool {
        if self.recovery_due(plan, training.step(), false) {
            return false;
        }
        let rate = training.samples_per_s();
        let estimate =
            (rate > 0.0).then(|| training.data().test.len() as f64 * EVAL_COST_PER_TRAIN / rate);
        let train_time = training.train_time();
        evaluation_due(
            training.step(),
            plan.training.eval_every,
            Spent {
                since_eval_s: (train_time - self.train_time_at_eval).as_secs_f64(),
                training_s: train_time.as_secs_f64(),
                evaluating_s: self.eval_time.as_secs_f64(),
            },
            self.last_eval_cost.map(|c| c.as_secs_f64()).or(estimate),
        )
    }
}

/// The steps that cut (prune or exchange), from `from` on, up to the run's planned end
/// (for a run until stopped, at least twenty epochs ahead).
fn cut_steps_from<'a>(
    training: &Training,
    plan: &ExperimentPlan,
    schedule: &'a StepSchedule,
    from: u64,
) -> impl Iterator<Item = u64> + use<'a> {
    let end = if plan.training.until_stopped {
        training
            .total_steps(plan)
            .max(from + 20 * training.steps_per_epoch())
    } else {
        training.total_steps(plan)
    };
    (from..end).filter(|&k| schedule.should_prune(k) || schedule.exchange_fraction(k).is_some())
}
