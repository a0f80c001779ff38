//! The host operations between layers, on channel-major activations: images as
//! `[c][n][h][w]`, features as `[f][columns]` with one column per example, or per token of
//! each example (`columns = n * tokens`, example-major), so a dense layer on tokens is the
//! same kernel as on features.

use super::Linear;

/// Images, channel-major: `[c][n][h][w]`.
#[derive(Clone)]
pub struct Maps {
    pub data: Vec<f32>,
    pub c: usize,
    pub n: usize,
    pub h: usize,
    pub w: usize,
}

/// Features, `[f][n * tokens]`: `tokens` is 1 for flat features.
#[derive(Clone)]
pub struct Features {
    pub data: Vec<f32>,
    pub f: usize,
    pub n: usize,
    pub tokens: usize,
}

impl Features {
    pub fn columns(&self) -> usize {
        self.n * self.tokens
    }
}

/// What flows between host operations.
#[derive(Clone)]
pub enum Act {
    Maps(Maps),
    Features(Features),
}

impl Act {
    pub fn data_mut(&mut self) -> &mut Vec<f32> {
        match self {
            Act::Maps(m) => &mut m.data,
            Act::Features(f) => &mut f.data,
        }
    }
}

/// The columns of `[rows, cols]` patches of a `k x k` convolution `stride` apart with `pad`
/// zeros: `[c * k * k, n * oh * ow]`, and the output side.
pub fn im2col(m: &Maps, k: usize, stride: usize, pad: usize) -> (Vec<f32>, usize, usize) {
    let (oh, ow) = (
        (m.h + 2 * pad - k) / stride + 1,
        (m.w + 2 * pad - k) / stride + 1,
    );
    let cols = m.n * oh * ow;
    let mut p = vec![0.0f32; m.c * k * k * cols];
    for ci in 0..m.c {
        for ky in 0..k {
            for kx in 0..k {
                let row = (ci * k + ky) * k + kx;
                let dst = &mut p[row * cols..(row + 1) * cols];
                for i in 0..m.n {
                    for oy in 0..oh {
                        let y = oy * stride + ky;
                        if y < pad || y - pad >= m.h {
                            continue;
                        }
                        let src = ((ci * m.n + i) * m.h + (y - pad)) * m.w;
                        for ox in 0..ow {
                            let x = ox * stride + kx;
                            if x >= pad && x - pad < m.w {
                                dst[(i * oh + oy) * ow + ox] = m.data[src + x - pad];
                            }
                        }
                    }
                }
            }
        }
    }
    (p, oh, ow)
}

/// A convolution as its weight matrix over image patches.
pub fn conv(layer: &Linear, m: &Maps, k: usize, stride: usize, pad: usize) -> Maps {
    let (patches, oh, ow) = im2col(m, k, stride, pad);
    Maps {
        data: layer.forward_transposed(&patches, m.n * oh * ow),
        c: layer.out(),
        n: m.n,
        h: oh,
        w: ow,
    }
}

/// A convolution whose input channels are split into `groups.len()` equal groups, group
/// `g`'s filters reading only group `g`'s channels (PyTorch's `groups`); the outputs side by
/// side. Maps keep each channel's images together, so a group's channels are one slice.
pub fn grouped_conv(groups: &[Linear], m: &Maps, k: usize, stride: usize, pad: usize) -> Maps {
    if let [layer] = groups {
        return conv(layer, m, k, stride, pad);
    }
    let c = m.c / groups.len();
    let plane = m.n * m.h * m.w;
    let parts: Vec<Maps> = groups
        .iter()
        .enumerate()
        .map(|(g, layer)| {
            let part = Maps {
                data: m.data[g * c * plane..(g + 1) * c * plane].to_vec(),
                c,
                ..*m
            };
            conv(layer, &part, k, stride, pad)
        })
        .collect();
    let (h, w) = (parts[0].h, parts[0].w);
    Maps {
        c: parts.iter().map(|p| p.c).sum(),
        data: parts.into_iter().flat_map(|p| p.data).collect(),
        n: m.n,
        h,
        w,
    }
}

