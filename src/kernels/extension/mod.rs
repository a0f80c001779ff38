//! The host kernels as a burn backend extension: a trait with one method per operation
//! and one per backward pass, implemented for `Flex` (the host kernels), for burn's
//! `Remote` (each call shipped as a custom operation to a `serve` process, which runs the
//! flex implementation) and for `Autodiff` over either (the forward pass registered with
//! burn's autograd together with the kernel's backward pass), routed by burn's `Dispatch`.
//! Models call [`conv2d`], [`linear`], [`max_pool2d`], [`batch_norm`], [`gelu`] and
//! [`attention`], which take this
//! path where [`kernels_run_on`] the device and burn's own modules everywhere else (wgpu),
//! so the same model code runs on all of them.

use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::tensor::{DType, Device, Tensor};

mod autodiff;
pub mod description;
mod flex;
pub mod remote;

use super::adam::AdamStep;
use super::conv::ConvSpacing;
use super::norm::NormOptions;

/// Training operations with hand-written CPU kernels.
#[backend_extension(Flex, Remote, Autodiff)]
pub trait TrainingKernels: Backend {
    /// Convolution with no dilation, one group, and the same zeros on both sides of an
    /// axis: `x[n, c_in, h, w]`, `weight[c_out, c_in, kh, kw]`, `bias[c_out]` to `[n, c_out,
    /// (h + 2 pad_h - kh) / stride_h + 1, (w + 2 pad_w - kw) / stride_w + 1]`.
    fn conv2d_strided(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spacing: ConvSpacing,
    ) -> FloatTensor<Self>;

    /// The convolution's gradients for `dy`: `dx` (an empty `[0]` tensor unless
    /// `need_dx`), `dweight` and `dbias`.
    fn conv2d_strided_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        spacing: ConvSpacing,
        need_dx: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Dense layer in burn's layout: `x[batch, in] @ weight[in, out] + bias[out]`.
    fn linear_dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The dense layer's gradients for `dy`: `dx` (an empty `[0]` tensor unless
    /// `need_dx`), `dweight` and `dbias`.
    fn linear_dense_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        need_dx: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// 2x2 max pooling with stride 2: `[n, c, h, w]` to `[n, c, h / 2, w / 2]`, and which
    /// of its window's four inputs each output is (u8, `0..4`, the same shape).
    fn max_pool2x2(x: FloatTensor<Self>) -> (FloatTensor<Self>, IntTensor<Self>);

    /// The pooling's input gradient (`[n, c, h, w]`): each of `dy` goes to the input its
    /// `winners` name, every other input gets zero.
    fn max_pool2x2_backward(
        winners: IntTensor<Self>,
        dy: FloatTensor<Self>,
        h: usize,
        w: usize,
    ) -> FloatTensor<Self>;

