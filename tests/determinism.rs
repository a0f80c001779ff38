//! Reproducibility: the same plan and seed give the same losses and masks.
//!
//! Alone in its own test binary: the CPU backend's random generator is process-wide, so a
//! test running beside it would draw from the same stream.

use std::sync::Arc;

use sparsity_explorer::data::Dataset;
use sparsity_explorer::plan::ExperimentPlan;
use sparsity_explorer::prune::{At, Schedule};
use sparsity_explorer::train::{BackendChoice, Session, select};

#[test]
fn the_same_seed_gives_the_same_run() {
    let data = Arc::new(Dataset::builtin().unwrap());
    let (device, info) = select(BackendChoice::Flex).unwrap();
    let mut plan = ExperimentPlan::preset("quick-demo").unwrap();
    plan.training.backend = BackendChoice::Flex;
    plan.pruning.schedule = Schedule::Constant {
        target: 0.5,
        begin: At::Step(4),
        end: None,
        frequency: 5,
    };
    let run = || {
        let mut s = Session::new(plan.clone(), data.clone(), device.clone(), info.clone()).unwrap();
        let losses: Vec<f64> = (0..12).map(|_| s.train_step().unwrap().loss).collect();
        (
            losses,
            s.snapshots()
                .into_iter()
                .map(|x| x.mask)
                .collect::<Vec<_>>(),
        )
    };
    let (a, ma) = run();
    let (b, mb) = run();
    assert_eq!(a, b);
    assert_eq!(ma, mb);
}
