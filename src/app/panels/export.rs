//! The Export tab: export and inference-timing buttons, the size report as numbers and
//! bars, and dense against sparse inference times.

use eframe::egui;
use egui::Ui;
use egui_plot::{Bar, BarChart, Plot};

use crate::app::command::AppCommand;
use crate::app::files::FilePurpose;
use crate::app::plot_style::{RUN, category_names};
use crate::i18n::t;
use crate::infer::bench::InferBench;
use crate::train::ExportReport;

/// The Export tab.
pub struct ExportPanel<'a> {
    pub report: Option<&'a ExportReport>,
    pub bench: Option<&'a InferBench>,
    /// A model is trained or loaded.
    pub have_model: bool,
}

impl ExportPanel<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        ui.label(t("A pruned model's file only shrinks with a sparse representation: the dense file keeps every zero. The sparse files store each mask in its smallest encoding (bitmask, indices, or 2 bits per kept weight for 2:4) and only the kept values, as f32 or as int8 with one scale per output channel."));
        buttons(ui, self.have_model, out);
        if let Some(b) = self.bench {
            bench_table(ui, b);
        }
        if let Some(r) = self.report {
            ui.columns(2, |cols| {
                size_table(&mut cols[0], r);
                size_bars(&mut cols[1], r);
            });
        }
    }
}

/// Export to a folder, and time inference.
fn buttons(ui: &mut Ui, have_model: bool, out: &mut Vec<AppCommand>) {
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
}

/// Dense against sparse: latency at batch 1, throughput at batch 128, weights stored.
fn bench_table(ui: &mut Ui, b: &InferBench) {
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

/// Each form's size in bytes and against dense f32, then sparsity and accuracies.
fn size_table(ui: &mut Ui, r: &ExportReport) {
    let s = &r.sizes;
    egui::Grid::new("sizes").striped(true).show(ui, |ui| {
        ui.strong(t("form"));
        ui.strong(t("bytes"));
        ui.strong(t("of dense f32"));
        ui.end_row();
        for (name, bytes) in s.rows() {
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
        if let Some(c) = &r.compact {
            for (label, value) in [
                (
                    "smaller network: multiply-adds",
                    format!(
                        "{} -> {} ({:.2}x)",
                        c.macs_before,
                        c.macs_after,
                        c.macs_before as f64 / c.macs_after.max(1) as f64
                    ),
                ),
                (
                    "smaller network: parameters",
                    format!("{} -> {}", c.params_before, c.params_after),
                ),
                ("smaller network: accuracy", format!("{:.4}", c.accuracy)),
            ] {
                ui.label(t(label));
                ui.label(value);
                ui.end_row();
            }
        }
    });
}

/// Each form's size as a bar, in KiB.
fn size_bars(ui: &mut Ui, r: &ExportReport) {
    let rows = r.sizes.rows();
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
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new(t("size"), bars).color(RUN))
        });
}
