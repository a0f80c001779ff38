//! The kernels on another machine. The client half ships each call as one of burn's custom
//! operations (`OperationIr::Custom`, with the call's tensors and numbers); the server half
//! ([`with_kernels`], in `serve`) runs it there with the flex implementation. One custom
//! operation replaces the dozen standard ones a dense layer's or an Adam step's burn code
//! sends, each its own message and its own pass over memory.
//!
//! Before training, a client asks the server what it serves ([`describe`]): its device's
//! name, for the status bar, and whether the kernels run there. Only a flex server has
//! them; on a GPU server a run uses burn's own operations.

use std::sync::Mutex;

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Cube, Dispatch, Flex, Remote, TensorMetadata};
use burn::tensor::remote::CustomOpClient;
use burn::tensor::server::{HandleContainer, RemoteServer};
use burn::tensor::{DType, Device, Shape, Tensor, TensorData};
use burn_ir::{BackendIr, CustomOpIr, ScalarIr, TensorIr};

use super::TrainingKernels;
use super::description::{DESCRIPTION_LEN, Description};
use super::flex::host_f32;

/// The custom operations' ids, one per kernel, the same on both sides.
mod id {
    pub const CONV: &str = "sparsity-explorer/conv2d";
    pub const CONV_BACKWARD: &str = "sparsity-explorer/conv2d-backward";
    pub const LINEAR: &str = "sparsity-explorer/linear";
    pub const LINEAR_BACKWARD: &str = "sparsity-explorer/linear-backward";
    pub const POOL: &str = "sparsity-explorer/max-pool2x2";
    pub const POOL_BACKWARD: &str = "sparsity-explorer/max-pool2x2-backward";
    pub const NORM: &str = "sparsity-explorer/batch-norm";
    pub const NORM_BACKWARD: &str = "sparsity-explorer/batch-norm-backward";
    pub const ADAM: &str = "sparsity-explorer/adam";
    pub const DESCRIBE: &str = "sparsity-explorer/describe";
}

/// The remote devices whose servers said they run the kernels.
static SERVED: Mutex<Vec<Device>> = Mutex::new(Vec::new());

/// Whether `device` (not autodiff) is a remote one whose server runs the kernels.
pub(super) fn serves_kernels(device: &Device) -> bool {
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

/// Sends the custom operation `id` on `inputs` (the first picks the server) and returns
/// its outputs, of the given shapes, all f32.
fn ship(
    id: &'static str,
    inputs: Vec<RemoteTensor>,
    outputs: &[Shape],
    scalars: Vec<ScalarIr>,
) -> Vec<RemoteTensor> {
    let typed: Vec<(Shape, DType)> = outputs.iter().map(|s| (s.clone(), DType::F32)).collect();
    ship_typed(id, inputs, &typed, scalars)
}

/// [`ship`] with outputs of any type.
fn ship_typed(
    id: &'static str,
    inputs: Vec<RemoteTensor>,
    outputs: &[(Shape, DType)],
    scalars: Vec<ScalarIr>,
) -> Vec<RemoteTensor> {
    let client = CustomOpClient::new(&inputs[0].device());
    let outputs: Vec<TensorIr> = outputs
        .iter()
        .map(|(s, dtype)| TensorIr::uninit(client.create_empty_handle(), s.clone(), *dtype))
        .collect();
    let inputs: Vec<TensorIr> = inputs.into_iter().map(|t| t.into_ir()).collect();
    client.register(CustomOpIr::with_scalars(id, &inputs, &outputs, scalars))
}

fn one(mut outputs: Vec<RemoteTensor>) -> RemoteTensor {
    outputs.remove(0)
}

fn three(outputs: Vec<RemoteTensor>) -> (RemoteTensor, RemoteTensor, RemoteTensor) {
    let mut it = outputs.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => unreachable!("a custom operation returns the outputs it was given"),
    }
}

fn uint(n: usize) -> ScalarIr {
    ScalarIr::UInt(n as u64)
}

/// The gradient of an input nobody asked for: `[0]`, as the flex kernels return it.
fn input_gradient_shape(x: &RemoteTensor, need_dx: bool) -> Shape {
    if need_dx { x.shape() } else { shape(&[0]) }
}

impl TrainingKernels for Remote {
    fn conv2d_unit_stride(
        x: RemoteTensor,
        weight: RemoteTensor,
        bias: RemoteTensor,
        pad_h: usize,
        pad_w: usize,
    ) -> RemoteTensor {
        let (xs, ws) = (x.shape(), weight.shape());
        let out = shape(&[
            xs[0],
            ws[0],
            xs[2] + 2 * pad_h + 1 - ws[2],
            xs[3] + 2 * pad_w + 1 - ws[3],
        ]);
        let scalars = vec![uint(pad_h), uint(pad_w)];
        one(ship(id::CONV, vec![x, weight, bias], &[out], scalars))
    }

