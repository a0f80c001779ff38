//! The real window, driven through egui_kittest: buttons, sliders and menus by their
//! labels, with the real worker training on the built-in digits behind it. File dialogs are
//! replaced by a picker that answers with prepared paths.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use sparsity_explorer::app::files::{FilePicker, FilePurpose};
use sparsity_explorer::app::{AppCommand, AppOptions, ExplorerApp, PlanEdit};
use sparsity_explorer::masks_file::parse_masks;
use sparsity_explorer::plan::ExperimentPlan;
use sparsity_explorer::prune::{At, Granularity, Schedule};
use sparsity_explorer::train::{BackendChoice, Command, SessionTask};

mod common;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("se-window-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A picker answering every action with a file in `dir` (the dataset folder: `dataset`).
fn picker(dir: &Path, dataset: Option<PathBuf>) -> FilePicker {
    let dir = dir.to_path_buf();
    Arc::new(move |action| {
        Some(match action {
            FilePurpose::OpenPlan | FilePurpose::SavePlan => dir.join("plan.toml"),
            FilePurpose::SaveMasks => dir.join("masks.safetensors"),
            FilePurpose::SaveCheckpoint | FilePurpose::LoadCheckpoint => dir.join("run.ckpt"),
            FilePurpose::OpenDatasetFolder => dataset.clone()?,
            FilePurpose::ExportSensitivity => dir.join("sensitivity.csv"),
            FilePurpose::ExportSweep => dir.join("sweep.csv"),
            FilePurpose::ExportModel => dir.join("export"),
            FilePurpose::OpenSparseModel => dir.join("export").join("model-int8.spx"),
            FilePurpose::ExportSweepJson => dir.join("sweeps.json"),
            FilePurpose::OpenWeights => dir.join("weights.safetensors"),
            FilePurpose::OpenOnnx => {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/concat-cnn.onnx")
            }
        })
    })
}

fn plan() -> ExperimentPlan {
    let mut plan = ExperimentPlan::preset("quick-demo").unwrap();
    plan.training.backend = BackendChoice::Flex;
    plan.training.epochs = 6;
    plan.training.eval_every = 20;
    plan.pruning.schedule = Schedule::Constant {
        target: 0.5,
        begin: At::Step(10),
        end: None,
        frequency: 10,
    };
    plan
}

fn harness(picker: FilePicker, plan: ExperimentPlan) -> Harness<'static, ExplorerApp> {
    let mut h = Harness::builder()
        .with_size([1500.0, 950.0])
        .build_eframe(move |cc| {
            let mut app = ExplorerApp::with_picker(cc, AppOptions::default(), picker);
            app.execute(AppCommand::EditPlan(PlanEdit::Replace(Box::new(plan))));
            app
        });
    h.step();
    h
}

