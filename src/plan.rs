//! The experiment plan: one serde type, saved as TOML, shared by the CLI, the window,
//! the presets and the tests.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::data::DatasetSource;
use crate::model::weights::take_needed;
use crate::model::{
    HostTensor, Layer, ModelKind, StackConfig, StackError, WeightsError, read_state_dict,
};
use crate::prune::{LayerSpec, PolicyError, PruningPolicy, StepSchedule, UnitGroup};

/// Where the plan asks to train.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// wgpu when its adapter is a real GPU, flex otherwise.
    #[default]
    Auto,
    /// wgpu whatever the adapter (even a software one such as llvmpipe).
    #[value(alias = "gpu")]
    Wgpu,
    /// burn's pure-Rust CPU backend.
    #[value(alias = "cpu")]
    Flex,
    /// Another machine's device, served by `sparsity-explorer serve`, through burn's remote
    /// backend (`remote` names the server).
    Remote,
}

/// Optimizer and loop settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    #[serde(default = "default_epochs")]
    pub epochs: u32,
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Adam learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub backend: BackendChoice,
    /// Evaluate on the test split every this many steps. 0, the automatic cadence: by time,
    /// plus an evaluation right after every cut that changes a mask and another right
    /// before the next cut (on a fixed subset of the test split), all of them together
    /// well under 15% of the run.
    #[serde(default)]
    pub eval_every: u64,
    /// Train at most this many steps per second, so that a class can follow each cut
    /// (`None`: as fast as the device goes). Changes live; the window's speed control
    /// edits it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace: Option<f64>,
    /// Start from these weights (a PyTorch `state_dict` saved as safetensors) instead of
    /// a random initialisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
    /// Train until stopped rather than for `epochs` (which then only sets the horizon the
    /// plots plan for): the schedule holds its final value after its end, and a change of
    /// the pruning settings after it applies at the next step. For live demos.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub until_stopped: bool,
    /// The server for `backend = "remote"`: `ws://HOST:PORT`, or several, comma separated
    /// (a run uses the first; a sweep spreads its points over all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The token the remote server's authorizer checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn default_epochs() -> u32 {
    10
}
fn default_batch() -> usize {
    128
}
fn default_lr() -> f64 {
    1e-3
}

impl Default for Training {
    /// Ten epochs of Adam at 1e-3 in batches of 128, seed 0, on the best backend.
    fn default() -> Self {
        Self {
            epochs: default_epochs(),
            batch: default_batch(),
            lr: default_lr(),
            seed: 0,
            backend: BackendChoice::default(),
            eval_every: 0,
            pace: None,
            weights: None,
            until_stopped: false,
            remote: None,
            token: None,
        }
    }
}

/// Everything a run needs. Only `model` is required; everything else has a default (see
/// [`Training::default`], [`PruningPolicy::default`]), and `--print-plan` shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentPlan {
    /// Free text shown in the window and in saved files.
    #[serde(default)]
    pub name: String,
    /// A built-in model, or `custom` for the stack in `layers`.
    pub model: ModelKind,
    /// The network's input (channels, height, width), for a `custom` stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<[usize; 3]>,
    /// An ONNX model (`model = "custom"`): its graph is the network and its weights the
    /// starting weights (unless `training.weights` names others). Reading the plan writes
    /// the graph out as `input` and `[[layers]]`; a plan that gives its own layers keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnx: Option<PathBuf>,
    /// The network as a stack of layers: required for `custom`; for a built-in model, when
    /// given, it replaces the model's own stack (as `presets NAME` writes it out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Layer>,
    #[serde(default)]
    pub dataset: DatasetSource,
    #[serde(default)]
    pub training: Training,
    #[serde(default)]
    pub pruning: PruningPolicy,
}

