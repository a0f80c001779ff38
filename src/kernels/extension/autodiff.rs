//! The extension on `Autodiff<B>` for any backend `B` with the kernels (flex, or a server
//! that serves them): each forward pass on `B`'s kernel, registered with burn's autograd
//! together with a backward pass on `B`'s kernel for it.

use burn::backend::TensorMetadata;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, AutodiffBackend};

use super::TrainingKernels;
use crate::kernels::adam::AdamStep;

/// Hands `gradient` to `node`, when autograd tracks it.
fn register<B: TrainingKernels>(
    grads: &mut Gradients,
    node: Option<NodeId>,
    gradient: FloatTensor<B>,
) {
    if let Some(node) = node {
        grads.register::<B>(node, gradient);
    }
}

/// What a convolution's or a dense layer's backward pass keeps from the forward pass.
#[derive(Clone, Debug)]
struct WeightedState<B: TrainingKernels> {
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    /// The convolution's zeros on each side (unused by the dense layer).
    padding: (usize, usize),
}

#[derive(Debug)]
struct ConvBackward;

impl<B: TrainingKernels> Backward<B, 3> for ConvBackward {
    type State = WeightedState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents.map(|p| p.map(|node| node.id));
        let dy = grads.consume::<B>(&ops.node);
        let WeightedState { x, weight, padding } = ops.state;
        let (dx, dw, db) =
            B::conv2d_unit_stride_backward(x, weight, dy, padding.0, padding.1, node_x.is_some());
        register::<B>(grads, node_x, dx);
        register::<B>(grads, node_w, dw);
        register::<B>(grads, node_b, db);
    }
}

#[derive(Debug)]
struct LinearBackward;

impl<B: TrainingKernels> Backward<B, 3> for LinearBackward {
    type State = WeightedState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents.map(|p| p.map(|node| node.id));
        let dy = grads.consume::<B>(&ops.node);
        let WeightedState { x, weight, .. } = ops.state;
        let (dx, dw, db) = B::linear_dense_backward(x, weight, dy, node_x.is_some());
        register::<B>(grads, node_x, dx);
        register::<B>(grads, node_w, dw);
        register::<B>(grads, node_b, db);
    }
}

#[derive(Debug)]
struct PoolBackward;

/// What the pooling's backward pass keeps: each window's winner, and the input's size.
#[derive(Clone, Debug)]
struct PoolState<B: TrainingKernels> {
    winners: IntTensor<B>,
    h: usize,
    w: usize,
}

impl<B: TrainingKernels> Backward<B, 1> for PoolBackward {
    type State = PoolState<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents.map(|p| p.map(|node| node.id));
        let dy = grads.consume::<B>(&ops.node);
        if node_x.is_some() {
            let PoolState { winners, h, w } = ops.state;
            register::<B>(grads, node_x, B::max_pool2x2_backward(winners, dy, h, w));
        }
    }
}

/// What the batch norm's backward pass keeps from the forward pass.
#[derive(Clone, Debug)]
struct NormState<B: TrainingKernels> {
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    mean: FloatTensor<B>,
    variance: FloatTensor<B>,
    epsilon: f64,
}

#[derive(Debug)]
struct NormBackward;

impl<B: TrainingKernels> Backward<B, 3> for NormBackward {
    type State = NormState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents.map(|p| p.map(|node| node.id));
        let dy = grads.consume::<B>(&ops.node);
        let s = ops.state;
        let (dx, dgamma, dbeta) = <B as TrainingKernels>::batch_norm_train_backward(
            s.x, s.gamma, s.mean, s.variance, dy, s.epsilon,
        );
        register::<B>(grads, node_x, dx);
        register::<B>(grads, node_gamma, dgamma);
        register::<B>(grads, node_beta, dbeta);
    }
}

impl<B: TrainingKernels, C: CheckpointStrategy> TrainingKernels for Autodiff<B, C> {
    fn conv2d_unit_stride(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        let (xp, wp, bp) = (
            x.primitive().clone(),
            weight.primitive().clone(),
            bias.primitive().clone(),
        );
        let prep = ConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        let output = B::conv2d_unit_stride(xp.clone(), wp.clone(), bp, pad_h, pad_w);
        match prep {
            OpsKind::Tracked(prep) => prep.finish(
                WeightedState {
                    x: xp,
                    weight: wp,
                    padding: (pad_h, pad_w),
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
        let (xp, wp, bp) = (
            x.primitive().clone(),
            weight.primitive().clone(),
            bias.primitive().clone(),
        );
        let prep = LinearBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        let output = B::linear_dense(xp.clone(), wp.clone(), bp);
        match prep {
            OpsKind::Tracked(prep) => prep.finish(
                WeightedState {
                    x: xp,
                    weight: wp,
                    padding: (0, 0),
                },
                output,
            ),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn max_pool2x2(x: FloatTensor<Self>) -> (FloatTensor<Self>, IntTensor<Self>) {
        let xp = x.primitive().clone();
        let shape = xp.shape();
        let (h, w) = (shape[2], shape[3]);
        let prep = PoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let (output, winners) = B::max_pool2x2(xp);
        let output = match prep {
            OpsKind::Tracked(prep) => prep.finish(
                PoolState {
                    winners: winners.clone(),
                    h,
                    w,
                },
                output,
            ),
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (output, winners)
    }

    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (xp, gp, bp) = (
            x.primitive().clone(),
            gamma.primitive().clone(),
            beta.primitive().clone(),
        );
        let prep = NormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (output, mean, variance) =
            <B as TrainingKernels>::batch_norm_train(xp.clone(), gp.clone(), bp, epsilon);
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

    // The backward passes and the rest run on inner tensors: autograd calls `B`'s
    // directly, and a tracked call gets untracked results.

    fn conv2d_unit_stride_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        pad_h: usize,
        pad_w: usize,
        need_dx: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dw, db) = B::conv2d_unit_stride_backward(
            Self::inner(x),
            Self::inner(weight),
            Self::inner(dy),
            pad_h,
            pad_w,
            need_dx,
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dw),
            Self::from_inner(db),
        )
    }

    fn linear_dense_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        need_dx: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dw, db) = B::linear_dense_backward(
            Self::inner(x),
            Self::inner(weight),
            Self::inner(dy),
            need_dx,
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dw),
            Self::from_inner(db),
        )
    }

    fn max_pool2x2_backward(
        winners: IntTensor<Self>,
        dy: FloatTensor<Self>,
        h: usize,
        w: usize,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::max_pool2x2_backward(winners, Self::inner(dy), h, w))
    }

    fn batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dgamma, dbeta) = <B as TrainingKernels>::batch_norm_train_backward(
            Self::inner(x),
            Self::inner(gamma),
            Self::inner(mean),
            Self::inner(variance),
            Self::inner(dy),
            epsilon,
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dgamma),
            Self::from_inner(dbeta),
        )
    }

    fn describe_device(probe: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::describe_device(Self::inner(probe)))
    }

    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (p, m, v) = B::adam_update(
            Self::inner(param),
            Self::inner(grad),
            Self::inner(moment_1),
            Self::inner(moment_2),
            step,
        );
        (
            Self::from_inner(p),
            Self::from_inner(m),
            Self::from_inner(v),
        )
    }
}
