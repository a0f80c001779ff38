//! Datasets: the built-in digits, Fashion-MNIST, or any folder of MNIST-format files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::idx::{DataError, Images, decompress, parse_images, parse_labels, read_file};

/// Pixels per MNIST image (28 x 28).
pub const IMAGE_PIXELS: usize = 28 * 28;
/// An MNIST image: one channel of 28 x 28.
pub const MNIST_SHAPE: [usize; 3] = [1, 28, 28];
/// Classes of the MNIST-format sets.
pub const CLASSES: usize = 10;
/// Where Debian's `dataset-fashion-mnist` installs its files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Examples of the built-in set used for training; the rest are the test split.
pub const BUILTIN_TRAIN: usize = 8_000;
/// Seed of the built-in split: fixed, so every run tests on the same 2,000 digits.
const BUILTIN_SPLIT_SEED: u64 = 0x5EED_0FD1_6175_0000;

const BUILTIN_IMAGES: &[u8] = include_bytes!("../../assets/data/images-idx3-ubyte.gz");
const BUILTIN_LABELS: &[u8] = include_bytes!("../../assets/data/labels-idx1-ubyte.gz");

/// Where the data comes from. Written in plans and on the command line as `builtin`,
/// `fashion-mnist`, or a folder path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum DatasetSource {
    /// 10,000 MNIST digits shipped in the binary, split 8,000 / 2,000.
    #[default]
    BuiltIn,
    /// Fashion-MNIST from Debian's package (60,000 + 10,000).
    FashionMnist,
    /// A folder with `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
    /// `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`.
    Folder(PathBuf),
}

impl From<String> for DatasetSource {
    fn from(s: String) -> Self {
        match s.trim() {
            "builtin" | "built-in" | "mnist-10k" => DatasetSource::BuiltIn,
            "fashion-mnist" | "fashion" => DatasetSource::FashionMnist,
            path => DatasetSource::Folder(PathBuf::from(path)),
        }
    }
}

impl From<DatasetSource> for String {
    fn from(s: DatasetSource) -> Self {
        s.to_string()
    }
}

impl FromStr for DatasetSource {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(s.to_string().into())
    }
}

impl fmt::Display for DatasetSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSource::BuiltIn => f.write_str("builtin"),
            DatasetSource::FashionMnist => f.write_str("fashion-mnist"),
            DatasetSource::Folder(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Images and labels of one split, kept as bytes (each image channel-major, `[c, h, w]`);
/// batches are scaled to `[0, 1]` on demand.
#[derive(Clone, Debug)]
pub struct Split {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    /// Bytes per image: `c * h * w`.
    image_len: usize,
}

impl Split {
    fn new(images: Images, labels: Vec<u8>) -> Self {
        Self {
            image_len: images.rows * images.cols,
            pixels: images.pixels,
            labels,
        }
    }

    /// A split of `labels.len()` images of `image_len` bytes each.
    pub(crate) fn from_parts(pixels: Vec<u8>, labels: Vec<u8>, image_len: usize) -> Self {
        debug_assert_eq!(pixels.len(), labels.len() * image_len);
        Self {
            pixels,
            labels,
            image_len,
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Pixels of example `i` (`c * h * w` bytes).
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.image_len..(i + 1) * self.image_len]
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.image_len
    }

    /// Pixels scaled to `[0, 1]` (`[n * c * h * w]`) and class indices of `indices`.
    pub fn gather(&self, indices: &[usize]) -> (Vec<f32>, Vec<i64>) {
        let mut x = vec![0.0f32; indices.len() * self.image_len];
        for (dst, &i) in x.chunks_exact_mut(self.image_len.max(1)).zip(indices) {
            for (d, &p) in dst.iter_mut().zip(self.image(i)) {
                *d = p as f32 / 255.0;
            }
        }
        let y = indices.iter().map(|&i| self.labels[i] as i64).collect();
        (x, y)
    }

    fn select(&self, indices: &[usize]) -> Split {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Split {
            pixels,
            labels,
            image_len: self.image_len,
        }
    }
}

/// A train and a test split.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Human-readable name (`MNIST 10k (built-in)`, a folder path, ...).
    pub name: String,
    pub train: Split,
    pub test: Split,
    /// One image: channels, height, width.
    pub shape: [usize; 3],
    /// Number of classes (labels are `0..classes`).
    pub classes: usize,
}

fn pair(
    images_path: &Path,
    images: &[u8],
    labels_path: &Path,
    labels: &[u8],
) -> Result<Split, DataError> {
    let images_idx = parse_images(images_path, images)?;
    if (images_idx.rows, images_idx.cols) != (28, 28) {
        return Err(DataError::WrongImageSize {
            path: images_path.into(),
            rows: images_idx.rows as u32,
            cols: images_idx.cols as u32,
        });
    }
    let labels_idx = parse_labels(labels_path, labels)?;
    if images_idx.count != labels_idx.len() {
        return Err(DataError::CountMismatch {
            images: images_path.into(),
            image_count: images_idx.count,
            labels: labels_path.into(),
            label_count: labels_idx.len(),
        });
    }
    Ok(Split::new(images_idx, labels_idx))
}

/// Finds `name` or `name.gz` in `dir`.
pub(super) fn find(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::MissingFile {
            dir: dir.into(),
            name: name.into(),
        })
}