/// Max or mean over `k x k` windows `stride` apart (no padding, PyTorch's floor).
pub fn pool(m: &Maps, k: usize, stride: usize, max: bool) -> Maps {
    let (h, w) = ((m.h - k) / stride + 1, (m.w - k) / stride + 1);
    let mut data = vec![0.0f32; m.c * m.n * h * w];
    for plane in 0..m.c * m.n {
        let src = &m.data[plane * m.h * m.w..(plane + 1) * m.h * m.w];
        for y in 0..h {
            for x in 0..w {
                let window = (0..k).flat_map(|dy| {
                    let row = (y * stride + dy) * m.w + x * stride;
                    src[row..row + k].iter().copied()
                });
                data[(plane * h + y) * w + x] = if max {
                    window.fold(f32::NEG_INFINITY, f32::max)
                } else {
                    window.sum::<f32>() / (k * k) as f32
                };
            }
        }
    }
    Maps {
        data,
        c: m.c,
        n: m.n,
        h,
        w,
    }
}

/// Images to flat features, PyTorch's `flatten(1)` order (channel, then position).
pub fn flatten_maps(m: &Maps) -> Features {
    let hw = m.h * m.w;
    let mut f = vec![0.0f32; m.data.len()];
    for c in 0..m.c {
        for i in 0..m.n {
            for p in 0..hw {
                f[(c * hw + p) * m.n + i] = m.data[(c * m.n + i) * hw + p];
            }
        }
    }
    Features {
        data: f,
        f: m.c * hw,
        n: m.n,
        tokens: 1,
    }
}

/// Tokens to flat features, PyTorch's `flatten(1)` of `[n, tokens, d]` (token, then feature).
pub fn flatten_tokens(x: &Features) -> Features {
    let (d, t, n) = (x.f, x.tokens, x.n);
    let mut out = vec![0.0f32; x.data.len()];
    for ch in 0..d {
        for i in 0..n {
            for tok in 0..t {
                out[(tok * d + ch) * n + i] = x.data[ch * n * t + i * t + tok];
            }
        }
    }
    Features {
        data: out,
        f: d * t,
        n,
        tokens: 1,
    }
}

/// Each channel's mean over its image: `[c][n]` features.
pub fn global_avgpool(m: &Maps) -> Features {
    let hw = m.h * m.w;
    Features {
        data: m
            .data
            .chunks(hw)
            .map(|plane| plane.iter().sum::<f32>() / hw as f32)
            .collect(),
        f: m.c,
        n: m.n,
        tokens: 1,
    }
}

/// Images as tokens: `[c][n][h][w]` is already `[d = c][n * tokens]`.
pub fn tokens(m: Maps) -> Features {
    Features {
        f: m.c,
        n: m.n,
        tokens: m.h * m.w,
        data: m.data,
    }
}

/// Adds a position embedding `[tokens][d]` (PyTorch's `[1, tokens, d]`) to every example.
pub fn add_position(x: &mut Features, pos: &[f32]) {
    let (d, t) = (x.f, x.tokens);
    let cols = x.columns();
    for ch in 0..d {
        for col in 0..cols {
            x.data[ch * cols + col] += pos[(col % t) * d + ch];
        }
    }
}

/// Layer norm over each column's features (eps 1e-5).
pub fn layer_norm(x: &mut Features, gamma: &[f32], beta: &[f32]) {
    let (d, cols) = (x.f, x.columns());
    for col in 0..cols {
        let mean = (0..d).map(|ch| x.data[ch * cols + col]).sum::<f32>() / d as f32;
        let var = (0..d)
            .map(|ch| (x.data[ch * cols + col] - mean).powi(2))
            .sum::<f32>()
            / d as f32;
        let inv = 1.0 / (var + 1e-5).sqrt();
        for ch in 0..d {
            let v = &mut x.data[ch * cols + col];
            *v = (*v - mean) * inv * gamma[ch] + beta[ch];
        }
    }
}

