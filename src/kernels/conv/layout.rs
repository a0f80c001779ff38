//! Which of the three ways a convolution's products read the images suits a geometry, and
//! what each way asks of the weight: the choice made once per call, the same for its
//! forward and backward pass.

use std::borrow::Cow;

use super::geometry::ConvGeometry;
use super::rows;
use super::shifted::Grid;

/// How a convolution's products read the images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// Through a receptive-field buffer per group of images.
    Fields(Fields),
    /// No field buffer: `kh` products per image over windows read in place from the
    /// zero-padded channels-last image (stride 1 only).
    Shifted,
}

/// How a group's receptive fields are laid out for its gemms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fields {
    /// `col[K, width]`, built one output row per copy from the NCHW image.
    Columns,
    /// `rows[width, K]`, built one kernel-row window (`kw * c_in` values) per copy from the
    /// image turned channels-last.
    Rows,
}

impl Layout {
    /// Rows once a window's contiguous run is long enough that its copies beat copying
    /// whole output rows, and the products then skip repacking the large operand; columns
    /// for narrow windows (a first layer's single channel), where rows would mean many tiny
    /// copies and a thin output panel. Wide windows at stride 1 are read in place
    /// (shifted) instead of copied as rows, unless the dropped columns (`kw - 1` per output
    /// row) cost more than the copies save: measured on ResNet-20's 3x3 layers, in place
    /// wins at 28 pixels wide (30 computed per 28), loses at 14 (16 per 14).
    pub fn of(g: &ConvGeometry) -> Self {
        if g.kw * g.c_in < ROW_LAYOUT_MIN_RUN {
            Layout::Fields(Fields::Columns)
        } else if g.stride_h == 1 && g.stride_w == 1 && Grid::of(g).waste(g) <= SHIFTED_MAX_WASTE {
            Layout::Shifted
        } else {
            Layout::Fields(Fields::Rows)
        }
    }
}

impl Fields {
    /// The weight `[c_out, K]` in the fields' tap order.
    pub fn weight<'w>(self, g: &ConvGeometry, w: &'w [f32]) -> Cow<'w, [f32]> {
        match self {
            Fields::Columns => Cow::Borrowed(w),
            Fields::Rows => Cow::Owned(rows::channels_last_weight(g, w)),
        }
    }
}

/// The most grid columns per output column for which [`Layout::Shifted`] is used.
const SHIFTED_MAX_WASTE: f64 = 1.1;

/// Shortest window run (`kw * c_in` values) for which [`Fields::Rows`] is used.
const ROW_LAYOUT_MIN_RUN: usize = 32;

/// Images in one receptive-field buffer: each gemm covers that many images, so the weight
/// is packed once per group instead of once per image.
pub(super) const IMAGES_PER_GEMM: usize = 4;