/// A plan that cannot be read or cannot run.
#[derive(Debug, Error)]
pub enum PlanFileError {
    #[error("{path}: cannot read: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("{origin}: not a valid plan: {message}")]
    Parse { origin: String, message: String },
    #[error("unknown preset {name:?}: available presets are {known}")]
    UnknownPreset { name: String, known: String },
    #[error("invalid plan: {0}")]
    Invalid(String),
    #[error("invalid network: {0}")]
    Network(#[from] StackError),
    #[error("invalid plan: {0}")]
    Pruning(#[from] PolicyError),
    #[error(transparent)]
    Onnx(Box<crate::onnx::OnnxError>),
}

impl From<crate::onnx::OnnxError> for PlanFileError {
    fn from(e: crate::onnx::OnnxError) -> Self {
        Self::Onnx(Box::new(e))
    }
}

/// A weights file that cannot be read, by the reader its kind calls.
#[derive(Debug, Error)]
pub enum WeightsFileError {
    #[error(transparent)]
    StateDict(#[from] WeightsError),
    #[error(transparent)]
    Onnx(Box<crate::onnx::OnnxError>),
}

impl From<crate::onnx::OnnxError> for WeightsFileError {
    fn from(e: crate::onnx::OnnxError) -> Self {
        Self::Onnx(Box::new(e))
    }
}

/// Reads the weights of `stack` from the file at `path`: an ONNX model (`.onnx`) imported
/// as the plan's layers, any other file a PyTorch `state_dict` saved as safetensors.
pub fn read_weights_file(
    path: &Path,
    stack: &StackConfig,
) -> Result<Vec<HostTensor>, WeightsFileError> {
    if crate::onnx::is_onnx(path) {
        let model = crate::onnx::import(path)?;
        return Ok(take_needed(model.params, path, stack)?);
    }
    Ok(read_state_dict(path, stack)?)
}

/// The presets shipped in the binary, by name.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "quick-demo",
        include_str!("../assets/presets/quick-demo.toml"),
    ),
    (
        "lenet300-agp90",
        include_str!("../assets/presets/lenet300-agp90.toml"),
    ),
    (
        "seed-polynomial",
        include_str!("../assets/presets/seed-polynomial.toml"),
    ),
    (
        "seed-2by4",
        include_str!("../assets/presets/seed-2by4.toml"),
    ),
    (
        "seed-fashion",
        include_str!("../assets/presets/seed-fashion.toml"),
    ),
    (
        "lottery-ticket",
        include_str!("../assets/presets/lottery-ticket.toml"),
    ),
    (
        "live-demo",
        include_str!("../assets/presets/live-demo.toml"),
    ),
    ("resnet20", include_str!("../assets/presets/resnet20.toml")),
    ("vit-tiny", include_str!("../assets/presets/vit-tiny.toml")),
    (
        "resnet20-fashion",
        include_str!("../assets/presets/resnet20-fashion.toml"),
    ),
    (
        "vit-fashion",
        include_str!("../assets/presets/vit-fashion.toml"),
    ),
];

impl ExperimentPlan {
    /// Parses a plan from TOML text; `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, PlanFileError> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let place = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("line {line}, column {column}: ")
                })
                .unwrap_or_default();
            PlanFileError::Parse {
                origin: origin.to_string(),
                message: format!("{place}{}", e.message().trim()),
            }
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a plan always serializes to TOML")
    }

    /// Reads a plan file; an ONNX model it names (relative to the plan's folder) is read
    /// into its network.
    pub fn load(path: &Path) -> Result<Self, PlanFileError> {
        let text = std::fs::read_to_string(path).map_err(|cause| PlanFileError::Io {
            path: path.display().to_string(),
            cause,
        })?;
        let plan = Self::from_toml(&text, &path.display().to_string())?;
        match plan.onnx.clone() {
            Some(onnx) if plan.layers.is_empty() => {
                let folder = path.parent().unwrap_or(Path::new(""));
                let name = plan.name.clone();
                let mut plan = plan.with_onnx(&folder.join(onnx))?;
                // the plan's own name, when it has one, over the file's
                if !name.is_empty() {
                    plan.name = name;
                }
                Ok(plan)
            }
            _ => Ok(plan),
        }
    }

    /// The plan with the network of the ONNX model at `path`: its graph written out as
    /// `input` and `[[layers]]` (the model `custom`), its weights the starting weights unless
    /// the plan names others, and per-layer overrides that name none of its layers dropped.
    pub fn with_onnx(mut self, path: &Path) -> Result<Self, PlanFileError> {
        let model = crate::onnx::import(path)?;
        let names: std::collections::HashSet<String> = model
            .stack
            .resolve(None)?
            .into_iter()
            .map(|l| l.name)
            .collect();
        self.pruning.layers.retain(|name, _| names.contains(name));
        self.model = ModelKind::Custom;
        self.input = Some(model.stack.input);
        self.layers = model.stack.layers;
        if self.training.weights.as_ref() == self.onnx.as_ref() {
            self.training.weights = None;
        }
        self.onnx = Some(path.to_path_buf());
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        self.name = format!("ONNX {stem}");
        Ok(self)
    }

    /// The file the run's starting weights come from: the plan's `training.weights`, else
    /// its ONNX model.
    pub fn starting_weights(&self) -> Option<&Path> {
        self.training.weights.as_deref().or(self.onnx.as_deref())
    }

    /// Writes the plan atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::atomic_write(path, self.to_toml().as_bytes())
    }

    pub fn preset(name: &str) -> Result<Self, PlanFileError> {
        PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| PlanFileError::UnknownPreset {
                name: name.to_string(),
                known: PRESETS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .and_then(|(n, text)| Self::from_toml(text, &format!("preset {n}")))
    }

    /// The network this plan trains: its own `layers` when it has some, otherwise the
    /// built-in model's stack.
    pub fn stack(&self) -> Result<StackConfig, PlanFileError> {
        if !self.layers.is_empty() {
            return Ok(StackConfig {
                input: self.input.unwrap_or([1, 28, 28]),
                layers: self.layers.clone(),
            });
        }
        if let (ModelKind::Custom, Some(onnx)) = (self.model, &self.onnx) {
            return Ok(crate::onnx::import(onnx)?.stack);
        }
        self.model.stack().ok_or_else(|| {
            PlanFileError::Invalid(
                "model = \"custom\" needs its layers: add [[layers]] entries to the plan, or an ONNX model (onnx = \"FILE\")".into(),
            )
        })
    }

    /// The network's prunable layers, checked.
    pub fn layer_specs(&self) -> Result<Vec<LayerSpec>, PlanFileError> {
        Ok(self.stack()?.layer_specs(None)?)
    }

    /// The network's unit groups: channels its graph ties together and attention layers'
    /// heads, each pruned together.
    pub fn unit_groups(&self) -> Result<Vec<UnitGroup>, PlanFileError> {
        Ok(self.stack()?.unit_groups()?)
    }

    /// The plan with its network written out as `input` and `[[layers]]`, for a user to
    /// copy and edit.
    pub fn with_layers_written_out(&self) -> Result<Self, PlanFileError> {
        let stack = self.stack()?;
        Ok(Self {
            input: Some(stack.input),
            layers: stack.layers,
            ..self.clone()
        })
    }

    /// Why switching a running session from `self` to `next` needs a reset (a new model,
    /// new data or a new random stream), or `None` when it can be applied live.
    pub fn reset_reason(&self, next: &ExperimentPlan) -> Option<&'static str> {
        if self.model != next.model || self.input != next.input || self.layers != next.layers {
            Some("the network")
        } else if self.dataset != next.dataset {
            Some("the dataset")
        } else if self.training.batch != next.training.batch {
            Some("the batch size")
        } else if self.training.seed != next.training.seed {
            Some("the seed")
        } else if self.training.backend != next.training.backend
            || self.training.remote != next.training.remote
            || self.training.token != next.training.token
        {
            Some("the backend")
        } else if self.training.weights != next.training.weights || self.onnx != next.onnx {
            Some("the starting weights")
        } else if self.pruning.rewind != next.pruning.rewind {
            Some("the rewind point")
        } else {
            None
        }
    }

    /// Optimizer steps per epoch for a training split of `train_len` examples: the epoch
    /// order's batches (see [`crate::data::EpochOrder`]).
    pub fn steps_per_epoch(&self, train_len: usize) -> u64 {
        crate::data::EpochOrder::new(self.training.seed, train_len, self.training.batch)
            .batches_per_epoch() as u64
    }

    /// The plan checked against `train_len` training examples ([`ExperimentPlan::validate`]),
    /// with what the check found, so that whoever takes it does not check it again.
    pub fn check(self, train_len: usize) -> Result<CheckedPlan, PlanFileError> {
        let schedule = self.validate(train_len)?;
        Ok(CheckedPlan {
            plan: self,
            schedule,
            train_len,
        })
    }

    /// Checks everything that does not need the data: numbers in range, the schedule, and
    /// the pruning rules against the model's layers. Returns the resolved schedule.
    pub fn validate(&self, train_len: usize) -> Result<StepSchedule, PlanFileError> {
        let t = &self.training;
        if t.epochs == 0 {
            return Err(PlanFileError::Invalid(
                "training.epochs must be at least 1".into(),
            ));
        }
        if t.batch == 0 {
            return Err(PlanFileError::Invalid(
                "training.batch must be at least 1".into(),
            ));
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return Err(PlanFileError::Invalid(format!(
                "training.lr must be a positive number, found {}",
                t.lr
            )));
        }
        if let Some(pace) = t.pace
            && !(pace.is_finite() && pace > 0.0)
        {
            return Err(PlanFileError::Invalid(format!(
                "training.pace must be a positive number of steps per second (leave it out for full speed), found {pace}"
            )));
        }
        self.pruning.rules(&self.layer_specs()?)?;
        let steps_per_epoch = self.steps_per_epoch(train_len);
        let schedule = self
            .pruning
            .schedule
            .resolve(steps_per_epoch)
            .map_err(PolicyError::from)?;
        if let Some(rewind) = self.pruning.rewind {
            let (at, first) = (rewind.resolve(steps_per_epoch), schedule.first_prune_step());
            if at > first {
                return Err(PlanFileError::Invalid(format!(
                    "pruning.rewind is at step {at}, after the first pruning step ({first}): \
                     a lottery ticket rewinds to a moment before pruning"
                )));
            }
        }
        Ok(schedule)
    }
}

