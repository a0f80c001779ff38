//! The buffers each thread keeps between calls (receptive fields, their gradient, a panel
//! of outputs, a channels-last image), a few geometries at a time, so a training step
//! allocates and zeroes no scratch memory; and the filling of the field buffer from a
//! group of images.

use super::geometry::ConvGeometry;
use super::layout::{Fields, Layout};
use super::shifted::{Buffers, Grid};
use super::{columns, rows};

/// One thread's buffers for one geometry and group width (`width` output pixels).
pub(super) struct Scratch {
    key: (ConvGeometry, usize),
    /// The receptive fields (`K * width`, in the geometry's layout), whose padding positions
    /// stay zero between calls; for [`Layout::Shifted`], one zero-padded channels-last image.
    pub fields: Vec<f32>,
    /// The receptive fields' gradient, same shape; for [`Layout::Shifted`], the product of
    /// one image (its output, or its input gradient, on the padded grid).
    pub dfields: Vec<f32>,
    /// `c_out * width`: the output gradient `[c_out, width]`, or the product before it is
    /// written out as the output; for [`Layout::Shifted`], one image's output gradient on
    /// the padded grid behind its zero frame.
    pub panel: Vec<f32>,
    /// One image channels-last (row layout only).
    pub hwc: Vec<f32>,
    /// False the first time the buffers are handed out (padding not yet written).
    padding_zeroed: bool,
}

impl Scratch {
    /// Zeroed buffers of the sizes `g`'s layout needs for `width` output pixels.
    fn new(key: (ConvGeometry, usize), g: &ConvGeometry, width: usize) -> Self {
        let zeros = |n: usize| vec![0.0f32; n];
        let (fields, dfields, panel, hwc) = match Layout::of(g) {
            Layout::Shifted => {
                let grid = Grid::of(g);
                let product = grid.output_len(g).max(grid.input_gradient_len(g));
                (
                    zeros(grid.image_len(g)),
                    zeros(product),
                    zeros(grid.framed_gradient_len(g)),
                    Vec::new(),
                )
            }
            Layout::Fields(fields) => (
                zeros(g.col_rows() * width),
                zeros(g.col_rows() * width),
                zeros(g.c_out * width),
                if fields == Fields::Rows {
                    zeros(g.in_image())
                } else {
                    Vec::new()
                },
            ),
        };
        Self {
            key,
            fields,
            dfields,
            panel,
            hwc,
            padding_zeroed: false,
        }
    }

    /// The shifted layout's buffers for one image.
    pub fn shifted(&mut self) -> Buffers<'_> {
        Buffers {
            image: &mut self.fields,
            product: &mut self.dfields,
            gradient: &mut self.panel,
        }
    }

    /// Fills the field buffer with the receptive fields of a group of images (`[n, c_in,
    /// in_h, in_w]`), `width` output pixels in all.
    pub fn fill_fields(&mut self, g: &ConvGeometry, layout: Fields, x_group: &[f32], width: usize) {
        let p = g.out_pixels();
        let write_padding = !self.padding_zeroed;
        for (j, image) in x_group.chunks(g.in_image()).enumerate() {
            match layout {
                Fields::Columns => {
                    columns::im2col(g, image, &mut self.fields, width, j * p, write_padding)
                }
                Fields::Rows => {
                    rows::to_channels_last(g, image, &mut self.hwc);
                    rows::im2row(g, &self.hwc, &mut self.fields, j * p, write_padding);
                }
            }
        }
    }
}

/// Buffers kept per thread across calls, a few geometries at a time (one per layer), so a
/// training step allocates and zeroes no scratch memory.
const SCRATCH_KEPT: usize = 8;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<Scratch>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's buffers for `g` and `width` output pixels.
pub(super) fn with_scratch<R>(
    g: &ConvGeometry,
    width: usize,
    f: impl FnOnce(&mut Scratch) -> R,
) -> R {
    let key = (ConvGeometry { batch: 0, ..*g }, width);
    SCRATCH.with(|cell| {
        let mut kept = cell.borrow_mut();
        let index = match kept.iter().position(|s| s.key == key) {
            Some(i) => i,
            None => {
                if kept.len() == SCRATCH_KEPT {
                    kept.remove(0);
                }
                kept.push(Scratch::new(key, g, width));
                kept.len() - 1
            }
        };
        let scratch = &mut kept[index];
        let result = f(scratch);
        scratch.padding_zeroed = true;
        result
    })
}
