//! The row of tabs above the centre: Training, Sensitivity, Sweeps and Export.

use eframe::egui::Ui;

use crate::app::state::Tab;
use crate::i18n::t;

/// The tabs of the centre.
pub struct TabBar<'a> {
    /// The tab shown, changed by a click.
    pub tab: &'a mut Tab,
}

impl TabBar<'_> {
    pub fn ui(self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            for (tab, name, tip) in [
                (Tab::Training, "Training", "Masks and plots of the run."),
                (
                    Tab::Sensitivity,
                    "Sensitivity",
                    "Which layers tolerate pruning: each layer pruned alone at each level.",
                ),
                (
                    Tab::Sweeps,
                    "Sweeps",
                    "Accuracy against sparsity for several targets and granularities.",
                ),
                (
                    Tab::Export,
                    "Export",
                    "Sparse and quantized model files, and what they weigh.",
                ),
            ] {
                ui.selectable_value(self.tab, tab, t(name))
                    .on_hover_text(t(tip));
            }
        });
    }
}
