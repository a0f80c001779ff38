//! The centre of the window: mask tiles and the plots.

use eframe::egui;
use egui::{Color32, Ui};
use egui_plot::{
    Bar, BarChart, Corner, GridInput, GridMark, HLine, Legend, Line, Plot, PlotImage, PlotPoint,
    Points, Text, VLine,
};

use super::command::AppCommand;
use super::files::FilePurpose;
use super::history::{Overlays, RunHistory};
use super::layers::{LayerView, MaskLayout, layouts};
use crate::i18n::{t, tf};

/// Colour of the current run in plots.
const RUN: Color32 = Color32::from_rgb(90, 170, 255);
const BASELINE: Color32 = Color32::from_rgb(150, 150, 150);
const TARGET: Color32 = Color32::from_rgb(255, 170, 60);
/// The evaluation under the pointer, on every plot.
const HIGHLIGHT: Color32 = Color32::from_rgb(250, 90, 200);

/// Axis marks on a 1-2-5 ladder with about four labelled steps across the plot, so small
/// plots keep their labels (egui_plot's default ladder is powers of ten only).
pub(crate) fn readable_marks(input: GridInput) -> Vec<GridMark> {
    let (lo, hi) = input.bounds;
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return Vec::new();
    }
    let raw = span / 4.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let minor = step / 5.0;
    let first = (lo / minor).ceil() as i64;
    let last = (hi / minor).floor() as i64;
    (first..=last)
        .map(|i| {
            let value = i as f64 * minor;
            let major = (value / step - (value / step).round()).abs() < 1e-9;
            GridMark {
                value,
                step_size: if major { step } else { minor },
            }
        })
        .collect()
}

/// A mark's value with as many decimals as its step needs (0.5, 0.05, 2000).
pub(crate) fn format_mark(mark: GridMark, _range: &std::ops::RangeInclusive<f64>) -> String {
    let decimals = if mark.step_size >= 1.0 {
        0
    } else {
        (-mark.step_size.log10()).ceil() as usize
    };
    format!("{:.*}", decimals, mark.value)
}

/// Labels bar `i` (at x = i) with `names[i]`, and nothing between bars.
fn category_names(
    names: Vec<String>,
) -> impl Fn(GridMark, &std::ops::RangeInclusive<f64>) -> String {
    move |mark, _| {
        let i = mark.value.round();
        if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

fn faded(i: usize) -> Color32 {
    let palette = [
        Color32::from_rgb(200, 120, 200),
        Color32::from_rgb(120, 200, 140),
        Color32::from_rgb(220, 200, 100),
        Color32::from_rgb(230, 120, 110),
    ];
    palette[i % palette.len()].gamma_multiply(0.45)
}

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

fn run_lines<'a>(
    plot: &mut egui_plot::PlotUi<'a>,
    current: &'a RunHistory,
    overlays: &'a Overlays,
    pick: impl Fn(&RunHistory) -> &super::history::Series,
) {
    for (i, run) in overlays.runs.iter().enumerate() {
        let s = pick(run);
        if !s.is_empty() {
            plot.line(
                Line::new(run.name.clone(), s.points().to_vec())
                    .color(faded(i))
                    .allow_band(false),
            );
        }
    }
    let s = pick(current);
    plot.line(
        Line::new(current.name.clone(), s.points().to_vec())
            .color(RUN)
            .width(2.0)
            .allow_band(false),
    );
}

/// What an empty plot shows instead of bare axes: where its data will come from.
pub mod hints {
    pub const LOSS: &str = "Press Start: the training loss of every step appears here.";
    pub const ACCURACY: &str = "The test accuracy appears here after the first evaluation (the dense baseline comes right before pruning begins).";
    pub const ACCURACY_VS_SPARSITY: &str =
        "Each evaluation adds a point here: the test accuracy at the sparsity the masks had then.";
    pub const SCHEDULE: &str =
        "The plan's schedule cannot run as it is: the left panel says what to change.";
    pub const LAYERS: &str = "The prunable layers appear here when a run starts.";
    pub const HISTOGRAM: &str =
        "The magnitudes of the kept weights appear here with the first snapshot.";
}

/// A frame of the plot's size with `text` in its middle, for a plot with nothing to show.
fn empty_plot(ui: &mut Ui, height: f32, text: &'static str) {
    let text = t(text);
    let size = egui::vec2(ui.available_width(), height);
    ui.allocate_ui_with_layout(
        size,
        egui::Layout::centered_and_justified(egui::Direction::TopDown),
        |ui| {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_min_size(size - egui::vec2(12.0, 12.0));
                ui.centered_and_justified(|ui| ui.weak(text));
            });
        },
    );
}

