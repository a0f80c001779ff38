//! Criteria and the units they score: single weights, blocks or whole channels.

use serde::{Deserialize, Serialize};

use super::granularity::{BlockScore, Granularity};
use super::layer::LayerShape;

/// What decides which units go first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// The smallest by magnitude go first.
    #[default]
    Magnitude,
    /// A seeded, reproducible random order: the baseline magnitude has to beat.
    Random,
    /// First-order Taylor: `|w * dL/dw|` averaged over the steps since the last pruning
    /// step (Molchanov et al. 2019).
    Taylor,
    /// Movement: `-sum(w * dL/dw)` over the steps since pruning began: weights moving away
    /// from zero stay (Sanh et al. 2020).
    Movement,
    /// SNIP: `|w * dL/dw|` on one batch at the moment of pruning, for pruning at
    /// initialisation (Lee et al. 2019).
    Snip,
    /// Wanda: `|w_ij| * ||x_j||_2`, the weight times the norm of the input it multiplies over
    /// a calibration batch, ranked within each output row (Sun et al. 2023).
    Wanda,
    /// SynFlow: `w * dR/dw` with `R = 1' |W_L| ... |W_1| 1`, the synaptic flow of the network
    /// with every parameter made positive on an all-ones input; data-free, and pruned in
    /// [`SYNFLOW_ITERATIONS`] exponentially spaced rounds (Tanaka et al. 2020).
    Synflow,
}

/// Rounds of scoring and pruning SynFlow takes to reach its target (the paper's 100).
pub const SYNFLOW_ITERATIONS: u32 = 100;

impl Criterion {
    pub const ALL: [Criterion; 7] = [
        Criterion::Magnitude,
        Criterion::Random,
        Criterion::Taylor,
        Criterion::Movement,
        Criterion::Snip,
        Criterion::Wanda,
        Criterion::Synflow,
    ];

    /// Whether units are ranked within each output row rather than across the layer, when
    /// the granularity leaves the choice (unstructured, per layer).
    pub fn ranks_per_row(self) -> bool {
        self == Criterion::Wanda
    }
}

/// A criterion name that is none of [`Criterion::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown criterion {0:?} (one of magnitude, random, taylor, movement, snip, wanda, synflow)"
)]
pub struct UnknownCriterion(pub String);

impl std::str::FromStr for Criterion {
    type Err = UnknownCriterion;

    /// A criterion by its name, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Criterion::ALL
            .into_iter()
            .find(|c| c.to_string().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| UnknownCriterion(text.to_string()))
    }
}

/// Wanda's score of every weight of a layer (PyTorch layout, rows of `norms.len()`
/// weights): `|w_ij| * norms[j]`, with `norms[j]` the L2 norm over a calibration batch of
/// the input that weight `j` of every row multiplies (for a convolution, the `(c, ky, kx)`
/// column of the unfolded input).
pub fn wanda_scores(weights: &[f32], norms: &[f32]) -> Vec<f32> {
    debug_assert!(!norms.is_empty() && weights.len().is_multiple_of(norms.len()));
    weights
        .chunks(norms.len())
        .flat_map(|row| row.iter().zip(norms).map(|(w, n)| w.abs() * n))
        .collect()
}

/// The sparsity after SynFlow's round `round` of `rounds` towards `target`: the kept
/// fraction shrinks geometrically, `(1 - target)^(round / rounds)`, so that no round
/// removes a large share of what is left at once (what keeps a layer from collapsing).
pub fn synflow_round_target(target: f64, round: u32, rounds: u32) -> f64 {
    1.0 - (1.0 - target).powf(round as f64 / rounds.max(1) as f64)
}

impl std::fmt::Display for Criterion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Criterion::Magnitude => "magnitude",
            Criterion::Random => "random",
            Criterion::Taylor => "taylor",
            Criterion::Movement => "movement",
            Criterion::Snip => "snip",
            Criterion::Wanda => "wanda",
            Criterion::Synflow => "synflow",
        })
    }
}

/// A uniform number in `[0, 1)` that depends only on `(seed, index)` (SplitMix64).
///
/// A pure function rather than a generator, so a random mask is the same whatever order
/// the units are visited in, and the same score survives from one pruning step to the next:
/// raising the target only ever adds units to the pruned set.
pub fn random_score(seed: u64, index: u64) -> f64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// How a layer's weights group into units for a (non N:M) granularity.
#[derive(Clone, Copy, Debug)]
pub struct UnitLayout {
    shape: LayerShape,
    granularity: Granularity,
}

impl UnitLayout {
    /// `granularity` must not be N:M (N:M ranks inside groups, not across units) and must
    /// already have passed [`Granularity::check_layer`].
    pub fn new(shape: LayerShape, granularity: Granularity) -> Self {
        debug_assert!(!matches!(granularity, Granularity::NOfM { .. }));
        Self { shape, granularity }
    }

    /// Number of units in the layer.
    pub fn count(&self) -> usize {
        match self.granularity {
            Granularity::Block { rows, cols, .. } => {
                (self.shape.out / rows) * (self.shape.row_len() / cols)
            }
            Granularity::Channel => self.shape.out,
            _ => self.shape.numel(),
        }
    }

    /// Weights per unit.
    pub fn size(&self) -> usize {
        match self.granularity {
            Granularity::Block { rows, cols, .. } => rows * cols,
            Granularity::Channel => self.shape.row_len(),
            _ => 1,
        }
    }

