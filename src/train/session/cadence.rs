//! When to evaluate: every `eval_every` steps when the plan says so, otherwise by time, so
//! that evaluating takes a small, fixed share of a run whatever the dataset and model.

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

#[cfg(test)]
mod tests {
    use super::*;

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
