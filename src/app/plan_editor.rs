//! The left panel: every part of the experiment plan as a control that teaches its concept.

use std::collections::BTreeMap;

use eframe::egui;
use egui::{DragValue, Slider, Ui};

use super::command::AppCommand;
use super::files::FilePurpose;
use crate::data::{DatasetSource, FASHION_MNIST_DIR};
use crate::i18n::{t, tf};
use crate::model::ModelKind;
use crate::plan::ExperimentPlan;
use crate::prune::{
    At, BlockScore, Criterion, Dynamic, Granularity, LayerOverride, LayerSpec, Schedule,
    ScheduleKind, Scope,
};
use crate::train::BackendChoice;

use super::tips;

/// A moment edited in epochs (fractional) or steps.
fn at_editor(
    ui: &mut Ui,
    label: &'static str,
    at: &mut At,
    tip: &'static str,
    steps_per_epoch: u64,
) {
    let (label, tip) = (t(label), t(tip));
    ui.horizontal(|ui| {
        ui.label(label).on_hover_text(tip);
        match at {
            At::Epoch { epoch } => {
                ui.add(
                    DragValue::new(epoch)
                        .range(0.0..=1000.0)
                        .speed(0.1)
                        .suffix(t(" ep")),
                )
                .on_hover_text(tip);
                if ui
                    .small_button(t("steps"))
                    .on_hover_text("Give this moment in steps")
                    .clicked()
                {
                    *at = At::Step((*epoch * steps_per_epoch as f64).round() as u64);
                }
            }
            At::Step(step) => {
                ui.add(
                    DragValue::new(step)
                        .range(0..=10_000_000)
                        .suffix(t(" steps")),
                )
                .on_hover_text(tip);
                if ui
                    .small_button(t("epochs"))
                    .on_hover_text("Give this moment in epochs")
                    .clicked()
                {
                    *at = At::Epoch {
                        epoch: *step as f64 / steps_per_epoch.max(1) as f64,
                    };
                }
            }
        }
    });
}

/// A label and the value it names (so screen readers and tests find the value by it).
fn labelled(
    ui: &mut Ui,
    label: &'static str,
    tip: &'static str,
    value: DragValue<'_>,
) -> egui::Response {
    let (label, tip) = (t(label), t(tip));
    let name = ui.label(label).on_hover_text(tip);
    ui.add(value).labelled_by(name.id).on_hover_text(tip)
}

fn sparsity_slider(ui: &mut Ui, value: &mut f64, text: &'static str, tip: &'static str) {
    let (text, tip) = (t(text), t(tip));
    ui.add(Slider::new(value, 0.0..=0.99).text(text).fixed_decimals(2))
        .on_hover_text(tip);
}

/// The remote server's address and token, for the remote backend.
fn remote_ui(ui: &mut Ui, training: &mut crate::plan::Training) {
    ui.horizontal(|ui| {
        let name = ui.label(t("server")).on_hover_text(t(tips::REMOTE));
        let mut url = training.remote.clone().unwrap_or_default();
        ui.add(
            egui::TextEdit::singleline(&mut url)
                .hint_text("ws://HOST:3000")
                .desired_width(220.0),
        )
        .labelled_by(name.id)
        .on_hover_text(t(tips::REMOTE));
        training.remote = (!url.trim().is_empty()).then(|| url.trim().to_string());
        let name = ui.label(t("token"));
        let mut token = training.token.clone().unwrap_or_default();
        ui.add(
            egui::TextEdit::singleline(&mut token)
                .password(true)
                .desired_width(120.0),
        )
        .labelled_by(name.id);
        training.token = (!token.is_empty()).then_some(token);
    });
}

