//! The network editor: the plan's stack of layers, with each layer's output shape and
//! parameter count as it is edited, and the error at the layer that does not fit. Layers
//! are added, removed, moved and edited in place (after TensorFlow Playground's + and -
//! buttons); changing the network needs a new run, like changing the model.

use eframe::egui;
use egui::{Color32, DragValue, RichText, Ui};

use crate::i18n::t;
use crate::model::stack::ResolvedLayer;
use crate::model::{LayerConfig, ModelKind, StackConfig, StackError};
use crate::plan::ExperimentPlan;

/// The layer types, each with the settings it starts from.
fn templates() -> [LayerConfig; 10] {
    [
        LayerConfig::Conv2d {
            name: None,
            out: 8,
            kernel: 3,
            stride: 1,
            padding: 1,
        },
        LayerConfig::Linear {
            name: None,
            out: 10,
        },
        LayerConfig::Maxpool2d {
            kernel: 2,
            stride: None,
        },
        LayerConfig::Avgpool2d {
            kernel: 2,
            stride: None,
        },
        LayerConfig::Batchnorm2d { name: None },
        LayerConfig::Relu,
        LayerConfig::Gelu,
        LayerConfig::Tanh,
        LayerConfig::Dropout { p: 0.2 },
        LayerConfig::Flatten,
    ]
}

/// Weights and biases (running statistics included) of one layer.
fn parameters(layer: &ResolvedLayer) -> usize {
    layer
        .parameters()
        .iter()
        .map(|(_, dims)| dims.iter().product::<usize>())
        .sum()
}

/// What a row asks for besides editing its layer.
enum RowAction {
    Up,
    Down,
    Remove,
}

/// The Network section of the plan panel.
pub struct NetworkEditor<'a> {
    pub plan: &'a mut ExperimentPlan,
}

impl NetworkEditor<'_> {
    pub fn ui(self, ui: &mut Ui) {
        let plan = self.plan;
        if plan.layers.is_empty() {
            built_in(ui, plan);
            return;
        }
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
        let action = layer_grid(ui, &mut plan.layers, &resolved, error.as_ref());
        if resolved.len() == plan.layers.len()
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
            _ => {}
        }
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(t("add")).small());
            for template in templates() {
                if ui
                    .small_button(format!("+ {}", template.type_name()))
                    .on_hover_text("Add this layer at the end")
                    .clicked()
                {
                    plan.layers.push(template);
                }
            }
        });
        let total: usize = resolved.iter().map(parameters).sum();
        ui.small(format!("{total} parameters"));
    }
}

/// A built-in model: what it is, and the button that writes it out as layers to edit.
fn built_in(ui: &mut Ui, plan: &mut ExperimentPlan) {
    ui.label(format!("{}: {}", plan.model.name(), plan.model.describe()));
    if ui
        .button(t("Edit as layers"))
        .on_hover_text("Write this model out as its stack of layers and edit it: add, remove, move and change layers.")
        .clicked()
        && let Ok(written) = plan.with_layers_written_out()
    {
        *plan = written;
        plan.model = ModelKind::Custom;
    }
}

/// A row per layer: its settings, output shape and parameters, and the buttons that move
/// or remove it; the error under the first layer that does not fit. Returns what a
/// button asked for.
fn layer_grid(
    ui: &mut Ui,
    layers: &mut [LayerConfig],
    resolved: &[ResolvedLayer],
    error: Option<&StackError>,
) -> Option<(usize, RowAction)> {
    let mut action = None;
    egui::Grid::new("network").striped(true).show(ui, |ui| {
        for (i, layer) in layers.iter_mut().enumerate() {
            ui.label(i.to_string());
            layer_row(ui, i, layer);
            match resolved.get(i) {
                Some(r) => {
                    ui.label(r.output.to_string());
                    let n = parameters(r);
                    ui.label(if n > 0 {
                        format!("{n} params")
                    } else {
                        String::new()
                    });
                }
                None => {
                    ui.label("");
                    ui.label("");
                }
            }
            if let Some(asked) = row_buttons(ui) {
                action = Some((i, asked));
            }
            ui.end_row();
            if resolved.len() == i && error.is_some() {
                // the first layer that does not fit
                ui.label("");
                ui.colored_label(
                    Color32::from_rgb(230, 110, 100),
                    error.map(|e| e.to_string()).unwrap_or_default(),
                );
                ui.end_row();
            }
        }
    });
    action
}

/// Up, down and remove, for one row.
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
    });
    action
}

/// One layer's type and settings, edited in place.
fn layer_row(ui: &mut Ui, index: usize, layer: &mut LayerConfig) {
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt(("layer type", index))
            .selected_text(layer.type_name())
            .show_ui(ui, |ui| {
                for template in templates() {
                    let same = template.type_name() == layer.type_name();
                    if ui.selectable_label(same, template.type_name()).clicked() && !same {
                        *layer = template;
                    }
                }
            });
        let name_field = |ui: &mut Ui, name: &mut Option<String>| {
            let mut text = name.clone().unwrap_or_default();
            if ui
                .add(
                    egui::TextEdit::singleline(&mut text)
                        .desired_width(60.0)
                        .hint_text("name"),
                )
                .changed()
            {
                *name = (!text.trim().is_empty()).then(|| text.trim().to_string());
            }
        };
        match layer {
            LayerConfig::Conv2d {
                name,
                out,
                kernel,
                stride,
                padding,
            } => {
                name_field(ui, name);
                ui.add(DragValue::new(out).range(1..=4096).prefix(t("out ")));
                ui.add(DragValue::new(kernel).range(1..=31).prefix("k "));
                ui.add(DragValue::new(stride).range(1..=8).prefix("s "));
                ui.add(DragValue::new(padding).range(0..=15).prefix("p "));
            }
            LayerConfig::Linear { name, out } => {
                name_field(ui, name);
                ui.add(DragValue::new(out).range(1..=65_536).prefix(t("out ")));
            }
            LayerConfig::Maxpool2d { kernel, stride }
            | LayerConfig::Avgpool2d { kernel, stride } => {
                ui.add(DragValue::new(kernel).range(1..=16).prefix("k "));
                let mut s = stride.unwrap_or(*kernel);
                if ui
                    .add(DragValue::new(&mut s).range(1..=16).prefix("s "))
                    .changed()
                {
                    *stride = (s != *kernel).then_some(s);
                }
            }
            LayerConfig::Batchnorm2d { name } => name_field(ui, name),
            LayerConfig::Dropout { p } => {
                ui.add(DragValue::new(p).range(0.0..=0.95).speed(0.01).prefix("p "));
            }
            LayerConfig::Relu | LayerConfig::Gelu | LayerConfig::Tanh | LayerConfig::Flatten => {}
        }
    });
}
