//! Sensitivity analysis and accuracy-vs-sparsity sweeps, as jobs that advance one unit of
//! work at a time (one evaluation, one training step) so the worker can report progress
//! and take a cancel between any two units.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::backend::BackendInfo;
use super::session::{Session, SessionError};
use super::spread::Spread;
use super::sweep_point::{PointRecipe, PointSpec, SweepPoint};
use crate::model::{DeviceMask, Network};
use crate::prune::{
    Criterion, Granularity, GroupKind, LayerShape, UnitGroup, apply_group, group_kept,
    group_scores, layer_mask,
};
use burn::tensor::Device;

/// Default sparsity levels of a sensitivity analysis.
pub const DEFAULT_LEVELS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];
/// Default targets of a sweep.
pub const DEFAULT_TARGETS: [f64; 6] = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95];
/// Default granularities of a sweep.
pub const DEFAULT_GRANULARITIES: [&str; 4] = ["unstructured", "2:4", "block:4x4", "channel"];

/// Prune each layer alone at each level and measure the accuracy; for `channel` also each
/// channel group whole, for `head` each attention layer's heads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensitivityRequest {
    pub levels: Vec<f64>,
    pub granularity: Granularity,
    pub criterion: Criterion,
    /// Remote servers (`ws://HOST:PORT`) to spread the measurements over; empty: the
    /// plan's servers when it trains remotely and names several, otherwise here.
    #[serde(default)]
    pub servers: Vec<String>,
}

impl Default for SensitivityRequest {
    fn default() -> Self {
        Self {
            levels: DEFAULT_LEVELS.to_vec(),
            granularity: Granularity::Unstructured,
            criterion: Criterion::Magnitude,
            servers: Vec::new(),
        }
    }
}

/// The groups a sensitivity analysis measures as rows of their own after the layers: the
/// channel groups for `channel`, the attention layers' heads for `head`, none otherwise;
/// indices into `groups`.
pub(crate) fn analysed_groups(groups: &[UnitGroup], granularity: Granularity) -> Vec<usize> {
    let kind = match granularity {
        Granularity::Channel => GroupKind::Channels,
        Granularity::Head => GroupKind::Heads,
        _ => return Vec::new(),
    };
    (0..groups.len())
        .filter(|&g| groups[g].kind == kind)
        .collect()
}

/// The accuracy of `original` (the network of `session`, host weights `weights`) with row
/// `row` alone pruned to `level`, on the test split: a layer (rows below the layer count)
/// or one of the [`analysed_groups`] (the rows after).
pub(crate) fn measure_cell(
    session: &Session,
    original: &Network,
    weights: &[Vec<f32>],
    request: &SensitivityRequest,
    (row, level): (usize, f64),
) -> Result<f64, SessionError> {
    let rules = session.rules();
    let shapes: Vec<LayerShape> = rules.iter().map(|r| r.shape).collect();
    let mut host: Vec<Option<Vec<u8>>> = vec![None; weights.len()];
    if row < weights.len() {
        host[row] = Some(
            layer_mask(
                &weights[row],
                &shapes[row],
                request.granularity,
                request.criterion,
                level,
                row as u64,
            )
            .map_err(|e| SessionError::Plan(crate::prune::PolicyError::from(e).into()))?,
        );
    } else {
        let groups = session.unit_groups();
        let group = &groups[analysed_groups(groups, request.granularity)[row - weights.len()]];
        let refs: Vec<&[f32]> = weights.iter().map(Vec::as_slice).collect();
        let round_to = match group.kind {
            GroupKind::Channels => session.plan().pruning.round_to,
            GroupKind::Heads => 1,
        };
        let kept = group_kept(&group_scores(group, &refs, &shapes), level, round_to);
        apply_group(group, &kept, &shapes, &mut host);
    }
    let device = session.mask_device();
    let masks: Vec<Option<DeviceMask>> = host
        .iter()
        .zip(&shapes)
        .map(|(m, shape)| m.as_ref().map(|m| DeviceMask::upload(m, shape, &device)))
        .collect();
    let mut pruned = original.clone();
    pruned.apply_masks(masks.iter().map(Option::as_ref));
    Ok(session.evaluate_network(&pruned).accuracy)
}