/// A plan checked against a number of training examples, and the schedule it resolved
/// to. Only [`ExperimentPlan::check`] makes one: the window checks each edit once and hands
/// the result to the run, which takes it as it is when its own data has that many
/// examples.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedPlan {
    plan: ExperimentPlan,
    schedule: StepSchedule,
    train_len: usize,
}

impl CheckedPlan {
    pub fn plan(&self) -> &ExperimentPlan {
        &self.plan
    }

    pub fn schedule(&self) -> &StepSchedule {
        &self.schedule
    }

    /// The training examples it was checked against.
    pub fn train_len(&self) -> usize {
        self.train_len
    }

    /// The plan and its schedule, for a run of `train_len` examples: as checked when it was
    /// checked against that many, checked again otherwise.
    pub fn for_examples(
        self,
        train_len: usize,
    ) -> Result<(ExperimentPlan, StepSchedule), PlanFileError> {
        if train_len == self.train_len {
            return Ok((self.plan, self.schedule));
        }
        let checked = self.plan.check(train_len)?;
        Ok((checked.plan, checked.schedule))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::BUILTIN_TRAIN;

    #[test]
    fn only_the_model_is_required() {
        let plan = ExperimentPlan::from_toml("model = \"mlp\"\n", "minimal").unwrap();
        assert_eq!(plan.training, Training::default());
        assert_eq!(plan.pruning, PruningPolicy::default());
        plan.validate(BUILTIN_TRAIN).unwrap();
        // a schedule section without its kind, and a pruning section without granularity
        let plan = ExperimentPlan::from_toml(
            "model = \"mlp\"\n[training]\nepochs = 3\n[pruning.schedule]\nfinal = 0.5\n",
            "partial",
        )
        .unwrap();
        assert_eq!(plan.training.epochs, 3);
        assert_eq!(plan.training.batch, 128);
        assert_eq!(
            plan.pruning.granularity,
            crate::prune::Granularity::Unstructured
        );
        assert_eq!(
            plan.pruning.schedule.kind(),
            crate::prune::ScheduleKind::Polynomial
        );
        assert_eq!(plan.pruning.schedule.final_target(), 0.5);
        // a kind's own fields default too, and the filled-in plan reads back the same
        let once = ExperimentPlan::from_toml(
            "model = \"mlp\"\n[pruning.schedule]\nkind = \"one-shot\"\n",
            "one-shot",
        )
        .unwrap();
        assert_eq!(
            once.pruning.schedule,
            crate::prune::Schedule::OneShot {
                target: crate::prune::defaults::TARGET,
                at: crate::prune::defaults::END,
            }
        );
        assert_eq!(
            ExperimentPlan::from_toml(&once.to_toml(), "again").unwrap(),
            once
        );
        // the model is not optional, and a misspelt field is still an error
        let e = ExperimentPlan::from_toml("[training]\nepochs = 3\n", "no model").unwrap_err();
        assert!(e.to_string().contains("model"), "{e}");
        let e =
            ExperimentPlan::from_toml("model = \"mlp\"\n[pruning.schedule]\nfnal = 0.5\n", "typo")
                .unwrap_err();
        assert!(e.to_string().contains("fnal"), "{e}");
    }

    #[test]
    fn every_preset_parses_validates_and_round_trips() {
        for (name, _) in PRESETS {
            let plan = ExperimentPlan::preset(name).unwrap();
            let train = match plan.dataset {
                DatasetSource::FashionMnist => 60_000,
                _ => BUILTIN_TRAIN,
            };
            plan.validate(train)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let again = ExperimentPlan::from_toml(&plan.to_toml(), "round trip").unwrap();
            assert_eq!(plan, again, "{name}");
        }
    }

    #[test]
    fn a_checked_plan_is_checked_again_only_for_another_number_of_examples() {
        let plan = ExperimentPlan::preset("lenet300-agp90").unwrap();
        let checked = plan.clone().check(8_000).unwrap();
        assert_eq!(checked.train_len(), 8_000);
        let (same, schedule) = checked.clone().for_examples(8_000).unwrap();
        assert_eq!((&same, &schedule), (&plan, checked.schedule()));
        // a tenth of the examples: a tenth of the steps per epoch, so an end given in
        // epochs comes sooner
        let (_, fewer) = checked.for_examples(800).unwrap();
        assert_eq!(fewer, plan.validate(800).unwrap());
        assert!(fewer.last_prune_step() < schedule.last_prune_step());
        assert!(
            ExperimentPlan {
                training: Training {
                    epochs: 0,
                    ..plan.training.clone()
                },
                ..plan
            }
            .check(8_000)
            .is_err()
        );
    }

    #[test]
    fn bad_plans_name_the_problem() {
        let mut plan = ExperimentPlan::preset("quick-demo").unwrap();
        plan.training.lr = f64::NAN;
        assert!(
            plan.validate(8000)
                .unwrap_err()
                .to_string()
                .contains("training.lr")
        );
        let mut plan = ExperimentPlan::preset("quick-demo").unwrap();
        plan.pruning.schedule.set_final_target(1.0);
        assert!(
            plan.validate(8000)
                .unwrap_err()
                .to_string()
                .contains("[0, 1)")
        );
        let e =
            ExperimentPlan::from_toml("model = \"mlp\"\n[training]\nepochs = \"one\"\n", "t.toml")
                .unwrap_err()
                .to_string();
        assert!(e.starts_with("t.toml: not a valid plan"), "{e}");
        let e = ExperimentPlan::preset("nope").unwrap_err().to_string();
        assert!(e.contains("quick-demo"), "{e}");
    }
}
