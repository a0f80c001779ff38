//! Masks written and read back through each encoding.

use super::format::{MaskEncoding, SparseWeight};
use super::read::decode_mask;
use super::write::encode_mask;
use crate::prune::LayerShape;

#[test]
fn varints_round_trip_through_indices() {
    let shape = LayerShape::linear(3, 100);
    let mut mask = vec![0u8; 300];
    for i in [0, 1, 7, 150, 299] {
        mask[i] = 1;
    }
    let values: Vec<f32> = (0..300).map(|i| i as f32).collect();
    let w = SparseWeight {
        name: "fc",
        shape,
        values: &values,
        mask: &mask,
        nm: None,
    };
    let (enc, bytes, order) = encode_mask(&w);
    assert_eq!(enc, MaskEncoding::Indices);
    assert_eq!(decode_mask(&enc, &bytes, &shape, 5).unwrap(), order);
}

#[test]
fn two_of_four_uses_two_bits_per_kept_weight() {
    let shape = LayerShape::conv2d(2, 8, 1, 2);
    let values: Vec<f32> = (0..32).map(|i| 1.0 + i as f32).collect();
    let mask = crate::prune::nm_mask(&values, &shape, 2, 4, crate::prune::Criterion::Magnitude, 0);
    let w = SparseWeight {
        name: "conv",
        shape,
        values: &values,
        mask: &mask,
        nm: Some((2, 4)),
    };
    let (enc, bytes, order) = encode_mask(&w);
    assert_eq!(enc, MaskEncoding::Nm { n: 2, m: 4 });
    assert_eq!(bytes.len(), 16 * 2 / 8);
    assert_eq!(decode_mask(&enc, &bytes, &shape, 16).unwrap(), order);
    let mut sorted = order.clone();
    sorted.sort();
    let expected: Vec<usize> = (0..32).filter(|&i| mask[i] == 1).collect();
    assert_eq!(sorted, expected);
}
