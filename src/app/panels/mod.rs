//! The window's panels, each a small struct over the state it shows with a `ui` method
//! that draws it and pushes what the user asked for as [`AppCommand`](super::AppCommand)s.

mod central;
mod lesson_panel;
mod menu;
mod plan_panel;
mod status_bar;

pub use central::CentralPanel;
pub use lesson_panel::LessonPanel;
pub use menu::MenuBar;
pub use plan_panel::PlanPanel;
pub use status_bar::StatusBar;
