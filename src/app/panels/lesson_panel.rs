//! The lesson being followed: its title, its explanation, and its steps, each ticked when
//! the run shows it happened.

use eframe::egui;
use egui::{RichText, Ui};

use crate::app::command::AppCommand;
use crate::i18n::{Language, tr};
use crate::lessons::Progress;

/// The lesson panel, on the right while a lesson is followed.
pub struct LessonPanel<'a> {
    pub progress: &'a Progress,
    pub language: Language,
    /// The lesson's place in the course and the course's length.
    pub place: (usize, usize),
}

impl LessonPanel<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        let Self {
            progress,
            language,
            place,
        } = self;
        let lesson = &progress.lesson;
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.weak(format!("{} / {}", place.0 + 1, place.1));
                if ui.button(tr(language, "Previous")).clicked() && place.0 > 0 {
                    out.push(AppCommand::OpenLesson(place.0 - 1));
                }
                if ui.button(tr(language, "Next")).clicked() && place.0 + 1 < place.1 {
                    out.push(AppCommand::OpenLesson(place.0 + 1));
                }
                if ui.button(tr(language, "Close")).clicked() {
                    out.push(AppCommand::CloseLesson);
                }
            });
            ui.heading(lesson.title.get(language));
            ui.label(lesson.text.get(language));
            ui.add_space(6.0);
            ui.strong(tr(language, "Try this"));
            let current = progress.current();
            for (i, step) in lesson.steps.iter().enumerate() {
                let mut done = progress.done[i];
                let text = RichText::new(format!("{}. {}", i + 1, step.text(language)));
                let text = if Some(i) == current {
                    text.strong()
                } else {
                    text
                };
                // ticked by the run, not by hand
                ui.add_enabled(false, egui::Checkbox::new(&mut done, text));
            }
            if current.is_none() {
                ui.colored_label(
                    egui::Color32::from_rgb(120, 220, 140),
                    tr(language, "Every step of this lesson happened."),
                );
            }
            if ui
                .button(tr(language, "Load the lesson's preset again"))
                .clicked()
            {
                out.push(AppCommand::OpenLesson(place.0));
            }
        });
    }
}