/// Data, model, backend and optimizer settings. `detected` is what the worker reported.
pub fn training_ui(
    ui: &mut Ui,
    plan: &mut ExperimentPlan,
    detected: Option<&str>,
    out: &mut Vec<AppCommand>,
) {
    ui.label(t("Dataset")).on_hover_text(t(tips::DATASET));
    ui.horizontal_wrapped(|ui| {
        ui.selectable_value(&mut plan.dataset, DatasetSource::BuiltIn, t("built-in MNIST"))
            .on_hover_text(t(tips::DATASET));
        let fashion = std::path::Path::new(FASHION_MNIST_DIR).is_dir();
        ui.add_enabled_ui(fashion, |ui| {
            ui.selectable_value(&mut plan.dataset, DatasetSource::FashionMnist, t("Fashion-MNIST"))
                .on_hover_text(t(tips::DATASET))
                .on_disabled_hover_text("Install Debian's dataset-fashion-mnist to use it.");
        });
        if ui.button(t("Open folder…")).on_hover_text("A folder with the four MNIST-format files (train-images-idx3-ubyte, ..., raw or .gz).").clicked() {
            out.push(AppCommand::ChooseFile(FilePurpose::OpenDatasetFolder));
        }
    });
    if let DatasetSource::Folder(p) = &plan.dataset {
        ui.small(format!("folder: {}", p.display()));
    }
    ui.horizontal(|ui| {
        ui.label(t("Model")).on_hover_text(t(tips::MODEL));
        let shown = if plan.layers.is_empty() {
            plan.model.name().to_string()
        } else {
            format!("{} ({} layers)", plan.model.name(), plan.layers.len())
        };
        egui::ComboBox::from_id_salt("model")
            .selected_text(shown)
            .show_ui(ui, |ui| {
                for m in ModelKind::ALL {
                    if ui
                        .selectable_label(plan.model == m && plan.layers.is_empty(), m.name())
                        .on_hover_text(m.describe())
                        .clicked()
                    {
                        // a built-in model replaces the plan's own stack
                        plan.model = m;
                        plan.layers.clear();
                        plan.input = None;
                    }
                }
            })
            .response
            .on_hover_text(t(tips::MODEL));
    });
    if let Some(path) = plan.training.weights.clone() {
        ui.horizontal_wrapped(|ui| {
            ui.small(format!("starting weights: {}", path.display()));
            if ui
                .small_button(t("clear"))
                .on_hover_text("Start from a random initialisation again.")
                .clicked()
            {
                plan.training.weights = None;
            }
        });
    }
    ui.horizontal(|ui| {
        ui.label(t("Backend")).on_hover_text(t(tips::BACKEND));
        for (b, name) in [
            (BackendChoice::Auto, "auto"),
            (BackendChoice::Wgpu, "wgpu"),
            (BackendChoice::Flex, "flex"),
            (BackendChoice::Remote, "remote"),
        ] {
            ui.selectable_value(&mut plan.training.backend, b, name)
                .on_hover_text(t(tips::BACKEND));
        }
    });
    if plan.training.backend == BackendChoice::Remote {
        remote_ui(ui, &mut plan.training);
    }
    ui.small(detected.unwrap_or(t("detected when training starts")));
    egui::Grid::new("training").num_columns(2).show(ui, |ui| {
        let training = &mut plan.training;
        ui.label(t("learning rate")).on_hover_text(t(tips::LR));
        ui.add(
            DragValue::new(&mut training.lr)
                .range(1e-6..=1.0)
                .speed(1e-5)
                .min_decimals(4),
        )
        .on_hover_text(t(tips::LR));
        ui.end_row();
        ui.label(t("batch")).on_hover_text(t(tips::BATCH));
        ui.add(DragValue::new(&mut training.batch).range(1..=4096))
            .on_hover_text(t(tips::BATCH));
        ui.end_row();
        ui.label(t("epochs")).on_hover_text(t(tips::EPOCHS));
        ui.horizontal(|ui| {
            ui.add(DragValue::new(&mut training.epochs).range(1..=1000))
                .on_hover_text(t(tips::EPOCHS));
            ui.checkbox(&mut training.until_stopped, t("until stopped"))
                .on_hover_text(t(tips::UNTIL_STOPPED));
        });
        ui.end_row();
        ui.label(t("seed")).on_hover_text(t(tips::SEED));
        ui.add(DragValue::new(&mut training.seed))
            .on_hover_text(t(tips::SEED));
        ui.end_row();
        ui.label(t("evaluate every")).on_hover_text(t(tips::EVAL));
        ui.add(
            DragValue::new(&mut training.eval_every)
                .range(0..=100_000)
                .suffix(t(" steps")),
        )
        .on_hover_text(t(tips::EVAL));
        ui.end_row();
    });
}

/// The granularity kind a selectable button stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unstructured,
    NOfM,
    Block,
    Channel,
}

fn kind_of(g: &Granularity) -> Kind {
    match g {
        Granularity::Unstructured => Kind::Unstructured,
        Granularity::NOfM { .. } => Kind::NOfM,
        Granularity::Block { .. } => Kind::Block,
        Granularity::Channel => Kind::Channel,
    }
}

