//! Matrix transposition between channels-first and channels-last layouts, the copy every
//! convolution makes around its products. An element-by-element loop writes one value per
//! cache line it touches; here 8x8 tiles are transposed in AVX registers where the CPU has
//! them (eight loads, eight stores per 64 values), the edges as masked partial tiles.

/// `dst[j * dst_rs + i] = src[i * src_rs + j]` for `i < rows`, `j < cols`.
pub fn transpose(
    rows: usize,
    cols: usize,
    (src, src_rs): (&[f32], usize),
    (dst, dst_rs): (&mut [f32], usize),
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(src_rs >= cols && dst_rs >= rows, "transpose: rows overlap");
    assert!(
        src.len() >= (rows - 1) * src_rs + cols,
        "transpose: source too small"
    );
    assert!(
        dst.len() >= (cols - 1) * dst_rs + rows,
        "transpose: destination too small"
    );
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx") {
        // SAFETY: AVX is present, and the asserts above keep every tile inside both slices.
        unsafe { avx::transpose(rows, cols, src.as_ptr(), src_rs, dst.as_mut_ptr(), dst_rs) };
        return;
    }
    scalar(rows, cols, (src, src_rs), (dst, dst_rs));
}

/// [`transpose`] one value at a time, where AVX is missing.
fn scalar(
    rows: usize,
    cols: usize,
    (src, src_rs): (&[f32], usize),
    (dst, dst_rs): (&mut [f32], usize),
) {
    for i in 0..rows {
        for j in 0..cols {
            dst[j * dst_rs + i] = src[i * src_rs + j];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// [`super::transpose`] on raw pointers.
    ///
    /// # Safety
    /// AVX must be present, and both matrices must lie inside their allocations.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn transpose(
        rows: usize,
        cols: usize,
        src: *const f32,
        src_rs: usize,
        dst: *mut f32,
        dst_rs: usize,
    ) {
        // SAFETY: every tile lies inside the matrices (the caller's promise); partial tiles
        // read and write only their `r x c` values.
        unsafe {
            for i in (0..rows).step_by(8) {
                let r = (rows - i).min(8);
                for j in (0..cols).step_by(8) {
                    let c = (cols - j).min(8);
                    let (from, to) = (src.add(i * src_rs + j), dst.add(j * dst_rs + i));
                    if r == 8 && c == 8 {
                        tile(from, src_rs, to, dst_rs);
                    } else {
                        partial_tile(from, src_rs, to, dst_rs, r, c);
                    }
                }
            }
        }
    }

    /// The first `n` of eight lanes.
    #[target_feature(enable = "avx")]
    fn lanes(n: usize) -> __m256i {
        let n = n as i32;
        _mm256_setr_epi32(
            -((n > 0) as i32),
            -((n > 1) as i32),
            -((n > 2) as i32),
            -((n > 3) as i32),
            -((n > 4) as i32),
            -((n > 5) as i32),
            -((n > 6) as i32),
            -((n > 7) as i32),
        )
    }

    /// An `r x c` corner of a tile (`r, c <= 8`): masked loads of `c` values from `r` rows,
    /// zeros for the missing rows, and masked stores of `r` values to `c` rows.
    #[target_feature(enable = "avx")]
    unsafe fn partial_tile(
        src: *const f32,
        src_rs: usize,
        dst: *mut f32,
        dst_rs: usize,
        r: usize,
        c: usize,
    ) {
        let (load, store) = (lanes(c), lanes(r));
        let mut rows = [_mm256_setzero_ps(); 8];
        // SAFETY: only the `r x c` values inside both matrices are read and written.
        unsafe {
            for (k, row) in rows.iter_mut().enumerate().take(r) {
                *row = _mm256_maskload_ps(src.add(k * src_rs), load);
            }
            let mut out = [_mm256_setzero_ps(); 8];
            transpose8(&rows, &mut out);
            for (k, v) in out.iter().enumerate().take(c) {
                _mm256_maskstore_ps(dst.add(k * dst_rs), store, *v);
            }
        }
    }

    /// One 8x8 tile.
    #[target_feature(enable = "avx")]
    unsafe fn tile(src: *const f32, src_rs: usize, dst: *mut f32, dst_rs: usize) {
        // SAFETY: the tile's 8 rows of 8 values lie inside both matrices.
        unsafe {
            let row = |k: usize| src.add(k * src_rs);
            let rows = [
                _mm256_loadu_ps(row(0)),
                _mm256_loadu_ps(row(1)),
                _mm256_loadu_ps(row(2)),
                _mm256_loadu_ps(row(3)),
                _mm256_loadu_ps(row(4)),
                _mm256_loadu_ps(row(5)),
                _mm256_loadu_ps(row(6)),
                _mm256_loadu_ps(row(7)),
            ];
            let mut out = [_mm256_setzero_ps(); 8];
            transpose8(&rows, &mut out);
            for (k, v) in out.iter().enumerate() {
                _mm256_storeu_ps(dst.add(k * dst_rs), *v);
            }
        }
    }

    /// Eight rows of eight values as eight columns: pairs of rows interleaved, then
    /// quadruples, then the 128-bit halves exchanged.
    #[inline]
    #[target_feature(enable = "avx")]
    fn transpose8(r: &[__m256; 8], out: &mut [__m256; 8]) {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        *out = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape around the tile size, with strides wider than the matrices: the result
    /// is the definition's, and nothing outside the destination matrix is written.
    #[test]
    fn transposes_every_shape_and_leaves_the_rest_alone() {
        for rows in [1, 3, 8, 9, 16, 21] {
            for cols in [1, 5, 8, 12, 17, 24] {
                let (src_rs, dst_rs) = (cols + 3, rows + 2);
                let src: Vec<f32> = (0..rows * src_rs).map(|v| v as f32).collect();
                let mut dst = vec![-1.0f32; cols * dst_rs];
                transpose(rows, cols, (&src, src_rs), (&mut dst, dst_rs));
                let mut expected = vec![-1.0f32; cols * dst_rs];
                scalar(rows, cols, (&src, src_rs), (&mut expected, dst_rs));
                assert_eq!(dst, expected, "{rows}x{cols}");
                for j in 0..cols {
                    for i in 0..rows {
                        assert_eq!(dst[j * dst_rs + i], src[i * src_rs + j]);
                    }
                }
            }
        }
    }
}
