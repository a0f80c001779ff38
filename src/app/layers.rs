//! One prunable layer as the window shows it: its mask as a texture, its sparsity, and the
//! weight-magnitude histogram with the threshold of the last cut. Images are built from host
//! snapshots sent by the worker; textures are created once and updated in place.

use eframe::egui;
use egui::{Color32, ColorImage, TextureHandle, TextureOptions};

use crate::prune::{LayerKind, LayerShape};
use crate::train::{LayerInfo, LayerSnapshot};

/// Bins of the weight-magnitude histogram.
pub const HISTOGRAM_BINS: usize = 60;
/// Colour of a pruned weight.
pub const PRUNED: Color32 = Color32::from_rgb(14, 14, 18);
/// Colour of a weight grown back by the last exchange of RigL or SET (in folded views: a
/// kernel or input holding one).
pub const GROWN: Color32 = Color32::from_rgb(90, 240, 110);

/// How a layer's weights are laid out as pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskLayout {
    /// One pixel per weight: `[out, in]` (conv: `[out * kh, in * kw]`).
    Weights,
    /// Conv only: one pixel per `kh x kw` kernel, showing the fraction kept.
    FoldedKernels,
    /// A Linear layer on 28x28 images: the fraction of kept weights of each input pixel,
    /// laid out as the image (the digit-shaped structure of what survives).
    InputImage,
}

/// The mask of a snapshot as an image: kept weights coloured by sign (warm positive, cool
/// negative) and magnitude, pruned ones dark, weights grown by the last exchange green;
/// fractions (folded views) as brightness.
pub fn mask_image(snap: &LayerSnapshot, layout: MaskLayout) -> ColorImage {
    let s = snap.shape;
    let mut grown = vec![false; snap.mask.len()];
    for &i in &snap.grown {
        if let Some(g) = grown.get_mut(i as usize) {
            *g = true;
        }
    }
    match layout {
        MaskLayout::Weights => {
            let (w, h) = (s.inp * s.kw, s.out * s.kh);
            let max = snap
                .weights
                .iter()
                .zip(&snap.mask)
                .filter(|(_, k)| **k == 1)
                .fold(0.0f32, |m, (w, _)| m.max(w.abs()))
                .max(f32::MIN_POSITIVE);
            let mut pixels = vec![PRUNED; w * h];
            for o in 0..s.out {
                for i in 0..s.inp {
                    for y in 0..s.kh {
                        for x in 0..s.kw {
                            let idx = s.index(o, i, y, x);
                            let pixel = &mut pixels[(o * s.kh + y) * w + i * s.kw + x];
                            if grown[idx] {
                                *pixel = GROWN;
                            } else if snap.mask[idx] == 1 {
                                *pixel = weight_colour(snap.weights[idx] / max);
                            }
                        }
                    }
                }
            }
            ColorImage::new([w, h], pixels)
        }
        MaskLayout::FoldedKernels => {
            let k = s.kernel_len();
            let pixels = snap
                .mask
                .chunks(k)
                .zip(grown.chunks(k))
                .map(|(kernel, grown)| {
                    if grown.contains(&true) {
                        GROWN
                    } else {
                        fraction_colour(
                            kernel.iter().map(|&m| m as usize).sum::<usize>() as f32 / k as f32,
                        )
                    }
                })
                .collect();
            ColorImage::new([s.inp, s.out], pixels)
        }
        MaskLayout::InputImage => {
            let mut kept = vec![0usize; s.inp];
            let mut grew = vec![false; s.inp];
            for (row, grown) in snap.mask.chunks(s.inp).zip(grown.chunks(s.inp)) {
                for (i, (&m, &g)) in row.iter().zip(grown).enumerate() {
                    kept[i] += m as usize;
                    grew[i] |= g;
                }
            }
            let side = (s.inp as f64).sqrt() as usize;
            let pixels = kept
                .iter()
                .zip(&grew)
                .map(|(&k, &g)| {
                    if g {
                        GROWN
                    } else {
                        fraction_colour(k as f32 / s.out as f32)
                    }
                })
                .collect();
            ColorImage::new([side, side], pixels)
        }
    }
}

