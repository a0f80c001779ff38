//! Writing a sparse model file: each mask in its smallest encoding, the kept values as
//! f32 or per-channel int8, all behind a JSON header, deflated and checksummed.

use std::io::Write;

use flate2::Compression;
use flate2::write::DeflateEncoder;

use super::format::{
    Entry, FormatError, Header, MAGIC, MaskEncoding, SparseWeight, Storage, VERSION, ValueFormat,
    bits_for, nm_order,
};
use crate::model::HostTensor;

/// Appends `v` as LEB128: seven bits a byte, the high bit set on all but the last.
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
pub(super) fn encode_mask(w: &SparseWeight) -> (MaskEncoding, Vec<u8>, Vec<usize>) {
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
