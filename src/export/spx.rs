//! The compact sparse model file (`.spx`).
//!
//! ```text
//! "SPXM" | version: u32 LE | crc32 of the compressed body: u32 LE | body length: u64 LE |
//! body = deflate( header length: u32 LE | header (JSON) | sections... )
//! ```
//!
//! The header names the model, carries the plan and lists every parameter with its
//! PyTorch-layout dimensions and storage. Dense parameters (biases, batch norms) are one f32
//! section. A pruned weight is a mask section, a values section (its kept weights, f32 or
//! int8) and, for int8, a section of per-output-channel f32 scales. The mask is stored in the
//! smallest of three encodings: a bitmask, delta-coded indices (LEB128 gaps), or, for an N:M
//! layer, the position of each kept weight inside its group (`ceil(log2 M)` bits: 2 for 2:4).

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::HostTensor;
use crate::prune::LayerShape;

pub const MAGIC: &[u8; 4] = b"SPXM";
pub const VERSION: u32 = 1;
/// Largest decompressed body accepted.
const MAX_BODY: u64 = 1 << 30;
/// Largest parameter accepted (elements).
const MAX_ELEMENTS: usize = 1 << 28;

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

fn shape_of(dims: &[usize]) -> Option<LayerShape> {
    match dims {
        [o, i] => Some(LayerShape::linear(*o, *i)),
        [o, i, kh, kw] => Some(LayerShape::conv2d(*o, *i, *kh, *kw)),
        _ => None,
    }
}

/// Flat indices of the kept weights in N:M traversal order: for each `(o, y, x)` and each
/// group along the input axis, the kept inputs in increasing order.
fn nm_order(shape: &LayerShape, m: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..shape.out).flat_map(move |o| {
        (0..shape.kh).flat_map(move |y| {
            (0..shape.kw).flat_map(move |x| {
                (0..shape.inp / m)
                    .flat_map(move |g| (0..m).map(move |p| (shape.index(o, g * m + p, y, x), p)))
            })
        })
    })
}

