//! Reading a sparse model file, checking everything before trusting it: the envelope
//! (magic, version, length, checksum), the size of the inflated body, every entry's
//! dimensions and sections, and each mask against its encoding and kept count.

use std::io::Read;

use flate2::read::DeflateDecoder;

use super::format::{
    Decoded, Entry, FormatError, Header, MAGIC, MAX_BODY, MAX_ELEMENTS, MaskEncoding, Storage,
    VERSION, ValueFormat, bits_for, nm_order, shape_of,
};
use crate::model::HostTensor;
use crate::prune::LayerShape;

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
    let body = inflate(envelope(bytes)?)?;
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
        let (param, mask) = decode_entry(e, header.values, &mut cur)?;
        if let Some(mask) = mask {
            masks.push((e.name.clone(), mask));
        }
        params.push(param);
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

/// The compressed body, once the magic number, the version, the length and the checksum
/// around it are right.
fn envelope(bytes: &[u8]) -> Result<&[u8], FormatError> {
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
    Ok(compressed)
}

/// The body, inflated, no larger than [`MAX_BODY`].
fn inflate(compressed: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut body = Vec::new();
    DeflateDecoder::new(compressed)
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| FormatError::Compression(e.to_string()))?;
    if body.len() as u64 > MAX_BODY {
        return Err(FormatError::Compression("the body is too large".into()));
    }
    Ok(body)
}

/// One entry's parameter (dense, PyTorch layout) and, for a pruned weight, its mask, from
/// the sections at the cursor.
fn decode_entry(
    e: &Entry,
    values: ValueFormat,
    cur: &mut Cursor,
) -> Result<(HostTensor, Option<Vec<u8>>), FormatError> {
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
    let tensor = |values| HostTensor {
        name: e.name.clone(),
        dims: e.dims.clone(),
        values,
    };
    match &e.storage {
        Storage::Dense => {
            if sections.len() != 1 || sections[0].len() != numel * 4 {
                return Err(bad("dense values do not match the dimensions".into()));
            }
            Ok((tensor(f32s(sections[0])), None))
        }
        Storage::Sparse { encoding, nnz } => {
            let shape = shape_of(&e.dims)
                .ok_or_else(|| bad("a pruned weight must be 2-D or 4-D".into()))?;
            let (values, mask) =
                sparse_values(encoding, *nnz, &shape, values, &sections).map_err(bad)?;
            Ok((tensor(values), Some(mask)))
        }
    }
}

/// A pruned weight's dense values and mask from its sections: the mask, the kept values
/// (f32, or int8 and their per-channel scales).
fn sparse_values(
    encoding: &MaskEncoding,
    nnz: usize,
    shape: &LayerShape,
    format: ValueFormat,
    sections: &[&[u8]],
) -> Result<(Vec<f32>, Vec<u8>), String> {
    let numel = shape.numel();
    let expected_sections = match format {
        ValueFormat::F32 => 2,
        ValueFormat::Int8 => 3,
    };
    if sections.len() != expected_sections {
        return Err(format!("expected {expected_sections} sections"));
    }
    if nnz > numel {
        return Err(format!("{nnz} kept weights in {numel}"));
    }
    let order = decode_mask(encoding, sections[0], shape, nnz)?;
    let kept: Vec<f32> = match format {
        ValueFormat::F32 => {
            if sections[1].len() != nnz * 4 {
                return Err("value count does not match the mask".into());
            }
            f32s(sections[1])
        }
        ValueFormat::Int8 => {
            if sections[1].len() != nnz || sections[2].len() != shape.out * 4 {
                return Err("int8 values or scales do not match the mask".into());
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
    Ok((values, mask))
}

/// The kept flat indices, in the order values are stored.
pub(super) fn decode_mask(
    enc: &MaskEncoding,
    bytes: &[u8],
    shape: &LayerShape,
    nnz: usize,
) -> Result<Vec<usize>, String> {
    match *enc {
        MaskEncoding::Bitmask => bitmask_order(bytes, shape.numel(), nnz),
        MaskEncoding::Indices => index_order(bytes, shape.numel(), nnz),
        MaskEncoding::Nm { n, m } => nm_positions(n, m, bytes, shape, nnz),
    }
}

/// A bitmask: one bit per weight, set where it is kept.
fn bitmask_order(bytes: &[u8], numel: usize, nnz: usize) -> Result<Vec<usize>, String> {
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

/// Delta-coded indices: the gap before each kept weight as LEB128.
fn index_order(bytes: &[u8], numel: usize, nnz: usize) -> Result<Vec<usize>, String> {
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

/// N:M positions: for each group, the rising positions of its `n` kept weights.
fn nm_positions(
    n: usize,
    m: usize,
    bytes: &[u8],
    shape: &LayerShape,
    nnz: usize,
) -> Result<Vec<usize>, String> {
    if m < 2 || n == 0 || n >= m || !shape.inp.is_multiple_of(m) {
        return Err(format!("{n}:{m} does not fit the dimensions"));
    }
    let groups = shape.numel() / m;
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
