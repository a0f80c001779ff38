//! What a server says it serves, and the tensor it says it in: the one custom operation
//! both halves of the remote kernels and the flex host answer alike.

/// What a server says it serves.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// `flex` or `wgpu`.
    pub backend: String,
    /// The device's name, such as `NVIDIA H200 (Vulkan)` or `CPU (flex)`.
    pub device: String,
    /// Whether the server runs this project's kernels.
    pub kernels: bool,
}

/// Elements of the tensor a description travels in: its UTF-8 bytes, then zeros.
pub(super) const DESCRIPTION_LEN: usize = 256;
/// Marks a server with the kernels; a later, different set of kernels gets a new mark.
const KERNELS_MARK: &str = "kernels-1";

impl Description {
    /// The text, one byte per element of a `[DESCRIPTION_LEN]` tensor, the device's name
    /// cut to fit.
    pub(super) fn encode(&self) -> Vec<f32> {
        let mark = if self.kernels { KERNELS_MARK } else { "-" };
        let room = (DESCRIPTION_LEN - 3).saturating_sub(self.backend.len() + mark.len());
        let device = &self.device[..self.device.floor_char_boundary(room)];
        let text = format!("{}\t{device}\t{mark}", self.backend);
        let mut values: Vec<f32> = text.bytes().map(f32::from).collect();
        values.resize(DESCRIPTION_LEN, 0.0);
        values
    }

    pub(super) fn decode(values: &[f32]) -> Option<Self> {
        let bytes: Vec<u8> = values
            .iter()
            .take_while(|v| **v != 0.0)
            .map(|v| *v as u8)
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        let mut parts = text.split('\t');
        let (backend, device, mark) = (parts.next()?, parts.next()?, parts.next()?);
        Some(Self {
            backend: backend.to_string(),
            device: device.to_string(),
            kernels: mark == KERNELS_MARK,
        })
    }

    /// This machine's flex device.
    pub(super) fn flex() -> Self {
        Self {
            backend: "flex".into(),
            device: crate::kernels::FLEX_DEVICE.into(),
            kernels: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_survives_its_tensor() {
        for kernels in [true, false] {
            let d = Description {
                backend: "wgpu".into(),
                device: "NVIDIA H200 (Vulkan)".into(),
                kernels,
            };
            let values = d.encode();
            assert_eq!(values.len(), DESCRIPTION_LEN);
            assert_eq!(Description::decode(&values), Some(d));
        }
    }

    #[test]
    fn a_long_device_name_is_cut_to_fit_and_still_reads() {
        let d = Description {
            backend: "wgpu".into(),
            device: "x".repeat(400),
            kernels: true,
        };
        let read = Description::decode(&d.encode()).unwrap();
        assert!(read.kernels);
        assert_eq!(read.backend, "wgpu");
        assert!(read.device.len() < 256 && d.device.starts_with(&read.device));
    }
}
