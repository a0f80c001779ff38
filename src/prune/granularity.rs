//! Granularities: which weights are pruned together, and which layers can take each one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::layer::LayerShape;

/// How a block of weights is scored before blocks are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockScore {
    /// Mean of `|w|` over the block.
    Mean,
    /// Largest `|w|` in the block.
    Max,
}

/// The unit of pruning.
///
/// Written as text in plans and on the command line: `unstructured`, `2:4` (N:M),
/// `block:4x4` or `block:4x4:max`, `channel`, `head`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Granularity {
    /// Each weight on its own.
    #[default]
    Unstructured,
    /// At most `n` non-zero weights in every group of `m` consecutive weights along the
    /// input axis (NVIDIA's convention: 2:4 keeps 2 of every 4).
    NOfM { n: usize, m: usize },
    /// `rows x cols` tiles of the 2-D weight `[out, in * kh * kw]`.
    Block {
        rows: usize,
        cols: usize,
        score: BlockScore,
    },
    /// Whole output neurons (Linear) or whole filters (Conv2d), scored by L2 norm; where
    /// a network ties channels together (a residual add), the whole channel group.
    Channel,
    /// Whole attention heads: a head's Q, K and V rows of the packed input projection and
    /// its columns of the output projection, together.
    Head,
}

/// A granularity that is malformed in itself, whatever layer it is used on.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum GranularityError {
    #[error(
        "cannot read granularity {0:?}: expected `unstructured`, `N:M` (like 2:4), `block:RxC` (like block:4x4, optionally `:max`), `channel` or `head`"
    )]
    Unreadable(String),
    #[error("N:M needs 1 <= N < M, found {n}:{m}")]
    BadNOfM { n: usize, m: usize },
    #[error("block size must be at least 1x1, found {rows}x{cols}")]
    EmptyBlock { rows: usize, cols: usize },
}

/// Why a layer cannot take a granularity.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[error("{0}")]
pub struct Ineligible(pub String);

impl Granularity {
    /// Checks the granularity on its own (N < M, non-empty blocks).
    pub fn validate(&self) -> Result<(), GranularityError> {
        match *self {
            Granularity::NOfM { n, m } if n == 0 || n >= m => {
                Err(GranularityError::BadNOfM { n, m })
            }
            Granularity::Block { rows, cols, .. } if rows == 0 || cols == 0 => {
                Err(GranularityError::EmptyBlock { rows, cols })
            }
            _ => Ok(()),
        }
    }

    /// Whether a layer of this shape can take the pattern, and if not, why.
    ///
    /// N:M groups run along the input axis, so the input size must be a multiple of M
    /// (the first conv of a 1-channel image has one input channel and cannot take 2:4);
    /// blocks must tile the 2-D weight exactly.
    pub fn check_layer(&self, shape: &LayerShape) -> Result<(), Ineligible> {
        match *self {
            Granularity::Unstructured | Granularity::Channel | Granularity::Head => Ok(()),
            Granularity::NOfM { n, m } => {
                if shape.inp.is_multiple_of(m) {
                    Ok(())
                } else {
                    Err(Ineligible(format!(
                        "{n}:{m} groups run along the input axis, which has {} {}; that is not a multiple of {m}",
                        shape.inp,
                        match shape.kind {
                            super::LayerKind::Linear => "features",
                            super::LayerKind::Conv2d => "channels",
                        }
                    )))
                }
            }
            Granularity::Block { rows, cols, .. } => {
                let (r, c) = (shape.out, shape.row_len());
                if r % rows == 0 && c % cols == 0 {
                    Ok(())
                } else {
                    Err(Ineligible(format!(
                        "{rows}x{cols} blocks do not tile the {r}x{c} weight matrix"
                    )))
                }
            }
        }
    }

    /// The sparsity a layer has once the pattern is applied, when the pattern fixes it.
    pub fn fixed_sparsity(&self) -> Option<f64> {
        match *self {
            Granularity::NOfM { n, m } => Some(1.0 - n as f64 / m as f64),
            _ => None,
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Granularity::Unstructured => write!(f, "unstructured"),
            Granularity::NOfM { n, m } => write!(f, "{n}:{m}"),
            Granularity::Block {
                rows,
                cols,
                score: BlockScore::Mean,
            } => write!(f, "block:{rows}x{cols}"),
            Granularity::Block {
                rows,
                cols,
                score: BlockScore::Max,
            } => write!(f, "block:{rows}x{cols}:max"),
            Granularity::Channel => write!(f, "channel"),
            Granularity::Head => write!(f, "head"),
        }
    }
}