fn bits_for(m: usize) -> usize {
    (usize::BITS - (m - 1).leading_zeros()) as usize
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Encodes a mask three ways where possible and keeps the smallest; returns the encoding,
/// its bytes, and the kept flat indices in the order values are stored.
fn encode_mask(w: &SparseWeight) -> (MaskEncoding, Vec<u8>, Vec<usize>) {
    let flat: Vec<usize> = (0..w.mask.len()).filter(|&i| w.mask[i] == 1).collect();
    let mut bitmask = vec![0u8; w.mask.len().div_ceil(8)];
    for &i in &flat {
        bitmask[i / 8] |= 1 << (i % 8);
    }
    let mut indices = Vec::new();
    let mut prev = 0usize;
    for (k, &i) in flat.iter().enumerate() {
        push_varint(&mut indices, (if k == 0 { i } else { i - prev - 1 }) as u64);
        prev = i;
    }
    let mut best = if indices.len() < bitmask.len() {
        (MaskEncoding::Indices, indices, flat.clone())
    } else {
        (MaskEncoding::Bitmask, bitmask, flat.clone())
    };
    if let Some((n, m)) = w.nm
        && m >= 2
        && w.shape.inp.is_multiple_of(m)
    {
        let bits = bits_for(m);
        let mut order = Vec::with_capacity(flat.len());
        let mut positions = Vec::with_capacity(flat.len());
        let mut valid = true;
        let mut in_group = 0;
        for (k, (idx, p)) in nm_order(&w.shape, m).enumerate() {
            if w.mask[idx] == 1 {
                order.push(idx);
                positions.push(p);
                in_group += 1;
            }
            if k % m == m - 1 {
                valid &= in_group == n;
                in_group = 0;
            }
        }
        if valid {
            let mut packed = vec![0u8; (positions.len() * bits).div_ceil(8)];
            for (k, p) in positions.iter().enumerate() {
                for b in 0..bits {
                    if p >> b & 1 == 1 {
                        let bit = k * bits + b;
                        packed[bit / 8] |= 1 << (bit % 8);
                    }
                }
            }
            if packed.len() <= best.1.len() {
                best = (MaskEncoding::Nm { n, m }, packed, order);
            }
        }
    }
    best
}

/// Per-output-channel symmetric int8: `q = round(w / scale)`, `scale = max|w| / 127`.
fn quantize(values: &[f32], outs: &[usize], out_channels: usize) -> (Vec<i8>, Vec<f32>) {
    let mut max = vec![0.0f32; out_channels];
    for (v, &o) in values.iter().zip(outs) {
        max[o] = max[o].max(v.abs());
    }
    let scales: Vec<f32> = max
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let q = values
        .iter()
        .zip(outs)
        .map(|(v, &o)| (v / scales[o]).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (q, scales)
}

/// Writes the file's bytes.
pub fn encode(
    model: &str,
    plan: &str,
    format: ValueFormat,
    sparse: &[SparseWeight],
    dense: &[HostTensor],
) -> Result<Vec<u8>, FormatError> {
    let mut entries = Vec::new();
    let mut sections: Vec<u8> = Vec::new();
    for w in sparse {
        let (encoding, mask_bytes, order) = encode_mask(w);
        let kept: Vec<f32> = order.iter().map(|&i| w.values[i]).collect();
        let row_len = w.shape.row_len();
        let mut lengths = vec![mask_bytes.len()];
        sections.extend(&mask_bytes);
        match format {
            ValueFormat::F32 => {
                lengths.push(kept.len() * 4);
                kept.iter().for_each(|v| sections.extend(v.to_le_bytes()));
            }
            ValueFormat::Int8 => {
                let outs: Vec<usize> = order.iter().map(|&i| i / row_len).collect();
                let (q, scales) = quantize(&kept, &outs, w.shape.out);
                lengths.push(q.len());
                sections.extend(q.iter().map(|&b| b as u8));
                lengths.push(scales.len() * 4);
                scales.iter().for_each(|v| sections.extend(v.to_le_bytes()));
            }
        }
        entries.push(Entry {
            name: w.name.to_string(),
            dims: w.shape.dims(),
            storage: Storage::Sparse {
                encoding,
                nnz: order.len(),
            },
            sections: lengths,
        });
    }
    for t in dense {
        entries.push(Entry {
            name: t.name.clone(),
            dims: t.dims.clone(),
            storage: Storage::Dense,
            sections: vec![t.values.len() * 4],
        });
        t.values
            .iter()
            .for_each(|v| sections.extend(v.to_le_bytes()));
    }
    let header = serde_json::to_vec(&Header {
        model: model.to_string(),
        plan: plan.to_string(),
        values: format,
        entries,
    })
    .map_err(|e| FormatError::Header(e.to_string()))?;
    let mut body = Vec::with_capacity(4 + header.len() + sections.len());
    body.extend((header.len() as u32).to_le_bytes());
    body.extend(&header);
    body.extend(&sections);
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
    enc.write_all(&body)
        .map_err(|e| FormatError::Compression(e.to_string()))?;
    let compressed = enc
        .finish()
        .map_err(|e| FormatError::Compression(e.to_string()))?;
    let mut out = Vec::with_capacity(20 + compressed.len());
    out.extend(MAGIC);
    out.extend(VERSION.to_le_bytes());
    out.extend(crc32fast::hash(&compressed).to_le_bytes());
    out.extend((compressed.len() as u64).to_le_bytes());
    out.extend(&compressed);
    Ok(out)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], FormatError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| FormatError::Truncated(format!("{what} runs past the end")))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Reads a file's bytes, checking everything before trusting it.
pub fn decode(bytes: &[u8]) -> Result<Decoded, FormatError> {
    if bytes.len() < 4 || &bytes[..4] != MAGIC {
        return Err(if bytes.len() < 4 {
            FormatError::Truncated("no header".into())
        } else {
            FormatError::BadMagic
        });
    }
    if bytes.len() < 20 {
        return Err(FormatError::Truncated("the header is incomplete".into()));
    }
    let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(FormatError::Version(version));
    }
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let compressed = &bytes[20..];
    if (compressed.len() as u64) < len {
        return Err(FormatError::Truncated(format!(
            "the body should be {len} bytes, {} are present",
            compressed.len()
        )));
    }
    if compressed.len() as u64 != len {
        return Err(FormatError::Header(format!(
            "{} bytes after the body",
            compressed.len() as u64 - len
        )));
    }
    if crc32fast::hash(compressed) != crc {
        return Err(FormatError::Checksum);
    }
    let mut body = Vec::new();
    DeflateDecoder::new(compressed)
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| FormatError::Compression(e.to_string()))?;
    if body.len() as u64 > MAX_BODY {
        return Err(FormatError::Compression("the body is too large".into()));
    }
    let mut cur = Cursor {
        bytes: &body,
        at: 0,
    };
    let header_len =
        u32::from_le_bytes(cur.take(4, "header length")?.try_into().expect("4")) as usize;
    let header: Header = serde_json::from_slice(cur.take(header_len, "header")?)
        .map_err(|e| FormatError::Header(e.to_string()))?;
    let mut params = Vec::new();
    let mut masks = Vec::new();
    for e in &header.entries {
        let bad = |reason: String| FormatError::Tensor {
            name: e.name.clone(),
            reason,
        };
        let numel = e
            .dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| bad(format!("dimensions {:?} are too large", e.dims)))?;
        let mut sections = Vec::new();
        for (k, &l) in e.sections.iter().enumerate() {
            sections.push(cur.take(l, &format!("{} section {k}", e.name))?);
        }
        match &e.storage {
            Storage::Dense => {
                if sections.len() != 1 || sections[0].len() != numel * 4 {
                    return Err(bad("dense values do not match the dimensions".into()));
                }
                params.push(HostTensor {
                    name: e.name.clone(),
                    dims: e.dims.clone(),
                    values: f32s(sections[0]),
                });
            }
            Storage::Sparse { encoding, nnz } => {
                let shape = shape_of(&e.dims)
                    .ok_or_else(|| bad("a pruned weight must be 2-D or 4-D".into()))?;
                let expected_sections = match header.values {
                    ValueFormat::F32 => 2,
                    ValueFormat::Int8 => 3,
                };
                if sections.len() != expected_sections {
                    return Err(bad(format!("expected {expected_sections} sections")));
                }
                if *nnz > numel {
                    return Err(bad(format!("{nnz} kept weights in {numel}")));
                }
                let order = decode_mask(encoding, sections[0], &shape, *nnz).map_err(bad)?;
                let kept: Vec<f32> = match header.values {
                    ValueFormat::F32 => {
                        if sections[1].len() != nnz * 4 {
                            return Err(bad("value count does not match the mask".into()));
                        }
                        f32s(sections[1])
                    }
                    ValueFormat::Int8 => {
                        if sections[1].len() != *nnz || sections[2].len() != shape.out * 4 {
                            return Err(bad("int8 values or scales do not match the mask".into()));
                        }
                        let scales = f32s(sections[2]);
                        let row_len = shape.row_len();
                        sections[1]
                            .iter()
                            .zip(&order)
                            .map(|(&q, &i)| q as i8 as f32 * scales[i / row_len])
                            .collect()
                    }
                };
                let mut values = vec![0.0f32; numel];
                let mut mask = vec![0u8; numel];
                for (&i, v) in order.iter().zip(kept) {
                    values[i] = v;
                    mask[i] = 1;
                }
                masks.push((e.name.clone(), mask));
                params.push(HostTensor {
                    name: e.name.clone(),
                    dims: e.dims.clone(),
                    values,
                });
            }
        }
    }
    if cur.at != body.len() {
        return Err(FormatError::Header(format!(
            "{} unexplained bytes at the end",
            body.len() - cur.at
        )));
    }
    Ok(Decoded {
        header,
        params,
        masks,
    })
}

