//! The network editor: the plan's layers, with what each reads, its output shape and
//! parameter count as it is edited, and the error at the layer that does not fit. Layers
//! are added, removed, moved, repeated as blocks and edited in place (after TensorFlow
//! Playground's + and - buttons); changing the network needs a new run, like changing the
//! model. The editor works on a copy of the plan's input and layers, and sends it as one
//! [`PlanEdit`] when it changed.

use eframe::egui;
use egui::{Color32, DragValue, RichText, Ui};

use crate::app::command::AppCommand;
use crate::app::plan_edit::PlanEdit;
use crate::i18n::t;
use std::ops::Range;

use crate::layers::Setting;
use crate::model::stack::{Repeat, ResolvedLayer};
use crate::model::{Layer, LayerConfig, ModelKind, StackConfig, StackError};
use crate::plan::ExperimentPlan;

/// Which of the resolved layers each top-level row became: one for a layer, every copy's
/// layers for a repeat.
fn row_spans(layers: &[Layer]) -> Vec<Range<usize>> {
    let mut start = 0usize;
    layers
        .iter()
        .map(|l| {
            let n = match &l.config {
                LayerConfig::Repeat(r) => r.times.saturating_mul(r.layers.len()),
                _ => 1,
            };
            let span = start..start.saturating_add(n);
            start = span.end;
            span
        })
        .collect()
}

/// What a row asks for besides editing its layer.
enum RowAction {
    Up,
    Down,
    Remove,
    /// Wrap the layer in a repeat, or take the next row into this repeat's block.
    Repeat,
}

/// The Network section of the plan panel.
pub struct NetworkEditor<'a> {
    /// The plan being edited.
    pub plan: &'a ExperimentPlan,
}

/// The part of the plan the editor changes, copied to be edited in place.
struct NetworkDraft {
    input: Option<[usize; 3]>,
    layers: Vec<Layer>,
}

impl NetworkEditor<'_> {
    pub fn ui(self, ui: &mut Ui, out: &mut Vec<AppCommand>) {
        if self.plan.layers.is_empty() {
            built_in(ui, self.plan, out);
            return;
        }
        let plan = &mut NetworkDraft {
            input: self.plan.input,
            layers: self.plan.layers.clone(),
        };
        let mut input = plan.input.unwrap_or([1, 28, 28]);
        ui.horizontal(|ui| {
            ui.label(t("input"))
                .on_hover_text("Channels, height and width of one image: the data's shape.");
            for v in input.iter_mut() {
                ui.add(DragValue::new(v).range(1..=4096));
            }
        });
        plan.input = Some(input);
        let stack = StackConfig {
            input,
            layers: plan.layers.clone(),
        };
        let (resolved, error) = stack.trace();
        let spans = row_spans(&plan.layers);
        let action = layer_grid(ui, &mut plan.layers, &resolved, error.as_ref());
        // an error after every row fits (the output, an unread layer)
        if spans.last().is_some_and(|s| resolved.len() >= s.end)
            && let Some(e) = &error
        {
            ui.colored_label(Color32::from_rgb(230, 110, 100), e.to_string());
        }
        match action {
            Some((i, RowAction::Up)) if i > 0 => plan.layers.swap(i, i - 1),
            Some((i, RowAction::Down)) if i + 1 < plan.layers.len() => plan.layers.swap(i, i + 1),
            Some((i, RowAction::Remove)) => {
                plan.layers.remove(i);
            }
            Some((i, RowAction::Repeat)) => repeat_row(&mut plan.layers, i),
            _ => {}
        }
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(t("add")).small());
            for template in LayerConfig::templates() {
                if ui
                    .small_button(format!("+ {}", template.type_name()))
                    .on_hover_text("Add this layer at the end")
                    .clicked()
                {
                    plan.layers.push(Layer::new(template));
                }
            }
        });
        let total: usize = resolved.iter().map(ResolvedLayer::parameter_count).sum();
        ui.small(format!("{total} parameters"));
        if plan.input != self.plan.input || plan.layers != self.plan.layers {
            out.push(AppCommand::EditPlan(PlanEdit::Network {
                input: plan.input,
                layers: std::mem::take(&mut plan.layers),
            }));
        }
    }
}

