//! What each job of the backward pass sums over its run of images, and how two such sums
//! are added: the jobs' sums are added in order, so the gradients do not depend on which
//! thread ran what.

use super::geometry::ConvGeometry;

/// The weight gradient (in the layout's tap order; transposed, `[K, c_out]`, in the shifted
/// layout) and the bias gradient, summed over some images.
pub(super) struct GradientSums {
    pub dw: Vec<f32>,
    pub db: Vec<f32>,
}

impl GradientSums {
    /// Nothing summed yet.
    pub fn zeros(g: &ConvGeometry) -> Self {
        Self {
            dw: vec![0.0f32; g.c_out * g.col_rows()],
            db: vec![0.0f32; g.c_out],
        }
    }

    /// The sums over both runs of images: `other` added to `self`, element by element.
    pub fn add(mut self, other: Self) -> Self {
        self.dw.iter_mut().zip(&other.dw).for_each(|(a, b)| *a += b);
        self.db.iter_mut().zip(&other.db).for_each(|(a, b)| *a += b);
        self
    }
}
