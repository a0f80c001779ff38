//! A schedule with every moment fixed to an optimizer step: the two functions that define
//! it, [`StepSchedule::value`] and [`StepSchedule::should_prune`], and what follows from
//! them (the last pruning step, RigL's exchanges, the curve the plots draw ahead).

use thiserror::Error;

/// How dynamic sparse training chooses the pruned weights it grows back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// The largest gradient magnitudes (RigL).
    Gradient,
    /// At random (SET).
    Random,
}

/// A schedule that cannot run.
#[derive(Debug, Error, PartialEq, Clone)]
pub enum ScheduleError {
    #[error("{what} sparsity must be in [0, 1), found {value}")]
    SparsityOutOfRange { what: &'static str, value: f64 },
    #[error("the schedule must end after it begins (begin step {begin}, end step {end})")]
    EndBeforeBegin { begin: u64, end: u64 },
    #[error("pruning frequency must be at least 1 step")]
    ZeroFrequency,
    #[error("an iterative schedule needs at least one pruning step")]
    NoPruneSteps,
    #[error("the polynomial power must be positive and finite, found {0}")]
    BadPower(f64),
    #[error(
        "the share of weights a dynamic schedule exchanges (alpha) must be in (0, 1], found {0}"
    )]
    BadAlpha(f64),
}

/// A schedule with every moment in optimizer steps.
#[derive(Clone, Debug, PartialEq)]
pub enum StepSchedule {
    Constant {
        target: f64,
        begin: u64,
        end: Option<u64>,
        frequency: u64,
    },
    OneShot {
        target: f64,
        at: u64,
    },
    Iterative {
        target: f64,
        begin: u64,
        end: u64,
        prune_steps: u32,
    },
    Polynomial {
        initial: f64,
        final_sparsity: f64,
        begin: u64,
        end: u64,
        power: f64,
        frequency: u64,
    },
    /// RigL or SET: the target from `begin`, then exchanges until `end`.
    Dynamic {
        target: f64,
        begin: u64,
        end: u64,
        frequency: u64,
        alpha: f64,
        growth: Growth,
    },
}

fn check_sparsity(what: &'static str, value: f64) -> Result<(), ScheduleError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(ScheduleError::SparsityOutOfRange { what, value })
    }
}

impl StepSchedule {
    pub fn validate(&self) -> Result<(), ScheduleError> {
        match *self {
            StepSchedule::Constant {
                target,
                begin,
                end,
                frequency,
            } => {
                check_sparsity("target", target)?;
                if frequency == 0 {
                    return Err(ScheduleError::ZeroFrequency);
                }
                if let Some(end) = end
                    && end < begin
                {
                    return Err(ScheduleError::EndBeforeBegin { begin, end });
                }
            }
            StepSchedule::OneShot { target, .. } => check_sparsity("target", target)?,
            StepSchedule::Iterative {
                target,
                begin,
                end,
                prune_steps,
            } => {
                check_sparsity("target", target)?;
                if prune_steps == 0 {
                    return Err(ScheduleError::NoPruneSteps);
                }
                if end < begin {
                    return Err(ScheduleError::EndBeforeBegin { begin, end });
                }
            }
            StepSchedule::Polynomial {
                initial,
                final_sparsity,
                begin,
                end,
                power,
                frequency,
            } => {
                check_sparsity("initial", initial)?;
                check_sparsity("final", final_sparsity)?;
                if end <= begin {
                    return Err(ScheduleError::EndBeforeBegin { begin, end });
                }
                if frequency == 0 {
                    return Err(ScheduleError::ZeroFrequency);
                }
                if !(power.is_finite() && power > 0.0) {
                    return Err(ScheduleError::BadPower(power));
                }
            }
            StepSchedule::Dynamic {
                target,
                begin,
                end,
                frequency,
                alpha,
                ..
            } => {
                check_sparsity("target", target)?;
                if end <= begin {
                    return Err(ScheduleError::EndBeforeBegin { begin, end });
                }
                if frequency == 0 {
                    return Err(ScheduleError::ZeroFrequency);
                }
                if !(alpha > 0.0 && alpha <= 1.0) {
                    return Err(ScheduleError::BadAlpha(alpha));
                }
            }
        }
        Ok(())
    }

    /// The steps of an iterative schedule at which it prunes, in order.
    fn iterative_steps(begin: u64, end: u64, k: u32) -> impl Iterator<Item = u64> {
        (0..k as u64).map(move |i| {
            if k == 1 {
                begin
            } else {
                begin + ((end - begin) as f64 * i as f64 / (k as u64 - 1) as f64).round() as u64
            }
        })
    }

