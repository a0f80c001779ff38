//! Where a session's batches come from. Locally each batch is gathered from the host's copy
//! of the dataset and uploaded. On a served device every upload crosses the network, and a
//! batch of 128 digits is 400 KB a step: there the session uploads both splits once, and
//! each batch is picked on the server by its indices (burn's `select`, 1 KB a step).

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::{Dataset, EpochOrder, Split};
use crate::plan::ExperimentPlan;

/// `[n, c, h, w]` images in `[0, 1]` and `[n]` class indices.
pub(super) type Batch = (Tensor<4>, Tensor<1, Int>);

/// One split, whole, on the device.
struct DeviceSplit {
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
struct DeviceData {
    train: DeviceSplit,
    test: DeviceSplit,
}

impl DeviceData {
    /// Uploads the dataset to `device` (the autodiff one: training batches need it, and an
    /// evaluation takes its batches off it).
    fn upload(train: &Split, test: &Split, shape: [usize; 3], device: &Device) -> Self {
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

/// A session's data and the order it trains in: which examples each step takes, and
/// those examples (or the test split's) as tensors on the session's device.
pub(super) struct Batches {
    data: Arc<Dataset>,
    /// The session's autodiff device.
    device: Device,
    /// The dataset on a remote device, uploaded once; `None` locally.
    on_device: Option<DeviceData>,
    order: EpochOrder,
    /// The order of the current step's epoch.
    epoch_order: Vec<usize>,
    steps_per_epoch: u64,
}

impl Batches {
    /// The first epoch's order of `data` in the plan's batches, shuffled by its seed; on a
    /// `remote` device both splits are uploaded once.
    pub(super) fn new(
        data: Arc<Dataset>,
        device: &Device,
        remote: bool,
        plan: &ExperimentPlan,
    ) -> Self {
        let order = EpochOrder::new(plan.training.seed, data.train.len(), plan.training.batch);
        let epoch_order = order.epoch(0);
        let on_device =
            remote.then(|| DeviceData::upload(&data.train, &data.test, data.shape, device));
        Self {
            steps_per_epoch: plan.steps_per_epoch(data.train.len()),
            data,
            device: device.clone(),
            on_device,
            order,
            epoch_order,
        }
    }

    pub(super) fn data(&self) -> &Arc<Dataset> {
        &self.data
    }

    /// The autodiff device the batches are made on.
    pub(super) fn device(&self) -> &Device {
        &self.device
    }

    pub(super) fn steps_per_epoch(&self) -> u64 {
        self.steps_per_epoch
    }

    /// The training examples of `step`, which must fall in the current epoch.
    pub(super) fn indices(&self, step: u64) -> Vec<usize> {
        let batch_in_epoch = (step % self.steps_per_epoch) as usize;
        self.order.batch(&self.epoch_order, batch_in_epoch).to_vec()
    }

    /// Makes the epoch of `step` the current one.
    pub(super) fn start_epoch_of(&mut self, step: u64) {
        self.epoch_order = self.order.epoch(step / self.steps_per_epoch);
    }

    /// Training examples `indices`, on the autodiff device.
    pub(super) fn train(&self, indices: &[usize]) -> Batch {
        match &self.on_device {
            Some(data) => data.train.pick(indices),
            None => host_batch(&self.data.train, self.data.shape, indices, &self.device),
        }
    }

    /// Training examples `indices`, on the device without autodiff.
    pub(super) fn train_untracked(&self, indices: &[usize]) -> Batch {
        let on_device = self.on_device.as_ref().map(|d| &d.train);
        self.untracked(on_device, &self.data.train, indices)
    }

    /// Test examples `indices`, on the device without autodiff.
    pub(super) fn test(&self, indices: &[usize]) -> Batch {
        let on_device = self.on_device.as_ref().map(|d| &d.test);
        self.untracked(on_device, &self.data.test, indices)
    }

    /// `indices` of a split, from its copy on the device when there is one, else from the
    /// host's, on the device without autodiff.
    fn untracked(&self, on_device: Option<&DeviceSplit>, host: &Split, indices: &[usize]) -> Batch {
        match on_device {
            Some(split) => {
                let (images, labels) = split.pick(indices);
                (images.inner(), labels.inner())
            }
            None => host_batch(host, self.data.shape, indices, &self.device.clone().inner()),
        }
    }
}