/// A group's row name: the heads of an attention layer, or a channel group by its
/// producers.
fn group_row_name(group: &UnitGroup, number: usize, names: &[String]) -> String {
    let producer = |m: &crate::prune::Member| names[m.weight].clone();
    match group.kind {
        GroupKind::Heads => {
            let attention = producer(&group.producers[0]);
            let attention = attention.strip_suffix(".in_proj").unwrap_or(&attention);
            format!("g{number} heads of {attention}")
        }
        GroupKind::Channels => {
            let mut producers: Vec<String> = group.producers.iter().map(producer).collect();
            producers.dedup();
            format!("g{number} channels of {}", producers.join(" + "))
        }
    }
}

/// One layer's row of the accuracy matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSensitivity {
    pub name: String,
    /// One per level; `None` where not measured (cancelled, or the pattern does not fit).
    pub accuracy: Vec<Option<f64>>,
    /// Why the layer was not measured, when it was not.
    pub note: Option<String>,
    /// The layer's sparsity before the analysis: pruning it to a level at or below this
    /// changes nothing (its zeros rank first), so those levels are marked already pruned.
    #[serde(default)]
    pub sparsity: f64,
}

impl LayerSensitivity {
    /// Whether `level` is at or below what the layer was already pruned to.
    pub fn already_pruned(&self, level: f64) -> bool {
        self.sparsity > 0.0 && level <= self.sparsity + 1e-9
    }
}

/// The accuracy matrix, layers x levels, with the accuracy of the weights as they are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensitivityResult {
    pub dense_accuracy: f64,
    pub levels: Vec<f64>,
    pub granularity: String,
    pub layers: Vec<LayerSensitivity>,
}

impl SensitivityResult {
    /// Per layer, the largest level reached before the accuracy first drops more than
    /// `tolerance` (a fraction, 0.01 = one point) below the dense accuracy. Scanning stops
    /// at the first level past the tolerance, so a lucky point further on does not count.
    pub fn tolerated(&self, tolerance: f64) -> Vec<(String, Option<f64>)> {
        self.layers
            .iter()
            .map(|l| {
                let mut best = None;
                for (level, acc) in self.levels.iter().zip(&l.accuracy) {
                    match acc {
                        Some(a) if *a >= self.dense_accuracy - tolerance => best = Some(*level),
                        _ => break,
                    }
                }
                (l.name.clone(), best)
            })
            .collect()
    }
}

/// A measured cell of a sensitivity analysis: `(layer, level index)` and the accuracy.
type Cell = ((usize, usize), f64);

/// A sensitivity analysis under way.
pub struct SensitivityJob {
    request: SensitivityRequest,
    original: Network,
    weights: Vec<Vec<f32>>,
    /// Next `(layer, level)` to measure, as a flat index (spread over servers: how many
    /// cells are done).
    next: usize,
    /// Set when the cells are measured on several servers at once.
    spread: Option<Spread<Cell>>,
    pub result: SensitivityResult,
}

