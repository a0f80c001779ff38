//! Pruning schedules: when masks are recomputed, and to which sparsity.
//!
//! A plan writes moments as steps (`begin = 500`) or epochs (`begin = { epoch = 8 }`);
//! [`Schedule::resolve`] turns them into optimizer steps once the number of steps per
//! epoch is known, giving a [`StepSchedule`] whose two functions, [`StepSchedule::value`]
//! and [`StepSchedule::should_prune`], are the whole definition.

use serde::{Deserialize, Serialize};

use super::step_schedule::{Growth, ScheduleError, StepSchedule};

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
fn at_zero() -> At {
    At::Step(0)
}
fn default_end() -> At {
    defaults::END
}
fn default_target() -> f64 {
    defaults::TARGET
}
fn default_prune_steps() -> u32 {
    defaults::PRUNE_STEPS
}

/// The kinds of [`Schedule`], as plans (`kind = ...`) and the command line write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ScheduleKind {
    Constant,
    #[value(alias = "oneshot")]
    OneShot,
    Iterative,
    #[value(alias = "agp")]
    Polynomial,
    Rigl,
    Set,
}

impl ScheduleKind {
    pub const ALL: [ScheduleKind; 6] = [
        ScheduleKind::Constant,
        ScheduleKind::OneShot,
        ScheduleKind::Iterative,
        ScheduleKind::Polynomial,
        ScheduleKind::Rigl,
        ScheduleKind::Set,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScheduleKind::Constant => "constant",
            ScheduleKind::OneShot => "one-shot",
            ScheduleKind::Iterative => "iterative",
            ScheduleKind::Polynomial => "polynomial",
            ScheduleKind::Rigl => "rigl",
            ScheduleKind::Set => "set",
        }
    }
}

/// How sparsity evolves over training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Schedule {
    /// tfmot's `ConstantSparsity`: the same target at every pruning step from `begin`
    /// (every `frequency` steps, up to `end` if given).
    Constant {
        #[serde(default = "default_target")]
        target: f64,
        #[serde(default = "at_zero")]
        begin: At,
        #[serde(default)]
        end: Option<At>,
        #[serde(default = "default_frequency")]
        frequency: u64,
    },
    /// Train dense, prune once at `at`, then fine-tune with the mask fixed.
    OneShot {
        #[serde(default = "default_target")]
        target: f64,
        #[serde(default = "default_end")]
        at: At,
    },
    /// `prune_steps` pruning steps evenly spaced from `begin` to `end`; the k-th of K takes
    /// the sparsity to `target * k / K`, with training in between.
    Iterative {
        #[serde(default = "default_target")]
        target: f64,
        #[serde(default = "at_zero")]
        begin: At,
        #[serde(default = "default_end")]
        end: At,
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
        begin: At,
        #[serde(default = "default_end")]
        end: At,
        #[serde(default = "default_power")]
        power: f64,
        #[serde(default = "default_frequency")]
        frequency: u64,
    },
    /// RigL dynamic sparse training (Evci et al. 2020): the target from `begin`; every
    /// `frequency` steps before `end`, the `alpha/2 * (1 + cos(pi * t / T))` share of the kept
    /// weights with the smallest magnitude is dropped and as many pruned weights with the
    /// largest gradient magnitude are grown, starting at zero (`t` steps since `begin`, `T`
    /// from `begin` to `end`).
    Rigl {
        #[serde(default = "default_target")]
        target: f64,
        #[serde(default = "at_zero")]
        begin: At,
        #[serde(default = "default_end")]
        end: At,
        #[serde(default = "default_frequency")]
        frequency: u64,
        #[serde(default = "default_alpha")]
        alpha: f64,
    },
    /// SET (Mocanu et al. 2018): as RigL, but the grown weights are chosen at random.
    Set {
        #[serde(default = "default_target")]
        target: f64,
        #[serde(default = "at_zero")]
        begin: At,
        #[serde(default = "default_end")]
        end: At,
        #[serde(default = "default_frequency")]
        frequency: u64,
        #[serde(default = "default_alpha")]
        alpha: f64,
    },
}

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

/// A schedule as a plan writes it, `kind` optional (polynomial when left out).
pub(crate) fn deserialize_with_default_kind<'de, D>(deserializer: D) -> Result<Schedule, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let mut table = toml::Table::deserialize(deserializer)?;
    table
        .entry("kind")
        .or_insert_with(|| toml::Value::String(ScheduleKind::Polynomial.name().into()));
    Schedule::deserialize(toml::Value::Table(table)).map_err(serde::de::Error::custom)
}

