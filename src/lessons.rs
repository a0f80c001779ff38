//! The lessons: a short pruning course in English and Chinese. Each loads a preset,
//! explains an idea, and lists steps to try; a step ticks when the run shows it happened
//! (its [`Check`] is met by a worker event).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::i18n::Language;
use crate::plan::ExperimentPlan;
use crate::train::Event;

/// The lessons' files, in course order.
const FILES: &[(&str, &str)] = &[
    (
        "01-why-prune",
        include_str!("../assets/lessons/01-why-prune.toml"),
    ),
    (
        "02-granularity",
        include_str!("../assets/lessons/02-granularity.toml"),
    ),
    (
        "03-schedules",
        include_str!("../assets/lessons/03-schedules.toml"),
    ),
    (
        "04-sensitivity",
        include_str!("../assets/lessons/04-sensitivity.toml"),
    ),
    (
        "05-global-vs-layer",
        include_str!("../assets/lessons/05-global-vs-layer.toml"),
    ),
    (
        "06-file-size",
        include_str!("../assets/lessons/06-file-size.toml"),
    ),
    (
        "07-sparse-speed",
        include_str!("../assets/lessons/07-sparse-speed.toml"),
    ),
    ("08-int8", include_str!("../assets/lessons/08-int8.toml")),
    (
        "09-criteria",
        include_str!("../assets/lessons/09-criteria.toml"),
    ),
    (
        "10-lottery-rigl",
        include_str!("../assets/lessons/10-lottery-rigl.toml"),
    ),
    (
        "11-residual-groups",
        include_str!("../assets/lessons/11-residual-groups.toml"),
    ),
    (
        "12-magnitude-wanda",
        include_str!("../assets/lessons/12-magnitude-wanda.toml"),
    ),
];

/// Text in both languages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub en: String,
    pub zh: String,
}

impl Text {
    pub fn get(&self, language: Language) -> &str {
        match language {
            Language::En => &self.en,
            Language::Zh => &self.zh,
        }
    }
}

/// One "try this" step and what shows it happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub en: String,
    pub zh: String,
    pub check: Check,
}

impl Step {
    pub fn text(&self, language: Language) -> &str {
        match language {
            Language::En => &self.en,
            Language::Zh => &self.zh,
        }
    }
}

/// What a step waits for, read from the worker's events and the plan the run follows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Check {
    /// A run started.
    Started,
    /// A pruning step, optionally with a layer of this granularity or criterion, or while
    /// the plan's schedule kind or scope is this.
    Pruned {
        #[serde(default)]
        granularity: Option<String>,
        #[serde(default)]
        schedule: Option<String>,
        #[serde(default)]
        scope: Option<String>,
        #[serde(default)]
        criterion: Option<String>,
    },
    /// The overall sparsity reached this.
    Sparsity { at_least: f64 },
    /// A test evaluation (not the dense baseline).
    Evaluated,
    /// A run finished.
    Finished,
    /// A sensitivity analysis finished.
    Sensitivity,
    /// A sweep finished, with at least this many criteria.
    Sweep {
        #[serde(default)]
        criteria: Option<usize>,
    },
    /// An export finished.
    Export,
    /// The dense-against-sparse inference timing finished.
    Timed,
    /// A pruning step while lottery-ticket rewinding is on.
    Rewind,
    /// A RigL or SET exchange grew weights.
    Grown,
}

impl Check {
    /// Whether `event`, in a run of `plan`, shows the step happened.
    pub fn met_by(&self, event: &Event, plan: &ExperimentPlan) -> bool {
        match (self, event) {
            (Check::Started, Event::Started { .. }) => true,
            (
                Check::Pruned {
                    granularity,
                    schedule,
                    scope,
                    criterion,
                },
                Event::Pruned { layers, .. },
            ) => {
                granularity
                    .as_ref()
                    .is_none_or(|g| layers.iter().any(|l| &l.granularity == g))
                    && criterion
                        .as_ref()
                        .is_none_or(|c| layers.iter().any(|l| &l.criterion == c))
                    && schedule
                        .as_ref()
                        .is_none_or(|s| plan.pruning.schedule.kind().name() == s)
                    && scope
                        .as_ref()
                        .is_none_or(|s| &plan.pruning.scope.to_string() == s)
            }
            (Check::Sparsity { at_least }, Event::Pruned { sparsity, .. })
            | (Check::Sparsity { at_least }, Event::Progress { sparsity, .. }) => {
                *sparsity >= *at_least
            }
            (Check::Evaluated, Event::Evaluation { baseline, .. }) => !baseline,
            (Check::Finished, Event::Finished { .. }) => true,
            (Check::Sensitivity, Event::SensitivityFinished { cancelled, .. }) => !cancelled,
            (Check::Sweep { criteria }, Event::SweepFinished { result, cancelled }) => {
                let mut seen: Vec<&str> =
                    result.points.iter().map(|p| p.criterion.as_str()).collect();
                seen.sort_unstable();
                seen.dedup();
                !cancelled && seen.len() >= criteria.unwrap_or(1)
            }
            (Check::Export, Event::Exported(_)) => true,
            (Check::Timed, Event::InferBenched(_)) => true,
            (Check::Rewind, Event::Pruned { .. }) => plan.pruning.rewind.is_some(),
            (Check::Grown, Event::Pruned { layers, .. }) => layers.iter().any(|l| l.grown > 0),
            _ => false,
        }
    }
}