    /// Batch normalization with the batch's statistics (and the ReLU after it, when the
    /// options fold one in): the output, and the batch mean and biased variance per
    /// channel (for the running statistics).
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        options: NormOptions,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// The batch normalization's gradients for `dy` (`mean` and `variance` are the batch's,
    /// from the forward pass): `dx`, `dgamma` and `dbeta`.
    fn batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        options: NormOptions,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// GELU (exact, with `erf`) of every value, any shape.
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// GELU's input gradient for `dy`.
    fn gelu_exact_backward(x: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Scaled dot-product attention of `heads` heads from the packed projection
    /// `qkv[batch, n, 3 * inner]` (queries, keys, values): the heads side by side
    /// `[batch, n, inner]`, and their attention weights `[batch, heads, n, n]`.
    fn packed_attention(
        qkv: FloatTensor<Self>,
        heads: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The attention's gradient of `qkv` for `dy`, from its forward pass's weights.
    fn packed_attention_backward(
        qkv: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        heads: usize,
    ) -> FloatTensor<Self>;

    /// What serves this device, for a client to show and to know whether the kernels run
    /// there: [`description::Description`] as text in a `[256]` tensor, one byte per element.
    /// `probe` only picks the device.
    fn describe_device(probe: FloatTensor<Self>) -> FloatTensor<Self>;

    /// One Adam step (see [`adam_update`](super::adam::adam_update)): the new parameter and moments.
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Whether the kernels run on `device` (with or without autodiff): flex, or a server that
/// serves them ([`remote::describe`]).
pub fn kernels_run_on(device: &Device) -> bool {
    let device = device.clone().inner();
    device == Device::flex() || remote::serves_kernels(&device)
}

/// True when `tensor` is f32 on a device the kernels run on.
fn on_kernels<const D: usize>(tensor: &Tensor<D>) -> bool {
    tensor.dtype() == DType::F32 && kernels_run_on(&tensor.device())
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

/// The bias of a dense layer for the kernels: its own, or zeros for a layer without one; a
/// constant, so no gradient flows to it.
fn bias_or_zeros(
    bias: Option<&burn::module::Param<Tensor<1>>>,
    out: usize,
    like: &Tensor<2>,
) -> Tensor<1> {
    match bias {
        Some(b) => b.val(),
        None => Tensor::zeros([out], &like.device()),
    }
}

/// GELU (exact, as burn's and PyTorch's default), through the host kernel where
/// [`kernels_run_on`] the device and burn's elsewhere.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_kernels(&x) {
        Tensor::from_dispatch(<Dispatch as TrainingKernels>::gelu_exact(x.into_dispatch()))
    } else {
        burn::tensor::activation::gelu(x)
    }
}

/// Scaled dot-product attention of `heads` heads from the packed projection `qkv[batch, n,
/// 3 * inner]` (PyTorch's `in_proj` order: queries, keys, values) to the heads side by side
/// `[batch, n, inner]`: through the host kernel where [`kernels_run_on`] the device, and as
/// burn's tensor operations elsewhere.
pub fn attention(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    if on_kernels(&qkv) {
        let (mixed, _) =
            <Dispatch as TrainingKernels>::packed_attention(qkv.into_dispatch(), heads);
        return Tensor::from_dispatch(mixed);
    }
    let [batch, n, packed] = qkv.dims();
    let inner = packed / 3;
    let hd = inner / heads;
    // [batch, n, inner] -> [batch, heads, n, hd]
    let split = |t: Tensor<3>| t.reshape([batch, n, heads, hd]).swap_dims(1, 2);
    let q = split(qkv.clone().narrow(2, 0, inner)).mul_scalar(1.0 / (hd as f64).sqrt());
    let k = split(qkv.clone().narrow(2, inner, inner));
    let v = split(qkv.narrow(2, 2 * inner, inner));
    let weights = burn::tensor::activation::softmax(q.matmul(k.swap_dims(2, 3)), 3); // [batch, heads, n, n]
    // [batch, heads, n, hd] -> [batch, n, inner]
    weights.matmul(v).swap_dims(1, 2).reshape([batch, n, inner])
}

/// `conv.forward(x)`, through the host kernels where they apply ([`kernels_run_on`], f32, no
/// dilation, one group, symmetric padding, any stride) and burn's module elsewhere.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let plain = conv.dilation == [1, 1] && conv.groups == 1;
    match (plain && on_kernels(&x), symmetric_padding(conv)) {
        (true, Some((pad_h, pad_w))) => {
            let spacing = ConvSpacing {
                padding: [pad_h, pad_w],
                stride: conv.stride,
            };
            let weight = conv.weight.val();
            let out_channels = weight.dims()[0];
            // no bias (a convolution before a batch norm): zeros, a constant
            let bias = match &conv.bias {
                Some(b) => b.val(),
                None => Tensor::zeros([out_channels], &weight.device()),
            };
            let out = <Dispatch as TrainingKernels>::conv2d_strided(
                x.into_dispatch(),
                weight.into_dispatch(),
                bias.into_dispatch(),
                spacing,
            );
            Tensor::from_dispatch(out)
        }
        _ => conv.forward(x),
    }
}

/// `pool.forward(x)`, through the host kernel where it applies ([`kernels_run_on`], f32, 2x2
/// windows with stride 2, no padding, no dilation, floor mode) and burn's module elsewhere.
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let two_by_two = pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(pool.padding, PaddingConfig2d::Valid);
    if two_by_two && on_kernels(&x) {
        let (pooled, _winners) = <Dispatch as TrainingKernels>::max_pool2x2(x.into_dispatch());
        Tensor::from_dispatch(pooled)
    } else {
        pool.forward(x)
    }
}

/// One fused Adam step where the kernels run: the new parameter and moments.
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
        s,
    );
    (
        Tensor::from_dispatch(p),
        Tensor::from_dispatch(m),
        Tensor::from_dispatch(v),
    )
}

/// `norm.forward(x)`, through the host kernel when it trains on the batch's statistics on
/// a device the kernels run on (autodiff device, layer not frozen), with burn's running-statistics update; burn's
/// module otherwise (inference, wgpu).
pub fn batch_norm(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    normalized(norm, x, false)
}

/// `relu(norm.forward(x))`, as one kernel pass each way where [`batch_norm`] runs on the
/// kernels: batch norm is bound by memory, and a separate ReLU reads and writes the whole
/// activation again forward and backward.
pub fn batch_norm_relu(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    normalized(norm, x, true)
}

fn normalized(norm: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    if !(on_kernels(&x) && x.device().is_autodiff() && norm.training.is_enabled()) {
        let y = norm.forward(x);
        return if relu {
            burn::tensor::activation::relu(y)
        } else {
            y
        };
    }
    let (output, mean, variance) = <Dispatch as TrainingKernels>::batch_norm_train(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        NormOptions {
            epsilon: norm.epsilon,
            relu,
        },
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

/// `layer.forward(x)` for `[batch, in]` inputs, through the host kernel where it runs (f32)
/// and burn's module elsewhere.
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    if !on_kernels(&x) {
        return layer.forward(x);
    }
    let weight = layer.weight.val();
    let bias = bias_or_zeros(layer.bias.as_ref(), weight.dims()[1], &weight);
    Tensor::from_dispatch(<Dispatch as TrainingKernels>::linear_dense(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}
