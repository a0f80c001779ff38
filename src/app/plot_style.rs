//! How every tab's plots read: axis marks on a 1-2-5 ladder and their labels, names under
//! bars, the current run's colour and the palette of the analyses' lines. The Training,
//! Sensitivity, Sweeps and Export tabs share these, so they live apart from any one plot.

use eframe::egui::Color32;
use egui_plot::{GridInput, GridMark};

/// Colour of the current run in plots.
pub(crate) const RUN: Color32 = Color32::from_rgb(90, 170, 255);

/// Colours of the analyses' lines, one per layer or per sweep line, in turn.
pub(crate) const PALETTE: [Color32; 8] = [
    Color32::from_rgb(90, 170, 255),
    Color32::from_rgb(255, 170, 60),
    Color32::from_rgb(120, 210, 140),
    Color32::from_rgb(230, 110, 110),
    Color32::from_rgb(200, 140, 230),
    Color32::from_rgb(230, 210, 100),
    Color32::from_rgb(100, 210, 210),
    Color32::from_rgb(200, 200, 200),
];

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
pub(crate) fn category_names(
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
}
