//! The geometry of a prunable weight, in PyTorch layout, as the pruning rules see it.

use serde::{Deserialize, Serialize};

/// What kind of layer a weight belongs to; decides the input axis and what a "channel" is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Linear,
    Conv2d,
}

/// Shape of a prunable weight in PyTorch layout: Linear `[out, in]` (with `kh = kw = 1`),
/// Conv2d `[out, in, kh, kw]`.
///
/// Every mask in `prune` is a flat `Vec<u8>` in this layout (row-major), so the same index
/// addresses a weight, its score and its mask entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerShape {
    pub kind: LayerKind,
    /// Output features (Linear) or filters (Conv2d).
    pub out: usize,
    /// Input features (Linear) or input channels (Conv2d): the GEMM reduction axis.
    pub inp: usize,
    pub kh: usize,
    pub kw: usize,
}

impl LayerShape {
    pub const fn linear(out: usize, inp: usize) -> Self {
        Self {
            kind: LayerKind::Linear,
            out,
            inp,
            kh: 1,
            kw: 1,
        }
    }

    pub const fn conv2d(out: usize, inp: usize, kh: usize, kw: usize) -> Self {
        Self {
            kind: LayerKind::Conv2d,
            out,
            inp,
            kh,
            kw,
        }
    }

    /// Number of weights.
    pub fn numel(&self) -> usize {
        self.out * self.row_len()
    }

    /// Length of one output row of the 2-D view `[out, in * kh * kw]`.
    pub fn row_len(&self) -> usize {
        self.inp * self.kernel_len()
    }

    /// Weights per kernel (`kh * kw`, 1 for Linear).
    pub fn kernel_len(&self) -> usize {
        self.kh * self.kw
    }

    /// Dimensions in PyTorch layout.
    pub fn dims(&self) -> Vec<usize> {
        match self.kind {
            LayerKind::Linear => vec![self.out, self.inp],
            LayerKind::Conv2d => vec![self.out, self.inp, self.kh, self.kw],
        }
    }

    /// Flat index of weight `(o, i, y, x)`.
    pub fn index(&self, o: usize, i: usize, y: usize, x: usize) -> usize {
        ((o * self.inp + i) * self.kh + y) * self.kw + x
    }
}

impl std::fmt::Display for LayerShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dims: Vec<String> = self.dims().iter().map(|d| d.to_string()).collect();
        write!(f, "[{}]", dims.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_index_is_pytorch_row_major() {
        let s = LayerShape::conv2d(4, 3, 2, 5);
        assert_eq!(s.numel(), 4 * 3 * 2 * 5);
        assert_eq!(s.index(0, 0, 0, 1), 1);
        assert_eq!(s.index(0, 0, 1, 0), 5);
        assert_eq!(s.index(0, 1, 0, 0), 10);
        assert_eq!(s.index(1, 0, 0, 0), 30);
        assert_eq!(s.index(3, 2, 1, 4), s.numel() - 1);
        assert_eq!(s.to_string(), "[4, 3, 2, 5]");
    }

    #[test]
    fn linear_has_unit_kernel() {
        let s = LayerShape::linear(300, 784);
        assert_eq!(s.dims(), vec![300, 784]);
        assert_eq!(s.row_len(), 784);
        assert_eq!(s.index(2, 5, 0, 0), 2 * 784 + 5);
    }
}
