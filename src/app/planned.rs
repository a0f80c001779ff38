//! The planned sparsity curve the schedule plot draws ahead: what the masks will hold
//! overall at every step of the edited plan.

use super::ExplorerApp;

impl ExplorerApp {
    /// The edited plan's mask sparsity over steps, cached until the plan is edited (a new
    /// check) or the run's steps per epoch change.
    pub(super) fn planned_curve(&mut self) -> Vec<[f64; 2]> {
        let (plan, check) = (self.state.plan.edited(), self.state.plan.check().number);
        let spe = if self.state.status.steps_per_epoch > 0 {
            self.state.status.steps_per_epoch
        } else {
            plan.steps_per_epoch(match plan.dataset {
                crate::data::DatasetSource::BuiltIn => crate::data::BUILTIN_TRAIN,
                _ => 60_000,
            })
        };
        if let Some((c, s, curve)) = &self.planned
            && *c == check
            && *s == spe
        {
            return curve.clone();
        }
        let total = plan.training.epochs as u64 * spe;
        // what the masks will hold overall: N:M layers at their fixed pattern, dense
        // layers at zero (the schedule's own value when the layers cannot be resolved)
        let rules = plan
            .layer_specs()
            .ok()
            .and_then(|specs| plan.pruning.rules(&specs).ok());
        let final_target = plan.pruning.schedule.final_target();
        let overall = |value: f64| match &rules {
            Some(rules) => crate::prune::LayerRule::planned_sparsity(rules, value, final_target),
            None => value,
        };
        let curve: Vec<[f64; 2]> = match plan.pruning.schedule.resolve(spe) {
            Ok(s) => {
                let mut points = vec![[0.0, 0.0]];
                let mut current = 0.0;
                for (step, target) in s.mask_targets(total) {
                    let target = overall(target);
                    points.push([step as f64, current]);
                    points.push([step as f64, target]);
                    current = target;
                }
                points
            }
            Err(_) => Vec::new(),
        };
        self.planned = Some((check, spe, curve.clone()));
        curve
    }
}
