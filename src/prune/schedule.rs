//! Pruning schedules: when masks are recomputed, and to which sparsity.
//!
//! One type, [`Schedule`], generic over how it names moments. A plan writes them as
//! steps (`begin = 500`) or epochs (`begin = { epoch = 8 }`): a `Schedule<At>`.
//! [`Schedule::resolve`] turns them into optimizer steps once the number of steps per epoch
//! is known, giving a [`StepSchedule`] (`Schedule<u64>`), whose two functions `value` and
//! `should_prune` (in `step_schedule.rs`) are the whole definition.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A moment in training: an optimizer step, or a (possibly fractional) epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum At {
    Step(u64),
    Epoch { epoch: f64 },
}

impl At {
    pub fn resolve(&self, steps_per_epoch: u64) -> u64 {
        match *self {
            At::Step(s) => s,
            At::Epoch { epoch } => (epoch * steps_per_epoch as f64).round().max(0.0) as u64,
        }
    }
}

/// The one set of defaults for a schedule's settings, used by plans, the window and the
/// command line alike: tfmot's PolynomialDecay power and frequency, tfmot's guide's two
/// epochs of pruning, and five pruning steps for the iterative schedule.
pub mod defaults {
    use super::At;

    pub const POWER: f64 = 3.0;
    pub const FREQUENCY: u64 = 100;
    pub const PRUNE_STEPS: u32 = 5;
    /// RigL's share of the kept weights exchanged at the first update (Evci et al. 2020).
    pub const ALPHA: f64 = 0.3;
    /// Where pruning ends when a schedule that needs an end gets none (and where a
    /// one-shot schedule prunes when a plan does not say).
    pub const END: At = At::Epoch { epoch: 2.0 };
    /// The final sparsity of a plan that does not say: tfmot's guide's 80%.
    pub const TARGET: f64 = 0.8;
}

fn default_power() -> f64 {
    defaults::POWER
}
fn default_frequency() -> u64 {
    defaults::FREQUENCY
}
fn default_alpha() -> f64 {
    defaults::ALPHA
}
fn at_zero<M: From<At>>() -> M {
    At::Step(0).into()
}
fn default_end<M: From<At>>() -> M {
    defaults::END.into()
}
fn default_target() -> f64 {
    defaults::TARGET
}
fn default_prune_steps() -> u32 {
    defaults::PRUNE_STEPS
}

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

/// How sparsity evolves over training, with moments named by `M`: [`At`] (a step or an
/// epoch) as a plan writes them, `u64` (optimizer steps) once resolved ([`StepSchedule`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    deny_unknown_fields,
    bound(
        serialize = "M: Serialize",
        deserialize = "M: Deserialize<'de> + From<At>"
    )
)]
pub enum Schedule<M = At> {
    /// tfmot's `ConstantSparsity`: the same target at every pruning step from `begin`
    /// (every `frequency` steps, up to `end` if given).
    Constant {
        #[serde(default = "default_target")]
        target: f64,
        #[serde(default = "at_zero")]
        begin: M,
        #[serde(default)]
        end: Option<M>,
        #[serde(default = "default_frequency")]
        frequency: u64,
    },
    /// Train dense, prune once at `at`, then fine-tune with the mask fixed.
    OneShot {
        #[serde(default = "default_target")]
        target: f64,
        #[serde(default = "default_end")]
        at: M,
    },
    /// `prune_steps` pruning steps evenly spaced from `begin` to `end`; the k-th of K takes
    /// the sparsity to `target * k / K`, with training in between.
    Iterative {
        #[serde(default = "default_target")]
        target: f64,
        #[serde(default = "at_zero")]
        begin: M,
        #[serde(default = "default_end")]
        end: M,
        #[serde(default = "default_prune_steps")]
        prune_steps: u32,
    },
    /// tfmot's `PolynomialDecay`: `s(t) = final + (initial - final) * (1 - p)^power` with
    /// `p = clamp((t - begin) / (end - begin), 0, 1)`, applied on steps where
    /// `(t - begin) % frequency == 0` inside `[begin, end]`.
    Polynomial {
        #[serde(default)]
        initial: f64,
        #[serde(rename = "final", default = "default_target")]
        final_sparsity: f64,
        #[serde(default = "at_zero")]
        begin: M,
        #[serde(default = "default_end")]
        end: M,
        #[serde(default = "default_power")]
        power: f64,
        #[serde(default = "default_frequency")]
        frequency: u64,
    },
    /// RigL dynamic sparse training (Evci et al. 2020), growing by gradient magnitude.
    Rigl(Dynamic<M>),
    /// SET (Mocanu et al. 2018): as RigL, but the grown weights are chosen at random.
    Set(Dynamic<M>),
}

