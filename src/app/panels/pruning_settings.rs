//! The Pruning section of the plan panel: granularity, criterion, scope, the schedule with
//! its target and moments, and rewinding (lottery tickets).

use eframe::egui::{DragValue, Ui};

use super::granularity_picker::GranularityPicker;
use crate::app::tips;
use crate::app::widgets::{at_editor, frequency_ui, labelled, sparsity_slider};
use crate::i18n::{t, tf};
use crate::prune::{At, Criterion, PruningPolicy, Schedule, ScheduleKind, Scope};

/// The Pruning section.
pub struct PruningSettings<'a> {
    pub pruning: &'a mut PruningPolicy,
    /// Converts moments between epochs and steps.
    pub steps_per_epoch: u64,
}

impl PruningSettings<'_> {
    pub fn ui(self, ui: &mut Ui) {
        let Self {
            pruning: p,
            steps_per_epoch,
        } = self;
        ui.label(t("Granularity"));
        GranularityPicker {
            granularity: &mut p.granularity,
        }
        .ui(ui);
        criterion_and_scope(ui, p);
        ui.label(t("Schedule"));
        schedule_kind(ui, &mut p.schedule);
        target(ui, p);
        schedule_moments(ui, &mut p.schedule, steps_per_epoch);
        let mut rewinding = p.rewind.is_some();
        if ui
            .checkbox(&mut rewinding, t("rewind (lottery ticket)"))
            .on_hover_text(t(tips::REWIND))
            .changed()
        {
            p.rewind = rewinding.then_some(At::Epoch { epoch: 1.0 });
        }
        if let Some(at) = p.rewind.as_mut() {
            at_editor(ui, "rewind to", at, tips::REWIND, steps_per_epoch);
        }
    }
}

/// Which weights a step removes first, and whether layers are ranked alone or together.
fn criterion_and_scope(ui: &mut Ui, p: &mut PruningPolicy) {
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
}

/// The kinds of schedule; choosing one keeps what the two have in common.
fn schedule_kind(ui: &mut Ui, schedule: &mut Schedule) {
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
                .selectable_label(schedule.kind() == kind, kind.name())
                .on_hover_text(t(tip))
                .clicked()
            {
                *schedule = schedule.with_kind(kind);
            }
        }
    });
}

/// The target sparsity slider, and why it does not apply to layers that N:M holds.
fn target(ui: &mut Ui, p: &mut PruningPolicy) {
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
}

/// The moments and settings of the chosen kind of schedule.
fn schedule_moments(ui: &mut Ui, schedule: &mut Schedule, steps_per_epoch: u64) {
    match schedule {
        Schedule::Constant {
            begin,
            end,
            frequency,
            ..
        } => constant(ui, begin, end, frequency, steps_per_epoch),
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
        Schedule::Rigl(d) | Schedule::Set(d) => exchange(
            ui,
            &mut d.begin,
            &mut d.end,
            &mut d.frequency,
            &mut d.alpha,
            steps_per_epoch,
        ),
    }
}

/// A constant schedule: when it begins, whether and when it stops, how often it prunes.
fn constant(
    ui: &mut Ui,
    begin: &mut At,
    end: &mut Option<At>,
    frequency: &mut u64,
    steps_per_epoch: u64,
) {
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

/// RigL and SET: when exchanges begin and end, how often, and the fraction exchanged.
fn exchange(
    ui: &mut Ui,
    begin: &mut At,
    end: &mut At,
    frequency: &mut u64,
    alpha: &mut f64,
    steps_per_epoch: u64,
) {
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