/// Runs frames until `cond` holds, failing after `secs`.
fn wait(
    h: &mut Harness<'static, ExplorerApp>,
    secs: u64,
    what: &str,
    cond: impl Fn(&ExplorerApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        h.step();
        if cond(h.state()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; banner: {:?}",
            h.state().state.banner.error
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn click(h: &mut Harness<'static, ExplorerApp>, label: &str) {
    h.get_by_label(label).click();
    // a click lands on the next frame; a menu opens on the one after
    h.run_steps(3);
}

fn set_target(h: &mut Harness<'static, ExplorerApp>, value: f64) {
    h.get_by_role_and_label(Role::Slider, "target sparsity")
        .set_value_accesskit(value);
    h.step();
}

#[test]
fn start_from_the_window_shows_progress_masks_and_plots() {
    let dir = temp_dir("start");
    let mut h = harness(picker(&dir, None), plan());
    click(&mut h, "Start");
    wait(&mut h, 120, "progress and mask snapshots", |app| {
        app.state.status.step > 20
            && app.state.status.prune_events > 0
            && app.state.layers.len() == 3
            && app.state.layers.iter().all(|l| l.snapshot.is_some())
    });
    let app = h.state();
    assert_eq!(app.state.status.backend.as_ref().unwrap().backend, "flex");
    assert!(!app.state.history.loss.is_empty());
    assert!(!app.state.history.accuracy_vs_sparsity.is_empty());
    assert!(
        app.state
            .layers
            .iter()
            .all(|l| (l.sparsity - 0.5).abs() < 0.01)
    );
    // the tiles and their layout toggles are on screen
    assert!(h.query_by_label("inputs 28x28").is_some());
    assert!(
        !h.query_all_by_label_contains("50.0% pruned")
            .collect::<Vec<_>>()
            .is_empty()
    );
    click(&mut h, "Stop");
    wait(&mut h, 60, "the run to stop", |app| {
        app.state.status.summary.is_some()
    });
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_target_slider_reaches_the_next_pruning_step() {
    let dir = temp_dir("slider");
    let mut h = harness(picker(&dir, None), plan());
    click(&mut h, "Start");
    wait(&mut h, 120, "a first pruning step", |app| {
        app.state.status.prune_events > 0
    });
    set_target(&mut h, 0.7);
    assert_eq!(
        h.state()
            .state
            .plan
            .edited()
            .pruning
            .schedule
            .final_target(),
        0.7
    );
    assert_eq!(
        h.state()
            .state
            .plan
            .sent()
            .unwrap()
            .pruning
            .schedule
            .final_target(),
        0.7,
        "the change is sent in the same frame"
    );
    wait(&mut h, 120, "a pruning step at the new target", |app| {
        app.state.status.last_prune_target == Some(0.7)
    });
    wait(&mut h, 60, "layers at 70%", |app| {
        app.state
            .layers
            .iter()
            .all(|l| (l.sparsity - 0.7).abs() < 0.01)
    });
    click(&mut h, "Stop");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_plan_is_checked_once_per_edit_and_never_by_drawing() {
    let dir = temp_dir("checks");
    let mut h = harness(picker(&dir, None), plan());
    let first = h.state().state.plan.check().number;
    h.run_steps(20);
    assert_eq!(
        h.state().state.plan.check().number,
        first,
        "frames without edits check nothing"
    );
    set_target(&mut h, 0.7);
    h.run_steps(20);
    assert_eq!(
        h.state()
            .state
            .plan
            .edited()
            .pruning
            .schedule
            .final_target(),
        0.7
    );
    assert_eq!(
        h.state().state.plan.check().number,
        first + 1,
        "one edit, one check"
    );
    // an invalid plan shows its error under the controls, from that one check
    click(&mut h, "Network");
    click(&mut h, "Edit as layers");
    click(&mut h, "+ conv2d");
    let checks = h.state().state.plan.check().number;
    h.run_steps(20);
    assert_eq!(h.state().state.plan.check().number, checks);
    assert_eq!(
        h.query_all_by_label_contains("takes an image").count(),
        2,
        "the error is shown at the layer, and under the controls"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn switching_to_two_of_four_mid_run_shows_in_the_saved_masks() {
    let dir = temp_dir("nm");
    let mut h = harness(picker(&dir, None), plan());
    click(&mut h, "Start");
    wait(&mut h, 120, "a first pruning step", |app| {
        app.state.status.prune_events > 0
    });
    click(&mut h, "N:M");
    assert_eq!(
        h.state().state.plan.edited().pruning.granularity,
        Granularity::NOfM { n: 2, m: 4 }
    );
    let before = h.state().state.status.prune_events;
    wait(&mut h, 120, "the next pruning step", |app| {
        app.state.status.prune_events > before
            && app.state.layers.iter().all(|l| l.info.granularity == "2:4")
    });
    click(&mut h, "Pause");
    wait(&mut h, 30, "pause", |app| app.state.status.paused);
    click(&mut h, "File");
    click(&mut h, "Save masks…");
    let path = dir.join("masks.safetensors");
    wait(&mut h, 60, "the masks file", |app| {
        app.state
            .notices
            .iter()
            .any(|n| n.starts_with("masks saved"))
    });
    let (masks, _) = parse_masks(&std::fs::read(&path).unwrap(), &path).unwrap();
    assert_eq!(masks.len(), 3);
    for m in &masks {
        for group in m.mask.chunks(4) {
            assert_eq!(group.iter().filter(|&&k| k == 0).count(), 2, "{}", m.name);
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn pause_resume_step_and_space() {
    let dir = temp_dir("pause");
    let mut h = harness(picker(&dir, None), plan());
    click(&mut h, "Start");
    wait(&mut h, 60, "training", |app| app.state.status.step > 5);
    click(&mut h, "Pause");
    wait(&mut h, 30, "pause", |app| app.state.status.paused);
    let paused_at = h.state().state.status.step;
    for _ in 0..30 {
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        h.state().state.status.step,
        paused_at,
        "trained while paused"
    );
    click(&mut h, "Step");
    wait(&mut h, 30, "one step", |app| {
        app.state.status.step == paused_at + 1
    });
    h.key_press(eframe::egui::Key::Space);
    wait(&mut h, 30, "Space resumes", |app| {
        !app.state.status.paused && app.state.status.step > paused_at + 3
    });
    h.key_press(eframe::egui::Key::Space);
    wait(&mut h, 30, "Space pauses", |app| app.state.status.paused);
    click(&mut h, "Resume");
    wait(&mut h, 30, "resume", |app| !app.state.status.paused);
    click(&mut h, "Stop");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_corrupt_dataset_gives_a_banner_and_the_window_still_works() {
    let dir = temp_dir("corrupt");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(data.join(name), b"\x00\x00\x08\x03 not really").unwrap();
    }
    let mut h = harness(picker(&dir, Some(data.clone())), plan());
    click(&mut h, "Open folder…");
    wait(&mut h, 30, "the folder to be chosen", |app| {
        app.state.plan.edited().dataset.to_string() == data.display().to_string()
    });
    click(&mut h, "Start");
    wait(&mut h, 60, "an error banner", |app| {
        app.state.banner.error.is_some()
    });
    let message = h.state().state.banner.error.clone().unwrap();
    assert!(message.contains("train-images-idx3-ubyte"), "{message}");
    assert!(
        h.query_by_label_contains("train-images-idx3-ubyte")
            .is_some()
    );
    click(&mut h, "Dismiss");
    assert!(h.state().state.banner.error.is_none());
    click(&mut h, "built-in MNIST");
    click(&mut h, "Start");
    wait(&mut h, 60, "a run on the built-in data", |app| {
        app.state.status.step > 5
    });
    click(&mut h, "Stop");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn plans_save_and_load_through_the_file_menu() {
    let dir = temp_dir("plan");
    let original = plan();
    let mut h = harness(picker(&dir, None), original.clone());
    click(&mut h, "File");
    click(&mut h, "Save plan…");
    wait(&mut h, 30, "the plan file", |app| {
        app.state
            .notices
            .iter()
            .any(|n| n.starts_with("plan saved"))
    });
    set_target(&mut h, 0.3);
    click(&mut h, "global");
    assert_ne!(h.state().state.plan.edited(), &original);
    click(&mut h, "File");
    click(&mut h, "Open plan…");
    wait(&mut h, 30, "the plan to load", |app| {
        app.state
            .notices
            .iter()
            .any(|n| n.starts_with("plan loaded"))
    });
    assert_eq!(h.state().state.plan.edited(), &original);
    let on_disk = ExperimentPlan::load(&dir.join("plan.toml")).unwrap();
    assert_eq!(on_disk, original);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn empty_plots_say_what_will_fill_them_and_n_of_m_says_why_the_slider_does_not_apply() {
    let dir = temp_dir("hints");
    let mut h = harness(picker(&dir, None), plan());
    use sparsity_explorer::app::plots::hints;
    for hint in [
        hints::LOSS,
        hints::ACCURACY,
        hints::ACCURACY_VS_SPARSITY,
        hints::LAYERS,
        hints::HISTOGRAM,
    ] {
        assert!(h.query_by_label(hint).is_some(), "{hint}");
    }
    click(&mut h, "N:M");
    assert!(
        h.query_by_label_contains("the target slider does not apply")
            .is_some()
    );
    assert!(
        h.get_by_role_and_label(Role::Slider, "target sparsity")
            .accesskit_node()
            .is_disabled()
    );
    click(&mut h, "Start");
    wait(&mut h, 60, "a pruning step", |app| {
        app.state.status.prune_events > 0
    });
    assert!(
        h.query_by_label(hints::LOSS).is_none(),
        "the loss plot took over"
    );
    // presenter zoom: Ctrl + makes everything larger, Ctrl - smaller again
    let zoom = h.ctx.zoom_factor();
    h.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::Plus);
    h.run_steps(2);
    assert!(h.ctx.zoom_factor() > zoom, "Ctrl + zooms in");
    h.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::Minus);
    h.run_steps(2);
    assert!(
        (h.ctx.zoom_factor() - zoom).abs() < 1e-3,
        "Ctrl - zooms back"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn copy_plan_and_paste_plan_carry_a_plan_as_one_line() {
    let dir = temp_dir("planline");
    let original = plan();
    let mut h = harness(picker(&dir, None), original.clone());
    click(&mut h, "File");
    click(&mut h, "Copy plan");
    let line = h
        .state()
        .state
        .copied_plan
        .clone()
        .expect("a line was copied");
    assert!(line.starts_with("spx1."));
    set_target(&mut h, 0.3);
    assert_ne!(h.state().state.plan.edited(), &original);
    click(&mut h, "File");
    click(&mut h, "Paste plan…");
    let field = h.get_by_role(Role::TextInput);
    field.focus();
    field.type_text(&line);
    h.run_steps(2);
    click(&mut h, "Open plan");
    assert_eq!(h.state().state.plan.edited(), &original);
    assert!(h.state().state.banner.plan_string_prompt.is_none());
    // a damaged line says so and keeps the plan
    click(&mut h, "File");
    click(&mut h, "Paste plan…");
    let field = h.get_by_role(Role::TextInput);
    field.focus();
    field.type_text(&line[..line.len() / 2]);
    h.run_steps(2);
    click(&mut h, "Open plan");
    let banner = h.state().state.banner.error.clone().unwrap_or_default();
    assert!(banner.contains("damaged plan string"), "{banner}");
    assert_eq!(h.state().state.plan.edited(), &original);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
#[ignore = "needs a CJK font, such as Debian's fonts-wqy-zenhei (.ci/run installs it)"]
fn the_window_speaks_chinese_with_real_glyphs_and_nothing_left_in_english() {
    use eframe::egui::FontId;
    use sparsity_explorer::app::fonts::{CJK_FONTS, find_cjk_font};
    let dir = temp_dir("zh");
    let mut h = harness(picker(&dir, None), plan());
    click(&mut h, "View");
    click(&mut h, "Chinese (Simplified)");
    if find_cjk_font(CJK_FONTS).is_none() {
        // without a font the window says so and stays in English (never tofu)
        assert!(
            h.query_by_label_contains("Chinese needs a CJK font")
                .is_some()
        );
        assert!(h.query_by_label("Start").is_some());
        panic!("no CJK font installed: .ci/run installs fonts-wqy-zenhei for this test");
    }
    h.run_steps(2);
    assert!(h.query_by_label("开始").is_some());
    let glyphs = h
        .ctx
        .fonts_mut(|f| f.has_glyphs(&FontId::proportional(14.0), "开始剪枝稀疏度"));
    assert!(glyphs, "the CJK font draws the labels");
    // every part of the window, in Chinese
    for tab in ["敏感度", "扫描", "导出"] {
        click(&mut h, tab);
    }
    // "训练" names both the tab and the section: back to the tab directly
    h.state_mut().state.tab = sparsity_explorer::app::state::Tab::Training;
    h.run_steps(2);
    click(&mut h, "文件");
    h.key_press(eframe::egui::Key::Escape);
    h.run_steps(2);
    click(&mut h, "课程");
    click(&mut h, "2. 非结构化、N:M、块与通道");
    assert!(
        h.query_by_label("试一试").is_some(),
        "the lesson panel speaks Chinese"
    );
    click(&mut h, "开始");
    wait(&mut h, 60, "a pruning step", |app| {
        app.state.status.prune_events > 0
    });
    h.run_steps(3);
    let missed = sparsity_explorer::i18n::untranslated();
    assert!(missed.is_empty(), "shown in English: {missed:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn without_a_cjk_font_chinese_is_refused_in_words_and_nothing_is_drawn_as_boxes() {
    let dir = temp_dir("nofont");
    let mut h = harness(picker(&dir, None), plan());
    h.state_mut().font_candidates = &[("/nonexistent/cjk.ttc", 0)];
    click(&mut h, "View");
    // named in Latin letters: the window cannot draw Chinese yet (kittest fails on any
    // missing glyph, so drawing it here would fail the test)
    click(&mut h, "Chinese (Simplified)");
    h.run_steps(2);
    assert_eq!(
        h.state().state.language,
        sparsity_explorer::i18n::Language::En
    );
    assert!(
        h.query_all_by_label_contains("Chinese needs a CJK font and none is installed")
            .count()
            >= 1
    );
    assert!(h.query_by_label("Start").is_some(), "still in English");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_accuracy_against_sparsity_plot_fills_in_while_pruning_with_both_kinds_of_points() {
    let dir = temp_dir("curve");
    let mut plan = ExperimentPlan::preset("quick-demo").unwrap();
    plan.training.backend = BackendChoice::Flex;
    let mut h = harness(picker(&dir, None), plan);
    click(&mut h, "Start");
    wait(&mut h, 300, "the run to finish", |app| {
        app.state.status.summary.is_some()
    });
    h.run_steps(3);
    let history = &h.state().state.history;
    // the pruning levels the run reached, from the schedule plot's achieved points
    let levels: Vec<f64> = history.achieved.points().iter().map(|p| p[1]).collect();
    let first = levels.iter().copied().fold(f64::INFINITY, f64::min);
    let last = levels.iter().copied().fold(0.0, f64::max);
    assert!(last > first + 0.5, "pruned from {first} to {last}");
    let points = history.accuracy_vs_sparsity.points();
    let inside = points
        .iter()
        .filter(|p| p[0] > first + 1e-6 && p[0] < last - 1e-6)
        .count();
    assert!(
        inside >= 5,
        "{inside} of {} points between the first and the last level",
        points.len()
    );
    let (after, recovered) = (history.after_cut.points(), history.recovered.points());
    assert!(after.len() >= 5, "{} points right after a cut", after.len());
    assert!(
        recovered.len() >= 5,
        "{} points after recovery",
        recovered.len()
    );
    assert_eq!(
        after.len() + recovered.len() + history.scheduled.points().len(),
        points.len(),
        "every point is of one kind"
    );
    // both kinds are named in the plot's legend, and the histogram keeps the last cut's line
    assert!(h.query_by_label("right after a cut").is_some());
    assert!(h.query_by_label("after recovery").is_some());
    assert!(
        h.query_all_by_label_contains("threshold of the last cut (step")
            .next()
            .is_some()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_lesson_ticks_its_steps_as_the_run_shows_them() {
    let lesson = sparsity_explorer::lessons::find("granularity").unwrap();
    let mut h = Harness::builder()
        .with_size([1500.0, 950.0])
        .build_eframe(move |cc| {
            let options = AppOptions {
                lesson: Some(lesson.clone()),
                ..AppOptions::default()
            };
            let mut app =
                ExplorerApp::with_picker(cc, options, picker(&std::env::temp_dir(), None));
            let mut training = app.state.plan.edited().training.clone();
            training.backend = BackendChoice::Flex;
            app.execute(AppCommand::EditPlan(PlanEdit::Training(Box::new(training))));
            app
        });
    h.step();
    let app = h.state();
    let progress = app.state.lesson.as_ref().expect("opened on the lesson");
    assert_eq!(app.state.plan.edited(), &{
        let mut p = progress.lesson.plan().unwrap();
        p.training.backend = BackendChoice::Flex;
        p
    });
    assert!(
        app.state.plan.edited().training.pace.is_some(),
        "a lesson's run is paced"
    );
    assert!(
        h.query_all_by_label_contains("Paced at").next().is_some(),
        "the window says why the run is paced"
    );
    assert!(
        h.query_by_label("Unstructured, N:M, blocks and channels")
            .is_some()
    );
    // the first step waits for a 2:4 pruning step: an unstructured run does not tick it
    click(&mut h, "Start");
    wait(&mut h, 60, "an unstructured pruning step", |app| {
        app.state.status.prune_events > 0
    });
    assert!(!h.state().state.lesson.as_ref().unwrap().done[0]);
    click(&mut h, "N:M");
    wait(&mut h, 60, "the 2:4 step to tick", |app| {
        app.state.lesson.as_ref().is_some_and(|p| p.done[0])
    });
    let progress = h.state().state.lesson.clone().unwrap();
    assert_eq!(progress.current(), Some(1), "the next step waits");
    click(&mut h, "Stop");
    click(&mut h, "Next");
    assert_eq!(
        h.state().state.lesson.as_ref().unwrap().lesson.id,
        "schedules"
    );
}

#[test]
fn a_run_on_a_served_device_that_goes_away_continues_locally_from_the_window() {
    let mut server = common::Server::start(None);
    let url = server.url.clone();
    let dir = temp_dir("remote");
    let mut p = plan();
    p.training.epochs = 40;
    let mut h = harness(picker(&dir, None), p);
    click(&mut h, "remote");
    let field = h.get_by_role_and_label(Role::TextInput, "server");
    field.focus();
    field.type_text(&url);
    h.run_steps(2);
    assert_eq!(
        h.state().state.plan.edited().training.remote.as_deref(),
        Some(url.as_str())
    );
    click(&mut h, "Start");
    wait(&mut h, 60, "training on the server", |app| {
        app.state.status.step > 30
            && app
                .state
                .status
                .backend
                .as_ref()
                .is_some_and(|b| b.backend == "remote")
    });
    // the status bar names the server's device
    assert!(
        h.query_by_label_contains(&format!("remote · CPU (flex) on {url}"))
            .is_some()
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
    wait(&mut h, 60, "the offer to continue", |app| {
        app.state.banner.remote_lost.is_some()
    });
    click(&mut h, "Continue locally");
    wait(&mut h, 60, "training on flex again", |app| {
        app.state.status.active
            && app
                .state
                .status
                .backend
                .as_ref()
                .is_some_and(|b| b.backend == "flex")
    });
    let kept = h.state().state.status.step;
    wait(&mut h, 60, "local steps", |app| {
        app.state.status.step > kept + 5
    });
    click(&mut h, "Stop");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn without_a_dialog_backend_the_window_says_so_and_asks_for_paths() {
    let dir = temp_dir("nodialogs");
    let original = plan();
    original.save(&dir.join("mine.toml")).unwrap();
    let mut h = Harness::builder()
        .with_size([1500.0, 950.0])
        .build_eframe(|cc| {
            let mut app = ExplorerApp::without_dialogs(cc, AppOptions::default());
            let preset = ExperimentPlan::preset("lenet300-agp90").unwrap();
            app.execute(AppCommand::EditPlan(PlanEdit::Replace(Box::new(preset))));
            app
        });
    h.step();
    assert!(
        h.query_by_label_contains("No file dialogs on this desktop")
            .is_some(),
        "the banner says what is missing"
    );
    assert!(h.query_by_label_contains("apt install zenity").is_some());
    click(&mut h, "File");
    click(&mut h, "Open plan…");
    assert!(h.query_by_label_contains("Path (plan to open)").is_some());
    let field = h.get_by_role(Role::TextInput);
    field.focus();
    field.type_text(&dir.join("mine.toml").to_string_lossy());
    h.run_steps(2);
    click(&mut h, "OK");
    wait(&mut h, 30, "the typed plan to load", |app| {
        app.state
            .notices
            .iter()
            .any(|n| n.starts_with("plan loaded"))
    });
    assert_eq!(h.state().state.plan.edited(), &original);
    assert!(
        h.state().state.banner.path_prompt.is_none(),
        "the field closes"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_checkpoint_saved_from_the_window_resumes_there() {
    let dir = temp_dir("ckpt");
    let mut h = harness(picker(&dir, None), plan());
    click(&mut h, "Start");
    wait(&mut h, 60, "a pruning step", |app| {
        app.state.status.prune_events > 1
    });
    click(&mut h, "Pause");
    wait(&mut h, 30, "pause", |app| app.state.status.paused);
    let step = h.state().state.status.step;
    let points = h.state().state.history.loss.points().len();
    click(&mut h, "File");
    click(&mut h, "Save checkpoint…");
    wait(&mut h, 30, "the checkpoint", |app| {
        app.state
            .notices
            .iter()
            .any(|n| n.starts_with("checkpoint saved"))
    });
    click(&mut h, "Reset");
    assert!(h.state().state.layers.is_empty());
    click(&mut h, "File");
    click(&mut h, "Load checkpoint…");
    wait(&mut h, 60, "the checkpoint to load", |app| {
        app.state
            .notices
            .iter()
            .any(|n| n.contains("loaded at step"))
            && app.state.layers.iter().all(|l| l.snapshot.is_some())
            && !app.state.layers.is_empty()
    });
    assert_eq!(h.state().state.status.step, step);
    assert_eq!(h.state().state.history.loss.points().len(), points);
    assert!(h.state().state.status.paused);
    click(&mut h, "Resume");
    wait(&mut h, 60, "training to go on", |app| {
        app.state.status.step > step + 5
    });
    click(&mut h, "Stop");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sensitivity_from_the_window_fills_the_table_and_sets_per_layer_targets() {
    let dir = temp_dir("sens");
    let mut h = harness(picker(&dir, None), plan());
    click(&mut h, "Start");
    wait(&mut h, 60, "some training", |app| {
        app.state.status.step > 40
    });
    click(&mut h, "Sensitivity");
    click(&mut h, "Run sensitivity");
    wait(&mut h, 120, "the analysis", |app| {
        app.state.analysis.sensitivity_progress.is_none()
            && app.state.analysis.sensitivity.as_ref().is_some_and(|r| {
                r.layers
                    .iter()
                    .all(|l| l.accuracy.iter().all(|a| a.is_some()))
            })
    });
    assert!(
        h.state().state.status.paused,
        "training pauses for the analysis"
    );
    assert!(h.query_by_label("largest level within tolerance").is_some());
    let result = h.state().state.analysis.sensitivity.clone().unwrap();
    assert_eq!(result.layers.len(), 3);
    assert_eq!(result.levels.len(), 10);
    // the run had pruned every layer to 50%: the levels up to it are marked, not measured anew
    for l in &result.layers {
        assert!(
            (l.sparsity - 0.5).abs() < 0.01,
            "{}: {}",
            l.name,
            l.sparsity
        );
        assert!(l.already_pruned(0.5) && !l.already_pruned(0.6));
    }
    assert_eq!(
        h.query_all_by_label_contains("already pruned to 50%: levels up to it change nothing")
            .count(),
        3
    );
    let tolerated = result.tolerated(0.01);
    click(&mut h, "Use as per-layer targets");
    for (name, level) in tolerated {
        let o = h
            .state()
            .state
            .plan
            .edited()
            .pruning
            .layers
            .get(&name)
            .cloned();
        assert_eq!(o.and_then(|o| o.target), level, "{name}");
    }
    click(&mut h, "Sweeps");
    h.state_mut().state.analysis.targets_text = "0.5, 0.8".into();
    h.state_mut().state.analysis.granularities_text = "unstructured, 2:4".into();
    h.state_mut().state.analysis.fine_tune_epochs = 0.3;
    click(&mut h, "Run sweep");
    wait(&mut h, 120, "the sweep", |app| {
        app.state.analysis.sweep_progress.is_none()
            && app
                .state
                .analysis
                .sweeps
                .first()
                .is_some_and(|s| s.result.points.len() == 3)
    });
    let sweep = &h.state().state.analysis.sweeps[0];
    assert_eq!(sweep.name, "sweep 1");
    assert!((sweep.result.points[1].sparsity - 0.8).abs() < 0.01);
    assert_eq!(sweep.result.points[2].granularity, "2:4");
    click(&mut h, "Export CSV…");
    let csv = dir.join("sweep.csv");
    wait(&mut h, 30, "the CSV", |app| {
        app.state
            .notices
            .iter()
            .any(|n| n.starts_with("written to"))
    });
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("sweep,granularity,criterion,target,sparsity,accuracy\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_export_tab_writes_the_files_and_shows_their_sizes() {
    let dir = temp_dir("export");
    let mut p = plan();
    p.training.epochs = 2;
    let mut h = harness(picker(&dir, None), p);
    click(&mut h, "Start");
    wait(&mut h, 60, "the run to finish", |app| {
        app.state.status.summary.is_some()
    });
    click(&mut h, "Export");
    click(&mut h, "Export to folder…");
    wait(&mut h, 60, "the export", |app| {
        app.state.export_report.is_some()
    });
    let r = h.state().state.export_report.clone().unwrap();
    assert!(r.sizes.sparse_f32_bytes < r.sizes.dense_f32_bytes);
    assert!(r.sizes.sparse_int8_bytes < r.sizes.sparse_f32_bytes);
    assert_eq!(r.accuracy_f32_reloaded, r.accuracy);
    assert!(dir.join("export").join("model-int8.spx").is_file());
    assert!(h.query_by_label("reloaded int8").is_some());
    click(&mut h, "Benchmark inference");
    wait(&mut h, 60, "inference timings", |app| {
        app.state.infer_bench.is_some()
    });
    let b = h.state().state.infer_bench.clone().unwrap();
    assert!(b.max_abs_diff <= 1e-4);
    assert!(b.sparse_macs < b.dense_macs);
    assert!(h.query_by_label("batch 1 latency").is_some());
    // the exported file opens again, masks and all
    let sparsity = r.sizes.sparsity;
    click(&mut h, "File");
    click(&mut h, "Open sparse model…");
    wait(&mut h, 60, "the sparse model", |app| {
        app.state
            .notices
            .iter()
            .any(|n| n.starts_with("sparse model"))
            && !app.state.layers.is_empty()
            && app.state.layers.iter().all(|l| l.snapshot.is_some())
    });
    for l in &h.state().state.layers {
        assert!(
            (l.sparsity - sparsity).abs() < 0.01,
            "{}: {}",
            l.info.name,
            l.sparsity
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_onnx_model_opened_from_the_file_menu_becomes_the_network_and_trains() {
    let dir = temp_dir("onnx");
    let mut h = harness(picker(&dir, None), plan());
    click(&mut h, "File");
    click(&mut h, "Open ONNX model…");
    wait(&mut h, 30, "the ONNX model", |app| {
        app.state.plan.edited().onnx.is_some()
    });
    let p = h.state().state.plan.edited().clone();
    assert_eq!(p.model, sparsity_explorer::model::ModelKind::Custom);
    let names: Vec<&str> = p.layers.iter().filter_map(|l| l.name.as_deref()).collect();
    assert!(
        names.contains(&"stem") && names.contains(&"fc3"),
        "{names:?}"
    );
    click(&mut h, "Start");
    wait(&mut h, 120, "training the imported network", |app| {
        app.state.status.step > 5 && app.state.layers.iter().any(|l| l.info.name == "mix")
    });
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_worker_that_dies_is_replaced_and_the_plan_and_plots_stay() {
    let dir = temp_dir("dead-worker");
    let mut h = harness(picker(&dir, None), plan());
    click(&mut h, "Start");
    wait(&mut h, 120, "some progress", |app| {
        app.state.status.step > 10 && !app.state.history.loss.is_empty()
    });
    // the worker thread ends without the window asking for it
    assert!(h.state().worker().send(Command::Shutdown));
    wait(&mut h, 5, "the dead worker to be noticed", |app| {
        app.state
            .banner
            .error
            .as_deref()
            .is_some_and(|b| b.contains("stopped unexpectedly"))
    });
    let app = h.state();
    assert!(app.worker().is_alive(), "a new worker runs");
    assert!(!app.state.status.active);
    assert!(!app.state.history.loss.is_empty(), "the plots stay");
    assert_eq!(app.state.plan.edited(), &plan(), "the plan stays");
    assert!(h.query_by_label_contains("stopped unexpectedly").is_some());
    // and the new worker trains
    click(&mut h, "Start");
    wait(&mut h, 120, "training on the new worker", |app| {
        app.state.status.step > 10
    });
    click(&mut h, "Stop");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_worker_that_does_not_answer_is_reported_and_can_be_replaced() {
    let dir = temp_dir("silent-worker");
    let mut h = harness(picker(&dir, None), plan());
    // a task that keeps the worker busy without checking in, like a long GPU compilation
    let busy = |ms| {
        Command::WithSession(SessionTask(Box::new(move |_| {
            std::thread::sleep(Duration::from_millis(ms))
        })))
    };
    h.state().worker().send(busy(2_500));
    wait(&mut h, 5, "the silence to be reported", |app| {
        app.state.banner.worker_silent.is_some()
    });
    assert!(h.query_by_label_contains("has not answered").is_some());
    wait(&mut h, 10, "the worker to answer again", |app| {
        app.state.banner.worker_silent.is_none()
    });
    assert!(
        h.state().state.banner.error.is_none(),
        "a slow worker is not an error"
    );
    // one that stays silent can be left for a new one
    h.state().worker().send(busy(30_000));
    wait(&mut h, 5, "the silence to be reported", |app| {
        app.state.banner.worker_silent.is_some()
    });
    click(&mut h, "Start a new worker");
    let app = h.state();
    assert!(app.state.banner.worker_silent.is_none());
    assert!(app.worker().is_alive());
    assert!(app.worker().silent_for() < Duration::from_secs(1));
    click(&mut h, "Start");
    wait(&mut h, 120, "training on the new worker", |app| {
        app.state.status.step > 10
    });
    click(&mut h, "Stop");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_network_editor_shows_shapes_and_the_error_at_the_layer() {
    let dir = temp_dir("network-editor");
    let mut h = harness(picker(&dir, None), plan());
    click(&mut h, "Network");
    click(&mut h, "Edit as layers");
    {
        let plan = h.state().state.plan.edited();
        assert_eq!(plan.model, sparsity_explorer::model::ModelKind::Custom);
        assert_eq!(plan.layers.len(), 6, "the mlp written out");
    }
    // each layer's output shape and parameter count
    assert!(h.query_by_label("[784]").is_some());
    assert_eq!(h.query_all_by_label("[300]").count(), 2, "fc1 and its ReLU");
    assert!(h.query_by_label("235500 params").is_some());
    assert!(h.query_by_label("266610 parameters").is_some());
    // a convolution after the flat output: the error shows at that layer
    click(&mut h, "+ conv2d");
    assert_eq!(h.state().state.plan.edited().layers.len(), 7);
    assert_eq!(
        h.query_all_by_label_contains("layer conv2d6 (conv2d) takes an image")
            .count(),
        2,
        "the error is shown at the layer, and under the controls"
    );
    click(&mut h, "Start");
    let banner = h.state().state.banner.error.clone().unwrap_or_default();
    assert!(banner.contains("conv2d6"), "{banner}");
    std::fs::remove_dir_all(dir).unwrap();
}
