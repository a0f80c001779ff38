//! The banner above the selected tab: the last error, a lost remote server, a desktop
//! without file dialogs, the fields that ask for a plan line or a path, and a worker
//! that has not answered. Each shows only while it applies.

use eframe::egui;
use egui::{Color32, RichText, Ui};

use crate::app::command::AppCommand;
use crate::app::files;
use crate::app::state::Banner;
use crate::i18n::{t, tf};

/// Background of the error row.
const ERROR: Color32 = Color32::from_rgb(110, 30, 30);
/// Background of the rows that inform or ask.
const INFO: Color32 = Color32::from_rgb(40, 60, 100);
/// Background of the row about a worker that has not answered.
const WARNING: Color32 = Color32::from_rgb(110, 80, 20);

/// The banner above the selected tab.
pub struct BannerPanel<'a> {
    pub banner: &'a mut Banner,
}

/// A row of the banner on `colour`.
fn frame(colour: Color32) -> egui::Frame {
    egui::Frame::new()
        .fill(colour)
        .inner_margin(8.0)
        .corner_radius(4.0)
}

impl BannerPanel<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        let banner = self.banner;
        if let Some(message) = &banner.error {
            error_row(ui, message, out);
        }
        if let Some(step) = banner.remote_lost {
            remote_lost_row(ui, step, out);
        }
        if banner.no_dialogs {
            frame(INFO).show(ui, |ui| {
                ui.label(RichText::new(t(files::NO_DIALOGS)).color(Color32::WHITE));
            });
        }
        if let Some(text) = banner.plan_string_prompt.as_mut()
            && plan_line_row(ui, text, out)
        {
            banner.plan_string_prompt = None;
        }
        if let Some((purpose, text)) = banner.path_prompt.as_mut() {
            path_row(ui, *purpose, text, out);
        }
        if let Some(silent) = banner.worker_silent {
            silent_worker_row(ui, silent, out);
        }
    }
}

/// The error, until dismissed.
fn error_row(ui: &mut Ui, message: &str, out: &mut Vec<AppCommand>) {
    frame(ERROR).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(
                RichText::new(tf("Error: {}", &[&message]))
                    .color(Color32::WHITE)
                    .strong(),
            );
            if ui.button(t("Dismiss")).clicked() {
                out.push(AppCommand::DismissBanner);
            }
        });
    });
}

/// A remote run whose server went away at `step`, and the button that goes on locally.
fn remote_lost_row(ui: &mut Ui, step: u64, out: &mut Vec<AppCommand>) {
    frame(INFO).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(
                RichText::new(tf(
                    "The remote server is gone. Its weights, masks and Adam state from step {} are kept here.",
                    &[&step],
                ))
                .color(Color32::WHITE),
            );
            if ui
                .button(t("Continue locally"))
                .on_hover_text(t("Go on training this run on this machine's CPU (flex), from the kept step."))
                .clicked()
            {
                out.push(AppCommand::ContinueLocally);
            }
        });
    });
}

/// The field where a plan line is pasted; returns whether it was cancelled.
fn plan_line_row(ui: &mut Ui, text: &mut String, out: &mut Vec<AppCommand>) -> bool {
    let mut cancel = false;
    frame(INFO).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(RichText::new(t("Plan line:")).color(Color32::WHITE));
            ui.add(
                egui::TextEdit::singleline(text)
                    .hint_text("spx1.…")
                    .desired_width(520.0),
            );
            if ui.button(t("Open plan")).clicked() {
                out.push(AppCommand::OpenPlanString(text.clone()));
            }
            if ui.button(t("Cancel")).clicked() {
                cancel = true;
            }
        });
    });
    cancel
}

/// The field where a file item's path is typed, on a desktop without file dialogs.
fn path_row(
    ui: &mut Ui,
    purpose: files::FilePurpose,
    text: &mut String,
    out: &mut Vec<AppCommand>,
) {
    frame(INFO).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(
                RichText::new(tf("Path ({}):", &[&t(purpose.describe())])).color(Color32::WHITE),
            );
            let field = ui.add(egui::TextEdit::singleline(text).desired_width(420.0));
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button(t("OK")).clicked() || entered) && !text.trim().is_empty() {
                out.push(AppCommand::FileChosen(purpose, text.trim().into()));
                out.push(AppCommand::CancelPathPrompt);
            }
            if ui.button(t("Cancel")).clicked() {
                out.push(AppCommand::CancelPathPrompt);
            }
        });
    });
}

/// A worker silent for `silent`, and the button that leaves it for a new one.
fn silent_worker_row(ui: &mut Ui, silent: std::time::Duration, out: &mut Vec<AppCommand>) {
    frame(WARNING).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(
                RichText::new(tf(
                    "The training worker has not answered for {} s: it may be busy (compiling GPU shaders, loading a large dataset) or stuck.",
                    &[&format!("{:.0}", silent.as_secs_f64())],
                ))
                .color(Color32::WHITE)
                .strong(),
            );
            if ui
                .button(t("Start a new worker"))
                .on_hover_text("Leave this worker and start a new one; the plan and the plots stay, the run does not.")
                .clicked()
            {
                out.push(AppCommand::ReplaceWorker);
            }
        });
    });
}
