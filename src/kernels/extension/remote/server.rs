//! The server half: the handlers `serve` registers, each running one custom operation
//! with the flex implementation, one registration helper per kernel family.

use burn::backend::flex::FlexTensor;
use burn::backend::{Cube, Flex};
use burn::tensor::server::{HandleContainer, RemoteServer};
use burn::tensor::{Device, TensorData};
use burn_ir::{BackendIr, CustomOpIr};

use super::protocol::{ConvBackward, Heads, NeedDx, PoolInput, op};
use crate::kernels::extension::TrainingKernels;
use crate::kernels::extension::description::{DESCRIPTION_LEN, Description};
use crate::kernels::extension::flex::host_f32;

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

/// `server` answering [`describe`](super::describe) with `description`, and running the
/// kernels when `device` is flex (the description then says so).
pub fn with_kernels(
    server: RemoteServer,
    device: &Device,
    description: Description,
) -> RemoteServer {
    if device.clone().inner() != Device::flex() {
        return with_gpu_description(server, description);
    }
    let families: [fn(RemoteServer) -> RemoteServer; 7] = [
        with_conv,
        with_linear,
        with_pool,
        with_norm,
        with_gelu,
        with_attention,
        with_adam,
    ];
    let server = with_flex_description(server, description);
    families
        .into_iter()
        .fold(server, |server, register| register(server))
}

/// A server without the kernels (on a GPU): it answers [`describe`](super::describe) only,
/// saying so, and a client runs burn's own operations there.
fn with_gpu_description(server: RemoteServer, description: Description) -> RemoteServer {
    let values = Description {
        kernels: false,
        ..description
    }
    .encode();
    server.with_custom_op::<Cube, _>(op::DESCRIBE.id, move |handles, ir, device| {
        use burn::backend::ops::FloatTensorOps;
        let data = TensorData::new(values.clone(), [DESCRIPTION_LEN]);
        let answer = <Cube as FloatTensorOps<Cube>>::float_from_data(data, device);
        handles.register_float_tensor::<Cube>(&ir.outputs[0].id, answer);
    })
}

/// A flex server's answer to [`describe`](super::describe): the kernels run here.
fn with_flex_description(server: RemoteServer, description: Description) -> RemoteServer {
    let values = Description {
        kernels: true,
        ..description
    }
    .encode();
    server.with_custom_op::<Flex, _>(op::DESCRIBE.id, move |handles, ir, _| {
        let answer = host_f32(values.clone(), &[DESCRIPTION_LEN]);
        outputs(handles, ir, [answer]);
    })
}

/// The convolution, forward and backward.
fn with_conv(server: RemoteServer) -> RemoteServer {
    server
        .with_custom_op::<Flex, _>(op::CONV.id, |handles, ir, _| {
            let [x, w, b] = inputs(handles, ir);
            let spacing = op::CONV.read(ir);
            outputs(handles, ir, [Flex::conv2d_strided(x, w, b, spacing)]);
        })
        .with_custom_op::<Flex, _>(op::CONV_BACKWARD.id, |handles, ir, _| {
            let [x, w, dy] = inputs(handles, ir);
            let ConvBackward { spacing, need_dx } = op::CONV_BACKWARD.read(ir);
            let (dx, dw, db) = Flex::conv2d_strided_backward(x, w, dy, spacing, need_dx);
            outputs(handles, ir, [dx, dw, db]);
        })
}

/// The dense layer, forward and backward.
fn with_linear(server: RemoteServer) -> RemoteServer {
    server
        .with_custom_op::<Flex, _>(op::LINEAR.id, |handles, ir, _| {
            let [x, w, b] = inputs(handles, ir);
            op::LINEAR.read(ir);
            outputs(handles, ir, [Flex::linear_dense(x, w, b)]);
        })
        .with_custom_op::<Flex, _>(op::LINEAR_BACKWARD.id, |handles, ir, _| {
            let [x, w, dy] = inputs(handles, ir);
            let NeedDx(need_dx) = op::LINEAR_BACKWARD.read(ir);
            let (dx, dw, db) = Flex::linear_dense_backward(x, w, dy, need_dx);
            outputs(handles, ir, [dx, dw, db]);
        })
}

