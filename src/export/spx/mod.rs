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
//!
//! `format.rs` holds what both sides share, `write.rs` the writer ([`encode`]) and
//! `read.rs` the reader ([`decode`]).

mod format;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub use format::{
    Decoded, Entry, FormatError, Header, MAGIC, MaskEncoding, SparseWeight, Storage, VERSION,
    ValueFormat,
};
pub use read::decode;
pub use write::encode;
