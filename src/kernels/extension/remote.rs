//! The kernels on another machine. The client half ships each call as one of burn's custom
//! operations (`OperationIr::Custom`, with the call's tensors and numbers); the server half
//! ([`with_kernels`], in `serve`) runs it there with the flex implementation. One custom
//! operation replaces the dozen standard ones a dense layer's or an Adam step's burn code
//! sends, each its own message and its own pass over memory.
//!
//! Before training, a client asks the server what it serves ([`describe`]): its device's
//! name, for the status bar, and whether the kernels run there. Only a flex server has
//! them; on a GPU server a run uses burn's own operations.

use std::marker::PhantomData;
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
use crate::kernels::adam::AdamStep;
use crate::kernels::conv::{ConvSpacing, out_len};
use crate::kernels::norm::NormOptions;

/// A custom operation: its id, the same on both sides, and the type of the numbers it
/// carries besides its tensors ([`Scalars`]), so that the client's call and the server's
/// handler cannot disagree on them.
struct Op<S> {
    id: &'static str,
    scalars: PhantomData<fn() -> S>,
}

impl<S: Scalars> Op<S> {
    const fn new(id: &'static str) -> Self {
        Self {
            id,
            scalars: PhantomData,
        }
    }

    /// The numbers a call of this operation carries, as the client wrote them.
    fn read(&self, ir: &CustomOpIr) -> S {
        S::decode(&ir.scalars).unwrap_or_else(|| {
            panic!(
                "custom operation {}: {} numbers that are not its own",
                self.id,
                ir.scalars.len()
            )
        })
    }
}

/// The operations, one per kernel.
mod op {
    use super::{AdamStep, ConvBackward, ConvSpacing, Heads, NeedDx, NormOptions, Op, PoolInput};

    pub const CONV: Op<ConvSpacing> = Op::new("sparsity-explorer/conv2d");
    pub const CONV_BACKWARD: Op<ConvBackward> = Op::new("sparsity-explorer/conv2d-backward");
    pub const LINEAR: Op<()> = Op::new("sparsity-explorer/linear");
    pub const LINEAR_BACKWARD: Op<NeedDx> = Op::new("sparsity-explorer/linear-backward");
    pub const POOL: Op<()> = Op::new("sparsity-explorer/max-pool2x2");
    pub const POOL_BACKWARD: Op<PoolInput> = Op::new("sparsity-explorer/max-pool2x2-backward");
    pub const NORM: Op<NormOptions> = Op::new("sparsity-explorer/batch-norm");
    pub const NORM_BACKWARD: Op<NormOptions> = Op::new("sparsity-explorer/batch-norm-backward");
    pub const ADAM: Op<AdamStep> = Op::new("sparsity-explorer/adam");
    pub const GELU: Op<()> = Op::new("sparsity-explorer/gelu");
    pub const GELU_BACKWARD: Op<()> = Op::new("sparsity-explorer/gelu-backward");
    pub const ATTENTION: Op<Heads> = Op::new("sparsity-explorer/attention");
    pub const ATTENTION_BACKWARD: Op<Heads> = Op::new("sparsity-explorer/attention-backward");
    pub const DESCRIBE: Op<()> = Op::new("sparsity-explorer/describe");
}

/// The numbers of one kind of call, written to burn's scalars and read back in one place.
trait Scalars: Sized {
    fn encode(&self) -> Vec<ScalarIr>;
    /// `None` when `scalars` are not what [`Scalars::encode`] writes.
    fn decode(scalars: &[ScalarIr]) -> Option<Self>;
}

impl Scalars for () {
    fn encode(&self) -> Vec<ScalarIr> {
        Vec::new()
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        scalars.is_empty().then_some(())
    }
}

impl Scalars for ConvSpacing {
    fn encode(&self) -> Vec<ScalarIr> {
        let [pad_h, pad_w] = self.padding;
        let [stride_h, stride_w] = self.stride;
        vec![uint(pad_h), uint(pad_w), uint(stride_h), uint(stride_w)]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [
                ScalarIr::UInt(pad_h),
                ScalarIr::UInt(pad_w),
                ScalarIr::UInt(stride_h),
                ScalarIr::UInt(stride_w),
            ] => Some(ConvSpacing {
                padding: [*pad_h as usize, *pad_w as usize],
                stride: [*stride_h as usize, *stride_w as usize],
            }),
            _ => None,
        }
    }
}

/// A convolution's backward pass: its padding and stride, and whether the input's
/// gradient is needed.
struct ConvBackward {
    spacing: ConvSpacing,
    need_dx: bool,
}

impl Scalars for ConvBackward {
    fn encode(&self) -> Vec<ScalarIr> {
        let mut scalars = self.spacing.encode();
        scalars.push(ScalarIr::Bool(self.need_dx));
        scalars
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        let (ScalarIr::Bool(need_dx), spacing) = scalars.split_last()? else {
            return None;
        };
        Some(ConvBackward {
            spacing: ConvSpacing::decode(spacing)?,
            need_dx: *need_dx,
        })
    }
}

/// Whether a backward pass computes its input's gradient.
struct NeedDx(bool);