impl Dataset {
    /// The 10,000 built-in digits, split 8,000 train / 2,000 test with a fixed seed.
    pub fn builtin() -> Result<Dataset, DataError> {
        let ip = Path::new("assets/data/images-idx3-ubyte.gz");
        let lp = Path::new("assets/data/labels-idx1-ubyte.gz");
        let all = pair(
            ip,
            &decompress(ip, BUILTIN_IMAGES.to_vec())?,
            lp,
            &decompress(lp, BUILTIN_LABELS.to_vec())?,
        )?;
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(BUILTIN_SPLIT_SEED));
        let (train, test) = order.split_at(BUILTIN_TRAIN.min(all.len()));
        Ok(Dataset {
            name: "MNIST 10k (built-in)".into(),
            train: all.select(train),
            test: all.select(test),
            shape: MNIST_SHAPE,
            classes: CLASSES,
        })
    }

    /// A folder holding the four standard MNIST-format files, raw or gzip.
    pub fn from_folder(dir: &Path) -> Result<Dataset, DataError> {
        let read = |name: &str| -> Result<(PathBuf, Vec<u8>), DataError> {
            let path = find(dir, name)?;
            let bytes = read_file(&path)?;
            Ok((path, bytes))
        };
        let (tip, tib) = read("train-images-idx3-ubyte")?;
        let (tlp, tlb) = read("train-labels-idx1-ubyte")?;
        let (vip, vib) = read("t10k-images-idx3-ubyte")?;
        let (vlp, vlb) = read("t10k-labels-idx1-ubyte")?;
        Ok(Dataset {
            name: dir.display().to_string(),
            train: pair(&tip, &tib, &tlp, &tlb)?,
            test: pair(&vip, &vib, &vlp, &vlb)?,
            shape: MNIST_SHAPE,
            classes: CLASSES,
        })
    }
}

/// The order of training examples, reshuffled each epoch from `(seed, epoch)`.
#[derive(Clone, Debug)]
pub struct EpochOrder {
    seed: u64,
    len: usize,
    batch: usize,
}

impl EpochOrder {
    pub fn new(seed: u64, len: usize, batch: usize) -> Self {
        Self {
            seed,
            len,
            batch: batch.max(1),
        }
    }

    /// Mini-batches per epoch; the last one may be short (nothing is dropped).
    pub fn batches_per_epoch(&self) -> usize {
        self.len.div_ceil(self.batch)
    }

    /// The shuffled order of one epoch.
    pub fn epoch(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ));
        order
    }

    /// Indices of batch `b` within an epoch's order.
    pub fn batch<'a>(&self, order: &'a [usize], b: usize) -> &'a [usize] {
        let start = b * self.batch;
        &order[start..(start + self.batch).min(order.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::tests::{idx_images, idx_labels};

    #[test]
    fn builtin_split_is_fixed_and_disjoint() {
        let a = Dataset::builtin().unwrap();
        let b = Dataset::builtin().unwrap();
        assert_eq!((a.train.len(), a.test.len()), (8_000, 2_000));
        assert_eq!(a.test.labels(), b.test.labels());
        assert_eq!(a.test.image(17), b.test.image(17));
        // every class appears in both splits
        for c in 0..10u8 {
            assert!(a.test.labels().contains(&c));
            assert!(a.train.labels().contains(&c));
        }
    }

    #[test]
    fn batches_are_scaled_and_cover_the_epoch() {
        let d = Dataset::builtin().unwrap();
        let (x, y) = d.test.gather(&[0, 1]);
        assert_eq!((x.len(), y.len()), (2 * 784, 2));
        assert!(x.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert!(x.iter().any(|&p| p > 0.9));
        let order = EpochOrder::new(1, 10, 4);
        assert_eq!(order.batches_per_epoch(), 3);
        let e0 = order.epoch(0);
        let mut seen: Vec<usize> = (0..3).flat_map(|b| order.batch(&e0, b).to_vec()).collect();
        assert_eq!(order.batch(&e0, 2).len(), 2);
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_ne!(order.epoch(0), order.epoch(1));
        assert_eq!(order.epoch(1), EpochOrder::new(1, 10, 4).epoch(1));
    }

    fn write_folder(dir: &Path, train_labels: &[u8]) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("train-images-idx3-ubyte"),
            idx_images(3, 28, 28, 9),
        )
        .unwrap();
        std::fs::write(
            dir.join("train-labels-idx1-ubyte"),
            idx_labels(train_labels),
        )
        .unwrap();
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx_images(2, 28, 28, 1)).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx_labels(&[1, 2])).unwrap();
    }

    #[test]
    fn folders_load_and_mismatches_are_named() {
        let dir = std::env::temp_dir().join(format!("se-folder-{}", std::process::id()));
        write_folder(&dir, &[0, 1, 2]);
        let d = Dataset::load(&DatasetSource::Folder(dir.clone())).unwrap();
        assert_eq!((d.train.len(), d.test.len()), (3, 2));
        write_folder(&dir, &[0, 1]);
        let e = Dataset::load(&DatasetSource::Folder(dir.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 images") && e.contains("2 labels"), "{e}");
        std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
        write_folder(&dir, &[0, 1, 2]);
        std::fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
        let e = Dataset::load(&DatasetSource::Folder(dir.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t10k-images-idx3-ubyte"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn source_text_forms() {
        assert_eq!(
            "builtin".parse::<DatasetSource>().unwrap(),
            DatasetSource::BuiltIn
        );
        assert_eq!(
            "fashion-mnist".parse::<DatasetSource>().unwrap(),
            DatasetSource::FashionMnist
        );
        assert_eq!(
            "/data/mnist".parse::<DatasetSource>().unwrap(),
            DatasetSource::Folder("/data/mnist".into())
        );
    }
}
