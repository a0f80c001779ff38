//! The Training section of the plan panel: the data, the model, the backend (and the
//! remote server's address), the starting weights and the optimizer's settings. It edits
//! copies of the plan's data and training settings, and sends each that changed as one
//! [`PlanEdit`].

use eframe::egui;
use egui::{DragValue, Ui};

use crate::app::command::AppCommand;
use crate::app::files::FilePurpose;
use crate::app::plan_edit::PlanEdit;
use crate::app::tips;
use crate::data::{DatasetSource, FASHION_MNIST_DIR};
use crate::i18n::t;
use crate::model::ModelKind;
use crate::plan::{ExperimentPlan, Training};
use crate::train::BackendChoice;

/// The Training section.
pub struct TrainingSettings<'a> {
    pub plan: &'a ExperimentPlan,
    /// The backend and device the worker reported, once a run started.
    pub detected: Option<&'a str>,
}

impl TrainingSettings<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        let plan = self.plan;
        let mut dataset = plan.dataset.clone();
        dataset_ui(ui, &mut dataset, out);
        if dataset != plan.dataset {
            out.push(AppCommand::EditPlan(PlanEdit::Dataset(dataset)));
        }
        if let Some(model) = model_ui(ui, plan) {
            out.push(AppCommand::EditPlan(PlanEdit::Model(model)));
        }
        let mut training = plan.training.clone();
        if let Some(path) = plan.training.weights.clone() {
            ui.horizontal_wrapped(|ui| {
                ui.small(format!("starting weights: {}", path.display()));
                if ui
                    .small_button(t("clear"))
                    .on_hover_text("Start from a random initialisation again.")
                    .clicked()
                {
                    training.weights = None;
                }
            });
        }
        backend_ui(ui, &mut training);
        ui.small(self.detected.unwrap_or(t("detected when training starts")));
        optimizer_ui(ui, &mut training);
        if training != plan.training {
            out.push(AppCommand::EditPlan(PlanEdit::Training(Box::new(training))));
        }
    }
}

/// Built-in MNIST, Fashion-MNIST when installed, or a folder of MNIST-format files.
fn dataset_ui(ui: &mut Ui, dataset: &mut DatasetSource, out: &mut Vec<AppCommand>) {
    ui.label(t("Dataset")).on_hover_text(t(tips::DATASET));
    ui.horizontal_wrapped(|ui| {
        ui.selectable_value(dataset, DatasetSource::BuiltIn, t("built-in MNIST"))
            .on_hover_text(t(tips::DATASET));
        let fashion = std::path::Path::new(FASHION_MNIST_DIR).is_dir();
        ui.add_enabled_ui(fashion, |ui| {
            ui.selectable_value(dataset, DatasetSource::FashionMnist, t("Fashion-MNIST"))
                .on_hover_text(t(tips::DATASET))
                .on_disabled_hover_text("Install Debian's dataset-fashion-mnist to use it.");
        });
        if ui.button(t("Open folder…")).on_hover_text("A folder with the four MNIST-format files (train-images-idx3-ubyte, ..., raw or .gz).").clicked() {
            out.push(AppCommand::ChooseFile(FilePurpose::OpenDatasetFolder));
        }
    });
    if let DatasetSource::Folder(p) = dataset {
        ui.small(format!("folder: {}", p.display()));
    }
}

/// The built-in models; returns the one chosen, which replaces the plan's own stack of
/// layers.
fn model_ui(ui: &mut Ui, plan: &ExperimentPlan) -> Option<ModelKind> {
    let mut chosen = None;
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
                        chosen = Some(m);
                    }
                }
            })
            .response
            .on_hover_text(t(tips::MODEL));
    });
    chosen
}

/// Where training runs; the remote backend also needs its server.
fn backend_ui(ui: &mut Ui, training: &mut Training) {
    ui.horizontal(|ui| {
        ui.label(t("Backend")).on_hover_text(t(tips::BACKEND));
        for (b, name) in [
            (BackendChoice::Auto, "auto"),
            (BackendChoice::Wgpu, "wgpu"),
            (BackendChoice::Flex, "flex"),
            (BackendChoice::Remote, "remote"),
        ] {
            ui.selectable_value(&mut training.backend, b, name)
                .on_hover_text(t(tips::BACKEND));
        }
    });
    if training.backend == BackendChoice::Remote {
        remote_ui(ui, training);
    }
}

/// The remote server's address and token, for the remote backend.
fn remote_ui(ui: &mut Ui, training: &mut Training) {
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

/// Learning rate, batch, epochs, seed and how often to evaluate.
fn optimizer_ui(ui: &mut Ui, training: &mut Training) {
    egui::Grid::new("training").num_columns(2).show(ui, |ui| {
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
