//! The extension on `Flex`: every operation, forward and backward, on the host kernels.
//! A server that serves flex runs these same functions for its remote clients.

use burn::backend::Flex;
use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{Bytes, DType, Shape};

use super::TrainingKernels;
use super::description::{DESCRIPTION_LEN, Description};
use crate::kernels::activation::{gelu_backward, gelu_forward};
use crate::kernels::adam::{AdamStep, adam_update};
use crate::kernels::attention::{AttentionGeometry, attention_backward, attention_forward};
use crate::kernels::conv::{ConvGeometry, ConvSpacing, conv2d_backward, conv2d_forward};
use crate::kernels::linear::{LinearGeometry, linear_backward, linear_forward};
use crate::kernels::norm::{
    BatchStatistics, NormGeometry, NormOptions, batch_norm_backward, batch_norm_forward,
};
use crate::kernels::pool::{max_pool2x2_backward, max_pool2x2_forward};

/// A contiguous tensor that owns its buffer whenever `t` was the buffer's only handle, so
/// that writing to it does not copy.
fn into_contiguous(t: FlexTensor) -> FlexTensor {
    let c = t.to_contiguous();
    drop(t);
    c
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

pub(super) fn host_f32(values: Vec<f32>, dims: &[usize]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(Shape::from(dims.iter().copied())),
        DType::F32,
    )
}

/// The placeholder for a gradient nobody asked for (an image fed to the first layer).
fn nothing() -> FlexTensor {
    host_f32(Vec::new(), &[0])
}

fn conv_geometry(x: &FlexTensor, weight: &FlexTensor, spacing: ConvSpacing) -> ConvGeometry {
    let ConvSpacing {
        padding: [pad_h, pad_w],
        stride: [stride_h, stride_w],
    } = spacing;
    let [batch, c_in, in_h, in_w] = dims4(x);
    let [c_out, _, kh, kw] = dims4(weight);
    ConvGeometry {
        batch,
        c_in,
        in_h,
        in_w,
        c_out,
        kh,
        kw,
        pad_h,
        pad_w,
        stride_h,
        stride_w,
    }
}

fn attention_geometry(qkv: &FlexTensor, heads: usize) -> AttentionGeometry {
    let s = qkv.layout().shape();
    let heads = heads.max(1);
    AttentionGeometry {
        batch: s[0],
        tokens: s[1],
        heads,
        head_dim: s[2] / 3 / heads,
    }
}

fn linear_geometry(x: &FlexTensor, weight: &FlexTensor) -> LinearGeometry {
    let (xs, ws) = (x.layout().shape(), weight.layout().shape());
    LinearGeometry {
        batch: xs[0],
        inp: ws[0],
        out: ws[1],
    }
}

fn norm_geometry([batch, channels, h, w]: [usize; 4]) -> NormGeometry {
    NormGeometry {
        batch,
        channels,
        pixels: h * w,
    }
}

impl TrainingKernels for Flex {
    fn conv2d_strided(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        spacing: ConvSpacing,
    ) -> FlexTensor {
        let (x, weight, bias) = (
            x.to_contiguous(),
            weight.to_contiguous(),
            bias.to_contiguous(),
        );
        let g = conv_geometry(&x, &weight, spacing);
        let y = conv2d_forward(&g, x.storage(), weight.storage(), Some(bias.storage()));
        host_f32(y, &[g.batch, g.c_out, g.out_h(), g.out_w()])
    }

    fn conv2d_strided_backward(
        x: FlexTensor,
        weight: FlexTensor,
        dy: FlexTensor,
        spacing: ConvSpacing,
        need_dx: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (x, weight, dy) = (
            x.to_contiguous(),
            weight.to_contiguous(),
            dy.to_contiguous(),
        );
        let g = conv_geometry(&x, &weight, spacing);
        let r = conv2d_backward(&g, x.storage(), weight.storage(), dy.storage(), need_dx);
        (
            r.dx.map_or_else(nothing, |dx| {
                host_f32(dx, &[g.batch, g.c_in, g.in_h, g.in_w])
            }),
            host_f32(r.dw, &[g.c_out, g.c_in, g.kh, g.kw]),
            host_f32(r.db, &[g.c_out]),
        )
    }

    fn linear_dense(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let (x, weight, bias) = (
            x.to_contiguous(),
            weight.to_contiguous(),
            bias.to_contiguous(),
        );
        let g = linear_geometry(&x, &weight);
        let y = linear_forward(&g, x.storage(), weight.storage(), Some(bias.storage()));
        host_f32(y, &[g.batch, g.out])
    }

