//! The run's controls at the top of the plan panel: Start, Pause/Resume, Step, Stop,
//! Reset, the speed cap, and why the edited plan cannot apply now (from its last check).

use eframe::egui;
use egui::{Color32, Ui};

use crate::app::command::AppCommand;
use crate::app::plan_edit::PlanEdit;
use crate::app::state::{PlanCheck, RunStatus};
use crate::i18n::{t, tf};
use crate::plan::ExperimentPlan;

/// Steps per second the speed control offers, below "full speed".
const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.5..=200.0;
/// What the speed control offers when it is ticked on a plan without a pace.
const DEFAULT_PACE: f64 = 10.0;

/// The run's buttons and speed control.
pub struct RunControls<'a> {
    pub status: &'a RunStatus,
    /// The plan being edited (the speed control sets its pace).
    pub plan: &'a ExperimentPlan,
    /// What checking the plan found: its error, or its schedule, and whether it needs a
    /// reset.
    pub check: &'a PlanCheck,
    /// The pace being dragged on the speed control, before it goes into the plan.
    pub pace_drag: &'a mut Option<f64>,
}

impl RunControls<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        let Self {
            status,
            plan,
            check,
            pace_drag,
        } = self;
        buttons(ui, status, out);
        let pace = pace_control(ui, plan.training.pace, pace_drag);
        if pace != plan.training.pace {
            out.push(AppCommand::EditPlan(PlanEdit::Pace(pace)));
        }
        if status.active
            && let Some(what) = check.needs_reset
        {
            ui.colored_label(
                Color32::from_rgb(230, 170, 60),
                tf(
                    "Changing {} needs a new run: press Reset, then Start.",
                    &[&t(what)],
                ),
            );
        }
        match check.schedule() {
            Err(e) => {
                ui.colored_label(Color32::from_rgb(230, 110, 100), e);
            }
            Ok(schedule) => {
                if let Some(pace) = plan.training.pace {
                    ui.small(pacing_note(pace, schedule));
                }
            }
        }
    }
}

/// Start, Pause/Resume, Step, Stop and Reset, each enabled when it applies.
fn buttons(ui: &mut Ui, status: &RunStatus, out: &mut Vec<AppCommand>) {
    let (active, paused) = (status.active, status.paused);
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
}

/// The speed control: it returns the plan's pace (`pace` until the user changes it), which
/// a running session takes live. While the slider is dragged the value waits in
/// `pace_drag`, so the run gets the value let go.
fn pace_control(ui: &mut Ui, pace: Option<f64>, pace_drag: &mut Option<f64>) -> Option<f64> {
    ui.horizontal(|ui| {
        let shown = pace_drag.or(pace);
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
            *pace_drag = Some(speed);
            pace
        } else {
            *pace_drag = None;
            capped.then_some(speed)
        }
    })
    .inner
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