/// A dynamic sparse training schedule (RigL, SET): the target from `begin`; every
/// `frequency` steps before `end`, the `alpha/2 * (1 + cos(pi * t / T))` share of the kept
/// weights with the smallest magnitude is dropped and as many pruned weights are grown,
/// starting at zero (`t` steps since `begin`, `T` from `begin` to `end`). The [`Schedule`]
/// variant that holds it says how the grown weights are chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(
        serialize = "M: Serialize",
        deserialize = "M: Deserialize<'de> + From<At>"
    )
)]
pub struct Dynamic<M = At> {
    #[serde(default = "default_target")]
    pub target: f64,
    #[serde(default = "at_zero")]
    pub begin: M,
    #[serde(default = "default_end")]
    pub end: M,
    #[serde(default = "default_frequency")]
    pub frequency: u64,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
}

/// A schedule with every moment fixed to an optimizer step.
pub type StepSchedule = Schedule<u64>;

impl Default for Schedule {
    /// tfmot's PolynomialDecay with its defaults (begin at step 0, power 3, every 100
    /// steps) to [`defaults::TARGET`], ending at [`defaults::END`].
    fn default() -> Self {
        Schedule::Polynomial {
            initial: 0.0,
            final_sparsity: defaults::TARGET,
            begin: at_zero(),
            end: defaults::END,
            power: defaults::POWER,
            frequency: defaults::FREQUENCY,
        }
    }
}

impl<M: Copy> Schedule<M> {
    /// The sparsity the schedule ends at: what the target slider moves.
    pub fn final_target(&self) -> f64 {
        match self {
            Schedule::Constant { target, .. }
            | Schedule::OneShot { target, .. }
            | Schedule::Iterative { target, .. }
            | Schedule::Rigl(Dynamic { target, .. })
            | Schedule::Set(Dynamic { target, .. }) => *target,
            Schedule::Polynomial { final_sparsity, .. } => *final_sparsity,
        }
    }

    /// Moves the final target, keeping the shape of the schedule. A polynomial whose initial
    /// sparsity would end above the new final is lowered with it.
    pub fn set_final_target(&mut self, value: f64) {
        match self {
            Schedule::Constant { target, .. }
            | Schedule::OneShot { target, .. }
            | Schedule::Iterative { target, .. }
            | Schedule::Rigl(Dynamic { target, .. })
            | Schedule::Set(Dynamic { target, .. }) => *target = value,
            Schedule::Polynomial {
                initial,
                final_sparsity,
                ..
            } => {
                *final_sparsity = value;
                *initial = initial.min(value);
            }
        }
    }

    /// When pruning begins (a one-shot schedule's only step).
    pub fn begin(&self) -> M {
        match self {
            Schedule::Constant { begin, .. }
            | Schedule::Iterative { begin, .. }
            | Schedule::Polynomial { begin, .. }
            | Schedule::Rigl(Dynamic { begin, .. })
            | Schedule::Set(Dynamic { begin, .. }) => *begin,
            Schedule::OneShot { at, .. } => *at,
        }
    }

    /// When pruning ends, for schedules that have an end.
    pub fn end(&self) -> Option<M> {
        match self {
            Schedule::Constant { end, .. } => *end,
            Schedule::OneShot { .. } => None,
            Schedule::Iterative { end, .. }
            | Schedule::Polynomial { end, .. }
            | Schedule::Rigl(Dynamic { end, .. })
            | Schedule::Set(Dynamic { end, .. }) => Some(*end),
        }
    }

