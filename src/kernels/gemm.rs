//! The one place the kernels call the gemm crate: single-threaded f32 products with
//! arbitrary row and column strides (callers split work across threads themselves).

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]` on raw pointers; `dst` is row-major with row
/// stride `dst_rs`, the operands have the given `(row, column)` strides.
///
/// # Safety
/// Every element the product reads or writes must lie inside its allocation, and `dst`
/// must not overlap `lhs` or `rhs` nor be written by anyone else meanwhile.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn matmul_raw(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const f32,
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: *const f32,
    (rhs_rs, rhs_cs): (usize, usize),
) {
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
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            ::gemm::Parallelism::None,
        );
    }
}

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]` on slices, `dst` row-major and dense, each
/// operand given by its row and column strides.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) {
    matmul_into(
        m,
        n,
        k,
        (dst, n),
        accumulate,
        (lhs, lhs_strides),
        (rhs, rhs_strides),
    )
}

/// [`matmul`] into a row-major `dst` whose rows are `dst.1` apart (a block of columns of a
/// wider matrix), operands given as `(values, (row stride, column stride))`.
pub(super) fn matmul_into(
    m: usize,
    n: usize,
    k: usize,
    (dst, dst_rs): (&mut [f32], usize),
    accumulate: bool,
    (lhs, lhs_strides): (&[f32], (usize, usize)),
    (rhs, rhs_strides): (&[f32], (usize, usize)),
) {
    let ((lhs_rs, lhs_cs), (rhs_rs, rhs_cs)) = (lhs_strides, rhs_strides);
    assert!(dst_rs >= n, "matmul: destination rows overlap");
    assert!(
        m == 0 || n == 0 || dst.len() >= (m - 1) * dst_rs + n,
        "matmul: destination too small"
    );
    assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(n == 0 || k == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the asserts above keep every index gemm touches inside the three slices, and
    // `dst` does not alias the inputs (it is borrowed mutably).
    unsafe {
        matmul_raw(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_rs,
            accumulate,
            lhs.as_ptr(),
            lhs_strides,
            rhs.as_ptr(),
            rhs_strides,
        )
    }
}