/// The kept flat indices, in the order values are stored.
fn decode_mask(
    enc: &MaskEncoding,
    bytes: &[u8],
    shape: &LayerShape,
    nnz: usize,
) -> Result<Vec<usize>, String> {
    let numel = shape.numel();
    match *enc {
        MaskEncoding::Bitmask => {
            if bytes.len() != numel.div_ceil(8) {
                return Err("bitmask length does not match the dimensions".into());
            }
            let order: Vec<usize> = (0..numel)
                .filter(|&i| bytes[i / 8] >> (i % 8) & 1 == 1)
                .collect();
            if order.len() != nnz {
                return Err(format!(
                    "bitmask keeps {} weights, header says {nnz}",
                    order.len()
                ));
            }
            Ok(order)
        }
        MaskEncoding::Indices => {
            let mut order = Vec::with_capacity(nnz);
            let (mut at, mut next) = (0usize, 0u64);
            while at < bytes.len() {
                let (mut v, mut shift) = (0u64, 0u32);
                loop {
                    let b = *bytes.get(at).ok_or("an index is cut short")?;
                    at += 1;
                    if shift > 56 {
                        return Err("an index is too long".into());
                    }
                    v |= ((b & 0x7f) as u64) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        break;
                    }
                }
                let i = next.checked_add(v).ok_or("index overflow")?;
                if i >= numel as u64 {
                    return Err(format!("index {i} is outside the weight"));
                }
                order.push(i as usize);
                next = i + 1;
                if order.len() > nnz {
                    return Err("more indices than the header says".into());
                }
            }
            if order.len() != nnz {
                return Err(format!("{} indices, header says {nnz}", order.len()));
            }
            Ok(order)
        }
        MaskEncoding::Nm { n, m } => {
            if m < 2 || n == 0 || n >= m || !shape.inp.is_multiple_of(m) {
                return Err(format!("{n}:{m} does not fit the dimensions"));
            }
            let groups = numel / m;
            if nnz != groups * n {
                return Err(format!(
                    "{n}:{m} needs {} kept weights, header says {nnz}",
                    groups * n
                ));
            }
            let bits = bits_for(m);
            if bytes.len() != (nnz * bits).div_ceil(8) {
                return Err("position bytes do not match the kept count".into());
            }
            let position = |k: usize| {
                (0..bits).fold(0usize, |p, b| {
                    let bit = k * bits + b;
                    p | (((bytes[bit / 8] >> (bit % 8)) & 1) as usize) << b
                })
            };
            let group_starts: Vec<usize> = nm_order(shape, m).step_by(m).map(|(i, _)| i).collect();
            let step = shape.kernel_len(); // distance between consecutive inputs
            let mut order = Vec::with_capacity(nnz);
            for (g, &start) in group_starts.iter().enumerate() {
                let mut last = None;
                for k in 0..n {
                    let p = position(g * n + k);
                    if p >= m || last.is_some_and(|l| p <= l) {
                        return Err(format!("group {g}: positions must rise inside 0..{m}"));
                    }
                    last = Some(p);
                    order.push(start + p * step);
                }
            }
            Ok(order)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_through_indices() {
        let shape = LayerShape::linear(3, 100);
        let mut mask = vec![0u8; 300];
        for i in [0, 1, 7, 150, 299] {
            mask[i] = 1;
        }
        let values: Vec<f32> = (0..300).map(|i| i as f32).collect();
        let w = SparseWeight {
            name: "fc",
            shape,
            values: &values,
            mask: &mask,
            nm: None,
        };
        let (enc, bytes, order) = encode_mask(&w);
        assert_eq!(enc, MaskEncoding::Indices);
        assert_eq!(decode_mask(&enc, &bytes, &shape, 5).unwrap(), order);
    }

    #[test]
    fn two_of_four_uses_two_bits_per_kept_weight() {
        let shape = LayerShape::conv2d(2, 8, 1, 2);
        let values: Vec<f32> = (0..32).map(|i| 1.0 + i as f32).collect();
        let mask =
            crate::prune::nm_mask(&values, &shape, 2, 4, crate::prune::Criterion::Magnitude, 0);
        let w = SparseWeight {
            name: "conv",
            shape,
            values: &values,
            mask: &mask,
            nm: Some((2, 4)),
        };
        let (enc, bytes, order) = encode_mask(&w);
        assert_eq!(enc, MaskEncoding::Nm { n: 2, m: 4 });
        assert_eq!(bytes.len(), 16 * 2 / 8);
        assert_eq!(decode_mask(&enc, &bytes, &shape, 16).unwrap(), order);
        let mut sorted = order.clone();
        sorted.sort();
        let expected: Vec<usize> = (0..32).filter(|&i| mask[i] == 1).collect();
        assert_eq!(sorted, expected);
    }
}
