//! The client half: each call of the kernels on a remote device shipped as one custom
//! operation, and the registry of the devices whose servers said they run the kernels.

use std::sync::Mutex;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Dispatch, Remote, TensorMetadata};
use burn::tensor::remote::CustomOpClient;
use burn::tensor::{DType, Device, Shape, Tensor};
use burn_ir::{CustomOpIr, TensorIr};

use super::protocol::{ConvBackward, Heads, NeedDx, Op, PoolInput, Scalars, op};
use crate::kernels::adam::AdamStep;
use crate::kernels::conv::{ConvSpacing, out_len};
use crate::kernels::extension::TrainingKernels;
use crate::kernels::extension::description::{DESCRIPTION_LEN, Description};
use crate::kernels::norm::NormOptions;

/// The remote devices whose servers said they run the kernels.
static SERVED: Mutex<Vec<Device>> = Mutex::new(Vec::new());

/// Whether `device` (not autodiff) is a remote one whose server runs the kernels.
pub(in crate::kernels::extension) fn serves_kernels(device: &Device) -> bool {
    SERVED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(device)
}

/// Asks the server behind `device` what it serves, and from then on runs the kernels there
/// when it has them (and not when a server without them took the address over). An error when it does not answer the question, as a plain burn server
/// or another program's would not.
pub fn describe(device: &Device) -> Result<Description, String> {
    let device = device.clone().inner();
    let probe = Tensor::<1>::zeros([1], &device);
    let answer = Tensor::<1>::from_dispatch(<Dispatch as TrainingKernels>::describe_device(
        probe.into_dispatch(),
    ));
    let values = answer
        .try_into_data()
        .map_err(|e| e.to_string())?
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let description = Description::decode(&values)
        .ok_or_else(|| "its description of itself is unreadable".to_string())?;
    // the same address may now be served by another server than at the last connection
    let mut served = SERVED.lock().unwrap_or_else(|e| e.into_inner());
    served.retain(|d| *d != device);
    if description.kernels {
        served.push(device);
    }
    Ok(description)
}

type RemoteTensor = FloatTensor<Remote>;

fn shape(dims: &[usize]) -> Shape {
    Shape::from(dims.iter().copied())
}

/// Sends the custom operation `op` on `inputs` (the first picks the server) with its
/// numbers, and returns its outputs, of the given shapes, all f32.
fn ship<S: Scalars>(
    op: Op<S>,
    inputs: Vec<RemoteTensor>,
    outputs: &[Shape],
    scalars: S,
) -> Vec<RemoteTensor> {
    let typed: Vec<(Shape, DType)> = outputs.iter().map(|s| (s.clone(), DType::F32)).collect();
    ship_typed(op, inputs, &typed, scalars)
}

/// [`ship`] with outputs of any type.
fn ship_typed<S: Scalars>(
    op: Op<S>,
    inputs: Vec<RemoteTensor>,
    outputs: &[(Shape, DType)],
    scalars: S,
) -> Vec<RemoteTensor> {
    let client = CustomOpClient::new(&inputs[0].device());
    let outputs: Vec<TensorIr> = outputs
        .iter()
        .map(|(s, dtype)| TensorIr::uninit(client.create_empty_handle(), s.clone(), *dtype))
        .collect();
    let inputs: Vec<TensorIr> = inputs.into_iter().map(|t| t.into_ir()).collect();
    client.register(CustomOpIr::with_scalars(
        op.id,
        &inputs,
        &outputs,
        scalars.encode(),
    ))
}

fn one(mut outputs: Vec<RemoteTensor>) -> RemoteTensor {
    outputs.remove(0)
}

fn two(outputs: Vec<RemoteTensor>) -> (RemoteTensor, RemoteTensor) {
    let mut it = outputs.into_iter();
    match (it.next(), it.next()) {
        (Some(a), Some(b)) => (a, b),
        _ => unreachable!("a custom operation returns the outputs it was given"),
    }
}

fn three(outputs: Vec<RemoteTensor>) -> (RemoteTensor, RemoteTensor, RemoteTensor) {
    let mut it = outputs.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => unreachable!("a custom operation returns the outputs it was given"),
    }
}

/// The gradient of an input nobody asked for: `[0]`, as the flex kernels return it.
fn input_gradient_shape(x: &RemoteTensor, need_dx: bool) -> Shape {
    if need_dx { x.shape() } else { shape(&[0]) }
}

impl TrainingKernels for Remote {
    fn conv2d_strided(
        x: RemoteTensor,
        weight: RemoteTensor,
        bias: RemoteTensor,
        spacing: ConvSpacing,
    ) -> RemoteTensor {
        let (xs, ws) = (x.shape(), weight.shape());
        let ([pad_h, pad_w], [stride_h, stride_w]) = (spacing.padding, spacing.stride);
        let out = shape(&[
            xs[0],
            ws[0],
            out_len(xs[2], pad_h, ws[2], stride_h),
            out_len(xs[3], pad_w, ws[3], stride_w),
        ]);
        one(ship(op::CONV, vec![x, weight, bias], &[out], spacing))
    }