    fn conv2d_unit_stride_backward(
        x: RemoteTensor,
        weight: RemoteTensor,
        dy: RemoteTensor,
        pad_h: usize,
        pad_w: usize,
        need_dx: bool,
    ) -> (RemoteTensor, RemoteTensor, RemoteTensor) {
        let ws = weight.shape();
        let outs = [
            input_gradient_shape(&x, need_dx),
            ws.clone(),
            shape(&[ws[0]]),
        ];
        let scalars = vec![uint(pad_h), uint(pad_w), ScalarIr::Bool(need_dx)];
        three(ship(id::CONV_BACKWARD, vec![x, weight, dy], &outs, scalars))
    }

    fn linear_dense(x: RemoteTensor, weight: RemoteTensor, bias: RemoteTensor) -> RemoteTensor {
        let out = shape(&[x.shape()[0], weight.shape()[1]]);
        one(ship(id::LINEAR, vec![x, weight, bias], &[out], vec![]))
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
        let scalars = vec![ScalarIr::Bool(need_dx)];
        three(ship(
            id::LINEAR_BACKWARD,
            vec![x, weight, dy],
            &outs,
            scalars,
        ))
    }

    fn max_pool2x2(x: RemoteTensor) -> (RemoteTensor, RemoteTensor) {
        let s = x.shape();
        let out = shape(&[s[0], s[1], s[2] / 2, s[3] / 2]);
        let outs = [(out.clone(), DType::F32), (out, DType::U8)];
        let mut outs = ship_typed(id::POOL, vec![x], &outs, vec![]).into_iter();
        match (outs.next(), outs.next()) {
            (Some(pooled), Some(winners)) => (pooled, winners),
            _ => unreachable!("a custom operation returns the outputs it was given"),
        }
    }

    fn max_pool2x2_backward(
        winners: RemoteTensor,
        dy: RemoteTensor,
        h: usize,
        w: usize,
    ) -> RemoteTensor {
        let s = winners.shape();
        let out = shape(&[s[0], s[1], h, w]);
        let scalars = vec![uint(h), uint(w)];
        one(ship(id::POOL_BACKWARD, vec![winners, dy], &[out], scalars))
    }

    fn batch_norm_train(
        x: RemoteTensor,
        gamma: RemoteTensor,
        beta: RemoteTensor,
        epsilon: f64,
    ) -> (RemoteTensor, RemoteTensor, RemoteTensor) {
        let (xs, channels) = (x.shape(), shape(&[x.shape()[1]]));
        let outs = [xs, channels.clone(), channels];
        let scalars = vec![ScalarIr::Float(epsilon)];
        three(ship(id::NORM, vec![x, gamma, beta], &outs, scalars))
    }

    fn batch_norm_train_backward(
        x: RemoteTensor,
        gamma: RemoteTensor,
        mean: RemoteTensor,
        variance: RemoteTensor,
        dy: RemoteTensor,
        epsilon: f64,
    ) -> (RemoteTensor, RemoteTensor, RemoteTensor) {
        let (xs, channels) = (x.shape(), gamma.shape());
        let outs = [xs, channels.clone(), channels];
        let inputs = vec![x, gamma, mean, variance, dy];
        let scalars = vec![ScalarIr::Float(epsilon)];
        three(ship(id::NORM_BACKWARD, inputs, &outs, scalars))
    }

    fn describe_device(probe: RemoteTensor) -> RemoteTensor {
        one(ship(
            id::DESCRIBE,
            vec![probe],
            &[shape(&[DESCRIPTION_LEN])],
            vec![],
        ))
    }

    fn adam_update(
        param: RemoteTensor,
        grad: RemoteTensor,
        moment_1: RemoteTensor,
        moment_2: RemoteTensor,
        lr: f64,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        time: usize,
    ) -> (RemoteTensor, RemoteTensor, RemoteTensor) {
        let s = param.shape();
        let outs = [s.clone(), s.clone(), s];
        let scalars = vec![
            ScalarIr::Float(lr),
            ScalarIr::Float(beta_1.into()),
            ScalarIr::Float(beta_2.into()),
            ScalarIr::Float(epsilon.into()),
            uint(time),
        ];
        let inputs = vec![param, grad, moment_1, moment_2];
        three(ship(id::ADAM, inputs, &outs, scalars))
    }
}

type FlexHandles = HandleContainer<<Flex as BackendIr>::Handle>;

/// The call's `N` input tensors, in order.
fn inputs<const N: usize>(handles: &mut FlexHandles, ir: &CustomOpIr) -> [FlexTensor; N] {
    std::array::from_fn(|i| handles.get_float_tensor::<Flex>(&ir.inputs[i]))
}

/// Hands the results to the ids the client gave them.
fn outputs(
    handles: &mut FlexHandles,
    ir: &CustomOpIr,
    results: impl IntoIterator<Item = FlexTensor>,
) {
    for (out, tensor) in ir.outputs.iter().zip(results) {
        handles.register_float_tensor::<Flex>(&out.id, tensor);
    }
}

