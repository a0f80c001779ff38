//! Data: the IDX reader, the built-in digits and folder datasets, and epoch shuffling.

pub mod cifar;
pub mod dataset;
pub mod idx;
pub mod images;

pub use dataset::{
    BUILTIN_TRAIN, CLASSES, Dataset, DatasetSource, EpochOrder, FASHION_MNIST_DIR, IMAGE_PIXELS,
    MNIST_SHAPE, Split,
};
pub use idx::DataError;

use std::path::Path;

/// The one dispatch from a dataset's source to its loader, above the loaders.
impl Dataset {
    /// Loads a dataset. Every failure names the file and what is wrong with it. Image
    /// folders are resized to MNIST's shape; [`Dataset::load_for`] chooses.
    pub fn load(source: &DatasetSource) -> Result<Dataset, DataError> {
        Self::load_for(source, MNIST_SHAPE)
    }

    /// Loads a dataset for a network taking `input` (channels, height, width): image
    /// folders are turned to that shape; the other formats have their own.
    pub fn load_for(source: &DatasetSource, input: [usize; 3]) -> Result<Dataset, DataError> {
        match source {
            DatasetSource::BuiltIn => Self::builtin(),
            DatasetSource::FashionMnist => {
                let mut d = Self::from_folder(Path::new(FASHION_MNIST_DIR))?;
                d.name = "Fashion-MNIST".into();
                Ok(d)
            }
            // MNIST-format files, else CIFAR-10 binaries, else image folders
            DatasetSource::Folder(dir) => {
                if dataset::find(dir, "train-images-idx3-ubyte").is_ok() {
                    Self::from_folder(dir)
                } else if cifar::is_cifar(dir) {
                    cifar::load_cifar(dir)
                } else if images::is_image_folder(dir) {
                    images::load_image_folder(dir, input)
                } else {
                    Err(DataError::NoDataset { dir: dir.clone() })
                }
            }
        }
    }
}