    /// The schedule's sparsity at `step` (tfmot's `__call__` value; for one-shot and
    /// iterative, the sparsity reached by the last pruning step at or before `step`).
    pub fn value(&self, step: u64) -> f64 {
        match *self {
            StepSchedule::Constant { target, .. } => target,
            StepSchedule::Dynamic { target, begin, .. } => {
                if step >= begin {
                    target
                } else {
                    0.0
                }
            }
            StepSchedule::OneShot { target, at } => {
                if step >= at {
                    target
                } else {
                    0.0
                }
            }
            StepSchedule::Iterative {
                target,
                begin,
                end,
                prune_steps,
            } => {
                let done = Self::iterative_steps(begin, end, prune_steps)
                    .filter(|&s| s <= step)
                    .count();
                target * done as f64 / prune_steps as f64
            }
            StepSchedule::Polynomial {
                initial,
                final_sparsity,
                begin,
                end,
                power,
                ..
            } => {
                let p =
                    ((step as f64 - begin as f64) / (end as f64 - begin as f64)).clamp(0.0, 1.0);
                (initial - final_sparsity) * (1.0 - p).powf(power) + final_sparsity
            }
        }
    }

    /// Whether masks are recomputed before training on `step`.
    pub fn should_prune(&self, step: u64) -> bool {
        match *self {
            StepSchedule::Constant {
                begin,
                end,
                frequency,
                ..
            } => {
                step >= begin
                    && end.is_none_or(|e| step <= e)
                    && (step - begin).is_multiple_of(frequency)
            }
            StepSchedule::OneShot { at, .. } => step == at,
            StepSchedule::Iterative {
                begin,
                end,
                prune_steps,
                ..
            } => Self::iterative_steps(begin, end, prune_steps).any(|s| s == step),
            StepSchedule::Polynomial {
                begin,
                end,
                frequency,
                ..
            } => step >= begin && step <= end && (step - begin).is_multiple_of(frequency),
            StepSchedule::Dynamic { begin, .. } => step == begin,
        }
    }

    /// The share of each layer's kept weights that a dynamic schedule exchanges before
    /// training on `step` (RigL's cosine decay `alpha/2 * (1 + cos(pi * t / T))`), or `None`
    /// when no exchange is due: every `frequency` steps after `begin`, strictly before `end`.
    pub fn exchange_fraction(&self, step: u64) -> Option<f64> {
        let StepSchedule::Dynamic {
            begin,
            end,
            frequency,
            alpha,
            ..
        } = *self
        else {
            return None;
        };
        if step <= begin || step >= end || !(step - begin).is_multiple_of(frequency) {
            return None;
        }
        let t = (step - begin) as f64 / (end - begin) as f64;
        Some(alpha / 2.0 * (1.0 + (std::f64::consts::PI * t).cos()))
    }

    /// The last step at which masks are recomputed (`None`: a constant schedule without an
    /// end prunes for ever). After it the masks hold the schedule's final value.
    pub fn last_prune_step(&self) -> Option<u64> {
        match *self {
            StepSchedule::Constant {
                begin,
                end,
                frequency,
                ..
            } => end.map(|e| begin + e.saturating_sub(begin) / frequency * frequency),
            StepSchedule::OneShot { at, .. } => Some(at),
            StepSchedule::Iterative {
                begin,
                end,
                prune_steps,
                ..
            } => Self::iterative_steps(begin, end, prune_steps).last(),
            StepSchedule::Polynomial {
                begin,
                end,
                frequency,
                ..
            } => Some(begin + (end - begin) / frequency * frequency),
            StepSchedule::Dynamic { begin, .. } => Some(begin),
        }
    }

    /// How a dynamic schedule grows weights back (`None` for the others).
    pub fn growth(&self) -> Option<Growth> {
        match *self {
            StepSchedule::Dynamic { growth, .. } => Some(growth),
            _ => None,
        }
    }

    /// The first step that prunes, if any step does.
    pub fn first_prune_step(&self) -> u64 {
        match *self {
            StepSchedule::Constant { begin, .. }
            | StepSchedule::Iterative { begin, .. }
            | StepSchedule::Polynomial { begin, .. }
            | StepSchedule::Dynamic { begin, .. } => begin,
            StepSchedule::OneShot { at, .. } => at,
        }
    }

    /// The sparsity masks hold during each of `steps` steps: the value at the last
    /// pruning step at or before it (0 before the first). What the plot draws ahead.
    pub fn mask_targets(&self, steps: u64) -> Vec<(u64, f64)> {
        let mut current = 0.0;
        let mut curve = Vec::new();
        for s in 0..steps {
            if self.should_prune(s) {
                current = self.value(s);
                curve.push((s, current));
            }
        }
        if curve.last().is_none_or(|&(s, _)| s + 1 < steps) && steps > 0 {
            curve.push((steps - 1, current));
        }
        curve
    }
}
