//! The IDX format of the MNIST files, raw or gzip, read with strict checks.
//!
//! Every size is checked against the bytes actually present before anything is allocated
//! from it, so a header that claims 2^31 images is an error, not an allocation.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use thiserror::Error;

/// Images file magic: unsigned bytes, 3 dimensions.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Labels file magic: unsigned bytes, 1 dimension.
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Largest decompressed file accepted (the full MNIST train images are 47 MB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// A data file that cannot be used, with the file it came from.
#[derive(Debug, Error)]
pub enum DataError {
    #[error("{path}: cannot read: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: not a valid gzip stream: {cause}")]
    Gzip {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: larger than {MAX_FILE_BYTES} bytes once decompressed")]
    TooLarge { path: PathBuf },
    #[error("{path}: bad magic number 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    #[error("{path}: file is {found} bytes, too short for its {what}")]
    TooShort {
        path: PathBuf,
        found: usize,
        what: &'static str,
    },
    #[error("{path}: header says {count} x {per_item} bytes of data but the file holds {found}")]
    PayloadLength {
        path: PathBuf,
        count: u64,
        per_item: u64,
        found: usize,
    },
    #[error("{path}: images are {rows}x{cols}; the models take 28x28")]
    WrongImageSize { path: PathBuf, rows: u32, cols: u32 },
    #[error("{path}: label {value} at index {index} is not a digit class 0-9")]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        value: u8,
    },
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        images: PathBuf,
        image_count: usize,
        labels: PathBuf,
        label_count: usize,
    },
    #[error("{path}: holds no examples")]
    Empty { path: PathBuf },
    #[error("{path}: {len} bytes is not a whole number of {record}-byte records (truncated?)")]
    Records {
        path: PathBuf,
        len: usize,
        record: usize,
    },
    #[error(
        "{dir}: no train-images-idx3-ubyte (or .gz), no CIFAR-10 test_batch.bin, and no train/ and test/ image folders"
    )]
    NoDataset { dir: PathBuf },
    #[error("{path}: {reason}")]
    Image { path: PathBuf, reason: String },
    #[error("{dir}: no {name} (or {name}.gz) in this folder")]
    MissingFile { dir: PathBuf, name: String },
}

/// Images of one IDX file: `count` images of `rows x cols` bytes, row-major.
#[derive(Clone, Debug)]
pub struct Images {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Decompresses gzip input (detected by its magic bytes) or passes raw bytes through.
pub fn decompress(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if bytes.len() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b {
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(DataError::TooLarge { path: path.into() });
        }
        return Ok(bytes);
    }
    let mut out = Vec::new();
    GzDecoder::new(bytes.as_slice())
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|cause| DataError::Gzip {
            path: path.into(),
            cause,
        })?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(DataError::TooLarge { path: path.into() });
    }
    Ok(out)
}

/// Reads a file from disk, decompressing it if it is gzip.
pub fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|cause| DataError::Io {
        path: path.into(),
        cause,
    })?;
    decompress(path, bytes)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn header<'a>(
    path: &Path,
    bytes: &'a [u8],
    magic: u32,
    dims: usize,
    what: &'static str,
) -> Result<(Vec<u32>, &'a [u8]), DataError> {
    let head = 4 + 4 * dims;
    if bytes.len() < 4 {
        return Err(DataError::TooShort {
            path: path.into(),
            found: bytes.len(),
            what: "magic number",
        });
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.into(),
            found,
            expected: magic,
            what,
        });
    }
    if bytes.len() < head {
        return Err(DataError::TooShort {
            path: path.into(),
            found: bytes.len(),
            what: "header",
        });
    }
    let sizes = (0..dims).map(|d| be_u32(bytes, 4 + 4 * d)).collect();
    Ok((sizes, &bytes[head..]))
}

fn check_payload(path: &Path, count: u32, per_item: u64, payload: &[u8]) -> Result<(), DataError> {
    let expected = (count as u64).checked_mul(per_item);
    if expected != Some(payload.len() as u64) {
        return Err(DataError::PayloadLength {
            path: path.into(),
            count: count as u64,
            per_item,
            found: payload.len(),
        });
    }
    if count == 0 {
        return Err(DataError::Empty { path: path.into() });
    }
    Ok(())
}