impl Schedule {
    /// The sparsity the schedule ends at: what the target slider moves.
    pub fn final_target(&self) -> f64 {
        match *self {
            Schedule::Constant { target, .. }
            | Schedule::OneShot { target, .. }
            | Schedule::Iterative { target, .. }
            | Schedule::Rigl { target, .. }
            | Schedule::Set { target, .. } => target,
            Schedule::Polynomial { final_sparsity, .. } => final_sparsity,
        }
    }

    /// Moves the final target, keeping the shape of the schedule. A polynomial whose initial
    /// sparsity would end above the new final is lowered with it.
    pub fn set_final_target(&mut self, value: f64) {
        match self {
            Schedule::Constant { target, .. }
            | Schedule::OneShot { target, .. }
            | Schedule::Iterative { target, .. }
            | Schedule::Rigl { target, .. }
            | Schedule::Set { target, .. } => *target = value,
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
    pub fn begin(&self) -> At {
        match self {
            Schedule::Constant { begin, .. }
            | Schedule::Iterative { begin, .. }
            | Schedule::Polynomial { begin, .. }
            | Schedule::Rigl { begin, .. }
            | Schedule::Set { begin, .. } => *begin,
            Schedule::OneShot { at, .. } => *at,
        }
    }

    /// When pruning ends, for schedules that have an end.
    pub fn end(&self) -> Option<At> {
        match self {
            Schedule::Constant { end, .. } => *end,
            Schedule::OneShot { .. } => None,
            Schedule::Iterative { end, .. }
            | Schedule::Polynomial { end, .. }
            | Schedule::Rigl { end, .. }
            | Schedule::Set { end, .. } => Some(*end),
        }
    }

    pub fn kind(&self) -> ScheduleKind {
        match self {
            Schedule::Constant { .. } => ScheduleKind::Constant,
            Schedule::OneShot { .. } => ScheduleKind::OneShot,
            Schedule::Iterative { .. } => ScheduleKind::Iterative,
            Schedule::Polynomial { .. } => ScheduleKind::Polynomial,
            Schedule::Rigl { .. } => ScheduleKind::Rigl,
            Schedule::Set { .. } => ScheduleKind::Set,
        }
    }

    /// This schedule as another kind: the target, begin, end and pruning frequency carry
    /// over where both kinds have them (a polynomial's initial sparsity starts at 0),
    /// everything else comes from [`defaults`]. The one place a schedule changes kind, for the window and the
    /// command line.
    pub fn with_kind(&self, kind: ScheduleKind) -> Schedule {
        if kind == self.kind() {
            return self.clone();
        }
        let target = self.final_target();
        let begin = self.begin();
        // an end taken from the defaults comes after the begin: two epochs later when the
        // begin is in epochs
        let end = self.end().unwrap_or(match begin {
            At::Epoch { epoch } => At::Epoch { epoch: epoch + 2.0 },
            At::Step(_) => defaults::END,
        });
        let frequency = match self {
            Schedule::Constant { frequency, .. }
            | Schedule::Polynomial { frequency, .. }
            | Schedule::Rigl { frequency, .. }
            | Schedule::Set { frequency, .. } => *frequency,
            _ => defaults::FREQUENCY,
        };
        let alpha = match self {
            Schedule::Rigl { alpha, .. } | Schedule::Set { alpha, .. } => *alpha,
            _ => defaults::ALPHA,
        };
        match kind {
            ScheduleKind::Constant => Schedule::Constant {
                target,
                begin,
                end: None,
                frequency,
            },
            ScheduleKind::OneShot => Schedule::OneShot { target, at: begin },
            ScheduleKind::Iterative => Schedule::Iterative {
                target,
                begin,
                end,
                prune_steps: defaults::PRUNE_STEPS,
            },
            ScheduleKind::Polynomial => Schedule::Polynomial {
                initial: 0.0,
                final_sparsity: target,
                begin,
                end,
                power: defaults::POWER,
                frequency,
            },
            ScheduleKind::Rigl => Schedule::Rigl {
                target,
                begin,
                end,
                frequency,
                alpha,
            },
            ScheduleKind::Set => Schedule::Set {
                target,
                begin,
                end,
                frequency,
                alpha,
            },
        }
    }

    /// Fixes every moment to a step and checks the result.
    pub fn resolve(&self, steps_per_epoch: u64) -> Result<StepSchedule, ScheduleError> {
        let r = |a: &At| a.resolve(steps_per_epoch);
        let s = match self {
            Schedule::Constant {
                target,
                begin,
                end,
                frequency,
            } => StepSchedule::Constant {
                target: *target,
                begin: r(begin),
                end: end.as_ref().map(r),
                frequency: *frequency,
            },
            Schedule::OneShot { target, at } => StepSchedule::OneShot {
                target: *target,
                at: r(at),
            },
            Schedule::Iterative {
                target,
                begin,
                end,
                prune_steps,
            } => StepSchedule::Iterative {
                target: *target,
                begin: r(begin),
                end: r(end),
                prune_steps: *prune_steps,
            },
            Schedule::Polynomial {
                initial,
                final_sparsity,
                begin,
                end,
                power,
                frequency,
            } => StepSchedule::Polynomial {
                initial: *initial,
                final_sparsity: *final_sparsity,
                begin: r(begin),
                end: r(end),
                power: *power,
                frequency: *frequency,
            },
            Schedule::Rigl {
                target,
                begin,
                end,
                frequency,
                alpha,
            }
            | Schedule::Set {
                target,
                begin,
                end,
                frequency,
                alpha,
            } => StepSchedule::Dynamic {
                target: *target,
                begin: r(begin),
                end: r(end),
                frequency: *frequency,
                alpha: *alpha,
                growth: if self.kind() == ScheduleKind::Rigl {
                    Growth::Gradient
                } else {
                    Growth::Random
                },
            },
        };
        s.validate()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rigl(begin: u64, end: u64, frequency: u64, alpha: f64) -> StepSchedule {
        Schedule::Rigl {
            target: 0.9,
            begin: At::Step(begin),
            end: At::Step(end),
            frequency,
            alpha,
        }
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
        let set = Schedule::Set {
            target: 0.5,
            begin: At::Step(0),
            end: At::Epoch { epoch: 2.0 },
            frequency: 10,
            alpha: 0.3,
        }
        .resolve(100)
        .unwrap();
        assert_eq!(set.growth(), Some(Growth::Random));
        assert_eq!(set.mask_targets(3), vec![(0, 0.5), (2, 0.5)]);
    }

    #[test]
    fn dynamic_schedules_refuse_what_cannot_run() {
        let bad = |alpha: f64, end: u64| {
            Schedule::Set {
                target: 0.9,
                begin: At::Step(5),
                end: At::Step(end),
                frequency: 10,
                alpha,
            }
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
            Schedule::Rigl {
                target: 0.8,
                begin: At::Step(0),
                end: At::Epoch { epoch: 3.0 },
                frequency: defaults::FREQUENCY,
                alpha: defaults::ALPHA,
            }
        );
        assert_eq!(plan.with_kind(ScheduleKind::Set).kind(), ScheduleKind::Set);
    }

    #[test]
    fn changing_kind_keeps_target_begin_and_end_and_takes_the_defaults() {
        let poly = Schedule::Polynomial {
            initial: 0.2,
            final_sparsity: 0.8,
            begin: At::Step(10),
            end: At::Step(90),
            power: 2.0,
            frequency: 7,
        };
        assert_eq!(
            poly.with_kind(ScheduleKind::Polynomial),
            poly,
            "same kind: unchanged"
        );
        assert_eq!(
            poly.with_kind(ScheduleKind::Iterative),
            Schedule::Iterative {
                target: 0.8,
                begin: At::Step(10),
                end: At::Step(90),
                prune_steps: defaults::PRUNE_STEPS,
            }
        );
        let once = poly.with_kind(ScheduleKind::OneShot);
        assert_eq!(
            once,
            Schedule::OneShot {
                target: 0.8,
                at: At::Step(10)
            }
        );
        assert_eq!(
            once.with_kind(ScheduleKind::Polynomial),
            Schedule::Polynomial {
                initial: 0.0,
                final_sparsity: 0.8,
                begin: At::Step(10),
                end: defaults::END,
                power: defaults::POWER,
                frequency: defaults::FREQUENCY,
            }
        );
        // the pruning frequency carries over between the kinds that have one
        assert_eq!(
            poly.with_kind(ScheduleKind::Constant),
            Schedule::Constant {
                target: 0.8,
                begin: At::Step(10),
                end: None,
                frequency: 7,
            }
        );
        for kind in ScheduleKind::ALL {
            let s = poly.with_kind(kind);
            assert_eq!(s.kind(), kind);
            // the name is the one plans are written with
            let text = toml::to_string(&s).unwrap();
            assert!(
                text.contains(&format!("kind = \"{}\"", kind.name())),
                "{text}"
            );
        }
    }

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

    #[test]
    fn mask_targets_are_piecewise_constant() {
        let s = StepSchedule::OneShot { target: 0.6, at: 5 };
        assert_eq!(s.mask_targets(10), vec![(5, 0.6), (9, 0.6)]);
    }
}
