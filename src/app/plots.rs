//! The plots of the Training tab: loss, accuracy, accuracy against sparsity, the
//! schedule, per-layer sparsity and the weight histogram, each with its legend in a row
//! above it (never over the data).

use eframe::egui;
use egui::{Color32, Ui};
use egui_plot::{Bar, BarChart, HLine, Line, MarkerShape, Plot, PlotPoint, Points, Text, VLine};

use super::history::{Overlays, RunHistory};
use super::layers::LayerView;
use super::legend::{LegendEntry, LegendMark, legend_row, shortened};
use super::plot_style::{RUN, category_names, format_mark, readable_marks};
use crate::i18n::{t, tf};

/// Colour of the dense baseline and of the current step.
const BASELINE: Color32 = Color32::from_rgb(150, 150, 150);
/// Colour of the planned targets.
const TARGET: Color32 = Color32::from_rgb(255, 170, 60);
/// Evaluations right after a cut, and after the recovery from it.
const AFTER_CUT: Color32 = Color32::from_rgb(240, 110, 90);
const RECOVERED: Color32 = Color32::from_rgb(110, 215, 130);
/// The evaluation under the pointer, on every plot.
const HIGHLIGHT: Color32 = Color32::from_rgb(250, 90, 200);

/// Colour of the `i`th earlier run, faded behind the current one.
fn faded(i: usize) -> Color32 {
    let palette = [
        Color32::from_rgb(200, 120, 200),
        Color32::from_rgb(120, 200, 140),
        Color32::from_rgb(220, 200, 100),
        Color32::from_rgb(230, 120, 110),
    ];
    palette[i % palette.len()].gamma_multiply(0.45)
}

/// The earlier runs faded and the current one, as lines of the series `pick` chooses;
/// returns their legend entries.
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

/// Legend entries for the lines [`run_lines`] draws: the earlier runs that have points in
/// the series `pick` chooses, then the current run.
fn run_entries(
    current: &RunHistory,
    overlays: &Overlays,
    pick: impl Fn(&RunHistory) -> &super::history::Series,
) -> Vec<LegendEntry> {
    let mut entries: Vec<LegendEntry> = overlays
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| !pick(r).is_empty())
        .map(|(i, r)| LegendEntry::new(faded(i), LegendMark::Line, shortened(&r.name)))
        .collect();
    let name = if current.name.is_empty() {
        t("this run").to_string()
    } else {
        shortened(&current.name)
    };
    entries.push(LegendEntry::new(RUN, LegendMark::Line, name));
    entries
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
    let mut entries = run_entries(current, overlays, |r| &r.loss);
    entries.extend(highlight_entry(highlight));
    legend_row(ui, &entries);
    readable_plot("loss", height)
        .x_axis_label(t("step"))
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
    let mut entries = run_entries(current, overlays, |r| &r.accuracy);
    if current.baseline.is_some() {
        entries.push(LegendEntry::new(
            BASELINE,
            LegendMark::Line,
            t("dense baseline"),
        ));
    }
    entries.extend(highlight_entry(highlight));
    legend_row(ui, &entries);
    readable_plot("accuracy", height)
        .x_axis_label(t("step"))
        .show(ui, |plot| {
            run_lines(plot, current, overlays, |r| &r.accuracy);
            if let Some(b) = current.baseline {
                plot.hline(HLine::new(t("dense baseline"), b).color(BASELINE));
            }
            mark_highlight(plot, highlight);
        });
}

/// A plot of `height` with readable marks on both axes.
fn readable_plot(id: &str, height: f32) -> Plot<'static> {
    Plot::new(id)
        .height(height)
        .x_grid_spacer(readable_marks)
        .y_grid_spacer(readable_marks)
        .x_axis_formatter(format_mark)
        .y_axis_formatter(format_mark)
}

/// The legend entry of the evaluation under the pointer, when there is one.
fn highlight_entry(highlight: Option<Highlight>) -> Option<LegendEntry> {
    highlight.map(|h| LegendEntry::new(HIGHLIGHT, LegendMark::Line, highlight_label(&h)))
}

/// Each evaluation a point, the run's trajectory a line through them in order (the
/// prune-and-recover sawtooth), points right after a cut and after the recovery from it
/// marked apart, the dense baseline a horizontal line, earlier runs faded. Returns the
/// evaluation under the pointer (named here, and for the other plots to mark).
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
    legend_row(ui, &accuracy_vs_sparsity_entries(current, overlays));
    readable_plot("acc-vs-sparsity", height)
        .x_axis_label(t("sparsity"))
        .y_axis_label(t("accuracy"))
        .include_x(0.0)
        .include_x(1.0)
        .show(ui, |plot| {
            run_lines(plot, current, overlays, |r| &r.accuracy_vs_sparsity);
            evaluation_points(plot, current);
            if let Some(b) = current.baseline {
                plot.hline(HLine::new(t("dense baseline"), b).color(BASELINE));
            }
            pointed_evaluation(plot, current, steps_per_epoch)
        })
        .inner
}

