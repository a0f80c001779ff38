//! The centre of the window apart from the plots: the mask tiles and the Export tab.

use eframe::egui;
use egui::Ui;
use egui_plot::{Bar, BarChart, Plot, PlotImage, PlotPoint};

use super::command::AppCommand;
use super::files::FilePurpose;
use super::layers::{LayerView, MaskLayout, layouts};
use super::plots::{RUN, category_names};
use crate::i18n::{t, tf};

/// Height of the mask tiles: enough for the tallest image at the tiles' width, within
/// `[110, max]`, so the plots get the rest.
pub fn tile_height(available_width: f32, layers: &[LayerView], max: f32) -> f32 {
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

/// A tile per prunable layer: the mask as a zoomable, pannable image with hover details.
pub fn mask_tiles(ui: &mut Ui, layers: &mut [LayerView], tile_height: f32) {
    if layers.is_empty() {
        ui.label(t(
            "Masks appear here once training starts: one tile per prunable layer.",
        ));
        return;
    }
    let ctx = ui.ctx().clone();
    let count = layers.len() as f32;
    let width = ((ui.available_width() - 8.0 * (count - 1.0)) / count).max(160.0);
    ui.horizontal_top(|ui| {
        for layer in layers.iter_mut() {
            ui.vertical(|ui| {
                ui.set_width(width);
                ui.horizontal(|ui| {
                    ui.strong(&layer.info.name);
                    ui.label(tf(
                        "{} · {}% pruned",
                        &[&layer.info.shape, &format!("{:.1}", 100.0 * layer.sparsity)],
                    ));
                });
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
                let [w, h] = layer.image_size();
                let name = layer.info.name.clone();
                let texture = layer.texture(&ctx).map(|t| t.id());
                let response = Plot::new(("mask", &name))
                    .height(tile_height)
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
                ui.small(hover.unwrap_or_else(|| t("hover for a weight; drag to pan, scroll to zoom, double-click to reset").into()));
            });
        }
    });
}

/// The Export tab: export and inference-timing buttons, the size report as numbers and
/// bars, and dense against sparse inference times.
pub struct ExportPanel<'a> {
    pub report: Option<&'a crate::train::ExportReport>,
    pub bench: Option<&'a crate::infer::bench::InferBench>,
    /// A model is trained or loaded.
    pub have_model: bool,
}

impl ExportPanel<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        let Self {
            report,
            bench,
            have_model,
        } = self;
        ui.label(t("A pruned model's file only shrinks with a sparse representation: the dense file keeps every zero. The sparse files store each mask in its smallest encoding (bitmask, indices, or 2 bits per kept weight for 2:4) and only the kept values, as f32 or as int8 with one scale per output channel."));
        ui.horizontal(|ui| {
        if ui
            .add_enabled(have_model, egui::Button::new(t("Export to folder…")))
            .on_hover_text("Writes model.safetensors (dense weights and masks for PyTorch), model-f32.spx and model-int8.spx, reloads both and evaluates them.")
            .on_disabled_hover_text("Train or load a model first.")
            .clicked()
        {
            out.push(AppCommand::ChooseFile(FilePurpose::ExportModel));
        }
        if ui
            .add_enabled(have_model, egui::Button::new(t("Benchmark inference")))
            .on_hover_text("Time the model on the CPU, dense against sparse (CSR for scattered zeros, a 2:4 kernel, pruned neurons removed), at batch 1 and 128; convolutions run as weight matrices over image patches.")
            .on_disabled_hover_text("Train or load a model first.")
            .clicked()
        {
            out.push(AppCommand::BenchInfer);
        }
    });
        if let Some(b) = bench {
            egui::Grid::new("infer-bench").striped(true).show(ui, |ui| {
                for h in ["", "dense", "sparse", "speed-up"] {
                    ui.strong(h);
                }
                ui.end_row();
                ui.label(t("batch 1 latency"));
                ui.label(format!("{:.1} us", b.dense_batch1_us));
                ui.label(format!("{:.1} us", b.sparse_batch1_us));
                ui.label(format!("{:.2}x", b.batch1_speedup));
                ui.end_row();
                ui.label(t("batch 128 throughput"));
                ui.label(format!("{:.0} /s", b.dense_batch128_samples_per_s));
                ui.label(format!("{:.0} /s", b.sparse_batch128_samples_per_s));
                ui.label(format!("{:.2}x", b.batch128_speedup));
                ui.end_row();
                ui.label(t("stored weights"));
                ui.label(b.dense_macs.to_string());
                ui.label(b.sparse_macs.to_string());
                ui.label(format!("max |diff| {:.1e}", b.max_abs_diff));
                ui.end_row();
            });
        }
        let Some(r) = report else {
            return;
        };
        let s = &r.sizes;
        let rows = s.rows();
        ui.columns(2, |cols| {
            egui::Grid::new("sizes")
                .striped(true)
                .show(&mut cols[0], |ui| {
                    ui.strong(t("form"));
                    ui.strong(t("bytes"));
                    ui.strong(t("of dense f32"));
                    ui.end_row();
                    for (name, bytes) in rows {
                        ui.label(name);
                        ui.label(bytes.to_string());
                        ui.label(format!(
                            "{:.3}x",
                            bytes as f64 / s.dense_f32_bytes.max(1) as f64
                        ));
                        ui.end_row();
                    }
                    for (label, value) in [
                        ("sparsity", format!("{:.3}", s.sparsity)),
                        ("accuracy", format!("{:.4}", r.accuracy)),
                        ("reloaded f32", format!("{:.4}", r.accuracy_f32_reloaded)),
                        ("reloaded int8", format!("{:.4}", r.accuracy_int8_reloaded)),
                    ] {
                        ui.label(label);
                        ui.label(value);
                        ui.end_row();
                    }
                });
            let names: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
            let bars: Vec<Bar> = rows
                .iter()
                .enumerate()
                .map(|(i, (n, b))| Bar::new(i as f64, *b as f64 / 1024.0).name(*n).width(0.7))
                .collect();
            Plot::new("sizes-bars")
                .height(260.0)
                .y_axis_label(t("KiB"))
                .include_y(0.0)
                .x_axis_formatter(category_names(names))
                .show(&mut cols[1], |plot| {
                    plot.bar_chart(BarChart::new(t("size"), bars).color(RUN))
                });
        });
    }
}
