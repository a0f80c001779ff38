//! Live sessions on the built-in digits with burn's CPU backend: a run that trains until
//! stopped, settings changed after the schedule's end, and the speed cap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sparsity_explorer::data::Dataset;
use sparsity_explorer::plan::ExperimentPlan;
use sparsity_explorer::prune::{At, Granularity, Schedule};
use sparsity_explorer::train::{BackendChoice, Command, Event, Session, Worker, select};

fn live_plan() -> ExperimentPlan {
    let mut plan = ExperimentPlan::preset("live-demo").unwrap();
    plan.training.backend = BackendChoice::Flex;
    plan.training.epochs = 1; // the horizon: 63 steps
    plan.training.pace = None; // the preset's classroom pace, lifted
    plan.pruning.schedule = Schedule::Polynomial {
        initial: 0.0,
        final_sparsity: 0.6,
        begin: At::Step(5),
        end: At::Step(25),
        power: 3.0,
        frequency: 5,
    };
    plan
}

#[test]
fn a_run_until_stopped_goes_past_its_epochs_and_follows_changes_after_the_schedule() {
    let data = Arc::new(Dataset::builtin().unwrap());
    let (device, info) = select(BackendChoice::Flex).unwrap();
    let plan = live_plan();
    let mut s = Session::new(plan.clone(), data, device, info).unwrap();
    let horizon = s.total_steps();
    while s.step() < horizon + 20 {
        assert!(!s.is_done(), "until stopped: never done");
        s.train_step().unwrap();
    }
    assert!(
        (s.mask_sparsity() - 0.6).abs() < 0.01,
        "the final value holds"
    );
    // after the schedule's end a new target applies at the next step, not never
    let mut higher = plan.clone();
    higher.pruning.schedule.set_final_target(0.8);
    s.update_plan(higher.clone().check(s.train_len()).unwrap())
        .unwrap();
    let outcome = s.train_step().unwrap();
    let pruned = outcome.pruned.expect("the change applies at once");
    assert!((pruned.sparsity - 0.8).abs() < 0.01, "{pruned:?}");
    // and once applied, nothing more until the next change
    assert!(s.train_step().unwrap().pruned.is_none());
    let mut nm = higher;
    nm.pruning.granularity = Granularity::NOfM { n: 2, m: 4 };
    s.update_plan(nm.check(s.train_len()).unwrap()).unwrap();
    let pruned = s
        .train_step()
        .unwrap()
        .pruned
        .expect("a new pattern applies");
    assert!(pruned.layers.iter().all(|l| l.granularity == "2:4"));
    // a plan with an end finishes at its epochs
    let mut ending = plan;
    ending.training.until_stopped = false;
    s.update_plan(ending.check(s.train_len()).unwrap()).unwrap();
    assert!(s.is_done());
}

#[test]
fn the_plans_pace_spaces_the_steps_and_lifting_it_lets_them_run() {
    let worker = Worker::spawn(None);
    let mut plan = live_plan();
    plan.training.pace = Some(20.0);
    worker.send(Command::Start(Box::new(plan)));
    let steps_after = |worker: &Worker, window: Duration| {
        let deadline = Instant::now() + window;
        let mut last = None;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Ok(Event::Progress { step, .. }) = worker.recv_timeout(left) {
                last = Some(step);
            }
        }
        last
    };
    // wait for the first progress report (the dataset loads first)
    let first = steps_after(&worker, Duration::from_secs(5)).expect("training started");
    let later = steps_after(&worker, Duration::from_secs(1)).unwrap_or(first);
    // 20 steps/s for a second: never more than about 20 steps, whatever the machine
    assert!(
        later - first <= 25,
        "{} steps in 1 s at 20 steps/s",
        later - first
    );
    worker.send(Command::SetSpeed { steps_per_s: None });
    let uncapped = steps_after(&worker, Duration::from_secs(1)).unwrap_or(later);
    assert!(uncapped > later, "training goes on without the cap");
    worker.send(Command::Stop);
}