fn scalar_usize(ir: &CustomOpIr, i: usize) -> usize {
    ir.scalars[i].elem::<u64>() as usize
}

fn scalar_f64(ir: &CustomOpIr, i: usize) -> f64 {
    ir.scalars[i].elem::<f64>()
}

fn scalar_bool(ir: &CustomOpIr, i: usize) -> bool {
    ir.scalars[i].elem::<bool>()
}

/// `server` answering [`describe`] with `description`, and running the kernels when
/// `device` is flex (the description then says so).
pub fn with_kernels(
    server: RemoteServer,
    device: &Device,
    description: Description,
) -> RemoteServer {
    if device.clone().inner() != Device::flex() {
        let values = Description {
            kernels: false,
            ..description
        }
        .encode();
        return server.with_custom_op::<Cube, _>(id::DESCRIBE, move |handles, ir, device| {
            use burn::backend::ops::FloatTensorOps;
            let data = TensorData::new(values.clone(), [DESCRIPTION_LEN]);
            let answer = <Cube as FloatTensorOps<Cube>>::float_from_data(data, device);
            handles.register_float_tensor::<Cube>(&ir.outputs[0].id, answer);
        });
    }
    let values = Description {
        kernels: true,
        ..description
    }
    .encode();
    server
        .with_custom_op::<Flex, _>(id::DESCRIBE, move |handles, ir, _| {
            let answer = host_f32(values.clone(), &[DESCRIPTION_LEN]);
            outputs(handles, ir, [answer]);
        })
        .with_custom_op::<Flex, _>(id::CONV, |handles, ir, _| {
            let [x, w, b] = inputs(handles, ir);
            let (pad_h, pad_w) = (scalar_usize(ir, 0), scalar_usize(ir, 1));
            outputs(
                handles,
                ir,
                [Flex::conv2d_unit_stride(x, w, b, pad_h, pad_w)],
            );
        })
        .with_custom_op::<Flex, _>(id::CONV_BACKWARD, |handles, ir, _| {
            let [x, w, dy] = inputs(handles, ir);
            let (pad_h, pad_w) = (scalar_usize(ir, 0), scalar_usize(ir, 1));
            let (dx, dw, db) =
                Flex::conv2d_unit_stride_backward(x, w, dy, pad_h, pad_w, scalar_bool(ir, 2));
            outputs(handles, ir, [dx, dw, db]);
        })
        .with_custom_op::<Flex, _>(id::LINEAR, |handles, ir, _| {
            let [x, w, b] = inputs(handles, ir);
            outputs(handles, ir, [Flex::linear_dense(x, w, b)]);
        })
        .with_custom_op::<Flex, _>(id::LINEAR_BACKWARD, |handles, ir, _| {
            let [x, w, dy] = inputs(handles, ir);
            let (dx, dw, db) = Flex::linear_dense_backward(x, w, dy, scalar_bool(ir, 0));
            outputs(handles, ir, [dx, dw, db]);
        })
        .with_custom_op::<Flex, _>(id::POOL, |handles, ir, _| {
            let [x] = inputs(handles, ir);
            let (pooled, winners) = Flex::max_pool2x2(x);
            handles.register_float_tensor::<Flex>(&ir.outputs[0].id, pooled);
            handles.register_int_tensor::<Flex>(&ir.outputs[1].id, winners);
        })
        .with_custom_op::<Flex, _>(id::POOL_BACKWARD, |handles, ir, _| {
            let winners = handles.get_int_tensor::<Flex>(&ir.inputs[0]);
            let dy = handles.get_float_tensor::<Flex>(&ir.inputs[1]);
            let (h, w) = (scalar_usize(ir, 0), scalar_usize(ir, 1));
            outputs(handles, ir, [Flex::max_pool2x2_backward(winners, dy, h, w)]);
        })
        .with_custom_op::<Flex, _>(id::NORM, |handles, ir, _| {
            let [x, gamma, beta] = inputs(handles, ir);
            let (y, mean, variance) = Flex::batch_norm_train(x, gamma, beta, scalar_f64(ir, 0));
            outputs(handles, ir, [y, mean, variance]);
        })
        .with_custom_op::<Flex, _>(id::NORM_BACKWARD, |handles, ir, _| {
            let [x, gamma, mean, variance, dy] = inputs(handles, ir);
            let (dx, dgamma, dbeta) =
                Flex::batch_norm_train_backward(x, gamma, mean, variance, dy, scalar_f64(ir, 0));
            outputs(handles, ir, [dx, dgamma, dbeta]);
        })
        .with_custom_op::<Flex, _>(id::ADAM, |handles, ir, _| {
            let [p, g, m, v] = inputs(handles, ir);
            let (p, m, v) = Flex::adam_update(
                p,
                g,
                m,
                v,
                scalar_f64(ir, 0),
                scalar_f64(ir, 1) as f32,
                scalar_f64(ir, 2) as f32,
                scalar_f64(ir, 3) as f32,
                scalar_usize(ir, 4),
            );
            outputs(handles, ir, [p, m, v]);
        })
}