/// A built-in model: what it is, and the button that writes it out as layers to edit.
fn built_in(ui: &mut Ui, plan: &ExperimentPlan, out: &mut Vec<AppCommand>) {
    ui.label(format!("{}: {}", plan.model.name(), plan.model.describe()));
    if ui
        .button(t("Edit as layers"))
        .on_hover_text(t("Write this model out as its layers and edit it: add, remove, move, repeat and change layers."))
        .clicked()
        && let Ok(mut written) = plan.with_layers_written_out()
    {
        written.model = ModelKind::Custom;
        out.push(AppCommand::EditPlan(PlanEdit::Replace(Box::new(written))));
    }
}

/// Wraps row `i` in a repeat of two copies (its name numbered by `{i}`), or, when it is a
/// repeat already, moves the row after it into its block.
fn repeat_row(layers: &mut Vec<Layer>, i: usize) {
    if let LayerConfig::Repeat(_) = layers[i].config {
        if i + 1 < layers.len() && !matches!(layers[i + 1].config, LayerConfig::Repeat(_)) {
            let next = numbered(layers.remove(i + 1));
            if let LayerConfig::Repeat(block) = &mut layers[i].config {
                block.layers.push(next);
            }
        }
        return;
    }
    let block = Repeat {
        times: 2,
        first: 0,
        layers: vec![numbered(layers[i].clone())],
    };
    layers[i] = Layer::new(block);
}

/// A layer as a repeat's block holds it: a given name gets the copy's number.
fn numbered(mut layer: Layer) -> Layer {
    if let Some(name) = &mut layer.name
        && !name.contains("{i}")
    {
        name.push_str(".{i}");
    }
    layer
}

/// A row per top-level layer: its name, input, settings, output shape and parameters, and
/// the buttons that move, remove or repeat it; the error under the first layer that does
/// not fit. Returns what a button asked for.
fn layer_grid(
    ui: &mut Ui,
    layers: &mut [Layer],
    resolved: &[ResolvedLayer],
    error: Option<&StackError>,
) -> Option<(usize, RowAction)> {
    let spans = row_spans(layers);
    let mut action = None;
    egui::Grid::new("network").striped(true).show(ui, |ui| {
        for (i, (layer, span)) in layers.iter_mut().zip(&spans).enumerate() {
            ui.label(i.to_string());
            layer_row(ui, i, layer);
            if span.end <= resolved.len() && !span.is_empty() {
                ui.label(resolved[span.end - 1].output.to_string());
                let n: usize = resolved[span.clone()]
                    .iter()
                    .map(ResolvedLayer::parameter_count)
                    .sum();
                ui.label(if n > 0 {
                    format!("{n} params")
                } else {
                    String::new()
                });
            } else {
                ui.label("");
                ui.label("");
            }
            if let Some(asked) = row_buttons(ui) {
                action = Some((i, asked));
            }
            ui.end_row();
            if span.contains(&resolved.len())
                && let Some(e) = error
            {
                // the first layer that does not fit
                ui.label("");
                ui.colored_label(Color32::from_rgb(230, 110, 100), e.to_string());
                ui.end_row();
            }
        }
    });
    action
}

/// Up, down, remove and repeat, for one row.
fn row_buttons(ui: &mut Ui) -> Option<RowAction> {
    let mut action = None;
    ui.horizontal(|ui| {
        if ui.small_button(t("up")).on_hover_text("Move up").clicked() {
            action = Some(RowAction::Up);
        }
        if ui
            .small_button(t("down"))
            .on_hover_text("Move down")
            .clicked()
        {
            action = Some(RowAction::Down);
        }
        if ui
            .small_button(t("remove"))
            .on_hover_text("Remove this layer")
            .clicked()
        {
            action = Some(RowAction::Remove);
        }
        if ui
            .small_button(t("repeat"))
            .on_hover_text(t(
                "Repeat this layer as a block; on a repeat, take the next layer into its block",
            ))
            .clicked()
        {
            action = Some(RowAction::Repeat);
        }
    });
    action
}

