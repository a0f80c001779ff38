//! The Layers section of the plan panel: a row per prunable layer with its shape, size and
//! current sparsity, which patterns fit it, and its overrides (skip, own target, own
//! pattern).

use std::collections::BTreeMap;

use eframe::egui;
use egui::{DragValue, Ui};

use super::mask_tiles::group_color;
use crate::app::tips;
use crate::i18n::t;
use crate::prune::{Granularity, LayerOverride, LayerSpec, PruningPolicy};
use crate::train::report::GroupRole;

/// Patterns offered as a layer's own granularity.
const LAYER_PATTERNS: [&str; 6] = [
    "unstructured",
    "2:4",
    "1:4",
    "block:4x4",
    "block:2x2",
    "channel",
];

/// The Layers section: the per-layer table.
pub struct LayerTable<'a> {
    /// The plan's pruning, whose per-layer overrides the table edits.
    pub pruning: &'a mut PruningPolicy,
    /// The plan's prunable layers.
    pub specs: &'a [LayerSpec],
    /// Each layer's places in the network's channel groups.
    pub roles: &'a [Vec<GroupRole>],
    /// Each layer's sparsity now, by name (layers of no run yet are missing).
    pub sparsity: &'a BTreeMap<String, f64>,
}

impl LayerTable<'_> {
    pub fn ui(self, ui: &mut Ui) {
        let Self {
            pruning,
            specs,
            roles,
            sparsity,
        } = self;
        let default = pruning.granularity;
        egui::Grid::new("layers")
            .num_columns(7)
            .striped(true)
            .show(ui, |ui| {
                header(ui);
                for (i, spec) in specs.iter().enumerate() {
                    let o = pruning.layers.entry(spec.name.clone()).or_default();
                    layer_row(ui, spec, sparsity.get(&spec.name), default, o);
                    group_cell(ui, roles.get(i).map(Vec::as_slice).unwrap_or_default());
                    ui.end_row();
                }
            });
        // keep the plan free of empty overrides
        pruning.layers.retain(|_, o| *o != LayerOverride::default());
    }
}

fn header(ui: &mut Ui) {
    for (h, tip) in [
        ("layer", "The prunable layer's name."),
        (
            "shape",
            "Weight shape in PyTorch layout: Linear [out, in], Conv2d [out, in, kh, kw]. Hover a shape for its size.",
        ),
        ("sparsity", "Fraction of this layer's weights pruned now."),
        (
            "fits",
            "Whether 2:4 and 4x4 blocks fit this layer; hover for the current pattern.",
        ),
        ("skip", tips::LAYER_SKIP),
        ("own target / pattern", tips::LAYER_TARGET),
        ("groups", tips::CHANNEL_GROUPS),
    ] {
        ui.strong(t(h)).on_hover_text(t(tip));
    }
    ui.end_row();
}

/// One layer: what it is, what fits it, and its override `o` (`default`: the plan's
/// pattern).
fn layer_row(
    ui: &mut Ui,
    spec: &LayerSpec,
    sparsity: Option<&f64>,
    default: Granularity,
    o: &mut LayerOverride,
) {
    ui.label(&spec.name);
    ui.label(spec.shape.to_string())
        .on_hover_text(format!("{} weights", spec.shape.numel()));
    ui.label(
        sparsity
            .map(|s| format!("{:.1}%", 100.0 * s))
            .unwrap_or_else(|| "-".into()),
    );
    let fits: Vec<String> = [("2:4", "2:4"), ("block:4x4", "4x4")]
        .iter()
        .map(|(pattern, short)| {
            let g: Granularity = pattern.parse().expect("valid pattern");
            let ok = spec.check(&g).is_ok();
            format!("{short} {}", t(if ok { "yes" } else { "no" }))
        })
        .collect();
    let current = o.granularity.unwrap_or(default);
    let why = match spec.check(&current) {
        Ok(()) => format!("{current} fits this layer."),
        Err(e) => format!("{current} does not fit: {e}."),
    };
    ui.label(fits.join(", ")).on_hover_text(why);
    ui.checkbox(&mut o.skip, "")
        .on_hover_text(t(tips::LAYER_SKIP));
    ui.horizontal(|ui| override_ui(ui, spec, o));
}

/// The channel groups a layer is in, each in its group's color.
fn group_cell(ui: &mut Ui, roles: &[GroupRole]) {
    ui.horizontal(|ui| {
        for role in roles {
            ui.label(egui::RichText::new(role.to_string()).color(group_color(role.group)))
                .on_hover_text(t(tips::CHANNEL_GROUPS));
        }
    });
}

/// A layer's own target and own pattern, each offered only where it fits.
fn override_ui(ui: &mut Ui, spec: &LayerSpec, o: &mut LayerOverride) {
    let mut own = o.target.is_some();
    if ui
        .checkbox(&mut own, "")
        .on_hover_text(t(tips::LAYER_TARGET))
        .changed()
    {
        o.target = own.then_some(plan_target_default(o));
    }
    if let Some(target) = o.target.as_mut() {
        ui.add(
            DragValue::new(target)
                .range(0.0..=0.99)
                .speed(0.01)
                .fixed_decimals(2),
        )
        .on_hover_text(t(tips::LAYER_TARGET));
    }
    let label = o
        .granularity
        .map(|g| g.to_string())
        .unwrap_or_else(|| t("default").into());
    egui::ComboBox::from_id_salt(("pattern", &spec.name))
        .selected_text(label)
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut o.granularity, None, t("default"));
            for pattern in LAYER_PATTERNS {
                let g: Granularity = pattern.parse().expect("valid pattern");
                let fits = spec.check(&g);
                ui.add_enabled_ui(fits.is_ok(), |ui| {
                    ui.selectable_value(&mut o.granularity, Some(g), pattern)
                        .on_disabled_hover_text(
                            fits.err().map(|e| e.to_string()).unwrap_or_default(),
                        );
                });
            }
        })
        .response
        .on_hover_text(t(tips::LAYER_PATTERN));
}

fn plan_target_default(o: &LayerOverride) -> f64 {
    o.target.unwrap_or(0.5)
}
