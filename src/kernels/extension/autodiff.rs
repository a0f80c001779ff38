//! The extension on `Autodiff<Flex>`: each operation's forward pass on the kernels,
//! registered with burn's autograd together with its own backward pass.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Flex};

use super::{TrainingKernels, dims4, geometry, host_f32, linear_geometry, norm_geometry};
use crate::kernels::conv::{ConvGeometry, conv2d_backward};
use crate::kernels::linear::linear_backward;
use crate::kernels::norm::batch_norm_backward;
use crate::kernels::pool::{max_pool2x2_backward, max_pool2x2_forward};

/// What the convolution's backward pass keeps from the forward pass.
#[derive(Clone, Debug)]
struct ConvState {
    x: FlexTensor,
    weight: FlexTensor,
    geometry: ConvGeometry,
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let ConvState {
            x,
            weight,
            geometry: g,
        } = ops.state;
        let result = conv2d_backward(
            &g,
            x.storage(),
            weight.storage(),
            dy.storage(),
            node_x.is_some(),
        );
        if let (Some(node), Some(dx)) = (node_x, result.dx) {
            grads.register::<Flex>(node.id, host_f32(dx, &[g.batch, g.c_in, g.in_h, g.in_w]));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, host_f32(result.dw, &[g.c_out, g.c_in, g.kh, g.kw]));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, host_f32(result.db, &[g.c_out]));
        }
    }
}

/// What the pooling's backward pass keeps: the winner of each window.
#[derive(Clone, Debug)]
struct PoolState {
    winners: std::sync::Arc<Vec<u8>>,
    dims: [usize; 4],
}

#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    type State = PoolState;

    fn backward(self, ops: Ops<PoolState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        if let Some(node) = node_x {
            let [n, c, h, w] = ops.state.dims;
            let dx = max_pool2x2_backward(dy.storage(), &ops.state.winners, n * c, h, w);
            grads.register::<Flex>(node.id, host_f32(dx, &ops.state.dims));
        }
    }
}

/// What the batch norm's backward pass keeps from the forward pass.
#[derive(Clone, Debug)]
struct NormState {
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let s = ops.state;
        let dims = dims4(&s.x);
        let g = norm_geometry(dims);
        let result = batch_norm_backward(
            &g,
            s.x.storage(),
            s.gamma.storage(),
            s.mean.storage(),
            s.variance.storage(),
            s.epsilon,
            dy.storage(),
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, host_f32(result.dx, &dims));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, host_f32(result.dgamma, &[g.channels]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, host_f32(result.dbeta, &[g.channels]));
        }
    }
}

/// What the dense layer's backward pass keeps from the forward pass.
#[derive(Clone, Debug)]
struct LinearState {
    x: FlexTensor,
    weight: FlexTensor,
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<LinearState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let LinearState { x, weight } = ops.state;
        let g = linear_geometry(&x, &weight);
        let result = linear_backward(
            &g,
            x.storage(),
            weight.storage(),
            dy.storage(),
            node_x.is_some(),
        );
        if let (Some(node), Some(dx)) = (node_x, result.dx) {
            grads.register::<Flex>(node.id, host_f32(dx, &[g.batch, g.inp]));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, host_f32(result.dw, &[g.inp, g.out]));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, host_f32(result.db, &[g.out]));
        }
    }
}

impl<C: CheckpointStrategy> TrainingKernels for Autodiff<Flex, C> {
    fn conv2d_unit_stride(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        let xp = x.primitive().to_contiguous();
        let wp = weight.primitive().to_contiguous();
        let bp = bias.primitive().clone();
        let g = geometry(&xp, &wp, pad_h, pad_w);
        let prep = ConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        let output = Flex::conv2d_unit_stride(xp.clone(), wp.clone(), bp, pad_h, pad_w);
        match prep {
            OpsKind::Tracked(prep) => prep.finish(
                ConvState {
                    x: xp,
                    weight: wp,
                    geometry: g,
                },
                output,
            ),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn linear_dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let xp = x.primitive().to_contiguous();
        let wp = weight.primitive().to_contiguous();
        let bp = bias.primitive().clone();
        let prep = LinearBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        let output = Flex::linear_dense(xp.clone(), wp.clone(), bp);
        match prep {
            OpsKind::Tracked(prep) => prep.finish(LinearState { x: xp, weight: wp }, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let xp = x.primitive().to_contiguous();
        let dims = dims4(&xp);
        let [n, c, h, w] = dims;
        let prep = PoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let pooled = max_pool2x2_forward(xp.storage(), n * c, h, w);
        let output = host_f32(pooled.values, &[n, c, h / 2, w / 2]);
        match prep {
            OpsKind::Tracked(prep) => prep.finish(
                PoolState {
                    winners: std::sync::Arc::new(pooled.winners),
                    dims,
                },
                output,
            ),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let xp = x.primitive().to_contiguous();
        let gp = gamma.primitive().to_contiguous();
        let bp = beta.primitive().clone();
        let prep = NormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (output, mean, variance) = Flex::batch_norm_train(xp.clone(), gp.clone(), bp, epsilon);
        let output = match prep {
            OpsKind::Tracked(prep) => prep.finish(
                NormState {
                    x: xp,
                    gamma: gp,
                    mean: mean.clone(),
                    variance: variance.clone(),
                    epsilon,
                },
                output,
            ),
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (output, Self::from_inner(mean), Self::from_inner(variance))
    }

    /// Optimizers work on inner tensors; a tracked call gets untracked results.
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
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (p, m, v) = Flex::adam_update(
            Self::inner(param),
            Self::inner(grad),
            Self::inner(moment_1),
            Self::inner(moment_2),
            lr,
            beta_1,
            beta_2,
            epsilon,
            time,
        );
        (
            Self::from_inner(p),
            Self::from_inner(m),
            Self::from_inner(v),
        )
    }
}