    /// How often the schedule prunes or exchanges, for the kinds that say.
    pub fn frequency(&self) -> Option<u64> {
        match self {
            Schedule::Constant { frequency, .. }
            | Schedule::Polynomial { frequency, .. }
            | Schedule::Rigl(Dynamic { frequency, .. })
            | Schedule::Set(Dynamic { frequency, .. }) => Some(*frequency),
            Schedule::OneShot { .. } | Schedule::Iterative { .. } => None,
        }
    }

    /// A dynamic schedule's settings and how it grows weights back (`None` for the others).
    pub fn dynamic(&self) -> Option<(&Dynamic<M>, Growth)> {
        match self {
            Schedule::Rigl(d) => Some((d, Growth::Gradient)),
            Schedule::Set(d) => Some((d, Growth::Random)),
            _ => None,
        }
    }

    /// The same schedule with every moment named by `to`: the one place the variants are
    /// taken apart field by field.
    pub fn map_moments<N>(&self, to: impl Fn(M) -> N) -> Schedule<N> {
        let dynamic = |d: &Dynamic<M>| Dynamic {
            target: d.target,
            begin: to(d.begin),
            end: to(d.end),
            frequency: d.frequency,
            alpha: d.alpha,
        };
        match *self {
            Schedule::Constant {
                target,
                begin,
                end,
                frequency,
            } => Schedule::Constant {
                target,
                begin: to(begin),
                end: end.map(&to),
                frequency,
            },
            Schedule::OneShot { target, at } => Schedule::OneShot { target, at: to(at) },
            Schedule::Iterative {
                target,
                begin,
                end,
                prune_steps,
            } => Schedule::Iterative {
                target,
                begin: to(begin),
                end: to(end),
                prune_steps,
            },
            Schedule::Polynomial {
                initial,
                final_sparsity,
                begin,
                end,
                power,
                frequency,
            } => Schedule::Polynomial {
                initial,
                final_sparsity,
                begin: to(begin),
                end: to(end),
                power,
                frequency,
            },
            Schedule::Rigl(ref d) => Schedule::Rigl(dynamic(d)),
            Schedule::Set(ref d) => Schedule::Set(dynamic(d)),
        }
    }
}

