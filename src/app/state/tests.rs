//! The reducer's and the run's bookkeeping, tested without a window: worker events in,
//! status, layers, history, banner and follow-up commands out.

use std::sync::Arc;

use super::*;
use crate::app::command::AppCommand;
use crate::app::layers::CutLine;
use crate::app::plan_edit::PlanEdit;
use crate::prune::LayerShape;
use crate::train::{EvalPhase, Event, LayerInfo, LayerSparsity, WorkerError};

fn state() -> AppState {
    AppState::new(ExperimentPlan::preset("quick-demo").unwrap(), None)
}

/// The edit the target slider makes: the plan's pruning with final target `target`.
fn target(s: &AppState, target: f64) -> PlanEdit {
    let mut pruning = s.plan.edited().pruning.clone();
    pruning.schedule.set_final_target(target);
    PlanEdit::Pruning(Box::new(pruning))
}

fn progress(step: u64) -> Event {
    Event::Progress {
        step,
        total_steps: 252,
        epoch: step as f64 / 63.0,
        loss: 0.5,
        samples_per_s: 1000.0,
        sparsity: 0.0,
        elapsed_s: 1.0,
    }
}

fn started() -> Event {
    let layer = |name: &str, out, inp| LayerInfo {
        name: name.into(),
        shape: LayerShape::linear(out, inp),
        params: out * inp,
        granularity: "unstructured".into(),
        dense_reason: None,
        groups: Vec::new(),
    };
    Event::Started {
        backend: BackendInfo {
            backend: "flex".into(),
            device: "CPU (flex)".into(),
            note: None,
        },
        dataset: "MNIST".into(),
        train_examples: 8_000,
        test_examples: 2_000,
        layers: vec![layer("fc1", 300, 784), layer("fc2", 10, 300)],
        steps_per_epoch: 63,
        total_steps: 252,
        schedule: vec![],
    }
}

fn error(run_ended: bool) -> Event {
    Event::Error {
        error: Arc::new(WorkerError::Panic {
            during: "saving masks".into(),
            message: "boom".into(),
        }),
        step: Some(5),
        run_ended,
    }
}

#[test]
fn a_start_sets_the_run_up_and_asks_for_snapshots() {
    let mut s = state();
    let plan = s.begin_run().expect("the preset is valid");
    assert_eq!(&plan, s.plan.edited());
    assert!(s.status.active && s.history.name.starts_with("run 1: "));
    let follow = s.apply(started());
    assert_eq!(follow, vec![AppCommand::RefreshSnapshots { force: true }]);
    assert_eq!(s.layers.len(), 2);
    assert_eq!(s.status.steps_per_epoch, 63);
    assert_eq!(s.status.backend.as_ref().unwrap().backend, "flex");
}

#[test]
fn progress_pruning_and_the_finish_update_status_layers_and_history() {
    let mut s = state();
    s.begin_run();
    s.apply(started());
    let follow = s.apply(Event::Progress {
        step: 12,
        total_steps: 252,
        epoch: 0.2,
        loss: 0.5,
        samples_per_s: 1000.0,
        sparsity: 0.0,
        elapsed_s: 1.0,
    });
    assert!(follow.is_empty());
    assert_eq!((s.status.step, s.status.loss), (12, 0.5));
    assert_eq!(s.history.loss.points(), &[[12.0, 0.5]]);
    let follow = s.apply(Event::Pruned {
        step: 20,
        target: 0.5,
        sparsity: 0.49,
        layers: vec![LayerSparsity {
            name: "fc2".into(),
            granularity: "2:4".into(),
            criterion: "magnitude".into(),
            target: 0.5,
            sparsity: 0.5,
            grown: 0,
            threshold: None,
        }],
    });
    assert_eq!(follow, vec![AppCommand::RefreshSnapshots { force: true }]);
    assert_eq!(s.status.prune_events, 1);
    assert_eq!(s.layers[1].sparsity, 0.5);
    assert_eq!(s.layers[1].info.granularity, "2:4");
    assert_eq!(s.layers[0].sparsity, 0.0);
    assert_eq!(
        s.layers[1].last_cut, None,
        "2:4 has no single |w| threshold"
    );
    let evaluation = s.apply(Event::Evaluation {
        step: 21,
        epoch: 0.3,
        accuracy: 0.9,
        loss: 0.3,
        sparsity: 0.49,
        baseline: false,
        phase: EvalPhase::AfterCut,
        subset: Some(400),
    });
    assert_eq!(
        evaluation,
        vec![AppCommand::RefreshSnapshots { force: false }]
    );
    assert_eq!(s.status.accuracy, Some(0.9));
    assert_eq!(s.history.after_cut.points(), &[[0.49, 0.9]]);
    assert!(s.history.recovered.is_empty());
    // a magnitude cut's threshold stays with the layer until the next cut
    s.apply(Event::Pruned {
        step: 40,
        target: 0.6,
        sparsity: 0.6,
        layers: vec![LayerSparsity {
            name: "fc1".into(),
            granularity: "unstructured".into(),
            criterion: "magnitude".into(),
            target: 0.6,
            sparsity: 0.6,
            grown: 0,
            threshold: Some(0.0123),
        }],
    });
    assert_eq!(
        s.layers[0].last_cut,
        Some(CutLine {
            step: 40,
            threshold: 0.0123
        })
    );
}

#[test]
fn only_errors_that_end_the_run_end_it() {
    let mut s = state();
    s.begin_run();
    s.apply(started());
    s.apply(error(false));
    assert!(s.status.active, "a failed save leaves the run");
    assert!(s.banner.error.as_deref().unwrap().contains("boom"));
    s.apply(error(true));
    assert!(!s.status.active);
}