    fn linear_dense_backward(
        x: FlexTensor,
        weight: FlexTensor,
        dy: FlexTensor,
        need_dx: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (x, weight, dy) = (
            x.to_contiguous(),
            weight.to_contiguous(),
            dy.to_contiguous(),
        );
        let g = linear_geometry(&x, &weight);
        let r = linear_backward(&g, x.storage(), weight.storage(), dy.storage(), need_dx);
        (
            r.dx.map_or_else(nothing, |dx| host_f32(dx, &[g.batch, g.inp])),
            host_f32(r.dw, &[g.inp, g.out]),
            host_f32(r.db, &[g.out]),
        )
    }

    fn max_pool2x2(x: FlexTensor) -> (FlexTensor, FlexTensor) {
        let x = x.to_contiguous();
        let [n, c, h, w] = dims4(&x);
        let pooled = max_pool2x2_forward(x.storage(), n * c, h, w);
        let dims = [n, c, h / 2, w / 2];
        let winners = FlexTensor::new(
            Bytes::from_elems(pooled.winners),
            Layout::contiguous(Shape::from(dims)),
            DType::U8,
        );
        (host_f32(pooled.values, &dims), winners)
    }

    fn max_pool2x2_backward(winners: FlexTensor, dy: FlexTensor, h: usize, w: usize) -> FlexTensor {
        let (winners, dy) = (winners.to_contiguous(), dy.to_contiguous());
        let [n, c, _, _] = dims4(&winners);
        let dx = max_pool2x2_backward(dy.storage(), winners.storage::<u8>(), n * c, h, w);
        host_f32(dx, &[n, c, h, w])
    }

    fn batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        options: NormOptions,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (x, gamma, beta) = (
            x.to_contiguous(),
            gamma.to_contiguous(),
            beta.to_contiguous(),
        );
        let dims = dims4(&x);
        let g = norm_geometry(dims);
        let f = batch_norm_forward(&g, x.storage(), gamma.storage(), beta.storage(), options);
        (
            host_f32(f.output, &dims),
            host_f32(f.mean, &[g.channels]),
            host_f32(f.variance, &[g.channels]),
        )
    }

    fn batch_norm_train_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        dy: FlexTensor,
        options: NormOptions,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let [x, gamma, beta, mean, variance, dy] =
            [x, gamma, beta, mean, variance, dy].map(|t| t.to_contiguous());
        let dims = dims4(&x);
        let g = norm_geometry(dims);
        let r = batch_norm_backward(
            &g,
            x.storage(),
            gamma.storage(),
            beta.storage(),
            BatchStatistics {
                mean: mean.storage(),
                variance: variance.storage(),
            },
            options,
            dy.storage(),
        );
        (
            host_f32(r.dx, &dims),
            host_f32(r.dgamma, &[g.channels]),
            host_f32(r.dbeta, &[g.channels]),
        )
    }

    fn gelu_exact(x: FlexTensor) -> FlexTensor {
        let x = x.to_contiguous();
        host_f32(gelu_forward(x.storage()), x.layout().shape())
    }

    fn gelu_exact_backward(x: FlexTensor, dy: FlexTensor) -> FlexTensor {
        let (x, dy) = (x.to_contiguous(), dy.to_contiguous());
        host_f32(gelu_backward(x.storage(), dy.storage()), x.layout().shape())
    }

    fn packed_attention(qkv: FlexTensor, heads: usize) -> (FlexTensor, FlexTensor) {
        let qkv = qkv.to_contiguous();
        let g = attention_geometry(&qkv, heads);
        let f = attention_forward(&g, qkv.storage());
        (
            host_f32(f.output, &[g.batch, g.tokens, g.inner()]),
            host_f32(f.weights, &[g.batch, g.heads, g.tokens, g.tokens]),
        )
    }

    fn packed_attention_backward(
        qkv: FlexTensor,
        weights: FlexTensor,
        dy: FlexTensor,
        heads: usize,
    ) -> FlexTensor {
        let (qkv, weights, dy) = (
            qkv.to_contiguous(),
            weights.to_contiguous(),
            dy.to_contiguous(),
        );
        let g = attention_geometry(&qkv, heads);
        let dqkv = attention_backward(&g, qkv.storage(), weights.storage(), dy.storage());
        host_f32(dqkv, qkv.layout().shape())
    }

    fn describe_device(_probe: FlexTensor) -> FlexTensor {
        host_f32(Description::flex().encode(), &[DESCRIPTION_LEN])
    }

    fn adam_update(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut p, mut m, mut v) = (
            into_contiguous(param),
            into_contiguous(moment_1),
            into_contiguous(moment_2),
        );
        let g = grad.to_contiguous();
        adam_update(
            p.storage_mut(),
            g.storage(),
            m.storage_mut(),
            v.storage_mut(),
            step,
        );
        (p, m, v)
    }
}
