//! The one place the kernels call the gemm crate: single-threaded f32 products with
//! arbitrary row and column strides (callers split work across threads themselves).

/// The sizes of one product `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]`: gemm's three
/// dimensions named once, so a call cannot swap them with the strides beside them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct GemmShape {
    /// Rows of `dst` and `lhs`.
    pub m: usize,
    /// Columns of `dst` and `rhs`.
    pub n: usize,
    /// The summed dimension: columns of `lhs`, rows of `rhs`.
    pub k: usize,
}

/// Where a matrix's elements lie in its buffer: `(i, j)` at `i * row + j * col`. A
/// transpose, or windows that overlap in a channels-last image, are read in place through
/// their strides instead of copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Strides {
    row: usize,
    col: usize,
}

/// An operand of a product: its values, read in place through its strides.
#[derive(Clone, Copy, Debug)]
pub(super) struct Operand<'a> {
    values: &'a [f32],
    strides: Strides,
}

impl<'a> Operand<'a> {
    /// A row-major matrix whose rows start `row_stride` values apart (they may overlap,
    /// as the windows of neighbouring pixels do).
    pub const fn row_major(values: &'a [f32], row_stride: usize) -> Self {
        let strides = Strides {
            row: row_stride,
            col: 1,
        };
        Self { values, strides }
    }

    /// The transpose of a row-major matrix whose rows start `row_stride` values apart,
    /// read in place.
    pub const fn transposed(values: &'a [f32], row_stride: usize) -> Self {
        let strides = Strides {
            row: 1,
            col: row_stride,
        };
        Self { values, strides }
    }

    /// Whether every element of a `[rows, cols]` matrix lies inside the values.
    fn covers(&self, rows: usize, cols: usize) -> bool {
        let Strides { row, col } = self.strides;
        rows == 0 || cols == 0 || self.values.len() > (rows - 1) * row + (cols - 1) * col
    }

    /// The columns from `first` on, for a product over a block of them: no values when
    /// none lie there (a product with no summed dimension reads none).
    pub fn columns_from(self, first: usize) -> Self {
        let values = self.values.get(first * self.strides.col..).unwrap_or(&[]);
        Self { values, ..self }
    }
}

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]` with `dst` a raw pointer, row-major with row
/// stride `dst_rs`.
///
/// # Safety
/// Every element of `dst` the product writes must lie inside its allocation, the operands
/// must cover `[m, k]` and `[k, n]` (see [`Operand::covers`]), and `dst` must not overlap
/// `lhs` or `rhs` nor be written by anyone else meanwhile.
pub(super) unsafe fn matmul_raw(
    shape: GemmShape,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: Operand<'_>,
    rhs: Operand<'_>,
) {
    let GemmShape { m, n, k } = shape;
    // SAFETY: forwarded from the caller.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.values.as_ptr(),
            lhs.strides.col as isize,
            lhs.strides.row as isize,
            rhs.values.as_ptr(),
            rhs.strides.col as isize,
            rhs.strides.row as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            ::gemm::Parallelism::None,
        );
    }
}

/// Panics unless `lhs` covers `[m, k]` and `rhs` covers `[k, n]`: what keeps every read
/// of a product inside its operands.
pub(super) fn assert_operands(shape: GemmShape, lhs: &Operand<'_>, rhs: &Operand<'_>) {
    assert!(
        lhs.covers(shape.m, shape.k),
        "matmul: left operand too small"
    );
    assert!(
        rhs.covers(shape.k, shape.n),
        "matmul: right operand too small"
    );
}

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]` on slices, `dst` row-major and dense.
pub(super) fn matmul(
    shape: GemmShape,
    dst: &mut [f32],
    accumulate: bool,
    lhs: Operand<'_>,
    rhs: Operand<'_>,
) {
    matmul_into(shape, dst, shape.n, accumulate, lhs, rhs)
}

/// [`matmul`] into a row-major `dst` whose rows are `dst_rs` apart (a block of columns of
/// a wider matrix).
pub(super) fn matmul_into(
    shape: GemmShape,
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: Operand<'_>,
    rhs: Operand<'_>,
) {
    let GemmShape { m, n, .. } = shape;
    assert!(dst_rs >= n, "matmul: destination rows overlap");
    assert!(
        m == 0 || n == 0 || dst.len() >= (m - 1) * dst_rs + n,
        "matmul: destination too small"
    );
    assert_operands(shape, &lhs, &rhs);
    // SAFETY: the asserts above keep every index gemm touches inside the three slices, and
    // `dst` does not alias the inputs (it is borrowed mutably).
    unsafe { matmul_raw(shape, dst.as_mut_ptr(), dst_rs, accumulate, lhs, rhs) }
}
