//! A schedule with every moment fixed to an optimizer step: the two functions that define
//! it, [`StepSchedule::value`] and [`StepSchedule::should_prune`], and what follows from
//! them (the last pruning step, RigL's exchanges, the curve the plots draw ahead).

use super::schedule::{Dynamic, Growth, Schedule, ScheduleError, StepSchedule};

fn check_sparsity(what: &'static str, value: f64) -> Result<(), ScheduleError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(ScheduleError::SparsityOutOfRange { what, value })
    }
}

impl Schedule<u64> {
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
            StepSchedule::Rigl(ref d) | StepSchedule::Set(ref d) => {
                let Dynamic {
                    target,
                    begin,
                    end,
                    frequency,
                    alpha,
                } = *d;
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
            StepSchedule::Rigl(ref d) | StepSchedule::Set(ref d) => {
                if step >= d.begin {
                    d.target
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
            StepSchedule::Rigl(ref d) | StepSchedule::Set(ref d) => step == d.begin,
        }
    }

    /// The share of each layer's kept weights that a dynamic schedule exchanges before
    /// training on `step` (RigL's cosine decay `alpha/2 * (1 + cos(pi * t / T))`), or `None`
    /// when no exchange is due: every `frequency` steps after `begin`, strictly before `end`.
    pub fn exchange_fraction(&self, step: u64) -> Option<f64> {
        let (
            &Dynamic {
                begin,
                end,
                frequency,
                alpha,
                ..
            },
            _,
        ) = self.dynamic()?;
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
            StepSchedule::Rigl(ref d) | StepSchedule::Set(ref d) => Some(d.begin),
        }
    }

    /// How a dynamic schedule grows weights back (`None` for the others).
    pub fn growth(&self) -> Option<Growth> {
        self.dynamic().map(|(_, growth)| growth)
    }

    /// The first step that prunes, if any step does.
    pub fn first_prune_step(&self) -> u64 {
        self.begin()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn poly(initial: f64, fin: f64, begin: u64, end: u64, freq: u64) -> StepSchedule {
        StepSchedule::Polynomial {
            initial,
            final_sparsity: fin,
            begin,
            end,
            power: 3.0,
            frequency: freq,
        }
    }

    #[test]
    fn polynomial_matches_tfmot_values() {
        // tfmot PolynomialDecay(0.5, 0.8, begin_step=0, end_step=1000):
        // sparsity(step) = (0.5 - 0.8) * (1 - step/1000)^3 + 0.8
        let s = poly(0.5, 0.8, 0, 1000, 100);
        assert!((s.value(0) - 0.5).abs() < 1e-12);
        assert!((s.value(500) - (0.8 - 0.3 * 0.125)).abs() < 1e-12);
        assert!((s.value(1000) - 0.8).abs() < 1e-12);
        assert!((s.value(5000) - 0.8).abs() < 1e-12);
        assert!(s.should_prune(0) && s.should_prune(100) && s.should_prune(1000));
        assert!(!s.should_prune(50) && !s.should_prune(1100));
    }

    #[test]
    fn polynomial_before_begin_holds_initial_but_does_not_prune() {
        let s = poly(0.2, 0.9, 100, 200, 10);
        assert!((s.value(0) - 0.2).abs() < 1e-12);
        assert!(!s.should_prune(0) && !s.should_prune(90));
        assert!(s.should_prune(100) && s.should_prune(110) && !s.should_prune(105));
    }

    #[test]
    fn one_shot_prunes_exactly_once() {
        let s = StepSchedule::OneShot {
            target: 0.7,
            at: 30,
        };
        let prunes: Vec<u64> = (0..100).filter(|&t| s.should_prune(t)).collect();
        assert_eq!(prunes, vec![30]);
        assert_eq!(s.value(29), 0.0);
        assert_eq!(s.value(30), 0.7);
    }

    #[test]
    fn iterative_steps_evenly_and_rises_linearly() {
        let s = StepSchedule::Iterative {
            target: 0.8,
            begin: 100,
            end: 400,
            prune_steps: 4,
        };
        let prunes: Vec<u64> = (0..1000).filter(|&t| s.should_prune(t)).collect();
        assert_eq!(prunes, vec![100, 200, 300, 400]);
        assert!((s.value(99) - 0.0).abs() < 1e-12);
        assert!((s.value(100) - 0.2).abs() < 1e-12);
        assert!((s.value(250) - 0.4).abs() < 1e-12);
        assert!((s.value(400) - 0.8).abs() < 1e-12);
    }

    #[test]
    fn constant_prunes_every_frequency_steps_from_begin() {
        let s = StepSchedule::Constant {
            target: 0.5,
            begin: 10,
            end: Some(250),
            frequency: 100,
        };
        let prunes: Vec<u64> = (0..1000).filter(|&t| s.should_prune(t)).collect();
        assert_eq!(prunes, vec![10, 110, 210]);
    }

    #[test]
    fn impossible_schedules_are_errors() {
        assert!(matches!(
            poly(0.5, 1.0, 0, 10, 1).validate(),
            Err(ScheduleError::SparsityOutOfRange { what: "final", .. })
        ));
        assert!(matches!(
            poly(0.5, 0.8, 10, 10, 1).validate(),
            Err(ScheduleError::EndBeforeBegin { .. })
        ));
        assert_eq!(
            poly(0.5, 0.8, 0, 10, 0).validate(),
            Err(ScheduleError::ZeroFrequency)
        );
        assert_eq!(
            StepSchedule::Iterative {
                target: 0.5,
                begin: 0,
                end: 10,
                prune_steps: 0
            }
            .validate(),
            Err(ScheduleError::NoPruneSteps)
        );
    }

    #[test]
    fn mask_targets_are_piecewise_constant() {
        let s = StepSchedule::OneShot { target: 0.6, at: 5 };
        assert_eq!(s.mask_targets(10), vec![(5, 0.6), (9, 0.6)]);
    }
}
