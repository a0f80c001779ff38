//! The Training tab: a mask tile per prunable layer, then two rows of plots (loss,
//! accuracy, accuracy against sparsity; the schedule, per-layer sparsity, the weight
//! histogram).

use eframe::egui::Ui;

use super::mask_tiles::MaskTiles;
use crate::app::history::{Overlays, RunHistory};
use crate::app::layers::LayerView;
use crate::app::plots::{self, Highlight};
use crate::app::state::RunStatus;

/// The Training tab.
pub struct TrainingPanel<'a> {
    pub layers: &'a mut [LayerView],
    /// The layer whose weight histogram is shown.
    pub selected_layer: &'a mut usize,
    /// The evaluation under the pointer, marked on the plots over steps.
    pub highlight: &'a mut Option<Highlight>,
    pub history: &'a RunHistory,
    pub overlays: &'a Overlays,
    pub status: &'a RunStatus,
    /// The edited plan's sparsity over steps, for the schedule plot.
    pub planned: &'a [[f64; 2]],
}

impl TrainingPanel<'_> {
    pub fn ui(self, ui: &mut Ui) {
        let Self {
            layers,
            selected_layer,
            highlight,
            history,
            overlays,
            status,
            planned,
        } = self;
        let height = ui.available_height();
        let tile_height = MaskTiles::height_for(ui.available_width(), layers, height * 0.4);
        // each plot has a title and a legend row above it
        let plot_height = ((height - tile_height - 190.0) / 2.0).clamp(90.0, 340.0);
        MaskTiles {
            layers: &mut *layers,
            height: tile_height,
        }
        .ui(ui);
        ui.separator();
        let now = status.active.then_some(status.step);
        // marked on the plots over steps in the frame after the pointer finds it
        let marked = *highlight;
        let spe = status.steps_per_epoch;
        let pointed = ui.columns(3, |cols| {
            plots::loss_plot(&mut cols[0], history, overlays, plot_height, marked);
            plots::accuracy_plot(&mut cols[1], history, overlays, plot_height, marked);
            plots::accuracy_vs_sparsity_plot(&mut cols[2], history, overlays, plot_height, spe)
        });
        let layers: &[LayerView] = layers;
        ui.columns(3, |cols| {
            plots::schedule_plot(&mut cols[0], planned, history, now, plot_height, marked);
            plots::layer_sparsity_bars(&mut cols[1], layers, plot_height);
            plots::histogram_plot(&mut cols[2], layers, selected_layer, plot_height);
        });
        *highlight = pointed;
    }
}
