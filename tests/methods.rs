//! The pruning methods beyond magnitude, end to end on the built-in digits with burn's CPU
//! backend: saliency criteria, lottery tickets and dynamic sparse training.

use std::sync::Arc;

use sparsity_explorer::data::Dataset;
use sparsity_explorer::plan::ExperimentPlan;
use sparsity_explorer::prune::{At, Criterion, Dynamic, Schedule, ScheduleKind, keep_count};
use sparsity_explorer::train::{BackendChoice, Session, select};

fn quick_plan() -> ExperimentPlan {
    let mut plan = ExperimentPlan::preset("quick-demo").unwrap();
    plan.training.backend = BackendChoice::Flex;
    plan
}

fn session(plan: ExperimentPlan) -> Session {
    let data = Arc::new(Dataset::builtin().unwrap());
    let (device, info) = select(BackendChoice::Flex).unwrap();
    Session::new(plan, data, device, info).unwrap()
}

#[test]
fn a_lottery_ticket_rewinds_the_survivors_to_their_early_values() {
    let mut plan = quick_plan();
    plan.pruning.rewind = Some(At::Step(5));
    plan.pruning.schedule = Schedule::OneShot {
        target: 0.5,
        at: At::Step(20),
    };
    let mut s = session(plan.clone());
    for _ in 0..5 {
        s.train_step().unwrap();
    }
    let early = s.network().read_params(); // what step 5 keeps
    for _ in 0..15 {
        s.train_step().unwrap(); // step 5 takes the copy; the weights move on
    }
    assert_ne!(
        s.network().read_params(),
        early,
        "training moved the weights"
    );
    s.prune(0.5).unwrap();
    let masks = s.masks().to_vec();
    let after = s.network().read_params();
    for (i, spec) in plan.layer_specs().unwrap().iter().enumerate() {
        let find = |params: &[sparsity_explorer::model::HostTensor], name: &str| {
            params
                .iter()
                .find(|p| p.name == name)
                .unwrap()
                .values
                .clone()
        };
        let name = format!("{}.weight", spec.name);
        let (w, w0) = (find(&after, &name), find(&early, &name));
        let mask = masks[i].as_ref().unwrap();
        for ((v, v0), &keep) in w.iter().zip(&w0).zip(mask) {
            assert_eq!(*v, if keep == 1 { *v0 } else { 0.0 }, "{name}");
        }
        let bias = format!("{}.bias", spec.name);
        assert_eq!(find(&after, &bias), find(&early, &bias));
    }
    // rewinding to after the first pruning step is refused
    let mut late = plan;
    late.pruning.rewind = Some(At::Step(30));
    let e = late.validate(8_000).unwrap_err().to_string();
    assert!(e.contains("rewind") && e.contains("30"), "{e}");
}

#[test]
fn gradient_criteria_prune_other_weights_than_magnitude_and_keep_training() {
    let masks_with = |criterion: Criterion, at: u64| {
        let mut plan = quick_plan();
        plan.pruning.criterion = criterion;
        plan.pruning.schedule = Schedule::OneShot {
            target: 0.8,
            at: At::Step(at),
        };
        let mut s = session(plan);
        while !s.is_done() {
            s.train_step().unwrap();
        }
        (s.masks().to_vec(), s.summary())
    };
    let (magnitude, _) = masks_with(Criterion::Magnitude, 60);
    for criterion in [
        Criterion::Taylor,
        Criterion::Movement,
        Criterion::Snip,
        Criterion::Wanda,
    ] {
        let (masks, summary) = masks_with(criterion, 60);
        let m = masks[0].as_ref().unwrap();
        let differ = m
            .iter()
            .zip(magnitude[0].as_ref().unwrap())
            .filter(|(a, b)| a != b)
            .count() as f64
            / m.len() as f64;
        eprintln!(
            "{criterion}: fc1 mask differs from magnitude's at {differ:.3}, accuracy {:.4}",
            summary.final_accuracy
        );
        assert!(differ > 0.01, "{criterion} ranks like magnitude");
        assert!((summary.sparsity - 0.8).abs() < 0.01);
        // one batch's gradients (SNIP) rank more noisily than averages over many steps
        let floor = if criterion == Criterion::Snip {
            0.6
        } else {
            0.85
        };
        assert!(summary.final_accuracy > floor, "{criterion}: {summary:?}");
    }
    // Wanda ranks within each output row: every row of fc1 keeps the same count
    let (wanda, _) = masks_with(Criterion::Wanda, 60);
    for row in wanda[0].as_ref().unwrap().chunks(784) {
        assert_eq!(
            row.iter().filter(|&&k| k == 1).count(),
            keep_count(784, 0.8)
        );
    }
    // SNIP and SynFlow at initialisation: pruned before any training, then trained
    for criterion in [Criterion::Snip, Criterion::Synflow] {
        let (masks, summary) = masks_with(criterion, 0);
        eprintln!(
            "{criterion} at step 0: accuracy {:.4}",
            summary.final_accuracy
        );
        assert!((summary.sparsity - 0.8).abs() < 0.01);
        assert!(summary.final_accuracy > 0.8, "{criterion}: {summary:?}");
        assert!(masks.iter().flatten().all(|m| m.contains(&1)));
    }
}