impl FromStr for Granularity {
    type Err = GranularityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unreadable = || GranularityError::Unreadable(text.to_string());
        let t = text.trim().to_ascii_lowercase();
        let g = match t.as_str() {
            "unstructured" | "1x1" => Granularity::Unstructured,
            "channel" | "filter" => Granularity::Channel,
            "head" | "heads" => Granularity::Head,
            _ if t.starts_with("block:") => {
                let mut parts = t["block:".len()..].split(':');
                let size = parts.next().ok_or_else(unreadable)?;
                let score = match parts.next() {
                    None | Some("mean") => BlockScore::Mean,
                    Some("max") => BlockScore::Max,
                    Some(_) => return Err(unreadable()),
                };
                if parts.next().is_some() {
                    return Err(unreadable());
                }
                let (r, c) = size.split_once('x').ok_or_else(unreadable)?;
                Granularity::Block {
                    rows: r.parse().map_err(|_| unreadable())?,
                    cols: c.parse().map_err(|_| unreadable())?,
                    score,
                }
            }
            _ => {
                let (n, m) = t.split_once(':').ok_or_else(unreadable)?;
                Granularity::NOfM {
                    n: n.parse().map_err(|_| unreadable())?,
                    m: m.parse().map_err(|_| unreadable())?,
                }
            }
        };
        g.validate()?;
        Ok(g)
    }
}

impl TryFrom<String> for Granularity {
    type Error = GranularityError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Granularity> for String {
    fn from(value: Granularity) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_prints_it_back() {
        for text in [
            "unstructured",
            "2:4",
            "1:4",
            "3:8",
            "block:4x4",
            "block:2x8:max",
            "channel",
            "head",
        ] {
            let g: Granularity = text.parse().unwrap();
            assert_eq!(g.to_string(), text);
        }
        assert_eq!(
            "block:4x2:mean".parse::<Granularity>().unwrap(),
            Granularity::Block {
                rows: 4,
                cols: 2,
                score: BlockScore::Mean
            }
        );
    }

    #[test]
    fn rejects_impossible_patterns() {
        assert_eq!(
            "4:4".parse::<Granularity>(),
            Err(GranularityError::BadNOfM { n: 4, m: 4 })
        );
        assert_eq!(
            "5:4".parse::<Granularity>(),
            Err(GranularityError::BadNOfM { n: 5, m: 4 })
        );
        assert_eq!(
            "0:4".parse::<Granularity>(),
            Err(GranularityError::BadNOfM { n: 0, m: 4 })
        );
        assert!(matches!(
            "block:0x4".parse::<Granularity>(),
            Err(GranularityError::EmptyBlock { .. })
        ));
        for junk in ["", "2-4", "block:4", "block:4x4:median", "blocky", "a:b"] {
            assert!(
                matches!(
                    junk.parse::<Granularity>(),
                    Err(GranularityError::Unreadable(_))
                ),
                "{junk:?} parsed"
            );
        }
    }

    #[test]
    fn first_conv_of_a_grey_image_cannot_take_2_4() {
        let conv1 = LayerShape::conv2d(32, 1, 5, 5);
        let why = Granularity::NOfM { n: 2, m: 4 }
            .check_layer(&conv1)
            .unwrap_err();
        assert!(why.0.contains("1 channels"), "{why}");
        assert!(
            Granularity::NOfM { n: 2, m: 4 }
                .check_layer(&LayerShape::conv2d(64, 32, 5, 5))
                .is_ok()
        );
    }

    #[test]
    fn blocks_must_tile() {
        let b = Granularity::Block {
            rows: 4,
            cols: 4,
            score: BlockScore::Mean,
        };
        assert!(b.check_layer(&LayerShape::linear(300, 784)).is_ok());
        assert!(b.check_layer(&LayerShape::linear(10, 100)).is_err());
        // conv: the 2-D view is [out, in*kh*kw] = [16, 150]
        assert!(b.check_layer(&LayerShape::conv2d(16, 6, 5, 5)).is_err());
        assert!(
            Granularity::Block {
                rows: 4,
                cols: 5,
                score: BlockScore::Max
            }
            .check_layer(&LayerShape::conv2d(16, 6, 5, 5))
            .is_ok()
        );
    }

    #[test]
    fn serde_uses_the_text_form() {
        #[derive(Serialize, Deserialize)]
        struct Holder {
            g: Granularity,
        }
        let h: Holder = toml::from_str("g = \"2:4\"").unwrap();
        assert_eq!(h.g, Granularity::NOfM { n: 2, m: 4 });
        assert_eq!(toml::to_string(&h).unwrap().trim(), "g = \"2:4\"");
        assert!(toml::from_str::<Holder>("g = \"4:2\"").is_err());
    }
}