/// The evaluation under the pointer on the accuracy-against-sparsity plot, marked on the
/// plots over steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Highlight {
    pub step: u64,
    pub epoch: f64,
}

/// Pixels from a point within which the pointer picks it.
const PICK_RADIUS: f32 = 12.0;

/// The index of the point nearest to `pointer` within `radius` (screen positions).
pub fn nearest_point(points: &[egui::Pos2], pointer: egui::Pos2, radius: f32) -> Option<usize> {
    points
        .iter()
        .enumerate()
        .map(|(i, p)| (i, p.distance(pointer)))
        .filter(|(_, d)| *d <= radius)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// How a highlighted evaluation is named on the plots.
pub fn highlight_label(h: &Highlight) -> String {
    format!("step {} · epoch {:.2}", h.step, h.epoch)
}

/// The highlighted evaluation as a vertical line on a plot over steps.
fn mark_highlight(plot: &mut egui_plot::PlotUi<'_>, highlight: Option<Highlight>) {
    if let Some(h) = highlight {
        plot.vline(
            VLine::new(highlight_label(&h), h.step as f64)
                .color(HIGHLIGHT)
                .width(2.0),
        );
    }
}

pub fn loss_plot(
    ui: &mut Ui,
    current: &RunHistory,
    overlays: &Overlays,
    height: f32,
    highlight: Option<Highlight>,
) {
    ui.strong(t("Training loss"));
    if current.loss.is_empty() && overlays.runs.is_empty() {
        return empty_plot(ui, height, hints::LOSS);
    }
    Plot::new("loss")
        .height(height)
        .x_grid_spacer(readable_marks)
        .y_grid_spacer(readable_marks)
        .x_axis_formatter(format_mark)
        .y_axis_formatter(format_mark)
        .x_axis_label(t("step"))
        .legend(Legend::default().position(Corner::RightTop))
        .show(ui, |plot| {
            run_lines(plot, current, overlays, |r| &r.loss);
            mark_highlight(plot, highlight);
        });
}

pub fn accuracy_plot(
    ui: &mut Ui,
    current: &RunHistory,
    overlays: &Overlays,
    height: f32,
    highlight: Option<Highlight>,
) {
    ui.strong(t("Test accuracy"));
    if current.accuracy.is_empty() && current.baseline.is_none() && overlays.runs.is_empty() {
        return empty_plot(ui, height, hints::ACCURACY);
    }
    Plot::new("accuracy")
        .height(height)
        .x_grid_spacer(readable_marks)
        .y_grid_spacer(readable_marks)
        .x_axis_formatter(format_mark)
        .y_axis_formatter(format_mark)
        .x_axis_label(t("step"))
        .legend(Legend::default().position(Corner::RightBottom))
        .show(ui, |plot| {
            run_lines(plot, current, overlays, |r| &r.accuracy);
            if let Some(b) = current.baseline {
                plot.hline(HLine::new(t("dense baseline"), b).color(BASELINE));
            }
            mark_highlight(plot, highlight);
        });
}

/// Each evaluation a point, the run's trajectory a line, the dense baseline a horizontal
/// line, earlier runs faded. Returns the evaluation under the pointer (named here, and for
/// the other plots to mark).
pub fn accuracy_vs_sparsity_plot(
    ui: &mut Ui,
    current: &RunHistory,
    overlays: &Overlays,
    height: f32,
    steps_per_epoch: u64,
) -> Option<Highlight> {
    ui.strong(t("Accuracy against sparsity"));
    if current.accuracy_vs_sparsity.is_empty()
        && current.baseline.is_none()
        && overlays.runs.is_empty()
    {
        empty_plot(ui, height, hints::ACCURACY_VS_SPARSITY);
        return None;
    }
    Plot::new("acc-vs-sparsity")
        .height(height)
        .x_grid_spacer(readable_marks)
        .y_grid_spacer(readable_marks)
        .x_axis_formatter(format_mark)
        .y_axis_formatter(format_mark)
        .x_axis_label(t("sparsity"))
        .y_axis_label(t("accuracy"))
        .include_x(0.0)
        .include_x(1.0)
        .legend(Legend::default().position(Corner::LeftBottom))
        .show(ui, |plot| {
            run_lines(plot, current, overlays, |r| &r.accuracy_vs_sparsity);
            let points = current.accuracy_vs_sparsity.points();
            plot.points(
                Points::new(t("evaluations"), points.to_vec())
                    .color(RUN)
                    .radius(3.0),
            );
            if let Some(b) = current.baseline {
                plot.hline(HLine::new(t("dense baseline"), b).color(BASELINE));
            }
            // the pointed evaluation: its step from the accuracy series, pushed alongside
            let pointer = plot.response().hover_pos()?;
            let screen: Vec<egui::Pos2> = points
                .iter()
                .map(|p| plot.screen_from_plot(PlotPoint::new(p[0], p[1])))
                .collect();
            let i = nearest_point(&screen, pointer, PICK_RADIUS)?;
            let step = current.accuracy.points().get(i)?[0] as u64;
            let h = Highlight {
                step,
                epoch: step as f64 / steps_per_epoch.max(1) as f64,
            };
            let [x, y] = points[i];
            plot.points(
                Points::new(highlight_label(&h), vec![[x, y]])
                    .color(HIGHLIGHT)
                    .radius(6.0)
                    .filled(false),
            );
            plot.text(
                Text::new(
                    t("pointed evaluation"),
                    PlotPoint::new(x, y),
                    highlight_label(&h),
                )
                .anchor(egui::Align2::LEFT_BOTTOM)
                .color(HIGHLIGHT),
            );
            Some(h)
        })
        .inner
}

/// The planned schedule for the whole run, achieved sparsity at each pruning step, and a
/// marker at the current step.
pub fn schedule_plot(
    ui: &mut Ui,
    planned: &[[f64; 2]],
    current: &RunHistory,
    now: Option<u64>,
    height: f32,
    highlight: Option<Highlight>,
) {
    ui.strong(t("Sparsity: planned and achieved"));
    if planned.is_empty() && current.achieved.is_empty() {
        return empty_plot(ui, height, hints::SCHEDULE);
    }
    Plot::new("schedule")
        .height(height)
        .x_grid_spacer(readable_marks)
        .y_grid_spacer(readable_marks)
        .x_axis_formatter(format_mark)
        .y_axis_formatter(format_mark)
        .x_axis_label(t("step"))
        .include_y(0.0)
        .include_y(1.0)
        .legend(Legend::default().position(Corner::RightBottom))
        .show(ui, |plot| {
            plot.line(
                Line::new(t("planned target"), planned.to_vec())
                    .color(TARGET)
                    .allow_band(false),
            );
            plot.points(
                Points::new(t("achieved"), current.achieved.points().to_vec())
                    .color(RUN)
                    .radius(2.5),
            );
            if let Some(step) = now {
                plot.vline(VLine::new(t("now"), step as f64).color(BASELINE));
            }
            mark_highlight(plot, highlight);
        });
}

pub fn layer_sparsity_bars(ui: &mut Ui, layers: &[LayerView], height: f32) {
    ui.strong(t("Per-layer sparsity"));
    if layers.is_empty() {
        return empty_plot(ui, height, hints::LAYERS);
    }
    let bars: Vec<Bar> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| Bar::new(i as f64, l.sparsity).name(&l.info.name).width(0.6))
        .collect();
    let targets: Vec<Bar> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| Bar::new(i as f64, l.target).name(&l.info.name).width(0.8))
        .collect();
    let names: Vec<String> = layers.iter().map(|l| l.info.name.clone()).collect();
    Plot::new("layer-bars")
        .height(height)
        .y_grid_spacer(readable_marks)
        .y_axis_formatter(format_mark)
        .include_y(0.0)
        .include_y(1.0)
        .legend(Legend::default())
        .x_axis_formatter(category_names(names))
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new(t("target"), targets).color(TARGET.gamma_multiply(0.5)));
            plot.bar_chart(BarChart::new(t("achieved"), bars).color(RUN));
        });
}

