//! The left panel: run controls, then the plan (training, pruning, layers), then the log.

use std::collections::BTreeMap;

use eframe::egui;
use egui::{Color32, Ui};

use crate::app::command::AppCommand;
use crate::app::state::AppState;
use crate::app::{network_editor, plan_editor};
use crate::i18n::{t, tf};
use crate::prune::LayerSpec;

pub struct PlanPanel<'a> {
    pub state: &'a mut AppState,
}

impl PlanPanel<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        let state = self.state;
        egui::ScrollArea::vertical().show(ui, |ui| {
            controls(ui, state, out);
            ui.separator();
            egui::CollapsingHeader::new(t("Training"))
                .default_open(true)
                .show(ui, |ui| {
                    let detected = state.status.backend.as_ref().map(|b| {
                        let note = b.note.as_ref().map(|n| format!(": {n}"));
                        tf(
                            "running on {} ({}){}",
                            &[&b.backend, &b.device, &note.unwrap_or_default()],
                        )
                    });
                    plan_editor::training_ui(ui, &mut state.plan, detected.as_deref(), out);
                });
            // open from the start when the plan has a network of its own
            egui::CollapsingHeader::new(t("Network"))
                .default_open(!state.plan.layers.is_empty())
                .show(ui, |ui| network_editor::network_ui(ui, &mut state.plan));
            egui::CollapsingHeader::new(t("Pruning"))
                .default_open(true)
                .show(ui, |ui| {
                    let spe = state.status.steps_per_epoch.max(1);
                    plan_editor::pruning_ui(ui, &mut state.plan, spe);
                });
            egui::CollapsingHeader::new(t("Layers"))
                .default_open(true)
                .show(ui, |ui| {
                    let specs: Vec<LayerSpec> = state.plan.layer_specs().unwrap_or_default();
                    let sparsity: BTreeMap<String, f64> = state
                        .layers
                        .iter()
                        .map(|l| (l.info.name.clone(), l.sparsity))
                        .collect();
                    egui::ScrollArea::horizontal().show(ui, |ui| {
                        plan_editor::layers_ui(ui, &mut state.plan, &specs, &sparsity);
                    });
                });
            if !state.notices.is_empty() {
                egui::CollapsingHeader::new(t("Log"))
                    .default_open(false)
                    .show(ui, |ui| {
                        for n in state.notices.iter().rev() {
                            ui.small(n);
                        }
                    });
            }
        });
    }
}

/// Steps per second the speed control offers, below "full speed".
const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.5..=200.0;
/// What the speed control offers when it is ticked on a plan without a pace.
const DEFAULT_PACE: f64 = 10.0;

/// Start, Pause/Resume, Step, Stop, Reset, the speed cap, and why the edited plan cannot
/// apply now.
fn controls(ui: &mut Ui, state: &mut AppState, out: &mut Vec<AppCommand>) {
    let (active, paused) = (state.status.active, state.status.paused);
    ui.horizontal_wrapped(|ui| {
        let mut button = |enabled: bool, label: &str, tip: &str, command: AppCommand| {
            if ui
                .add_enabled(enabled, egui::Button::new(label))
                .on_hover_text(tip)
                .clicked()
            {
                out.push(command);
            }
        };
        button(
            !active,
            t("Start"),
            t("Train the plan from scratch in the background."),
            AppCommand::Start,
        );
        button(
            active,
            if paused { t("Resume") } else { t("Pause") },
            t("Pause or resume training (Space)."),
            AppCommand::TogglePause,
        );
        button(
            active && paused,
            t("Step"),
            t("Train exactly one batch while paused."),
            AppCommand::Step,
        );
        button(
            active,
            t("Stop"),
            t("End the run now and evaluate it."),
            AppCommand::Stop,
        );
        button(
            true,
            t("Reset"),
            t("Clear the run; its curves stay as a faded overlay for comparison."),
            AppCommand::Reset,
        );
    });
    pace_control(ui, state);
    if let Some(sent) = &state.sent_plan
        && active
        && let Some(what) = sent.reset_reason(&state.plan)
    {
        ui.colored_label(
            Color32::from_rgb(230, 170, 60),
            tf(
                "Changing {} needs a new run: press Reset, then Start.",
                &[&t(what)],
            ),
        );
    }
    let examples = state.status.train_examples.max(crate::data::BUILTIN_TRAIN);
    match state.plan.validate(examples) {
        Err(e) => {
            ui.colored_label(Color32::from_rgb(230, 110, 100), e.to_string());
        }
        Ok(schedule) => {
            if let Some(pace) = state.plan.training.pace {
                ui.small(pacing_note(pace, &schedule));
            }
        }
    }
}

/// The speed control: it edits the plan's pace, which a running session takes live. While
/// the slider is dragged the value waits in `pace_drag`, so the run gets the value let go.
fn pace_control(ui: &mut Ui, state: &mut AppState) {
    ui.horizontal(|ui| {
        let shown = state.pace_drag.or(state.plan.training.pace);
        let mut capped = shown.is_some();
        ui.checkbox(&mut capped, t("slow down to"))
            .on_hover_text(t("Cap the steps per second so a class can watch the masks change; training is otherwise as fast as it goes."));
        let mut speed = shown.unwrap_or(DEFAULT_PACE);
        let slider = ui.add_enabled(
            capped,
            egui::Slider::new(&mut speed, SPEED_RANGE)
                .logarithmic(true)
                .suffix(t(" steps/s"))
                .text(t("speed")),
        );
        if capped && slider.dragged() && !slider.drag_stopped() {
            state.pace_drag = Some(speed);
        } else {
            state.pace_drag = None;
            state.plan.training.pace = capped.then_some(speed);
        }
    });
}

/// Why the run is paced, how long its pruning lasts at that pace, and how to go full speed.
fn pacing_note(pace: f64, schedule: &crate::prune::StepSchedule) -> String {
    let first = schedule.first_prune_step();
    let last = schedule.last_prune_step().unwrap_or(first);
    let seconds = (last.saturating_sub(first) as f64 / pace).round();
    tf(
        "Paced at {} steps/s so that a class can follow every cut: pruning runs from step {} to {}, about {} s. Untick “slow down to” to train at full speed.",
        &[&format!("{pace:.0}"), &first, &last, &seconds],
    )
}
