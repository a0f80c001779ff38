//! When to evaluate. Two rules run side by side:
//! - **by time** (`scheduled`): every `eval_every` steps when the plan says so, otherwise
//!   once enough training has passed that evaluating takes a small, fixed share of the run;
//! - **by the pruning** (automatic cadence only): every cut that changes a mask is measured
//!   right after it (`after_cut`) and again right before the next cut, once training has
//!   had its chance to recover (`recovered`). These use a fixed, seeded subset of the test
//!   split sized so that all of them together stay within [`CUT_EVAL_SHARE`] of the run.

/// With the default cadence, training time between two evaluations is at least this many
/// times what the last evaluation took, so evaluations spread over the run...
const TRAIN_PER_EVAL: f64 = 11.5;

/// ...and all evaluations so far (the baseline's included) stay under this share of the
/// time spent training and evaluating, leaving room for the closing evaluation within a
/// tenth of the run.
const EVAL_SHARE: f64 = 0.05;

/// Before the first evaluation is timed, one test example is taken to cost this share of a
/// training example (a forward pass without a backward pass or an optimizer step).
pub(super) const EVAL_COST_PER_TRAIN: f64 = 0.3;

/// Where a session's time went, for the evaluation cadence.
#[derive(Clone, Copy, Debug)]
pub(super) struct Spent {
    /// Training since the last evaluation.
    pub since_eval_s: f64,
    pub training_s: f64,
    pub evaluating_s: f64,
}

/// The evaluation cadence: every `eval_every` steps when that is set; otherwise once the
/// training since the last evaluation is [`TRAIN_PER_EVAL`] times what an evaluation costs
/// (`eval_cost_s`, measured or estimated; unknown: not yet) and one more evaluation keeps
/// all of them under [`EVAL_SHARE`] of the time.
pub(super) fn evaluation_due(
    step: u64,
    eval_every: u64,
    spent: Spent,
    eval_cost_s: Option<f64>,
) -> bool {
    if eval_every > 0 {
        return step.is_multiple_of(eval_every);
    }
    eval_cost_s.is_some_and(|cost| {
        let evaluating = spent.evaluating_s + cost;
        spent.since_eval_s >= cost * TRAIN_PER_EVAL
            && evaluating <= EVAL_SHARE * (spent.training_s + evaluating)
    })
}

/// The evaluations that follow the pruning may take this share of the run's planned
/// training time, all of them together (scheduled evaluations give way while they run, so
/// that the two rules and the closing evaluation stay well under 15%).
const CUT_EVAL_SHARE: f64 = 0.08;

/// The subset's bounds: below the smaller, an accuracy is too noisy to show a cut's cost
/// (about +-2 points at 90%); above the larger, it costs time without showing more.
pub(super) const MIN_SUBSET: usize = 400;
pub(super) const MAX_SUBSET: usize = 2_000;

/// What the subset of the cut-following evaluations is sized from.
#[derive(Clone, Copy, Debug)]
pub(super) struct CutBudget {
    /// The run's planned training time, measured rate times planned steps.
    pub planned_train_s: f64,
    /// Evaluations still to come with the pruning: two per planned cut.
    pub evaluations: u64,
    /// What evaluating one test example costs.
    pub s_per_example: f64,
    pub test_examples: usize,
}

/// How many test examples each cut-following evaluation uses: as many as fit
/// [`CUT_EVAL_SHARE`] of the planned training time, within [`MIN_SUBSET`] and
/// [`MAX_SUBSET`], and never more than the split has.
pub(super) fn subset_size(budget: CutBudget) -> usize {
    let per_evaluation = CUT_EVAL_SHARE * budget.planned_train_s / budget.evaluations.max(1) as f64;
    let fits = per_evaluation / budget.s_per_example.max(f64::MIN_POSITIVE);
    let n = if fits.is_finite() {
        fits as usize
    } else {
        MAX_SUBSET
    };
    n.clamp(MIN_SUBSET, MAX_SUBSET).min(budget.test_examples)
}

/// The step before which the recovery from a cut at `cut` is measured: the next planned
/// cut when there is one; after the last cut, as long after it as the cut before it was,
/// at most an epoch (an epoch after a lone cut or a live change). `None` when that falls
/// at or past the run's `end`, where the closing evaluation measures it.
pub(super) fn recovery_step(
    cut: u64,
    next_cut: Option<u64>,
    previous_cut: Option<u64>,
    steps_per_epoch: u64,
    end: Option<u64>,
) -> Option<u64> {
    let at = next_cut.unwrap_or_else(|| {
        let gap = previous_cut.map_or(steps_per_epoch, |p| cut.saturating_sub(p));
        cut + gap.clamp(1, steps_per_epoch.max(1))
    });
    end.is_none_or(|e| at < e).then_some(at)
}