fn granularity_ui(ui: &mut Ui, g: &mut Granularity) {
    let mut kind = kind_of(g);
    ui.horizontal_wrapped(|ui| {
        ui.selectable_value(&mut kind, Kind::Unstructured, t("unstructured"))
            .on_hover_text(t(tips::UNSTRUCTURED));
        ui.selectable_value(&mut kind, Kind::NOfM, "N:M")
            .on_hover_text(t(tips::NM));
        ui.selectable_value(&mut kind, Kind::Block, t("block"))
            .on_hover_text(t(tips::BLOCK));
        ui.selectable_value(&mut kind, Kind::Channel, t("channel"))
            .on_hover_text(t(tips::CHANNEL));
    });
    if kind != kind_of(g) {
        *g = match kind {
            Kind::Unstructured => Granularity::Unstructured,
            Kind::NOfM => Granularity::NOfM { n: 2, m: 4 },
            Kind::Block => Granularity::Block {
                rows: 4,
                cols: 4,
                score: BlockScore::Mean,
            },
            Kind::Channel => Granularity::Channel,
        };
    }
    match g {
        Granularity::NOfM { n, m } => {
            ui.horizontal(|ui| {
                labelled(
                    ui,
                    "keep N",
                    tips::NM,
                    DragValue::new(n).range(1..=(*m - 1).max(1)),
                );
                labelled(ui, "of every M", tips::NM, DragValue::new(m).range(2..=32));
                *n = (*n).clamp(1, *m - 1);
                ui.label(format!(
                    "= {:.0}% sparse",
                    100.0 * (1.0 - *n as f64 / *m as f64)
                ));
            });
        }
        Granularity::Block { rows, cols, score } => {
            ui.horizontal(|ui| {
                labelled(ui, "block", tips::BLOCK, DragValue::new(rows).range(1..=64));
                labelled(ui, "x", tips::BLOCK, DragValue::new(cols).range(1..=64));
                ui.selectable_value(score, BlockScore::Mean, t("mean |w|"))
                    .on_hover_text("Score a block by the mean magnitude of its weights.");
                ui.selectable_value(score, BlockScore::Max, t("max |w|"))
                    .on_hover_text("Score a block by its largest weight: a block with one important weight survives.");
            });
        }
        _ => {}
    }
}