/// `v` in `[-1, 1]`: warm for positive, cool for negative, brighter when larger.
pub fn weight_colour(v: f32) -> Color32 {
    let t = v.abs().clamp(0.0, 1.0).sqrt();
    let lerp = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * t).round() as u8;
    if v >= 0.0 {
        Color32::from_rgb(lerp(70, 255), lerp(40, 190), lerp(30, 60))
    } else {
        Color32::from_rgb(lerp(30, 80), lerp(50, 190), lerp(80, 255))
    }
}

/// A kept fraction in `[0, 1]`: dark when all pruned, bright teal when all kept.
pub fn fraction_colour(f: f32) -> Color32 {
    let t = f.clamp(0.0, 1.0);
    let lerp = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * t).round() as u8;
    Color32::from_rgb(lerp(14, 120), lerp(14, 235), lerp(18, 210))
}

/// Which layouts a layer offers.
pub fn layouts(shape: &LayerShape) -> Vec<MaskLayout> {
    let mut v = Vec::new();
    if shape.kind == LayerKind::Conv2d {
        v.push(MaskLayout::FoldedKernels);
    }
    v.push(MaskLayout::Weights);
    if shape.kind == LayerKind::Linear && shape.inp == 28 * 28 {
        v.push(MaskLayout::InputImage);
    }
    v
}

/// Histogram of `|w|` over kept weights: `[centre, count]` per bin, and the bin width.
pub fn magnitude_histogram(snap: &LayerSnapshot) -> (Vec<[f64; 2]>, f64) {
    let kept: Vec<f64> = snap
        .weights
        .iter()
        .zip(&snap.mask)
        .filter(|(_, k)| **k == 1)
        .map(|(w, _)| w.abs() as f64)
        .collect();
    let max = kept.iter().copied().fold(0.0, f64::max).max(1e-12);
    let width = max / HISTOGRAM_BINS as f64;
    let mut counts = vec![0usize; HISTOGRAM_BINS];
    for v in &kept {
        counts[((v / width) as usize).min(HISTOGRAM_BINS - 1)] += 1;
    }
    let bins = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| [(i as f64 + 0.5) * width, c as f64])
        .collect();
    (bins, width)
}

/// Where the last cut of a layer ranked by `|w|` drew its line, and at which step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CutLine {
    pub step: u64,
    pub threshold: f64,
}

/// A layer's state in the window.
pub struct LayerView {
    pub info: LayerInfo,
    pub snapshot: Option<LayerSnapshot>,
    pub target: f64,
    pub sparsity: f64,
    pub layout: MaskLayout,
    pub histogram: Vec<[f64; 2]>,
    pub bin_width: f64,
    /// The last cut's threshold, kept after pruning ends (the kept weights may shrink
    /// below it since, so the histogram alone cannot tell it).
    pub last_cut: Option<CutLine>,
    texture: Option<TextureHandle>,
    texture_layout: Option<MaskLayout>,
    dirty: bool,
}

impl LayerView {
    pub fn new(info: LayerInfo) -> Self {
        let layout = layouts(&info.shape)[0];
        Self {
            info,
            snapshot: None,
            target: 0.0,
            sparsity: 0.0,
            layout,
            histogram: Vec::new(),
            bin_width: 0.0,
            last_cut: None,
            texture: None,
            texture_layout: None,
            dirty: false,
        }
    }

    /// Takes a fresh snapshot; the texture is rebuilt the next time it is drawn.
    pub fn set_snapshot(&mut self, snap: LayerSnapshot) {
        let (hist, width) = magnitude_histogram(&snap);
        self.histogram = hist;
        self.bin_width = width;
        self.sparsity = crate::prune::sparsity(&snap.mask);
        self.snapshot = Some(snap);
        self.dirty = true;
    }

