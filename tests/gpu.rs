//! The wgpu path: a few training steps with pruning on whatever wgpu adapter the machine
//! has (a real GPU, or llvmpipe where Mesa's software Vulkan driver is installed).
//!
//! Alone in its own test binary, so that its adapter start-up and shader compilation do not
//! slow the other tests.

use std::sync::Arc;

use sparsity_explorer::data::Dataset;
use sparsity_explorer::model::ModelKind;
use sparsity_explorer::plan::ExperimentPlan;
use sparsity_explorer::prune::{At, Schedule};
use sparsity_explorer::train::{BackendChoice, EvalPhase, Session, select};

#[test]
#[ignore = "needs a wgpu adapter: a GPU, or Mesa's mesa-vulkan-drivers (.ci/run installs it)"]
fn training_on_wgpu_prunes_and_keeps_pruned_weights_at_zero() {
    // a test that cannot run says so: without an adapter it fails, naming what to install
    let (device, info) = select(BackendChoice::Wgpu).unwrap_or_else(|e| {
        panic!("needs a wgpu adapter (a GPU, or Mesa's mesa-vulkan-drivers): {e}")
    });
    println!("training on {} ({})", info.device, info.backend);
    assert_eq!(info.backend, "wgpu");

    let data = Arc::new(Dataset::builtin().unwrap());
    let mut plan = ExperimentPlan::preset("quick-demo").unwrap();
    plan.model = ModelKind::SmallCnn; // convolution, pooling and dense layers
    plan.training.backend = BackendChoice::Wgpu;
    plan.training.batch = 32;
    plan.training.eval_every = 1_000_000;
    plan.pruning.schedule = Schedule::Constant {
        target: 0.5,
        begin: At::Step(1),
        end: None,
        frequency: 2,
    };
    let mut session = Session::new(plan, data, device, info).unwrap();
    let mut pruned_at = Vec::new();
    for _ in 0..4 {
        let outcome = session.train_step().unwrap();
        assert!(outcome.loss.is_finite(), "loss {}", outcome.loss);
        if let Some(p) = outcome.pruned {
            pruned_at.push(p.step);
        }
    }
    assert_eq!(pruned_at, vec![1, 3]);

    // Masks hold exactly half of every layer's weights, and after the optimizer steps that
    // followed, every pruned weight on the GPU is exactly zero.
    for snapshot in session.snapshots() {
        let n = snapshot.mask.len();
        let kept = snapshot.mask.iter().filter(|&&m| m == 1).count();
        assert_eq!(kept, n - n / 2, "{}: kept {kept} of {n}", snapshot.name);
        for (i, (&m, &w)) in snapshot.mask.iter().zip(&snapshot.weights).enumerate() {
            if m == 0 {
                assert_eq!(w, 0.0, "{} weight {i} is pruned but {w}", snapshot.name);
            }
        }
        let nonzero = snapshot.weights.iter().filter(|&&w| w != 0.0).count();
        assert_eq!(nonzero, kept, "{}: kept weights are trained", snapshot.name);
    }
    let e = session.evaluate(EvalPhase::Scheduled);
    assert!((0.0..=1.0).contains(&e.accuracy));
}
