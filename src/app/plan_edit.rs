//! One user edit of the plan, as data: what a panel, a menu or a chosen file changes, sent
//! as [`AppCommand::EditPlan`](super::AppCommand::EditPlan) and applied (then checked once)
//! by [`AppState::edit_plan`](super::AppState::edit_plan). Each kind replaces its own part
//! of the plan, so two edits of one frame never undo each other.

use std::path::PathBuf;

use crate::data::DatasetSource;
use crate::model::{Layer, ModelKind};
use crate::plan::{ExperimentPlan, Training};
use crate::prune::PruningPolicy;
use crate::train::BackendChoice;

/// One change to the edited plan.
#[derive(Clone, Debug, PartialEq)]
pub enum PlanEdit {
    /// A plan of its own: a preset, a lesson's, one opened from a file or a pasted line, or
    /// a built-in model written out as layers.
    Replace(Box<ExperimentPlan>),
    /// The data to train on.
    Dataset(DatasetSource),
    /// A built-in model, which replaces the plan's own stack of layers.
    Model(ModelKind),
    /// The network editor's input shape and layers.
    Network {
        input: Option<[usize; 3]>,
        layers: Vec<Layer>,
    },
    /// The Training section's settings: optimizer, backend and server, starting weights.
    /// The pace in it is left as it is: the speed control owns it ([`PlanEdit::Pace`]).
    Training(Box<Training>),
    /// The speed control's cap on steps per second (`None`: full speed).
    Pace(Option<f64>),
    /// The weights the next run starts from.
    Weights(PathBuf),
    /// The Pruning and Layers sections, or the Sensitivity tab's levels as per-layer targets.
    Pruning(Box<PruningPolicy>),
    /// The run goes on on this machine: the local backend, no server.
    RunLocally,
}

impl PlanEdit {
    /// Makes this change to `plan`.
    pub fn apply(self, plan: &mut ExperimentPlan) {
        match self {
            PlanEdit::Replace(new) => *plan = *new,
            PlanEdit::Dataset(dataset) => plan.dataset = dataset,
            PlanEdit::Model(model) => {
                plan.model = model;
                plan.layers.clear();
                plan.input = None;
            }
            PlanEdit::Network { input, layers } => {
                plan.input = input;
                plan.layers = layers;
            }
            PlanEdit::Training(training) => {
                plan.training = Training {
                    pace: plan.training.pace,
                    ..*training
                }
            }
            PlanEdit::Pace(pace) => plan.training.pace = pace,
            PlanEdit::Weights(path) => plan.training.weights = Some(path),
            PlanEdit::Pruning(pruning) => plan.pruning = *pruning,
            PlanEdit::RunLocally => {
                plan.training.backend = BackendChoice::Flex;
                plan.training.remote = None;
            }
        }
    }
}
