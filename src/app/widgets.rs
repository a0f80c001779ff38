//! Small controls several panels share: a moment in epochs or steps, a labelled number, a
//! sparsity slider, a pruning frequency, and the analyses' field of remote servers. Each
//! shows its tooltip, so that the control teaches what it sets.

use eframe::egui;
use egui::{DragValue, Slider, TextEdit, Ui};

use crate::app::tips;
use crate::i18n::t;
use crate::prune::At;

/// A moment edited in epochs (fractional) or steps.
pub fn at_editor(
    ui: &mut Ui,
    label: &'static str,
    at: &mut At,
    tip: &'static str,
    steps_per_epoch: u64,
) {
    let (label, tip) = (t(label), t(tip));
    ui.horizontal(|ui| {
        ui.label(label).on_hover_text(tip);
        match at {
            At::Epoch { epoch } => {
                ui.add(
                    DragValue::new(epoch)
                        .range(0.0..=1000.0)
                        .speed(0.1)
                        .suffix(t(" ep")),
                )
                .on_hover_text(tip);
                if ui
                    .small_button(t("steps"))
                    .on_hover_text("Give this moment in steps")
                    .clicked()
                {
                    *at = At::Step((*epoch * steps_per_epoch as f64).round() as u64);
                }
            }
            At::Step(step) => {
                ui.add(
                    DragValue::new(step)
                        .range(0..=10_000_000)
                        .suffix(t(" steps")),
                )
                .on_hover_text(tip);
                if ui
                    .small_button(t("epochs"))
                    .on_hover_text("Give this moment in epochs")
                    .clicked()
                {
                    *at = At::Epoch {
                        epoch: *step as f64 / steps_per_epoch.max(1) as f64,
                    };
                }
            }
        }
    });
}

/// A label and the value it names (so screen readers and tests find the value by it).
pub fn labelled(
    ui: &mut Ui,
    label: &'static str,
    tip: &'static str,
    value: DragValue<'_>,
) -> egui::Response {
    let (label, tip) = (t(label), t(tip));
    let name = ui.label(label).on_hover_text(tip);
    ui.add(value).labelled_by(name.id).on_hover_text(tip)
}

/// A sparsity in `[0, 0.99]` on a slider named `text`.
pub fn sparsity_slider(ui: &mut Ui, value: &mut f64, text: &'static str, tip: &'static str) {
    let (text, tip) = (t(text), t(tip));
    ui.add(Slider::new(value, 0.0..=0.99).text(text).fixed_decimals(2))
        .on_hover_text(tip);
}

/// How often a schedule prunes, in steps.
pub fn frequency_ui(ui: &mut Ui, frequency: &mut u64) {
    ui.horizontal(|ui| {
        ui.label(t("prune every")).on_hover_text(t(tips::FREQUENCY));
        ui.add(
            DragValue::new(frequency)
                .range(1..=100_000)
                .suffix(t(" steps")),
        )
        .on_hover_text(t(tips::FREQUENCY));
    });
}

/// The *servers* field of the Sensitivity and Sweeps tabs: remote servers to spread an
/// analysis over.
pub fn servers_field(ui: &mut Ui, text: &mut String) {
    ui.horizontal(|ui| {
        let name = ui.label(t("servers"));
        ui.add(
            TextEdit::singleline(text)
                .hint_text("ws://a:3000, ws://b:3000")
                .desired_width(420.0),
        )
        .labelled_by(name.id)
        .on_hover_text(t("Remote servers (sparsity-explorer serve) to run the points on, one per server at a time, comma separated; a point whose server goes away runs on another. Empty: the plan's servers, or this machine."));
    });
}