    fn conv2d_strided_backward(
        x: RemoteTensor,
        weight: RemoteTensor,
        dy: RemoteTensor,
        spacing: ConvSpacing,
        need_dx: bool,
    ) -> (RemoteTensor, RemoteTensor, RemoteTensor) {
        let ws = weight.shape();
        let outs = [
            input_gradient_shape(&x, need_dx),
            ws.clone(),
            shape(&[ws[0]]),
        ];
        let scalars = ConvBackward { spacing, need_dx };
        three(ship(op::CONV_BACKWARD, vec![x, weight, dy], &outs, scalars))
    }

    fn linear_dense(x: RemoteTensor, weight: RemoteTensor, bias: RemoteTensor) -> RemoteTensor {
        let out = shape(&[x.shape()[0], weight.shape()[1]]);
        one(ship(op::LINEAR, vec![x, weight, bias], &[out], ()))
    }

    fn linear_dense_backward(
        x: RemoteTensor,
        weight: RemoteTensor,
        dy: RemoteTensor,
        need_dx: bool,
    ) -> (RemoteTensor, RemoteTensor, RemoteTensor) {
        let ws = weight.shape();
        let outs = [
            input_gradient_shape(&x, need_dx),
            ws.clone(),
            shape(&[ws[1]]),
        ];
        three(ship(
            op::LINEAR_BACKWARD,
            vec![x, weight, dy],
            &outs,
            NeedDx(need_dx),
        ))
    }

    fn max_pool2x2(x: RemoteTensor) -> (RemoteTensor, RemoteTensor) {
        let s = x.shape();
        let out = shape(&[s[0], s[1], s[2] / 2, s[3] / 2]);
        let outs = [(out.clone(), DType::F32), (out, DType::U8)];
        two(ship_typed(op::POOL, vec![x], &outs, ()))
    }

    fn max_pool2x2_backward(
        winners: RemoteTensor,
        dy: RemoteTensor,
        h: usize,
        w: usize,
    ) -> RemoteTensor {
        let s = winners.shape();
        let out = shape(&[s[0], s[1], h, w]);
        let input = PoolInput { h, w };
        one(ship(op::POOL_BACKWARD, vec![winners, dy], &[out], input))
    }

    fn batch_norm_train(
        x: RemoteTensor,
        gamma: RemoteTensor,
        beta: RemoteTensor,
        options: NormOptions,
    ) -> (RemoteTensor, RemoteTensor, RemoteTensor) {
        let (xs, channels) = (x.shape(), shape(&[x.shape()[1]]));
        let outs = [xs, channels.clone(), channels];
        three(ship(op::NORM, vec![x, gamma, beta], &outs, options))
    }

    fn batch_norm_train_backward(
        x: RemoteTensor,
        gamma: RemoteTensor,
        beta: RemoteTensor,
        mean: RemoteTensor,
        variance: RemoteTensor,
        dy: RemoteTensor,
        options: NormOptions,
    ) -> (RemoteTensor, RemoteTensor, RemoteTensor) {
        let (xs, channels) = (x.shape(), gamma.shape());
        let outs = [xs, channels.clone(), channels];
        let inputs = vec![x, gamma, beta, mean, variance, dy];
        three(ship(op::NORM_BACKWARD, inputs, &outs, options))
    }

    fn gelu_exact(x: RemoteTensor) -> RemoteTensor {
        let out = x.shape();
        one(ship(op::GELU, vec![x], &[out], ()))
    }

    fn gelu_exact_backward(x: RemoteTensor, dy: RemoteTensor) -> RemoteTensor {
        let out = x.shape();
        one(ship(op::GELU_BACKWARD, vec![x, dy], &[out], ()))
    }

    fn packed_attention(qkv: RemoteTensor, heads: usize) -> (RemoteTensor, RemoteTensor) {
        let s = qkv.shape();
        let outs = [
            shape(&[s[0], s[1], s[2] / 3]),
            shape(&[s[0], heads, s[1], s[1]]),
        ];
        two(ship(op::ATTENTION, vec![qkv], &outs, Heads(heads)))
    }

    fn packed_attention_backward(
        qkv: RemoteTensor,
        weights: RemoteTensor,
        dy: RemoteTensor,
        heads: usize,
    ) -> RemoteTensor {
        let out = qkv.shape();
        let inputs = vec![qkv, weights, dy];
        one(ship(op::ATTENTION_BACKWARD, inputs, &[out], Heads(heads)))
    }

    fn describe_device(probe: RemoteTensor) -> RemoteTensor {
        one(ship(
            op::DESCRIBE,
            vec![probe],
            &[shape(&[DESCRIPTION_LEN])],
            (),
        ))
    }

    fn adam_update(
        param: RemoteTensor,
        grad: RemoteTensor,
        moment_1: RemoteTensor,
        moment_2: RemoteTensor,
        step: AdamStep,
    ) -> (RemoteTensor, RemoteTensor, RemoteTensor) {
        let s = param.shape();
        let outs = [s.clone(), s.clone(), s];
        let inputs = vec![param, grad, moment_1, moment_2];
        three(ship(op::ADAM, inputs, &outs, step))
    }
}