impl SensitivityJob {
    /// Starts from the session's current weights; nothing of the session is changed.
    pub fn new(session: &Session, request: SensitivityRequest) -> Self {
        let original = session.network().clone();
        let weights = original.read_weights();
        let dense_accuracy = session.evaluate_network(&original).accuracy;
        let specs = session.network().layer_specs();
        let zeros =
            |w: &[f32]| w.iter().filter(|v| **v == 0.0).count() as f64 / w.len().max(1) as f64;
        let mut layers: Vec<LayerSensitivity> = specs
            .iter()
            .zip(&weights)
            .map(|(spec, w)| LayerSensitivity {
                name: spec.name.clone(),
                accuracy: vec![None; request.levels.len()],
                note: match spec.check(&request.granularity) {
                    Err(e) => Some(format!("{} does not fit: {e}", request.granularity)),
                    Ok(()) if request.granularity == Granularity::Head => {
                        Some("heads are measured per attention layer, in the rows below".into())
                    }
                    Ok(()) => None,
                },
                sparsity: zeros(w),
            })
            .collect();
        let names: Vec<String> = specs.into_iter().map(|s| s.name).collect();
        let groups = session.unit_groups();
        for g in analysed_groups(groups, request.granularity) {
            let group = &groups[g];
            let first = group.producers[0].weight;
            layers.push(LayerSensitivity {
                name: group_row_name(group, g, &names),
                accuracy: vec![None; request.levels.len()],
                note: None,
                sparsity: zeros(&weights[first]),
            });
        }
        Self {
            result: SensitivityResult {
                dense_accuracy,
                levels: request.levels.clone(),
                granularity: request.granularity.to_string(),
                layers,
            },
            request,
            original,
            weights,
            next: 0,
            spread: None,
        }
    }

    /// Measures the cells on `servers`, one thread each, each server evaluating copies of
    /// the session's network (sent there from a checkpoint of it).
    pub fn spread_over(
        mut self,
        session: &Session,
        servers: &[String],
        token: Option<String>,
    ) -> Result<Self, SessionError> {
        let base = session.to_checkpoint("{}".into())?;
        let dataset = session.dataset_handle();
        let n_levels = self.request.levels.len();
        let mut cells = Vec::new();
        for (layer, l) in self.result.layers.iter().enumerate() {
            if l.note.is_some() {
                self.next += n_levels; // nothing to measure: counted as done
            } else {
                cells.extend((0..n_levels).map(|li| (layer, li)));
            }
        }
        cells.reverse();
        let request = self.request.clone();
        let prepare: super::spread::Prepare<(usize, usize), Cell> =
            Arc::new(move |device, backend, _server| {
                let session = Session::from_checkpoint(&base, dataset.clone(), device, backend)?;
                let original = session.network().clone();
                let weights = original.read_weights();
                let request = request.clone();
                Ok(Box::new(
                    move |(layer, li), _cancel: &std::sync::atomic::AtomicBool| {
                        let level = request.levels[li];
                        let accuracy =
                            measure_cell(&session, &original, &weights, &request, (layer, level))?;
                        Ok(Some(((layer, li), accuracy)))
                    },
                ))
            });
        self.spread = Some(Spread::start(servers, token, cells, prepare));
        Ok(self)
    }

    /// What happened to the servers of a spread analysis since the last call.
    pub fn take_notices(&mut self) -> Vec<String> {
        self.spread
            .as_mut()
            .map(|s| std::mem::take(&mut s.notices))
            .unwrap_or_default()
    }

    pub fn total(&self) -> usize {
        self.result.layers.len() * self.request.levels.len()
    }

    pub fn done(&self) -> usize {
        self.next
    }

    pub fn is_finished(&self) -> bool {
        self.next >= self.total()
    }

    /// Measures the next `(layer, level)`: prunes that layer alone on a copy of the
    /// network and evaluates it. Returns `(layer, level index, accuracy)`.
    pub fn advance(
        &mut self,
        session: &Session,
    ) -> Result<Option<(usize, usize, Option<f64>)>, SessionError> {
        if self.is_finished() {
            return Ok(None);
        }
        if let Some(spread) = self.spread.as_mut() {
            let Some(((layer, li), accuracy)) = spread.next(SPREAD_POLL)? else {
                return Ok(None);
            };
            self.next += 1;
            self.result.layers[layer].accuracy[li] = Some(accuracy);
            return Ok(Some((layer, li, Some(accuracy))));
        }
        let n_levels = self.request.levels.len();
        let (layer, li) = (self.next / n_levels, self.next % n_levels);
        self.next += 1;
        if self.result.layers[layer].note.is_some() {
            return Ok(Some((layer, li, None)));
        }
        let level = self.request.levels[li];
        let accuracy = measure_cell(
            session,
            &self.original,
            &self.weights,
            &self.request,
            (layer, level),
        )?;
        self.result.layers[layer].accuracy[li] = Some(accuracy);
        Ok(Some((layer, li, Some(accuracy))))
    }
}