impl Scalars for NeedDx {
    fn encode(&self) -> Vec<ScalarIr> {
        vec![ScalarIr::Bool(self.0)]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [ScalarIr::Bool(need_dx)] => Some(NeedDx(*need_dx)),
            _ => None,
        }
    }
}

/// The height and width of a pooling's input, which its backward pass restores.
struct PoolInput {
    h: usize,
    w: usize,
}

impl Scalars for PoolInput {
    fn encode(&self) -> Vec<ScalarIr> {
        vec![uint(self.h), uint(self.w)]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [ScalarIr::UInt(h), ScalarIr::UInt(w)] => Some(PoolInput {
                h: *h as usize,
                w: *w as usize,
            }),
            _ => None,
        }
    }
}

/// An attention's heads.
struct Heads(usize);

impl Scalars for Heads {
    fn encode(&self) -> Vec<ScalarIr> {
        vec![uint(self.0)]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [ScalarIr::UInt(heads)] => Some(Heads(*heads as usize)),
            _ => None,
        }
    }
}

/// A batch normalization's epsilon, and whether a ReLU is folded in.
impl Scalars for NormOptions {
    fn encode(&self) -> Vec<ScalarIr> {
        vec![ScalarIr::Float(self.epsilon), uint(self.relu as usize)]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [ScalarIr::Float(epsilon), ScalarIr::UInt(relu @ 0..=1)] => Some(NormOptions {
                epsilon: *epsilon,
                relu: *relu == 1,
            }),
            _ => None,
        }
    }
}

impl Scalars for AdamStep {
    fn encode(&self) -> Vec<ScalarIr> {
        vec![
            ScalarIr::Float(self.lr),
            ScalarIr::Float(self.beta_1.into()),
            ScalarIr::Float(self.beta_2.into()),
            ScalarIr::Float(self.epsilon.into()),
            uint(self.time),
        ]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [
                ScalarIr::Float(lr),
                ScalarIr::Float(beta_1),
                ScalarIr::Float(beta_2),
                ScalarIr::Float(epsilon),
                ScalarIr::UInt(time),
            ] => Some(AdamStep {
                lr: *lr,
                beta_1: *beta_1 as f32,
                beta_2: *beta_2 as f32,
                epsilon: *epsilon as f32,
                time: *time as usize,
            }),
            _ => None,
        }
    }
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

fn uint(n: usize) -> ScalarIr {
    ScalarIr::UInt(n as u64)
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
        return server.with_custom_op::<Cube, _>(op::DESCRIBE.id, move |handles, ir, device| {
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
        .with_custom_op::<Flex, _>(op::DESCRIBE.id, move |handles, ir, _| {
            let answer = host_f32(values.clone(), &[DESCRIPTION_LEN]);
            outputs(handles, ir, [answer]);
        })
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
        .with_custom_op::<Flex, _>(op::ADAM.id, |handles, ir, _| {
            let [p, g, m, v] = inputs(handles, ir);
            let (p, m, v) = Flex::adam_update(p, g, m, v, op::ADAM.read(ir));
            outputs(handles, ir, [p, m, v]);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the client writes, the server reads back unchanged, and numbers of another
    /// operation are refused.
    #[test]
    fn each_operations_numbers_read_back_as_written() {
        let step = AdamStep {
            lr: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-5,
            time: 7,
        };
        assert_eq!(AdamStep::decode(&step.encode()), Some(step));
        let spacing = ConvSpacing {
            padding: [2, 1],
            stride: [2, 3],
        };
        assert_eq!(ConvSpacing::decode(&spacing.encode()), Some(spacing));
        let conv = ConvBackward {
            spacing,
            need_dx: true,
        };
        let back = ConvBackward::decode(&conv.encode()).unwrap();
        assert_eq!((back.spacing, back.need_dx), (spacing, true));
        let pool = PoolInput::decode(&PoolInput { h: 28, w: 14 }.encode()).unwrap();
        assert_eq!((pool.h, pool.w), (28, 14));
        for relu in [false, true] {
            let norm = NormOptions {
                epsilon: 1e-5,
                relu,
            };
            assert_eq!(NormOptions::decode(&norm.encode()), Some(norm));
        }
        assert!(NeedDx::decode(&NeedDx(false).encode()).is_some_and(|n| !n.0));
        assert_eq!(<()>::decode(&().encode()), Some(()));
        // another operation's numbers
        assert!(AdamStep::decode(&spacing.encode()).is_none());
        assert!(ConvSpacing::decode(&PoolInput { h: 1, w: 1 }.encode()).is_none());
        assert!(ConvSpacing::decode(&conv.encode()).is_none());
        assert_eq!(Heads::decode(&Heads(4).encode()).map(|h| h.0), Some(4));
        assert!(Heads::decode(&NeedDx(true).encode()).is_none());
        assert!(PoolInput::decode(&Heads(4).encode()).is_none());
        assert!(ConvBackward::decode(&NormOptions::plain(0.1).encode()).is_none());
        assert!(NormOptions::decode(&[]).is_none());
        assert!(NormOptions::decode(&[ScalarIr::Float(0.1), uint(2)]).is_none());
        assert!(<()>::decode(&NeedDx(true).encode()).is_none());
    }
}
