//! The edited plan's one way in: [`AppState::edit_plan`] applies a [`PlanEdit`], checks the
//! plan once, keeps what the check found for the panels to show ([`PlanCheck`]), and says
//! whether the running session should take the plan live. Drawing a frame checks nothing.

use super::AppState;
use crate::app::plan_edit::PlanEdit;
use crate::plan::{CheckedPlan, ExperimentPlan};
use crate::prune::StepSchedule;

/// The plan being edited, the plan the worker runs, and what checking the edited one found.
/// Panels read it; only [`AppState::edit_plan`] and the run's course change it.
#[derive(Clone, Debug)]
pub struct PlanState {
    /// The plan being edited (persisted between launches).
    pub(super) edited: ExperimentPlan,
    /// The plan the worker runs, if a run exists.
    pub(super) sent: Option<ExperimentPlan>,
    /// What the last check of `edited` found.
    pub(super) check: PlanCheck,
}

impl PlanState {
    /// `edited`, checked against the built-in training set, with no run.
    pub(super) fn new(edited: ExperimentPlan) -> Self {
        let check = PlanCheck::of(&edited, None, crate::data::BUILTIN_TRAIN, 1);
        Self {
            edited,
            sent: None,
            check,
        }
    }

    /// The plan being edited.
    pub fn edited(&self) -> &ExperimentPlan {
        &self.edited
    }

    /// The plan the worker runs, if a run exists.
    pub fn sent(&self) -> Option<&ExperimentPlan> {
        self.sent.as_ref()
    }

    /// What the last check of the edited plan found.
    pub fn check(&self) -> &PlanCheck {
        &self.check
    }

    /// Sets the plan the worker runs; whether the edited one needs a reset follows it.
    pub(super) fn set_sent(&mut self, sent: Option<ExperimentPlan>) {
        self.check.needs_reset = sent.as_ref().and_then(|s| s.reset_reason(&self.edited));
        self.sent = sent;
    }

    /// Checks the edited plan against `train_len` examples: the one place the window
    /// validates it.
    fn check_against(&mut self, train_len: usize) {
        let number = self.check.number + 1;
        self.check = PlanCheck::of(&self.edited, self.sent.as_ref(), train_len, number);
    }
}

/// What checking the edited plan found. Made once per edit, and again only when the data
/// the plan is checked against changes (a run starts, reports its data or ends).
#[derive(Clone, Debug, PartialEq)]
pub struct PlanCheck {
    /// How many checks were made up to this one: a new number, a new plan (the planned
    /// curve is kept until it changes).
    pub number: u64,
    /// The training examples the plan was checked against: the running session's, once it
    /// reported them, else the built-in set's.
    pub train_len: usize,
    /// The plan checked, with the schedule it resolves to, or why it cannot run.
    pub checked: Result<CheckedPlan, String>,
    /// Why the edited plan cannot go to the run live (a new network, data, batch size,
    /// seed, backend...), or `None` when it can or there is no run.
    pub needs_reset: Option<&'static str>,
}

impl PlanCheck {
    /// The schedule the plan resolves to, or why it cannot run.
    pub fn schedule(&self) -> Result<&StepSchedule, &str> {
        match &self.checked {
            Ok(c) => Ok(c.schedule()),
            Err(e) => Err(e),
        }
    }

    /// Check number `number` of `plan` against `train_len` examples, beside the run's
    /// `sent` plan.
    fn of(
        plan: &ExperimentPlan,
        sent: Option<&ExperimentPlan>,
        train_len: usize,
        number: u64,
    ) -> Self {
        Self {
            number,
            train_len,
            checked: plan.clone().check(train_len).map_err(|e| e.to_string()),
            needs_reset: sent.and_then(|s| s.reset_reason(plan)),
        }
    }
}

impl AppState {
    /// Applies one edit and checks the plan once. Returns the plan to hand the running
    /// session: when it changed, can apply live and is valid (otherwise the run controls
    /// say why, and the run keeps its last valid plan).
    pub fn edit_plan(&mut self, edit: PlanEdit) -> Option<CheckedPlan> {
        self.apply_edit(edit);
        let p = &self.plan;
        let sent = p.sent.as_ref()?;
        let checked = p.check.checked.as_ref().ok()?;
        if !self.status.active || *sent == p.edited || p.check.needs_reset.is_some() {
            return None;
        }
        let checked = checked.clone();
        self.plan.set_sent(Some(checked.plan().clone()));
        Some(checked)
    }

    /// The run goes on on this machine: the plan says so too, and is the run's plan.
    pub fn continue_locally(&mut self) {
        self.banner.remote_lost = None;
        self.apply_edit(PlanEdit::RunLocally);
        self.plan.set_sent(Some(self.plan.edited.clone()));
        self.banner.error = None;
    }

    /// Applies one edit and checks the plan.
    fn apply_edit(&mut self, edit: PlanEdit) {
        edit.apply(&mut self.plan.edited);
        let train_len = self.train_len();
        self.plan.check_against(train_len);
    }

    /// The training examples the plan is checked against: the running session's, once it
    /// reported them, else the built-in set's (what a new run trains on).
    fn train_len(&self) -> usize {
        match self.status.train_examples {
            n if self.status.active && n > 0 => n,
            _ => crate::data::BUILTIN_TRAIN,
        }
    }

    /// Checks the plan again if the data it is checked against changed.
    pub(super) fn recheck_for_data(&mut self) {
        let train_len = self.train_len();
        if train_len != self.plan.check.train_len {
            self.plan.check_against(train_len);
        }
    }
}
