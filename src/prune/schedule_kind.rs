//! A schedule's kind: the names plans and the command line give the kinds, and how a
//! schedule changes kind, keeping what the two kinds share.

use serde::Deserialize;

use super::schedule::{At, Dynamic, Schedule, defaults};

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

impl<M: Copy> Schedule<M> {
    pub fn kind(&self) -> ScheduleKind {
        match self {
            Schedule::Constant { .. } => ScheduleKind::Constant,
            Schedule::OneShot { .. } => ScheduleKind::OneShot,
            Schedule::Iterative { .. } => ScheduleKind::Iterative,
            Schedule::Polynomial { .. } => ScheduleKind::Polynomial,
            Schedule::Rigl(_) => ScheduleKind::Rigl,
            Schedule::Set(_) => ScheduleKind::Set,
        }
    }
}

impl Schedule<At> {
    /// This schedule as another kind: the target, begin, end and pruning frequency carry
    /// over where both kinds have them (a polynomial's initial sparsity starts at 0),
    /// everything else comes from [`defaults`]. The one place a schedule changes kind, for
    /// the window and the command line.
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
        let frequency = self.frequency().unwrap_or(defaults::FREQUENCY);
        let alpha = self.dynamic().map_or(defaults::ALPHA, |(d, _)| d.alpha);
        let dynamic = Dynamic {
            target,
            begin,
            end,
            frequency,
            alpha,
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
            ScheduleKind::Rigl => Schedule::Rigl(dynamic),
            ScheduleKind::Set => Schedule::Set(dynamic),
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
    <Schedule as Deserialize>::deserialize(toml::Value::Table(table))
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_dynamic_schedule_changes_kind_between_rigl_and_set() {
        let plan: Schedule =
            toml::from_str("kind = \"rigl\"\ntarget = 0.8\nend = { epoch = 3 }\n").unwrap();
        let set = plan.with_kind(ScheduleKind::Set);
        assert_eq!(set.kind(), ScheduleKind::Set);
        assert_eq!(
            set.dynamic().map(|(d, _)| d),
            plan.dynamic().map(|(d, _)| d)
        );
    }
}
