//! Where a session's batches come from. Locally each batch is gathered from the host's copy
//! of the dataset and uploaded. On a served device every upload crosses the network, and a
//! batch of 128 digits is 400 KB a step: there the session uploads both splits once, and
//! each batch is picked on the server by its indices (burn's `select`, 1 KB a step).

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::Session;
use crate::data::Split;

/// `[n, c, h, w]` images in `[0, 1]` and `[n]` class indices.
pub(super) type Batch = (Tensor<4>, Tensor<1, Int>);

/// One split, whole, on the device.
pub(super) struct DeviceSplit {
    images: Tensor<4>,
    labels: Tensor<1, Int>,
}

impl DeviceSplit {
    fn upload(split: &Split, shape: [usize; 3], device: &Device) -> Self {
        let all: Vec<usize> = (0..split.len()).collect();
        let (images, labels) = host_batch(split, shape, &all, device);
        Self { images, labels }
    }

    fn pick(&self, indices: &[usize]) -> Batch {
        let indices = Tensor::<1, Int>::from_data(
            TensorData::new(
                indices.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [indices.len()],
            ),
            &self.images.device(),
        );
        (
            self.images.clone().select(0, indices.clone()),
            self.labels.clone().select(0, indices),
        )
    }
}

/// Both splits on the device, for a remote session.
pub(super) struct DeviceData {
    train: DeviceSplit,
    test: DeviceSplit,
}

impl DeviceData {
    /// Uploads the dataset to `device` (the autodiff one: training batches need it, and an
    /// evaluation takes its batches off it).
    pub(super) fn upload(train: &Split, test: &Split, shape: [usize; 3], device: &Device) -> Self {
        Self {
            train: DeviceSplit::upload(train, shape, device),
            test: DeviceSplit::upload(test, shape, device),
        }
    }
}

/// Gathers `indices` of `split` on the host and uploads them.
fn host_batch(split: &Split, [c, h, w]: [usize; 3], indices: &[usize], device: &Device) -> Batch {
    let (x, y) = split.gather(indices);
    let n = indices.len();
    debug_assert_eq!(x.len(), n * c * h * w);
    let images = Tensor::<4>::from_data(TensorData::new(x, [n, c, h, w]), device);
    let labels = Tensor::<1, Int>::from_data(TensorData::new(y, [n]), device);
    (images, labels)
}

impl Session {
    /// Training examples `indices`, on the autodiff device.
    pub(super) fn train_batch(&self, indices: &[usize]) -> Batch {
        match &self.on_device {
            Some(data) => data.train.pick(indices),
            None => host_batch(&self.data.train, self.data.shape, indices, &self.device),
        }
    }

    /// Training examples `indices`, on the device without autodiff.
    pub(super) fn train_batch_untracked(&self, indices: &[usize]) -> Batch {
        let on_device = self.on_device.as_ref().map(|d| &d.train);
        self.untracked_batch(on_device, &self.data.train, indices)
    }

    /// Test examples `indices`, on the device without autodiff.
    pub(super) fn test_batch(&self, indices: &[usize]) -> Batch {
        let on_device = self.on_device.as_ref().map(|d| &d.test);
        self.untracked_batch(on_device, &self.data.test, indices)
    }

    /// `indices` of a split, from its copy on the device when there is one, else from the
    /// host's, on the device without autodiff.
    fn untracked_batch(
        &self,
        on_device: Option<&DeviceSplit>,
        host: &Split,
        indices: &[usize],
    ) -> Batch {
        match on_device {
            Some(split) => {
                let (images, labels) = split.pick(indices);
                (images.inner(), labels.inner())
            }
            None => host_batch(host, self.data.shape, indices, &self.device.clone().inner()),
        }
    }
}
