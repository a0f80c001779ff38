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