    /// The mask texture, created once and updated in place when the snapshot or the
    /// layout changed. `None` before the first snapshot.
    pub fn texture(&mut self, ctx: &egui::Context) -> Option<&TextureHandle> {
        let snap = self.snapshot.as_ref()?;
        if self.dirty || self.texture_layout != Some(self.layout) || self.texture.is_none() {
            let image = mask_image(snap, self.layout);
            match &mut self.texture {
                Some(t) => t.set(image, TextureOptions::NEAREST),
                None => {
                    self.texture = Some(ctx.load_texture(
                        format!("mask-{}", self.info.name),
                        image,
                        TextureOptions::NEAREST,
                    ))
                }
            }
            self.dirty = false;
            self.texture_layout = Some(self.layout);
        }
        self.texture.as_ref()
    }

    /// Pixel size of the current layout.
    pub fn image_size(&self) -> [usize; 2] {
        let s = self.info.shape;
        match self.layout {
            MaskLayout::Weights => [s.inp * s.kw, s.out * s.kh],
            MaskLayout::FoldedKernels => [s.inp, s.out],
            MaskLayout::InputImage => [28, 28],
        }
    }

    /// What is under pixel `(col, row)` of the current layout, in words.
    pub fn describe_pixel(&self, col: usize, row: usize) -> Option<String> {
        let snap = self.snapshot.as_ref()?;
        let s = snap.shape;
        let [w, h] = self.image_size();
        if col >= w || row >= h {
            return None;
        }
        Some(match self.layout {
            MaskLayout::Weights => {
                let (o, y) = (row / s.kh, row % s.kh);
                let (i, x) = (col / s.kw, col % s.kw);
                let idx = s.index(o, i, y, x);
                let state = crate::i18n::t(if snap.grown.contains(&(idx as u32)) {
                    "grown at the last exchange"
                } else if snap.mask[idx] == 1 {
                    "kept"
                } else {
                    "pruned"
                });
                match s.kind {
                    LayerKind::Linear => format!(
                        "row {o} (output), column {i} (input): w = {:+.4}, {state}",
                        snap.weights[idx]
                    ),
                    LayerKind::Conv2d => format!(
                        "filter {o}, input channel {i}, kernel ({y}, {x}): w = {:+.4}, {state}",
                        snap.weights[idx]
                    ),
                }
            }
            MaskLayout::FoldedKernels => {
                let start = s.index(row, col, 0, 0);
                let kernel = &snap.mask[start..start + s.kernel_len()];
                let kept = kernel.iter().filter(|&&m| m == 1).count();
                format!(
                    "filter {row}, input channel {col}: {kept} of {} kernel weights kept",
                    s.kernel_len()
                )
            }
            MaskLayout::InputImage => {
                let i = row * 28 + col;
                let kept = snap.mask.chunks(s.inp).filter(|r| r[i] == 1).count();
                format!(
                    "input pixel ({row}, {col}): {kept} of {} weights kept",
                    s.out
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(shape: LayerShape, weights: Vec<f32>, mask: Vec<u8>) -> LayerSnapshot {
        LayerSnapshot {
            step: 0,
            name: "l".into(),
            shape,
            weights,
            mask,
            grown: Vec::new(),
        }
    }

    #[test]
    fn pruned_weights_are_dark_and_kept_ones_coloured_by_sign() {
        let s = snap(
            LayerShape::linear(1, 3),
            vec![1.0, -1.0, 0.5],
            vec![1, 1, 0],
        );
        let img = mask_image(&s, MaskLayout::Weights);
        assert_eq!(img.size, [3, 1]);
        assert_eq!(img.pixels[2], PRUNED);
        assert!(img.pixels[0].r() > img.pixels[0].b(), "positive is warm");
        assert!(img.pixels[1].b() > img.pixels[1].r(), "negative is cool");
    }

    #[test]
    fn weights_grown_by_the_last_exchange_stand_out_in_every_layout() {
        // a 784-input layer offers all three layouts of a linear layer
        let shape = LayerShape::linear(2, 784);
        let mut mask = vec![0u8; shape.numel()];
        mask[5] = 1;
        mask[784 + 9] = 1;
        let mut s = snap(shape, vec![0.5; shape.numel()], mask);
        s.grown = vec![784 + 9];
        let weights = mask_image(&s, MaskLayout::Weights);
        assert_eq!(weights.pixels[784 + 9], GROWN);
        assert_ne!(weights.pixels[5], GROWN, "kept before: coloured by value");
        let image = mask_image(&s, MaskLayout::InputImage);
        assert_eq!(image.pixels[9], GROWN);
        assert_ne!(image.pixels[5], GROWN);
        // a conv kernel holding a grown weight is marked as a whole
        let conv = LayerShape::conv2d(2, 2, 2, 2);
        let mut c = snap(conv, vec![0.5; conv.numel()], vec![1; conv.numel()]);
        c.grown = vec![conv.index(1, 0, 1, 1) as u32];
        let folded = mask_image(&c, MaskLayout::FoldedKernels);
        assert_eq!(folded.pixels[2], GROWN);
        assert_eq!(folded.pixels.iter().filter(|&&p| p == GROWN).count(), 1);
    }

    #[test]
    fn conv_kernels_fold_to_one_pixel_each() {
        // [out=2, in=3, 2, 2]; kernel (1, 2) has 1 of 4 kept
        let shape = LayerShape::conv2d(2, 3, 2, 2);
        let mut mask = vec![1u8; shape.numel()];
        let start = shape.index(1, 2, 0, 0);
        mask[start..start + 3].fill(0);
        let s = snap(shape, vec![0.1; shape.numel()], mask);
        let folded = mask_image(&s, MaskLayout::FoldedKernels);
        assert_eq!(folded.size, [3, 2]);
        assert_eq!(folded.pixels[5], fraction_colour(0.25));
        assert_eq!(folded.pixels[0], fraction_colour(1.0));
        let expanded = mask_image(&s, MaskLayout::Weights);
        assert_eq!(expanded.size, [6, 4]);
        // filter 1, channel 2, kernel (0, 0) is at row 2, column 4
        assert_eq!(expanded.pixels[2 * 6 + 4], PRUNED);
        assert_eq!(expanded.pixels[3 * 6 + 5], weight_colour(1.0));
    }

    #[test]
    fn input_image_counts_kept_weights_per_pixel() {
        let shape = LayerShape::linear(2, 784);
        let mut mask = vec![1u8; 2 * 784];
        mask[0] = 0; // output 0, pixel 0
        mask[784] = 0; // output 1, pixel 0
        mask[784 + 29] = 0; // output 1, pixel (1, 1)
        let s = snap(shape, vec![0.3; 2 * 784], mask);
        let img = mask_image(&s, MaskLayout::InputImage);
        assert_eq!(img.size, [28, 28]);
        assert_eq!(img.pixels[0], fraction_colour(0.0));
        assert_eq!(img.pixels[29], fraction_colour(0.5));
        assert_eq!(img.pixels[1], fraction_colour(1.0));
    }

    #[test]
    fn histogram_counts_kept_weights() {
        let s = snap(
            LayerShape::linear(1, 4),
            vec![0.0, -0.2, 0.4, 1.0],
            vec![0, 1, 1, 1],
        );
        let (bins, width) = magnitude_histogram(&s);
        assert_eq!(bins.len(), HISTOGRAM_BINS);
        assert_eq!(bins.iter().map(|b| b[1]).sum::<f64>(), 3.0);
        assert!((width - 1.0 / HISTOGRAM_BINS as f64).abs() < 1e-12);
        // the kept 0.2 falls in the bin of 0.2, the 0.0 pruned one nowhere
        assert_eq!(bins[(0.2 / width) as usize][1], 1.0);
        assert_eq!(bins[0][1], 0.0);
    }
}