/// A lesson of the course.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesson {
    pub id: String,
    /// The preset the lesson starts from (one of [`crate::plan::PRESETS`]).
    pub preset: String,
    /// Steps per second the lesson's runs are paced at (over the preset's own pace), so
    /// that there is time to act while a run goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace: Option<f64>,
    pub title: Text,
    pub text: Text,
    pub steps: Vec<Step>,
}

impl Lesson {
    /// The plan the lesson starts from: its preset, paced at the lesson's pace.
    pub fn plan(&self) -> Result<ExperimentPlan, crate::plan::PlanFileError> {
        let mut plan = ExperimentPlan::preset(&self.preset)?;
        if self.pace.is_some() {
            plan.training.pace = self.pace;
        }
        Ok(plan)
    }
}

/// A lesson that cannot be used.
#[derive(Debug, Error)]
pub enum LessonError {
    #[error("lesson {file}: {message}")]
    Invalid { file: String, message: String },
    #[error("unknown lesson {id:?}: the lessons are {known}")]
    Unknown { id: String, known: String },
}

/// Every lesson, in course order.
pub fn all() -> Result<Vec<Lesson>, LessonError> {
    FILES
        .iter()
        .map(|(file, text)| {
            toml::from_str::<Lesson>(text).map_err(|e| LessonError::Invalid {
                file: (*file).into(),
                message: e.message().to_string(),
            })
        })
        .collect()
}

/// The lesson with this id.
pub fn find(id: &str) -> Result<Lesson, LessonError> {
    let lessons = all()?;
    let known = lessons
        .iter()
        .map(|l| l.id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    lessons
        .into_iter()
        .find(|l| l.id == id)
        .ok_or(LessonError::Unknown {
            id: id.into(),
            known,
        })
}

/// A lesson being followed: which steps have shown up. Steps tick in order: the first step
/// not yet done is the one an event can tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub lesson: Lesson,
    pub done: Vec<bool>,
}

impl Progress {
    pub fn new(lesson: Lesson) -> Self {
        let done = vec![false; lesson.steps.len()];
        Self { lesson, done }
    }

    /// The step waiting to be shown, if any.
    pub fn current(&self) -> Option<usize> {
        self.done.iter().position(|d| !d)
    }

    /// Ticks the current step if `event` meets its check, in a run of `plan`. Returns
    /// whether it did.
    pub fn observe(&mut self, event: &Event, plan: &ExperimentPlan) -> bool {
        match self.current() {
            Some(i) if self.lesson.steps[i].check.met_by(event, plan) => {
                self.done[i] = true;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PRESETS;

    #[test]
    fn every_lesson_is_complete_in_both_languages_and_starts_from_a_real_preset() {
        let lessons = all().unwrap();
        assert!(lessons.len() >= 8);
        let mut ids: Vec<&str> = lessons.iter().map(|l| l.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), lessons.len(), "ids are unique");
        for l in &lessons {
            assert!(
                PRESETS.iter().any(|(p, _)| *p == l.preset),
                "{}: {}",
                l.id,
                l.preset
            );
            assert!((2..=5).contains(&l.steps.len()), "{}: steps", l.id);
            for text in [&l.title, &l.text] {
                assert!(
                    !text.en.trim().is_empty() && !text.zh.trim().is_empty(),
                    "{}",
                    l.id
                );
                assert!(
                    text.zh
                        .chars()
                        .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                    "{}: the Chinese is Chinese",
                    l.id
                );
            }
            let sentences = l.text.en.matches(". ").count() + 1;
            assert!(
                (3..=6).contains(&sentences),
                "{}: {sentences} sentences",
                l.id
            );
            for s in &l.steps {
                assert!(!s.en.is_empty() && !s.zh.is_empty(), "{}", l.id);
            }
        }
        assert!(matches!(find("nope"), Err(LessonError::Unknown { .. })));
        assert_eq!(find("granularity").unwrap().id, "granularity");
    }

    #[test]
    fn every_lesson_leaves_time_to_act_while_its_run_goes_on() {
        for l in all().unwrap() {
            let plan = l.plan().unwrap();
            let pace = plan
                .training
                .pace
                .unwrap_or_else(|| panic!("{}: no pace", l.id));
            let schedule = plan.validate(crate::data::BUILTIN_TRAIN).unwrap();
            let (first, last) = (schedule.first_prune_step(), schedule.last_prune_step());
            let pruning_s = (last.unwrap_or(first) - first) as f64 / pace;
            assert!(
                (15.0..=90.0).contains(&pruning_s),
                "{}: pruning lasts {pruning_s:.0} s at {pace} steps/s",
                l.id
            );
            if !plan.training.until_stopped {
                let steps =
                    plan.training.epochs as u64 * plan.steps_per_epoch(crate::data::BUILTIN_TRAIN);
                let run_s = steps as f64 / pace;
                assert!(
                    (30.0..=150.0).contains(&run_s),
                    "{}: a run lasts {run_s:.0} s",
                    l.id
                );
            }
        }
    }
}