/// The fixed subset: `n` indices of a split of `len` examples, a seeded shuffle's first
/// `n`, in ascending order (the same for every evaluation of a run).
pub(super) fn subset_indices(len: usize, n: usize, seed: u64) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::{SeedableRng, rngs::StdRng};
    let mut all: Vec<usize> = (0..len).collect();
    all.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x5eed_e7a1));
    all.truncate(n.min(len));
    all.sort_unstable();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(planned_train_s: f64, evaluations: u64, s_per_example: f64) -> CutBudget {
        CutBudget {
            planned_train_s,
            evaluations,
            s_per_example,
            test_examples: 10_000,
        }
    }

    #[test]
    fn the_subset_fits_the_share_of_the_planned_training() {
        // 100 s of training, 20 evaluations at 10 us an example: 8 s / 20 = 0.4 s each,
        // 40,000 examples: capped at the largest subset
        assert_eq!(subset_size(budget(100.0, 20, 1e-5)), MAX_SUBSET);
        // 10 s, 20 evaluations, 50 us: 0.04 s each, 800 examples
        assert_eq!(subset_size(budget(10.0, 20, 5e-5)), 800);
        // the bounds hold, and the split's size caps everything
        assert_eq!(subset_size(budget(0.1, 30, 5e-5)), MIN_SUBSET);
        let small = CutBudget {
            test_examples: 300,
            ..budget(100.0, 2, 1e-6)
        };
        assert_eq!(subset_size(small), 300);
        // nothing known about the cost: the largest subset, not a division by zero
        assert_eq!(subset_size(budget(10.0, 0, 0.0)), MAX_SUBSET);
    }

    #[test]
    fn recovery_is_measured_before_the_next_cut_or_one_spacing_after_the_last() {
        assert_eq!(
            recovery_step(100, Some(150), Some(50), 63, Some(1000)),
            Some(150)
        );
        // the last cut: as long after it as the one before
        assert_eq!(
            recovery_step(150, None, Some(100), 63, Some(1000)),
            Some(200)
        );
        // a lone cut (one-shot): one epoch after it; a live change long after the last
        // planned cut: at most an epoch after it
        assert_eq!(recovery_step(126, None, None, 63, Some(1000)), Some(189));
        assert_eq!(
            recovery_step(900, None, Some(300), 63, Some(1000)),
            Some(963)
        );
        // at or past the run's end the closing evaluation measures it
        assert_eq!(recovery_step(990, None, Some(950), 63, Some(1000)), None);
        assert_eq!(
            recovery_step(990, None, Some(950), 63, Some(1031)),
            Some(1030)
        );
        // a run until stopped has no end
        assert_eq!(recovery_step(990, None, Some(950), 63, None), Some(1030));
    }

    #[test]
    fn the_subset_is_fixed_sorted_and_distinct() {
        let a = subset_indices(10_000, 2_000, 7);
        assert_eq!(a, subset_indices(10_000, 2_000, 7));
        assert_ne!(a, subset_indices(10_000, 2_000, 8));
        assert_eq!(a.len(), 2_000);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(*a.last().unwrap() < 10_000);
        assert_eq!(subset_indices(50, 2_000, 7), (0..50).collect::<Vec<_>>());
    }

    fn spent(since_eval_s: f64, training_s: f64, evaluating_s: f64) -> Spent {
        Spent {
            since_eval_s,
            training_s,
            evaluating_s,
        }
    }

    #[test]
    fn an_explicit_cadence_counts_steps() {
        assert!(evaluation_due(42, 21, spent(0.0, 0.0, 0.0), None));
        assert!(!evaluation_due(43, 21, spent(1e9, 1e9, 0.0), Some(0.0)));
    }

    #[test]
    fn the_default_cadence_spaces_evaluations_by_their_cost() {
        // an evaluation of 1 s is followed by at least 11.5 s of training
        assert!(!evaluation_due(5, 0, spent(11.0, 100.0, 1.0), Some(1.0)));
        assert!(evaluation_due(5, 0, spent(11.5, 100.0, 1.0), Some(1.0)));
        // nothing known about the cost yet: wait
        assert!(!evaluation_due(5, 0, spent(100.0, 100.0, 0.0), None));
    }

    #[test]
    fn the_default_cadence_keeps_all_evaluations_under_their_share() {
        // 30 s of training, 1 s already spent evaluating (a baseline): another 1 s
        // evaluation would make 2 / 32 > 5%, so it waits although it is spaced enough
        assert!(!evaluation_due(5, 0, spent(15.0, 30.0, 1.0), Some(1.0)));
        // with 40 s trained it fits: 2 / 42 < 5%
        assert!(evaluation_due(5, 0, spent(15.0, 40.0, 1.0), Some(1.0)));
    }
}

/// Where the evaluations that follow the pruning stand in a session.
#[derive(Clone, Debug, Default)]
pub(super) struct CutFollow {
    /// The fixed test subset, sized at the first cut-following evaluation.
    pub subset: Option<Vec<usize>>,
    /// The step before which the recovery from the last cut is measured.
    pub recover_before: Option<u64>,
    /// The step of the last cut that changed a mask.
    pub last_cut: Option<u64>,
}

impl CutFollow {
    /// Whether the recovery from the last cut is measured before training on `step`: its
    /// step has come, or a cut is about to end it.
    pub fn recovery_due(&self, step: u64, cut_due: bool) -> bool {
        self.recover_before.is_some_and(|s| s <= step || cut_due)
    }
}
