//! The real binary: the reference recipe end to end, saved masks, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sparsity_explorer::masks_file::parse_masks;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparsity-explorer"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("se-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Parses JSON lines; every line is an object with an "event" field.
fn events(out: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(v["event"].is_string(), "no event field: {l}");
            v
        })
        .collect()
}

fn summary(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(out);
    let last = ev.last().expect("some output").clone();
    assert_eq!(last["event"], "summary");
    last
}

#[test]
fn lenet300_agp90_reaches_the_reference_numbers() {
    let out = run(&[
        "run",
        "--preset",
        "lenet300-agp90",
        "--backend",
        "flex",
        "--json",
    ]);
    let s = summary(&out);
    let dense = s["dense_accuracy"].as_f64().unwrap();
    let fin = s["final_accuracy"].as_f64().unwrap();
    let sparsity = s["sparsity"].as_f64().unwrap();
    eprintln!("lenet300-agp90: dense {dense:.4} final {fin:.4} sparsity {sparsity:.4}");
    assert!(dense >= 0.925, "dense accuracy {dense}");
    assert!(fin >= 0.935, "final accuracy {fin}");
    assert!((sparsity - 0.90).abs() <= 0.005, "sparsity {sparsity}");
    assert_eq!(s["steps"], 20 * 63);
    assert_eq!(s["backend"], "flex");
    assert!(s["train_samples_per_s"].as_f64().unwrap() > 0.0);
    assert!(s["wall_s"].as_f64().unwrap() > 0.0);
    let layers = s["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[0]["name"], "fc1");
    assert_eq!(layers[0]["shape"], serde_json::json!([300, 784]));
    assert_eq!(layers[0]["granularity"], "unstructured");
    // every pruning step is an event with its step, target and achieved sparsity
    let ev = events(&out);
    let prunes: Vec<&Value> = ev.iter().filter(|e| e["event"] == "pruned").collect();
    assert!(prunes.len() >= 10);
    for p in &prunes {
        assert!(p["step"].is_u64() && p["target"].is_f64() && p["sparsity"].is_f64());
        assert!((p["target"].as_f64().unwrap() - p["sparsity"].as_f64().unwrap()).abs() < 1e-3);
    }
    // every evaluation says its sparsity, its moment and how much of the test split it used
    let evals: Vec<&Value> = ev.iter().filter(|e| e["event"] == "evaluation").collect();
    for e in &evals {
        assert!(e["sparsity"].is_f64(), "{e}");
        assert!(e["phase"].is_string(), "{e}");
        assert!(e["subset"].is_u64() || e["subset"].is_null(), "{e}");
    }
    let phase = |p: &str| evals.iter().filter(|e| e["phase"] == p).count();
    assert_eq!(phase("baseline"), 1);
    assert!(
        phase("after_cut") >= 10,
        "{} after cuts",
        phase("after_cut")
    );
    assert!(
        phase("recovered") >= 10,
        "{} recoveries",
        phase("recovered")
    );
    assert!(
        evals
            .iter()
            .filter(|e| e["phase"] == "after_cut" || e["phase"] == "recovered")
            .all(|e| e["subset"].is_u64())
    );
    assert!(
        evals.last().unwrap()["subset"].is_null(),
        "the closing figure uses the whole split"
    );
}

#[test]
fn run_prints_each_evaluation_with_its_sparsity_and_moment() {
    let out = run(&["run", "--preset", "quick-demo", "--backend", "flex"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("eval step"))
        .collect();
    assert!(lines.len() >= 20, "{stdout}");
    for l in &lines {
        assert!(
            l.contains(" sparsity 0.") && l.contains(" accuracy 0."),
            "{l}"
        );
    }
    let with = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(with("dense baseline (whole test split)"), 1, "{stdout}");
    assert!(with("after cut (") >= 10, "{stdout}");
    assert!(with("recovered (") >= 10, "{stdout}");
    assert!(with("test images)") >= 20, "{stdout}");
    // the summary follows
    assert!(stdout.contains("overall sparsity 0.9"), "{stdout}");
}

#[test]
fn two_of_four_on_the_mlp_keeps_accuracy_and_every_saved_group_is_valid() {
    let dir = temp_dir("nm");
    let masks = dir.join("masks.safetensors");
    let out = run(&[
        "run",
        "--preset",
        "lenet300-agp90",
        "--backend",
        "flex",
        "--granularity",
        "2:4",
        "--epochs",
        "14",
        "--json",
        "--save-masks",
        masks.to_str().unwrap(),
    ]);
    let s = summary(&out);
    let dense = s["dense_accuracy"].as_f64().unwrap();
    let fin = s["final_accuracy"].as_f64().unwrap();
    eprintln!("2:4 mlp: dense {dense:.4} final {fin:.4}");
    assert!(
        fin >= dense - 0.01,
        "2:4 lost more than a point: {dense} -> {fin}"
    );
    assert!((s["sparsity"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    let (saved, plan) = parse_masks(&std::fs::read(&masks).unwrap(), &masks).unwrap();
    assert!(plan.unwrap().contains("granularity = \"2:4\""));
    assert_eq!(
        saved.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["fc1", "fc2", "fc3"]
    );
    assert_eq!(saved[0].dims, vec![300, 784]);
    for m in &saved {
        // PyTorch layout [out, in]: groups of 4 consecutive inputs in each row
        for group in m.mask.chunks(4) {
            assert_eq!(group.iter().filter(|&&k| k == 0).count(), 2, "{}", m.name);
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_default_pattern_skips_a_layer_that_cannot_take_it_and_says_so() {
    let out = run(&[
        "run",
        "--model",
        "small-cnn",
        "--backend",
        "flex",
        "--granularity",
        "2:4",
        "--epochs",
        "1",
        "--begin",
        "10",
        "--end",
        "40",
        "--json",
    ]);
    let s = summary(&out);
    let ev = events(&out);
    let notice = ev
        .iter()
        .find(|e| e["event"] == "notice")
        .expect("a notice about conv1");
    assert!(
        notice["message"].as_str().unwrap().starts_with("conv1"),
        "{notice}"
    );
    let layers = s["layers"].as_array().unwrap();
    assert_eq!(layers[0]["granularity"], "dense");
    assert_eq!(layers[0]["sparsity"], 0.0);
    assert_eq!(layers[1]["granularity"], "2:4");
    assert!((layers[1]["sparsity"].as_f64().unwrap() - 0.5).abs() < 1e-9);
}

fn assert_clean_failure(args: &[&str], expect: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    // the error is one line, the last; a run that got going may have printed its header
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{args:?}: {stderr}");
    assert!(last.contains(expect), "{args:?}: {last:?} lacks {expect:?}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

fn write_dataset(dir: &Path, truncate_train_images: bool) {
    use sparsity_explorer::data::IMAGE_PIXELS;
    let images = |n: u32| {
        let mut b = vec![0, 0, 8, 3];
        b.extend(n.to_be_bytes());
        b.extend(28u32.to_be_bytes());
        b.extend(28u32.to_be_bytes());
        b.extend(std::iter::repeat_n(7u8, n as usize * IMAGE_PIXELS));
        b
    };
    let labels = |n: u32| {
        let mut b = vec![0, 0, 8, 1];
        b.extend(n.to_be_bytes());
        b.extend((0..n).map(|i| (i % 10) as u8));
        b
    };
    let mut train = images(64);
    if truncate_train_images {
        train.truncate(train.len() - 100);
    }
    std::fs::write(dir.join("train-images-idx3-ubyte"), train).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels(64)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), images(16)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels(16)).unwrap();
}

#[test]
fn bad_input_fails_with_one_clear_line() {
    let dir = temp_dir("bad");
    assert_clean_failure(
        &["run", "--dataset", "/nonexistent/data"],
        "/nonexistent/data: no train-images-idx3-ubyte",
    );
    let corrupt = dir.join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    write_dataset(&corrupt, true);
    assert_clean_failure(
        &[
            "run",
            "--backend",
            "flex",
            "--dataset",
            corrupt.to_str().unwrap(),
        ],
        "train-images-idx3-ubyte: header says 64 x 784 bytes",
    );
    assert_clean_failure(&["run", "--target", "1.5"], "must be in [0, 1), found 1.5");
    assert_clean_failure(
        &["run", "--granularity", "4:4"],
        "N:M needs 1 <= N < M, found 4:4",
    );
    assert_clean_failure(
        &["run", "--layer", "fc1:granularity=block:7x7"],
        "layer fc1: block:7x7 cannot be applied: 7x7 blocks do not tile the 300x784",
    );
    assert_clean_failure(
        &[
            "run",
            "--model",
            "seed-cnn",
            "--layer",
            "conv1:granularity=2:4",
        ],
        "layer conv1: 2:4 cannot be applied",
    );
    assert_clean_failure(&["run", "--preset", "nope"], "unknown preset \"nope\"");
    assert_clean_failure(&["run", "--layer", "conv9:skip"], "layer \"conv9\"");
    assert_clean_failure(&["run", "--lr=-1"], "training.lr must be a positive number");
    assert_clean_failure(
        &[
            "run",
            "--schedule",
            "polynomial",
            "--begin",
            "100",
            "--end",
            "50",
        ],
        "must end after it begins",
    );
    assert_clean_failure(
        &["run", "--schedule", "rigl", "--granularity", "2:4"],
        "2:4 cannot be applied: the rigl schedule exchanges weights",
    );
    assert_clean_failure(
        &["run", "--schedule", "set", "--alpha", "1.5"],
        "(alpha) must be in (0, 1], found 1.5",
    );
    // destinations are checked before any training, each named with its flag
    for flag in ["--save-masks", "--save-checkpoint", "--save-plan"] {
        let started = std::time::Instant::now();
        assert_clean_failure(
            &[
                "run",
                "--preset",
                "lenet300-agp90",
                flag,
                "/nonexistent/dir/m.out",
            ],
            &format!(
                "{flag}: cannot write /nonexistent/dir/m.out: the folder /nonexistent/dir does not exist"
            ),
        );
        assert!(
            started.elapsed().as_secs() < 3,
            "{flag} failed only after training"
        );
    }
    assert_clean_failure(
        &[
            "export",
            "--preset",
            "lenet300-agp90",
            "--out",
            "/proc/spx-export",
        ],
        "--out: cannot write into /proc/spx-export",
    );
    // a cause is said once
    let out = run(&["run", "--preset", "quick-demo", "--target", "1.0"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "error: invalid plan: schedule: final sparsity must be in [0, 1), found 1"
    );
    let plan = dir.join("broken.toml");
    std::fs::write(&plan, "model = \"mlp\"\n[training\nepochs = 2\n").unwrap();
    assert_clean_failure(
        &["run", plan.to_str().unwrap()],
        "broken.toml: not a valid plan",
    );
    assert_clean_failure(
        &["run", dir.join("missing.toml").to_str().unwrap()],
        "missing.toml: cannot read",
    );
    assert_clean_failure(
        &["run", "--backend", "flex", "--lr", "1e30", "--epochs", "1"],
        "training diverged",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_folder_dataset_trains() {
    let dir = temp_dir("folder");
    write_dataset(&dir, false);
    let out = run(&[
        "run",
        "--backend",
        "flex",
        "--dataset",
        dir.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch",
        "16",
        "--begin",
        "2",
        "--end",
        "6",
        "--frequency",
        "2",
        "--json",
    ]);
    let s = summary(&out);
    assert_eq!(s["steps"], 8);
    assert!((s["sparsity"].as_f64().unwrap() - 0.9).abs() < 0.005);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn plans_round_trip_through_files_and_presets_are_listed() {
    let dir = temp_dir("plan");
    let path = dir.join("plan.toml");
    let out = run(&[
        "run",
        "--preset",
        "seed-2by4",
        "--target",
        "0.6",
        "--save-plan",
        path.to_str().unwrap(),
        "--print-plan",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(printed.contains("target = 0.6"), "{printed}");
    let again = run(&["run", path.to_str().unwrap(), "--print-plan"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), printed);
    let list = run(&["presets"]);
    let list = String::from_utf8_lossy(&list.stdout);
    for name in [
        "quick-demo",
        "lenet300-agp90",
        "seed-polynomial",
        "seed-2by4",
    ] {
        assert!(list.contains(name), "{list}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
#[ignore = "needs Debian's dataset-fashion-mnist package (.ci/run installs it)"]
fn fashion_mnist_from_the_debian_package_trains() {
    // 60,000 training images at batch 128
    let out = run(&[
        "run",
        "--dataset",
        "fashion-mnist",
        "--backend",
        "flex",
        "--epochs",
        "1",
        "--begin",
        "200",
        "--end",
        "400",
        "--json",
    ]);
    let s = summary(&out);
    assert_eq!(s["dataset"], "Fashion-MNIST");
    assert_eq!(s["steps"], 469); // ceil(60000 / 128)
    let fin = s["final_accuracy"].as_f64().unwrap();
    eprintln!("fashion-mnist 1 epoch to 90%: final {fin:.4}");
    assert!(fin > 0.75, "final accuracy {fin}");
    let started = events(&out)
        .into_iter()
        .find(|e| e["event"] == "started")
        .unwrap();
    assert_eq!(started["train_examples"], 60_000);
    assert_eq!(started["test_examples"], 10_000);
}

#[test]
fn sensitivity_prints_the_matrix_as_json_and_csv() {
    let out = run(&[
        "sensitivity",
        "--preset",
        "lenet300-agp90",
        "--backend",
        "flex",
        "--dense-epochs",
        "4",
        "--levels",
        "0.5,0.9,0.95",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = events(&out).last().unwrap().clone();
    assert_eq!(last["event"], "sensitivity");
    assert_eq!(last["levels"], serde_json::json!([0.5, 0.9, 0.95]));
    let dense = last["dense_accuracy"].as_f64().unwrap();
    let layers = last["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for l in layers {
        let acc: Vec<f64> = l["accuracy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_f64().unwrap())
            .collect();
        assert_eq!(acc.len(), 3);
        assert!(acc[2] < dense, "{}: 95% costs accuracy", l["name"]);
        assert_eq!(
            l["already_pruned"],
            serde_json::json!([false, false, false])
        );
    }
    // on a network pruned to 90%, the levels it already reached are marked
    let dir = temp_dir("sens-pruned");
    let ckpt = dir.join("pruned.ckpt");
    let trained = run(&[
        "run",
        "--preset",
        "quick-demo",
        "--backend",
        "flex",
        "--save-checkpoint",
        ckpt.to_str().unwrap(),
    ]);
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    let ckpt_arg = ckpt.to_str().unwrap();
    let args = [
        "sensitivity",
        "--checkpoint",
        ckpt_arg,
        "--levels",
        "0.5,0.95",
    ];
    let out = run(&[&args[..], &["--json"]].concat());
    let last = events(&out).last().unwrap().clone();
    for l in last["layers"].as_array().unwrap() {
        assert!((l["sparsity"].as_f64().unwrap() - 0.9).abs() < 0.01, "{l}");
        assert_eq!(l["already_pruned"], serde_json::json!([true, false]), "{l}");
    }
    let text = String::from_utf8_lossy(&run(&args).stdout).into_owned();
    assert!(text.contains("* already pruned"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
    let csv = run(&[
        "sensitivity",
        "--preset",
        "quick-demo",
        "--backend",
        "flex",
        "--levels",
        "0.5",
        "--csv",
    ]);
    let text = String::from_utf8_lossy(&csv.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "layer,0.5");
    assert!(lines[1].starts_with("fc1,0."), "{text}");
    assert_eq!(lines.len(), 4);
}

#[test]
fn sweep_from_a_saved_checkpoint_keeps_unstructured_90_percent_accurate() {
    let dir = temp_dir("sweep");
    let ckpt = dir.join("dense.ckpt");
    // the dense phase of lenet300-agp90: 8 epochs, no pruning
    let out = run(&[
        "run",
        "--preset",
        "lenet300-agp90",
        "--backend",
        "flex",
        "--epochs",
        "8",
        "--target",
        "0",
        "--schedule",
        "constant",
        "--json",
        "--save-checkpoint",
        ckpt.to_str().unwrap(),
    ]);
    let s = summary(&out);
    assert_eq!(s["sparsity"], 0.0);
    let out = run(&[
        "sweep",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--targets",
        "0.9",
        "--granularities",
        "unstructured,2:4",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = events(&out).last().unwrap().clone();
    assert_eq!(last["event"], "sweep");
    let points = last["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    let unstructured = &points[0];
    assert_eq!(unstructured["granularity"], "unstructured");
    let acc = unstructured["accuracy"].as_f64().unwrap();
    eprintln!("sweep unstructured 0.9: {acc:.4}");
    assert!((unstructured["sparsity"].as_f64().unwrap() - 0.9).abs() < 0.005);
    assert!(acc >= 0.93, "unstructured at 0.9: {acc}");
    assert_eq!(points[1]["granularity"], "2:4");
    assert!((points[1]["sparsity"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    // criteria side by side: magnitude keeps what random throws away
    let out = run(&[
        "sweep",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--targets",
        "0.9",
        "--granularities",
        "unstructured",
        "--criteria",
        "magnitude,random",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = events(&out).last().unwrap().clone();
    let points = last["points"].as_array().unwrap();
    let accuracy = |criterion: &str| {
        let p = points.iter().find(|p| p["criterion"] == criterion).unwrap();
        p["accuracy"].as_f64().unwrap()
    };
    let (magnitude, random) = (accuracy("magnitude"), accuracy("random"));
    eprintln!("sweep at 0.9: magnitude {magnitude:.4}, random {random:.4}");
    assert_eq!(points.len(), 2);
    assert!(magnitude > random, "magnitude {magnitude} random {random}");
    assert_clean_failure(
        &[
            "sweep",
            "--checkpoint",
            dir.join("none.ckpt").to_str().unwrap(),
        ],
        "none.ckpt: cannot read",
    );
    assert_clean_failure(
        &["sweep", "--targets", "0.5,1.2"],
        "--targets: sparsity 1.2",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn export_reports_sizes_and_reloads_exactly() {
    let dir = temp_dir("export");
    let out = run(&[
        "export",
        "--preset",
        "lenet300-agp90",
        "--backend",
        "flex",
        "--target",
        "0.8",
        "--out",
        dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = events(&out).last().unwrap().clone();
    assert_eq!(r["event"], "export");
    let dense = r["dense_f32_bytes"].as_f64().unwrap();
    let ratio = |k: &str| r[k].as_f64().unwrap() / dense;
    eprintln!(
        "export at 80%: gzip {:.3}x sparse f32 {:.3}x int8 {:.3}x floor f32 {:.3}x",
        ratio("dense_gzip_bytes"),
        ratio("sparse_f32_bytes"),
        ratio("sparse_int8_bytes"),
        ratio("floor_f32_bytes")
    );
    assert_eq!(dense, 4.0 * 266_610.0);
    assert!(ratio("sparse_f32_bytes") <= 0.25);
    assert!(ratio("sparse_int8_bytes") <= 0.08);
    assert!(ratio("dense_gzip_bytes") > ratio("sparse_f32_bytes"));
    assert!((r["sparsity"].as_f64().unwrap() - 0.8).abs() < 0.005);
    assert_eq!(r["accuracy_f32_reloaded"], r["accuracy"]);
    let int8 = r["accuracy_int8_reloaded"].as_f64().unwrap();
    assert!((int8 - r["accuracy"].as_f64().unwrap()).abs() <= 0.005);
    for f in ["model.safetensors", "model-f32.spx", "model-int8.spx"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    // inspect reads both files back headless: model, plan, and each layer as exported
    for (file, values) in [("model-f32.spx", "f32"), ("model-int8.spx", "int8")] {
        let path = dir.join(file);
        let out = run(&["inspect", path.to_str().unwrap(), "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["values"], values);
        assert_eq!(report["model"], "mlp");
        assert_eq!(report["bytes"], std::fs::metadata(&path).unwrap().len());
        assert!(
            report["plan"]
                .as_str()
                .unwrap()
                .contains("[pruning.schedule]")
        );
        let sparsity = report["sparsity"].as_f64().unwrap();
        assert!(
            (sparsity - r["sparsity"].as_f64().unwrap()).abs() < 1e-9,
            "{report}"
        );
        let params = report["parameters"].as_array().unwrap();
        let weights: Vec<&Value> = params
            .iter()
            .filter(|p| p["granularity"] == "unstructured")
            .collect();
        let names: Vec<&str> = weights
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["fc1.weight", "fc2.weight", "fc3.weight"]);
        assert_eq!(weights[0]["dims"], serde_json::json!([300, 784]));
        for w in &weights {
            let (kept, size) = (w["kept"].as_f64().unwrap(), w["size"].as_f64().unwrap());
            assert!((1.0 - kept / size - w["sparsity"].as_f64().unwrap()).abs() < 1e-12);
            assert!((w["sparsity"].as_f64().unwrap() - 0.8).abs() < 0.01, "{w}");
        }
        let biases = params
            .iter()
            .filter(|p| p["name"].as_str().unwrap().ends_with(".bias"));
        assert!(biases.clone().count() == 3 && biases.into_iter().all(|b| b["storage"] == "dense"));
        let text = run(&["inspect", path.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("fc1.weight") && text.contains("[300, 784]"),
            "{text}"
        );
    }
    // a corrupted file is a clean error naming it
    let spx = dir.join("model-f32.spx");
    let mut bytes = std::fs::read(&spx).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&spx, bytes).unwrap();
    let e = sparsity_explorer::export::read_sparse(&spx)
        .unwrap_err()
        .to_string();
    assert!(e.contains("model-f32.spx") && e.contains("checksum"), "{e}");
    assert_clean_failure(
        &["inspect", spx.to_str().unwrap()],
        "model-f32.spx: checksum",
    );
    let missing = dir.join("missing.spx");
    assert_clean_failure(
        &["inspect", missing.to_str().unwrap()],
        "missing.spx: cannot read",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bench_infer_matches_the_dense_outputs() {
    let out = run(&[
        "bench-infer",
        "--preset",
        "lenet300-agp90",
        "--backend",
        "flex",
        "--seconds",
        "0.1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = events(&out).last().unwrap().clone();
    assert_eq!(r["event"], "bench-infer");
    for k in [
        "dense_batch1_us",
        "sparse_batch1_us",
        "dense_batch128_samples_per_s",
        "sparse_batch128_samples_per_s",
    ] {
        assert!(r[k].as_f64().unwrap() > 0.0, "{k}");
    }
    assert!(r["max_abs_diff"].as_f64().unwrap() <= 1e-4);
    assert!((r["sparsity"].as_f64().unwrap() - 0.9).abs() < 0.005);
    assert_eq!(r["sparse_macs"], 26_620);
    // convolutions run as their weight matrix over image patches, with the same kernels
    let out = run(&[
        "bench-infer",
        "--model",
        "lenet5",
        "--backend",
        "flex",
        "--epochs",
        "2",
        "--seconds",
        "0.1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = events(&out).last().unwrap().clone();
    assert!(r["max_abs_diff"].as_f64().unwrap() <= 1e-4);
    assert!(r["sparse_macs"].as_u64().unwrap() < r["dense_macs"].as_u64().unwrap());
}

#[test]
fn a_network_in_the_plan_trains_and_a_layer_that_does_not_fit_is_named() {
    let dir = temp_dir("stack");
    // `presets NAME` writes the built-in network out as its stack of layers
    let out = run(&["presets", "seed-polynomial"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("[[layers]]") && text.contains("type = \"conv2d\""),
        "{text}"
    );
    let written: sparsity_explorer::plan::ExperimentPlan = toml::from_str(&text).unwrap();
    assert_eq!(
        written.stack().unwrap(),
        sparsity_explorer::model::ModelKind::SeedCnn
            .stack()
            .unwrap()
    );
    // a small network of its own, edited from it, trains from the command line
    let plan = dir.join("mine.toml");
    let mine = text
        .replace("model = \"seed-cnn\"", "model = \"custom\"")
        .replace("out = 1024", "out = 64");
    std::fs::write(&plan, &mine).unwrap();
    let out = run(&[
        "run",
        plan.to_str().unwrap(),
        "--backend",
        "flex",
        "--epochs",
        "1",
        "--target",
        "0.5",
        "--begin",
        "20",
        "--end",
        "40",
        "--json",
    ]);
    let s = summary(&out);
    assert_eq!(s["model"], "custom");
    assert_eq!(s["layers"][2]["shape"], serde_json::json!([64, 3136]));
    // a linear layer straight after a convolution: the error names it and both shapes
    let broken = dir.join("broken.toml");
    let bad = mine.replacen("type = \"flatten\"", "type = \"relu\"", 1);
    std::fs::write(&broken, bad).unwrap();
    assert_clean_failure(
        &["run", broken.to_str().unwrap()],
        "layer fc1 (linear) takes flat features or tokens (add a flatten or a tokens layer before it) but gets [64, 7, 7]",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Rewrites a safetensors file: keys renamed by `rename` (dropped when it gives `None`).
fn rewrite_safetensors(from: &Path, to: &Path, rename: impl Fn(&str) -> Option<String>) {
    use safetensors::SafeTensors;
    use safetensors::tensor::TensorView;
    let bytes = std::fs::read(from).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, TensorView)> = tensors
        .tensors()
        .into_iter()
        .filter_map(|(name, view)| rename(&name).map(|n| (n, view)))
        .collect();
    std::fs::write(to, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn pytorch_weights_are_analysed_as_they_are_and_a_missing_key_is_named() {
    let dir = temp_dir("weights");
    let out = run(&[
        "export",
        "--preset",
        "quick-demo",
        "--backend",
        "flex",
        "--out",
        dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accuracy = events(&out).last().unwrap()["accuracy"].as_f64().unwrap();
    // the same weights keyed as an nn.Sequential(Flatten, Linear, ReLU, Linear, ReLU, Linear)
    let sequential = dir.join("sequential.safetensors");
    rewrite_safetensors(&dir.join("model.safetensors"), &sequential, |name| {
        if name.ends_with("_mask") {
            return None;
        }
        let (layer, param) = name.split_once('.').unwrap();
        let position = match layer {
            "fc1" => 1,
            "fc2" => 3,
            _ => 5,
        };
        Some(format!("{position}.{param}"))
    });
    let out = run(&[
        "sensitivity",
        "--preset",
        "quick-demo",
        "--backend",
        "flex",
        "--weights",
        sequential.to_str().unwrap(),
        "--levels",
        "0.5",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = events(&out).last().unwrap().clone();
    assert_eq!(last["event"], "sensitivity");
    assert_eq!(
        last["dense_accuracy"].as_f64().unwrap(),
        accuracy,
        "the weights' own accuracy, untrained"
    );
    let partial = dir.join("partial.safetensors");
    rewrite_safetensors(&sequential, &partial, |name| {
        (name != "5.bias").then(|| name.to_string())
    });
    assert_clean_failure(
        &[
            "run",
            "--backend",
            "flex",
            "--weights",
            partial.to_str().unwrap(),
        ],
        "partial.safetensors: no tensor fc3.bias (nor 5.bias)",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// CIFAR-10 binary records whose class shows in their colour: class `k` has red `25 k`,
/// green `250 - 25 k`, and noise in blue.
fn cifar_records(count: usize, seed: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 3073);
    for i in 0..count {
        let k = ((i * 7 + seed) % 10) as u8;
        out.push(k);
        out.extend(std::iter::repeat_n(25 * k, 1024));
        out.extend(std::iter::repeat_n(250 - 25 * k, 1024));
        out.extend((0..1024).map(|p| ((p * 31 + i * 17 + seed) % 256) as u8));
    }
    out
}

#[test]
fn cifar_binaries_train_a_colour_network_and_a_mismatched_one_is_named() {
    let dir = temp_dir("cifar");
    std::fs::write(dir.join("data_batch_1.bin"), cifar_records(300, 0)).unwrap();
    std::fs::write(dir.join("test_batch.bin"), cifar_records(100, 3)).unwrap();
    let plan = dir.join("colour.toml");
    std::fs::write(
        &plan,
        r#"
name = "colour"
model = "custom"
input = [3, 32, 32]
[[layers]]
type = "conv2d"
out = 4
kernel = 3
stride = 2
[[layers]]
type = "relu"
[[layers]]
type = "avgpool2d"
kernel = 3
[[layers]]
type = "flatten"
[[layers]]
type = "linear"
out = 10
[training]
epochs = 30
batch = 32
lr = 0.01
[pruning]
granularity = "unstructured"
[pruning.schedule]
kind = "constant"
target = 0.5
begin = 40
"#,
    )
    .unwrap();
    let out = run(&[
        "run",
        plan.to_str().unwrap(),
        "--dataset",
        dir.to_str().unwrap(),
        "--backend",
        "flex",
        "--json",
    ]);
    let s = summary(&out);
    let accuracy = s["final_accuracy"].as_f64().unwrap();
    eprintln!("CIFAR-format colours: {accuracy:.3}");
    assert!(accuracy > 0.5, "{s}");
    assert!(s["dataset"].as_str().unwrap().starts_with("CIFAR-10"));
    // a built-in model takes grey 28 x 28 images
    assert_clean_failure(
        &[
            "run",
            "--backend",
            "flex",
            "--dataset",
            dir.to_str().unwrap(),
        ],
        "the network takes images of [1, 28, 28] but the data's are [3, 32, 32]",
    );
    let mut truncated = cifar_records(10, 1);
    truncated.truncate(5000);
    std::fs::write(dir.join("test_batch.bin"), truncated).unwrap();
    assert_clean_failure(
        &[
            "run",
            plan.to_str().unwrap(),
            "--dataset",
            dir.to_str().unwrap(),
        ],
        "test_batch.bin: 5000 bytes is not a whole number of 3073-byte records",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_image_folder_trains_with_its_own_classes_and_a_damaged_image_is_named() {
    let dir = temp_dir("images");
    // three classes told apart by brightness, in several sizes, grey and colour, PNG and JPEG
    let classes = [("bright", 220u8), ("dark", 30), ("mid", 125)];
    for (split, count) in [("train", 12), ("test", 4)] {
        for (class, level) in classes {
            let folder = dir.join(split).join(class);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..count {
                let (w, h) = (18 + i as u32 * 3, 20 + (i as u32 % 4) * 5);
                let jitter = |x: u32, y: u32| ((x * 7 + y * 13 + i as u32) % 21) as u8;
                let path = folder.join(format!("{i}.{}", if i % 3 == 0 { "jpg" } else { "png" }));
                if i % 2 == 0 {
                    image::GrayImage::from_fn(w, h, |x, y| image::Luma([level + jitter(x, y)]))
                        .save(&path)
                        .unwrap();
                } else {
                    image::RgbImage::from_fn(w, h, |x, y| {
                        let v = level + jitter(x, y);
                        image::Rgb([v, v, v.saturating_sub(10)])
                    })
                    .save(&path)
                    .unwrap();
                }
            }
        }
    }
    let plan = dir.join("tiny.toml");
    std::fs::write(
        &plan,
        r#"
model = "custom"
input = [1, 16, 16]
[[layers]]
type = "flatten"
[[layers]]
type = "linear"
out = 3
[training]
epochs = 40
batch = 8
lr = 0.01
[pruning]
granularity = "unstructured"
[pruning.schedule]
kind = "one-shot"
target = 0.5
at = 20
"#,
    )
    .unwrap();
    let out = run(&[
        "run",
        plan.to_str().unwrap(),
        "--dataset",
        dir.to_str().unwrap(),
        "--backend",
        "flex",
        "--json",
    ]);
    let s = summary(&out);
    eprintln!("image folder: {}", s["final_accuracy"]);
    assert!(
        s["dataset"].as_str().unwrap().ends_with("(3 classes)"),
        "{s}"
    );
    assert!(s["final_accuracy"].as_f64().unwrap() > 0.9, "{s}");
    let started = events(&out)
        .into_iter()
        .find(|e| e["event"] == "started")
        .unwrap();
    assert_eq!(started["train_examples"], 36);
    assert_eq!(started["test_examples"], 12);
    // a damaged image: the error names it
    let bad = dir.join("test").join("dark").join("9.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n not really").unwrap();
    assert_clean_failure(
        &[
            "run",
            plan.to_str().unwrap(),
            "--dataset",
            dir.to_str().unwrap(),
        ],
        "9.png",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_plan_travels_as_one_line_and_a_damaged_line_is_one_clear_error() {
    let dir = temp_dir("plan-line");
    let file = dir.join("mine.toml");
    let plan = run(&["presets", "lenet300-agp90"]);
    std::fs::write(&file, &plan.stdout).unwrap();
    let encoded = run(&["plan", "encode", file.to_str().unwrap()]);
    assert!(
        encoded.status.success(),
        "{}",
        String::from_utf8_lossy(&encoded.stderr)
    );
    let line = String::from_utf8(encoded.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(line.starts_with("spx1.") && line.len() < 600, "{line}");
    let decoded = run(&["plan", "decode", &line]);
    assert!(decoded.status.success());
    let back = sparsity_explorer::plan::ExperimentPlan::from_toml(
        &String::from_utf8(decoded.stdout).unwrap(),
        "decoded",
    )
    .unwrap();
    let original = sparsity_explorer::plan::ExperimentPlan::load(&file).unwrap();
    assert_eq!(back, original);
    let cut = &line[..line.len() - 7];
    assert_clean_failure(&["plan", "decode", cut], "damaged plan string");
    assert_clean_failure(&["plan", "decode", "hello"], "not a plan string");
    assert_clean_failure(
        &["--plan-string", cut],
        "--plan-string: damaged plan string",
    );
    std::fs::remove_dir_all(dir).unwrap();
}