/// A per-channel affine map (an evaluation-mode batch norm not folded into a convolution).
pub fn affine(x: &mut Act, scale: &[f32], shift: &[f32]) {
    let (channels, data) = match x {
        Act::Maps(m) => (m.c, &mut m.data),
        Act::Features(f) => (f.f, &mut f.data),
    };
    let per = data.len() / channels.max(1);
    for (c, plane) in data.chunks_mut(per).enumerate() {
        plane.iter_mut().for_each(|v| *v = *v * scale[c] + shift[c]);
    }
}

/// The mean of each example's tokens: `[d][n]`.
pub fn mean_tokens(x: &Features) -> Features {
    let t = x.tokens;
    Features {
        data: x
            .data
            .chunks(t)
            .map(|toks| toks.iter().sum::<f32>() / t as f32)
            .collect(),
        f: x.f,
        n: x.n,
        tokens: 1,
    }
}

/// Multi-head self-attention on `[d][n * tokens]` with PyTorch's packed projection: `in_proj`
/// gives `[3 * inner][columns]` (Q, K, V rows), each head attends over its example's tokens,
/// and `out_proj` maps the heads' `[inner][columns]` back to `d`.
pub fn attention(x: &Features, in_proj: &Linear, out_proj: &Linear, heads: usize) -> Features {
    let (t, cols) = (x.tokens, x.columns());
    let qkv = in_proj.forward_transposed(&x.data, cols);
    let inner = out_proj.inp();
    let hd = inner / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut mixed = vec![0.0f32; inner * cols];
    let mut scores = vec![0.0f32; t * t];
    for e in 0..x.n {
        let base = e * t;
        for h in 0..heads {
            // row r of Q, K or V for this head: the block's offset, the head's rows
            let row =
                |block: usize, k: usize| &qkv[(block * inner + h * hd + k) * cols + base..][..t];
            scores.fill(0.0);
            for k in 0..hd {
                let (q, key) = (row(0, k), row(1, k));
                for i in 0..t {
                    let qi = q[i] * scale;
                    for (s, kj) in scores[i * t..(i + 1) * t].iter_mut().zip(key) {
                        *s += qi * kj;
                    }
                }
            }
            for s in scores.chunks_mut(t) {
                let top = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                s.iter_mut().for_each(|v| {
                    *v = (*v - top).exp();
                    sum += *v;
                });
                s.iter_mut().for_each(|v| *v /= sum);
            }
            for k in 0..hd {
                let v = row(2, k);
                let out = &mut mixed[(h * hd + k) * cols + base..][..t];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = scores[i * t..(i + 1) * t]
                        .iter()
                        .zip(v)
                        .map(|(p, vj)| p * vj)
                        .sum();
                }
            }
        }
    }
    Features {
        data: out_proj.forward_transposed(&mixed, cols),
        f: out_proj.out(),
        n: x.n,
        tokens: t,
    }
}

/// Values of one shape summed, or side by side on their channel axis.
pub fn merge(inputs: Vec<Act>, add: bool) -> Act {
    let mut inputs = inputs.into_iter();
    let mut first = inputs.next().expect("a merge reads two inputs or more");
    for other in inputs {
        match (&mut first, other) {
            (Act::Maps(a), Act::Maps(b)) if add => {
                a.data.iter_mut().zip(&b.data).for_each(|(x, y)| *x += y)
            }
            (Act::Features(a), Act::Features(b)) if add => {
                a.data.iter_mut().zip(&b.data).for_each(|(x, y)| *x += y)
            }
            // channel-major: side by side is one buffer after the other
            (Act::Maps(a), Act::Maps(b)) => {
                a.data.extend(b.data);
                a.c += b.c;
            }
            (Act::Features(a), Act::Features(b)) => {
                a.data.extend(b.data);
                a.f += b.f;
            }
            _ => unreachable!("merged shapes are checked when the network resolves"),
        }
    }
    first
}
