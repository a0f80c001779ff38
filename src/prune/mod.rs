//! The pruning core: plain Rust on host slices, no tensors.
//!
//! Masks for every granularity (unstructured, N:M, block, channel), criteria (magnitude,
//! random, and the ranking of the saliencies the session measures), scopes (per layer,
//! global), schedules (constant, one-shot, iterative, tfmot's polynomial decay, RigL and
//! SET) and dynamic sparse training's exchange. Everything that a paper or tfmot defines is
//! a pure function here, tested against its definition.

pub mod exchange;
pub mod granularity;
pub mod group;
pub mod layer;
pub mod mask;
pub mod policy;
pub mod schedule;
pub mod schedule_kind;
pub mod score;
mod step_schedule;

pub use exchange::{Exchange, GrowthScores, exchange};
pub use granularity::{BlockScore, Granularity, GranularityError, Ineligible};
pub use group::{GroupKind, Member, UnitGroup, apply_group, group_keep, group_kept, group_scores};
pub use layer::{LayerKind, LayerShape};
pub use mask::{
    GlobalLayer, MaskError, cut_threshold, global_masks, keep_count, layer_mask, nm_mask,
    same_kept, sparsity,
};
pub use policy::{LayerOverride, LayerRule, LayerSpec, PolicyError, PruningPolicy, Scope};
pub use schedule::{At, Dynamic, Growth, Schedule, ScheduleError, StepSchedule, defaults};
pub use schedule_kind::ScheduleKind;
pub use score::{Criterion, random_score};