impl Schedule<At> {
    /// Fixes every moment to a step and checks the result.
    pub fn resolve(&self, steps_per_epoch: u64) -> Result<StepSchedule, ScheduleError> {
        let steps = self.map_moments(|at| at.resolve(steps_per_epoch));
        steps.validate()?;
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rigl(begin: u64, end: u64, frequency: u64, alpha: f64) -> StepSchedule {
        Schedule::Rigl(Dynamic {
            target: 0.9,
            begin: At::Step(begin),
            end: At::Step(end),
            frequency,
            alpha,
        })
        .resolve(100)
        .unwrap()
    }

    #[test]
    fn dynamic_schedules_are_sparse_from_begin_and_exchange_on_a_cosine() {
        let s = rigl(10, 410, 100, 0.3);
        assert_eq!(s.value(9), 0.0);
        assert_eq!(s.value(10), 0.9);
        assert!(s.should_prune(10) && !s.should_prune(110), "pruned once");
        assert_eq!(s.growth(), Some(Growth::Gradient));
        // no exchange at the pruning step, off the beat, or at and after the end
        for step in [10, 50, 410, 510] {
            assert_eq!(s.exchange_fraction(step), None, "step {step}");
        }
        // alpha/2 (1 + cos(pi t / T)) with T = 400
        let f = |t: f64| 0.15 * (1.0 + (std::f64::consts::PI * t / 400.0).cos());
        for step in [110, 210, 310] {
            let got = s.exchange_fraction(step).unwrap();
            assert!((got - f((step - 10) as f64)).abs() < 1e-12, "step {step}");
        }
        assert!((s.exchange_fraction(210).unwrap() - 0.15).abs() < 1e-12);
        let set = Schedule::Set(Dynamic {
            target: 0.5,
            begin: At::Step(0),
            end: At::Epoch { epoch: 2.0 },
            frequency: 10,
            alpha: 0.3,
        })
        .resolve(100)
        .unwrap();
        assert_eq!(set.growth(), Some(Growth::Random));
        assert_eq!(set.mask_targets(3), vec![(0, 0.5), (2, 0.5)]);
    }

    #[test]
    fn dynamic_schedules_refuse_what_cannot_run() {
        let bad = |alpha: f64, end: u64| {
            Schedule::Set(Dynamic {
                target: 0.9,
                begin: At::Step(5),
                end: At::Step(end),
                frequency: 10,
                alpha,
            })
            .resolve(100)
            .unwrap_err()
        };
        assert_eq!(bad(0.0, 50), ScheduleError::BadAlpha(0.0));
        assert_eq!(bad(1.5, 50), ScheduleError::BadAlpha(1.5));
        assert_eq!(
            bad(0.3, 5),
            ScheduleError::EndBeforeBegin { begin: 5, end: 5 }
        );
        // a plan may leave begin, frequency and alpha out
        let plan: Schedule =
            toml::from_str("kind = \"rigl\"\ntarget = 0.8\nend = { epoch = 3 }\n").unwrap();
        assert_eq!(
            plan,
            Schedule::Rigl(Dynamic {
                target: 0.8,
                begin: At::Step(0),
                end: At::Epoch { epoch: 3.0 },
                frequency: defaults::FREQUENCY,
                alpha: defaults::ALPHA,
            })
        );
        // a field no schedule has is refused, dynamic or not
        for kind in ["rigl", "set", "polynomial"] {
            let text = format!("kind = \"{kind}\"\ntarget = 0.8\nbegn = 3\n");
            let err = toml::from_str::<Schedule>(&text).unwrap_err().to_string();
            assert!(err.contains("begn"), "{kind}: {err}");
        }
        // and a plan written back reads the same
        let text = toml::to_string(&plan).unwrap();
        assert!(text.contains("kind = \"rigl\""), "{text}");
        assert_eq!(toml::from_str::<Schedule>(&text).unwrap(), plan);
    }

    #[test]
    fn epochs_resolve_to_steps() {
        let s = Schedule::Polynomial {
            initial: 0.0,
            final_sparsity: 0.9,
            begin: At::Epoch { epoch: 8.0 },
            end: At::Epoch { epoch: 16.0 },
            power: 3.0,
            frequency: 50,
        };
        match s.resolve(63).unwrap() {
            StepSchedule::Polynomial { begin, end, .. } => assert_eq!((begin, end), (504, 1008)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn toml_forms() {
        #[derive(Deserialize)]
        struct H {
            schedule: Schedule,
        }
        let h: H = toml::from_str(
            "[schedule]\nkind = \"polynomial\"\ninitial = 0.5\nfinal = 0.8\nbegin = 0\nend = { epoch = 2 }\n",
        )
        .unwrap();
        assert_eq!(
            h.schedule,
            Schedule::Polynomial {
                initial: 0.5,
                final_sparsity: 0.8,
                begin: At::Step(0),
                end: At::Epoch { epoch: 2.0 },
                power: 3.0,
                frequency: 100
            }
        );
    }

    #[test]
    fn the_last_pruning_step_is_the_last_that_should_prune() {
        let schedules = [
            Schedule::Constant {
                target: 0.5,
                begin: At::Step(3),
                end: Some(At::Step(40)),
                frequency: 7,
            },
            Schedule::OneShot {
                target: 0.5,
                at: At::Step(12),
            },
            Schedule::Iterative {
                target: 0.5,
                begin: At::Step(5),
                end: At::Step(33),
                prune_steps: 4,
            },
            Schedule::Polynomial {
                initial: 0.0,
                final_sparsity: 0.5,
                begin: At::Step(2),
                end: At::Step(45),
                power: 3.0,
                frequency: 10,
            },
        ];
        for s in schedules {
            let s = s.resolve(100).unwrap();
            let last = (0..200).rev().find(|&t| s.should_prune(t));
            assert_eq!(s.last_prune_step(), last, "{s:?}");
        }
        let endless = Schedule::Constant {
            target: 0.5,
            begin: At::Step(0),
            end: None,
            frequency: 10,
        };
        assert_eq!(endless.resolve(100).unwrap().last_prune_step(), None);
    }
}