/// A text field for an optional name (`None` when empty).
fn name_field(ui: &mut Ui, name: &mut Option<String>, hint: &str, hover: &'static str) {
    let mut text = name.clone().unwrap_or_default();
    if ui
        .add(
            egui::TextEdit::singleline(&mut text)
                .desired_width(80.0)
                .hint_text(hint),
        )
        .on_hover_text(t(hover))
        .changed()
    {
        *name = (!text.trim().is_empty()).then(|| text.trim().to_string());
    }
}

/// One layer's type, name, input and settings, edited in place.
fn layer_row(ui: &mut Ui, index: usize, layer: &mut Layer) {
    ui.horizontal(|ui| {
        let repeat = matches!(layer.config, LayerConfig::Repeat(_));
        if !repeat {
            egui::ComboBox::from_id_salt(("layer type", index))
                .selected_text(layer.config.type_name())
                .show_ui(ui, |ui| {
                    for template in LayerConfig::templates() {
                        let same = template.type_name() == layer.config.type_name();
                        if ui.selectable_label(same, template.type_name()).clicked() && !same {
                            layer.config = template;
                        }
                    }
                });
        }
        name_field(
            ui,
            &mut layer.name,
            "name",
            "The layer's name, and its parameters' prefix",
        );
        if layer.config.merged().is_none() && !repeat {
            name_field(
                ui,
                &mut layer.input,
                "reads: previous",
                "The layer whose output this one reads (input: the image); the layer before it when empty",
            );
        }
        config_fields(ui, &mut layer.config);
    });
}

/// The settings of one layer's type, as its kind lists them; a repeat's own.
fn config_fields(ui: &mut Ui, config: &mut LayerConfig) {
    if let LayerConfig::Repeat(block) = config {
        repeat_fields(ui, block);
        return;
    }
    for setting in config.settings() {
        setting_field(ui, setting);
    }
}

/// One setting of a layer's kind.
fn setting_field(ui: &mut Ui, setting: Setting<'_>) {
    match setting {
        Setting::Count {
            prefix,
            value,
            min,
            max,
        } => {
            ui.add(DragValue::new(value).range(min..=max).prefix(t(prefix)));
        }
        Setting::CountOr {
            prefix,
            value,
            default,
            max,
        } => {
            let mut v = value.unwrap_or(default);
            if ui
                .add(DragValue::new(&mut v).range(1..=max).prefix(t(prefix)))
                .changed()
            {
                *value = (v != default).then_some(v);
            }
        }
        Setting::Fraction { prefix, value, max } => {
            ui.add(
                DragValue::new(value)
                    .range(0.0..=max)
                    .speed(0.01)
                    .prefix(t(prefix)),
            );
        }
        Setting::Flag { label, value } => {
            ui.checkbox(value, t(label));
        }
        Setting::Names(inputs) => {
            let mut text = inputs.join(", ");
            if ui
                .add(
                    egui::TextEdit::singleline(&mut text)
                        .desired_width(160.0)
                        .hint_text("a, b"),
                )
                .on_hover_text(t("The layers it merges, by name, separated by commas"))
                .changed()
            {
                *inputs = text.split(',').map(|n| n.trim().to_string()).collect();
            }
        }
    }
}

/// A repeat's copies, its first copy's number and its block's layers.
fn repeat_fields(ui: &mut Ui, block: &mut Repeat) {
    ui.label(t("repeat"));
    ui.add(DragValue::new(&mut block.times).range(1..=64).prefix("x "));
    ui.add(
        DragValue::new(&mut block.first)
            .range(0..=1000)
            .prefix("{i} = "),
    )
    .on_hover_text(t("The number of the first copy: {i} in names and inputs"));
    let names: Vec<String> = block
        .layers
        .iter()
        .map(|l| {
            l.name
                .clone()
                .unwrap_or_else(|| l.config.type_name().into())
        })
        .collect();
    ui.label(RichText::new(names.join(" > ")).small());
}
