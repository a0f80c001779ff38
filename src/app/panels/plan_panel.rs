//! The left panel: run controls, then the plan (training, network, pruning, layers), then
//! the log. Each section is a panel of its own, given its part of the plan to read; what
//! the user changes leaves it as an [`AppCommand::EditPlan`].

use std::collections::{BTreeMap, VecDeque};

use eframe::egui;
use egui::Ui;

use super::layer_table::LayerTable;
use super::network_editor::NetworkEditor;
use super::pruning_settings::PruningSettings;
use super::run_controls::RunControls;
use super::training_settings::TrainingSettings;
use crate::app::command::AppCommand;
use crate::app::layers::LayerView;
use crate::app::plan_edit::PlanEdit;
use crate::app::state::{PlanCheck, RunStatus};
use crate::i18n::{t, tf};
use crate::plan::ExperimentPlan;
use crate::prune::LayerSpec;
use crate::train::report::group_roles;

/// The left panel.
pub struct PlanPanel<'a> {
    /// The plan being edited.
    pub plan: &'a ExperimentPlan,
    /// What checking it found: its error, or its schedule, and whether it needs a reset.
    pub check: &'a PlanCheck,
    /// The pace being dragged on the speed control, before it goes into the plan.
    pub pace_drag: &'a mut Option<f64>,
    pub status: &'a RunStatus,
    /// The run's layers, for their sparsity in the layer table.
    pub layers: &'a [LayerView],
    /// The log, oldest first.
    pub notices: &'a VecDeque<String>,
}

impl PlanPanel<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        let Self {
            plan,
            check,
            pace_drag,
            status,
            layers,
            notices,
        } = self;
        egui::ScrollArea::vertical().show(ui, |ui| {
            RunControls {
                status,
                plan,
                check,
                pace_drag,
            }
            .ui(ui, out);
            ui.separator();
            plan_sections(ui, plan, status, layers, out);
            if !notices.is_empty() {
                egui::CollapsingHeader::new(t("Log"))
                    .default_open(false)
                    .show(ui, |ui| {
                        for n in notices.iter().rev() {
                            ui.small(n);
                        }
                    });
            }
        });
    }
}

/// The plan's sections, each under its own header: training, network, pruning, layers. The
/// Pruning and Layers sections edit one copy of the plan's pruning, sent as one edit.
fn plan_sections(
    ui: &mut Ui,
    plan: &ExperimentPlan,
    status: &RunStatus,
    layers: &[LayerView],
    out: &mut Vec<AppCommand>,
) {
    egui::CollapsingHeader::new(t("Training"))
        .default_open(true)
        .show(ui, |ui| {
            let detected = status.backend.as_ref().map(|b| {
                let note = b.note.as_ref().map(|n| format!(": {n}"));
                tf(
                    "running on {} ({}){}",
                    &[&b.backend, &b.device, &note.unwrap_or_default()],
                )
            });
            TrainingSettings {
                plan,
                detected: detected.as_deref(),
            }
            .ui(ui, out);
        });
    // open from the start when the plan has a network of its own
    egui::CollapsingHeader::new(t("Network"))
        .default_open(!plan.layers.is_empty())
        .show(ui, |ui| NetworkEditor { plan }.ui(ui, out));
    let mut pruning = plan.pruning.clone();
    egui::CollapsingHeader::new(t("Pruning"))
        .default_open(true)
        .show(ui, |ui| {
            PruningSettings {
                pruning: &mut pruning,
                steps_per_epoch: status.steps_per_epoch.max(1),
            }
            .ui(ui);
        });
    egui::CollapsingHeader::new(t("Layers"))
        .default_open(true)
        .show(ui, |ui| {
            let specs: Vec<LayerSpec> = plan.layer_specs().unwrap_or_default();
            let groups = plan.unit_groups().unwrap_or_default();
            let roles = group_roles(&groups, specs.len());
            let sparsity: BTreeMap<String, f64> = layers
                .iter()
                .map(|l| (l.info.name.clone(), l.sparsity))
                .collect();
            egui::ScrollArea::horizontal().show(ui, |ui| {
                LayerTable {
                    pruning: &mut pruning,
                    specs: &specs,
                    roles: &roles,
                    sparsity: &sparsity,
                }
                .ui(ui);
            });
        });
    if pruning != plan.pruning {
        out.push(AppCommand::EditPlan(PlanEdit::Pruning(Box::new(pruning))));
    }
}