#[test]
fn synflow_keeps_every_layer_connected_where_magnitude_cuts_one_off() {
    // ranked globally at initialisation, magnitude prunes the layer with the largest fan-in
    // (the smallest initial weights) first, and at 99.5% empties it: no signal gets through.
    // SynFlow's rounds keep every layer connected (Tanaka et al. 2020, layer collapse).
    let at_init = |criterion: Criterion| {
        let mut plan = quick_plan();
        plan.pruning.criterion = criterion;
        plan.pruning.scope = sparsity_explorer::prune::Scope::Global;
        plan.pruning.schedule = Schedule::OneShot {
            target: 0.995,
            at: At::Step(0),
        };
        let mut s = session(plan);
        s.train_step().unwrap();
        s.masks().to_vec()
    };
    let kept = |masks: &[Option<Vec<u8>>]| -> Vec<usize> {
        masks
            .iter()
            .map(|m| m.as_ref().unwrap().iter().filter(|&&k| k == 1).count())
            .collect()
    };
    let synflow = kept(&at_init(Criterion::Synflow));
    let magnitude = kept(&at_init(Criterion::Magnitude));
    eprintln!("kept per layer at 99.5%: synflow {synflow:?}, magnitude {magnitude:?}");
    assert!(magnitude.contains(&0), "magnitude {magnitude:?}");
    assert!(synflow.iter().all(|&k| k > 0), "synflow {synflow:?}");
}

/// Kept weights per layer of a session's masks.
fn kept_counts(s: &Session) -> Vec<usize> {
    s.masks()
        .iter()
        .map(|m| m.as_ref().unwrap().iter().filter(|&&k| k == 1).count())
        .collect()
}

#[test]
fn rigl_and_set_move_the_mask_at_constant_sparsity_and_grow_from_zero() {
    for kind in [ScheduleKind::Rigl, ScheduleKind::Set] {
        let mut plan = quick_plan();
        plan.pruning.schedule = Schedule::Rigl(Dynamic {
            target: 0.9,
            begin: At::Step(0),
            end: At::Step(200),
            frequency: 20,
            alpha: 0.3,
        })
        .with_kind(kind);
        let mut s = session(plan);
        let first = s.train_step().unwrap();
        assert!(first.pruned.is_some(), "{kind:?}: sparse from step 0");
        let counts = kept_counts(&s);
        for _ in 1..20 {
            s.train_step().unwrap();
        }
        let before = s.masks().to_vec();
        let outcome = s.train_step().unwrap(); // step 20: an exchange
        let report = outcome.pruned.expect("step 20 exchanges");
        assert_eq!(kept_counts(&s), counts, "{kind:?}: the count stays");
        let weights = s.network().read_weights();
        for (i, snap) in s.snapshots().iter().enumerate() {
            let old = before[i].as_ref().unwrap();
            // round(0.3 * (1 + cos(pi * 20/200)) / 2 * kept) weights moved
            let fraction = 0.15 * (1.0 + (std::f64::consts::PI * 0.1).cos());
            let expected = (counts[i] as f64 * fraction).round() as usize;
            assert_eq!(snap.grown.len(), expected, "{kind:?} {}", snap.name);
            assert_eq!(report.layers[i].grown, expected);
            for &g in &snap.grown {
                let g = g as usize;
                assert_eq!((old[g], snap.mask[g]), (0, 1), "grown from pruned");
                // the exchange came after this step's update: grown weights start at zero
                assert_eq!(weights[i][g], 0.0);
            }
            for (w, &k) in weights[i].iter().zip(&snap.mask) {
                assert!(k == 1 || *w == 0.0, "dropped weights are zero");
            }
        }
        // the grown weights train from the next step on
        s.train_step().unwrap();
        let trained = s.network().read_weights();
        let snap = &s.snapshots()[0];
        assert!(snap.grown.is_empty() || snap.grown.iter().any(|&g| trained[0][g as usize] != 0.0));
        while !s.is_done() {
            s.train_step().unwrap();
        }
        let summary = s.summary();
        eprintln!(
            "{kind:?}: accuracy {:.4} at {:.4}",
            summary.final_accuracy, summary.sparsity
        );
        assert!((summary.sparsity - 0.9).abs() < 0.005);
        assert!(summary.final_accuracy > 0.85, "{kind:?}: {summary:?}");
    }
}
