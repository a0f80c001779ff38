//! CIFAR-10's binary version: records of one label byte then 3 x 32 x 32 pixel bytes (the
//! red, green and blue planes, each row-major), `data_batch_1.bin` to `data_batch_5.bin`
//! for training and `test_batch.bin` for testing.

use std::path::{Path, PathBuf};

use super::dataset::{Dataset, Split};
use super::idx::{DataError, read_file};

/// One CIFAR image: three channels of 32 x 32.
pub const CIFAR_SHAPE: [usize; 3] = [3, 32, 32];
const IMAGE: usize = 3 * 32 * 32;
const RECORD: usize = 1 + IMAGE;
const CLASSES: u8 = 10;

/// Splits one file's records into pixels and labels, checking every label.
pub fn parse_cifar(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    if bytes.is_empty() {
        return Err(DataError::Empty { path: path.into() });
    }
    if !bytes.len().is_multiple_of(RECORD) {
        return Err(DataError::Records {
            path: path.into(),
            len: bytes.len(),
            record: RECORD,
        });
    }
    let count = bytes.len() / RECORD;
    let mut pixels = Vec::with_capacity(count * IMAGE);
    let mut labels = Vec::with_capacity(count);
    for (index, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] >= CLASSES {
            return Err(DataError::LabelOutOfRange {
                path: path.into(),
                index,
                value: record[0],
            });
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((pixels, labels))
}

/// Whether `dir` holds CIFAR-10 binaries.
pub fn is_cifar(dir: &Path) -> bool {
    dir.join("test_batch.bin").is_file()
}

/// The training batches of `dir`, in order (`data_batch_1.bin`, ...).
fn train_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|cause| DataError::Io {
        path: dir.into(),
        cause,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("data_batch_") && n.ends_with(".bin"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::MissingFile {
            dir: dir.into(),
            name: "data_batch_1.bin".into(),
        });
    }
    Ok(files)
}

/// Loads CIFAR-10 from its binary files in `dir`.
pub fn load_cifar(dir: &Path) -> Result<Dataset, DataError> {
    let read = |files: &[PathBuf]| -> Result<Split, DataError> {
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        for path in files {
            let (p, l) = parse_cifar(path, &read_file(path)?)?;
            pixels.extend(p);
            labels.extend(l);
        }
        Ok(Split::from_parts(pixels, labels, IMAGE))
    };
    Ok(Dataset {
        name: format!("CIFAR-10 ({})", dir.display()),
        train: read(&train_files(dir)?)?,
        test: read(&[dir.join("test_batch.bin")])?,
        shape: CIFAR_SHAPE,
        classes: CLASSES as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(labels: &[u8]) -> Vec<u8> {
        labels
            .iter()
            .flat_map(|&l| std::iter::once(l).chain((0..IMAGE).map(move |i| (i % 251) as u8 ^ l)))
            .collect()
    }

    #[test]
    fn records_split_into_channel_major_images_and_labels() {
        let (pixels, labels) = parse_cifar(Path::new("b.bin"), &records(&[3, 9])).unwrap();
        assert_eq!(labels, [3, 9]);
        assert_eq!(pixels.len(), 2 * IMAGE);
        assert_eq!(pixels[IMAGE + 1], 1 ^ 9);
    }

    #[test]
    fn truncated_files_and_bad_labels_are_errors_naming_the_file() {
        let mut bytes = records(&[1, 2]);
        bytes.pop();
        let e = parse_cifar(Path::new("b.bin"), &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b.bin") && e.contains("3073-byte records"),
            "{e}"
        );
        let e = parse_cifar(Path::new("b.bin"), &records(&[1, 12]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.bin") && e.contains("12"), "{e}");
        assert!(parse_cifar(Path::new("b.bin"), &[]).is_err());
    }
}
