//! One entry of a network as plans write it (`[[layers]]`): what the layer does
//! ([`LayerConfig`]), its name, and which layer's output it takes.

use serde::{Deserialize, Serialize};

use crate::layers::{Fit, Kind, Plan, Resolved, Setting, Shape};

/// One layer of a network: what it does, the name others and per-layer overrides use, and
/// the layer it reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// The layer's name, also the prefix of its parameters' names (`blocks.0.c1` gives
    /// `blocks.0.c1.weight`); the type and position when not given (`relu3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The layer whose output this one takes (`input` for the network's input); the layer
    /// before it when not given. Merge layers name theirs in `inputs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(flatten)]
    pub config: LayerConfig,
}

impl Layer {
    /// An unnamed layer reading the one before it.
    pub fn new(config: impl Into<LayerConfig>) -> Self {
        Self {
            name: None,
            input: None,
            config: config.into(),
        }
    }

    /// A named layer reading the one before it.
    pub fn named(name: impl Into<String>, config: impl Into<LayerConfig>) -> Self {
        Self {
            name: Some(name.into()),
            input: None,
            config: config.into(),
        }
    }

    /// The same layer reading `input`.
    pub fn reading(self, input: impl Into<String>) -> Self {
        Self {
            input: Some(input.into()),
            ..self
        }
    }
}

impl From<Repeat> for LayerConfig {
    fn from(r: Repeat) -> Self {
        LayerConfig::Repeat(r)
    }
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// `layers`, written once, `times` times in a row. In each copy `{i}` in a name or an
/// input is the copy's number (`first`, `first + 1`, ...) and `{input}` the layer before
/// the copy. Resolution writes the copies out: a resolved network has no repeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Repeat {
    pub times: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first: usize,
    pub layers: Vec<Layer>,
}

/// The plan's enum of layers: every kind of the registry (`layers/`), and `repeat`.
macro_rules! plan_config {
    ($($name:ident[$file:ident::$config:ident]($plan:ty) as $module:ident($module_ty:ty),)*) => {
        /// What a layer does, as a plan writes it (`type = "conv2d"` and its settings).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum LayerConfig {
            $($name($plan),)*
            Repeat(Repeat),
        }

        $(
            impl From<$plan> for LayerConfig {
                fn from(k: $plan) -> Self {
                    LayerConfig::$name(k)
                }
            }
        )*

        impl LayerConfig {
            /// The type as plans write it.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(LayerConfig::$name(_) => <<$plan as Plan>::Kind as Kind>::TYPE,)*
                    LayerConfig::Repeat(_) => "repeat",
                }
            }

            /// Every kind with its default settings, in the registry's order.
            pub fn templates() -> Vec<LayerConfig> {
                vec![$(LayerConfig::$name(<$plan as Plan>::template()),)*]
            }

            /// The kind read from a node of type `op` that has no attributes.
            pub fn read_from(op: &str) -> Option<LayerConfig> {
                $(
                    if <<$plan as Plan>::Kind as Kind>::read_from() == Some(op) {
                        return Some(LayerConfig::$name(<$plan as Plan>::template()));
                    }
                )*
                None
            }

            /// The node types [`LayerConfig::read_from`] takes.
            pub fn read_ops() -> Vec<&'static str> {
                [$(<<$plan as Plan>::Kind as Kind>::read_from(),)*]
                    .into_iter()
                    .flatten()
                    .collect()
            }

            /// The kind checked against the shape it reads; a repeat is an error here (its
            /// copies are written out before shapes flow).
            pub fn resolve(self, input: Shape) -> Result<Resolved, Fit> {
                Ok(match self {
                    $(LayerConfig::$name(k) => Resolved::$name(k.resolve(input)?),)*
                    LayerConfig::Repeat(_) => {
                        return Err(Fit::Invalid("a repeat is written out before shapes flow".into()));
                    }
                })
            }

            /// A resolved layer's kind as a plan writes it.
            pub fn of(kind: Resolved) -> LayerConfig {
                match kind {
                    $(Resolved::$name(k) => LayerConfig::$name(<$plan as Plan>::of(k)),)*
                }
            }

            /// The layers a merge layer names; `None` for a layer that reads one.
            pub fn merged(&self) -> Option<&[String]> {
                match self {
                    $(LayerConfig::$name(k) => Plan::merged(k),)*
                    LayerConfig::Repeat(_) => None,
                }
            }

            /// The names a merge layer reads, to rename them (a repeat's copies).
            pub fn merged_mut(&mut self) -> Option<&mut Vec<String>> {
                match self {
                    $(LayerConfig::$name(k) => Plan::merged_mut(k),)*
                    LayerConfig::Repeat(_) => None,
                }
            }

            /// Its settings, for an editor (a repeat's are the editor's own).
            pub fn settings(&mut self) -> Vec<Setting<'_>> {
                match self {
                    $(LayerConfig::$name(k) => Plan::settings(k),)*
                    LayerConfig::Repeat(_) => Vec::new(),
                }
            }
        }
    };
}

crate::layers::registry!(plan_config);
