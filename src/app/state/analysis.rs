//! What the Sensitivity and Sweeps tabs keep between frames: the fields being typed, the
//! results so far and the progress of the analysis that runs. It is part of the window's
//! state, so it lives beside [`AppState`](super::AppState) and not in either tab's drawing.

use crate::train::analysis::{LayerSensitivity, SensitivityResult, SweepResult};
use crate::train::{LayerInfo, SensitivityRequest, SweepPoint, SweepRequest};

/// A finished or running sweep, as the window keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedSweep {
    pub name: String,
    pub visible: bool,
    pub result: SweepResult,
}

/// State of both tabs.
#[derive(Clone, Debug)]
pub struct AnalysisState {
    pub levels_text: String,
    pub tolerance_points: f64,
    pub sensitivity: Option<SensitivityResult>,
    pub sensitivity_progress: Option<(usize, usize)>,
    pub targets_text: String,
    /// Remote servers to spread a sweep over, comma separated (empty: the plan's).
    pub servers_text: String,
    pub granularities_text: String,
    /// Criteria to compare, comma separated (empty: the plan's).
    pub criteria_text: String,
    pub fine_tune_epochs: f64,
    pub sweeps: Vec<NamedSweep>,
    pub sweep_progress: Option<(usize, usize, Option<f64>)>,
    /// Last input error of either tab.
    pub input_error: Option<String>,
}

impl Default for AnalysisState {
    fn default() -> Self {
        let s = SweepRequest::default();
        Self {
            levels_text: join(&crate::train::analysis::DEFAULT_LEVELS),
            tolerance_points: 1.0,
            sensitivity: None,
            sensitivity_progress: None,
            targets_text: join(&s.targets),
            granularities_text: s
                .granularities
                .iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            criteria_text: String::new(),
            servers_text: String::new(),
            fine_tune_epochs: s.fine_tune_epochs,
            sweeps: Vec::new(),
            sweep_progress: None,
            input_error: None,
        }
    }
}

fn join(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl AnalysisState {
    pub fn busy(&self) -> bool {
        self.sensitivity_progress.is_some() || self.sweep_progress.is_some()
    }

    /// Starts an empty matrix for a new analysis; `layers` with their current sparsity.
    pub fn begin_sensitivity(&mut self, layers: &[(LayerInfo, f64)], request: &SensitivityRequest) {
        self.sensitivity = Some(SensitivityResult {
            dense_accuracy: f64::NAN,
            levels: request.levels.clone(),
            granularity: request.granularity.to_string(),
            layers: layers
                .iter()
                .map(|(l, sparsity)| LayerSensitivity {
                    name: l.name.clone(),
                    accuracy: vec![None; request.levels.len()],
                    note: None,
                    sparsity: *sparsity,
                })
                .collect(),
        });
        self.sensitivity_progress = Some((0, layers.len() * request.levels.len()));
    }

    /// Records one measured point.
    pub fn sensitivity_point(
        &mut self,
        dense: f64,
        layer: &str,
        level: f64,
        accuracy: Option<f64>,
        done: usize,
        total: usize,
    ) {
        if let Some(r) = self.sensitivity.as_mut() {
            r.dense_accuracy = dense;
            if let (Some(l), Some(li)) = (
                r.layers.iter_mut().find(|l| l.name == layer),
                r.levels.iter().position(|v| *v == level),
            ) {
                l.accuracy[li] = accuracy;
            }
        }
        self.sensitivity_progress = Some((done, total));
    }

    /// The analysis ended (finished or cancelled) with `result`, the partial matrix kept.
    pub fn finish_sensitivity(&mut self, result: SensitivityResult) {
        self.sensitivity_progress = None;
        self.sensitivity = Some(result);
    }

    pub fn begin_sweep(&mut self, name: String) {
        self.sweeps.push(NamedSweep {
            name,
            visible: true,
            result: SweepResult::default(),
        });
        self.sweep_progress = Some((0, 0, None));
    }

    /// Records one measured point of the last sweep, and how far the sweep is.
    pub fn sweep_point(
        &mut self,
        point: SweepPoint,
        done: usize,
        total: usize,
        remaining_s: Option<f64>,
    ) {
        if let Some(s) = self.sweeps.last_mut() {
            s.result.points.push(point);
        }
        self.sweep_progress = Some((done, total, remaining_s));
    }

    /// The last sweep ended (finished or cancelled) with `result`, its finished points kept.
    pub fn finish_sweep(&mut self, result: SweepResult) {
        self.sweep_progress = None;
        if let Some(s) = self.sweeps.last_mut() {
            s.result = result;
        }
    }
}
