//! What the plots draw: bounded series of one run, and earlier runs kept as overlays.

use serde::{Deserialize, Serialize};

use crate::train::{EvalPhase, Event};

/// Points kept per series; beyond it every other point is dropped, so a long run stays
/// whole on the plot at half the resolution instead of losing its beginning.
pub const SERIES_CAPACITY: usize = 2_000;
/// Earlier runs kept as overlays.
pub const MAX_OVERLAYS: usize = 8;

/// A bounded series of `[x, y]` points.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    points: Vec<[f64; 2]>,
    /// Only every `stride`-th pushed point is kept (grows as the series is thinned).
    stride: usize,
    skipped: usize,
}

impl Series {
    pub fn push(&mut self, point: [f64; 2]) {
        self.stride = self.stride.max(1);
        self.skipped += 1;
        if self.skipped < self.stride {
            return;
        }
        self.skipped = 0;
        if self.points.len() >= SERIES_CAPACITY {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride *= 2;
        }
        self.points.push(point);
    }

    pub fn points(&self) -> &[[f64; 2]] {
        &self.points
    }

    pub fn last(&self) -> Option<[f64; 2]> {
        self.points.last().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Everything plotted about one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunHistory {
    /// Shown in legends (`run 2: LeNet-300-100, AGP to 90%`).
    pub name: String,
    /// `[step, training loss]`.
    pub loss: Series,
    /// `[step, test accuracy]`.
    pub accuracy: Series,
    /// `[sparsity, test accuracy]`, one per evaluation, in order: the line through them
    /// is the prune-and-recover sawtooth.
    pub accuracy_vs_sparsity: Series,
    /// The same points by kind: right after a cut, after the recovery from it, and the
    /// others (baseline, scheduled, final).
    pub after_cut: Series,
    pub recovered: Series,
    pub scheduled: Series,
    /// `[step, achieved sparsity]` at each pruning step.
    pub achieved: Series,
    /// Dense baseline accuracy, once measured.
    pub baseline: Option<f64>,
}

impl RunHistory {
    pub fn new(name: String) -> Self {
        Self {
            name,
            ..Default::default()
        }
    }

    /// Records what an event adds to the plots.
    pub fn record(&mut self, event: &Event) {
        match event {
            Event::Progress { step, loss, .. } => self.loss.push([*step as f64, *loss]),
            Event::Evaluation {
                step,
                accuracy,
                sparsity,
                baseline,
                phase,
                ..
            } => {
                if *baseline {
                    self.baseline = Some(*accuracy);
                }
                self.accuracy.push([*step as f64, *accuracy]);
                let point = [*sparsity, *accuracy];
                self.accuracy_vs_sparsity.push(point);
                match phase {
                    EvalPhase::AfterCut => self.after_cut.push(point),
                    EvalPhase::Recovered => self.recovered.push(point),
                    _ => self.scheduled.push(point),
                }
            }
            Event::Pruned { step, sparsity, .. } => self.achieved.push([*step as f64, *sparsity]),
            _ => {}
        }
    }
}

/// Earlier runs of this session, newest last, at most [`MAX_OVERLAYS`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Overlays {
    pub runs: Vec<RunHistory>,
}

impl Overlays {
    /// Keeps a finished or abandoned run, if it has anything to show.
    pub fn keep(&mut self, run: RunHistory) {
        if run.accuracy.is_empty() && run.loss.is_empty() {
            return;
        }
        self.runs.push(run);
        if self.runs.len() > MAX_OVERLAYS {
            self.runs.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_stays_bounded_and_keeps_the_whole_range() {
        let mut s = Series::default();
        for i in 0..100_000 {
            s.push([i as f64, 0.0]);
        }
        assert!(s.points().len() <= SERIES_CAPACITY);
        assert!(s.points().len() >= SERIES_CAPACITY / 2);
        assert_eq!(s.points()[0][0], 0.0);
        assert!(s.last().unwrap()[0] > 99_000.0);
    }

    #[test]
    fn overlays_are_bounded() {
        let mut o = Overlays::default();
        for i in 0..20 {
            let mut r = RunHistory::new(format!("run {i}"));
            r.loss.push([0.0, 1.0]);
            o.keep(r);
        }
        o.keep(RunHistory::new("empty".into()));
        assert_eq!(o.runs.len(), MAX_OVERLAYS);
        assert_eq!(o.runs.last().unwrap().name, "run 19");
    }
}
