//! The row of mask tiles at the top of the Training tab: a tile per prunable layer, its
//! mask as a zoomable, pannable image with hover details, and the layouts it can be
//! drawn in.

use eframe::egui;
use egui::Ui;
use egui_plot::{Plot, PlotImage, PlotPoint};

use crate::app::layers::{LayerView, MaskLayout, layouts};
use crate::i18n::{t, tf};

/// The mask tiles, one per prunable layer.
pub struct MaskTiles<'a> {
    pub layers: &'a mut [LayerView],
    /// Height of each tile's image ([`MaskTiles::height_for`]).
    pub height: f32,
}

impl MaskTiles<'_> {
    /// Height of the mask tiles: enough for the tallest image at the tiles' width, within
    /// `[110, max]`, so the plots get the rest.
    pub fn height_for(available_width: f32, layers: &[LayerView], max: f32) -> f32 {
        let n = layers.len().max(1) as f32;
        let width = ((available_width - 8.0 * (n - 1.0)) / n).max(160.0);
        layers
            .iter()
            .map(|l| {
                let [w, h] = l.image_size();
                width * h as f32 / w.max(1) as f32
            })
            .fold(110.0f32, f32::max)
            .min(max.max(110.0))
    }

    pub fn ui(self, ui: &mut Ui) {
        let Self { layers, height } = self;
        if layers.is_empty() {
            ui.label(t(
                "Masks appear here once training starts: one tile per prunable layer.",
            ));
            return;
        }
        let count = layers.len() as f32;
        let width = ((ui.available_width() - 8.0 * (count - 1.0)) / count).max(160.0);
        // a network of many layers scrolls sideways rather than squeezing its tiles
        egui::ScrollArea::horizontal()
            .id_salt("mask tiles")
            .show(ui, |ui| {
                ui.horizontal_top(|ui| {
                    for layer in layers.iter_mut() {
                        ui.vertical(|ui| {
                            ui.set_width(width);
                            tile(ui, layer, width, height);
                        });
                    }
                });
            });
    }
}

/// A color per channel group, the same in the tiles and the layer table.
pub fn group_color(group: usize) -> egui::Color32 {
    const COLORS: [egui::Color32; 6] = [
        egui::Color32::from_rgb(240, 180, 80),
        egui::Color32::from_rgb(120, 190, 250),
        egui::Color32::from_rgb(200, 140, 240),
        egui::Color32::from_rgb(120, 220, 160),
        egui::Color32::from_rgb(250, 130, 130),
        egui::Color32::from_rgb(220, 220, 120),
    ];
    COLORS[group % COLORS.len()]
}

/// One layer's tile: its name and sparsity, the layouts, the image, and what is under
/// the pointer.
fn tile(ui: &mut Ui, layer: &mut LayerView, width: f32, height: f32) {
    ui.horizontal(|ui| {
        ui.strong(&layer.info.name);
        ui.label(tf(
            "{} · {}% pruned",
            &[&layer.info.shape, &format!("{:.1}", 100.0 * layer.sparsity)],
        ));
        for role in &layer.info.groups {
            ui.label(egui::RichText::new(role.to_string()).small().color(group_color(role.group)))
                .on_hover_text(t(
                    "Channel group: these channels are pruned together in every layer of the group (out: the layer's output channels, its rows; in: the input channels it reads, its columns)",
                ));
        }
    });
    layout_choice(ui, layer);
    let ctx = ui.ctx().clone();
    let [w, h] = layer.image_size();
    let name = layer.info.name.clone();
    let texture = layer.texture(&ctx).map(|t| t.id());
    let response = Plot::new(("mask", &name))
        .height(height)
        .width(width)
        .data_aspect(1.0)
        .show_axes(false)
        .show_grid(false)
        .show_x(false)
        .show_y(false)
        .show(ui, |plot| {
            if let Some(tex) = texture {
                plot.image(PlotImage::new(
                    name.clone(),
                    tex,
                    PlotPoint::new(w as f64 / 2.0, h as f64 / 2.0),
                    [w as f32, h as f32],
                ));
            }
            plot.pointer_coordinate()
        });
    let hover = response.inner.and_then(|p| {
        (p.x >= 0.0 && p.y >= 0.0 && p.x < w as f64 && p.y < h as f64)
            .then(|| layer.describe_pixel(p.x as usize, h - 1 - p.y as usize))
            .flatten()
    });
    ui.small(hover.unwrap_or_else(|| {
        t("hover for a weight; drag to pan, scroll to zoom, double-click to reset").into()
    }));
}

/// The layouts this layer's mask can be drawn in, one selected.
fn layout_choice(ui: &mut Ui, layer: &mut LayerView) {
    ui.horizontal(|ui| {
        for l in layouts(&layer.info.shape) {
            let (name, tip) = match l {
                MaskLayout::FoldedKernels => ("kernels", "One pixel per kh x kw kernel: brightness is the fraction of the kernel kept; green: a kernel with a weight grown at the last RigL/SET exchange."),
                MaskLayout::Weights => ("weights", "One pixel per weight, rows are outputs, columns inputs (conv kernels expanded). Kept weights: warm positive, cool negative, brighter when larger; pruned: dark; green: grown at the last RigL/SET exchange."),
                MaskLayout::InputImage => ("inputs 28x28", "For each input pixel, the fraction of its weights kept, laid out as the image: pruning removes the border pixels that never carry ink. Green: an input that gained a weight at the last RigL/SET exchange."),
            };
            ui.selectable_value(&mut layer.layout, l, t(name)).on_hover_text(t(tip));
        }
    });
}