/// The legend of the accuracy-against-sparsity plot: the runs, the kinds of evaluation,
/// and the dense baseline when there is one.
fn accuracy_vs_sparsity_entries(current: &RunHistory, overlays: &Overlays) -> Vec<LegendEntry> {
    let mut entries = run_entries(current, overlays, |r| &r.accuracy_vs_sparsity);
    entries.extend([
        LegendEntry::new(AFTER_CUT, LegendMark::Down, t("right after a cut")),
        LegendEntry::new(RECOVERED, LegendMark::Up, t("after recovery")),
        LegendEntry::new(RUN, LegendMark::Dot, t("other evaluations")),
    ]);
    if current.baseline.is_some() {
        entries.push(LegendEntry::new(
            BASELINE,
            LegendMark::Line,
            t("dense baseline"),
        ));
    }
    entries
}

/// The current run's evaluations as points, marked by the moment they measure.
fn evaluation_points(plot: &mut egui_plot::PlotUi<'_>, current: &RunHistory) {
    for (name, series, colour, shape) in [
        (
            t("other evaluations"),
            &current.scheduled,
            RUN,
            MarkerShape::Circle,
        ),
        (
            t("right after a cut"),
            &current.after_cut,
            AFTER_CUT,
            MarkerShape::Down,
        ),
        (
            t("after recovery"),
            &current.recovered,
            RECOVERED,
            MarkerShape::Up,
        ),
    ] {
        plot.points(
            Points::new(name, series.points().to_vec())
                .color(colour)
                .shape(shape)
                .filled(true)
                .radius(if shape == MarkerShape::Circle {
                    3.0
                } else {
                    4.5
                }),
        );
    }
}

/// The evaluation under the pointer, ringed and named on the plot.
fn pointed_evaluation(
    plot: &mut egui_plot::PlotUi<'_>,
    current: &RunHistory,
    steps_per_epoch: u64,
) -> Option<Highlight> {
    // its step from the accuracy series, pushed alongside
    let points = current.accuracy_vs_sparsity.points();
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
    let mut entries = vec![
        LegendEntry::new(TARGET, LegendMark::Line, t("planned target")),
        LegendEntry::new(RUN, LegendMark::Dot, t("achieved")),
    ];
    if now.is_some() {
        entries.push(LegendEntry::new(BASELINE, LegendMark::Line, t("now")));
    }
    entries.extend(highlight_entry(highlight));
    legend_row(ui, &entries);
    readable_plot("schedule", height)
        .x_axis_label(t("step"))
        .include_y(0.0)
        .include_y(1.0)
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
    legend_row(
        ui,
        &[
            LegendEntry::new(TARGET.gamma_multiply(0.5), LegendMark::Bar, t("target")),
            LegendEntry::new(RUN, LegendMark::Bar, t("achieved")),
        ],
    );
    Plot::new("layer-bars")
        .height(height)
        .y_grid_spacer(readable_marks)
        .y_axis_formatter(format_mark)
        .include_y(0.0)
        .include_y(1.0)
        .x_axis_formatter(category_names(names))
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new(t("target"), targets).color(TARGET.gamma_multiply(0.5)));
            plot.bar_chart(BarChart::new(t("achieved"), bars).color(RUN));
        });
}

/// Histogram of `|w|` over the kept weights of one layer, with the threshold of the last
/// cut: the weights kept then were all at or above it (they may shrink below it since).
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
    let line = layer.last_cut.map(|cut| {
        (
            tf(
                "threshold of the last cut (step {}): {}",
                &[&cut.step, &format!("{:.4}", cut.threshold)],
            ),
            cut.threshold,
        )
    });
    let mut entries = vec![LegendEntry::new(RUN, LegendMark::Bar, t("kept weights"))];
    match &line {
        Some((label, _)) => entries.push(LegendEntry::new(TARGET, LegendMark::Line, label.clone())),
        None if layer.sparsity > 0.0 => entries.push(LegendEntry::new(
            BASELINE,
            LegendMark::Line,
            t("no single |w| threshold: this layer is not cut by magnitude alone"),
        )),
        None => {}
    }
    legend_row(ui, &entries);
    readable_plot("histogram", height)
        .x_axis_label(t("|w| of kept weights"))
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new(t("kept weights"), bars).color(RUN));
            if let Some((label, threshold)) = line {
                plot.vline(VLine::new(label, threshold).color(TARGET));
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

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