/// Granularity, criterion, scope, schedule and target.
pub fn pruning_ui(ui: &mut Ui, plan: &mut ExperimentPlan, steps_per_epoch: u64) {
    let p = &mut plan.pruning;
    ui.label(t("Granularity"));
    granularity_ui(ui, &mut p.granularity);
    ui.horizontal_wrapped(|ui| {
        ui.label(t("Criterion"));
        for (criterion, tip) in [
            (Criterion::Magnitude, tips::MAGNITUDE),
            (Criterion::Random, tips::RANDOM),
            (Criterion::Taylor, tips::TAYLOR),
            (Criterion::Movement, tips::MOVEMENT),
            (Criterion::Snip, tips::SNIP),
            (Criterion::Wanda, tips::WANDA),
            (Criterion::Synflow, tips::SYNFLOW),
        ] {
            ui.selectable_value(&mut p.criterion, criterion, criterion.to_string())
                .on_hover_text(t(tip));
        }
    });
    ui.horizontal(|ui| {
        ui.label(t("Scope"));
        ui.selectable_value(&mut p.scope, Scope::Layer, t("per layer"))
            .on_hover_text(t(tips::PER_LAYER));
        ui.selectable_value(&mut p.scope, Scope::Global, t("global"))
            .on_hover_text(t(tips::GLOBAL));
    });
    ui.label(t("Schedule"));
    ui.horizontal_wrapped(|ui| {
        for kind in ScheduleKind::ALL {
            let tip = match kind {
                ScheduleKind::Constant => tips::CONSTANT,
                ScheduleKind::OneShot => tips::ONE_SHOT,
                ScheduleKind::Iterative => tips::ITERATIVE,
                ScheduleKind::Polynomial => tips::POLYNOMIAL,
                ScheduleKind::Rigl => tips::RIGL,
                ScheduleKind::Set => tips::SET,
            };
            if ui
                .selectable_label(p.schedule.kind() == kind, kind.name())
                .on_hover_text(t(tip))
                .clicked()
            {
                p.schedule = p.schedule.with_kind(kind);
            }
        }
    });
    let mut target = p.schedule.final_target();
    // N:M fixes its layers' sparsity; the slider then moves only layers with a pattern of
    // their own that follows it
    let fixed = p.granularity.fixed_sparsity();
    let slider_applies = fixed.is_none()
        || p.layers.values().any(|o| {
            !o.skip
                && (o.target.is_none()
                    && o.granularity.is_some_and(|g| g.fixed_sparsity().is_none()))
        });
    ui.add_enabled_ui(slider_applies, |ui| {
        sparsity_slider(ui, &mut target, "target sparsity", tips::TARGET);
    });
    if let Some(f) = fixed {
        ui.label(tf(
            "{} holds every layer it fits at {} sparsity (N of every M kept): the target slider does not apply to them.",
            &[&p.granularity, &format!("{f:.2}")],
        ))
        .on_hover_text(t(tips::NM));
    }
    if target != p.schedule.final_target() {
        p.schedule.set_final_target(target);
    }
    match &mut p.schedule {
        Schedule::Constant {
            begin,
            end,
            frequency,
            ..
        } => {
            at_editor(ui, "begin", begin, tips::BEGIN, steps_per_epoch);
            let mut has_end = end.is_some();
            ui.checkbox(&mut has_end, t("stop pruning at"))
                .on_hover_text(t(tips::END));
            match (has_end, end.as_mut()) {
                (true, Some(e)) => at_editor(ui, "end", e, tips::END, steps_per_epoch),
                (true, None) => *end = Some(At::Epoch { epoch: 3.0 }),
                (false, _) => *end = None,
            }
            frequency_ui(ui, frequency);
        }
        Schedule::OneShot { at, .. } => at_editor(ui, "prune at", at, tips::BEGIN, steps_per_epoch),
        Schedule::Iterative {
            begin,
            end,
            prune_steps,
            ..
        } => {
            at_editor(ui, "begin", begin, tips::BEGIN, steps_per_epoch);
            at_editor(ui, "end", end, tips::END, steps_per_epoch);
            ui.horizontal(|ui| {
                labelled(
                    ui,
                    "pruning steps",
                    tips::ITERATIVE,
                    DragValue::new(prune_steps).range(1..=1000),
                );
            });
        }
        Schedule::Polynomial {
            initial,
            final_sparsity,
            begin,
            end,
            power,
            frequency,
        } => {
            sparsity_slider(ui, initial, "initial sparsity", tips::POLYNOMIAL);
            *initial = initial.min(*final_sparsity);
            at_editor(ui, "begin", begin, tips::BEGIN, steps_per_epoch);
            at_editor(ui, "end", end, tips::END, steps_per_epoch);
            ui.horizontal(|ui| {
                labelled(
                    ui,
                    "power",
                    tips::POWER,
                    DragValue::new(power).range(0.5..=10.0).speed(0.1),
                );
            });
            frequency_ui(ui, frequency);
        }
        Schedule::Rigl(Dynamic {
            begin,
            end,
            frequency,
            alpha,
            ..
        })
        | Schedule::Set(Dynamic {
            begin,
            end,
            frequency,
            alpha,
            ..
        }) => {
            at_editor(ui, "begin", begin, tips::BEGIN, steps_per_epoch);
            at_editor(
                ui,
                "last exchange",
                end,
                tips::EXCHANGE_END,
                steps_per_epoch,
            );
            ui.horizontal(|ui| {
                ui.label(t("exchange every"))
                    .on_hover_text(t(tips::EXCHANGE));
                ui.add(
                    DragValue::new(frequency)
                        .range(1..=100_000)
                        .suffix(t(" steps")),
                );
                labelled(
                    ui,
                    "alpha",
                    tips::ALPHA,
                    DragValue::new(alpha).range(0.01..=1.0).speed(0.01),
                );
            });
        }
    }
    let mut rewinding = plan.pruning.rewind.is_some();
    if ui
        .checkbox(&mut rewinding, t("rewind (lottery ticket)"))
        .on_hover_text(t(tips::REWIND))
        .changed()
    {
        plan.pruning.rewind = rewinding.then_some(At::Epoch { epoch: 1.0 });
    }
    if let Some(at) = plan.pruning.rewind.as_mut() {
        at_editor(ui, "rewind to", at, tips::REWIND, steps_per_epoch);
    }
}

