//! What the window does for a class: opening a lesson with its preset, and switching the
//! language (with the CJK font Chinese needs).

use super::{ExplorerApp, PlanEdit, fonts};

impl ExplorerApp {
    /// Opens the lesson at `place` in the course with its preset (the run, if any, goes on
    /// until Reset; a plan change that needs one says so).
    pub(super) fn open_lesson(&mut self, place: usize) {
        let Some(lesson) = self.state.lessons.get(place).cloned() else {
            return;
        };
        match lesson.plan() {
            Ok(plan) => self.edit_plan(PlanEdit::Replace(Box::new(plan))),
            Err(e) => self.state.banner.error = Some(e.to_string()),
        }
        self.state.lesson = Some(crate::lessons::Progress::new(lesson));
    }

    /// Switches the language; Chinese first needs a CJK font, and without one the window
    /// says so and stays in English.
    pub(super) fn set_language(&mut self, language: crate::i18n::Language) {
        use crate::i18n::Language;
        if language == Language::Zh && !self.cjk_font {
            match fonts::install_cjk_font(&self.ctx, self.font_candidates) {
                Ok(_) => self.cjk_font = true,
                Err(why) => {
                    self.state.language_note = Some(why);
                    self.state.language = Language::En;
                    return;
                }
            }
        }
        self.state.language_note = None;
        self.state.language = language;
        crate::i18n::set_thread_language(language);
    }
}
