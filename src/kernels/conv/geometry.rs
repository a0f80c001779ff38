//! A convolution's shapes, and where its windows fall on the image: the one definition of
//! its output size, of which taps read padding, and of which input pixel a tap reads, that
//! every layout's copies share.

/// A convolution's zeros on each side and its steps, `[height, width]` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpacing {
    pub padding: [usize; 2],
    pub stride: [usize; 2],
}

/// The shapes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub c_in: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub pad_h: usize,
    pub pad_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
}

/// The output length of one axis: `(input + 2 pad - kernel) / stride + 1`, none when the
/// kernel does not fit.
pub fn out_len(input: usize, pad: usize, kernel: usize, stride: usize) -> usize {
    (input + 2 * pad)
        .checked_sub(kernel)
        .map_or(0, |room| room / stride.max(1) + 1)
}

impl ConvGeometry {
    /// Output rows.
    pub fn out_h(&self) -> usize {
        out_len(self.in_h, self.pad_h, self.kh, self.stride_h)
    }

    /// Output columns.
    pub fn out_w(&self) -> usize {
        out_len(self.in_w, self.pad_w, self.kw, self.stride_w)
    }

    /// Receptive-field length `K`: one value per (input channel, kernel row, kernel column).
    pub fn col_rows(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Output pixels per channel.
    pub fn out_pixels(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// Values of one input image, `[c_in, in_h, in_w]`.
    pub(super) fn in_image(&self) -> usize {
        self.c_in * self.in_h * self.in_w
    }

    /// Values of one output image, `[c_out, out_h, out_w]`.
    pub(super) fn out_image(&self) -> usize {
        self.c_out * self.out_pixels()
    }

    /// The output columns `ox` whose input column `ox * stride_w + kj - pad_w` lies inside
    /// the image.
    pub(super) fn valid_columns(&self, kj: usize) -> (usize, usize) {
        let s = self.stride_w.max(1);
        let lo = self.pad_w.saturating_sub(kj).div_ceil(s);
        let hi = (self.in_w + self.pad_w)
            .saturating_sub(kj)
            .div_ceil(s)
            .min(self.out_w());
        (lo, hi.max(lo))
    }

    /// The kernel columns `kj` whose input column `ox * stride_w + kj - pad_w` lies inside
    /// the image.
    pub(super) fn valid_taps(&self, ox: usize) -> (usize, usize) {
        let left = ox * self.stride_w;
        let lo = self.pad_w.saturating_sub(left);
        let hi = (self.in_w + self.pad_w).saturating_sub(left).min(self.kw);
        (lo, hi.max(lo))
    }

    /// The input row a kernel row reads for output row `oy`, if it is not padding.
    pub(super) fn input_row(&self, oy: usize, ki: usize) -> Option<usize> {
        (oy * self.stride_h + ki)
            .checked_sub(self.pad_h)
            .filter(|&iy| iy < self.in_h)
    }

    /// The input column output column `ox` reads through kernel column `kj` (which must be
    /// one of [`ConvGeometry::valid_taps`]).
    pub(super) fn input_column(&self, ox: usize, kj: usize) -> usize {
        ox * self.stride_w + kj - self.pad_w
    }
}