/// Fine-tune copies of one model to several targets and granularities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRequest {
    pub targets: Vec<f64>,
    pub granularities: Vec<Granularity>,
    /// Criteria to compare (empty: the plan's own).
    pub criteria: Vec<Criterion>,
    /// Training budget of every point, in epochs: pruning over the first half, then
    /// fine-tuning with the mask held.
    pub fine_tune_epochs: f64,
    /// Remote servers (`ws://HOST:PORT`) to spread the points over; empty: the plan's
    /// servers when it trains remotely and names several, otherwise here.
    pub servers: Vec<String>,
}

/// [`DEFAULT_GRANULARITIES`], parsed: what a sweep compares when not told.
pub fn default_granularities() -> Vec<Granularity> {
    DEFAULT_GRANULARITIES
        .iter()
        .map(|g| g.parse().expect("valid default granularity"))
        .collect()
}

impl Default for SweepRequest {
    fn default() -> Self {
        Self {
            targets: DEFAULT_TARGETS.to_vec(),
            granularities: default_granularities(),
            criteria: Vec::new(),
            fine_tune_epochs: 3.0,
            servers: Vec::new(),
        }
    }
}

/// Every point so far, with the accuracy of the starting model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    pub dense_accuracy: f64,
    pub points: Vec<SweepPoint>,
}

impl SweepResult {
    /// The points as CSV (`granularity,criterion,target,sparsity,accuracy`).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("granularity,criterion,target,sparsity,accuracy\n");
        for p in &self.points {
            out.push_str(&format!(
                "{},{},{},{:.6},{:.6}\n",
                p.granularity, p.criterion, p.target, p.sparsity, p.accuracy
            ));
        }
        out
    }
}

