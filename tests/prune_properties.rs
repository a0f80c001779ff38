//! Properties of the pruning rules, checked on random weights, shapes and targets.

use proptest::prelude::*;
use sparsity_explorer::prune::{
    BlockScore, Criterion, GlobalLayer, Granularity, LayerShape, StepSchedule, global_masks,
    keep_count, layer_mask,
};

fn weights(n: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-2.0f32..2.0, n)
}

fn criterion() -> impl Strategy<Value = Criterion> {
    prop_oneof![Just(Criterion::Magnitude), Just(Criterion::Random)]
}

/// A Linear or Conv2d shape of modest size.
fn shape() -> impl Strategy<Value = LayerShape> {
    prop_oneof![
        (1usize..24, 1usize..40).prop_map(|(o, i)| LayerShape::linear(o, i)),
        (1usize..8, 1usize..9, 1usize..4, 1usize..4)
            .prop_map(|(o, i, kh, kw)| LayerShape::conv2d(o, i, kh, kw)),
    ]
}

fn shape_and_weights() -> impl Strategy<Value = (LayerShape, Vec<f32>)> {
    shape().prop_flat_map(|s| (Just(s), weights(s.numel())))
}

proptest! {
    #[test]
    fn unstructured_keeps_exactly_the_count_and_the_largest(
        (shape, w) in shape_and_weights(),
        target in 0.0f64..0.999,
        seed in any::<u64>(),
    ) {
        let m = layer_mask(&w, &shape, Granularity::Unstructured, Criterion::Magnitude, target, seed).unwrap();
        let kept = m.iter().filter(|&&k| k == 1).count();
        prop_assert_eq!(kept, keep_count(w.len(), target));
        let min_kept = w.iter().zip(&m).filter(|(_, k)| **k == 1).map(|(x, _)| x.abs()).fold(f32::INFINITY, f32::min);
        let max_pruned = w.iter().zip(&m).filter(|(_, k)| **k == 0).map(|(x, _)| x.abs()).fold(0.0, f32::max);
        prop_assert!(max_pruned <= min_kept);
    }

    #[test]
    fn wanda_keeps_exactly_the_count_of_every_row_and_its_largest(
        (shape, w) in shape_and_weights(),
        target in 0.0f64..0.999,
    ) {
        let m = layer_mask(&w, &shape, Granularity::Unstructured, Criterion::Wanda, target, 0).unwrap();
        let row = shape.row_len();
        for (r, (ws, ms)) in w.chunks(row).zip(m.chunks(row)).enumerate() {
            prop_assert_eq!(ms.iter().filter(|&&k| k == 1).count(), keep_count(row, target), "row {}", r);
            let min_kept = ws.iter().zip(ms).filter(|(_, k)| **k == 1).map(|(x, _)| x.abs()).fold(f32::INFINITY, f32::min);
            let max_pruned = ws.iter().zip(ms).filter(|(_, k)| **k == 0).map(|(x, _)| x.abs()).fold(0.0, f32::max);
            prop_assert!(max_pruned <= min_kept, "row {}", r);
        }
    }

    #[test]
    fn random_criterion_keeps_exactly_the_count_and_is_reproducible(
        (shape, w) in shape_and_weights(),
        target in 0.0f64..0.999,
        seed in any::<u64>(),
    ) {
        let a = layer_mask(&w, &shape, Granularity::Unstructured, Criterion::Random, target, seed).unwrap();
        let b = layer_mask(&w, &shape, Granularity::Unstructured, Criterion::Random, target, seed).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.iter().filter(|&&k| k == 1).count(), keep_count(w.len(), target));
    }

    #[test]
    fn every_nm_group_has_exactly_m_minus_n_zeros(
        m in 2usize..9,
        n_frac in 0.0f64..1.0,
        out in 1usize..10,
        groups in 1usize..6,
        k in 1usize..4,
        conv in any::<bool>(),
        crit in criterion(),
        seed in any::<u64>(),
        w_seed in any::<u64>(),
    ) {
        let n = 1 + ((m - 1) as f64 * n_frac) as usize;
        let n = n.min(m - 1);
        let shape = if conv { LayerShape::conv2d(out, groups * m, k, k) } else { LayerShape::linear(out, groups * m) };
        let w: Vec<f32> = (0..shape.numel()).map(|i| (sparsity_explorer::prune::random_score(w_seed, i as u64) as f32) - 0.5).collect();
        let mask = layer_mask(&w, &shape, Granularity::NOfM { n, m }, crit, 0.5, seed).unwrap();
        for o in 0..shape.out {
            for y in 0..shape.kh {
                for x in 0..shape.kw {
                    for g in 0..groups {
                        let idx: Vec<usize> = (g * m..(g + 1) * m).map(|i| shape.index(o, i, y, x)).collect();
                        let zeros = idx.iter().filter(|&&i| mask[i] == 0).count();
                        prop_assert_eq!(zeros, m - n);
                        if crit == Criterion::Magnitude {
                            let min_kept = idx.iter().filter(|&&i| mask[i] == 1).map(|&i| w[i].abs()).fold(f32::INFINITY, f32::min);
                            let max_pruned = idx.iter().filter(|&&i| mask[i] == 0).map(|&i| w[i].abs()).fold(0.0, f32::max);
                            prop_assert!(max_pruned <= min_kept);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn block_masks_are_constant_on_every_block_and_count_blocks_exactly(
        rows in 1usize..5, cols in 1usize..5,
        out_blocks in 1usize..6, in_blocks in 1usize..6,
        max in any::<bool>(),
        target in 0.0f64..0.999,
        crit in criterion(),
        w_seed in any::<u64>(),
    ) {
        let shape = LayerShape::linear(rows * out_blocks, cols * in_blocks);
        let w: Vec<f32> = (0..shape.numel()).map(|i| sparsity_explorer::prune::random_score(w_seed, i as u64) as f32).collect();
        let g = Granularity::Block { rows, cols, score: if max { BlockScore::Max } else { BlockScore::Mean } };
        let mask = layer_mask(&w, &shape, g, crit, target, 7).unwrap();
        let mut kept_blocks = 0;
        for br in 0..out_blocks {
            for bc in 0..in_blocks {
                let first = mask[br * rows * shape.inp + bc * cols];
                for r in 0..rows {
                    for c in 0..cols {
                        prop_assert_eq!(mask[(br * rows + r) * shape.inp + bc * cols + c], first);
                    }
                }
                kept_blocks += first as usize;
            }
        }
        prop_assert_eq!(kept_blocks, keep_count(out_blocks * in_blocks, target));
    }

    #[test]
    fn conv_blocks_tile_the_flattened_filter(
        out in 1usize..4, inp in 1usize..4, target in 0.0f64..0.999, w_seed in any::<u64>(),
    ) {
        // [out*2, inp, 2, 2] viewed as [out*2, inp*4], blocks 2x4: one block per (filter pair, input channel)
        let shape = LayerShape::conv2d(out * 2, inp, 2, 2);
        let w: Vec<f32> = (0..shape.numel()).map(|i| sparsity_explorer::prune::random_score(w_seed, i as u64) as f32).collect();
        let g = Granularity::Block { rows: 2, cols: 4, score: BlockScore::Mean };
        let mask = layer_mask(&w, &shape, g, Criterion::Magnitude, target, 0).unwrap();
        for o in 0..shape.out {
            for i in 0..inp {
                let base = mask[shape.index(o - o % 2, i, 0, 0)];
                for y in 0..2 { for x in 0..2 {
                    prop_assert_eq!(mask[shape.index(o, i, y, x)], base);
                }}
            }
        }
    }

    #[test]
    fn channel_masks_are_whole_rows_or_filters(
        (shape, w) in shape_and_weights(),
        target in 0.0f64..0.999,
        crit in criterion(),
    ) {
        let mask = layer_mask(&w, &shape, Granularity::Channel, crit, target, 3).unwrap();
        let rows: Vec<&[u8]> = mask.chunks(shape.row_len()).collect();
        for row in &rows {
            prop_assert!(row.iter().all(|&k| k == row[0]));
        }
        prop_assert_eq!(rows.iter().filter(|r| r[0] == 1).count(), keep_count(shape.out, target));
    }

    #[test]
    fn global_scope_ranks_across_layers(
        (s1, w1) in shape_and_weights(),
        (s2, w2) in shape_and_weights(),
        scale in 0.01f32..10.0,
        target in 0.0f64..0.999,
    ) {
        let w2: Vec<f32> = w2.iter().map(|x| x * scale).collect();
        let layers = [
            GlobalLayer { weights: &w1, shape: s1, seed: 1 },
            GlobalLayer { weights: &w2, shape: s2, seed: 2 },
        ];
        let masks = global_masks(&layers, Granularity::Unstructured, Criterion::Magnitude, target).unwrap();
        let all: Vec<(f32, u8)> = w1.iter().zip(&masks[0]).chain(w2.iter().zip(&masks[1])).map(|(w, &k)| (w.abs(), k)).collect();
        let pruned = all.iter().filter(|(_, k)| *k == 0).count();
        prop_assert_eq!(pruned, (all.len() as f64 * target).round() as usize);
        let min_kept = all.iter().filter(|(_, k)| *k == 1).map(|(w, _)| *w).fold(f32::INFINITY, f32::min);
        let max_pruned = all.iter().filter(|(_, k)| *k == 0).map(|(w, _)| *w).fold(0.0, f32::max);
        prop_assert!(max_pruned <= min_kept);
    }

    #[test]
    fn polynomial_schedule_is_the_tfmot_formula(
        initial in 0.0f64..0.99,
        fin in 0.0f64..0.99,
        begin in 0u64..2000,
        len in 1u64..5000,
        power in 1.0f64..5.0,
        frequency in 1u64..200,
        step in 0u64..10_000,
    ) {
        let end = begin + len;
        let s = StepSchedule::Polynomial { initial, final_sparsity: fin, begin, end, power, frequency };
        // tfmot: p = min(1, max(0, (step - begin) / (end - begin)));
        //        sparsity = (initial - final) * (1 - p)^power + final
        let p = (((step as f64) - (begin as f64)) / ((end - begin) as f64)).clamp(0.0, 1.0);
        let expected = (initial - fin) * (1.0 - p).powf(power) + fin;
        prop_assert!((s.value(step) - expected).abs() <= 1e-9);
        // tfmot: prune iff begin <= step <= end and (step - begin) % frequency == 0
        let expected_prune = step >= begin && step <= end && (step - begin) % frequency == 0;
        prop_assert_eq!(s.should_prune(step), expected_prune);
    }
}