/// Histogram of `|w|` over the kept weights of one layer, with the pruning threshold.
pub fn histogram_plot(ui: &mut Ui, layers: &[LayerView], selected: &mut usize, height: f32) {
    ui.horizontal(|ui| {
        ui.strong(t("Weight magnitudes of"));
        for (i, l) in layers.iter().enumerate() {
            ui.selectable_value(selected, i, &l.info.name)
                .on_hover_text("Show this layer's histogram");
        }
    });
    let Some(layer) = layers.get(*selected).filter(|l| !l.histogram.is_empty()) else {
        return empty_plot(ui, height, hints::HISTOGRAM);
    };
    let bars: Vec<Bar> = layer
        .histogram
        .iter()
        .map(|b| Bar::new(b[0], b[1]).width(layer.bin_width))
        .collect();
    Plot::new("histogram")
        .height(height)
        .x_grid_spacer(readable_marks)
        .y_grid_spacer(readable_marks)
        .x_axis_formatter(format_mark)
        .y_axis_formatter(format_mark)
        .x_axis_label(t("|w| of kept weights"))
        .legend(Legend::default())
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new(t("kept weights"), bars).color(RUN));
            if let Some(t) = layer.threshold {
                plot.vline(VLine::new(tf("threshold {}", &[&format!("{t:.4}")]), t).color(TARGET));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_follow_a_1_2_5_ladder_with_about_four_labels() {
        let marks = readable_marks(GridInput {
            bounds: (0.0, 6566.0),
            base_step_size: 1.0,
        });
        let major: Vec<f64> = marks
            .iter()
            .filter(|m| m.step_size == 2000.0)
            .map(|m| m.value)
            .collect();
        assert_eq!(major, vec![0.0, 2000.0, 4000.0, 6000.0]);
        let unit = readable_marks(GridInput {
            bounds: (-0.05, 1.05),
            base_step_size: 0.001,
        });
        assert!(unit.iter().any(|m| m.value == 0.5 && m.step_size == 0.5));
        let half = GridMark {
            value: 0.5,
            step_size: 0.5,
        };
        assert_eq!(format_mark(half, &(0.0..=1.0)), "0.5");
        let big = GridMark {
            value: 4000.0,
            step_size: 2000.0,
        };
        assert_eq!(format_mark(big, &(0.0..=1.0)), "4000");
        assert!(
            readable_marks(GridInput {
                bounds: (1.0, 1.0),
                base_step_size: 0.1
            })
            .is_empty()
        );
    }

    #[test]
    fn the_pointer_picks_the_nearest_evaluation_within_reach() {
        let p = |x, y| egui::pos2(x, y);
        let points = [p(10.0, 10.0), p(30.0, 10.0), p(31.0, 30.0)];
        assert_eq!(nearest_point(&points, p(28.0, 12.0), 12.0), Some(1));
        assert_eq!(nearest_point(&points, p(31.0, 26.0), 12.0), Some(2));
        assert_eq!(nearest_point(&points, p(100.0, 100.0), 12.0), None);
        assert_eq!(nearest_point(&[], p(0.0, 0.0), 12.0), None);
        let h = Highlight {
            step: 340,
            epoch: 5.396,
        };
        assert_eq!(highlight_label(&h), "step 340 · epoch 5.40");
    }
}