#[test]
fn a_second_run_keeps_the_first_as_an_overlay_and_a_lost_worker_keeps_the_plots() {
    let mut s = state();
    s.begin_run();
    s.apply(started());
    s.apply(Event::Progress {
        step: 1,
        total_steps: 252,
        epoch: 0.0,
        loss: 2.3,
        samples_per_s: 1.0,
        sparsity: 0.0,
        elapsed_s: 0.1,
    });
    s.begin_run();
    assert_eq!(s.overlays.runs.len(), 1);
    assert!(s.history.name.starts_with("run 2: "));
    s.apply(Event::Progress {
        step: 3,
        total_steps: 252,
        epoch: 0.0,
        loss: 2.0,
        samples_per_s: 1.0,
        sparsity: 0.0,
        elapsed_s: 0.1,
    });
    let plan = s.plan.edited().clone();
    s.worker_lost("stopped unexpectedly");
    assert!(!s.status.active && s.plan.sent().is_none());
    assert_eq!(s.history.loss.points(), &[[3.0, 2.0]]);
    assert_eq!(s.plan.edited(), &plan);
    assert!(
        s.banner
            .error
            .as_deref()
            .unwrap()
            .contains("stopped unexpectedly")
    );
}

#[test]
fn plan_changes_are_pushed_once_and_only_when_they_can_apply_live() {
    let mut s = state();
    assert_eq!(s.edit_plan(target(&s, 0.6)), None, "no run");
    s.begin_run();
    s.apply(started());
    assert_eq!(s.edit_plan(target(&s, 0.6)), None, "unchanged");
    let pushed = s
        .edit_plan(target(&s, 0.7))
        .expect("a target change applies live");
    assert_eq!(pushed.plan().pruning.schedule.final_target(), 0.7);
    assert_eq!(pushed.schedule().final_target(), 0.7);
    assert_eq!(s.plan.sent(), Some(pushed.plan()));
    assert_eq!(s.edit_plan(target(&s, 0.7)), None, "already sent");
    let mut training = s.plan.edited().training.clone();
    training.batch *= 2;
    assert_eq!(
        s.edit_plan(PlanEdit::Training(Box::new(training))),
        None,
        "a batch change needs a new run"
    );
    assert_eq!(s.plan.check().needs_reset, Some("the batch size"));
    assert_eq!(
        s.edit_plan(target(&s, 0.8)),
        None,
        "nor does anything else while the batch size waits for a reset"
    );
    assert_eq!(s.plan.sent().unwrap().pruning.schedule.final_target(), 0.7);
}

#[test]
fn each_edit_is_checked_once_and_nothing_else_checks_the_plan() {
    let mut s = state();
    s.begin_run();
    s.apply(started());
    let first = s.plan.check().number;
    for step in 1..=50 {
        s.apply(progress(step));
    }
    assert_eq!(s.plan.check().number, first, "events check nothing");
    assert!(s.edit_plan(target(&s, 0.7)).is_some());
    assert_eq!(s.plan.check().number, first + 1, "one edit, one check");
    assert_eq!(s.plan.check().schedule().unwrap().final_target(), 0.7);
    // an invalid edit is checked once too: its error is kept for the controls to show, and
    // the run keeps its last valid plan
    assert_eq!(s.edit_plan(target(&s, 1.5)), None);
    assert_eq!(s.plan.check().number, first + 2);
    assert!(s.plan.check().schedule().is_err());
    assert_eq!(s.plan.sent().unwrap().pruning.schedule.final_target(), 0.7);
    // reading the check, as every frame does, checks nothing
    for _ in 0..10 {
        let _ = s.plan.check();
    }
    assert_eq!(s.plan.check().number, first + 2);
    let pushed = s.edit_plan(target(&s, 0.6)).expect("valid again");
    assert_eq!(pushed.plan().pruning.schedule.final_target(), 0.6);
    assert_eq!(s.plan.check().number, first + 3);
}

#[test]
fn the_plan_is_checked_again_only_when_the_data_it_is_checked_against_changes() {
    let mut s = state();
    let first = s.plan.check().clone();
    assert_eq!(first.train_len, crate::data::BUILTIN_TRAIN);
    s.begin_run();
    s.apply(started()); // the built-in set: nothing to check again
    assert_eq!(s.plan.check(), &first);
    s.reset();
    assert_eq!(s.plan.check(), &first);
    s.begin_run();
    let mut smaller = started();
    if let Event::Started { train_examples, .. } = &mut smaller {
        *train_examples = 640;
    }
    s.apply(smaller);
    assert_eq!(s.plan.check().train_len, 640);
    assert_eq!(s.plan.check().number, first.number + 1);
    s.reset();
    assert_eq!(s.plan.check().train_len, crate::data::BUILTIN_TRAIN);
    assert_eq!(s.plan.check().number, first.number + 2);
}

#[test]
fn an_invalid_plan_does_not_start_and_says_why() {
    let mut s = state();
    assert_eq!(s.edit_plan(target(&s, 1.5)), None);
    assert_eq!(s.begin_run(), None);
    assert!(!s.status.active);
    assert!(s.banner.error.is_some());
}

#[test]
fn notices_are_bounded() {
    let mut s = state();
    for i in 0..MAX_NOTICES + 10 {
        s.notice(format!("n{i}"));
    }
    assert_eq!(s.notices.len(), MAX_NOTICES);
    assert_eq!(s.notices.back().unwrap(), &format!("n{}", MAX_NOTICES + 9));
}