/// The 2x2 max pooling, forward (its winners an int tensor) and backward.
fn with_pool(server: RemoteServer) -> RemoteServer {
    server
        .with_custom_op::<Flex, _>(op::POOL.id, |handles, ir, _| {
            op::POOL.read(ir);
            let [x] = inputs(handles, ir);
            let (pooled, winners) = Flex::max_pool2x2(x);
            handles.register_float_tensor::<Flex>(&ir.outputs[0].id, pooled);
            handles.register_int_tensor::<Flex>(&ir.outputs[1].id, winners);
        })
        .with_custom_op::<Flex, _>(op::POOL_BACKWARD.id, |handles, ir, _| {
            let winners = handles.get_int_tensor::<Flex>(&ir.inputs[0]);
            let dy = handles.get_float_tensor::<Flex>(&ir.inputs[1]);
            let PoolInput { h, w } = op::POOL_BACKWARD.read(ir);
            outputs(handles, ir, [Flex::max_pool2x2_backward(winners, dy, h, w)]);
        })
}

/// The batch normalization (with a folded ReLU or not), forward and backward.
fn with_norm(server: RemoteServer) -> RemoteServer {
    server
        .with_custom_op::<Flex, _>(op::NORM.id, |handles, ir, _| {
            let [x, gamma, beta] = inputs(handles, ir);
            let options = op::NORM.read(ir);
            let (y, mean, variance) = Flex::batch_norm_train(x, gamma, beta, options);
            outputs(handles, ir, [y, mean, variance]);
        })
        .with_custom_op::<Flex, _>(op::NORM_BACKWARD.id, |handles, ir, _| {
            let [x, gamma, beta, mean, variance, dy] = inputs(handles, ir);
            let options = op::NORM_BACKWARD.read(ir);
            let (dx, dgamma, dbeta) =
                Flex::batch_norm_train_backward(x, gamma, beta, mean, variance, dy, options);
            outputs(handles, ir, [dx, dgamma, dbeta]);
        })
}

/// GELU, forward and backward.
fn with_gelu(server: RemoteServer) -> RemoteServer {
    server
        .with_custom_op::<Flex, _>(op::GELU.id, |handles, ir, _| {
            op::GELU.read(ir);
            let [x] = inputs(handles, ir);
            outputs(handles, ir, [Flex::gelu_exact(x)]);
        })
        .with_custom_op::<Flex, _>(op::GELU_BACKWARD.id, |handles, ir, _| {
            op::GELU_BACKWARD.read(ir);
            let [x, dy] = inputs(handles, ir);
            outputs(handles, ir, [Flex::gelu_exact_backward(x, dy)]);
        })
}

/// The packed attention, forward and backward.
fn with_attention(server: RemoteServer) -> RemoteServer {
    server
        .with_custom_op::<Flex, _>(op::ATTENTION.id, |handles, ir, _| {
            let Heads(heads) = op::ATTENTION.read(ir);
            let [qkv] = inputs(handles, ir);
            let (output, weights) = Flex::packed_attention(qkv, heads);
            outputs(handles, ir, [output, weights]);
        })
        .with_custom_op::<Flex, _>(op::ATTENTION_BACKWARD.id, |handles, ir, _| {
            let Heads(heads) = op::ATTENTION_BACKWARD.read(ir);
            let [qkv, weights, dy] = inputs(handles, ir);
            outputs(
                handles,
                ir,
                [Flex::packed_attention_backward(qkv, weights, dy, heads)],
            );
        })
}

/// The fused Adam step.
fn with_adam(server: RemoteServer) -> RemoteServer {
    server.with_custom_op::<Flex, _>(op::ADAM.id, |handles, ir, _| {
        let [p, g, m, v] = inputs(handles, ir);
        let (p, m, v) = Flex::adam_update(p, g, m, v, op::ADAM.read(ir));
        outputs(handles, ir, [p, m, v]);
    })
}
