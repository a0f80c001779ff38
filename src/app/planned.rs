//! The planned sparsity curve the schedule plot draws ahead: what the masks will hold
//! overall at every step of the edited plan.

use super::ExplorerApp;

impl ExplorerApp {
    /// The edited plan's mask sparsity over steps, cached while the plan is unchanged.
    pub(super) fn planned_curve(&mut self) -> Vec<[f64; 2]> {
        let state = &self.state;
        let spe = if state.status.steps_per_epoch > 0 {
            state.status.steps_per_epoch
        } else {
            state.plan.steps_per_epoch(match state.plan.dataset {
                crate::data::DatasetSource::BuiltIn => crate::data::BUILTIN_TRAIN,
                _ => 60_000,
            })
        };
        if let Some((p, s, curve)) = &self.planned
            && *p == state.plan
            && *s == spe
        {
            return curve.clone();
        }
        let total = state.plan.training.epochs as u64 * spe;
        // what the masks will hold overall: N:M layers at their fixed pattern, dense
        // layers at zero (the schedule's own value when the layers cannot be resolved)
        let rules = state
            .plan
            .layer_specs()
            .ok()
            .and_then(|specs| state.plan.pruning.rules(&specs).ok());
        let final_target = state.plan.pruning.schedule.final_target();
        let overall = |value: f64| match &rules {
            Some(rules) => crate::prune::LayerRule::planned_sparsity(rules, value, final_target),
            None => value,
        };
        let curve: Vec<[f64; 2]> = match state.plan.pruning.schedule.resolve(spe) {
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
        self.planned = Some((state.plan.clone(), spe, curve.clone()));
        curve
    }
}
