//! The granularity picker of the Pruning section: what a pruning step removes together
//! (single weights, N of every M, blocks, whole channels, attention heads) and that
//! pattern's sizes.

use eframe::egui::{DragValue, Ui};

use crate::app::tips;
use crate::app::widgets::labelled;
use crate::i18n::t;
use crate::prune::{BlockScore, Granularity};

/// The granularity kind a selectable button stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unstructured,
    NOfM,
    Block,
    Channel,
    Head,
}

fn kind_of(g: &Granularity) -> Kind {
    match g {
        Granularity::Unstructured => Kind::Unstructured,
        Granularity::NOfM { .. } => Kind::NOfM,
        Granularity::Block { .. } => Kind::Block,
        Granularity::Channel => Kind::Channel,
        Granularity::Head => Kind::Head,
    }
}

/// The plan's granularity, edited.
pub struct GranularityPicker<'a> {
    pub granularity: &'a mut Granularity,
}

impl GranularityPicker<'_> {
    pub fn ui(self, ui: &mut Ui) {
        let g = self.granularity;
        let mut kind = kind_of(g);
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut kind, Kind::Unstructured, t("unstructured"))
                .on_hover_text(t(tips::UNSTRUCTURED));
            ui.selectable_value(&mut kind, Kind::NOfM, "N:M")
                .on_hover_text(t(tips::NM));
            ui.selectable_value(&mut kind, Kind::Block, t("block"))
                .on_hover_text(t(tips::BLOCK));
            ui.selectable_value(&mut kind, Kind::Channel, t("channel"))
                .on_hover_text(t(tips::CHANNEL));
            ui.selectable_value(&mut kind, Kind::Head, t("head"))
                .on_hover_text(t(tips::HEAD));
        });
        if kind != kind_of(g) {
            *g = match kind {
                Kind::Unstructured => Granularity::Unstructured,
                Kind::NOfM => Granularity::NOfM { n: 2, m: 4 },
                Kind::Block => Granularity::Block {
                    rows: 4,
                    cols: 4,
                    score: BlockScore::Mean,
                },
                Kind::Channel => Granularity::Channel,
                Kind::Head => Granularity::Head,
            };
        }
        match g {
            Granularity::NOfM { n, m } => {
                ui.horizontal(|ui| {
                    labelled(
                        ui,
                        "keep N",
                        tips::NM,
                        DragValue::new(n).range(1..=(*m - 1).max(1)),
                    );
                    labelled(ui, "of every M", tips::NM, DragValue::new(m).range(2..=32));
                    *n = (*n).clamp(1, *m - 1);
                    ui.label(format!(
                        "= {:.0}% sparse",
                        100.0 * (1.0 - *n as f64 / *m as f64)
                    ));
                });
            }
            Granularity::Block { rows, cols, score } => {
                ui.horizontal(|ui| {
                    labelled(ui, "block", tips::BLOCK, DragValue::new(rows).range(1..=64));
                    labelled(ui, "x", tips::BLOCK, DragValue::new(cols).range(1..=64));
                    ui.selectable_value(score, BlockScore::Mean, t("mean |w|"))
                        .on_hover_text("Score a block by the mean magnitude of its weights.");
                    ui.selectable_value(score, BlockScore::Max, t("max |w|"))
                        .on_hover_text("Score a block by its largest weight: a block with one important weight survives.");
                });
            }
            _ => {}
        }
    }
}
