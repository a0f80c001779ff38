//! A plot's legend as a row of entries above the plot, so that it never covers data or an
//! axis label, whatever the window's size (egui_plot draws its legend inside the frame).

use eframe::egui;
use egui::{
    Color32, Label, Pos2, RichText, Sense, Shape, Stroke, TextStyle, TextWrapMode, Ui, WidgetText,
    vec2,
};

/// Longest run name drawn in full; longer ones end with an ellipsis.
const MAX_LABEL_CHARS: usize = 32;

/// How an entry's series is drawn on its plot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegendMark {
    Line,
    Dot,
    /// A triangle pointing up.
    Up,
    /// A triangle pointing down.
    Down,
    Bar,
}

/// One series of a plot: its colour, its mark and its name.
#[derive(Clone, Debug)]
pub struct LegendEntry {
    pub colour: Color32,
    pub mark: LegendMark,
    pub label: String,
}

impl LegendEntry {
    pub fn new(colour: Color32, mark: LegendMark, label: impl Into<String>) -> Self {
        Self {
            colour,
            mark,
            label: label.into(),
        }
    }
}

/// `label` cut to [`MAX_LABEL_CHARS`] characters, with an ellipsis when cut (for run
/// names, which can be long; what a series means is never cut).
pub fn shortened(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// The entries in rows: a swatch drawn as the series is, then its name; an entry that
/// does not fit the rest of a row starts the next one whole.
pub fn legend_row(ui: &mut Ui, entries: &[LegendEntry]) {
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 4.0;
        for (i, e) in entries.iter().enumerate() {
            let text = WidgetText::from(RichText::new(&e.label).small()).into_galley(
                ui,
                Some(TextWrapMode::Extend),
                f32::INFINITY,
                TextStyle::Small,
            );
            let needed = SWATCH.x + 4.0 + text.size().x;
            if i > 0 && ui.available_size_before_wrap().x < needed {
                ui.end_row();
            }
            swatch(ui, e.colour, e.mark);
            ui.add(Label::new(text));
            ui.add_space(6.0);
        }
    });
}

/// The size of an entry's swatch.
const SWATCH: egui::Vec2 = vec2(14.0, 10.0);

fn swatch(ui: &mut Ui, colour: Color32, mark: LegendMark) {
    let (rect, _) = ui.allocate_exact_size(SWATCH, Sense::hover());
    let c = rect.center();
    let painter = ui.painter();
    let triangle = |tip: f32| {
        Shape::convex_polygon(
            vec![
                Pos2::new(c.x, c.y + tip),
                Pos2::new(c.x - 4.5, c.y - tip),
                Pos2::new(c.x + 4.5, c.y - tip),
            ],
            colour,
            Stroke::NONE,
        )
    };
    match mark {
        LegendMark::Line => {
            painter.line_segment(
                [rect.left_center(), rect.right_center()],
                Stroke::new(2.0, colour),
            );
        }
        LegendMark::Dot => {
            painter.circle_filled(c, 3.5, colour);
        }
        LegendMark::Up => {
            painter.add(triangle(-4.5));
        }
        LegendMark::Down => {
            painter.add(triangle(4.5));
        }
        LegendMark::Bar => {
            painter.rect_filled(rect.shrink(1.0), 1.0, colour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_with_an_ellipsis() {
        assert_eq!(shortened("dense baseline"), "dense baseline");
        let long = "run 1: LeNet-300-100 on Fashion-MNIST, AGP to 90%";
        let s = shortened(long);
        assert_eq!(s.chars().count(), MAX_LABEL_CHARS);
        assert!(s.ends_with('…'));
        assert!(long.starts_with(s.trim_end_matches('…')));
    }
}
