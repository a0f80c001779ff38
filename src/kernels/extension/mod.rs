//! The host kernels as a burn backend extension: a trait with one method per operation,
//! implemented for `Flex` (forward) and for `Autodiff<Flex>` (forward plus its own backward
//! pass), routed by burn's `Dispatch`. Models call [`conv2d`] and [`max_pool2d`], which take
//! this path on the flex device and burn's own modules everywhere else (wgpu), so the same
//! model code runs on both.

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::tensor::{Bytes, DType, Device, Shape, Tensor};

mod autodiff;

use super::adam::{AdamStep, adam_update};
use super::conv::{ConvGeometry, conv2d_forward};
use super::linear::{LinearGeometry, linear_forward};
use super::norm::{NormGeometry, batch_norm_forward};
use super::pool::max_pool2x2_forward;

/// Training operations with hand-written CPU kernels.
#[backend_extension(Flex, Autodiff)]
pub trait TrainingKernels: Backend {
    /// Convolution with stride 1, no dilation, one group and `pad` zeros on each side:
    /// `x[n, c_in, h, w]`, `weight[c_out, c_in, kh, kw]`, `bias[c_out]` to
    /// `[n, c_out, h + 2 pad_h - kh + 1, w + 2 pad_w - kw + 1]`.
    fn conv2d_unit_stride(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self>;

    /// Dense layer in burn's layout: `x[batch, in] @ weight[in, out] + bias[out]`.
    fn linear_dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// 2x2 max pooling with stride 2: `[n, c, h, w]` to `[n, c, h / 2, w / 2]`.
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Batch normalization with the batch's statistics: the output, and the batch mean and
    /// biased variance per channel (for the running statistics).
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// One Adam step (see [`adam_update`]): the new parameter and moments.
    #[allow(clippy::too_many_arguments)]
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        lr: f64,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        time: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

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

fn host_f32(values: Vec<f32>, dims: &[usize]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(Shape::from(dims.iter().copied())),
        DType::F32,
    )
}

fn geometry(x: &FlexTensor, weight: &FlexTensor, pad_h: usize, pad_w: usize) -> ConvGeometry {
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
    fn conv2d_unit_stride(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        pad_h: usize,
        pad_w: usize,
    ) -> FlexTensor {
        let (x, weight, bias) = (
            x.to_contiguous(),
            weight.to_contiguous(),
            bias.to_contiguous(),
        );
        let g = geometry(&x, &weight, pad_h, pad_w);
        let y = conv2d_forward(&g, x.storage(), weight.storage(), Some(bias.storage()));
        host_f32(y, &[g.batch, g.c_out, g.out_h(), g.out_w()])
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

    fn max_pool2x2(x: FlexTensor) -> FlexTensor {
        let x = x.to_contiguous();
        let [n, c, h, w] = dims4(&x);
        let pooled = max_pool2x2_forward(x.storage(), n * c, h, w);
        host_f32(pooled.values, &[n, c, h / 2, w / 2])
    }

    fn batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (x, gamma, beta) = (
            x.to_contiguous(),
            gamma.to_contiguous(),
            beta.to_contiguous(),
        );
        let dims = dims4(&x);
        let g = norm_geometry(dims);
        let f = batch_norm_forward(&g, x.storage(), gamma.storage(), beta.storage(), epsilon);
        (
            host_f32(f.output, &dims),
            host_f32(f.mean, &[g.channels]),
            host_f32(f.variance, &[g.channels]),
        )
    }

    fn adam_update(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        lr: f64,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        time: usize,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut p, mut m, mut v) = (
            into_contiguous(param),
            into_contiguous(moment_1),
            into_contiguous(moment_2),
        );
        let g = grad.to_contiguous();
        let step = AdamStep {
            lr,
            beta_1,
            beta_2,
            epsilon,
            time,
        };
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

/// True when `tensor` lives on the flex device (with or without autodiff) as f32, where
/// the kernels apply.
fn on_flex(tensor: &Tensor<4>) -> bool {
    tensor.device().inner() == Device::flex() && tensor.dtype() == DType::F32
}

/// The zeros a convolution adds on each side, when they are the same on both sides.
pub fn symmetric_padding(conv: &Conv2d) -> Option<(usize, usize)> {
    match conv.padding {
        PaddingConfig2d::Valid => Some((0, 0)),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some((top, left))
        }
        _ => None,
    }
}

/// `conv.forward(x)`, through the host kernels where they apply (flex device, f32, stride
/// 1, no dilation, one group, bias, symmetric padding) and burn's module elsewhere.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let plain = conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    match (plain && on_flex(&x), symmetric_padding(conv), &conv.bias) {
        (true, Some((pad_h, pad_w)), Some(bias)) => {
            let out = <Dispatch as TrainingKernels>::conv2d_unit_stride(
                x.into_dispatch(),
                conv.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
                pad_h,
                pad_w,
            );
            Tensor::from_dispatch(out)
        }
        _ => conv.forward(x),
    }
}

/// `pool.forward(x)`, through the host kernel where it applies (flex device, f32, 2x2
/// windows with stride 2, no padding, no dilation, floor mode) and burn's module elsewhere.
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let two_by_two = pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(pool.padding, PaddingConfig2d::Valid);
    if two_by_two && on_flex(&x) {
        Tensor::from_dispatch(<Dispatch as TrainingKernels>::max_pool2x2(
            x.into_dispatch(),
        ))
    } else {
        pool.forward(x)
    }
}

/// One fused Adam step on flex tensors: the new parameter and moments.
pub(super) fn adam_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    s: AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (p, m, v) = <Dispatch as TrainingKernels>::adam_update(
        param.into_dispatch(),
        grad.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
        s.lr,
        s.beta_1,
        s.beta_2,
        s.epsilon,
        s.time,
    );
    (
        Tensor::from_dispatch(p),
        Tensor::from_dispatch(m),
        Tensor::from_dispatch(v),
    )
}

/// `norm.forward(x)`, through the host kernel when it trains on the batch's statistics on
/// flex (autodiff device, layer not frozen), with burn's running-statistics update; burn's
/// module otherwise (inference, wgpu).
pub fn batch_norm(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if !(on_flex(&x) && x.device().is_autodiff() && norm.training.is_enabled()) {
        return norm.forward(x);
    }
    let (output, mean, variance) = <Dispatch as TrainingKernels>::batch_norm_train(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        norm.epsilon,
    );
    let (mean, variance) = (
        Tensor::<1>::from_dispatch(mean),
        Tensor::<1>::from_dispatch(variance),
    );
    let device = mean.device();
    let blend = |running: Tensor<1>, batch: Tensor<1>| {
        running
            .to_device(&device)
            .mul_scalar(1.0 - norm.momentum)
            .add(batch.detach().mul_scalar(norm.momentum))
            .detach()
    };
    norm.running_mean
        .update(blend(norm.running_mean.value_sync(), mean));
    norm.running_var
        .update(blend(norm.running_var.value_sync(), variance));
    Tensor::from_dispatch(output)
}

/// `layer.forward(x)` for `[batch, in]` inputs, through the host kernel on flex (f32, with
/// a bias) and burn's module elsewhere.
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    let on_flex = x.device().inner() == Device::flex() && x.dtype() == DType::F32;
    match (&layer.bias, on_flex) {
        (Some(bias), true) => Tensor::from_dispatch(<Dispatch as TrainingKernels>::linear_dense(
            x.into_dispatch(),
            layer.weight.val().into_dispatch(),
            bias.val().into_dispatch(),
        )),
        _ => layer.forward(x),
    }
}
