//! The menu bar: files, presets, lessons, and the view (language, zoom).

use eframe::egui;
use egui::{RichText, Ui};

use crate::app::command::AppCommand;
use crate::app::files::FilePurpose;
use crate::app::plan_edit::PlanEdit;
use crate::i18n::{Language, t};
use crate::lessons::Lesson;
use crate::plan::{ExperimentPlan, PRESETS};

/// The menu bar.
pub struct MenuBar<'a> {
    /// The plan being edited (its name is shown; a preset replaces it).
    pub plan: &'a ExperimentPlan,
    pub lessons: &'a [Lesson],
    pub language: Language,
    /// Why Chinese cannot be shown, when it was asked for and could not.
    pub language_note: Option<&'a str>,
    /// A CJK font is loaded: Chinese can be drawn (until then it is named in English, so
    /// that no box is ever drawn for a missing glyph).
    pub cjk_font: bool,
}

impl MenuBar<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button(t("File"), |ui| file_menu(ui, out));
            ui.menu_button(t("Presets"), |ui| presets_menu(ui, out));
            ui.menu_button(t("Lessons"), |ui| {
                for (place, lesson) in self.lessons.iter().enumerate() {
                    let title = format!("{}. {}", place + 1, lesson.title.get(self.language));
                    if ui
                        .button(title)
                        .on_hover_text(format!("preset {}", lesson.preset))
                        .clicked()
                    {
                        out.push(AppCommand::OpenLesson(place));
                        ui.close();
                    }
                }
            });
            ui.menu_button(t("View"), |ui| self.view_menu(ui, out));
            if let Some(note) = self.language_note {
                ui.colored_label(egui::Color32::from_rgb(230, 170, 60), note);
            }
            ui.separator();
            ui.label(RichText::new(&self.plan.name).italics());
        });
    }

    /// The language (each named in itself once it can be drawn) and how to zoom.
    fn view_menu(&self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        ui.label(t("Language"));
        for language in Language::ALL {
            if ui
                .selectable_label(
                    self.language == language,
                    if self.cjk_font || language == Language::En {
                        language.native_name()
                    } else {
                        language.english_name()
                    },
                )
                .clicked()
            {
                out.push(AppCommand::SetLanguage(language));
            }
        }
        if let Some(note) = self.language_note {
            ui.colored_label(egui::Color32::from_rgb(230, 170, 60), note);
        }
        ui.separator();
        ui.label(t("Zoom: Ctrl + and Ctrl - (Ctrl 0 resets); remembered."));
    }
}

/// Plans, masks, checkpoints, models, datasets and weights to open or save, and the plan
/// as one line to copy or paste.
fn file_menu(ui: &mut Ui, out: &mut Vec<AppCommand>) {
    for (label, purpose, tip) in [
        (
            "Open plan…",
            FilePurpose::OpenPlan,
            "Load an experiment plan (TOML), the same files as the command line's.",
        ),
        (
            "Save plan…",
            FilePurpose::SavePlan,
            "Save the plan as TOML, to run it again here or with `sparsity-explorer run`.",
        ),
        (
            "Save masks…",
            FilePurpose::SaveMasks,
            "The current masks as safetensors: one uint8 tensor per layer, PyTorch layout.",
        ),
        (
            "Save checkpoint…",
            FilePurpose::SaveCheckpoint,
            "Weights, Adam state, masks, step, plan and plots, to resume later.",
        ),
        (
            "Load checkpoint…",
            FilePurpose::LoadCheckpoint,
            "Resume a saved session where it stopped (it opens paused).",
        ),
        (
            "Open sparse model…",
            FilePurpose::OpenSparseModel,
            "Load an exported .spx model to inspect its masks, evaluate or analyse it.",
        ),
        (
            "Open dataset folder…",
            FilePurpose::OpenDatasetFolder,
            "A folder with the four MNIST-format files, raw or gzip.",
        ),
        (
            "Open ONNX model…",
            FilePurpose::OpenOnnx,
            "Open a model exported to ONNX (torch.onnx.export, for example): its graph becomes the network and its weights the starting weights.",
        ),
        (
            "Open weights…",
            FilePurpose::OpenWeights,
            "Start from a PyTorch state_dict saved as safetensors (keys by layer name or nn.Sequential position).",
        ),
    ] {
        if ui.button(t(label)).on_hover_text(t(tip)).clicked() {
            out.push(AppCommand::ChooseFile(purpose));
            ui.close();
        }
    }
    ui.separator();
    if ui
        .button(t("Copy plan"))
        .on_hover_text("Copy the plan as one short line (spx1.…) to share: paste it here with Paste plan, or run `sparsity-explorer --plan-string LINE`.")
        .clicked()
    {
        out.push(AppCommand::CopyPlan);
        ui.close();
    }
    if ui
        .button(t("Paste plan…"))
        .on_hover_text(
            "Open a plan from a line that Copy plan or `sparsity-explorer plan encode` made.",
        )
        .clicked()
    {
        out.push(AppCommand::AskPlanString);
        ui.close();
    }
}

/// The presets, each replacing the edited plan.
fn presets_menu(ui: &mut Ui, out: &mut Vec<AppCommand>) {
    for (name, _) in PRESETS {
        let preset = ExperimentPlan::preset(name);
        let tip = preset.as_ref().map(|p| p.name.clone()).unwrap_or_default();
        if ui.button(*name).on_hover_text(tip).clicked() {
            if let Ok(p) = preset {
                out.push(AppCommand::EditPlan(PlanEdit::Replace(Box::new(p))));
            }
            ui.close();
        }
    }
}