/// Parses an images file (`0x00000803`, count x rows x cols unsigned bytes).
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<Images, DataError> {
    let (dims, payload) = header(path, bytes, IMAGES_MAGIC, 3, "IDX images, ubyte x 3 dims")?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    check_payload(path, count, rows as u64 * cols as u64, payload)?;
    Ok(Images {
        count: count as usize,
        rows: rows as usize,
        cols: cols as usize,
        pixels: payload.to_vec(),
    })
}

/// Parses a labels file (`0x00000801`, count unsigned bytes, each 0-9).
pub fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    let (dims, payload) = header(path, bytes, LABELS_MAGIC, 1, "IDX labels, ubyte x 1 dim")?;
    check_payload(path, dims[0], 1, payload)?;
    if let Some((index, &value)) = payload.iter().enumerate().find(|&(_, &v)| v > 9) {
        return Err(DataError::LabelOutOfRange {
            path: path.into(),
            index,
            value,
        });
    }
    Ok(payload.to_vec())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn idx_images(count: u32, rows: u32, cols: u32, fill: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(IMAGES_MAGIC.to_be_bytes());
        b.extend(count.to_be_bytes());
        b.extend(rows.to_be_bytes());
        b.extend(cols.to_be_bytes());
        b.extend(std::iter::repeat_n(fill, (count * rows * cols) as usize));
        b
    }

    pub(crate) fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(LABELS_MAGIC.to_be_bytes());
        b.extend((labels.len() as u32).to_be_bytes());
        b.extend(labels);
        b
    }

    fn p() -> &'static Path {
        Path::new("x-idx")
    }

    #[test]
    fn reads_well_formed_files() {
        let img = parse_images(p(), &idx_images(3, 28, 28, 7)).unwrap();
        assert_eq!((img.count, img.rows, img.cols), (3, 28, 28));
        assert_eq!(img.pixels.len(), 3 * 784);
        assert_eq!(
            parse_labels(p(), &idx_labels(&[0, 9, 3])).unwrap(),
            vec![0, 9, 3]
        );
    }

    #[test]
    fn a_huge_claimed_count_is_an_error_not_an_allocation() {
        let mut b = idx_images(1, 28, 28, 0);
        b[4..8].copy_from_slice(&0x8000_0000u32.to_be_bytes());
        assert!(matches!(
            parse_images(p(), &b),
            Err(DataError::PayloadLength {
                count: 0x8000_0000,
                ..
            })
        ));
        let mut b = idx_images(1, 28, 28, 0);
        b[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        b[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_images(p(), &b),
            Err(DataError::PayloadLength { .. })
        ));
    }

    #[test]
    fn every_malformation_is_named() {
        let good = idx_images(2, 28, 28, 1);
        let truncated = &good[..good.len() - 1];
        let e = parse_images(p(), truncated).unwrap_err().to_string();
        assert!(e.contains("x-idx") && e.contains("file holds 1567"), "{e}");
        assert!(matches!(
            parse_images(p(), &good[..10]),
            Err(DataError::TooShort { what: "header", .. })
        ));
        assert!(matches!(
            parse_images(p(), &good[..2]),
            Err(DataError::TooShort { .. })
        ));
        assert!(matches!(
            parse_images(p(), &idx_labels(&[1])),
            Err(DataError::BadMagic { found: 0x801, .. })
        ));
        assert!(matches!(
            parse_labels(p(), &idx_labels(&[1, 12])),
            Err(DataError::LabelOutOfRange {
                index: 1,
                value: 12,
                ..
            })
        ));
        assert!(matches!(
            parse_labels(p(), &idx_labels(&[])),
            Err(DataError::Empty { .. })
        ));
    }

    #[test]
    fn gzip_is_detected_and_corrupt_gzip_is_an_error() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let raw = idx_labels(&[4, 2]);
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&raw).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decompress(p(), gz.clone()).unwrap(), raw);
        let mut bad = gz.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        bad.truncate(bad.len() - 4);
        assert!(matches!(decompress(p(), bad), Err(DataError::Gzip { .. })));
        assert_eq!(decompress(p(), raw.clone()).unwrap(), raw);
    }
}
