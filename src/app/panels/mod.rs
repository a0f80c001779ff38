//! The window's panels, each a small struct over the part of the state it shows, with a
//! `ui` method that draws it and pushes what the user asked for as
//! [`AppCommand`](super::AppCommand)s. [`ExplorerApp`](super::ExplorerApp) places the
//! top-level ones and hands each its part of the state (`layout.rs`); the plan panel and
//! the Training tab are made of smaller ones.

mod banner;
mod export;
mod granularity_picker;
mod layer_table;
mod lesson_panel;
mod mask_tiles;
mod menu;
mod network_editor;
mod plan_panel;
mod pruning_settings;
mod run_controls;
mod sensitivity;
mod status_bar;
mod sweeps;
mod tab_bar;
mod training;
mod training_settings;

pub use banner::BannerPanel;
pub use export::ExportPanel;
pub use lesson_panel::LessonPanel;
pub use menu::MenuBar;
pub use plan_panel::PlanPanel;
pub use sensitivity::SensitivityPanel;
pub use status_bar::StatusBar;
pub use sweeps::SweepsPanel;
pub use tab_bar::TabBar;
pub use training::TrainingPanel;