fn frequency_ui(ui: &mut Ui, frequency: &mut u64) {
    ui.horizontal(|ui| {
        ui.label(t("prune every")).on_hover_text(t(tips::FREQUENCY));
        ui.add(
            DragValue::new(frequency)
                .range(1..=100_000)
                .suffix(t(" steps")),
        )
        .on_hover_text(t(tips::FREQUENCY));
    });
}

/// Patterns offered as a layer's own granularity.
const LAYER_PATTERNS: [&str; 6] = [
    "unstructured",
    "2:4",
    "1:4",
    "block:4x4",
    "block:2x2",
    "channel",
];

/// The per-layer table: shape, size, current sparsity, which patterns fit, and overrides.
pub fn layers_ui(
    ui: &mut Ui,
    plan: &mut ExperimentPlan,
    specs: &[LayerSpec],
    sparsity: &BTreeMap<String, f64>,
) {
    let default = plan.pruning.granularity;
    egui::Grid::new("layers")
        .num_columns(6)
        .striped(true)
        .show(ui, |ui| {
            for (h, tip) in [
                ("layer", "The prunable layer's name."),
                ("shape", "Weight shape in PyTorch layout: Linear [out, in], Conv2d [out, in, kh, kw]. Hover a shape for its size."),
                ("sparsity", "Fraction of this layer's weights pruned now."),
                ("fits", "Whether 2:4 and 4x4 blocks fit this layer; hover for the current pattern."),
                ("skip", tips::LAYER_SKIP),
                ("own target / pattern", tips::LAYER_TARGET),
            ] {
                ui.strong(t(h)).on_hover_text(t(tip));
            }
            ui.end_row();
            for spec in specs {
                let o = plan.pruning.layers.entry(spec.name.clone()).or_default();
                ui.label(&spec.name);
                ui.label(spec.shape.to_string())
                    .on_hover_text(format!("{} weights", spec.shape.numel()));
                ui.label(
                    sparsity
                        .get(&spec.name)
                        .map(|s| format!("{:.1}%", 100.0 * s))
                        .unwrap_or_else(|| "-".into()),
                );
                let fits: Vec<String> = [("2:4", "2:4"), ("block:4x4", "4x4")]
                    .iter()
                    .map(|(pattern, short)| {
                        let g: Granularity = pattern.parse().expect("valid pattern");
                        let ok = spec.check(&g).is_ok();
                        format!("{short} {}", t(if ok { "yes" } else { "no" }))
                    })
                    .collect();
                let current = o.granularity.unwrap_or(default);
                let why = match spec.check(&current) {
                    Ok(()) => format!("{current} fits this layer."),
                    Err(e) => format!("{current} does not fit: {e}."),
                };
                ui.label(fits.join(", ")).on_hover_text(why);
                ui.checkbox(&mut o.skip, "")
                    .on_hover_text(t(tips::LAYER_SKIP));
                ui.horizontal(|ui| {
                    let mut own = o.target.is_some();
                    if ui.checkbox(&mut own, "").on_hover_text(t(tips::LAYER_TARGET)).changed() {
                        o.target = own.then_some(plan_target_default(o));
                    }
                    if let Some(target) = o.target.as_mut() {
                        ui.add(DragValue::new(target).range(0.0..=0.99).speed(0.01).fixed_decimals(2))
                            .on_hover_text(t(tips::LAYER_TARGET));
                    }
                    let label = o.granularity.map(|g| g.to_string()).unwrap_or_else(|| t("default").into());
                    egui::ComboBox::from_id_salt(("pattern", &spec.name))
                        .selected_text(label)
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut o.granularity, None, t("default"));
                            for pattern in LAYER_PATTERNS {
                                let g: Granularity = pattern.parse().expect("valid pattern");
                                let fits = spec.check(&g);
                                ui.add_enabled_ui(fits.is_ok(), |ui| {
                                    ui.selectable_value(&mut o.granularity, Some(g), pattern)
                                        .on_disabled_hover_text(
                                            fits.err().map(|e| e.to_string()).unwrap_or_default(),
                                        );
                                });
                            }
                        })
                        .response
                        .on_hover_text(t(tips::LAYER_PATTERN));
                });
                ui.end_row();
            }
        });
    // keep the plan free of empty overrides
    plan.pruning
        .layers
        .retain(|_, o| *o != LayerOverride::default());
}

fn plan_target_default(o: &LayerOverride) -> f64 {
    o.target.unwrap_or(0.5)
}