    /// The unit that holds weight `index` (flat, PyTorch layout).
    pub fn unit_of(&self, index: usize) -> usize {
        let row_len = self.shape.row_len();
        match self.granularity {
            Granularity::Block { rows, cols, .. } => {
                let (r, c) = (index / row_len, index % row_len);
                (r / rows) * (row_len / cols) + c / cols
            }
            Granularity::Channel => index / row_len,
            _ => index,
        }
    }

    /// Score of every unit; lower scores are pruned first.
    ///
    /// Magnitude: `|w|` for single weights, mean or max `|w|` for blocks, and for channels
    /// the L2 norm divided by `sqrt(size)` (the RMS: the same order as L2 inside a layer, and
    /// comparable across layers of different fan-in when ranking globally).
    pub fn scores(&self, weights: &[f32], criterion: Criterion, seed: u64) -> Vec<f64> {
        let count = self.count();
        if criterion == Criterion::Random {
            return (0..count as u64).map(|u| random_score(seed, u)).collect();
        }
        match self.granularity {
            Granularity::Block {
                score: BlockScore::Max,
                ..
            } => {
                let mut s = vec![0.0f64; count];
                for (i, w) in weights.iter().enumerate() {
                    let u = self.unit_of(i);
                    s[u] = s[u].max(w.abs() as f64);
                }
                s
            }
            Granularity::Block { .. } => {
                let mut s = vec![0.0f64; count];
                for (i, w) in weights.iter().enumerate() {
                    s[self.unit_of(i)] += w.abs() as f64;
                }
                let size = self.size() as f64;
                s.iter_mut().for_each(|v| *v /= size);
                s
            }
            Granularity::Channel => weights
                .chunks(self.shape.row_len())
                .map(|row| {
                    let sq: f64 = row.iter().map(|&w| (w as f64) * (w as f64)).sum();
                    (sq / row.len() as f64).sqrt()
                })
                .collect(),
            _ => weights.iter().map(|w| w.abs() as f64).collect(),
        }
    }

    /// Expands a per-unit keep decision into a per-weight mask (1 kept, 0 pruned).
    pub fn expand(&self, unit_kept: &[bool]) -> Vec<u8> {
        (0..self.shape.numel())
            .map(|i| unit_kept[self.unit_of(i)] as u8)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_score_is_uniform_enough_and_pure() {
        let xs: Vec<f64> = (0..10_000).map(|i| random_score(7, i)).collect();
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        assert_eq!(random_score(7, 3), xs[3]);
        assert_ne!(random_score(8, 3), xs[3]);
    }

    #[test]
    fn every_criterion_reads_back_from_its_name() {
        for c in Criterion::ALL {
            assert_eq!(c.to_string().to_uppercase().parse::<Criterion>(), Ok(c));
        }
        let e = "magnitued".parse::<Criterion>().unwrap_err().to_string();
        assert!(e.contains("\"magnitued\"") && e.contains("synflow"), "{e}");
    }

    #[test]
    fn wanda_scales_each_weight_by_its_input_norm() {
        // two rows of three inputs
        let w = [1.0, -2.0, 3.0, -0.5, 0.0, 4.0];
        let norms = [2.0, 10.0, 0.5];
        assert_eq!(
            wanda_scores(&w, &norms),
            vec![2.0, 20.0, 1.5, 1.0, 0.0, 2.0]
        );
    }

    #[test]
    fn synflow_rounds_shrink_what_is_kept_geometrically() {
        assert_eq!(synflow_round_target(0.9, 0, 100), 0.0);
        assert!((synflow_round_target(0.9, 100, 100) - 0.9).abs() < 1e-12);
        // halfway through, sqrt(0.1) is kept
        assert!((synflow_round_target(0.9, 50, 100) - (1.0 - 0.1f64.sqrt())).abs() < 1e-12);
        // every round keeps the same share of what the previous one kept
        let kept = |r| 1.0 - synflow_round_target(0.99, r, 10);
        for r in 1..10 {
            assert!((kept(r + 1) / kept(r) - kept(1)).abs() < 1e-12);
        }
    }

    #[test]
    fn block_units_tile_row_major() {
        // 4x6 weight, 2x3 blocks -> 2x2 grid of units
        let l = UnitLayout::new(
            LayerShape::linear(4, 6),
            Granularity::Block {
                rows: 2,
                cols: 3,
                score: BlockScore::Mean,
            },
        );
        assert_eq!(l.count(), 4);
        let units: Vec<usize> = (0..24).map(|i| l.unit_of(i)).collect();
        assert_eq!(
            units,
            vec![
                0, 0, 0, 1, 1, 1, //
                0, 0, 0, 1, 1, 1, //
                2, 2, 2, 3, 3, 3, //
                2, 2, 2, 3, 3, 3,
            ]
        );
        let w: Vec<f32> = (0..24)
            .map(|i| if i % 6 < 3 { -1.0 } else { 3.0 })
            .collect();
        assert_eq!(
            l.scores(&w, Criterion::Magnitude, 0),
            vec![1.0, 3.0, 1.0, 3.0]
        );
    }

    #[test]
    fn channel_score_is_rms_of_the_row() {
        let l = UnitLayout::new(LayerShape::linear(2, 2), Granularity::Channel);
        let s = l.scores(&[3.0, 4.0, 0.0, 1.0], Criterion::Magnitude, 0);
        assert!((s[0] - (25.0f64 / 2.0).sqrt()).abs() < 1e-12);
        assert!((s[1] - (0.5f64).sqrt()).abs() < 1e-12);
    }
}
