//! The parts of the sparse model format that the writer and the reader share: its
//! constants and limits, its header and entries, what a file holds once decoded, and the
//! N:M traversal order both sides follow.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::HostTensor;
use crate::prune::LayerShape;

/// The first four bytes of every file.
pub const MAGIC: &[u8; 4] = b"SPXM";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Largest decompressed body accepted.
pub(super) const MAX_BODY: u64 = 1 << 30;
/// Largest parameter accepted (elements).
pub(super) const MAX_ELEMENTS: usize = 1 << 28;

#[derive(Debug, Error, PartialEq)]
pub enum FormatError {
    #[error("not a sparse model file (bad magic number)")]
    BadMagic,
    #[error("format version {0} is not supported (this build reads version {VERSION})")]
    Version(u32),
    #[error("the file is truncated: {0}")]
    Truncated(String),
    #[error("checksum mismatch: the file is corrupted")]
    Checksum,
    #[error("the body does not decompress: {0}")]
    Compression(String),
    #[error("the header is invalid: {0}")]
    Header(String),
    #[error("parameter {name}: {reason}")]
    Tensor { name: String, reason: String },
}

/// How kept weights are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    F32,
    /// Symmetric int8 with one f32 scale per output channel.
    Int8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MaskEncoding {
    Bitmask,
    Indices,
    /// Positions inside N:M groups along the input axis.
    Nm {
        n: usize,
        m: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "storage", rename_all = "lowercase")]
pub enum Storage {
    Dense,
    Sparse { encoding: MaskEncoding, nnz: usize },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub dims: Vec<usize>,
    #[serde(flatten)]
    pub storage: Storage,
    /// Byte lengths of this entry's sections, in order.
    pub sections: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub model: String,
    pub plan: String,
    pub values: ValueFormat,
    pub entries: Vec<Entry>,
}

/// A pruned weight to store: its values (PyTorch layout), mask, and N:M pattern if any.
pub struct SparseWeight<'a> {
    pub name: &'a str,
    pub shape: LayerShape,
    pub values: &'a [f32],
    pub mask: &'a [u8],
    pub nm: Option<(usize, usize)>,
}

/// The decoded contents of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub header: Header,
    /// Every parameter, dense, PyTorch layout.
    pub params: Vec<HostTensor>,
    /// Masks of the sparse entries, by parameter name.
    pub masks: Vec<(String, Vec<u8>)>,
}

/// The layer shape of a pruned weight's dimensions (2-D linear or 4-D convolution).
pub(super) fn shape_of(dims: &[usize]) -> Option<LayerShape> {
    match dims {
        [o, i] => Some(LayerShape::linear(*o, *i)),
        [o, i, kh, kw] => Some(LayerShape::conv2d(*o, *i, *kh, *kw)),
        _ => None,
    }
}

/// Flat indices of the kept weights in N:M traversal order: for each `(o, y, x)` and each
/// group along the input axis, the kept inputs in increasing order.
pub(super) fn nm_order(shape: &LayerShape, m: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..shape.out).flat_map(move |o| {
        (0..shape.kh).flat_map(move |y| {
            (0..shape.kw).flat_map(move |x| {
                (0..shape.inp / m)
                    .flat_map(move |g| (0..m).map(move |p| (shape.index(o, g * m + p, y, x), p)))
            })
        })
    })
}

/// Bits that hold a position inside a group of `m`.
pub(super) fn bits_for(m: usize) -> usize {
    (usize::BITS - (m - 1).leading_zeros()) as usize
}