impl SensitivityResult {
    /// The matrix as CSV: one row per layer, one column per level.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("layer");
        for l in &self.levels {
            out.push_str(&format!(",{l}"));
        }
        out.push('\n');
        for layer in &self.layers {
            out.push_str(&layer.name);
            for a in &layer.accuracy {
                out.push(',');
                if let Some(a) = a {
                    out.push_str(&format!("{a:.6}"));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// How long a spread sweep's advance waits for a server's point before the worker turns
/// to its commands again.
const SPREAD_POLL: Duration = Duration::from_millis(50);

/// A sweep under way: one fine-tuning session at a time, one training step per advance (or,
/// spread over several servers, one point per server at a time on their own threads).
pub struct SweepJob {
    recipe: PointRecipe,
    device: Device,
    backend: BackendInfo,
    queue: Vec<PointSpec>,
    total: usize,
    /// The point being fine-tuned: what it is, its session and the step it ends at.
    current: Option<(PointSpec, Session, u64)>,
    /// Set when the points run on several servers at once.
    spread: Option<Spread<SweepPoint>>,
    started: Instant,
    pub result: SweepResult,
}

impl SweepJob {
    /// Starts from the session's current weights and Adam state.
    pub fn new(
        session: &Session,
        request: &SweepRequest,
        device: Device,
    ) -> Result<Self, SessionError> {
        let base = session.to_checkpoint(String::new())?;
        let criteria = if request.criteria.is_empty() {
            vec![session.plan().pruning.criterion]
        } else {
            request.criteria.clone()
        };
        let mut queue = Vec::new();
        for g in &request.granularities {
            let targets = match g.fixed_sparsity() {
                Some(s) => vec![s], // N:M: the pattern fixes the sparsity
                None => request.targets.clone(),
            };
            for c in &criteria {
                queue.extend(targets.iter().map(|t| (*g, *t, *c)));
            }
        }
        queue.reverse();
        let spe = session.steps_per_epoch();
        let mut me = Self {
            recipe: PointRecipe {
                base,
                base_plan: session.plan().clone(),
                dataset: session.dataset_handle(),
                budget_steps: ((request.fine_tune_epochs * spe as f64).round() as u64).max(2),
            },
            device,
            backend: session.backend().clone(),
            total: queue.len(),
            queue,
            current: None,
            spread: None,
            started: Instant::now(),
            result: SweepResult::default(),
        };
        me.result.dense_accuracy = session.evaluate_network(session.network()).accuracy;
        Ok(me)
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn done(&self) -> usize {
        self.result.points.len()
    }

    pub fn is_finished(&self) -> bool {
        match self.spread {
            Some(_) => self.result.points.len() >= self.total,
            None => self.queue.is_empty() && self.current.is_none(),
        }
    }

    /// Seconds left, extrapolated from the points finished so far.
    pub fn remaining_s(&self) -> Option<f64> {
        let done = self.done();
        (done > 0).then(|| {
            self.started.elapsed().as_secs_f64() / done as f64 * (self.total - done) as f64
        })
    }

    /// Spreads the points over `servers` (two or more), one thread each, from here on;
    /// the points are run there rather than one training step at a time here.
    pub fn spread_over(mut self, servers: &[String], token: Option<String>) -> Self {
        let points = std::mem::take(&mut self.queue);
        self.spread = Some(Spread::start(
            servers,
            token,
            points,
            self.recipe.clone().prepare(),
        ));
        self
    }

    /// What happened to the servers of a spread sweep since the last call.
    pub fn take_notices(&mut self) -> Vec<String> {
        self.spread
            .as_mut()
            .map(|s| std::mem::take(&mut s.notices))
            .unwrap_or_default()
    }

    /// One training step of the current point (starting the next point when needed).
    /// Returns the point when one finishes.
    pub fn advance(&mut self) -> Result<Option<SweepPoint>, SessionError> {
        if let Some(spread) = self.spread.as_mut() {
            let point = spread.next(SPREAD_POLL)?;
            if let Some(p) = &point {
                self.result.points.push(p.clone());
            }
            return Ok(point);
        }
        if self.current.is_none() {
            let Some(spec) = self.queue.pop() else {
                return Ok(None);
            };
            let (session, stop) =
                self.recipe
                    .session(spec, self.device.clone(), self.backend.clone())?;
            self.current = Some((spec, session, stop));
        }
        let (spec, session, stop) = self.current.as_mut().expect("set above");
        session.train_step()?;
        if session.step() < *stop {
            return Ok(None);
        }
        let point = SweepPoint::finished(*spec, session);
        self.current = None;
        self.result.points.push(point.clone());
        Ok(Some(point))
    }
}

/// Parses `0.5, 0.6 ...` into sparsities in `[0, 1)` (levels of a sensitivity analysis,
/// targets of a sweep).
pub fn parse_levels(text: &str) -> Result<Vec<f64>, String> {
    let levels: Vec<f64> = text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<f64>()
                .map_err(|_| format!("{t:?} is not a number"))
        })
        .collect::<Result<_, _>>()?;
    if levels.is_empty() {
        return Err("give at least one sparsity level".into());
    }
    if let Some(bad) = levels.iter().find(|l| !(0.0..1.0).contains(*l)) {
        return Err(format!("sparsity {bad} is outside [0, 1)"));
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_bad_ones_are_named() {
        assert_eq!(parse_levels("0.1, 0.5,0.9").unwrap(), vec![0.1, 0.5, 0.9]);
        assert!(parse_levels("0.1, x").unwrap_err().contains("\"x\""));
        assert!(parse_levels("1.0").unwrap_err().contains("outside"));
        assert!(parse_levels(" ").is_err());
    }
}
